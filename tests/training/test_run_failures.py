"""Runs that are stopped or fail, through the real ``zoo`` command: signals, NaN losses,
damaged checkpoints and data. (Exact resume is in test_resume.py.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import torch

from tests.cli_helpers import popen_command, run_command, zoo_command
from zoo.training.checkpoints import load_model

TINY = "mnist:val_size=100"


def train_args(data: Path, output: Path, *extra: str) -> list[str]:
    return zoo_command(
        "train", "--dataset", TINY, "--data-dir", str(data), "--output-dir", str(output),
        "--seed", "0", "--json", *extra,
    )  # fmt: skip


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return run_command(args, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def only_run(output: Path) -> Path:
    (run_dir,) = output.iterdir()
    return run_dir


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_stop_at_a_step_save_and_resume_finishes(
    tiny_mnist: Path, tmp_path: Path, signum: int, code: int
) -> None:
    output = tmp_path / "runs"
    process = popen_command(
        train_args(tiny_mnist, output, "--epochs", "400"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    output.mkdir(exist_ok=True)
    while not any(output.iterdir()):
        time.sleep(0.02)
    run_dir = only_run(output)
    wait_for(run_dir / "checkpoints" / "last.ckpt", process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert stdout == ""
    assert f"{signal.Signals(signum).name} stopped the run" in stderr
    assert "zoo train --resume" in stderr and "Traceback" not in stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "interrupted"
    stopped_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < stopped_at["global_step"] < 400 * 8

    epochs = str(stopped_at["epoch"] + 2)
    resumed = run(zoo_command("train", "--resume", str(run_dir), "--epochs", epochs, "--json"))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"] > stopped_at["global_step"]
    assert json.loads((run_dir / "config.json").read_text())["status"] == "finished"


_NAN_PLUGIN = """
import torch
import zoo


class NanAfter(torch.nn.Module):
    \"\"\"The identity for its first `steps` training forwards, then NaN.\"\"\"

    def __init__(self, steps: int = 12) -> None:
        super().__init__()
        self.steps = steps
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
        return x * float("nan") if self.calls > self.steps else torch.relu(x)


@zoo.hookimpl
def register_activations(register):
    register("nanafter", NanAfter, summary="relu, then NaN")
"""


def test_nan_loss_stops_without_overwriting_the_last_good_checkpoint(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    plugin = tmp_path / "nan_plugin.py"
    plugin.write_text(textwrap.dedent(_NAN_PLUGIN))
    output = tmp_path / "runs"
    args = train_args(tiny_mnist, output, "--epochs", "4", "--act", "nanafter:steps=12")
    completed = run([*args[:3], "-p", str(plugin), *args[3:]])
    assert completed.returncode == 1
    assert "NaN or infinite" in completed.stderr and "--lr" in completed.stderr
    assert "Traceback" not in completed.stderr
    run_dir = only_run(output)
    assert json.loads((run_dir / "config.json").read_text())["status"] == "failed"
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] == 8  # the end of the first, good epoch
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_resume_from_a_damaged_checkpoint_names_it_and_starts_nothing(
    tiny_mnist: Path, tmp_path: Path, damage: str
) -> None:
    output = tmp_path / "runs"
    first = run(train_args(tiny_mnist, output, "--epochs", "1"))
    assert first.returncode == 0, first.stderr
    last = only_run(output) / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes({"empty": b"", "truncated": data[:1000], "garbage": os.urandom(4096)}[damage])
    before = sorted(p.name for p in output.iterdir())
    completed = run(zoo_command("train", "--resume", str(only_run(output)), "--json"))
    assert completed.returncode == 1
    assert str(last) in completed.stderr and "Traceback" not in completed.stderr
    assert sorted(p.name for p in output.iterdir()) == before
    assert load_model(only_run(output) / "checkpoints" / "best.ckpt")  # still intact


@pytest.mark.parametrize("damage", ["truncated", "half-extracted", "bad magic"])
def test_damaged_idx_files_are_named_before_training(
    tiny_mnist: Path, tmp_path: Path, damage: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_mnist, data)
    images = data / "MNIST" / "raw" / "train-images-idx3-ubyte"
    content = images.read_bytes()
    if damage == "truncated":
        images.write_bytes(content[: len(content) // 3])
    elif damage == "half-extracted":
        images.write_bytes(content[:10])
    else:
        images.write_bytes(b"\x1f\x8b" + content[2:])  # a gzip header where IDX should be
    output = tmp_path / "runs"
    completed = run(train_args(data, output, "--epochs", "1"))
    assert completed.returncode == 1
    assert f"{images}:" in completed.stderr
    assert "delete the damaged files" in completed.stderr
    assert not output.exists() or not any(output.iterdir())
