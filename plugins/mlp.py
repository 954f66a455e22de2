"""The classic multilayer perceptron of the original study."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from math import prod
from typing import TYPE_CHECKING

import zoo

if TYPE_CHECKING:
    from torch import nn


def build_mlp(
    act: Callable[[], nn.Module],
    input_shape: Sequence[int],
    num_classes: int,
    hidden: Sequence[int] = (128, 64),
    dropout: float = 0.0,
) -> nn.Sequential:
    """``Flatten → Linear → act → … → Linear(num_classes) → LogSoftmax``, one activation after
    each hidden layer (and ``Dropout(dropout)`` after it, if above 0). On MNIST with the
    defaults: 784 → 128 → 64 → 10."""
    from torch import nn

    if any(isinstance(width, bool) or width < 1 for width in hidden):
        raise ValueError(f"hidden sizes must be positive integers, got {tuple(hidden)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    widths = [prod(input_shape), *hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width_out in pairwise(widths):
        layers += [nn.Linear(width_in, width_out), act()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(widths[-1], num_classes), nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


@zoo.hookimpl
def register_architectures(register: zoo.Register) -> None:
    register(
        "mlp",
        build_mlp,
        summary="Sequential MLP: Flatten, Linear+act per hidden size (default 128, 64), optional "
        "dropout, LogSoftmax",
    )
