"""A comparison run by each launcher: a local Ray (``ray.init(num_cpus=2)``) and submitit's local
executor write the same runs and the same table as training here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TINY = "mnist:val_size=100"


def _compare(tiny_mnist: Path, out: Path, *extra: str) -> dict:
    args = ["--act", "relu", "--act", "tanh", "--seeds", "2", "--epochs", "1", "--dataset", TINY]
    args += ["--data-dir", str(tiny_mnist), "--output-dir", str(out), "--json", *extra]
    completed = subprocess.run(
        [sys.executable, "-m", "zoo", "compare", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def _accuracies(payload: dict) -> dict[tuple[str, int], float]:
    return {(run["activation"], run["seed"]): run["test_acc"] for run in payload["runs"]}


@pytest.fixture(scope="module")
def here(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _compare(tiny_mnist, tmp_path_factory.mktemp("here") / "out")


@pytest.mark.parametrize(
    ("launcher", "separate"),
    [
        (["--launcher", "ray", "--ray-address", "local"], False),
        (["--launcher", "slurm", "--slurm-cluster", "local"], False),
    ],
    ids=["ray", "submitit-local"],
)
def test_a_launcher_gives_the_same_comparison(
    tiny_mnist: Path, tmp_path: Path, here: dict, launcher: list[str], separate: bool
) -> None:
    pytest.importorskip("ray" if "ray" in launcher else "submitit")
    out = tmp_path / "out"
    payload = _compare(tiny_mnist, out, *launcher, *(["--separate"] if separate else []))
    assert _accuracies(payload).keys() == _accuracies(here).keys()
    for key, accuracy in _accuracies(here).items():
        assert _accuracies(payload)[key] == pytest.approx(accuracy, abs=1e-6), key
    assert [row["verdict"] for row in payload["summary"]] == [
        row["verdict"] for row in here["summary"]
    ]
    for run in payload["runs"]:  # ordinary run directories, finished, in this output directory
        record = json.loads((out / run["run_dir"] / "config.json").read_text())
        assert record["status"] == "finished"
        assert ("fused" in record) is not separate
