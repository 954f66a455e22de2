"""The base class of dataset plugins, :class:`ClassificationDataModule`: what zoo reads of a
dataset (its declarations), and default dataloaders over the datasets a subclass writes, their
first batches checked.

This module imports torch and Lightning; dataset plugins import it inside their factories so that
loading the plugin stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from zoo.data.batches import BatchCollator, check_batch
from zoo.errors import ZooUsageError
from zoo.paths import resolve_data_dir


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
        return self._data_loader(dataset, shuffle, BatchCollator(self.mean, self.std))

    def _data_loader(
        self, dataset: Dataset[Any], shuffle: bool, collate_fn: Callable[[list[Any]], Any] | None
    ) -> DataLoader[Any]:
        """A DataLoader with this datamodule's batch size and workers (pinned memory for a
        GPU); ``collate_fn`` None is torch's default collation."""
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=on_gpu,
            collate_fn=collate_fn,
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
