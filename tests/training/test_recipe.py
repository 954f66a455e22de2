"""The training recipe as part of a run: label smoothing, gradient clipping, accumulation,
early stopping, the learning rate logged, the recipe recorded and reproduced, and stdout holding
only the summary."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import zoo
from tests.cli_helpers import run_command
from zoo.runs.config import load_config
from zoo.runs.reading import read_run

TINY = "mnist:val_size=100"  # of tiny_mnist's 600 training images


def _train(data: Path, out: Path, **options: object) -> zoo.TrainResult:
    options = {"seed": 0, "max_steps": 20, "epochs": 1, "dataset": TINY, **options}
    return zoo.train("mlp", act="relu", data_dir=data, output_dir=out, progress=False, **options)


def _weights(result: zoo.TrainResult) -> torch.Tensor:
    last = Path(result.run_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)["state_dict"]
    return torch.cat([v.flatten().float() for v in state.values()])


def _rows(result: zoo.TrainResult) -> list[dict[str, str]]:
    with open(Path(result.run_dir) / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_label_smoothing_is_the_smoothed_cross_entropy(tiny_mnist: Path) -> None:
    from zoo.training.module import ZooClassifier

    model = ZooClassifier("mlp", "relu", (1, 28, 28), 10, label_smoothing=0.1)
    output = model(torch.rand(8, 1, 28, 28))
    target = torch.arange(8)
    smoothed = F.cross_entropy(output, target, label_smoothing=0.1)
    assert torch.allclose(model.loss(output, target), smoothed)
    assert not torch.allclose(smoothed, F.nll_loss(output, target))
    model.eval()  # evaluation losses stay the plain cross-entropy
    assert torch.allclose(model.loss(output, target), F.nll_loss(output, target))


def test_gradient_clip_bounds_each_step(tiny_mnist: Path, tmp_path: Path) -> None:
    import lightning as L

    from zoo.training.module import ZooClassifier

    L.seed_everything(0, verbose=False)  # as the run seeds before building its model
    initial = torch.cat(
        [
            p.detach().flatten()
            for p in ZooClassifier("mlp", "relu", (1, 28, 28), 10).state_dict().values()
        ]
    )
    sgd = "sgd:momentum=0.0"
    free = _weights(_train(tiny_mnist, tmp_path / "a", max_steps=2, optimizer=sgd))
    clipped = _weights(
        _train(tiny_mnist, tmp_path / "b", max_steps=2, optimizer=sgd, gradient_clip=1e-3)
    )
    # SGD at lr 0.01: two steps whose gradient norm is clipped to 1e-3 move the weights by at
    # most 2e-5 in all.
    assert (free - initial).norm() > 1e-3
    assert (clipped - initial).norm() <= 2e-5 * 1.01


def test_accumulated_gradients_take_one_step_per_n_batches(tiny_mnist: Path, tmp_path: Path):
    result = _train(tiny_mnist, tmp_path, max_steps=-1, accumulate_grad_batches=3)
    config = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert config["config"]["accumulate_grad_batches"] == 3
    datamodule = zoo.create_datamodule(TINY, data_dir=tiny_mnist)
    datamodule.prepare_data()
    datamodule.setup("fit")
    per_epoch = len(datamodule.train_dataloader())
    assert result.steps == -(-per_epoch // 3)


def test_early_stopping_stops_on_a_stalled_val_acc(tiny_mnist: Path, tmp_path: Path) -> None:
    # A learning rate so small that val_acc cannot improve after the first epoch.
    result = _train(tiny_mnist, tmp_path, max_steps=-1, epochs=20, lr=1e-12, early_stopping=2)
    assert result.epochs < 20
    assert result.epochs <= 4


def test_learning_rate_is_logged_and_follows_the_warm_up(tiny_mnist: Path, tmp_path: Path):
    # Logged where Lightning logs steps: every 50 (tiny MNIST has 8 batches an epoch).
    result = _train(tiny_mnist, tmp_path, max_steps=100, epochs=20, warmup_steps=100)
    rows = [r for r in _rows(result) if r.get("lr-Adam")]
    rates = [float(r["lr-Adam"]) for r in rows]
    assert rates, "LearningRateMonitor logged no lr-Adam column"
    assert len(rates) >= 2 and rates == sorted(rates) and rates[0] < 1e-3 * 0.6


def test_recipe_is_recorded_and_reproduced_by_config(tiny_mnist: Path, tmp_path: Path) -> None:
    options = {"optimizer": "adamw:weight_decay=0.05", "label_smoothing": 0.1,
               "gradient_clip": 1.0, "warmup_steps": 5}  # fmt: skip
    first = _train(tiny_mnist, tmp_path / "a", **options)
    config = load_config(Path(first.run_dir) / "config.json")
    for key, value in options.items():
        assert getattr(config, key) == value
    second = zoo.run(config, output_dir=tmp_path / "b", progress=False)
    assert torch.equal(_weights(first), _weights(second))
    record = read_run(Path(first.run_dir))
    assert record is not None


def test_stdout_holds_only_the_summary(tiny_mnist: Path, tmp_path: Path) -> None:
    env = {**os.environ, "ZOO_DATA_DIR": str(tiny_mnist), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "zoo", "train", "--max-steps", "30", "--seed", "0",
               "--dataset", TINY, "--output-dir", str(tmp_path)]  # fmt: skip
    completed = run_command(command, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("Test accuracy ")
    assert [line.split(":")[0] for line in lines[1:]] == ["Run directory", "Checkpoint"]
    assert "Epoch 0" in completed.stderr  # the progress bar is there, on stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--label-smoothing", "1.0", "--label-smoothing must be at least 0 and below 1"),
        ("--gradient-clip", "0", "--gradient-clip must be above 0"),
        ("--accumulate-grad-batches", "0", "--accumulate-grad-batches"),
        ("--early-stopping", "0", "--early-stopping"),
        ("--warmup-steps", "-1", "--warmup-steps"),
        ("--optimizer", "adamm", "did you mean"),
        ("--scheduler", "cosinus", "did you mean"),
    ],
)
def test_bad_recipe_options_are_usage_errors(option: str, value: str, message: str) -> None:
    command = [sys.executable, "-m", "zoo", "train", option, value, "--max-steps", "1"]
    completed = run_command(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr.lower() or message in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_scheduled_run_keeps_its_length_on_resume(tiny_mnist: Path, tmp_path: Path) -> None:
    result = _train(tiny_mnist, tmp_path, scheduler="cosine", max_steps=5)
    with pytest.raises(zoo.ZooUsageError, match="keeps its --max-steps"):
        zoo.resume(result.run_dir, max_steps=10, progress=False)
