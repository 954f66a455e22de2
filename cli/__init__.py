"""The ``zoo`` command line, installed as ``zoo.cli``: a thin shell over the library."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point. The commands are imported here, not when ``zoo.cli`` is, so
    that Ctrl-C while they load exits with 130 and one line, like Ctrl-C later."""
    try:
        from zoo.cli.app import main as run
    except KeyboardInterrupt:
        from zoo.errors import INTERRUPTED_MESSAGE

        print(f"\n{INTERRUPTED_MESSAGE}", file=sys.stderr)
        sys.exit(130)
    try:
        run()
    except SystemExit as error:
        if "torch" not in sys.modules:  # nothing heavy to tear down: exit as usual
            raise
        from zoo._compat.interpreter import exit_code, exit_now

        exit_now(exit_code(error))


def __getattr__(name: str) -> Any:
    if name == "cli":  # the click group: ``from zoo.cli import cli``
        from zoo.cli.app import cli

        return cli
    raise AttributeError(f"module 'zoo.cli' has no attribute {name!r}")
