"""The errors of trained weights: a file or an entry that cannot be used (exit 1)."""

from __future__ import annotations

from zoo.errors import ZooError, ZooUsageError


class WeightsError(ZooError):
    """Weights that cannot be loaded: a checksum or shape that differs, a file that is missing or
    is not safetensors, an entry or ``config.json`` that does not describe a sane model."""


class WeightsUsageError(ZooUsageError):
    """Asked for weights that are not there: no such name, directory or run (exit 2)."""
