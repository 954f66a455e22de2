"""The datamodules of classification datasets: :class:`ClassificationDataModule`, the base class
of dataset plugins (what zoo reads of a dataset, loaders over the datasets a subclass writes),
and :class:`VisionDataModule` for torchvision-style dataset classes; and what the core runs of a
dataset plugin (:func:`check_datamodule`, :func:`load_data`, :func:`checked_batches`), each
failure named with the dataset's plugin.

``VisionDataModule`` delivers batches in two ways, the same tensors either way:

* the **in-memory fast path** (the default where it applies): each split is decoded once, by
  torchvision's own dataset class, into one uint8 tensor; a batch is gathered by tensor indexing
  and converted to float and normalised exactly as ``ToTensor`` + ``Normalize`` do it. On a GPU
  the uint8 tensor is copied to the device once, so batches never cross the bus.
* the **standard path**: a ``torch.utils.data.DataLoader`` over the torchvision dataset, one PIL
  image per sample. It is used with ``fast=False``, with ``num_workers > 0``, with training
  transforms (augmentation needs a PIL image per sample) and for datasets that expose no decoded
  arrays.

This module imports torch and Lightning; dataset plugins import it inside their factories so that
loading the plugin stays cheap.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate, random_split
from torchvision import transforms

from zoo._compat.lightning import batches_trained_in_epoch, epoch_in_progress
from zoo.errors import (
    CorruptDataError,
    DataNotFoundError,
    PluginError,
    PluginFailure,
    ZooError,
    ZooUsageError,
    component_label,
)
from zoo.paths import resolve_data_dir
from zoo.plugin.loading import plugin_of

#: Seconds a download may stall before we give up and explain how to supply the files.
DOWNLOAD_TIMEOUT = 20.0

Batch = tuple[torch.Tensor, torch.Tensor]

#: The fast path gathers and normalises this many batches at a time and hands them out as views:
#: one set of tensor operations per group of batches rather than per batch.
BATCHES_PER_GATHER = 16

#: The splits whose datasets each Lightning stage reads.
STAGE_SPLITS: dict[str, tuple[str, ...]] = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": (),
}
#: Where the dataset contract is written down, for messages.
CONTRACT = "docs/plugins.md#datasets"


class ClassificationDataModule(L.LightningDataModule):
    """The base class of a dataset plugin's datamodule: what zoo reads of a dataset, and
    dataloaders over the datasets a subclass provides.

    **Declare** (as class attributes, or in ``__init__``: zoo reads them before any data loads):

    * ``input_shape``: ``(C, H, W)`` of one image;
    * ``class_names``: one name per class, in label order; ``num_classes`` is their number;
    * ``mean`` and ``std``: the per-channel normalisation, on the ``ToTensor`` scale (0 to 1), as
      ``torchvision.transforms.Normalize`` takes it. ``zoo predict`` scales an image file to 0..1
      and normalises it with them. ``None`` (the default) means no normalisation: batches are
      not normalised, and ``zoo predict`` feeds images as they are (and warns).

    **Factory arguments.** Register the subclass itself (or a function returning one) as the
    factory. zoo always passes ``data_dir`` (``None`` means ``$ZOO_DATA_DIR``, else the cache
    directory: ``self.data_dir`` is the resolved :class:`~pathlib.Path`) and ``batch_size``, and
    ``num_workers`` only when the user sets ``--num-workers``: keep the argument to support that
    option. Further ``__init__`` arguments are the spec's (``mine:val_size=100``).

    **Data.** Implement ``train_dataset()``, ``val_dataset()`` and ``test_dataset()``: map-style
    datasets of ``(image, label)`` pairs, ``image`` a ``(C, H, W)`` tensor, float on the ToTensor
    scale or uint8 (divided by 255), ``label`` an int or integer tensor. Each is asked for once
    and kept; the default dataloaders batch it (``batch_size``, ``num_workers``, the training
    split shuffled), make the labels int64 and normalise the images with ``mean`` and ``std``.
    ``prepare_data()`` (download; once per machine) and ``setup(stage)`` (load what the datasets
    share; in every process, maybe more than once) are optional, as in Lightning. Or override
    the ``*_dataloader()`` methods instead; their batches must be ``(images, labels)``: images
    float ``(N, C, H, W)``, normalised as ``mean`` and ``std`` say, labels int64 ``N`` in
    ``0..num_classes-1``. The first batch of each stage is checked against that format.
    """

    input_shape: tuple[int, int, int]
    class_names: Sequence[str]
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    #: How messages name this dataset; zoo sets it to the component and its plugin.
    label: str | None = None

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ZooUsageError(f"batch size must be at least 1, got {batch_size}")
        if num_workers < 0:
            raise ZooUsageError(
                f"{type(self).__name__}: num_workers must be 0 or more, got {num_workers}"
            )
        self.data_dir = resolve_data_dir(data_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self._datasets: dict[str, Dataset[Any]] = {}
        self._checked_stages: set[str] = set()

    @property
    def num_classes(self) -> int:
        """The number of classes: ``len(class_names)``."""
        return len(self.class_names)

    def train_dataset(self) -> Dataset[Any]:
        """The training split: ``(image, label)`` pairs (see the class docstring)."""
        raise NotImplementedError(f"{type(self).__name__} implements no train_dataset()")

    def val_dataset(self) -> Dataset[Any]:
        """The validation split, which picks the best checkpoint."""
        raise NotImplementedError(f"{type(self).__name__} implements no val_dataset()")

    def test_dataset(self) -> Dataset[Any]:
        """The test split, evaluated once after training and by ``zoo evaluate``."""
        raise NotImplementedError(f"{type(self).__name__} implements no test_dataset()")

    def dataset(self, split: str) -> Dataset[Any]:
        """The dataset of ``split`` (``train``, ``val`` or ``test``) from its hook, made once."""
        if split not in self._datasets:
            self._datasets[split] = getattr(self, f"{split}_dataset")()
        return self._datasets[split]

    def uses_dataset_hook(self, split: str) -> bool:
        """Whether ``split``'s dataloader is the default one, over ``<split>_dataset()``."""
        name = f"{split}_dataloader"
        return getattr(type(self), name) is getattr(ClassificationDataModule, name)

    def dataloader(self, dataset: Dataset[Any], *, shuffle: bool) -> DataLoader[Any]:
        """A DataLoader of batches in zoo's format over ``(image, label)`` pairs."""
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=on_gpu,
            collate_fn=BatchCollator(self.mean, self.std),
        )

    def train_dataloader(self) -> Any:
        return self.dataloader(self.dataset("train"), shuffle=True)

    def val_dataloader(self) -> Any:
        return self.dataloader(self.dataset("val"), shuffle=False)

    def test_dataloader(self) -> Any:
        return self.dataloader(self.dataset("test"), shuffle=False)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Check the first batch of each stage against the batch format."""
        stage = str(self.trainer.state.stage) if self.trainer is not None else ""
        if stage not in self._checked_stages:
            check_batch(batch, self, self.label or f"dataset {self.name or type(self).__name__!r}")
            self._checked_stages.add(stage)
        return batch


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
        return f"a batch must be a pair (images, labels), got {_what(batch)}"
    images, labels = batch
    shape = (*map(int, input_shape),)
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        return f"images must be a float tensor (N, C, H, W), got {_what(images)}"
    if images.ndim != 4 or tuple(images.shape[1:]) != shape:
        return f"images must be of shape (N, *input_shape) = (N, *{shape}), got {_what(images)}"
    n = len(images)
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (n,):
        return f"labels must be an int64 tensor of shape ({n},), got {_what(labels)}"
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


def _what(value: Any) -> str:
    """A value as messages describe it: a tensor by its dtype and shape, else by its type."""
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__


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
        self.mean = _channel_tensor(mean, images.device)
        self.std = _channel_tensor(std, images.device)

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


def _channel_tensor(values: Sequence[float], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device).view(-1, 1, 1)


class VisionDataModule(ClassificationDataModule):
    """Train/val/test loaders over a torchvision dataset class with ``root``, ``train``,
    ``transform`` and ``download`` arguments (MNIST, FashionMNIST, KMNIST, CIFAR10, …): a
    :class:`ClassificationDataModule` that makes its own dataloaders.

    The validation split is a seeded random subset of the training split; the test split is the
    dataset's own. Images go through ``ToTensor`` and ``Normalize(mean, std)``; ``train_transforms``
    (e.g. augmentation) go before them, on the training split only.

    ``fast`` picks how batches are made: ``None`` (default) uses the in-memory fast path where it
    applies and the standard DataLoader otherwise; ``True`` requires the fast path; ``False``
    always uses the DataLoader. See the module docstring.
    """

    def __init__(
        self,
        dataset_class: Callable[..., Dataset[Any]],
        *,
        name: str,
        data_dir: str | os.PathLike[str] | None,
        batch_size: int,
        input_shape: tuple[int, int, int],
        class_names: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        expected_files: Sequence[str],
        source: str,
        val_size: int = 5000,
        split_seed: int = 0,
        num_workers: int = 0,
        download: bool = True,
        dataset_kwargs: dict[str, Any] | None = None,
        fast: bool | None = None,
        train_transforms: Sequence[Callable[[Any], Any]] = (),
    ) -> None:
        if batch_size < 1:
            raise ZooUsageError(f"batch size must be at least 1, got {batch_size}")
        if val_size < 1:
            raise ZooUsageError(f"{name}: val_size must be at least 1, got {val_size}")
        if num_workers < 0:
            raise ZooUsageError(f"{name}: num_workers must be 0 or more, got {num_workers}")
        if fast and num_workers > 0:
            raise ZooUsageError(
                f"{name}: the in-memory fast path makes batches in the training process; "
                f"num_workers={num_workers} applies to the standard path (fast=False)"
            )
        if fast and train_transforms:
            raise ZooUsageError(
                f"{name}: training transforms need a PIL image per sample, which the in-memory "
                f"fast path does not make; use the standard path (fast=False)"
            )
        super().__init__(data_dir=data_dir, batch_size=batch_size, num_workers=num_workers)
        self.dataset_class = dataset_class
        self.name = name
        self.input_shape = tuple(input_shape)  # type: ignore[assignment]
        self.class_names = list(class_names)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.expected_files = tuple(expected_files)
        self.source = source
        self.val_size = val_size
        self.split_seed = split_seed
        self.download = download
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.fast = fast
        self.train_transforms = tuple(train_transforms)
        self.transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]
        )
        #: Decoded uint8 images and int64 labels per split ("train", "test"), where the fast
        #: path serves that split; filled by setup().
        self.decoded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._on_device: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def in_memory(self) -> bool:
        """Whether the splits set up so far are all served by the in-memory fast path."""
        splits = [("train", "train_set"), ("test", "test_set")]
        return (
            bool(self.decoded)
            and not self.train_transforms
            and all(split in self.decoded for split, name in splits if hasattr(self, name))
        )

    def _dataset(
        self, train: bool, download: bool = False, transform: Callable[[Any], Any] | None = None
    ) -> Dataset[Any]:
        return self.dataset_class(
            root=str(self.data_dir),
            train=train,
            transform=transform or self.transform,
            download=download,
            **self.dataset_kwargs,
        )

    def prepare_data(self) -> None:
        """Download the files if they are missing; explain how to supply them if that fails."""
        previous_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
        try:
            for train in (True, False):
                self._dataset(train, download=self.download)
        except Exception as error:  # torchvision raises RuntimeError, URLError, OSError, ...
            raise self._missing(error) from error
        finally:
            socket.setdefaulttimeout(previous_timeout)

    def _missing(self, error: Exception) -> DataNotFoundError | CorruptDataError:
        if (locked := self._unreadable_directory()) is not None:
            directory, reason = locked
            return DataNotFoundError(
                f"{self.name} data in {self.data_dir} cannot be read: the directory "
                f"{directory} cannot be listed ({reason}).\n"
                f"To fix: make it readable (chmod u+rx {directory}), or point --data-dir or "
                f"ZOO_DATA_DIR at a directory you can read."
            )
        present = [self.data_dir / f for f in self.expected_files if _exists(self.data_dir / f)]
        if self.expected_files and len(present) == len(self.expected_files):
            damaged = [f"  {path}: {why}" for path in present if (why := idx_problem(path))]
            found = "\n".join(damaged) or f"  ({type(error).__name__}: {_last_line(error)})"
            return CorruptDataError(
                f"{self.name} data in {self.data_dir} cannot be read:\n{found}\n"
                f"To fix: delete the damaged files so they are downloaded again, or copy good "
                f"ones there (from {self.source})."
            )
        files = "\n".join(f"  {self.data_dir / f}" for f in self.expected_files)
        how = "downloading them failed" if self.download else "downloads are off"
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        return DataNotFoundError(
            f"{self.name} data not found in {self.data_dir}, and {how} "
            f"({type(error).__name__}: {detail})."
            f"\nExpected files:\n{files}\n"
            f"To fix: copy these files there (from {self.source}), or point --data-dir or "
            f"ZOO_DATA_DIR at a directory that has them, or rerun with network access."
        )

    def _unreadable_directory(self) -> tuple[Path, str] | None:
        """The first directory on the way to an expected file that cannot be listed, and why."""
        directories = {self.data_dir}
        for name in self.expected_files:
            directories.update(parent for parent in (self.data_dir / name).parents)
        for directory in sorted(d for d in directories if d.is_relative_to(self.data_dir)):
            try:
                os.listdir(directory)
            except FileNotFoundError:
                continue
            except OSError as error:
                return directory, error.strerror or type(error).__name__
        return None

    def _load(self, train: bool) -> Dataset[Any]:
        """The dataset of one split, read from disk; a failure names the data and the fix."""
        try:
            dataset = self._dataset(train=train)
        except ZooError:
            raise
        except Exception as error:  # the files changed or became unreadable since prepare_data
            raise self._missing(error) from error
        split = "train" if train else "test"
        if (problem := label_problem(dataset, self.num_classes)) is not None:
            raise CorruptDataError(
                f"{self.name} data in {self.data_dir} is damaged: "
                f"{self._describe(split, problem)}.\n"
                f"To fix: replace the damaged file with a good copy (from {self.source}), or "
                f"delete it so that it is downloaded again."
            )
        return dataset

    def _describe(self, split: str, problem: LabelProblem) -> str:
        """``problem`` in words, naming the split's label (and image) files where known."""
        labels = self._split_file(split, "labels")
        images = self._split_file(split, "images")
        where = f"{labels}: " if labels else f"the {split} split: "
        if problem.index is None:
            image_file = f"{images} holds " if images else ""
            label_file = f"{labels} holds " if labels else ""
            return (
                f"{image_file}{problem.images} images but {label_file}{problem.labels} labels "
                f"(the {split} split needs one label per image)"
            )
        return (
            f"{where}label {problem.label} at index {problem.index} is outside "
            f"0..{self.num_classes - 1} ({self.name} has {self.num_classes} classes; "
            f"{problem.count} label{'s are' if problem.count != 1 else ' is'} out of range)"
        )

    def _split_file(self, split: str, kind: str) -> Path | None:
        """The expected IDX-style file of ``split`` ("train"/"test") holding ``kind``
        ("labels"/"images"), e.g. ``MNIST/raw/t10k-labels-idx1-ubyte``; None if unclear."""
        split_tokens = {"train"} if split == "train" else {"t10k", "test"}
        matches = [
            name
            for name in self.expected_files
            if kind in (tokens := set(re.split(r"[-_.]", Path(name).name)))
            and tokens & split_tokens
        ]
        return self.data_dir / matches[0] if len(matches) == 1 else None

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and not hasattr(self, "train_set"):
            full = self._load(train=True)
            size = len(full)  # type: ignore[arg-type]
            if self.val_size >= size:
                raise ZooUsageError(
                    f"{self.name}: val_size={self.val_size} leaves no training data "
                    f"(the training split has {size} samples)"
                )
            generator = torch.Generator().manual_seed(self.split_seed)
            self.train_set, self.val_set = random_split(
                full, [size - self.val_size, self.val_size], generator=generator
            )
            if self.train_transforms:
                augmented = self._dataset(
                    train=True,
                    transform=transforms.Compose([*self.train_transforms, self.transform]),
                )
                self.train_set = Subset(augmented, self.train_set.indices)
            self._decode("train", full)
        if stage in ("test", "predict", None) and not hasattr(self, "test_set"):
            self.test_set = self._load(train=False)
            self._decode("test", self.test_set)

    def _decode(self, split: str, dataset: Dataset[Any]) -> None:
        """Keep ``dataset``'s decoded tensors in ``self.decoded`` if the fast path serves it."""
        if self.fast is False or self.num_workers > 0:
            return
        decoded = decoded_tensors(dataset, self.input_shape)
        reason = "it exposes no decoded uint8 image array and labels"
        if decoded is not None:
            reason = _disagreement(dataset, *decoded, self.mean, self.std)
            if reason is None:
                self.decoded[split] = decoded
                return
            if self.fast is None:
                warnings.warn(
                    f"{self.name}: the in-memory fast path is off for the {split} split because "
                    f"{reason}; using the standard DataLoader path",
                    stacklevel=3,
                )
        if self.fast:
            raise ZooUsageError(
                f"{self.name}: fast=True, but the {split} split cannot be served in memory: "
                f"{reason}. Use fast=False."
            )

    def _in_memory_loader(
        self, split: str, positions: torch.Tensor, shuffle: bool
    ) -> InMemoryLoader:
        trainer = self.trainer
        rank, world_size, device = 0, 1, torch.device("cpu")
        seed = torch.initial_seed()  # the global seed: lightning.seed_everything sets it
        if trainer is not None:
            rank, world_size = trainer.global_rank, trainer.world_size
            device = trainer.strategy.root_device
            if shuffle and world_size > 1:
                # Every rank must draw the same permutation for the shards to be disjoint.
                seed = trainer.strategy.broadcast(seed)
        key = (split, str(device))
        if key not in self._on_device:  # once per device: the whole split, then index there
            images, labels = self.decoded[split]
            self._on_device[key] = (images.to(device), labels.to(device))
        images, labels = self._on_device[key]
        sampler = EpochSampler(
            positions, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size
        )
        if not (shuffle and trainer is not None):
            return InMemoryLoader(images, labels, sampler, self.batch_size, self.mean, self.std)
        return ResumableLoader(
            images, labels, sampler, self.batch_size, self.mean, self.std,
            trained=lambda: batches_trained_in_epoch(trainer),
            epoch=lambda: epoch_in_progress(trainer),
        )  # fmt: skip

    def _loader(self, dataset: Dataset[Any], shuffle: bool) -> DataLoader[Any]:
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=on_gpu,
        )

    def train_dataloader(self) -> InMemoryLoader | DataLoader[Any]:
        if "train" in self.decoded and not self.train_transforms:
            positions = torch.as_tensor(self.train_set.indices, dtype=torch.int64)
            return self._in_memory_loader("train", positions, shuffle=True)
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> InMemoryLoader | DataLoader[Any]:
        if "train" in self.decoded:
            positions = torch.as_tensor(self.val_set.indices, dtype=torch.int64)
            return self._in_memory_loader("train", positions, shuffle=False)
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> InMemoryLoader | DataLoader[Any]:
        if "test" in self.decoded:
            positions = torch.arange(len(self.decoded["test"][1]))
            return self._in_memory_loader("test", positions, shuffle=False)
        return self._loader(self.test_set, shuffle=False)


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


def _disagreement(
    dataset: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
) -> str | None:
    """Why the decoded tensors do not give what the dataset's own ``__getitem__`` gives (checked
    on its first and last sample), or None where they agree."""
    mean_tensor = _channel_tensor(mean, images.device)
    std_tensor = _channel_tensor(std, images.device)
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


@dataclass(frozen=True)
class LabelProblem:
    """What is wrong with a split's labels: a label out of range (its ``index``, ``label`` and
    the ``count`` of such labels), or ``images`` and ``labels`` counts that differ
    (``index`` None)."""

    images: int
    labels: int
    index: int | None = None
    label: int | None = None
    count: int = 0


def label_problem(dataset: Any, num_classes: int) -> LabelProblem | None:
    """What is wrong with the decoded labels of a torchvision dataset (its ``targets`` or
    ``labels``, checked against ``data``), or None if each image has one label in
    ``[0, num_classes)`` or the dataset keeps no such arrays. One pass over the label tensor."""
    data = getattr(dataset, "data", None)
    targets = getattr(dataset, "targets", getattr(dataset, "labels", None))
    if targets is None:
        return None
    try:
        labels = torch.as_tensor(targets).to(torch.int64)
        images = len(data) if data is not None else len(labels)
    except (TypeError, ValueError, RuntimeError):
        return None
    if labels.ndim != 1:  # not one class index per image: not a dataset this module serves
        return None
    if images != len(labels):
        return LabelProblem(images=images, labels=len(labels))
    bad = ((labels < 0) | (labels >= num_classes)).nonzero().reshape(-1)
    if len(bad):
        index = int(bad[0])
        label = int(labels[index])
        return LabelProblem(images, len(labels), index=index, label=label, count=len(bad))
    return None


def _exists(path: Path) -> bool:
    """``path.exists()``, False where it cannot be looked at (an unreadable directory)."""
    try:
        return path.exists()
    except OSError:
        return False


def _last_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else ""


def idx_problem(path: os.PathLike[str] | str) -> str | None:
    """What is wrong with an IDX file (MNIST's format), or None if its size fits its header.

    Only files named like IDX files (``*-ubyte``) are checked."""
    path = Path(path)
    if not path.name.endswith("-ubyte"):
        return None
    try:
        with open(path, "rb") as file:
            header = file.read(4)
            if len(header) < 4 or header[:2] != b"\0\0" or header[2] != 0x08:
                return "not an IDX file of unsigned bytes (bad magic number)"
            dims = file.read(4 * header[3])
        size = path.stat().st_size
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if len(dims) < 4 * header[3]:
        return f"truncated inside its header ({size} bytes)"
    shape = [int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4)]
    expected = 4 + len(dims) + math.prod(shape)
    if size != expected:
        return f"{size} bytes, but its header ({'x'.join(map(str, shape))}) needs {expected}"
    return None


# -- what the core runs of a dataset plugin -----------------------------------------------------


@contextlib.contextmanager
def plugin_code(component: Any, action: str) -> Iterator[None]:
    """Run code of ``component``'s plugin: an exception other than a :class:`ZooError` (which
    passes unchanged, as do KeyboardInterrupt and SystemExit) becomes a :class:`PluginFailure`
    naming the component, its plugin and distribution, ``action`` and the exception."""
    try:
        yield
    except ZooError:
        raise
    except Exception as error:
        raise PluginFailure(component, action, error, plugin_of(component)) from error


def dataset_arguments(component: Any, num_workers: int | None) -> dict[str, Any]:
    """The arguments zoo adds to a dataset's spec: ``num_workers`` when the user set
    ``--num-workers`` (None: not set, nothing added). A usage error if the factory takes none."""
    if num_workers is None:
        return {}
    parameters = component.parameters()
    if "num_workers" not in parameters and not any(
        p.kind is p.VAR_KEYWORD for p in parameters.values()
    ):
        try:
            inspect.signature(component.factory)
        except (TypeError, ValueError):
            return {"num_workers": num_workers}  # no signature to go by: the call will tell
        raise ZooUsageError(
            f"{component_label(component, plugin_of(component))} takes no --num-workers: its "
            f"factory has no num_workers argument. Leave --num-workers out."
        )
    return {"num_workers": num_workers}


def check_datamodule(datamodule: Any, component: Any) -> None:
    """Raise :class:`PluginError` naming the dataset and its plugin if what its factory returned
    does not declare what zoo reads before any data loads (input_shape, class_names, mean and
    std) or, for a :class:`ClassificationDataModule`, lacks a split."""
    label = component_label(component, plugin_of(component))
    problem = _declaration_problem(datamodule)
    if problem is None and isinstance(datamodule, ClassificationDataModule):
        datamodule.label = label
        missing = [
            split
            for split in ("train", "val", "test")
            if datamodule.uses_dataset_hook(split)
            and getattr(type(datamodule), f"{split}_dataset")
            is getattr(ClassificationDataModule, f"{split}_dataset")
        ]
        if missing:
            problem = f"it implements neither {missing[0]}_dataset() nor {missing[0]}_dataloader()"
    if problem is not None:
        raise PluginError(f"{label} breaks the dataset contract: {problem} (see {CONTRACT})")


def _declaration_problem(datamodule: Any) -> str | None:
    """What is wrong with a datamodule's declarations, or None."""
    if not isinstance(datamodule, L.LightningDataModule):
        return f"its factory returned {_what(datamodule)}, not a lightning.LightningDataModule"
    try:
        shape, classes = datamodule.input_shape, datamodule.num_classes
        names = datamodule.class_names
    except AttributeError as error:
        return f"it does not declare {error.name or 'input_shape, class_names'}"
    if not _ints(shape, 3, 1):
        return f"input_shape must be (C, H, W), three positive ints, got {shape!r}"
    if not isinstance(names, Sequence) or not _ints((classes,), 1, 1) or len(names) != classes:
        return f"class_names must be a sequence of one name per class, got {names!r}"
    mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
    if (mean is None) != (std is None):
        return "declare both mean and std, or neither (None: no normalisation)"
    for what, values in (("mean", mean), ("std", std)):
        if values is None:
            continue
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) not in (1, shape[0]) or not all(map(math.isfinite, numbers)):
            return (
                f"{what} must be one finite number per channel ({shape[0]}), or one for all, "
                f"got {values!r}"
            )
    if std is not None and not all(float(s) > 0 for s in std):
        return f"std must be above 0 in every channel, got {std!r}"
    return None


def _ints(values: Any, count: int, low: int) -> bool:
    return (
        isinstance(values, Sequence)
        and len(values) == count
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values)
    )


def load_data(datamodule: Any, component: Any, stage: str) -> None:
    """What zoo runs of a datamodule before it trains (``stage`` "fit") or evaluates ("test",
    "fit" for the validation split): ``prepare_data()``, ``setup(stage)`` and, where the
    default dataloaders serve it, the stage's datasets. A failure names the dataset's plugin."""
    with plugin_code(component, "failed in prepare_data()"):
        datamodule.prepare_data()
    with plugin_code(component, f"failed in setup({stage!r})"):
        datamodule.setup(stage)
    if isinstance(datamodule, ClassificationDataModule):
        for split in STAGE_SPLITS.get(stage, ()):
            if datamodule.uses_dataset_hook(split):
                with plugin_code(component, f"failed in {split}_dataset()"):
                    datamodule.dataset(split)


def checked_batches(datamodule: Any, component: Any, split: str) -> Iterator[Any]:
    """The batches of ``split``'s dataloader (``test`` or ``val``), for zoo's own loops: the
    first checked against the batch format, a failure in the plugin's code named as such."""
    with plugin_code(component, f"failed in {split}_dataloader()"):
        iterator = iter(getattr(datamodule, f"{split}_dataloader")())
    label = component_label(component, plugin_of(component))
    first = True
    while True:
        with plugin_code(component, f"failed making a {split} batch"):
            batch = next(iterator, None)
        if batch is None:
            return
        if first:
            check_batch(batch, datamodule, label)
            first = False
        yield batch
