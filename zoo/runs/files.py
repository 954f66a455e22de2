"""The files of a run directory: their names, atomic writes, and the note in ``.lock`` (no torch).

Every file of a run is written atomically (a temporary file, fsync, rename), so a crash leaves the
previous version or the new one. ``.lock`` is what one writer holds (see
:class:`zoo.runs.directory.Run`); readers only look at it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_OUTPUT_DIR = "runs"
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
METRICS_FILE = "metrics.csv"
LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
#: Bytes reserved in ``.lock`` for the holder's note, so that writing it needs no new blocks.
LOCK_SIZE = 4096
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


def held(path: Path) -> bool:
    """Whether a process holds the lock of the run in ``path`` (is writing it)."""
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


def lock_note(path: Path) -> dict[str, Any]:
    """The note the last writer left in the lock file ``path`` (empty if none can be read)."""
    try:
        note = json.loads(path.read_bytes().decode(errors="replace").strip() or "{}")
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}
