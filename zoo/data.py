"""Data directories and a LightningDataModule for torchvision-style classification datasets.

This module imports torch and Lightning; dataset plugins import it inside their factories so that
loading the plugin stays cheap.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, random_split
from torchvision import transforms

from zoo.errors import DataNotFoundError, ZooUsageError
from zoo.paths import resolve_data_dir

#: Seconds a download may stall before we give up and explain how to supply the files.
DOWNLOAD_TIMEOUT = 20.0


class VisionDataModule(L.LightningDataModule):
    """Train/val/test loaders over a torchvision dataset class with ``root``, ``train``,
    ``transform`` and ``download`` arguments (MNIST, FashionMNIST, KMNIST, CIFAR10, …).

    The validation split is a seeded random subset of the training split; the test split is the
    dataset's own. Images go through ``ToTensor`` and ``Normalize(mean, std)``.
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
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ZooUsageError(f"batch size must be at least 1, got {batch_size}")
        if val_size < 1:
            raise ZooUsageError(f"{name}: val_size must be at least 1, got {val_size}")
        self.dataset_class = dataset_class
        self.name = name
        self.data_dir = resolve_data_dir(data_dir)
        self.batch_size = batch_size
        self.input_shape = tuple(input_shape)
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.expected_files = tuple(expected_files)
        self.source = source
        self.val_size = val_size
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.download = download
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]
        )

    def _dataset(self, train: bool, download: bool = False) -> Dataset[Any]:
        return self.dataset_class(
            root=str(self.data_dir),
            train=train,
            transform=self.transform,
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

    def _missing(self, error: Exception) -> DataNotFoundError:
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

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and not hasattr(self, "train_set"):
            full = self._dataset(train=True)
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
        if stage in ("test", "predict", None) and not hasattr(self, "test_set"):
            self.test_set = self._dataset(train=False)

    def _loader(self, dataset: Dataset[Any], shuffle: bool) -> DataLoader[Any]:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.test_set, shuffle=False)
