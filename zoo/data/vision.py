""":class:`VisionDataModule`, the datamodule of torchvision-style dataset classes (MNIST,
FashionMNIST, KMNIST, CIFAR10, ...): a :class:`~zoo.data.ClassificationDataModule` with loaders of
its own, and errors that name missing and damaged files.

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

import os
import socket
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset, random_split
from torchvision import transforms

from zoo._compat.lightning import batches_trained_in_epoch, epoch_in_progress
from zoo.data.datamodule import ClassificationDataModule
from zoo.data.files import describe_label_problem, label_problem, missing_data_error
from zoo.data.loaders import (
    EpochSampler,
    InMemoryLoader,
    ResumableLoader,
    decoded_tensors,
    disagreement,
)
from zoo.errors import CorruptDataError, ZooError, ZooUsageError

#: Seconds a download may stall before we give up and explain how to supply the files.
DOWNLOAD_TIMEOUT = 20.0

# ClassificationDataModule is importable from here too: plugins written before the split do so.
__all__ = ["ClassificationDataModule", "VisionDataModule"]


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
            raise missing_data_error(self, error) from error
        finally:
            socket.setdefaulttimeout(previous_timeout)

    def _load(self, train: bool) -> Dataset[Any]:
        """The dataset of one split, read from disk; a failure names the data and the fix."""
        try:
            dataset = self._dataset(train=train)
        except ZooError:
            raise
        except Exception as error:  # the files changed or became unreadable since prepare_data
            raise missing_data_error(self, error) from error
        split = "train" if train else "test"
        if (problem := label_problem(dataset, self.num_classes)) is not None:
            raise CorruptDataError(
                f"{self.name} data in {self.data_dir} is damaged: "
                f"{describe_label_problem(self, split, problem, self.num_classes)}.\n"
                f"To fix: replace the damaged file with a good copy (from {self.source}), or "
                f"delete it so that it is downloaded again."
            )
        return dataset

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
            reason = disagreement(dataset, *decoded, self.mean, self.std)
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
        return self._data_loader(dataset, shuffle, collate_fn=None)  # ToTensor did the rest

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
