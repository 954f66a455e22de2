"""A comparison run by each launcher: a local Ray (``ray.init(num_cpus=2)``) and submitit's local
executor write the same runs and the same table as training here; the local Ray, and ``zoo``
itself, listen on the loopback only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli_helpers import popen_command, run_command, zoo_command
from tests.comparison import listening

TINY = "mnist:val_size=100"


def _compare(tiny_mnist: Path, out: Path, *extra: str) -> dict:
    completed = run_command(
        _command(tiny_mnist, out, *extra), capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def _command(tiny_mnist: Path, out: Path, *extra: str) -> list[str]:
    args = ["--act", "relu", "--act", "tanh", "--seeds", "2", "--epochs", "1", "--dataset", TINY]
    args += ["--data-dir", str(tiny_mnist), "--output-dir", str(out), "--json", *extra]
    return zoo_command("compare", *args)


def _compare_on_local_ray(tiny_mnist: Path, out: Path, *extra: str) -> dict:
    """``zoo compare`` on the local Ray it starts, its Ray folders in a short folder of their own
    (removed after); while it runs, what its process tree listens on is read from the OS's
    socket table every half second: all of it must be on the loopback."""
    root = tempfile.mkdtemp(prefix="zoo-ray-")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": root}
    seen: set[listening.Listener] = set()
    try:
        with popen_command(
            _command(tiny_mnist, out, *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as process:
            deadline = time.monotonic() + 600
            while process.poll() is None and time.monotonic() < deadline:
                seen.update(listening.listeners(listening.process_tree(process.pid, root)))
                time.sleep(0.5)
            stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert process.returncode == 0, stderr
    assert len({item.pid for item in seen}) >= 3, seen  # zoo, the GCS, the raylet, workers...
    assert sorted(str(item) for item in seen if not item.loopback) == []
    return json.loads(stdout)


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
    extra = [*launcher, *(["--separate"] if separate else [])]
    if "ray" in launcher and listening.supported():
        payload = _compare_on_local_ray(tiny_mnist, out, *extra)
    else:
        payload = _compare(tiny_mnist, out, *extra)
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
