"""The Snake activation module."""

from __future__ import annotations

import torch
from torch import nn


class Snake(nn.Module):
    """``x + sin²(a·x) / a``: monotonic, with a periodic component of frequency ``a``."""

    def __init__(self, a: float = 1.0, trainable: bool = True) -> None:
        super().__init__()
        if a <= 0:
            raise ValueError(f"a must be positive, got {a}")
        value = torch.tensor(float(a))
        if trainable:
            self.a = nn.Parameter(value)
        else:
            self.register_buffer("a", value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sin(self.a * x).pow(2) / self.a

    def extra_repr(self) -> str:
        return f"a={float(self.a):g}, trainable={isinstance(self.a, nn.Parameter)}"
