"""Run directories: :class:`Run` alone creates, locks and updates one.

A run directory holds ``config.json`` (the :class:`~zoo.runs.config.RunConfig`, the status and where
the components came from), ``metrics.csv``, ``checkpoints/best.ckpt`` and
``checkpoints/last.ckpt``, ``results.json`` and ``.lock``. Every file is written atomically
(:mod:`zoo.runs.files`), so a crash leaves the previous version or the new one.

One process writes a run at a time: the writer holds an ``flock`` on ``.lock``, which the kernel
releases when the process ends, however it ends. ``config.json`` says ``running`` while a run
trains; a reader (:mod:`zoo.runs.reading`) that finds that status with the lock free knows its
process died, and reads the reason from ``.lock`` if there was one (it is written in place there,
needing no free disk space), else reports the run ``interrupted``. No torch here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from zoo.errors import RunInUseError, RunWriteError
from zoo.runs.config import ConfigError
from zoo.runs.files import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LOCK_FILE,
    LOCK_SIZE,
    METRICS_FILE,
    RESULTS_FILE,
    lock_note,
    write_atomically,
)
from zoo.runs.metrics import MetricsHistory
from zoo.runs.reading import RESULT_PATHS, read_record
from zoo.text import slug

#: Seconds a writer waits for readers, which hold the lock shared for microseconds.
LOCK_WAIT = 2.0


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

    checkpoint_dir = property(lambda self: self.path / CHECKPOINT_DIR)
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
        """An existing run directory, locked for writing, once its folders are known to be
        writable (:meth:`check_writable`)."""
        run = cls(path)
        if not (run.path / CONFIG_FILE).is_file():
            raise ConfigError(f"{run.path} is not a run directory (it has no {CONFIG_FILE})")
        run._acquire()
        try:
            run.record = read_record(run.path)
            run.check_writable()
        except BaseException:
            run.release()
            raise
        return run

    def check_writable(self) -> None:
        """A :class:`RunWriteError` naming the first of the run's folders (the run directory,
        ``checkpoints/``) in which a file cannot be created: checked before anything changes,
        so that a run which cannot go on is left exactly as it was (status and ``config.json``
        included), not half updated."""
        for folder in (self.path, self.checkpoint_dir):
            if not folder.is_dir():
                continue
            probe = folder / f".write-check.{os.getpid()}.partial"
            try:
                with open(probe, "xb"):
                    pass
                probe.unlink()
            except OSError as error:
                raise RunWriteError(
                    f"cannot write in {folder} ({error.strerror or error}): the run is left as "
                    "it was; make the folder writable, or copy the run where you can write, "
                    "and resume it again",
                    None,
                ) from None

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
                holder = lock_note(lock_path)
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
        previous = lock_note(lock_path)
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
        is marked failed with the reason (in ``.lock`` if ``config.json`` cannot be written).
        Its paths (:data:`~zoo.runs.reading.RESULT_PATHS`) are written relative to the run
        directory, so that they stay true wherever the run is moved."""
        recorded, here = dict(results), self.path.resolve()
        for key in RESULT_PATHS:
            if isinstance(recorded.get(key), str):
                recorded[key] = os.path.relpath(os.path.realpath(recorded[key]), here)
        try:
            self._write(RESULTS_FILE, _json(recorded))
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
