"""Run directories: :class:`Run` alone creates, locks, updates and reads one.

A run directory holds ``config.json`` (the :class:`~zoo.runs.config.RunConfig`, the status and where
the components came from), ``metrics.csv``, ``checkpoints/best.ckpt`` and
``checkpoints/last.ckpt``, ``results.json`` and ``.lock``. Every file is written atomically
(a temporary file, fsync, rename), so a crash leaves the previous version or the new one.

One process writes a run at a time: the writer holds an ``flock`` on ``.lock``, which the kernel
releases when the process ends, however it ends. ``config.json`` says ``running`` while a run
trains; a reader that finds that status with the lock free knows its process died, and reads
the reason from ``.lock`` if there was one (it is written in place there, needing no free disk
space), else reports the run ``interrupted``. Reads JSON only; no torch here.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from zoo.errors import RunInUseError, RunWriteError
from zoo.runs.config import ConfigError, RunConfig, parse_json
from zoo.text import slug

DEFAULT_OUTPUT_DIR = "runs"
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
METRICS_FILE = "metrics.csv"
LOCK_FILE = ".lock"
#: Bytes reserved in ``.lock`` for the holder's note, so that writing it needs no new blocks.
LOCK_SIZE = 4096
#: Seconds a writer waits for readers, which hold the lock shared for microseconds.
LOCK_WAIT = 2.0
STATUSES = ("running", "finished", "interrupted", "failed")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, fsync it, rename it over ``path``."""
    replace_atomically(path, lambda file: file.write(text.encode("utf-8")))


def replace_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync it, rename it over ``path``
    and fsync the directory: a crash leaves the old file or the new one, never a partial one.
    The temporary file is removed if anything fails."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


class Run:
    """A run directory. :meth:`create` and :meth:`open` return it locked for writing by this
    process (a :class:`zoo.errors.RunInUseError` if another process holds it); :func:`read_run`
    reads any run without locking it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.record: dict[str, Any] = {}
        self.metrics = MetricsHistory(self.path / METRICS_FILE)
        self._lock: int | None = None
        self._carried: dict[str, Any] = {}

    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    best_checkpoint = property(lambda self: self.checkpoint_dir / "best.ckpt")
    last_checkpoint = property(lambda self: self.checkpoint_dir / "last.ckpt")

    @classmethod
    def create(cls, output_dir: str | os.PathLike[str], name: str, record: dict[str, Any]) -> Run:
        """A new run directory ``output_dir/<time>-<name>``, locked, with ``config.json``
        holding ``record`` and status ``running``. Nothing is left behind if that fails."""
        output_dir = Path(output_dir)
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunWriteError(f"cannot create the output directory {output_dir}", error) from None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        name_part = slug(name)
        for attempt in range(1000):
            path = output_dir / (f"{stamp}-{name_part}" + (f"-{attempt}" if attempt else ""))
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as error:
                raise RunWriteError(
                    f"cannot create a run directory in {output_dir}", error
                ) from None
            run = cls(path)
            try:
                run._acquire()
                run.update(**record, status="running")
            except BaseException:
                run.discard()
                raise
            return run
        raise RunWriteError(f"cannot create a new run directory in {output_dir}", None)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Run:
        """An existing run directory, locked for writing."""
        run = cls(path)
        if not (run.path / CONFIG_FILE).is_file():
            raise ConfigError(f"{run.path} is not a run directory (it has no {CONFIG_FILE})")
        run._acquire()
        try:
            run.record = read_record(run.path)
        except BaseException:
            run.release()
            raise
        return run

    # -- the lock ------------------------------------------------------------------------------

    def _acquire(self) -> None:
        lock_path = self.path / LOCK_FILE
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunWriteError(f"cannot lock run {self.path}", error) from None
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                holder = _lock_note(lock_path)
                os.close(descriptor)
                pid = holder.get("pid", "?")
                raise RunInUseError(
                    f"run {self.path} is in use by process {pid} on "
                    f"{holder.get('host', '?')} (since {holder.get('since', '?')}): "
                    f"wait for it to end, or stop it first (kill {pid})"
                ) from None
        self._lock = descriptor
        # A failure the previous holder could record only here stays until config.json is
        # rewritten: a resume that cannot write either must not erase it.
        previous = _lock_note(lock_path)
        self._carried = {k: previous[k] for k in ("status", "error") if k in previous}
        self._note({})
        try:
            os.posix_fallocate(descriptor, 0, LOCK_SIZE)  # the note's bytes, reserved now
        except OSError as error:
            self.release()
            raise RunWriteError(f"cannot lock run {self.path}", error) from None

    def _note(self, extra: dict[str, Any]) -> None:
        """Write this process's note into the reserved bytes of ``.lock``, in place."""
        if self._lock is None:
            return
        note = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": self.record.get("started") or datetime.now().isoformat(timespec="seconds"),
            **self._carried,
            **extra,
        }
        data = json.dumps(note).encode()[: LOCK_SIZE - 1]
        with contextlib.suppress(OSError):
            os.pwrite(self._lock, data.ljust(LOCK_SIZE), 0)
            os.fsync(self._lock)

    def discard(self) -> None:
        """Remove a run directory that never trained (what :meth:`create` wrote)."""
        for leftover in self.path.iterdir():
            leftover.unlink()
        self.release()
        self.path.rmdir()

    def release(self) -> None:
        """Give the lock up (the kernel does it too when the process ends)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- writing -------------------------------------------------------------------------------

    def update(self, **changes: Any) -> None:
        """Merge ``changes`` into ``config.json`` and write it atomically."""
        self.record.update(changes)
        self._write(CONFIG_FILE, _json(self.record))
        if self._carried:
            self._carried = {}
            self._note({})

    def finish(self, results: Mapping[str, Any]) -> None:
        """Write ``results.json``, then mark the run finished; if either write fails, the run
        is marked failed with the reason (in ``.lock`` if ``config.json`` cannot be written)."""
        try:
            self._write(RESULTS_FILE, _json(dict(results)))
            self.update(status="finished", error=None)
        except RunWriteError as error:
            self.fail("failed", str(error))
            raise

    def fail(self, status: str, reason: str) -> None:
        """Mark the run ``interrupted`` or ``failed`` with ``reason``, wherever that still can
        be recorded."""
        self._note({"status": status, "error": reason})
        with contextlib.suppress(RunWriteError):
            self.update(status=status, error=reason)

    def _write(self, name: str, text: str) -> None:
        try:
            write_atomically(self.path / name, text)
        except OSError as error:
            raise RunWriteError(f"cannot write {self.path / name}", error) from None


class MetricsHistory:
    """A run's ``metrics.csv``: the rows of every epoch, each once, in order.

    Rows are kept in memory and the file is rewritten atomically by :meth:`flush`, which the
    run calls with every checkpoint it saves and when training ends; a checkpoint records the
    number of rows flushed with it, so a resumed run :meth:`truncate`\\ s to that number and
    appends, whatever was written after the checkpoint.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.flushed = 0

    def load(self) -> None:
        """Read the rows already in the file (a resumed run appends to them)."""
        try:
            with open(self.path, newline="", encoding="utf-8") as file:
                self.rows = [dict(row) for row in csv.DictReader(file)]
        except FileNotFoundError:
            self.rows = []
        self.flushed = len(self.rows)

    def truncate(self, count: int) -> None:
        del self.rows[count:]

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))

    def flush(self) -> int:
        """Write every row; return how many there are."""
        keys = sorted({key for row in self.rows for key in row})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        try:
            write_atomically(self.path, buffer.getvalue())
        except OSError as error:
            raise RunWriteError(f"cannot write {self.path}", error) from None
        self.flushed = len(self.rows)
        return self.flushed


# -- reading ------------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """One run directory, as its files describe it; ``error`` says why a run failed, or why
    its directory could not be read (status ``unreadable``)."""

    run_dir: str
    arch: str | None
    act: str | None
    dataset: str | None
    status: str  # running, finished, interrupted, failed or unreadable
    started: str | None
    seed: int | None
    epochs: int | None
    best_val_acc: float | None
    test_acc: float | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``config.json`` as a checked dict (its ``config`` is a valid RunConfig);
    a :class:`ConfigError` naming the file and the problem otherwise."""
    file = Path(path) / CONFIG_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {file}: {error}") from None
    record = parse_json(text, str(file))
    if not isinstance(record, dict):
        raise ConfigError(f"{file} is not a JSON object")
    if not isinstance(record.get("config"), dict):
        raise ConfigError(f"{file} has no 'config' object")
    RunConfig.from_dict(record["config"], source=str(file))
    for key, types in (("status", (str,)), ("started", (str, type(None)))):
        if not isinstance(record.get(key), types):
            raise ConfigError(f"{file}: {key!r} is {record.get(key)!r}")
    if record["status"] not in STATUSES:
        raise ConfigError(f"{file}: unknown status {record['status']!r}")
    return record


def read_config(path: str | os.PathLike[str]) -> RunConfig:
    """The configuration of the run in ``path``."""
    return RunConfig.from_dict(read_record(path)["config"], source=str(Path(path) / CONFIG_FILE))


def read_results(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run's ``results.json``, or None if it has none that reads as a JSON object."""
    try:
        results = parse_json((Path(path) / RESULTS_FILE).read_text(encoding="utf-8"), "results")
    except (OSError, UnicodeDecodeError, ConfigError):
        return None
    return results if isinstance(results, dict) else None


def read_run(path: str | os.PathLike[str]) -> RunInfo:
    """The run in ``path``; never raises: a directory that cannot be read is ``unreadable``,
    with the reason in ``error``."""
    path = Path(path)
    try:
        record = read_record(path)
    except ConfigError as error:
        return RunInfo(str(path), None, None, None, "unreadable", None, None, None, None, None,
                       str(error))  # fmt: skip
    config = record["config"]
    status, error = record["status"], record.get("error")
    if status == "running" and not _held(path):
        note = _lock_note(path / LOCK_FILE)
        status = note.get("status") if note.get("status") in STATUSES else "interrupted"
        error = note.get("error") or "its process ended without recording why (killed?)"
    results = read_results(path) or {}
    return RunInfo(
        run_dir=str(path),
        arch=config["arch"],
        act=config["act"],
        dataset=config["dataset"],
        status=status,
        started=record.get("started"),
        seed=record["seed"] if isinstance(record.get("seed"), int) else config["seed"],
        epochs=_number(results.get("epochs"), int) or config["epochs"],
        best_val_acc=_number(results.get("best_val_acc"), float),
        test_acc=_number(results.get("test_acc"), float),
        error=str(error) if error is not None and status != "finished" else None,
    )


def list_runs(directory: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR) -> list[RunInfo]:
    """The runs in ``directory`` (default ``./runs``), oldest first; unreadable ones included,
    marked so."""
    directory = Path(directory)
    try:
        candidates = sorted(p for p in directory.iterdir() if (p / CONFIG_FILE).exists())
    except OSError:
        return []
    runs = [read_run(path) for path in candidates]
    return sorted(runs, key=lambda r: (r.started or "", r.run_dir))


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)


def _held(path: Path) -> bool:
    """Whether a process holds the run's lock (is writing it)."""
    try:
        descriptor = os.open(path / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def _lock_note(path: Path) -> dict[str, Any]:
    try:
        note = json.loads(path.read_bytes().decode(errors="replace").strip() or "{}")
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


#: The prefix of the diagnostics' columns in ``metrics.csv`` (see :mod:`zoo.training.diagnostics`).
DIAG_PREFIX = "diag/"
DIAGNOSTICS_FILE = "diagnostics.json"


@dataclass
class RunCurves:
    """One run directory's record, results and curves, read from its files (no torch)."""

    run_dir: str
    record: dict[str, Any]  # config.json; empty if it could not be read
    results: dict[str, Any]  # results.json; empty if there is none
    epochs: list[int] = field(default_factory=list)  # epoch index per validation
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    train_loss_epoch: list[float] = field(default_factory=list)
    train_loss_steps: list[tuple[int, float]] = field(default_factory=list)
    diag: list[dict[str, float]] = field(default_factory=list)  # step, epoch, diag/... per probe
    activation_layers: list[str] = field(default_factory=list)
    parameter_layers: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        """The run's configuration (``config.json``'s ``config``), empty if unreadable."""
        config = self.record.get("config")
        return config if isinstance(config, dict) else {}

    def diag_series(self, stat: str, layer: str) -> tuple[list[float], list[float]]:
        """Steps and values of ``diag/<stat>/<layer>`` over training."""
        key = f"{DIAG_PREFIX}{stat}/{layer}"
        points = [(row["step"], row[key]) for row in self.diag if key in row]
        return [p[0] for p in points], [p[1] for p in points]

    def final(self, stat: str, layer: str = "all") -> float | None:
        """The last probe's ``diag/<stat>/<layer>``, or None if it was never logged."""
        _, values = self.diag_series(stat, layer)
        return values[-1] if values else None

    def layers(self, stat: str) -> list[str]:
        """The layers that have ``diag/<stat>/...`` values, in forward order."""
        prefix = f"{DIAG_PREFIX}{stat}/"
        present = {k[len(prefix) :] for row in self.diag for k in row if k.startswith(prefix)}
        present.discard("all")
        order = self.parameter_layers if stat in ("grad_norm", "weight_norm") else []
        order = order or self.activation_layers
        ordered = [name for name in order if name in present]
        return ordered + sorted(present - set(ordered), key=_natural)


def read_curves(path: str | os.PathLike[str]) -> RunCurves:
    """The run in ``path`` with its curves: ``config.json`` (with :func:`read_record`),
    ``results.json``, ``metrics.csv`` and ``diagnostics.json``. A JSON file that is missing or
    cannot be read leaves its part empty; so does a missing ``metrics.csv``."""
    path = Path(path)
    try:
        record = read_record(path)
    except ConfigError:
        record = {}
    curves = RunCurves(str(path), record, read_results(path) or {})
    if (path / METRICS_FILE).is_file():
        history = MetricsHistory(path / METRICS_FILE)
        history.load()
        for row in history.rows:
            _add_metrics(curves, row)
    layers = _read_object(path / DIAGNOSTICS_FILE)
    curves.activation_layers = list(layers.get("activation_layers", []))
    curves.parameter_layers = list(layers.get("parameter_layers", []))
    return curves


def _add_metrics(curves: RunCurves, row: Mapping[str, Any]) -> None:
    """Add one ``metrics.csv`` row to the curves it has values for."""
    values = {k: float(v) for k, v in row.items() if k and v not in ("", None)}
    step = int(values.get("step", 0))
    if "val_acc" in values:
        curves.epochs.append(int(values.get("epoch", len(curves.epochs))))
        curves.val_acc.append(values["val_acc"])
        curves.val_loss.append(values.get("val_loss", math.nan))
    # Epoch means: train_loss_epoch (logged on step and epoch) or train_loss.
    epoch_loss = values.get("train_loss_epoch", values.get("train_loss"))
    if epoch_loss is not None:
        curves.train_loss_epoch.append(epoch_loss)
    if "train_loss_step" in values:
        curves.train_loss_steps.append((step, values["train_loss_step"]))
    diag = {k: v for k, v in values.items() if k.startswith(DIAG_PREFIX)}
    if diag:
        curves.diag.append({"step": step, "epoch": values.get("epoch", 0.0), **diag})


def _read_object(file: Path) -> dict[str, Any]:
    """A JSON file's object, or an empty dict if it is missing, unreadable or not an object."""
    try:
        data = parse_json(file.read_text(encoding="utf-8"), str(file))
    except (OSError, UnicodeDecodeError, ConfigError):
        return {}
    return data if isinstance(data, dict) else {}


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
