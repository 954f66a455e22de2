"""Real training runs through the library API, on small MNIST-format files and on real MNIST."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import torch

import zoo
from tests.cli_helpers import run_zoo
from zoo.training.module import ZooClassifier

TINY = "mnist:val_size=100"


def _train(tiny_mnist: Path, output_dir: Path, **kwargs):
    options = {"epochs": 2, "seed": 0, "progress": False}
    options.update(kwargs)
    return zoo.train(
        options.pop("arch", "mlp"),
        act=options.pop("act", "relu"),
        dataset=options.pop("dataset", TINY),
        data_dir=tiny_mnist,
        output_dir=output_dir,
        **options,
    )


@pytest.fixture(scope="module")
def tiny_run(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> zoo.TrainResult:
    return _train(tiny_mnist, tmp_path_factory.mktemp("runs"), act="leakyrelu:negative_slope=0.1")


def test_training_learns_the_tiny_dataset(tiny_run: zoo.TrainResult) -> None:
    assert tiny_run.test_acc > 0.9  # chance is 0.1
    assert 0 < tiny_run.test_loss < 0.5
    assert tiny_run.best_val_acc is not None and tiny_run.best_val_acc > 0.9
    assert tiny_run.epochs == 2
    assert tiny_run.steps == 2 * 8  # 500 training images in batches of 64
    assert tiny_run.act == "leakyrelu:negative_slope=0.1"
    assert tiny_run.accelerator == "cpu"


def test_run_directory_holds_config_metrics_checkpoints_results(
    tiny_run: zoo.TrainResult,
) -> None:
    run_dir = Path(tiny_run.run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "finished"
    options = config["config"]
    assert (options["arch"], options["act"], options["dataset"]) == (
        "mlp",
        "leakyrelu:negative_slope=0.1",
        TINY,
    )
    assert options["seed"] == config["seed"] == 0
    assert options["lr"] is None and config["lr"] == pytest.approx(1e-3)
    assert config["components"]["act"]["plugin"] == "activations"
    assert config["versions"]["torch"] == metadata.version("torch")
    assert config["versions"]["lightning-zoo"] == zoo.__version__

    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val_acc = [float(r["val_acc"]) for r in rows if r.get("val_acc")]
    assert len(val_acc) == 2  # one validation per epoch
    assert max(val_acc) == pytest.approx(tiny_run.best_val_acc)

    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert Path(tiny_run.checkpoint) == run_dir / "checkpoints" / "best.ckpt"
    recorded = {**tiny_run.to_dict(), "run_dir": ".", "checkpoint": "checkpoints/best.ckpt"}
    assert json.loads((run_dir / "results.json").read_text()) == recorded  # paths: the run's


def test_checkpoint_is_plain_data_and_rebuilds_the_model(
    tiny_run: zoo.TrainResult, tiny_mnist: Path
) -> None:
    checkpoint = torch.load(tiny_run.checkpoint, weights_only=True, map_location="cpu")
    assert checkpoint["hyper_parameters"]["act"] == "leakyrelu:negative_slope=0.1"
    assert checkpoint["hyper_parameters"]["class_names"] == [str(d) for d in range(10)]

    restored = ZooClassifier.load_from_checkpoint(tiny_run.checkpoint, weights_only=True)
    restored.eval()
    assert restored.model[2].negative_slope == pytest.approx(0.1)

    datamodule = zoo.create_datamodule(TINY, data_dir=tiny_mnist, batch_size=200)
    datamodule.setup("test")
    x, y = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        accuracy = (restored(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(tiny_run.test_acc, abs=1e-6)


def test_same_seed_same_metrics(tiny_mnist: Path, tmp_path: Path) -> None:
    first = _train(tiny_mnist, tmp_path / "a", epochs=1, seed=123)
    second = _train(tiny_mnist, tmp_path / "b", epochs=1, seed=123)
    other = _train(tiny_mnist, tmp_path / "c", epochs=1, seed=124)
    assert first.test_loss == second.test_loss
    assert first.best_val_acc == second.best_val_acc
    metrics_a = (Path(first.run_dir) / "metrics.csv").read_text()
    metrics_b = (Path(second.run_dir) / "metrics.csv").read_text()
    assert metrics_a == metrics_b
    assert other.test_loss != first.test_loss


def test_random_seed_is_recorded(tiny_mnist: Path, tmp_path: Path) -> None:
    result = _train(tiny_mnist, tmp_path, seed=None, max_steps=2)
    config = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert isinstance(result.seed, int)
    assert config["config"]["seed"] is None  # as given
    assert config["seed"] == result.seed


def test_max_steps_inside_first_epoch_still_checkpoints_and_tests(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    result = _train(tiny_mnist, tmp_path, max_steps=3)
    assert result.steps == 3
    assert Path(result.checkpoint).is_file()
    assert result.best_val_acc is None  # no validation ran
    assert 0.0 <= result.test_acc <= 1.0


@pytest.mark.parametrize(("optimizer", "lr"), [("sgd", 1e-2), ("adamw", 1e-3), ("SGD", 1e-2)])
def test_optimizers(tiny_mnist: Path, tmp_path: Path, optimizer: str, lr: float) -> None:
    result = _train(tiny_mnist, tmp_path, optimizer=optimizer, epochs=2)
    checkpoint = torch.load(result.checkpoint, weights_only=True)
    assert checkpoint["hyper_parameters"]["optimizer"] == optimizer.lower()
    assert checkpoint["hyper_parameters"]["lr"] == pytest.approx(lr)
    assert result.test_acc > 0.5


def test_bad_input_fails_before_a_run_directory_exists(tiny_mnist: Path, tmp_path: Path) -> None:
    output_dir = tmp_path / "runs"
    with pytest.raises(zoo.UnknownComponentError, match="leakyrelu"):
        _train(tiny_mnist, output_dir, act="leakyrelu2")
    with pytest.raises(zoo.ZooUsageError, match="optimizer"):
        _train(tiny_mnist, output_dir, optimizer="nosuch")
    with pytest.raises(zoo.ComponentSpecError, match="hidden"):
        _train(tiny_mnist, output_dir, arch="mlp:hidden=(0,)")
    with pytest.raises(zoo.ZooUsageError, match="val_size"):
        _train(tiny_mnist, output_dir, dataset="mnist:val_size=600")
    assert not output_dir.exists()


def test_invalid_accelerator_is_a_usage_error_and_leaves_no_run(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    with pytest.raises(zoo.ZooUsageError, match="trainer setting"):
        _train(tiny_mnist, tmp_path, accelerator="no-such-accelerator")
    assert list(tmp_path.iterdir()) == []


def test_train_and_resume_print_no_weights_only_note(tiny_mnist: Path, tmp_path: Path) -> None:
    """Lightning logs "`weights_only` was not set" on each checkpoint it saves without that
    argument (zoo's are full checkpoints on purpose, always read with ``weights_only=True``);
    a real ``zoo train`` and ``zoo train --resume``, with their progress output, print none."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def zoo_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_zoo("train", *args, env=env)  # with its progress output

    first = zoo_cli("--dataset", TINY, "--data-dir", str(tiny_mnist), "--epochs", "1",
                    "--seed", "0", "--output-dir", str(tmp_path))  # fmt: skip
    assert first.returncode == 0, first.stderr
    (run_dir,) = [line.split(":", 1)[1].strip() for line in first.stdout.splitlines()
                  if line.startswith("Run directory:")]  # fmt: skip
    resumed = zoo_cli("--resume", run_dir, "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "2 epoch(s)" in resumed.stdout
    assert "Epoch 1" in resumed.stderr  # Lightning's output is there, and the note is not
    assert "weights_only" not in first.stderr
    assert "weights_only" not in resumed.stderr


def test_real_mnist_one_epoch(real_mnist: Path, tmp_path: Path) -> None:
    result = zoo.train(
        "mlp",
        act="leakyrelu",
        dataset="mnist",
        epochs=1,
        seed=0,
        data_dir=real_mnist,
        output_dir=tmp_path,
        progress=False,
    )
    assert result.test_acc >= 0.95
    assert result.steps == 860  # 55,000 training images in batches of 64
