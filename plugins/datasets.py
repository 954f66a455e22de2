"""More datasets through torchvision's own classes: Fashion-MNIST, KMNIST, EMNIST and CIFAR-10.

Each is one row of :data:`DATASETS` (a :class:`TorchvisionDataset`), and one builder,
:func:`torchvision_datamodule`, makes the :class:`zoo.data.VisionDataModule` of any row (a
:class:`zoo.data.ClassificationDataModule`, as every dataset plugin's may be). Each
takes the arguments of ``mnist`` (``val_size``, ``split_seed``, ``num_workers``, ``download``,
and ``fast``: None uses the in-memory fast path of :class:`zoo.data.VisionDataModule` where it
applies); EMNIST also takes ``split``. Each row writes down the dataset's metadata: input shape,
class names, and the per-channel mean and standard deviation of its training images scaled to
[0, 1], with where each number came from. The test split is the dataset's own; the validation
split is a seeded random subset of the training images.
:func:`pixel_statistics` recomputes the statistics from the real files.

Fashion-MNIST also works offline on a Debian machine with the package ``dataset-fashion-mnist``:
when the data directory lacks its files, the package's gzipped files in ``DEBIAN_FASHION_MNIST``
are decompressed once into the zoo's cache directory, in torchvision's layout.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import shutil
import string
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import zoo
from zoo import cache_dir, resolve_data_dir

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from zoo.data import VisionDataModule

#: Where the Debian package ``dataset-fashion-mnist`` installs the gzipped IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

#: The four IDX files of every MNIST-format dataset, under ``<root>/<ClassName>/raw/``.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Romanised hiragana, as torchvision and the KMNIST paper name them.
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

EmnistSplit = Literal["byclass", "bymerge", "balanced", "letters", "digits", "mnist"]
_EMNIST_MERGED = set("cijklmopsuvwxyz")  # lower-case letters merged with their capitals
#: The classes of each EMNIST split, in label order (as torchvision.datasets.EMNIST has them).
#: ``letters`` labels run from 1 to 26, so its class 0 is an unused "N/A".
EMNIST_CLASSES: dict[str, tuple[str, ...]] = {
    "byclass": tuple(sorted(string.digits + string.ascii_letters)),
    "bymerge": tuple(sorted(set(string.digits + string.ascii_letters) - _EMNIST_MERGED)),
    "balanced": tuple(sorted(set(string.digits + string.ascii_letters) - _EMNIST_MERGED)),
    "letters": ("N/A", *string.ascii_lowercase),
    "digits": tuple(string.digits),
    "mnist": tuple(string.digits),
}

CIFAR10_FILES = tuple(
    f"cifar-10-batches-py/{name}"
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
)


def idx_files(folder: str) -> tuple[str, ...]:
    """The four IDX files of an MNIST-format dataset, as torchvision's ``folder`` class reads
    them: ``<folder>/raw/<name>``."""
    return tuple(f"{folder}/raw/{name}" for name in IDX_FILES)


def _emnist_files(split: str) -> tuple[str, ...]:
    return tuple(
        f"EMNIST/raw/emnist-{split}-{part}-{kind}-ubyte"
        for part in ("train", "test")
        for kind in ("images-idx3", "labels-idx1")
    )


@dataclasses.dataclass(frozen=True)
class TorchvisionDataset:
    """One dataset of a ``torchvision.datasets`` class: its name in zoo and its metadata."""

    name: str
    torchvision_class: str  # the class's name in torchvision.datasets, imported when built
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    expected_files: tuple[str, ...]
    source: str  # where to get the files, for the error when they are missing
    summary: str
    aliases: tuple[str, ...] = ()
    #: Read the Debian package's files (see :data:`DEBIAN_FASHION_MNIST`) where ``data_dir``
    #: lacks them: Fashion-MNIST.
    debian_fallback: bool = False
    #: Which dataset of the files, given to the class as ``split=``: EMNIST (see :func:`emnist`).
    split: str | None = None


# Statistics: per-channel mean and population standard deviation of the training split's pixels,
# scaled to [0, 1] (ToTensor), i.e. what pixel_statistics() returns, rounded to 4 places.
DATASETS: tuple[TorchvisionDataset, ...] = (
    TorchvisionDataset(
        name="fashion-mnist",
        torchvision_class="FashionMNIST",
        input_shape=(1, 28, 28),
        class_names=FASHION_MNIST_CLASSES,
        # Computed here with pixel_statistics() from the 60,000 training images of Debian's
        # dataset-fashion-mnist 0.0~git20200523 (mean 0.28604, std 0.35302).
        mean=(0.2860,),
        std=(0.3530,),
        expected_files=idx_files("FashionMNIST"),
        source="https://github.com/zalandoresearch/fashion-mnist, gunzipped; or install the "
        "Debian package dataset-fashion-mnist",
        summary="Fashion-MNIST clothing, 1x28x28, 10 classes (torchvision; offline from the "
        "Debian package dataset-fashion-mnist)",
        aliases=("fmnist",),
        debian_fallback=True,
    ),
    TorchvisionDataset(
        name="kmnist",
        torchvision_class="KMNIST",
        input_shape=(1, 28, 28),
        class_names=KMNIST_CLASSES,
        # The values published with KMNIST's training set and used throughout the literature
        # (KMNIST is not packaged anywhere we can reach offline, so not recomputed here).
        mean=(0.1918,),
        std=(0.3483,),
        expected_files=idx_files("KMNIST"),
        source="https://github.com/rois-codh/kmnist (the MNIST-format files), gunzipped",
        summary="Kuzushiji-MNIST cursive hiragana, 1x28x28, 10 classes (torchvision)",
    ),
    TorchvisionDataset(
        name="emnist",
        torchvision_class="EMNIST",
        input_shape=(1, 28, 28),
        class_names=EMNIST_CLASSES["balanced"],
        # The commonly published EMNIST statistics (balanced/byclass training images), used for
        # every split: all splits are drawn from the same NIST Special Database 19 images, and
        # their means differ in the third decimal. Not recomputed here (the 535 MB archive is not
        # reachable offline).
        mean=(0.1751,),
        std=(0.3332,),
        expected_files=_emnist_files("balanced"),
        source="https://www.nist.gov/itl/products-and-services/emnist-dataset (gzip.zip, "
        "its files gunzipped)",
        summary="EMNIST letters and digits, 1x28x28; split=balanced (47 classes), byclass, "
        "bymerge, letters, digits, mnist (torchvision)",
        split="balanced",
    ),
    TorchvisionDataset(
        name="cifar10",
        torchvision_class="CIFAR10",
        input_shape=(3, 32, 32),
        class_names=CIFAR10_CLASSES,
        # The standard CIFAR-10 statistics of the 50,000 training images (population std per
        # channel, not the often-quoted mean of per-image stds, 0.2023/0.1994/0.2010). Not
        # recomputed here.
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        expected_files=CIFAR10_FILES,
        source="https://www.cs.toronto.edu/~kriz/cifar.html (the python version, extracted)",
        summary="CIFAR-10 colour images, 3x32x32, 10 classes (torchvision)",
    ),
)

#: EMNIST's row, for :func:`emnist`, which fills in the chosen split.
_EMNIST = next(dataset for dataset in DATASETS if dataset.name == "emnist")


def torchvision_datamodule(
    dataset: TorchvisionDataset,
    /,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    val_size: int = 5000,
    split_seed: int = 0,
    num_workers: int = 0,
    download: bool = True,
    fast: bool | None = None,
) -> VisionDataModule:
    """The datamodule of one row of the table: its training images split ``val_size`` for
    validation (seeded by ``split_seed``) and the rest for training, and its own test images.

    ``fast``: None uses the in-memory fast path unless ``num_workers > 0``; False always uses the
    standard DataLoader; True requires the fast path."""
    from zoo.data import VisionDataModule

    root, dataset_class = _root_and_class(dataset, data_dir)
    name, dataset_kwargs = dataset.name, None
    if dataset.split is not None:
        name, dataset_kwargs = f"{dataset.name} ({dataset.split})", {"split": dataset.split}
    return VisionDataModule(
        dataset_class,
        name=name,
        data_dir=root,
        batch_size=batch_size,
        input_shape=dataset.input_shape,
        class_names=dataset.class_names,
        mean=dataset.mean,
        std=dataset.std,
        expected_files=dataset.expected_files,
        source=dataset.source,
        val_size=val_size,
        split_seed=split_seed,
        num_workers=num_workers,
        download=download,
        dataset_kwargs=dataset_kwargs,
        fast=fast,
    )


def _root_and_class(
    dataset: TorchvisionDataset, data_dir: str | os.PathLike[str] | None
) -> tuple[str | os.PathLike[str] | None, Any]:
    """Where the files are, and what reads them: the torchvision class over ``data_dir``; for
    Fashion-MNIST, when ``data_dir`` lacks the files and the Debian package is installed, its
    files decompressed into the zoo's cache directory."""
    import torchvision.datasets

    dataset_class: Any = getattr(torchvision.datasets, dataset.torchvision_class)
    if not dataset.debian_fallback:
        return data_dir, dataset_class
    root = resolve_data_dir(data_dir)
    if not _has_files(root, dataset.expected_files) and _debian_fashion_mnist_available():
        return cache_dir() / "data", fashion_mnist_from_debian
    return root, dataset_class


def emnist(
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    split: EmnistSplit = "balanced",
    val_size: int = 5000,
    split_seed: int = 0,
    num_workers: int = 0,
    download: bool = True,
    fast: bool | None = None,
) -> VisionDataModule:
    """EMNIST (NIST Special Database 19 in MNIST's format), 1x28x28, one of its splits: byclass
    (62 classes), bymerge and balanced (47), letters (26, labels 1-26), digits and mnist (10).

    As torchvision reads them, EMNIST's images are transposed relative to MNIST's; models learn
    them as they are.
    """
    chosen = dataclasses.replace(
        _EMNIST, class_names=EMNIST_CLASSES[split], expected_files=_emnist_files(split), split=split
    )
    return torchvision_datamodule(
        chosen, data_dir, batch_size, val_size, split_seed, num_workers, download, fast
    )


def dataset_factory(dataset: TorchvisionDataset) -> Callable[..., VisionDataModule]:
    """The factory zoo calls for one row: the builder with the row bound, taking the arguments of
    ``mnist``; for EMNIST, the one row with a ``split``, :func:`emnist`, which takes it too."""
    if dataset.split is not None:
        return emnist
    return functools.partial(torchvision_datamodule, dataset)


def _has_files(root: Path, files: Sequence[str]) -> bool:
    return all((root / name).is_file() for name in files)


def _debian_fashion_mnist_available() -> bool:
    return all((DEBIAN_FASHION_MNIST / f"{name}.gz").is_file() for name in IDX_FILES)


def fashion_mnist_from_debian(root: str, **kwargs: Any) -> Dataset[Any]:
    """torchvision's ``FashionMNIST`` over ``root``, after decompressing the Debian package's
    files into ``root/FashionMNIST/raw/`` where they are missing (never writing elsewhere)."""
    from torchvision.datasets import FashionMNIST

    raw = Path(root) / "FashionMNIST" / "raw"
    for name in IDX_FILES:
        target = raw / name
        if target.is_file():
            continue
        raw.mkdir(parents=True, exist_ok=True)
        # Decompress to a temporary file and rename it, so that a concurrent run never sees
        # half a file.
        descriptor, temporary = tempfile.mkstemp(dir=raw, prefix=f".{name}.")
        try:
            with (
                gzip.open(DEBIAN_FASHION_MNIST / f"{name}.gz", "rb") as source,
                os.fdopen(descriptor, "wb") as destination,
            ):
                shutil.copyfileobj(source, destination)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return FashionMNIST(root=root, **kwargs)


def pixel_statistics(dataset: Any, chunk: int = 10_000) -> tuple[tuple[float, ...], ...]:
    """``(mean, std)`` per channel of a torchvision dataset's raw images (its ``data``: uint8,
    ``(N, H, W)`` or ``(N, H, W, C)``), scaled to [0, 1]; the std is the population std. This is
    how the statistics above are defined."""
    import numpy as np

    data = np.asarray(dataset.data)
    if data.ndim == 3:
        data = data[..., None]
    channels = data.shape[-1]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    for start in range(0, len(data), chunk):
        pixels = data[start : start + chunk].reshape(-1, channels).astype(np.float64) / 255.0
        total += pixels.sum(axis=0)
        squares += (pixels**2).sum(axis=0)
    count = data.size // channels
    mean = total / count
    std = np.sqrt(squares / count - mean**2)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


@zoo.hookimpl
def register_datasets(register: zoo.Register) -> None:
    for dataset in DATASETS:
        register(
            dataset.name,
            dataset_factory(dataset),
            summary=dataset.summary,
            aliases=dataset.aliases,
        )
