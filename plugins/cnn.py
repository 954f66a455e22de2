"""A small convolutional network built around the chosen activation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import zoo

if TYPE_CHECKING:
    from torch import nn


def build_cnn(
    act: Callable[[], nn.Module],
    input_shape: Sequence[int],
    num_classes: int,
    channels: Sequence[int] = (32, 64),
    convs: int = 2,
    hidden: int = 128,
    dropout: float = 0.25,
    batchnorm: bool = True,
) -> nn.Sequential:
    """One stage per entry of ``channels``: ``convs`` times ``Conv3x3 → [BatchNorm] → act``, then
    ``MaxPool2``; then ``Flatten → Dropout → Linear(hidden) → act → Dropout → Linear(num_classes)``
    (logits).

    A stage whose input is smaller than 2x2 skips its pooling, so any input size works. On MNIST
    with the defaults: 1x28x28 → 32x14x14 → 64x7x7 → 128 → 10, 468,010 parameters.
    """
    from torch import nn

    if not channels or any(isinstance(c, bool) or c < 1 for c in channels):
        raise ValueError(f"channels must be positive integers, got {tuple(channels)}")
    if isinstance(convs, bool) or convs < 1:
        raise ValueError(f"convs must be a positive integer, got {convs}")
    if isinstance(hidden, bool) or hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    in_channels, height, width = input_shape
    layers: list[nn.Module] = []
    for out_channels in channels:
        for _ in range(convs):
            layers.append(
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=not batchnorm)
            )
            if batchnorm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(act())
            in_channels = out_channels
        if height >= 2 and width >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
    layers += [
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(in_channels * height * width, hidden),
        act(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    ]
    return nn.Sequential(*layers)


@zoo.hookimpl
def register_architectures(register: zoo.Register) -> None:
    register(
        "cnn",
        build_cnn,
        summary="Small CNN: per channel count (default 32, 64) two Conv3x3+BatchNorm+act and a "
        "MaxPool; then Linear(128)+act, dropout 0.25",
    )
