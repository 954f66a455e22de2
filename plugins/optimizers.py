"""The built-in optimizers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import zoo

if TYPE_CHECKING:
    import torch
    from torch import nn


def _torch_optimizer(class_name: str, model: nn.Module, **options: Any) -> torch.optim.Optimizer:
    """torch.optim's ``class_name`` over ``model``'s parameters, with torch's fused kernel where
    the parameters' device and dtype have one."""
    import torch

    optimizer_class = getattr(torch.optim, class_name)
    parameters = [p for p in model.parameters() if p.requires_grad]
    try:
        return optimizer_class(parameters, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
        return optimizer_class(parameters, **options)


def adam(model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return _torch_optimizer("Adam", model, lr=lr, weight_decay=weight_decay)


def adamw(model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.01) -> torch.optim.Optimizer:
    return _torch_optimizer("AdamW", model, lr=lr, weight_decay=weight_decay)


def sgd(
    model: nn.Module, lr: float = 1e-2, momentum: float = 0.9, nesterov: bool = False
) -> torch.optim.Optimizer:
    return _torch_optimizer("SGD", model, lr=lr, momentum=momentum, nesterov=nesterov)


@zoo.hookimpl
def register_optimizers(register: zoo.Register) -> None:
    register("adam", adam, summary="torch.optim.Adam")
    register("adamw", adamw, summary="torch.optim.AdamW")
    register("sgd", sgd, summary="torch.optim.SGD, momentum 0.9")
