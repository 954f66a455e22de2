"""The built-in schedulers."""

from __future__ import annotations

import zoo


@zoo.hookimpl
def register_schedulers(register: zoo.Register) -> None:
    """Nothing yet."""
