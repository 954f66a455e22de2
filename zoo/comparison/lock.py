"""One comparison at a time in an output directory: an exclusive ``flock`` on a lock file in
it, which names its holder (pid and command line) and which the system releases if the holder
dies, so that two comparisons never train one slot twice or write one fused checkpoint
together."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from zoo.comparison.plan import unwritable
from zoo.errors import ZooError

try:
    import fcntl
except ImportError:  # Windows: no flock, no lock
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".zoo-compare.lock"


class ComparisonInUse(ZooError):
    """Another comparison holds the output directory."""


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock while the block runs, or raise :class:`ComparisonInUse` at once
    naming the comparison that holds it. The lock file is removed when the block ends."""
    if fcntl is None:
        yield
        return
    path = out / LOCK_NAME
    descriptor = _acquire(out, path)
    try:
        holder = {"pid": os.getpid(), "command": _command_line()}
        os.ftruncate(descriptor, 0)
        os.write(descriptor, (json.dumps(holder) + "\n").encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: whoever opened it meanwhile sees it is stale
        os.close(descriptor)


def _acquire(out: Path, path: Path) -> int:
    """A descriptor of ``path``, exclusively locked, still the file at ``path``."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise unwritable(out, error) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise ComparisonInUse(
                f"another zoo compare is writing to {out} ({holder}); wait for it to end, or "
                "give this one another --output-dir"
            ) from None
        try:
            if os.fstat(descriptor).st_ino == os.stat(path).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)  # its holder removed it as it ended: lock the new one


def _holder(descriptor: int) -> str:
    """``pid N: COMMAND`` of the lock's holder, as it wrote them."""
    try:
        data = json.loads(os.pread(descriptor, 65536, 0).decode())
        return f"pid {int(data['pid'])}: {data['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "it is starting"


def _command_line() -> str:
    """This process's command line, with ``zoo`` for the entry point or ``python -m zoo``."""
    argv = list(sys.argv) or ["python"]
    if Path(argv[0]).name in ("zoo", "__main__.py"):
        argv[0] = "zoo"
    return shlex.join(argv)
