"""Exact resume: a run stopped by a signal at any step, or killed, then resumed, ends with the
same steps, the same metrics.csv rows, the same weights and the same test metrics as the run
that was never stopped (bit for bit: same machine, same thread count)."""

from __future__ import annotations

import csv
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

import zoo
from tests.cli_helpers import popen_command, run_command, zoo_command
from tests.conftest import make_mnist_root

BATCH = 16  # 1000 training samples: 63 steps an epoch, a logged step row every 50 steps
EPOCHS = 2
STEPS = 63 * EPOCHS


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mnist_root(tmp_path_factory.mktemp("resume-data"), n_train=1100, n_test=200)


def options(data: Path) -> dict[str, Any]:
    return {
        "dataset": "mnist:val_size=100",
        "data_dir": str(data),
        "seed": 0,
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "progress": False,
    }


class SignalAt(L.Callback):
    """Sends this process a real signal as the step ``step`` starts."""

    def __init__(self, step: int, signum: int = signal.SIGTERM) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def rows(run_dir: str | Path) -> list[dict[str, str]]:
    with open(Path(run_dir) / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_run(got: zoo.TrainResult, want: zoo.TrainResult) -> None:
    assert (got.steps, got.epochs) == (want.steps, want.epochs) == (STEPS, EPOCHS)
    assert (got.test_acc, got.test_loss, got.best_val_acc) == (
        want.test_acc,
        want.test_loss,
        want.best_val_acc,
    )
    assert rows(got.run_dir) == rows(want.run_dir)
    assert any(row["train_loss_step"] for row in rows(got.run_dir))  # step rows are compared
    for name in ("best.ckpt", "last.ckpt"):
        a = weights(Path(got.run_dir) / "checkpoints" / name)
        b = weights(Path(want.run_dir) / "checkpoints" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert sorted(p.name for p in (Path(got.run_dir) / "checkpoints").iterdir()) == [
        "best.ckpt",
        "last.ckpt",
    ]
    record = json.loads((Path(got.run_dir) / "config.json").read_text())
    assert record["status"] == "finished" and record["error"] is None


@pytest.fixture(scope="module")
def uninterrupted(data: Path, tmp_path_factory: pytest.TempPathFactory) -> zoo.TrainResult:
    return zoo.train(**options(data), output_dir=tmp_path_factory.mktemp("straight"))


def interrupted(data: Path, output: Path, step: int, signum: int) -> Path:
    with pytest.raises(zoo.TrainingInterrupted, match="Continue it with: zoo train --resume"):
        zoo.train(**options(data), output_dir=output, callbacks=[SignalAt(step, signum)])
    (run_dir,) = output.iterdir()
    assert zoo.runs.reading.read_run(run_dir).status == "interrupted"
    return run_dir


@pytest.mark.parametrize(
    ("step", "signum"),
    [
        (0, signal.SIGTERM),  # the first step
        (3, signal.SIGINT),  # early
        (31, signal.SIGTERM),  # the middle of the first epoch
        (62, signal.SIGINT),  # its last step: the run stops after the next one
        (63, signal.SIGTERM),  # the first step of the second epoch
        (STEPS - 1, signal.SIGTERM),  # the last step: stopped before testing
    ],
)
def test_stopped_at_any_step_then_resumed_is_the_uninterrupted_run(
    data: Path, tmp_path: Path, uninterrupted: zoo.TrainResult, step: int, signum: int
) -> None:
    run_dir = interrupted(data, tmp_path, step, signum)
    assert_same_run(zoo.resume(run_dir, progress=False), uninterrupted)


def test_stopped_and_resumed_twice_is_the_uninterrupted_run(
    data: Path, tmp_path: Path, uninterrupted: zoo.TrainResult
) -> None:
    run_dir = interrupted(data, tmp_path, 10, signal.SIGTERM)
    with pytest.raises(zoo.TrainingInterrupted):
        zoo.resume(run_dir, progress=False, callbacks=[SignalAt(80)])
    result = zoo.resume(run_dir, progress=False)
    assert_same_run(result, uninterrupted)
    assert len(json.loads((run_dir / "config.json").read_text())["resumed"]) == 2


def test_a_finished_run_extended_is_the_longer_run(data: Path, tmp_path: Path) -> None:
    longer = zoo.train(**{**options(data), "epochs": 3}, output_dir=tmp_path / "long")
    short = zoo.train(**{**options(data), "epochs": 1}, output_dir=tmp_path / "short")
    extended = zoo.resume(short.run_dir, progress=False, epochs=3)
    assert (extended.steps, extended.test_loss) == (longer.steps, longer.test_loss)
    assert rows(extended.run_dir) == rows(longer.run_dir)


def test_resuming_a_finished_run_trains_nothing(data: Path, tmp_path: Path) -> None:
    done = zoo.train(**{**options(data), "epochs": 1}, output_dir=tmp_path)
    files = lambda: {  # noqa: E731
        p.name: p.read_bytes()
        for p in Path(done.run_dir).rglob("*")
        if p.is_file() and p.name != ".lock"
    }
    before = files()
    with pytest.raises(zoo.RunAlreadyFinished, match=r"nothing to do.*--epochs 6") as caught:
        zoo.resume(done.run_dir, progress=False)
    assert caught.value.result == done
    assert files() == before


def test_a_resumed_run_keeps_what_it_computes(data: Path, tmp_path: Path) -> None:
    run_dir = interrupted(data, tmp_path, 5, signal.SIGTERM)
    with pytest.raises(zoo.ZooUsageError, match="keeps its --act"):
        zoo.resume(run_dir, act="tanh")


# -- the command line, with real kills ---------------------------------------------------------


def zoo_train(*args: str) -> list[str]:
    return zoo_command("train", *args)


def wait_for(condition: Any, process: subprocess.Popen[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sigkill_then_resume_is_the_uninterrupted_run(
    data: Path, tmp_path: Path, uninterrupted: zoo.TrainResult
) -> None:
    args = [
        "--dataset",
        "mnist:val_size=100",
        "--data-dir",
        str(data),
        "--seed",
        "0",
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        str(BATCH),
        "--json",
    ]
    output = tmp_path / "runs"
    process = popen_command(
        zoo_train(*args, "--output-dir", str(output)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = lambda: [*output.glob("*/checkpoints/last.ckpt")]  # noqa: E731
    wait_for(lambda: output.is_dir() and last(), process)  # the first epoch's checkpoint
    process.kill()
    process.communicate()
    if process.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    (run_dir,) = output.iterdir()
    listed = run_command(
        [sys.executable, "-m", "zoo", "runs", str(output), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"
    resumed = run_command(
        zoo_train("--resume", str(run_dir), "--json"), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    result = zoo.TrainResult(**json.loads(resumed.stdout))
    assert_same_run(result, uninterrupted)


def test_sigterm_mid_epoch_on_real_mnist_then_resume(real_mnist: Path, tmp_path: Path) -> None:
    """The README's guarantee, as a user meets it: SIGTERM in the middle of the second epoch,
    then ``zoo train --resume RUN``."""
    args = [
        "--batch-size",
        "256",
        "--epochs",
        "2",
        "--seed",
        "0",
        "--data-dir",
        str(real_mnist),
        "--json",
    ]
    straight = run_command(
        zoo_train(*args, "--output-dir", str(tmp_path / "straight")),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert straight.returncode == 0, straight.stderr
    want = json.loads(straight.stdout)
    for attempt, delay in enumerate((want["train_seconds"] / 8, 0.0)):  # into epoch 2
        output = tmp_path / f"runs{attempt}"
        process = popen_command(
            zoo_train(*args, "--output-dir", str(output)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        saved = output / "*" / "checkpoints" / "last.ckpt"
        wait_for(lambda saved=saved: glob.glob(str(saved)), process)  # epoch 1 is done
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            break
    else:
        pytest.skip("the run finished before the signal, twice (a very busy machine)")
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "zoo train --resume" in stderr and "Traceback" not in stderr
    (run_dir,) = output.iterdir()
    stopped_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert 215 < stopped_at["global_step"] < 430  # inside the second epoch
    resumed = run_command(
        zoo_train("--resume", str(run_dir), "--json"), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads(resumed.stdout)
    assert (
        (got["steps"], got["test_acc"], got["test_loss"])
        == (
            want["steps"],
            want["test_acc"],
            want["test_loss"],
        )
        == (430, want["test_acc"], want["test_loss"])
    )
    assert [r["epoch"] for r in rows(run_dir) if r["val_acc"]] == ["0", "1"]
    assert rows(run_dir) == rows(want["run_dir"])
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


@pytest.mark.parametrize("step", [49, 50, 70])  # a probe is taken as step 50 ends
def test_with_diagnostics_stopped_then_resumed_is_the_uninterrupted_run(
    data: Path, tmp_path: Path, step: int
) -> None:
    probed = {**options(data), "diagnostics": True}
    want = zoo.train(**probed, output_dir=tmp_path / "straight")
    with pytest.raises(zoo.TrainingInterrupted):
        zoo.train(**probed, output_dir=tmp_path / "stopped", callbacks=[SignalAt(step)])
    (run_dir,) = (tmp_path / "stopped").iterdir()
    got = zoo.resume(run_dir, progress=False)
    assert any(key.startswith("diag/") for key in rows(got.run_dir)[0])
    assert_same_run(got, want)


@pytest.mark.parametrize("step", [31, 70])
def test_with_a_recipe_stopped_then_resumed_is_the_uninterrupted_run(
    data: Path, tmp_path: Path, step: int
) -> None:
    # The schedule's, the optimizer's, early stopping's and the augmentations' state continue.
    recipe = {
        **options(data),
        "optimizer": "adamw:weight_decay=0.05",
        "scheduler": "onecycle",
        "warmup_steps": 0,
        "label_smoothing": 0.1,
        "gradient_clip": 1.0,
        "early_stopping": 5,
        "augment": ("crop:padding=2", "affine:degrees=10"),
    }
    want = zoo.train(**recipe, output_dir=tmp_path / "straight")
    with pytest.raises(zoo.TrainingInterrupted):
        zoo.train(**recipe, output_dir=tmp_path / "stopped", callbacks=[SignalAt(step)])
    (run_dir,) = (tmp_path / "stopped").iterdir()
    got = zoo.resume(run_dir, progress=False)
    assert any(key.startswith("lr-") for key in rows(got.run_dir)[0])
    assert_same_run(got, want)
