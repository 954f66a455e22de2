"""Resuming never loses what a run recorded, through the real ``zoo train --resume``: a run copied
or moved keeps its best checkpoint best, and a resume that cannot go on (an unwritable checkpoint
folder, a damaged ``best.ckpt``) stops before it changes anything."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tests.cli_helpers import run_zoo

TINY = "mnist:val_size=100"
#: SGD at this rate learns the small data in its first epoch, then diverges: every resumed
#: epoch is worse than the best one, which a resume must keep.
UNSTABLE = ("--optimizer", "sgd", "--lr", "0.3")


def zoo(*args: str) -> subprocess.CompletedProcess[str]:
    return run_zoo(*args)


def train(data: Path, output: Path, *extra: str) -> Path:
    done = zoo("train", "--dataset", TINY, "--data-dir", str(data), "--output-dir", str(output),
               "--seed", "0", "--json", *extra)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run_dir,) = output.iterdir()
    return run_dir


def resume(run_dir: Path, epochs: int) -> subprocess.CompletedProcess[str]:
    return zoo("train", "--resume", str(run_dir), "--epochs", str(epochs), "--json")


def val_scores(run_dir: Path) -> dict[int, float]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return {int(r["epoch"]): float(r["val_acc"]) for r in csv.DictReader(file) if r["val_acc"]}


def checkpoint_state(path: Path) -> dict:
    (state,) = [
        value
        for key, value in torch.load(path, weights_only=True)["callbacks"].items()
        if key.startswith("ModelCheckpoint")
    ]
    return state


def assert_best_is_the_best(run_dir: Path) -> None:
    """best.ckpt is the first epoch with the highest val_acc metrics.csv recorded, and the
    checkpoint callback's state names this folder with that score."""
    scores = val_scores(run_dir)
    best_score = max(scores.values())
    first_best = min(epoch for epoch, score in scores.items() if score == best_score)
    checkpoints = (run_dir / "checkpoints").resolve()
    assert torch.load(checkpoints / "best.ckpt", weights_only=True)["epoch"] == first_best, scores
    state = checkpoint_state(checkpoints / "last.ckpt")
    assert state["dirpath"] == str(checkpoints)
    assert state["best_model_path"] == str(checkpoints / "best.ckpt")
    assert float(state["best_model_score"]) == pytest.approx(best_score)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["best_val_acc"] == pytest.approx(best_score)


def files(run_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_a_copied_and_a_moved_run_resumed_twice_keep_their_best_checkpoint(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    original = train(tiny_mnist, tmp_path / "runs", "--epochs", "1", *UNSTABLE)
    best_bytes = (original / "checkpoints" / "best.ckpt").read_bytes()
    copied = tmp_path / "copies" / original.name
    shutil.copytree(original, copied)
    moved = tmp_path / "elsewhere" / original.name
    moved.parent.mkdir()
    shutil.move(original, moved)
    # The copy is resumed twice; the moved run once, moved again, then once more.
    for run_dir, epochs in ((copied, 2), (copied, 3), (moved, 2), (moved, 3)):
        if (run_dir, epochs) == (moved, 3):
            shutil.move(moved, tmp_path / "again")
            run_dir = tmp_path / "again"
        resumed = resume(run_dir, epochs)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["epochs"] == epochs
        assert_best_is_the_best(run_dir)
        assert "dirpath has changed" not in resumed.stderr  # Lightning's, on a moved run
        scores = val_scores(run_dir)
        assert min(scores.values()) < max(scores.values()), f"no worse epoch to keep out: {scores}"
        if scores[0] == max(scores.values()):  # the first epoch stays best: its file, untouched
            assert (run_dir / "checkpoints" / "best.ckpt").read_bytes() == best_bytes


@pytest.fixture
def finished_run(tiny_mnist: Path, tmp_path: Path) -> Path:
    return train(tiny_mnist, tmp_path / "runs", "--epochs", "1")


def immutable(path: Path, on: bool) -> bool:
    """Set or clear ``path``'s immutable attribute (root cannot write there either)."""
    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True)
    return done.returncode == 0


def test_an_unwritable_checkpoint_folder_leaves_a_finished_run_as_it_was(
    finished_run: Path,
) -> None:
    checkpoints = finished_run / "checkpoints"
    before = files(finished_run)
    if shutil.which("chattr") is None or not immutable(checkpoints, True):
        pytest.skip("an unwritable folder needs chattr +i here (root writes anywhere else)")
    try:
        resumed = resume(finished_run, 3)
    finally:
        immutable(checkpoints, False)
    assert resumed.returncode == 1, resumed.stderr
    assert f"cannot write in {checkpoints}" in resumed.stderr
    assert "the run is left as it was" in resumed.stderr and "Traceback" not in resumed.stderr
    assert files(finished_run) == before  # config.json still says 1 epoch, status finished
    assert json.loads((finished_run / "config.json").read_text())["status"] == "finished"
    listed = zoo("runs", str(finished_run.parent), "--json")
    assert [run["status"] for run in json.loads(listed.stdout)] == ["finished"]


@pytest.mark.parametrize("damage", ["truncated", "emptied"])
def test_a_damaged_best_checkpoint_stops_the_resume_before_it_is_replaced(
    finished_run: Path, damage: str
) -> None:
    best = finished_run / "checkpoints" / "best.ckpt"
    data = best.read_bytes()
    best.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    before = files(finished_run)
    resumed = resume(finished_run, 3)
    assert resumed.returncode == 1, resumed.stderr
    (line,) = [line for line in resumed.stderr.splitlines() if line.startswith("Error:")]
    assert str(best) in line and "start the run again" in line and "Traceback" not in line
    assert files(finished_run) == before  # best.ckpt, config.json, metrics.csv: all kept
