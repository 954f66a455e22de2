"""Data: the dataset plugins' base classes, the in-memory loaders, checks of files and batches."""

from zoo.data.vision import ClassificationDataModule, VisionDataModule

__all__ = ["ClassificationDataModule", "VisionDataModule"]
