"""Shared fixtures: real MNIST from $ZOO_DATA_DIR, real Fashion-MNIST from Debian's package, and
small MNIST-format data written by the tests.

Real-data tests skip when $ZOO_DATA_DIR has no MNIST (or Debian's dataset-fashion-mnist is not
installed), unless ZOO_REQUIRE_DATA=1 (as in CI), where they fail instead.
Running the ``zoo`` command: ``tests/cli_helpers.py``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# One torch thread in each test process and in each `zoo` it starts, unless the caller chose: the
# suite runs two workers on two cores, and more threads than cores only wait for each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")

#: The test files that take longest, longest first (measured with --durations; see
#: CONTRIBUTING.md): they start first, so that the two workers end together instead of one
#: waiting alone on a long file that started last. The rest keep their order, after these.
SLOW_FILES = (
    "tests/cli/test_bad_inputs.py",
    "tests/comparison/test_fused.py",
    "tests/cli/test_fault_matrix.py",
    "tests/training/test_checkpoints.py",
    "tests/runs/test_runs.py",
    "tests/comparison/test_compare.py",
    "tests/plugin/test_plugin_contract.py",
    "tests/cli/test_manage.py",
    "tests/plugins/test_augmentations.py",
    "tests/plugins/test_optimizers.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests of :data:`SLOW_FILES` first, in that order (with ``--dist loadfile`` and
    ``--no-loadscope-reorder``, xdist hands out files in this order)."""
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(autouse=True)
def _no_user_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep tests away from the user's cache and the current directory's ./runs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """Write uint8 images (N, H, W) in the IDX3 format MNIST uses (magic 2051, big-endian)."""
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """Write uint8 labels (N,) in the IDX1 format MNIST uses (magic 2049, big-endian)."""
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 28x28 images: class k is a bright bar in band k of the image, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 60, size=(n, 28, 28))
    for i, label in enumerate(labels):
        row = 1 + int(label) * 2 + int(rng.integers(0, 2))
        images[i, row : row + 3, 4:24] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def make_mnist_root(root: Path, n_train: int = 600, n_test: int = 200) -> Path:
    """A torchvision-style root with MNIST/raw/ holding the four IDX files."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    train_x, train_y = synthetic_digits(n_train, seed=1)
    test_x, test_y = synthetic_digits(n_test, seed=2)
    write_idx_images(raw / "train-images-idx3-ubyte", train_x)
    write_idx_labels(raw / "train-labels-idx1-ubyte", train_y)
    write_idx_images(raw / "t10k-images-idx3-ubyte", test_x)
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", test_y)
    return root


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MNIST-format data root (600 train, 200 test images) written by the test."""
    return make_mnist_root(tmp_path_factory.mktemp("tiny-mnist"))


@pytest.fixture(scope="session")
def real_mnist() -> Path:
    """The real MNIST root named by $ZOO_DATA_DIR."""
    root = os.environ.get("ZOO_DATA_DIR")
    missing = not root or not all((Path(root) / "MNIST" / "raw" / f).exists() for f in MNIST_FILES)
    if missing:
        message = f"real MNIST not found under ZOO_DATA_DIR={root!r} (MNIST/raw/{MNIST_FILES})"
        if os.environ.get("ZOO_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return Path(root)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def debian_fashion_mnist() -> Path:
    """The real Fashion-MNIST of the Debian package dataset-fashion-mnist."""
    from zoo.plugins import datasets

    folder = datasets.DEBIAN_FASHION_MNIST
    if not all((folder / f"{name}.gz").is_file() for name in datasets.IDX_FILES):
        message = f"Debian's dataset-fashion-mnist is not installed ({folder})"
        if os.environ.get("ZOO_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return folder
