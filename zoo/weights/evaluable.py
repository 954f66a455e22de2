"""Weights where ``zoo evaluate`` and ``zoo predict`` take a run: a name, an exported directory
or ``hf-hub:OWNER/REPO`` opened as a model with the ``hparams`` a checkpoint's model has."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.errors import UnknownComponentError
from zoo.weights.checkpoint import checkpoint_of
from zoo.weights.errors import WeightsUsageError
from zoo.weights.files import HUB_PREFIX
from zoo.weights.loading import CONFIG_FILE, WEIGHTS_FILE, load_weights


def open_weights(source: str | os.PathLike[str]) -> tuple[str, Any] | None:
    """``(label, model)`` if ``source`` names weights rather than a run or checkpoint (None
    then); the model's ``hparams`` hold its arch, act, dataset, shapes, classes and
    normalisation. A path that is nothing at all is a :class:`WeightsUsageError`."""
    text = os.fspath(source)
    path = Path(text).expanduser()
    # A run directory has a config.json too: an export is told apart by its weights file.
    exported = text.startswith(HUB_PREFIX) or (
        path.is_dir() and (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()
    )
    if not exported and (path.exists() or checkpoint_of(path) is not None):
        return None  # a run directory or a checkpoint file
    try:
        model, entry = load_weights(text)
    except UnknownComponentError as error:
        raise WeightsUsageError(
            f"{text!r} is not a run directory, a checkpoint, an exported model or the name of "
            f"weights ({' '.join(str(error).split('.')[1:]).strip() or 'zoo list weights'})"
        ) from error
    model.hparams = {
        "arch": entry.arch,
        "act": entry.act,
        "dataset": entry.dataset.name,
        "input_shape": list(entry.dataset.input_shape),
        "num_classes": entry.dataset.num_classes,
        "class_names": list(entry.dataset.class_names),
        "mean": entry.dataset.mean,
        "std": entry.dataset.std,
    }
    return entry.name if not path.is_dir() else str(path), model
