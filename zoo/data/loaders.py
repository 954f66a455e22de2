"""The in-memory fast path of :class:`zoo.data.VisionDataModule`: a split decoded once into uint8
tensors (:func:`decoded_tensors`, checked against the dataset's own samples), the positions each
process reads per epoch (:class:`EpochSampler`), and batches gathered by indexing and normalised
as ``ToTensor`` + ``Normalize`` do it (:class:`InMemoryLoader`, :class:`ResumableLoader`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

Batch = tuple[torch.Tensor, torch.Tensor]

#: The fast path gathers and normalises this many batches at a time and hands them out as views:
#: one set of tensor operations per group of batches rather than per batch.
BATCHES_PER_GATHER = 16


class EpochSampler:
    """The dataset positions one process reads in one epoch, chosen as torch's
    ``DistributedSampler`` chooses them.

    With ``shuffle``, the order is a permutation drawn from a generator seeded with
    ``seed + epoch``, so every rank draws the same one and a seed reproduces a run. With several
    processes the order is padded, by repeating its start, to a multiple of ``world_size``, and
    rank ``r`` keeps every ``world_size``-th position from ``r``: the ranks' shards are disjoint
    (up to the padding) and equally long. Lightning calls :meth:`set_epoch` before each epoch;
    iterating without it moves on to the next epoch by itself, as a shuffling DataLoader would.
    """

    def __init__(
        self,
        positions: torch.Tensor,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.positions = positions
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` next (Lightning calls this before every epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.positions) / self.world_size)

    def indices(self) -> torch.Tensor:
        """This rank's positions for the current epoch, then move on to the next epoch."""
        n = len(self.positions)
        if self.shuffle:
            generator = torch.Generator().manual_seed((self.seed + self.epoch) % 2**63)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        self.epoch += 1
        if self.world_size > 1:
            total = len(self) * self.world_size
            if total > n:
                order = torch.cat([order, order.repeat(math.ceil(total / n))[: total - n]])
            order = order[self.rank : total : self.world_size]
        return self.positions[order]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())


class InMemoryLoader:
    """Batches ``(images, labels)`` of one split, gathered from decoded tensors by indexing.

    ``images`` is uint8 ``(N, C, H, W)`` and ``labels`` int64 ``(N,)``, on the device the batches
    should be on. Images are converted to float and normalised with the same operations, in the
    same order, as ``ToTensor`` + ``Normalize(mean, std)``, so a batch equals the standard path's.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        sampler: EpochSampler,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        self.images = images
        self.labels = labels
        self.sampler = sampler  # Lightning finds .sampler.set_epoch and calls it every epoch
        self.batch_sampler = None  # as on a DataLoader with a sampler (Lightning looks)
        self.batch_size = batch_size
        self.mean = channel_tensor(mean, images.device)
        self.std = channel_tensor(std, images.device)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        # The order is drawn on the CPU (a seeded generator) and copied to the device once.
        positions = self.sampler.indices().to(self.images.device)
        return self.batches(positions)

    def batches(self, positions: torch.Tensor) -> Iterator[Batch]:
        """The batches of the samples at ``positions``, in that order."""
        for group in positions.split(self.batch_size * BATCHES_PER_GATHER):
            images = normalise(self.images.index_select(0, group), self.mean, self.std)
            labels = self.labels.index_select(0, group)
            batches = zip(images.split(self.batch_size), labels.split(self.batch_size), strict=True)
            yield from batches


class ResumableLoader(InMemoryLoader):
    """The training split's :class:`InMemoryLoader`, resumable inside an epoch: its state (the
    epoch and how many of its batches were trained) goes into every checkpoint, and a loader
    given that state starts the epoch's order at the next batch. Lightning calls
    ``state_dict`` when it saves and ``load_state_dict`` before it iterates a resumed epoch.

    Every iteration draws the order of the epoch the fit loop is in (``epoch()``), however
    often Lightning starts iterating: it makes one iterator to check the loader before the
    first epoch, and sets the sampler's epoch only after the epoch's iterator exists.
    """

    def __init__(
        self, *args: Any, trained: Callable[[], int], epoch: Callable[[], int], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._trained = trained  # batches of the current epoch trained so far
        self._epoch_in_progress = epoch
        self._epoch = self.sampler.epoch
        self._skip = 0
        self._loaded = False

    def __iter__(self) -> Iterator[Batch]:
        if not self._loaded:
            self.sampler.set_epoch(self._epoch_in_progress())
        self._loaded = False
        self._epoch = self.sampler.epoch
        skip, self._skip = self._skip, 0
        positions = self.sampler.indices()[skip * self.batch_size :]
        return self.batches(positions.to(self.images.device))

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "batches": self._trained()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._loaded = True
        self.sampler.set_epoch(int(state["epoch"]))
        self._skip = int(state["batches"])
        if self._skip >= len(self):  # stopped after the epoch's last batch
            self.sampler.set_epoch(int(state["epoch"]) + 1)
            self._skip = 0


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` to float32, normalised with per-channel ``mean`` and ``std``
    of shape ``(C, 1, 1)``: the operations ``ToTensor`` + ``Normalize`` apply, in their order."""
    return images.to(torch.float32).div_(255).sub_(mean).div_(std)


def channel_tensor(values: Sequence[float], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device).view(-1, 1, 1)


def decoded_tensors(
    dataset: Any, input_shape: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A torchvision dataset's decoded images as uint8 ``(N, C, H, W)`` and its labels as int64,
    from the arrays its loader keeps (``data`` and ``targets`` or ``labels``: MNIST's family keeps
    ``(N, H, W)`` tensors, CIFAR ``(N, H, W, C)`` arrays); None where it keeps none that fit."""
    data = getattr(dataset, "data", None)
    targets = getattr(dataset, "targets", getattr(dataset, "labels", None))
    if data is None or targets is None:
        return None
    try:
        images = torch.as_tensor(data)
        labels = torch.as_tensor(targets, dtype=torch.int64)
    except (TypeError, ValueError, RuntimeError):
        return None
    c, h, w = input_shape
    shape = tuple(images.shape[1:])
    if images.dtype != torch.uint8 or labels.ndim != 1 or len(labels) != len(images):
        return None
    if images.ndim == 3 and c == 1 and shape == (h, w):
        images = images.unsqueeze(1)
    elif images.ndim == 4 and shape == (h, w, c):
        images = images.permute(0, 3, 1, 2)
    elif not (images.ndim == 4 and shape == (c, h, w)):
        return None
    return images.contiguous(), labels


def disagreement(
    dataset: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
) -> str | None:
    """Why the decoded tensors do not give what the dataset's own ``__getitem__`` gives (checked
    on its first and last sample), or None where they agree."""
    mean_tensor = channel_tensor(mean, images.device)
    std_tensor = channel_tensor(std, images.device)
    for i in sorted({0, len(labels) - 1}):
        try:
            expected_image, expected_label = dataset[i]
            same_label = int(expected_label) == int(labels[i])
        except (TypeError, ValueError, RuntimeError) as error:
            return f"sample {i} does not decode to an (image tensor, class index) pair: {error}"
        image = normalise(images[i : i + 1], mean_tensor, std_tensor)[0]
        if (
            not isinstance(expected_image, torch.Tensor)
            or expected_image.shape != image.shape
            or not torch.allclose(expected_image, image, rtol=0, atol=1e-6)
        ):
            return f"its decoded array does not match what it returns for sample {i}"
        if not same_label:
            return f"its labels array does not match the label it returns for sample {i}"
    return None
