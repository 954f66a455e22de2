"""Running plugin code without letting it break zoo: what it prints goes to stderr (stdout,
file descriptor 1 included, carries zoo's own output: ``--json``), and an installed or ``-p``
plugin whose import or hook runs longer than a limit is left behind, so the host can name it
and skip it instead of hanging with it.

``ZOO_PLUGIN_TIMEOUT`` sets the limit in seconds (default 120; ``0`` turns it off).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from zoo.errors import ZooUsageError

T = TypeVar("T")

#: Environment variable: seconds an installed or ``-p`` plugin's import, or one of its hooks,
#: may take before it is skipped.
PLUGIN_TIMEOUT_ENV = "ZOO_PLUGIN_TIMEOUT"
# Generous: a cold first import of torch on a network file system can take a minute.
DEFAULT_PLUGIN_TIMEOUT = 120.0


class PluginTimeout(Exception):
    """Plugin code that did not return within ``seconds``; it goes on in a thread of its own."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not finish within {seconds:g} s")
        self.seconds = seconds

    def reason(self, what: str) -> str:
        """Why the plugin is skipped, ``what`` being the code that ran too long."""
        return (
            f"timed out: {what} took longer than {self.seconds:g} s "
            f"({PLUGIN_TIMEOUT_ENV}=SECONDS raises the limit)"
        )


def plugin_timeout() -> float | None:
    """The limit from ``ZOO_PLUGIN_TIMEOUT`` (None: no limit); a :class:`ZooUsageError` if it
    is not a number of seconds."""
    value = os.environ.get(PLUGIN_TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_PLUGIN_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if math.isnan(seconds) or seconds < 0:
        raise ZooUsageError(
            f"{PLUGIN_TIMEOUT_ENV}={value!r}: expected a number of seconds (0 for no limit)"
        )
    return None if seconds == 0 or math.isinf(seconds) else seconds


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """While plugin code runs, ``sys.stdout`` and file descriptor 1 both lead to stderr."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()  # zoo's own output so far goes where it was meant to
    try:
        saved: int | None = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptor 1 or 2 (closed by the caller): nothing to protect
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 1)
            os.close(saved)


def run_plugin_code(function: Callable[[], T], limit: float | None) -> T:
    """``function()``, with its output sent to stderr. With a ``limit``, it runs in a thread of
    its own and :class:`PluginTimeout` is raised if it has not returned after ``limit``
    seconds (the thread is abandoned: a daemon, it ends with the process); what it raises is
    raised here."""
    with stdout_to_stderr():
        if limit is None:
            return function()
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["value"] = function()
            except BaseException as error:  # raised again in the calling thread
                outcome["error"] = error

        thread = threading.Thread(target=target, name="zoo-plugin", daemon=True)
        thread.start()
        thread.join(limit)
        if thread.is_alive():
            raise PluginTimeout(limit)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]
