"""The batch format zoo trains on: :class:`BatchCollator` makes it from ``(image, label)``
samples, :func:`batch_problem` and :func:`check_batch` say what keeps a batch from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

from zoo.errors import PluginError

#: Where the dataset contract is written down, for messages.
CONTRACT = "docs/plugins.md#datasets"


class BatchCollator:
    """Collates ``(image, label)`` samples into a batch in zoo's format: uint8 images divided by
    255, float images normalised with ``mean`` and ``std`` (if given), labels made int64."""

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        self.mean = None if mean is None or std is None else tuple(float(m) for m in mean)
        self.std = None if mean is None or std is None else tuple(float(s) for s in std)

    def __call__(self, samples: list[Any]) -> Any:
        batch = default_collate(samples)
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            return batch  # not pairs: the batch check says so
        images, labels = batch
        if isinstance(images, torch.Tensor):
            if images.dtype == torch.uint8:
                images = images.to(torch.float32).div_(255)
            if self.mean is not None and self.std is not None and images.is_floating_point():
                mean = torch.tensor(self.mean, dtype=images.dtype).view(-1, 1, 1)
                std = torch.tensor(self.std, dtype=images.dtype).view(-1, 1, 1)
                images = images.sub(mean).div_(std)
        if isinstance(labels, torch.Tensor) and not labels.is_floating_point():
            labels = labels.to(torch.int64)
        return images, labels


def batch_problem(batch: Any, input_shape: Sequence[int], num_classes: int) -> str | None:
    """What keeps ``batch`` from being ``(images, labels)`` as zoo trains on them (images float
    ``(N, C, H, W)`` of ``input_shape``, labels int64 ``N`` in ``0..num_classes-1``), or None."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        return f"a batch must be a pair (images, labels), got {describe_value(batch)}"
    images, labels = batch
    shape = (*map(int, input_shape),)
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        return f"images must be a float tensor (N, C, H, W), got {describe_value(images)}"
    if images.ndim != 4 or tuple(images.shape[1:]) != shape:
        return (
            f"images must be of shape (N, *input_shape) = (N, *{shape}), "
            f"got {describe_value(images)}"
        )
    n = len(images)
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (n,):
        return f"labels must be an int64 tensor of shape ({n},), got {describe_value(labels)}"
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        return (
            f"labels must be class indices in 0..{num_classes - 1}, got labels from "
            f"{int(labels.min())} to {int(labels.max())}"
        )
    return None


def check_batch(batch: Any, datamodule: Any, label: str) -> None:
    """Raise :class:`PluginError` if ``batch`` is not in the format of ``datamodule``'s
    declarations (see :func:`batch_problem`); ``label`` names the dataset."""
    problem = batch_problem(batch, datamodule.input_shape, int(datamodule.num_classes))
    if problem is not None:
        raise PluginError(f"{label} gives batches zoo cannot use: {problem} (see {CONTRACT})")


def describe_value(value: Any) -> str:
    """A value as messages describe it: a tensor by its dtype and shape, else by its type."""
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__
