"""The built-in augmentations."""

from __future__ import annotations

import zoo


@zoo.hookimpl
def register_augmentations(register: zoo.Register) -> None:
    """Nothing yet."""
