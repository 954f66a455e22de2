"""``zoo compare``: real runs (fused groups, or ``zoo train`` processes) on small MNIST-format data
and on real MNIST, the files it writes, the pictures, resuming, parametrised activations,
failures; the plan printed first, the bound on run counts, one comparison per output folder, an
unwritable folder, Ctrl-C in the summary, the reproduce command."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli_helpers import popen_command, run_zoo
from tests.test_plots import assert_real_picture
from zoo.cli import cli
from zoo.comparison.compare import ComparisonPlan, compare
from zoo.comparison.launchers import LaunchOptions
from zoo.comparison.lock import LOCK_NAME
from zoo.comparison.plan import reproduce_command, resolve_settings
from zoo.comparison.tasks import thread_environment
from zoo.errors import ZooError, ZooUsageError
from zoo.plots import PALETTE
from zoo.runs.config import RunConfig
from zoo.runs.curves import read_curves

TINY = "mnist:val_size=100"


def _viridis(position: float) -> tuple[float, ...]:
    """The colour of a layer's line in the per-layer plots (first layer 0.0, last 0.9)."""
    return pytest.importorskip("matplotlib").colormaps["viridis"](position)


def _compare(args: list[str]) -> subprocess.CompletedProcess[str]:
    return run_zoo("compare", *args, timeout=600)


@pytest.fixture(scope="module")
def tiny_comparison(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("compare") / "relu-vs-sigmoid"
    args = ["--act", "relu", "--act", "sigmoid", "--epochs", "1", "--seeds", "2", "--jobs", "2"]
    args += ["--dataset", TINY, "--data-dir", str(tiny_mnist), "--output-dir", str(output)]
    completed = _compare([*args, "--json"])
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)  # --json: stdout holds only comparison.json
    assert payload == json.loads((output / "comparison.json").read_text())
    (output / "stderr.txt").write_text(completed.stderr)
    return output


def test_writes_csv_json_and_report(tiny_comparison: Path) -> None:
    with open(tiny_comparison / "comparison.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["activation"] for row in rows] == ["relu", "sigmoid"]
    for row in rows:
        assert row["runs"] == "2"
        assert 0.1 < float(row["test_acc"]) <= 1.0
        assert float(row["test_acc_std"]) >= 0.0
        assert float(row["grad_norm_first"]) > 0
        assert 0.0 <= float(row["dead_end"]) <= 1.0
        assert float(row["seconds_per_epoch"]) > 0
    by_act = {row["activation"]: row for row in rows}
    assert by_act["relu"]["saturated_end"] == ""  # unbounded: not measured
    assert 0.0 <= float(by_act["sigmoid"]["saturated_end"]) <= 1.0

    data = json.loads((tiny_comparison / "comparison.json").read_text())
    assert data["settings"]["acts"] == ["relu", "sigmoid"]
    assert data["settings"]["seeds"] == 2
    assert [(r["activation"], r["seed"]) for r in data["runs"]] == [
        ("relu", 0),
        ("relu", 1),
        ("sigmoid", 0),
        ("sigmoid", 1),
    ]
    assert data["summary"][0]["test_acc"] == pytest.approx(float(rows[0]["test_acc"]))
    assert data["failed"] == []

    report = (tiny_comparison / "report.md").read_text()
    assert "| activation | test acc (mean ± std) |" in report
    assert "`relu`" in report and "`sigmoid`" in report
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (tiny_comparison / link).is_file(), link  # plots linked by relative path
    assert "zoo compare --act relu --act sigmoid --dataset mnist:val_size=100" in report
    assert "--epochs 1 --data-dir " in report and "--seeds 2 --jobs 2" in report
    assert f"--output-dir {tiny_comparison}" in report


def test_the_plan_is_printed_first_and_group_logs_stay_with_the_runs(tiny_comparison: Path) -> None:
    """The plan (runs, new and finished, where) before any work; the log path printed for a
    fused group is one that lasts: the group's folder goes, its log stays in each run."""
    stderr = (tiny_comparison / "stderr.txt").read_text()
    first = stderr.splitlines()[0]
    assert first == f"plan: 4 runs (2 activation(s) x 2 seed(s)) in {tiny_comparison}: 4 to train"
    assert "training 4 runs fused, in 2 group(s) of 2, 2, 2 at once" in stderr
    assert stderr.count("kept as group.log in each of its runs' directories") == 2
    assert not (tiny_comparison / "fused").exists()
    assert not (tiny_comparison / LOCK_NAME).exists()
    data = json.loads((tiny_comparison / "comparison.json").read_text())
    for row in data["runs"]:
        assert (tiny_comparison / row["run_dir"] / "group.log").is_file()


def test_every_run_is_an_ordinary_run_directory(tiny_comparison: Path) -> None:
    data = json.loads((tiny_comparison / "comparison.json").read_text())
    seeds = set()
    for row in data["runs"]:
        run_dir = tiny_comparison / row["run_dir"]
        config = json.loads((run_dir / "config.json").read_text())
        assert config["status"] == "finished"
        assert config["config"]["act"] == row["activation"]
        assert config["config"]["epochs"] == 1
        seeds.add((config["config"]["act"], config["seed"]))
        assert (run_dir / "results.json").is_file()
        assert (run_dir / "checkpoints" / "best.ckpt").is_file()
        assert read_curves(run_dir).layers("dead") == ["model.2", "model.4"]  # --diagnostics
    assert seeds == {("relu", 0), ("relu", 1), ("sigmoid", 0), ("sigmoid", 1)}


def test_plots_are_real_pictures(tiny_comparison: Path) -> None:
    assert_real_picture(tiny_comparison / "val_curves.png", list(PALETTE[:2]), (1000, 400))
    first, last = _viridis(0.0), _viridis(0.9)  # the first and the last layer's lines
    assert_real_picture(tiny_comparison / "grad_norms.png", [first, last], (700, 280))
    # fractions can coincide (all 0), so only the line drawn last is sure to show
    assert_real_picture(tiny_comparison / "dead_units.png", [last], (700, 280))
    # only the sigmoid is bounded, so the saturation plot has one panel
    assert_real_picture(tiny_comparison / "saturation.png", [last], (350, 280))


def test_rerun_skips_finished_runs_and_retrains_an_interrupted_one(
    tiny_comparison: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    output = tmp_path / "copy"
    shutil.copytree(tiny_comparison, output)
    args = ["compare", "--act", "relu", "--act", "sigmoid", "--epochs", "1", "--seeds", "2"]
    args += ["--dataset", TINY, "--data-dir", str(tiny_mnist), "--output-dir", str(output)]

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "4 of 4 runs already finished" in result.output
    assert re.search(r"relu\s+\d+\.\d\d ± \d+\.\d\d %", result.output)  # the table
    assert "Report: " in result.output

    (interrupted,) = [p for p in (output / "runs").iterdir() if p.name.startswith("sigmoid-seed1")]
    (run_dir,) = [p for p in interrupted.iterdir() if p.is_dir()]
    config = json.loads((run_dir / "config.json").read_text())
    config["status"] = "interrupted"
    (run_dir / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "3 of 4 runs already finished" in result.output
    assert "sigmoid seed 1: test acc" in result.output
    assert len([p for p in interrupted.iterdir() if p.is_dir()]) == 2
    data = json.loads((output / "comparison.json").read_text())
    assert len(data["runs"]) == 4


def test_parametrised_activations_compare_side_by_side(tiny_mnist: Path, tmp_path: Path) -> None:
    acts = ["leakyrelu:negative_slope=0.01", "leakyrelu:negative_slope=0.2"]
    config = RunConfig(dataset=TINY, epochs=1, max_steps=3, data_dir=str(tiny_mnist))
    result = compare(ComparisonPlan(acts, config, seeds=1, jobs=2, output_dir=tmp_path))
    assert [row["activation"] for row in result.summary] == acts
    configs = [
        json.loads((tmp_path / r["run_dir"] / "config.json").read_text()) for r in result.runs
    ]
    assert [c["config"]["act"] for c in configs] == acts
    assert [c["config"]["max_steps"] for c in configs] == [3, 3]
    assert "--max-steps 3" in result.command
    assert "acts" not in result.table() and "leakyrelu:negative_slope=0.2" in result.table()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--act", "relu", "--act", "reluu"], "Did you mean 'relu'"),
        (["--act", "relu", "--arch", "mlp:hidden=(0,)"], "hidden"),
        ([], "Missing option '--act'"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = CliRunner().invoke(cli, ["compare", *args, "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_usage_error_in_a_run_stops_the_comparison_and_removes_its_files(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    # Only a run finds out that the accelerator is missing (exit code 2), as it would find a
    # bad trainer setting: the first such run stops the comparison.
    output = tmp_path / "out"
    with pytest.raises(ZooUsageError, match="mps"):
        config = RunConfig(epochs=1, accelerator="mps", dataset=TINY, data_dir=str(tiny_mnist))
        compare(ComparisonPlan(("relu", "sigmoid"), config, seeds=1, output_dir=output))
    assert not output.exists()


def test_parallel_runs_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert thread_environment(2)["OMP_NUM_THREADS"] == "4"
    assert "OMP_NUM_THREADS" not in thread_environment(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_environment(4)["OMP_NUM_THREADS"] == "3"


def test_a_failed_run_is_reported_and_the_rest_written(tmp_path: Path) -> None:
    # The runs get a plugin that cannot be imported, in strict mode: each fails at once.
    with pytest.raises(ZooError, match=r"1 run\(s\) failed: relu seed 0") as caught:
        compare(
            ComparisonPlan(
                ("relu",),
                RunConfig(epochs=1),
                seeds=1,
                separate=True,
                plugins=(str(tmp_path / "missing_plugin.py"),),
                strict_plugins=True,
                output_dir=tmp_path / "out",
            )
        )
    assert "Rerun the same command" in str(caught.value)
    assert "relu seed 0" in str(caught.value)
    (log,) = (tmp_path / "out" / "runs").glob("*/train.log")
    assert "missing_plugin" in log.read_text()
    assert "Failed runs" in (tmp_path / "out" / "report.md").read_text()
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [(f["act"], f["seed"]) for f in data["failed"]] == [("relu", 0)]
    assert "zoo -p " in data["command"] and "--strict-plugins compare" in data["command"]
    assert "--separate" in data["command"]


def test_compare_on_real_mnist(real_mnist: Path, tmp_path: Path) -> None:
    args = ["--act", "relu", "--act", "sigmoid", "--epochs", "1", "--seeds", "1", "--jobs", "2"]
    completed = _compare([*args, "--data-dir", str(real_mnist), "--output-dir", str(tmp_path)])
    assert completed.returncode == 0, completed.stderr
    for name in ("comparison.csv", "comparison.json", "report.md"):
        assert (tmp_path / name).is_file()
    data = json.loads((tmp_path / "comparison.json").read_text())
    by_act = {row["activation"]: row for row in data["summary"]}
    assert by_act["relu"]["test_acc"] > 0.93  # one epoch of MNIST
    assert by_act["sigmoid"]["test_acc"] > 0.88
    assert_real_picture(tmp_path / "val_curves.png", list(PALETTE[:2]), (1000, 400))
    assert_real_picture(tmp_path / "grad_norms.png", [_viridis(0.0)], (700, 280))


def test_the_reproduce_command_has_the_options_that_shaped_the_runs(tmp_path: Path) -> None:
    plan = ComparisonPlan(
        ("relu",),
        RunConfig(epochs=2),
        seeds=2,
        output_dir=tmp_path,
        separate=True,
        group_size=3,
        jobs=2,
        launch=LaunchOptions(launcher="slurm", slurm_partition="gpu", slurm_gpus_per_task=1),
        max_runs=500,
    )
    command = reproduce_command(plan, resolve_settings(plan))
    assert "--seeds 2 --jobs 2 --separate --group-size 3 --launcher slurm" in command
    assert "--slurm-partition gpu --task-gpus 1 --max-runs 500" in command
    ray = plan.replace(launch=LaunchOptions(launcher="ray", ray_address="localhost:6379"))
    assert "--launcher ray --ray-address localhost:6379" in reproduce_command(
        ray, resolve_settings(ray)
    )
    here = ComparisonPlan(("relu",), output_dir=tmp_path)
    command = reproduce_command(here, resolve_settings(here))
    assert "--separate" not in command and "--launcher" not in command


@pytest.mark.parametrize(
    ("args", "runs", "bound"),
    [
        (["--act", "relu", "--act", "tanh", "--seeds", "100000"], 200000, 200),
        (["--act", "relu", "--seeds", "3", "--max-runs", "2"], 3, 2),
        (["--act", "relu", "--seeds", "2", "--dataset", "mnist", "--dataset", "kmnist",
          "--max-runs", "3"], 4, 3),
    ],
)  # fmt: skip
def test_too_many_runs_stop_before_anything_is_created(
    tmp_path: Path, args: list[str], runs: int, bound: int
) -> None:
    completed = _compare([*args, "--output-dir", str(tmp_path / "out")])
    assert completed.returncode == 2, completed.stderr
    assert f"would train {runs} runs" in completed.stderr
    assert f"more than the {bound} that --max-runs allows" in completed.stderr
    assert f"--max-runs {runs}" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_dir_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A folder under a regular file cannot be created, root or not."""
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    completed = _compare(["--act", "relu", "--seeds", "1", "--output-dir", str(out)])
    assert completed.returncode == 1, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert lines == [f"Error: cannot write the comparison to {out}: Not a directory"]


def test_a_read_only_output_dir_is_one_line_and_exit_1(tmp_path: Path) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o500)
    if os.access(parent, os.W_OK):  # root writes anyway
        pytest.skip("this user can write to a read-only folder")
    completed = _compare(["--act", "relu", "--seeds", "1", "--output-dir", str(parent / "out")])
    assert completed.returncode == 1, completed.stderr
    assert "cannot write the comparison to " in completed.stderr
    assert "Permission denied" in completed.stderr and "Traceback" not in completed.stderr


def test_a_second_comparison_into_the_same_folder_stops_at_once(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    """Two identical ``zoo compare`` into one folder: the second exits 1 at once naming the
    first (pid, command line); the first finishes, each slot with one run."""
    output = tmp_path / "out"
    args = ["--act", "relu", "--act", "tanh", "--seeds", "1", "--epochs", "1", "--jobs", "1"]
    args += ["--dataset", TINY, "--data-dir", str(tiny_mnist), "--output-dir", str(output)]
    first = popen_command(
        [sys.executable, "-m", "zoo", "compare", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock, deadline = output / LOCK_NAME, time.monotonic() + 120
        while not (lock.exists() and "pid" in lock.read_text()):
            assert first.poll() is None and time.monotonic() < deadline, "no lock taken"
            time.sleep(0.05)
        second = _compare([*args, "--json"])
        assert first.poll() is None, "the first ended before the second could try"
    finally:
        stdout, stderr = first.communicate(timeout=600)
    assert second.returncode == 1, second.stderr
    assert f"another zoo compare is writing to {output}" in second.stderr
    assert f"(pid {first.pid}: zoo compare --act relu --act tanh" in second.stderr
    assert second.stdout == "" and "Traceback" not in second.stderr
    assert first.returncode == 0, stderr
    slots = sorted((output / "runs").iterdir())
    assert len(slots) == 2
    for slot in slots:
        assert len([p for p in slot.iterdir() if p.is_dir()]) == 1, slot
    assert len(json.loads(stdout)["runs"]) == 2
    assert not lock.exists()


def test_sigint_during_the_summary_exits_130_and_keeps_the_runs(
    tiny_comparison: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    """Every run finished already: the rerun goes straight to the summary (the plots take
    seconds); a SIGINT there exits 130 with one line saying what was kept, not "Aborted!"."""
    output = tmp_path / "copy"
    shutil.copytree(tiny_comparison, output)
    for name in ("comparison.json", "report.md", "val_curves.png"):
        (output / name).unlink()
    args = ["--act", "relu", "--act", "sigmoid", "--epochs", "1", "--seeds", "2", "--jobs", "2"]
    args += ["--dataset", TINY, "--data-dir", str(tiny_mnist), "--output-dir", str(output)]
    process = popen_command(
        [sys.executable, "-m", "zoo", "compare", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()  # the plan: printed first
    assert "4 of 4 runs already finished" in line, line
    while not line.startswith("summary:"):  # nothing to train: the summary starts
        line = process.stderr.readline()
        assert line, "zoo compare ended before its summary"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the summary was written before the SIGINT arrived")
    assert process.returncode == 130, stderr
    (line,) = stderr.strip().splitlines()  # one line, no "Aborted!"
    assert "Rerun the same command to write it." in line
    assert f"the 4 finished runs are kept in {output / 'runs'}" in line
    assert stdout == "" and not (output / "comparison.json").exists()
    assert len(list((output / "runs").glob("*/*/results.json"))) == 4
