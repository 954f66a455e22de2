"""Ending a process without tearing the interpreter down.

Once torch and Lightning are imported, the interpreter's own exit takes seconds: after the
``atexit`` handlers it takes apart every module and collects what they held (2.5 to 4.5 s of a
``zoo train`` on a 2-core machine, measured with ``benchmarks/startup.py``). Nothing of a run is
in that teardown: runs, checkpoints and logs are written and closed before. :func:`exit_now`
does what the exit does for a program (non-daemon threads joined, ``atexit`` handlers run,
standard streams flushed), then ends the process. The handlers are run with
``atexit._run_exitfuncs``, the interpreter's own (private) function; where it is missing, or
with ``ZOO_FAST_EXIT=0``, the interpreter exits as usual.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from typing import NoReturn

#: ``ZOO_FAST_EXIT=0`` lets the interpreter exit as usual, teardown included.
SWITCH = "ZOO_FAST_EXIT"


def exit_code(error: SystemExit) -> int:
    """The exit status ``SystemExit(code)`` gives; a code that is not a number is printed to
    standard error first, as the interpreter does."""
    if error.code is None:
        return 0
    if isinstance(error.code, int):
        return error.code
    print(error.code, file=sys.stderr)
    return 1


def exit_now(code: int, signum: int | None = None) -> NoReturn:
    """End this process with status ``code`` (or killed by ``signum``, as after an uncaught
    ``KeyboardInterrupt``) without the interpreter's teardown of its modules."""
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is None or os.environ.get(SWITCH) == "0":
        if signum is not None:
            raise KeyboardInterrupt
        sys.exit(code)
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    run_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if signum is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(code & 0xFF)
