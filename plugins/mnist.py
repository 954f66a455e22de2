"""MNIST, through torchvision's own loader: ToTensor + Normalize, batches of 64.

By default batches come from the in-memory fast path of :class:`zoo.data.VisionDataModule`
(decoded once, gathered by tensor indexing); ``mnist:fast=False`` uses the standard DataLoader.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import zoo

if TYPE_CHECKING:
    from zoo.data import VisionDataModule

MEAN = (0.1307,)  # the pixel mean and std of the 60,000 training images, scaled to [0, 1]
STD = (0.3081,)
RAW_FILES = (
    "MNIST/raw/train-images-idx3-ubyte",
    "MNIST/raw/train-labels-idx1-ubyte",
    "MNIST/raw/t10k-images-idx3-ubyte",
    "MNIST/raw/t10k-labels-idx1-ubyte",
)


def mnist(
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    val_size: int = 5000,
    split_seed: int = 0,
    num_workers: int = 0,
    download: bool = True,
    fast: bool | None = None,
) -> VisionDataModule:
    """MNIST digits: 60,000 training images split 55,000/5,000 (seeded) and 10,000 test images.

    ``fast``: None uses the in-memory fast path unless ``num_workers > 0``; False always uses the
    standard DataLoader; True requires the fast path."""
    from torchvision.datasets import MNIST

    from zoo.data import VisionDataModule

    return VisionDataModule(
        MNIST,
        name="mnist",
        data_dir=data_dir,
        batch_size=batch_size,
        input_shape=(1, 28, 28),
        class_names=[str(digit) for digit in range(10)],
        mean=MEAN,
        std=STD,
        expected_files=RAW_FILES,
        source="https://yann.lecun.com/exdb/mnist/ or any MNIST mirror, gunzipped",
        val_size=val_size,
        split_seed=split_seed,
        num_workers=num_workers,
        download=download,
        fast=fast,
    )


@zoo.hookimpl
def register_datasets(register: zoo.Register) -> None:
    register("mnist", mnist, summary="MNIST handwritten digits, 1x28x28, 10 classes (torchvision)")
