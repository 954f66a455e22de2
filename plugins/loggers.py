"""The built-in loggers."""

from __future__ import annotations

import zoo


@zoo.hookimpl
def register_loggers(register: zoo.Register) -> None:
    """Nothing yet."""
