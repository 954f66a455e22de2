"""Run directories: one writer at a time, a history that is never lost, a status that is true,
and a listing that survives any damaged run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import zoo
from tests.cli_helpers import popen_command, run_command, zoo_command
from zoo.runs.directory import Run
from zoo.runs.reading import list_runs, read_results, read_run

TINY = "mnist:val_size=100"


def train_args(data: Path, output: Path, *extra: str) -> list[str]:
    return zoo_command(
        "train",
        "--dataset",
        TINY,
        "--data-dir",
        str(data),
        "--output-dir",
        str(output),
        "--seed",
        "0",
        *extra,
    )


def rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def finished(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("finished")
    zoo.train(
        dataset=TINY, data_dir=tiny_mnist, output_dir=output, epochs=2, seed=0, progress=False
    )
    (run_dir,) = output.iterdir()
    return run_dir


def copy_run(run_dir: Path, destination: Path) -> Path:
    subprocess.run(["cp", "-a", str(run_dir), str(destination)], check=True)
    return destination / run_dir.name


def test_a_run_directory_holds_exactly_its_files(finished: Path) -> None:
    names = sorted(p.relative_to(finished).as_posix() for p in finished.rglob("*"))
    assert names == [
        ".lock",
        "checkpoints",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "config.json",
        "metrics.csv",
        "results.json",
    ]
    record = json.loads((finished / "config.json").read_text())
    assert record["status"] == "finished"
    assert record["config"]["dataset"] == TINY  # as given: no defaults written into the spec
    assert record["config"]["num_workers"] is None and record["config"]["lr"] is None
    assert record["lr"] == 0.001 and record["seed"] == 0


def test_a_second_writer_stops_at_once_naming_the_holder(tiny_mnist: Path, tmp_path: Path) -> None:
    """Two ``zoo train --resume RUN`` at once: the second stops with exit 1, naming the
    process that holds the run, and the run is left as it was; the first finishes it."""
    output = tmp_path / "runs"
    first = popen_command(
        train_args(tiny_mnist, output, "--epochs", "300"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(output.glob("*/checkpoints/last.ckpt")):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    (run_dir,) = output.iterdir()
    assert read_run(run_dir).status == "interrupted"

    resuming = popen_command(
        zoo_command("train", "--resume", str(run_dir), "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while read_run(run_dir).status != "running":
        assert resuming.poll() is None, resuming.communicate()
        time.sleep(0.02)
    before = (run_dir / "config.json").read_bytes()
    second = run_command(
        zoo_command("train", "--resume", str(run_dir)), capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 1, second.stderr
    assert f"in use by process {resuming.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert (run_dir / "config.json").read_bytes() == before  # untouched by the second

    resuming.send_signal(signal.SIGINT)
    _, err = resuming.communicate(timeout=120)
    assert resuming.returncode == 128 + signal.SIGINT, err
    assert read_run(run_dir).status == "interrupted"
    epochs = [int(row["epoch"]) for row in rows(run_dir) if row.get("val_acc")]
    assert epochs == list(range(len(epochs))) and len(epochs) > 1  # each epoch once, in order


def test_the_lock_is_released_when_the_writer_is_killed(tiny_mnist: Path, tmp_path: Path) -> None:
    output = tmp_path / "runs"
    process = popen_command(
        train_args(tiny_mnist, output, "--epochs", "300"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not list(output.glob("*/checkpoints/last.ckpt")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    (run_dir,) = output.iterdir()
    with pytest.raises(zoo.RunInUseError, match=f"in use by process {process.pid}"):
        Run.open(run_dir)
    process.kill()
    process.wait()
    info = read_run(run_dir)
    assert info.status == "interrupted" and "ended without recording why" in (info.error or "")
    with Run.open(run_dir) as run:  # free again
        assert run.record["status"] == "running"


def test_a_failing_resume_loses_nothing(finished: Path, tmp_path: Path) -> None:
    """A resume that fails (here: its data has gone) leaves a finished run as it was."""
    run_dir = copy_run(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    completed = run_command(
        zoo_command(
            "train", "--resume", str(run_dir), "--epochs", "4", "--data-dir", str(tmp_path / "gone")
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 1, completed.stderr
    assert "not found" in completed.stderr and "Traceback" not in completed.stderr
    after = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    del before[".lock"], after[".lock"]
    assert after == before
    assert read_run(run_dir).status == "finished"


def test_resuming_a_finished_run_says_how_to_extend_it(finished: Path, tmp_path: Path) -> None:
    run_dir = copy_run(finished, tmp_path)
    completed = run_command(
        zoo_command("train", "--resume", str(run_dir)), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert "is finished" in completed.stderr and "nothing to do" in completed.stderr
    assert f"zoo train --resume {run_dir} --epochs 7" in completed.stderr
    assert "Test accuracy" in completed.stdout
    extended = run_command(
        zoo_command("train", "--resume", str(run_dir), "--epochs", "3", "--json"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert extended.returncode == 0, extended.stderr
    assert json.loads(extended.stdout)["epochs"] == 3
    assert [r["epoch"] for r in rows(run_dir) if r["val_acc"]] == ["0", "1", "2"]


def test_evaluate_reports_the_accuracy_of_results_json(finished: Path, tiny_mnist: Path) -> None:
    completed = run_command(
        zoo_command("evaluate", str(finished), "--data-dir", str(tiny_mnist), "--json"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads((finished / "results.json").read_text())
    assert json.loads(completed.stdout)["accuracy"] == pytest.approx(results["test_acc"], abs=1e-6)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda record: record.update(started=5), "'started' is 5"),
        (lambda record: record.update(status="done"), "unknown status 'done'"),
        (lambda record: record["config"].update(seed=-1), "--seed must be between"),
        (lambda record: record.pop("config"), "has no 'config' object"),
    ],
)
def test_an_unreadable_run_is_listed_with_the_reason(
    finished: Path, tmp_path: Path, damage, reason: str
) -> None:
    good = copy_run(finished, tmp_path)
    bad = tmp_path / "20990101-000000-bad"
    bad.mkdir()
    record = json.loads((finished / "config.json").read_text())
    damage(record)
    (bad / "config.json").write_text(json.dumps(record))
    (tmp_path / "not-a-run").mkdir()
    listed = {info.run_dir: info for info in list_runs(tmp_path)}
    assert listed.keys() == {str(good), str(bad)}
    assert listed[str(good)].status == "finished"
    assert listed[str(bad)].status == "unreadable" and reason in (listed[str(bad)].error or "")
    table = run_command(zoo_command("runs", str(tmp_path)), capture_output=True, text=True)
    assert table.returncode == 0 and "Traceback" not in table.stderr
    assert "unreadable" in table.stdout and "finished" in table.stdout


def test_garbage_config_json_is_unreadable_not_fatal(tmp_path: Path) -> None:
    for name, text in [("a", "{"), ("b", "[" * 50_000), ("c", "\xff\xfe"), ("d", "null")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(text, errors="surrogateescape")
    assert {info.status for info in list_runs(tmp_path)} == {"unreadable"}


def test_no_temporary_file_is_left_behind(finished: Path) -> None:
    assert not [p for p in finished.rglob("*") if p.name.endswith(".partial")]


def test_run_create_leaves_nothing_when_it_cannot_write(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only directories")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(zoo.ZooError, match="cannot create a run directory"):
            Run.create(tmp_path, "x", {"config": {}})
    finally:
        tmp_path.chmod(0o700)
    assert not list(tmp_path.iterdir())


def list_json(directory: Path) -> list[dict]:
    listed = run_command(
        zoo_command("runs", str(directory), "--json"), capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    return json.loads(listed.stdout)


def test_results_json_paths_are_relative_to_the_run_directory(finished: Path) -> None:
    results = json.loads((finished / "results.json").read_text())
    assert (results["run_dir"], results["checkpoint"]) == (".", "checkpoints/best.ckpt")
    read = read_results(finished)
    assert read["checkpoint"] == str(finished / "checkpoints" / "best.ckpt")


@pytest.mark.parametrize("garbage", ["{not json", "[1, 2]", "\xff\xfe", ""])
def test_a_garbage_results_json_is_unreadable_not_finished(
    finished: Path, tmp_path: Path, garbage: str
) -> None:
    run_dir = copy_run(finished, tmp_path)
    (run_dir / "results.json").write_text(garbage, errors="surrogateescape")
    (listed,) = list_json(tmp_path)
    assert listed["status"] == "unreadable" and "results.json" in listed["error"], listed
    assert listed["arch"] == "mlp"  # config.json still says which run it is
    table = run_command(zoo_command("runs", str(tmp_path)), capture_output=True, text=True)
    assert " unreadable " in table.stdout and "results.json" in table.stdout, table.stdout


def test_runs_lists_a_comparisons_runs(tiny_mnist: Path, tmp_path: Path) -> None:
    # One dataset: OUT/runs/<slot>/<run>; two: OUT/<dataset>/runs/<slot>/<run>.
    for datasets in ([TINY], [TINY, "mnist:val_size=150"]):
        output = tmp_path / f"comparison-{len(datasets)}"
        args = ["--act", "relu", "--seeds", "1", "--max-steps", "2", "--data-dir", str(tiny_mnist)]
        args += [word for dataset in datasets for word in ("--dataset", dataset)]
        compared = run_command(
            zoo_command("compare", *args, "--output-dir", str(output)),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert compared.returncode == 0, compared.stderr
        listed = list_json(output)
        assert len(listed) == len(datasets), listed
        assert {run["status"] for run in listed} == {"finished"}
        assert {run["dataset"] for run in listed} == set(datasets)
        table = run_command(zoo_command("runs", str(output)), capture_output=True, text=True)
        assert "runs/relu-seed0" in table.stdout, table.stdout  # named below the folder given
