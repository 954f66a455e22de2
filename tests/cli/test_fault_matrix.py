"""The fault matrix of ``zoo train`` (with ``zoo evaluate`` and ``zoo runs``): every bad input,
run for real as ``python -m zoo ...`` in a subprocess.

Each row of :data:`MATRIX` is ``(id, args, exit code, what stderr says)`` and checks:

* the exit code: 2 for a usage error (a bad option, spec or file named on the command line),
  1 for a problem of the environment or the data (a disk, a directory, a damaged file);
* that stderr holds each expected piece of the message: what is wrong (the option, file or
  component) and what to do about it, as one ``Error: ...`` of bounded size;
* no ``Traceback`` and no raw terminal control character in stdout or stderr;
* no run directory left in ``--output-dir`` (a fresh one per case), and a run given to
  ``--resume`` left exactly as it was.

``{name}`` in a row's args and message pieces is a path made for that case alone (see
:class:`Workspace`): ``{out}`` the output directory, ``{tiny}`` the small synthetic MNIST,
``{nodata}`` a data directory that does not exist, ``{ro}`` a read-only filesystem, and so on.
Rows that start from :data:`EARLY` run without any data: they can only show their own message,
not "data not found", if they fail before the data loads.

Every case pays for importing torch and Lightning in its subprocess, so the rows run two at a
time (``ZOO_MATRIX_JOBS``) in one module fixture and each test checks its row's outcome.

``python -m tests.test_fault_matrix`` runs the matrix and prints it as a markdown table.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pytest

from tests import cli_helpers
from tests.conftest import make_mnist_root

TINY = "mnist:val_size=100"
#: A small run on the tiny synthetic data.
TRAIN = ["train", "--dataset", TINY, "--data-dir", "{tiny}", "--epochs", "1", "--max-steps", "3",
         "--output-dir", "{out}"]  # fmt: skip
#: The same run with no data at all (and no download): a case that fails with its own message
#: from here fails before the data loads.
EARLY = ["train", "--dataset", f"{TINY},download=False", "--data-dir", "{nodata}", "--epochs",
         "1", "--max-steps", "3", "--output-dir", "{out}"]  # fmt: skip
#: Drops root's permission to ignore file modes, so that chmod 000 stops it too.
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
#: A spec nested 50,000 brackets deep (100 KB: one argument may be at most 128 KiB).
DEEP_SPEC = "mlp:hidden=" + "(" * 50_000 + ")" * 50_000
#: The longest error message a case may print: enough for a list of expected files.
MAX_MESSAGE = 3000


class Case(NamedTuple):
    id: str
    args: list[str]
    code: int
    says: tuple[str, ...]


def case(id: str, args: list[str], code: int, *says: str) -> Case:
    return Case(id, args, code, says)


MATRIX = [
    # -- numbers out of range: refused by click or by RunConfig, before anything is built ----
    case("seed-negative", [*EARLY, "--seed", "-1"], 2,
         "'--seed'", "-1 is not in the range 0<=x<=4294967295"),
    case("seed-above-2**32-1", [*EARLY, "--seed", "4294967296"], 2,
         "'--seed'", "4294967296 is not in the range 0<=x<=4294967295"),
    case("lr-nan", [*EARLY, "--lr", "nan"], 2, "--lr", "must be a finite number above 0, got nan"),
    case("lr-negative", [*EARLY, "--lr", "-1"], 2, "--lr", "must be a finite number above 0"),
    case("lr-inf", [*EARLY, "--lr", "inf"], 2, "--lr", "must be a finite number above 0, got inf"),
    case("lr-not-a-number", [*EARLY, "--lr", "abc"], 2, "'--lr'", "'abc' is not a valid float"),
    case("epochs-0", [*EARLY, "--epochs", "0"], 2, "'--epochs'", "not in the range 1<=x<=1000000"),
    case("batch-size-0", [*EARLY, "--batch-size", "0"], 2,
         "'--batch-size'", "not in the range 1<=x<=1048576"),
    case("max-steps-0", [*EARLY, "--max-steps", "0"], 2,
         "--max-steps", "must be -1 (no limit) or at least 1"),
    # -- component specs: resolved, then built and run on a dummy batch, before the data ------
    case("act-fails-on-input", [*EARLY, "--act", "gelu:approximate='x'"], 2,
         "'--act'", "activation \"gelu:approximate='x'\" fails on a test input",
         "approximate argument must be either none or tanh"),
    case("arch-too-big-for-memory", [*EARLY, "--arch", "mlp:hidden=(1000000000,)"], 2,
         "'--arch'", "architecture 'mlp:hidden=(1000000000,)' has 795,000,000,010 parameters",
         "of memory available", "Make it smaller"),
    case("act-unknown", [*EARLY, "--act", "nosuch"], 2,
         "'--act'", "unknown activation 'nosuch'", "zoo list activations"),
    case("act-control-characters", [*EARLY, "--act", "relu\x1b[31m"], 2,
         "'--act'", "unknown activation 'relu\\x1b[31m'", "Did you mean 'relu'"),
    case("arch-unknown-argument", [*EARLY, "--arch", "mlp:nosuch=1"], 2,
         "'--arch'", "takes no argument 'nosuch'", "it takes: hidden"),
    case("arch-unbalanced-brackets", [*EARLY, "--arch", "mlp:hidden=(1,"], 2,
         "'--arch'", "unclosed bracket"),
    case("arch-nested-50000-deep", [*EARLY, "--arch", DEEP_SPEC], 2,
         "'--arch'", "is not a Python literal"),
    case("dataset-val-size-0", [*EARLY, "--dataset", "mnist:val_size=0,download=False"], 2,
         "'--dataset'", "val_size must be at least 1"),
    case("optimizer-unknown", [*EARLY, "--optimizer", "nosuch"], 2,
         "unknown optimizer 'nosuch'", "zoo list optimizers"),
    # -- trainer settings: refused when the Trainer is built, after the data loaded; the run
    #    directory made for the run is removed again ----------------------------------------
    case("accelerator-tpu", [*TRAIN, "--accelerator", "tpu"], 2,
         "--accelerator tpu", "torch_xla", "pip install"),
    case("devices-abc", [*TRAIN, "--devices", "abc"], 2, "--devices abc", "should be an int > 0"),
    case("precision-7", [*TRAIN, "--precision", "7"], 2,
         "--precision 7", "Precision '7' is invalid", "Allowed precision values"),
    case("strategy-unknown", [*TRAIN, "--strategy", "nosuch"], 2,
         "--strategy nosuch", "invalid strategy name", "Example choices: auto, ddp"),
    # -- configuration files -----------------------------------------------------------------
    case("config-nested-100000-deep", [*EARLY, "--config", "{deep_json}"], 2,
         "config {deep_json} is nested 100000 levels deep; at most 20"),
    case("config-unknown-option", [*EARLY, "--config", "{unknown_json}"], 2,
         "config {unknown_json}: unknown option 'nosuch'"),
    case("config-not-json", [*EARLY, "--config", "{notjson_json}"], 2,
         "config {notjson_json} is not valid JSON"),
    case("config-wrong-type", [*EARLY, "--config", "{wrongtype_json}"], 2,
         "config {wrongtype_json}: --epochs expects int, got str 'five'"),
    case("config-seed-out-of-range", [*EARLY, "--config", "{seed_json}"], 2,
         "config {seed_json}: --seed must be between 0 and 4294967295, got -1"),
    case("config-not-utf8", [*EARLY, "--config", "{binary_json}"], 2,
         "cannot read config {binary_json}", "'utf-8' codec can't decode"),
    case("config-missing", [*EARLY, "--config", "{nodata}.json"], 2,
         "'--config'", "{nodata}.json' does not exist"),
    # -- the output directory: a problem of the environment (1) unless click can see it (2) ---
    case("output-dir-is-a-file", [*TRAIN, "--output-dir", "{file}"], 2,
         "'--output-dir'", "{file}' is a file"),
    case("output-dir-under-a-file", [*TRAIN, "--output-dir", "{file}/runs"], 1,
         "cannot create the output directory {file}/runs", "Not a directory"),
    case("output-dir-read-only-fs", [*TRAIN, "--output-dir", "{ro}"], 1,
         "{ro}", "Read-only file system"),
    case("output-dir-full-fs", [*TRAIN, "--output-dir", "{full}"], 1,
         "{full}", "No space left on device"),
    # -- data directories --------------------------------------------------------------------
    case("data-dir-missing", EARLY, 1,
         "mnist data not found in {nodata}", "{nodata}/MNIST/raw/train-images-idx3-ubyte",
         "{nodata}/MNIST/raw/t10k-labels-idx1-ubyte", "To fix: copy these files there"),
    case("data-dir-unreadable", [*EARLY, "--data-dir", "{unreadable_raw}"], 1,
         "the directory {unreadable_raw}/MNIST/raw cannot be listed (Permission denied)",
         "chmod u+rx {unreadable_raw}/MNIST/raw"),
    case("data-dir-root-unreadable", [*EARLY, "--data-dir", "{unreadable_root}"], 2,
         "'--data-dir'", "{unreadable_root}' is not readable"),
    case("data-dir-is-a-file", [*EARLY, "--data-dir", "{file}"], 2,
         "'--data-dir'", "{file}' is a file"),
    # -- --resume ------------------------------------------------------------------------------
    case("resume-not-a-run", ["train", "--resume", "{not_a_run}"], 2,
         "{not_a_run} is not a run directory"),
    case("resume-damaged-config", ["train", "--resume", "{damaged_run}"], 1,
         "{damaged_run}/config.json is not valid JSON"),
    case("resume-no-checkpoints", ["train", "--resume", "{unsaved_run}"], 2,
         "cannot resume {unsaved_run}: it has no checkpoints/last.ckpt",
         "zoo train --config {unsaved_run}/config.json"),
    case("resume-changes-act", ["train", "--resume", "{good_run}", "--act", "relu"], 2,
         "a resumed run keeps its --act", "zoo train --config {good_run}/config.json"),
    case("resume-with-config", ["train", "--resume", "{good_run}", "--config", "{seed_json}"], 2,
         "--resume continues a run with its own configuration; drop --config"),
    # -- checkpoints ---------------------------------------------------------------------------
    case("evaluate-empty-ckpt", ["evaluate", "{empty_ckpt}"], 1,
         "checkpoint {empty_ckpt} is empty (0 bytes)"),
    case("evaluate-garbage-ckpt", ["evaluate", "{garbage_ckpt}"], 1,
         "{garbage_ckpt}", "corrupt or not a checkpoint"),
]  # fmt: skip

#: Configuration files the rows name, by placeholder.
CONFIG_FILES: dict[str, bytes] = {
    "deep_json": b"[" * 100_000,
    "unknown_json": b'{"epochs": 1, "nosuch": 3}',
    "notjson_json": b"epochs: 1\n",
    "wrongtype_json": b'{"epochs": "five"}',
    "seed_json": b'{"seed": -1}',
    "binary_json": b'{"arch": "\xff"}',
}


# -- running a case ------------------------------------------------------------------------------


def zoo_env(home: Path) -> dict[str, str]:
    """The caller's environment, without the variables that change what zoo prints or loads."""
    return cli_helpers.zoo_env(XDG_CACHE_HOME=str(home / "cache"))  # never the user's cache


class Unavailable(Exception):
    """What a case needs cannot be had here (root, mount, dropping root's file access)."""


@dataclass
class Workspace:
    """The paths one case's ``{placeholders}`` name, each made on first use in the case's own
    directory ``root``; ``shared`` holds the tiny data and the good run, made once."""

    root: Path
    shared: dict[str, Path]
    stack: contextlib.ExitStack
    prefix: list[str] = field(default_factory=list)
    watched: list[Path] = field(default_factory=list)
    made: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:  # for str.format_map
        if name not in self.made:
            self.made[name] = str(self._make(name))
        return self.made[name]

    def _make(self, name: str) -> Path:
        root = self.root
        if name == "tiny":
            return self.shared["tiny"]
        if name == "out":
            return root / "runs"
        if name == "nodata":
            return root / "no-data"
        if name == "file":
            (root / "a-file").write_text("not a directory\n")
            return root / "a-file"
        if name in CONFIG_FILES:
            path = root / name.replace("_json", ".json")
            path.write_bytes(CONFIG_FILES[name])
            return path
        if name == "ro":
            return mount_tmpfs(self.stack, root / "ro", "ro,size=1m")
        if name == "full":
            full = mount_tmpfs(self.stack, root / "full", "size=64k")
            fill(full)
            return full
        if name in ("unreadable_raw", "unreadable_root"):
            data = Path(shutil.copytree(self.shared["tiny"], root / "data"))
            target = data / "MNIST" / "raw" if name == "unreadable_raw" else data
            self.prefix = deny_reads(self.stack, target)
            return data
        if name == "not_a_run":
            (root / "not-a-run").mkdir()
            return self._watch(root / "not-a-run")
        if name in ("good_run", "damaged_run", "unsaved_run"):
            run = Path(shutil.copytree(self.shared["good_run"], root / name.replace("_", "-")))
            if name == "damaged_run":
                (run / "config.json").write_text('{"config": {"arch": \n')
            elif name == "unsaved_run":  # a run that was stopped before it saved anything
                shutil.rmtree(run / "checkpoints")
                record = json.loads((run / "config.json").read_text())
                (run / "config.json").write_text(json.dumps({**record, "status": "interrupted"}))
            return self._watch(run)
        if name == "empty_ckpt":
            (root / "x.ckpt").write_bytes(b"")
            return root / "x.ckpt"
        if name == "garbage_ckpt":
            (root / "garbage.ckpt").write_bytes(random.Random(0).randbytes(4096))
            return root / "garbage.ckpt"
        raise KeyError(f"no placeholder {{{name}}}")

    def _watch(self, run: Path) -> Path:
        self.watched.append(run)
        return run


def mount_tmpfs(stack: contextlib.ExitStack, path: Path, options: str) -> Path:
    """A tmpfs mounted on ``path`` with ``options`` until ``stack`` closes."""
    if os.geteuid() != 0:
        raise Unavailable("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if mounted.returncode != 0:
        raise Unavailable(f"mount is not permitted here: {mounted.stderr.strip()}")
    stack.callback(unmount, path)
    return path


def unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, timeout=60).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=60)


def fill(directory: Path) -> None:
    """Write ``directory/ballast`` until its filesystem is full."""
    with open(directory / "ballast", "ab", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise


def deny_reads(stack: contextlib.ExitStack, path: Path) -> list[str]:
    """chmod 000 ``path`` until ``stack`` closes; the command prefix that makes that stop root
    too (an Unavailable where it cannot)."""
    path.chmod(0)
    stack.callback(path.chmod, 0o755)
    if os.geteuid() != 0:
        return []
    probe = [*DROP_DAC, sys.executable, "-c", f"import os; os.listdir({str(path)!r})"]
    if shutil.which("setpriv") is None or subprocess.run(probe, capture_output=True,
                                                         timeout=60).returncode == 0:  # fmt: skip
        raise Unavailable("running as root, where chmod 000 does not stop reads, and setpriv "
                          "cannot drop root's CAP_DAC_OVERRIDE here")  # fmt: skip
    return DROP_DAC


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with a hash of its content, but ``.lock``, whose note
    whoever opens the run rewrites."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


@dataclass(repr=False)
class Outcome:
    """What one case did, or why it could not run here."""

    case: Case
    args: list[str] = field(default_factory=list)
    says: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    runs_left: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    skip: str | None = None

    def __repr__(self) -> str:
        return f"<Outcome {self.case.id}: exit {self.returncode}>"

    @property
    def message(self) -> str:
        """The error message: stderr from its ``Error:`` on."""
        start = self.stderr.find("Error:")
        return self.stderr[start:] if start >= 0 else ""


def prepare(
    row: Case, root: Path, shared: dict[str, Path], stack: contextlib.ExitStack
) -> tuple[Outcome, Callable[[], None] | None]:
    """The outcome to fill in and the command to run for ``row`` in ``root``."""
    root.mkdir(parents=True)
    workspace = Workspace(root, shared, stack)
    outcome = Outcome(row)
    try:
        outcome.args = [arg.format_map(workspace) for arg in row.args]
        outcome.says = [piece.format_map(workspace) for piece in row.says]
    except Unavailable as reason:
        outcome.skip = str(reason)
        return outcome, None
    flags = zip(outcome.args, outcome.args[1:], strict=False)
    given = [value for name, value in flags if name == "--output-dir"]
    outcome.output_dir = Path(given[-1]) if given else None
    before = {run: snapshot(run) for run in workspace.watched}
    command = [*workspace.prefix, sys.executable, "-m", "zoo", *outcome.args]

    def execute() -> None:
        started = time.perf_counter()
        completed = cli_helpers.run_command(  # forked, unless a prefix drops rights
            command, capture_output=True, text=True, env=zoo_env(root), cwd=root, timeout=300
        )
        outcome.seconds = time.perf_counter() - started
        outcome.returncode, outcome.stdout, outcome.stderr = (
            completed.returncode, completed.stdout, completed.stderr
        )  # fmt: skip
        out = outcome.output_dir
        if out is not None and out.is_dir():
            outcome.runs_left = sorted(p.name for p in out.iterdir() if p.is_dir())
        outcome.changed = [str(run) for run, files in before.items() if snapshot(run) != files]

    return outcome, execute


def run_matrix(rows: list[Case], root: Path, shared: dict[str, Path]) -> dict[str, Outcome]:
    """Run every row, ``ZOO_MATRIX_JOBS`` (default 2) at a time; their outcomes by id."""
    jobs = int(os.environ.get("ZOO_MATRIX_JOBS", "2"))
    with contextlib.ExitStack() as stack:
        prepared = [prepare(row, root / row.id, shared, stack) for row in rows]
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for future in [pool.submit(execute) for _, execute in prepared if execute]:
                future.result()
    return {outcome.case.id: outcome for outcome, _ in prepared}


def train_good_run(data: Path, output: Path) -> Path:
    """A tiny finished run (in this process), for the rows and tests that need one."""
    import zoo

    result = zoo.train("mlp", act="relu", dataset=TINY, data_dir=data, epochs=1, max_steps=3,
                       seed=0, output_dir=output, progress=False)  # fmt: skip
    return Path(result.run_dir)


# -- the tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_run(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_good_run(tiny_mnist, tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def outcomes(
    tiny_mnist: Path, good_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    shared = {"tiny": tiny_mnist, "good_run": good_run}
    return run_matrix(MATRIX, tmp_path_factory.mktemp("matrix"), shared)


@pytest.mark.parametrize(("case_id", "args", "code", "says"), MATRIX, ids=[c.id for c in MATRIX])
def test_fault(
    outcomes: dict[str, Outcome], case_id: str, args: list[str], code: int, says: tuple[str, ...]
) -> None:
    outcome = outcomes[case_id]
    if outcome.skip:
        pytest.skip(outcome.skip)
    shown = (
        f"zoo {' '.join(outcome.args)[:300]}\nexit {outcome.returncode}\n{outcome.stderr[-3000:]}"
    )
    assert outcome.returncode == code, shown
    assert "Error: " in outcome.stderr, shown
    for piece in outcome.says:
        assert piece in outcome.stderr, f"{piece!r} not in stderr of {shown}"
    printed = outcome.stdout + outcome.stderr
    assert "Traceback" not in printed, shown
    assert "\x1b" not in printed, "a raw control character reached the terminal"
    assert len(outcome.message) <= MAX_MESSAGE, (
        f"a {len(outcome.message):,}-character error message: {outcome.message[:300]}..."
    )
    assert outcome.runs_left == [], f"run directories left in {outcome.output_dir}: {shown}"
    assert outcome.changed == [], f"--resume changed {outcome.changed}: {shown}"


def run_zoo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return cli_helpers.run_zoo(*args, cwd=cwd, XDG_CACHE_HOME=str(cwd / "cache"))


def test_zoo_runs_lists_an_unreadable_run_with_its_reason_and_the_others_normally(
    good_run: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(good_run, runs / "a-good")
    bad = Path(shutil.copytree(good_run, runs / "b-started-5"))
    record = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**record, "started": 5}))

    listed = run_zoo("runs", str(runs), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    by_name = {Path(run["run_dir"]).name: run for run in json.loads(listed.stdout)}
    assert by_name["a-good"]["status"] == "finished"
    assert by_name["a-good"]["arch"] == "mlp" and by_name["a-good"]["test_acc"] is not None
    assert by_name["b-started-5"]["status"] == "unreadable"
    assert "'started' is 5" in by_name["b-started-5"]["error"]

    table = run_zoo("runs", str(runs), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "Traceback" not in table.stdout + table.stderr
    lines = {line.split()[0]: line for line in table.stdout.splitlines() if line.strip()}
    assert "mlp + relu on mnist:val_size=100" in lines["a-good"]
    assert "finished" in lines["a-good"] and "%" in lines["a-good"]
    assert "unreadable" in lines["b-started-5"]
    assert "'started' is 5" in table.stdout, f"the table does not say why:\n{table.stdout}"


@dataclass
class FullDiskRun:
    """A run whose disk filled up after testing, before its results were written."""

    mount: Path
    run_dir: Path
    error: BaseException


@pytest.fixture(scope="module")
def full_disk_run(
    tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FullDiskRun]:
    import lightning as L

    import zoo

    class FillDisk(L.Callback):
        def on_test_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            fill(mount)

    with contextlib.ExitStack() as stack:
        try:
            mount = mount_tmpfs(stack, tmp_path_factory.mktemp("full-disk") / "mnt", "size=8m")
        except Unavailable as reason:
            pytest.skip(str(reason))
        with pytest.raises(zoo.ZooError) as raised:
            zoo.train("mlp", act="relu", dataset=TINY, data_dir=tiny_mnist, epochs=1,
                      max_steps=3, seed=0, output_dir=mount, progress=False,
                      callbacks=[FillDisk()])  # fmt: skip
        (run_dir,) = [path for path in mount.iterdir() if path.is_dir()]
        yield FullDiskRun(mount, run_dir, raised.value)


def test_a_disk_filling_up_after_training_leaves_the_run_failed_with_the_reason(
    full_disk_run: FullDiskRun, tmp_path: Path
) -> None:
    from zoo.runs.reading import read_run

    run_dir, error = full_disk_run.run_dir, full_disk_run.error
    assert type(error).__name__ == "RunWriteError", repr(error)
    assert "No space left on device" in str(error) and str(run_dir) in str(error)
    info = read_run(run_dir)
    assert info.status == "failed", info
    assert info.error is not None and "No space left on device" in info.error, info
    assert "results.json" in info.error or "metrics.csv" in info.error, info.error

    listed = run_zoo("runs", str(full_disk_run.mount), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith(run_dir.name)]
    assert " failed " in f"{line} " and "running" not in line, listed.stdout
    assert "No space left on device" in listed.stdout  # the reason, on the line below


def test_a_failed_resume_keeps_the_reason_the_run_failed(full_disk_run: FullDiskRun) -> None:
    """Resuming the run while its disk is still full fails too; the run must still say it
    failed for lack of space, not that its process ended without saying why."""
    import zoo
    from zoo.runs.reading import read_run

    with pytest.raises(zoo.ZooError, match="No space left on device"):
        zoo.resume(full_disk_run.run_dir, progress=False)
    info = read_run(full_disk_run.run_dir)
    assert info.status == "failed", info
    assert info.error is not None and "No space left on device" in info.error, info


# -- the matrix as a table -----------------------------------------------------------------------


def markdown(outcomes: dict[str, Outcome]) -> str:
    """The matrix as run: input, expected and actual exit code, an excerpt of the message."""
    rows = [
        "| case | input | expected | got | message (excerpt) | ok |",
        "|---|---|---|---|---|---|",
    ]
    for row in MATRIX:
        outcome = outcomes[row.id]
        base = {tuple(EARLY): "EARLY", tuple(TRAIN): "TRAIN"}.get(tuple(row.args[: len(EARLY)]))
        given = " ".join(row.args[len(EARLY) :] if base else row.args)
        given = (given[:60] + "…") if len(given) > 60 else given
        given = " ".join(filter(None, [base, given.encode("unicode_escape").decode()]))
        if outcome.skip:
            rows.append(f"| {row.id} | `{given}` | {row.code} | skipped | {outcome.skip} | - |")
            continue
        first = outcome.message.splitlines()[0] if outcome.message else outcome.stderr[-200:]
        first = first.removeprefix("Error: ").replace("|", "\\|")
        first = (first[:150] + "…") if len(first) > 150 else first
        ok = (outcome.returncode == row.code and all(p in outcome.stderr for p in outcome.says)
              and not outcome.runs_left and not outcome.changed
              and len(outcome.message) <= MAX_MESSAGE)  # fmt: skip
        rows.append(f"| {row.id} | `{given}` | {row.code} | {outcome.returncode} | {first} | "
                    f"{'yes' if ok else '**NO**'} |")  # fmt: skip
    return "\n".join(rows)


if __name__ == "__main__":  # python -m tests.test_fault_matrix
    import tempfile

    with tempfile.TemporaryDirectory() as temporary:
        base = Path(temporary)
        tiny = make_mnist_root(base / "tiny")
        shared = {"tiny": tiny, "good_run": train_good_run(tiny, base / "good")}
        print(markdown(run_matrix(MATRIX, base / "matrix", shared)))
