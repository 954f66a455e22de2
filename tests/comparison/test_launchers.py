"""zoo.comparison.launchers: the local, Ray and Slurm (submitit) launchers, run for real on this
machine.

Ray starts once for the module (a local Ray with 2 CPUs, a few seconds); Slurm runs through
submitit's local executor (subprocesses) and debug executor (this process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.comparison import listening
from zoo.comparison.launchers import (
    LaunchOptions,
    TaskOutcome,
    describe,
    launch,
    missing_package_message,
    require_module,
)
from zoo.comparison.ray_launcher import start_ray
from zoo.errors import ZooError, ZooUsageError

ROOT = Path(__file__).resolve().parents[2]


# -- tasks: module level, so Ray and submitit workers unpickle them by reference -------------


@dataclass(frozen=True)
class Square:
    """Returns ``[{"n": n, "square": n * n, "pid": ...}]``; raises when ``fail``. With
    ``journal``, appends ``n`` to that file first (to see the order tasks ran in)."""

    n: int
    fail: bool = False
    journal: str | None = None

    def __call__(self) -> list[dict[str, int]]:
        if self.journal is not None:
            with open(self.journal, "a") as f:
                f.write(f"{self.n}\n")
        if self.fail:
            raise ValueError(f"no square for {self.n}")
        return [{"n": self.n, "square": self.n * self.n, "pid": os.getpid()}]

    def describe(self) -> str:
        return f"square {self.n}"


@dataclass(frozen=True)
class Crash:
    """Kills its worker process: a failure outside the task's Python code."""

    def __call__(self) -> None:
        os._exit(3)


@dataclass(frozen=True)
class Sleep:
    """Sleeps, then writes ``marker``: the marker missing later means it was cancelled."""

    seconds: float
    marker: str

    def __call__(self) -> str:
        time.sleep(self.seconds)
        Path(self.marker).write_text("finished")
        return "slept"


def driver_only_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A task whose module only this process can import (not Ray's or submitit's workers)."""
    (tmp_path / "zoo_driver_only.py").write_text(
        "from dataclasses import dataclass\n\n"
        "@dataclass(frozen=True)\n"
        "class Here:\n"
        "    def __call__(self):\n"
        "        return [1]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import zoo_driver_only

    return zoo_driver_only.Here()


def interrupt_on(word: str, lines: list[str]) -> Any:
    """An ``echo`` that records lines and raises KeyboardInterrupt (Ctrl-C) at one holding
    ``word``."""

    def echo(line: str) -> None:
        lines.append(line)
        if word in line:
            raise KeyboardInterrupt

    return echo


def check_mixed(outcomes: list[TaskOutcome], failed: dict[int, str]) -> None:
    """Outcomes of ``Square(1), Square(2), ...`` where the tasks in ``failed`` (index: text in
    the error) failed and the others returned their squares."""
    assert [o.index for o in outcomes] == list(range(len(outcomes)))
    for outcome in outcomes:
        if outcome.index in failed:
            assert not outcome.ok and outcome.result is None
            assert failed[outcome.index] in outcome.error, outcome.error
        else:
            assert outcome.ok, outcome.error
            n = outcome.result[0]["n"]
            assert outcome.result[0]["square"] == n * n
            assert outcome.description == f"square {n}"


# -- options, descriptions, messages -------------------------------------------------------


def test_options_are_checked() -> None:
    with pytest.raises(ZooUsageError, match="local, ray, slurm"):
        LaunchOptions(launcher="kubernetes")
    with pytest.raises(ZooUsageError, match="slurm_time_minutes must be positive"):
        LaunchOptions(launcher="slurm", slurm_time_minutes=0)
    with pytest.raises(ZooUsageError, match="unknown submitit cluster"):
        LaunchOptions(launcher="slurm", slurm_cluster="pbs")


def test_describe_prefers_describe_and_is_short() -> None:
    assert describe(Square(4)) == "square 4"
    assert describe(Crash()) == "Crash()"
    long = describe(Sleep(1.0, "x" * 500))
    assert len(long) == 120 and long.endswith("…")


def test_a_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ZooUsageError, match=r"pip install 'lightning-zoo\[ray\]'"):
        require_module("zoo_no_such_package", "ray", "ray")
    assert "pip install 'lightning-zoo[slurm]'" in missing_package_message(
        "submitit", "slurm", "slurm"
    )
    # A package that is there but lacks one of its own dependencies is not "not installed".
    (tmp_path / "zoo_broken_package.py").write_text("import zoo_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ZooError, match="installed but failed to import") as error:
        require_module("zoo_broken_package", "ray", "ray")
    assert not isinstance(error.value, ZooUsageError)


def test_importing_the_launchers_imports_no_backend() -> None:
    code = (
        "import sys, zoo.comparison.launchers, zoo.comparison.ray_launcher\n"
        "import zoo.comparison.slurm_launcher\n"
        "print(sorted(m for m in ('ray', 'submitit', 'torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_no_tasks_no_work() -> None:
    assert launch([], LaunchOptions(launcher="slurm")) == []


# -- local ----------------------------------------------------------------------------------


def test_local_runs_tasks_in_order_in_this_process(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal")
    lines: list[str] = []
    tasks = [Square(n, journal=journal) for n in (3, 1, 2)]
    outcomes = launch(tasks, LaunchOptions(), lines.append)
    assert (tmp_path / "journal").read_text().split() == ["3", "1", "2"]
    assert [o.result for o in outcomes] == [
        [{"n": n, "square": n * n, "pid": os.getpid()}] for n in (3, 1, 2)
    ]
    assert all(o.ok and o.seconds is not None for o in outcomes)
    assert lines[0] == "[1/3] running: square 3"
    assert lines[-1].startswith("[3/3] done: square 2")


def test_local_keeps_the_others_results_when_one_fails() -> None:
    outcomes = launch([Square(1), Square(2, fail=True), Square(3)], LaunchOptions())
    check_mixed(outcomes, {1: "ValueError: no square for 2"})
    assert outcomes[1].error_type == "ValueError"


def test_local_ctrl_c_stops_the_launch(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal")
    with pytest.raises(KeyboardInterrupt):
        launch(
            [Square(1, journal=journal), Square(2, journal=journal)],
            LaunchOptions(),
            interrupt_on("done: square 1", []),
        )
    assert (tmp_path / "journal").read_text().split() == ["1"]


# -- ray ------------------------------------------------------------------------------------
# These two run before the module's Ray starts: launch() reuses a Ray already running.


@pytest.mark.parametrize("how", ["option", "environment"])
def test_ray_unreachable_address_is_a_clean_error_quickly(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray")
    import ray

    assert not ray.is_initialized()
    address = "127.0.0.1:1"  # nothing listens on port 1
    if how == "environment":
        monkeypatch.setenv("RAY_ADDRESS", address)
        options = LaunchOptions(launcher="ray")
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        options = LaunchOptions(launcher="ray", ray_address=address, ray_connect_timeout_s=3)
    start = time.monotonic()
    with pytest.raises(ZooError, match=r"cannot reach the Ray cluster at '127\.0\.0\.1:1'"):
        launch([Square(1)], options)
    assert time.monotonic() - start < 10
    assert not ray.is_initialized()


def test_ray_address_that_is_not_one() -> None:
    pytest.importorskip("ray")
    with pytest.raises(ZooUsageError, match="is not host:port"):
        launch([Square(1)], LaunchOptions(launcher="ray", ray_address="head:port"))


@pytest.fixture(scope="module")
def ray_session() -> Iterator[list[str]]:
    """A local Ray with 2 CPUs, started as launch() starts one; workers find ``tests`` through
    PYTHONPATH. Yields what the start echoed. Ray's session folders go to a short folder of
    their own (its unix sockets' paths must stay under ~107 characters), removed after."""
    ray = pytest.importorskip("ray")
    lines: list[str] = []
    options = LaunchOptions(
        launcher="ray",
        ray_num_cpus=2,
        ray_runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    root = tempfile.mkdtemp(prefix="zoo-ray-")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("RAY_ADDRESS", raising=False)
            patch.setenv("RAY_TMPDIR", root)
            assert start_ray(ray, options, lines.append) is True
            try:
                yield lines
            finally:
                ray.shutdown()
        assert any(p.name.startswith("session_") for p in (Path(root) / "ray").iterdir())
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_local_ray_listens_on_the_loopback_only(ray_session: list[str]) -> None:
    """Every TCP socket that this process (the driver) and the Ray it started (GCS, raylet,
    workers, agents) listen on, from the OS's socket table, is on the loopback."""
    if not listening.supported():
        pytest.skip("no /proc/net/tcp here")
    assert ray_session == ["ray: started a local Ray with 2 CPUs, listening on 127.0.0.1 only"]
    outcomes = launch([Square(n) for n in range(2)], LaunchOptions(launcher="ray"))
    assert all(o.ok for o in outcomes)  # workers started
    found = listening.listeners(
        listening.process_tree(os.getpid(), also_mentioning=os.environ.get("RAY_TMPDIR"))
    )
    assert len({item.pid for item in found}) >= 4, found  # driver, GCS, raylet, workers...
    assert [str(item) for item in found if not item.loopback] == []


def test_ray_runs_tasks_on_workers(ray_session: list[str]) -> None:
    import ray

    lines: list[str] = []
    outcomes = launch([Square(n) for n in range(4)], LaunchOptions(launcher="ray"), lines.append)
    assert [o.result[0]["square"] for o in outcomes] == [0, 1, 4, 9]
    assert all(o.result[0]["pid"] != os.getpid() for o in outcomes)
    assert lines[0] == "ray: using the Ray already running in this process"
    assert "ray: submitted 4 tasks" in lines
    assert sum("done: square" in line for line in lines) == 4
    assert ray.is_initialized()  # launch() leaves alone a Ray it did not start


def test_ray_keeps_the_others_results_when_one_fails(ray_session: list[str]) -> None:
    tasks = [Square(1), Square(2, fail=True), Crash(), Square(4)]
    outcomes = launch(tasks, LaunchOptions(launcher="ray"))
    check_mixed(outcomes, {1: "ValueError: no square for 2", 2: "died"})
    assert outcomes[1].error_type == "ValueError"
    assert outcomes[2].error_type and "Error" in outcomes[2].error_type
    assert outcomes[2].description == "Crash()"


def test_ray_worker_that_cannot_import_the_task(
    ray_session: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = driver_only_task(tmp_path, monkeypatch)
    bad, good = launch([task, Square(2)], LaunchOptions(launcher="ray"))
    assert good.ok and good.result[0]["square"] == 4
    assert bad.error_type == "ModuleNotFoundError"
    assert bad.error.startswith("the Ray worker cannot import the task (ModuleNotFoundError:")
    assert "zoo_driver_only" in bad.error


def test_ray_ctrl_c_cancels_the_tasks(ray_session: list[str], tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        launch(
            [Sleep(1.5, str(marker))],
            LaunchOptions(launcher="ray"),
            interrupt_on("ray: submitted", lines),
        )
    assert lines[-1] == "ray: interrupted; cancelling 1 tasks"
    time.sleep(2.5)
    assert not marker.exists()
    # The session still works.
    assert launch([Square(5)], LaunchOptions(launcher="ray"))[0].result[0]["square"] == 25


# -- slurm (submitit) -----------------------------------------------------------------------


@pytest.fixture
def worker_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """submitit's local jobs are subprocesses: let them import ``tests``."""
    pytest.importorskip("submitit")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))


@pytest.mark.parametrize("cluster", ["local", "debug"])
def test_slurm_array_keeps_the_others_results_when_one_fails(
    cluster: str, tmp_path: Path, worker_path: None
) -> None:
    lines: list[str] = []
    options = LaunchOptions(
        launcher="slurm",
        slurm_cluster=cluster,
        slurm_time_minutes=5,
        slurm_log_folder=str(tmp_path / "logs" / "%j"),
    )
    outcomes = launch([Square(1), Square(2, fail=True), Square(3)], options, lines.append)
    check_mixed(outcomes, {1: "ValueError: no square for 2"})
    assert "(log: " in outcomes[1].error
    assert all(o.job_id and o.log for o in outcomes)
    assert Path(outcomes[1].log).exists()
    if cluster == "local":  # subprocesses; the failure's traceback is in its log
        assert all(o.result[0]["pid"] != os.getpid() for o in outcomes if o.ok)
        assert "ValueError: no square for 2" in Path(outcomes[1].log).read_text()
    assert lines[0].startswith("slurm: submitted 3 tasks as job ")
    assert sum(line.startswith("[") for line in lines) == 3


def test_slurm_job_that_cannot_import_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_path: None
) -> None:
    task = driver_only_task(tmp_path, monkeypatch)
    options = LaunchOptions(
        launcher="slurm", slurm_cluster="local", slurm_log_folder=str(tmp_path / "logs" / "%j")
    )
    (bad,) = launch([task], options)
    assert bad.error_type == "ModuleNotFoundError"
    assert bad.error.startswith("the Slurm job cannot import the task (ModuleNotFoundError:")
    assert "zoo_driver_only" in bad.error and f"(log: {bad.log})" in bad.error


def test_slurm_ctrl_c_cancels_the_jobs(tmp_path: Path, worker_path: None) -> None:
    marker = tmp_path / "finished"
    lines: list[str] = []
    options = LaunchOptions(
        launcher="slurm", slurm_cluster="local", slurm_log_folder=str(tmp_path / "%j")
    )
    with pytest.raises(KeyboardInterrupt):
        launch([Sleep(3, str(marker))], options, interrupt_on("slurm: submitted", lines))
    assert lines[-1].startswith("slurm: interrupted; cancelling job ")
    pid = int(lines[0].split(" as job ")[1].split(";")[0])  # a local job's id is its pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    assert not _alive(pid)
    assert not marker.exists()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_slurm_without_slurm_says_so(tmp_path: Path) -> None:
    submitit = pytest.importorskip("submitit")
    if submitit.SlurmExecutor.affinity() > 0:
        pytest.skip("Slurm is installed here")
    options = LaunchOptions(launcher="slurm", slurm_log_folder=str(tmp_path))
    with pytest.raises(ZooError, match="srun/sbatch are not on PATH"):
        launch([Square(1)], options)


def test_slurm_bad_parameter_is_a_usage_error(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    options = LaunchOptions(
        launcher="slurm",
        slurm_cluster="debug",
        slurm_log_folder=str(tmp_path),
        slurm_parameters={"slurm_no_such_option": 1},
    )
    with pytest.raises(ZooUsageError, match="bad Slurm parameters"):
        launch([Square(1)], options)
