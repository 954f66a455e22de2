"""timm's optimizers: built by ``timm.optim.create_optimizer_v2``, and every one of them as the
optimizer family ``timm/<name>`` (registered by :mod:`zoo.plugins.optimizers`).

The family's names are read from timm's sources without importing timm (or torch) where zoo
checked that this works for the installed timm (``zoo._compat.timm``); elsewhere timm is
imported and asked. timm is imported only when an optimizer is built.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import TYPE_CHECKING, Any

from zoo._compat import timm as timm_compat

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The learning rate of a ``timm/<name>`` optimizer when ``--lr`` is not given.
TIMM_FAMILY_LR = 1e-3

#: Packages some timm optimizers need (NVIDIA apex, bitsandbytes): listed only if installed.
_OPTIONAL_PACKAGES = ("apex", "bitsandbytes")


def build_timm(
    opt: str, model: nn.Module, lr: float, weight_decay: float, **options: Any
) -> torch.optim.Optimizer:
    """``timm.optim.create_optimizer_v2(model, opt=opt, ...)``, which keeps weight decay off
    biases and normalisation layers."""
    import timm.optim

    try:
        return timm.optim.create_optimizer_v2(
            model, opt=opt, lr=lr, weight_decay=weight_decay, **options
        )
    except (AssertionError, ImportError) as error:  # CUDA or a package it needs is missing
        raise ValueError(f"timm's {opt!r} cannot be built here: {error}") from error


def timm_optimizer(
    name: str,
    /,
    model: nn.Module,
    lr: float = TIMM_FAMILY_LR,
    weight_decay: float = 0.0,
    **options: Any,
) -> torch.optim.Optimizer:
    """timm's optimizer ``name`` by ``timm.optim.create_optimizer_v2``; ``options`` go to it as
    they are (``betas=(0.9, 0.95)``, ``momentum=0.9``)."""
    return build_timm(name, model, lr, weight_decay, **options)


@functools.cache
def timm_optimizer_names() -> dict[str, str]:
    """Every optimizer timm lists, with its description, less the second-order ones and those
    whose package (apex, bitsandbytes) is not installed. A test checks the result against
    ``timm.optim.list_optimizers()``."""
    infos = timm_compat.timm_registry("optimizers")
    if not infos:
        return _ask_timm()
    return {name: _family_summary(info) for name, info in infos.items() if _usable(info)}


def _usable(info: dict[str, Any]) -> bool:
    # A second-order optimizer (adahessian) needs backward(create_graph=True), which
    # Lightning's training step does not do.
    if info.get("second_order"):
        return False
    opt_class = info.get("opt_class")
    root = opt_class.split(".", 1)[0] if isinstance(opt_class, str) else ""
    return root not in _OPTIONAL_PACKAGES or importlib.util.find_spec(root) is not None


def _family_summary(info: dict[str, Any]) -> str:
    description = str(info.get("description") or "timm optimizer").rstrip(".")
    return f"{description} (timm); lr {TIMM_FAMILY_LR:g}, weight decay 0"


def _ask_timm() -> dict[str, str]:
    import timm.optim

    names: dict[str, str] = {}
    for name in sorted(timm.optim.list_optimizers()):
        info = timm.optim.get_optimizer_info(name)
        entry = {"description": info.description, "second_order": info.second_order}
        entry["opt_class"] = info.opt_class if isinstance(info.opt_class, str) else None
        if _usable(entry):
            names[name] = _family_summary(entry)
    return names
