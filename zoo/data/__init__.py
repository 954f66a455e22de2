"""Data: the dataset plugins' base classes (datamodule, vision), the in-memory loaders (loaders),
the batch format (batches), checks of files (files) and what zoo runs of a dataset plugin
(checks)."""

from zoo.data.datamodule import ClassificationDataModule
from zoo.data.vision import VisionDataModule

__all__ = ["ClassificationDataModule", "VisionDataModule"]
