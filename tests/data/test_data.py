"""The MNIST datamodule on real MNIST-format files, data directories, and missing data."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

import zoo
from tests.cli_helpers import run_zoo
from tests.conftest import MNIST_FILES, synthetic_digits
from zoo.paths import resolve_data_dir


def test_metadata_is_known_before_any_data_is_read(tmp_path: Path) -> None:
    datamodule = zoo.create_datamodule("mnist", data_dir=tmp_path / "nothing-here")
    assert datamodule.input_shape == (1, 28, 28)
    assert datamodule.num_classes == 10
    assert datamodule.class_names == [str(d) for d in range(10)]
    assert datamodule.batch_size == 64
    assert not (tmp_path / "nothing-here").exists()


def test_splits_batches_and_normalisation(tiny_mnist: Path) -> None:
    datamodule = zoo.create_datamodule("mnist:val_size=100", data_dir=tiny_mnist)
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    assert (len(datamodule.train_set), len(datamodule.val_set)) == (500, 100)
    assert len(datamodule.test_set) == 200

    x, y = next(iter(datamodule.train_dataloader()))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64

    # The first test image through ToTensor + Normalize((0.1307,), (0.3081,)).
    images, labels = synthetic_digits(200, seed=2)
    x, y = next(iter(datamodule.test_dataloader()))
    expected = (torch.from_numpy(images[0]).float() / 255 - 0.1307) / 0.3081
    assert torch.allclose(x[0, 0], expected, atol=1e-5)
    assert y[0].item() == labels[0]


def test_validation_split_is_seeded(tiny_mnist: Path) -> None:
    def val_indices(spec: str) -> list[int]:
        datamodule = zoo.create_datamodule(spec, data_dir=tiny_mnist)
        datamodule.setup("fit")
        return list(datamodule.val_set.indices)

    first = val_indices("mnist:val_size=100")
    assert first == val_indices("mnist:val_size=100")
    assert first != val_indices("mnist:val_size=100,split_seed=1")
    train_indices = set(range(600)) - set(first)
    assert len(train_indices) == 500


def test_data_dir_comes_from_argument_then_environment_then_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("ZOO_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir() == tmp_path / "cache" / "lightning-zoo" / "data"


def _offline_env(tmp_path: Path) -> dict[str, str]:
    """No network: every download goes through a proxy on a closed local port."""
    env = dict(os.environ)
    closed = "http://127.0.0.1:9"
    env.update(http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed, HTTPS_PROXY=closed)
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("ZOO_DATA_DIR", None)
    return env


def test_missing_data_without_network_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _offline_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    empty = tmp_path / "empty"
    datamodule = zoo.create_datamodule("mnist", data_dir=empty)
    started = time.monotonic()
    with pytest.raises(zoo.DataNotFoundError) as caught:
        datamodule.prepare_data()
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert str(empty) in message
    for name in MNIST_FILES:
        assert f"MNIST/raw/{name}" in message
    assert "--data-dir" in message and "ZOO_DATA_DIR" in message


def test_missing_data_from_the_cli_exits_1_without_traceback(tmp_path: Path) -> None:
    started = time.monotonic()
    completed = run_zoo(
        "train", "--epochs", "1", "--output-dir", str(tmp_path),
        env=_offline_env(tmp_path), timeout=120,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "Expected files" in completed.stderr
    assert str(tmp_path / "cache" / "lightning-zoo" / "data") in completed.stderr
    assert list(tmp_path.glob("2*")) == []  # no run directory for a run that never started
    assert time.monotonic() - started < 60


def test_real_mnist_datamodule(real_mnist: Path) -> None:
    datamodule = zoo.create_datamodule("mnist", data_dir=real_mnist)
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    assert (len(datamodule.train_set), len(datamodule.val_set)) == (55_000, 5_000)
    assert len(datamodule.test_set) == 10_000
    x, _ = next(iter(datamodule.test_dataloader()))
    # Normalised with MNIST's own statistics, a batch is roughly zero-mean, unit-std.
    assert abs(x.mean().item()) < 0.2
    assert 0.8 < x.std().item() < 1.2
