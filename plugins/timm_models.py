"""The timm bridge: every timm model as the architecture ``timm/<model_name>``.

The models are one family registration (see :mod:`zoo.plugin.hookspecs`): their names are read from
timm's model sources without importing timm, so ``zoo list architectures 'timm/*resnet*'`` stays
fast, and timm is imported only when a model is built. The dataset gives ``in_chans`` and
``num_classes``; the chosen activation goes in as timm's ``act_layer``. A model that has no
``act_layer`` cannot take the activation: building it is an error unless the activation is
``default`` (of :mod:`zoo.plugins.activations`), which keeps the model's own activations.
"""

from __future__ import annotations

import functools
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import zoo
from zoo import ComponentSpecError, DataNotFoundError
from zoo._compat import timm as timm_compat
from zoo.plugins.activations import default_activation_class

if TYPE_CHECKING:
    from torch import nn

#: Where pretrained weights come from (timm downloads them through huggingface_hub).
WEIGHTS_HOST = "https://huggingface.co"


@functools.cache
def model_names() -> dict[str, str]:
    """Every timm model name, with a summary naming its timm module.

    Read from timm's sources without importing timm (about 20 ms instead of seconds) where zoo
    checked that this works for the installed timm (``zoo._compat.timm``); a test checks the
    result equals ``timm.list_models()``. Elsewhere, ``timm.list_models()`` it is.
    """
    modules = timm_compat.timm_registry("models")
    if modules:
        return {name: f"timm model from timm.models.{stem}" for name, stem in modules.items()}
    import timm

    return {name: "timm model" for name in sorted(timm.list_models())}


def _act_layer(act: Callable[[], nn.Module], built: list[nn.Module]) -> Callable[..., nn.Module]:
    """timm's ``act_layer`` for a zoo activation factory: a plain function (timm's norm-act
    layers take types, strings, functions or partials), recording what it builds. timm's
    ``inplace`` flag is ignored: zoo activations are fresh modules, in-place only saves memory."""

    def act_layer(inplace: bool = False) -> nn.Module:
        module = act()
        built.append(module)
        return module

    return act_layer


def _check_weights_reachable(model_name: str) -> None:
    """Fail fast and clearly when pretrained weights would have to be downloaded offline (the
    Hub client would otherwise retry for most of a minute)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return  # the user asked for the local Hugging Face cache only
    try:
        urllib.request.urlopen(urllib.request.Request(WEIGHTS_HOST, method="HEAD"), timeout=10)
    except urllib.error.HTTPError:
        return  # the host answered: we are online
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DataNotFoundError(
            f"pretrained weights for timm/{model_name} are downloaded from {WEIGHTS_HOST}, which "
            f"cannot be reached ({reason}). Without network: set HF_HUB_OFFLINE=1 to use weights "
            f"already in the Hugging Face cache, or train from scratch (pretrained=False)."
        ) from error


def build_timm(
    model_name: str,
    /,
    act: Callable[[], nn.Module],
    input_shape: Sequence[int],
    num_classes: int,
    pretrained: bool = False,
    **model_kwargs: Any,
) -> nn.Module:
    """``timm.create_model(model_name, in_chans=C, num_classes=..., act_layer=<act>, ...)``.

    ``model_kwargs`` go to timm as they are (``drop_rate=0.1``). Models that take ``img_size``
    get the input's (28x28 for MNIST). The model is checked on a dummy batch of ``input_shape``,
    so a model that cannot take such small inputs fails here, with its reason.
    """
    for reserved in ("in_chans", "act_layer"):
        if reserved in model_kwargs:
            source = "the dataset" if reserved == "in_chans" else "--act"
            raise ComponentSpecError(
                f"architecture 'timm/{model_name}': {reserved!r} comes from {source}, not the spec",
                kind="architecture",
            )
    in_chans, height, width = (int(n) for n in input_shape)
    own_activation = isinstance(act(), default_activation_class())
    built: list[nn.Module] = []
    kwargs: dict[str, Any] = {"in_chans": in_chans, "num_classes": num_classes}
    if not own_activation:
        kwargs["act_layer"] = _act_layer(act, built)
    kwargs.update(model_kwargs)
    act_name = "" if own_activation else type(act()).__name__
    if pretrained:
        _check_weights_reachable(model_name)
    model = _create_model(model_name, pretrained, kwargs, (height, width), built, act_name)
    if not own_activation:
        inside = {id(module) for module in model.modules()}
        if not any(id(module) in inside for module in built):
            raise _activation_error(model_name, "accepts act_layer but does not use it", act_name)
    _check_outputs(model_name, model, (in_chans, height, width), num_classes)
    return model


def _create_model(
    model_name: str,
    pretrained: bool,
    kwargs: dict[str, Any],
    size: tuple[int, int],
    built: list[nn.Module],
    act_name: str,
) -> nn.Module:
    """``timm.create_model(model_name, **kwargs)``, first with ``img_size=size`` (for models with
    a fixed input size) unless ``kwargs`` set it, with timm's errors turned into zoo's.
    ``built`` collects the activations the model builds: it is emptied before each attempt."""
    import timm

    attempts: list[dict[str, Any]] = [{}]
    if "img_size" not in kwargs:
        attempts.insert(0, {"img_size": size})
    model = None
    for extra in attempts:
        built.clear()
        try:
            model = timm.create_model(model_name, pretrained=pretrained, **kwargs, **extra)
            break
        except TypeError as error:
            if extra and "img_size" in str(error):
                continue  # this model takes any input size
            if "act_layer" in kwargs and "act_layer" in str(error):
                raise _activation_error(model_name, "takes no act_layer", act_name) from error
            raise _build_error(model_name, "", error) from error
        except Exception as error:
            if pretrained and not isinstance(error, (AssertionError, ValueError, KeyError)):
                raise DataNotFoundError(
                    f"pretrained weights for timm/{model_name} could not be loaded: "
                    f"{type(error).__name__}: {error}"
                ) from error
            raise _build_error(model_name, act_name, error) from error
    assert model is not None
    return model


def _check_outputs(
    model_name: str, model: nn.Module, input_shape: tuple[int, int, int], num_classes: int
) -> None:
    """Run a dummy batch of two inputs of ``input_shape`` through the model, in eval mode (its
    mode is restored after): it must take them and return ``num_classes`` scores for each."""
    import torch

    in_chans, height, width = input_shape
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(torch.zeros(2, in_chans, height, width))
    except Exception as error:
        raise ComponentSpecError(
            f"timm model {model_name!r} cannot take {in_chans}x{height}x{width} inputs "
            f"({type(error).__name__}: {error}); pick a model made for small images (e.g. "
            f"timm/resnet18) or a dataset with larger ones",
            kind="architecture",
        ) from error
    finally:
        model.train(training)
    if tuple(output.shape) != (2, num_classes):
        raise ComponentSpecError(
            f"timm model {model_name!r} returns outputs of shape {tuple(output.shape)[1:]} for "
            f"{in_chans}x{height}x{width} inputs, not ({num_classes},) class scores",
            kind="architecture",
        )


def _activation_error(model_name: str, reason: str, act_name: str) -> ComponentSpecError:
    """The model's activations cannot be replaced, for ``reason``; ``default`` keeps them."""
    return ComponentSpecError(
        f"timm model {model_name!r} {reason}, so its activations cannot be replaced with "
        f"{act_name}; pass --act default (act='default') to train it with its own activations",
        kind="activation",
    )


def _build_error(model_name: str, act_name: str, error: Exception) -> ComponentSpecError:
    hint = ""
    if act_name:
        hint = f"; if {act_name} is the problem, --act default keeps the model's own activations"
    return ComponentSpecError(
        f"timm model {model_name!r} could not be built: {type(error).__name__}: {error}{hint}",
        kind="architecture",
    )


@zoo.hookimpl
def register_architectures(register: zoo.Register) -> None:
    register(
        "timm/*",
        build_timm,
        summary="Every timm model as timm/<model_name> (list them: zoo list architectures "
        "'timm/*'): channels and classes from the dataset, --act as act_layer",
        members=model_names,
    )
