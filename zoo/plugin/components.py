"""Build components by spec: ``create_activation``, ``create_model``, ``create_datamodule``, and
list them (``list_components`` lists any kind). Torch is imported only when something is built."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from zoo.errors import ComponentSpecError
from zoo.plugin.loading import get_registry
from zoo.plugin.registry import Component, Kind
from zoo.plugin.specs import ComponentSpec, parse_spec

if TYPE_CHECKING:
    import lightning as L
    from torch import nn

DEFAULT_BATCH_SIZE = 64


def resolve(
    kind: Kind, spec: str | ComponentSpec, **kwargs: Any
) -> tuple[Component, ComponentSpec]:
    """Look up a spec's component and check its arguments (``kwargs`` override the spec's)."""
    try:
        parsed = parse_spec(spec).with_kwargs(**kwargs)
    except ComponentSpecError as error:
        error.kind = error.kind or kind  # so that the CLI names the option
        raise
    component = get_registry().get(kind, parsed.name)
    component.check_arguments(parsed.kwargs)
    return component, ComponentSpec(component.name, parsed.kwargs)


#: Attribute set on every module an architecture builds with its ``act`` factory; the value is
#: the activation's spec. :func:`activation_modules` finds the modules by it.
ACTIVATION_MARK = "zoo_activation"


def activation_factory(spec: str | ComponentSpec, **kwargs: Any) -> Callable[[], nn.Module]:
    """A zero-argument callable returning a fresh activation module per call, as architectures
    receive it. Each module it returns is marked, so :func:`activation_modules` finds it."""
    component, parsed = resolve("activation", spec, **kwargs)
    component.build(parsed.kwargs)  # fail now, not inside the architecture
    return functools.partial(_marked, component.factory, str(parsed), parsed.kwargs)


def _marked(factory: Callable[..., Any], spec: str, kwargs: dict[str, Any]) -> Any:
    module = factory(**kwargs)
    with contextlib.suppress(AttributeError, TypeError):  # not a module: nothing to mark
        setattr(module, ACTIVATION_MARK, spec)
    return module


def activation_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The activation modules inside ``model`` that an architecture built from its ``act``
    factory (by ``create_model``), as ``(qualified name, module)`` in registration order.

    Works for any architecture and activation, and inside wrappers such as a LightningModule;
    a module the architecture reuses in several places is listed once.
    """
    return [(name, m) for name, m in model.named_modules() if hasattr(m, ACTIVATION_MARK)]


def create_activation(spec: str | ComponentSpec, **kwargs: Any) -> nn.Module:
    """A fresh activation module, e.g. ``create_activation("leakyrelu:negative_slope=0.2")``."""
    component, parsed = resolve("activation", spec, **kwargs)
    return component.build(parsed.kwargs)


def create_model(
    arch: str | ComponentSpec,
    *,
    act: str | ComponentSpec = "relu",
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    dataset: str | ComponentSpec | L.LightningDataModule | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build an architecture around an activation.

    ``input_shape`` (C, H, W) and ``num_classes`` are given directly or read from ``dataset``
    (a spec or a datamodule); ``kwargs`` go to the architecture, over its spec's arguments.
    """
    if dataset is not None:
        datamodule = (
            dataset
            if not isinstance(dataset, (str, ComponentSpec))
            else (create_datamodule(dataset))
        )
        input_shape = input_shape or datamodule.input_shape  # type: ignore[union-attr]
        num_classes = num_classes or datamodule.num_classes  # type: ignore[union-attr]
    if input_shape is None or num_classes is None:
        raise ComponentSpecError(
            "create_model needs input_shape and num_classes, or a dataset to read them from",
            kind="architecture",
        )
    shape = tuple(int(n) for n in input_shape)
    if len(shape) != 3:
        raise ComponentSpecError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    component, parsed = resolve("architecture", arch, **kwargs)
    return component.build(
        parsed.kwargs, act=activation_factory(act), input_shape=shape, num_classes=num_classes
    )


def create_datamodule(
    spec: str | ComponentSpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    **kwargs: Any,
) -> L.LightningDataModule:
    """A dataset's LightningDataModule; it has ``input_shape``, ``num_classes``, ``class_names``.

    ``data_dir`` defaults to ``$ZOO_DATA_DIR``, else a per-user cache directory.
    """
    component, parsed = resolve("dataset", spec, **kwargs)
    return component.build(parsed.kwargs, data_dir=data_dir, batch_size=batch_size)


def list_activations(pattern: str | None = None) -> list[Component]:
    """Registered activations, optionally filtered by an fnmatch pattern such as ``"leaky*"``."""
    return get_registry().components("activation", pattern)


def list_architectures(pattern: str | None = None) -> list[Component]:
    """Registered architectures, optionally filtered by an fnmatch pattern."""
    return get_registry().components("architecture", pattern)


def list_datasets(pattern: str | None = None) -> list[Component]:
    """Registered datasets, optionally filtered by an fnmatch pattern."""
    return get_registry().components("dataset", pattern)


def list_components(kind: Kind, pattern: str | None = None) -> list[Component]:
    """Registered components of any kind (``"optimizer"``, ``"scheduler"``, ...), optionally
    filtered by an fnmatch pattern."""
    return get_registry().components(kind, pattern)
