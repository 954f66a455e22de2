"""MNIST, through torchvision's own loader: ToTensor + Normalize, batches of 64.

A row of the same kind as those of :mod:`zoo.plugins.datasets`, made by the same builder, in a
plugin of its own (``-p no:mnist`` blocks it alone). By default batches come from the in-memory
fast path of :class:`zoo.data.VisionDataModule`, a :class:`zoo.data.ClassificationDataModule`
(decoded once, gathered by tensor indexing); ``mnist:fast=False`` uses the standard DataLoader.
"""

from __future__ import annotations

import zoo
from zoo.plugins.datasets import TorchvisionDataset, dataset_factory, idx_files

MEAN = (0.1307,)  # the pixel mean and std of the 60,000 training images, scaled to [0, 1]
STD = (0.3081,)
RAW_FILES = idx_files("MNIST")

#: MNIST digits: 60,000 training images split 55,000/5,000 (seeded) and 10,000 test images.
MNIST = TorchvisionDataset(
    name="mnist",
    torchvision_class="MNIST",
    input_shape=(1, 28, 28),
    class_names=tuple(str(digit) for digit in range(10)),
    mean=MEAN,
    std=STD,
    expected_files=RAW_FILES,
    source="https://yann.lecun.com/exdb/mnist/ or any MNIST mirror, gunzipped",
    summary="MNIST handwritten digits, 1x28x28, 10 classes (torchvision)",
)

#: The factory: ``mnist(data_dir=None, batch_size=64, val_size=5000, split_seed=0,
#: num_workers=0, download=True, fast=None)``.
mnist = dataset_factory(MNIST)


@zoo.hookimpl
def register_datasets(register: zoo.Register) -> None:
    register(MNIST.name, mnist, summary=MNIST.summary, aliases=MNIST.aliases)
