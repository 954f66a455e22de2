"""A run's curves, read from its files for plots and comparisons: validation accuracy and loss
per epoch, the training loss, and the ``--diagnostics`` probes (no torch)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.runs.config import ConfigError, parse_json
from zoo.runs.files import METRICS_FILE
from zoo.runs.metrics import MetricsHistory
from zoo.runs.reading import read_record, read_results

#: The prefix of the diagnostics' columns in ``metrics.csv`` (see :mod:`zoo.training.diagnostics`).
DIAG_PREFIX = "diag/"
DIAGNOSTICS_FILE = "diagnostics.json"


@dataclass
class RunCurves:
    """One run directory's record, results and curves, read from its files (no torch)."""

    run_dir: str
    record: dict[str, Any]  # config.json; empty if it could not be read
    results: dict[str, Any]  # results.json; empty if there is none
    epochs: list[int] = field(default_factory=list)  # epoch index per validation
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    train_loss_epoch: list[float] = field(default_factory=list)
    train_loss_steps: list[tuple[int, float]] = field(default_factory=list)
    diag: list[dict[str, float]] = field(default_factory=list)  # step, epoch, diag/... per probe
    activation_layers: list[str] = field(default_factory=list)
    parameter_layers: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        """The run's configuration (``config.json``'s ``config``), empty if unreadable."""
        config = self.record.get("config")
        return config if isinstance(config, dict) else {}

    def diag_series(self, stat: str, layer: str) -> tuple[list[float], list[float]]:
        """Steps and values of ``diag/<stat>/<layer>`` over training."""
        key = f"{DIAG_PREFIX}{stat}/{layer}"
        points = [(row["step"], row[key]) for row in self.diag if key in row]
        return [p[0] for p in points], [p[1] for p in points]

    def final(self, stat: str, layer: str = "all") -> float | None:
        """The last probe's ``diag/<stat>/<layer>``, or None if it was never logged."""
        _, values = self.diag_series(stat, layer)
        return values[-1] if values else None

    def layers(self, stat: str) -> list[str]:
        """The layers that have ``diag/<stat>/...`` values, in forward order."""
        prefix = f"{DIAG_PREFIX}{stat}/"
        present = {k[len(prefix) :] for row in self.diag for k in row if k.startswith(prefix)}
        present.discard("all")
        order = self.parameter_layers if stat in ("grad_norm", "weight_norm") else []
        order = order or self.activation_layers
        ordered = [name for name in order if name in present]
        return ordered + sorted(present - set(ordered), key=_natural)


def read_curves(path: str | os.PathLike[str]) -> RunCurves:
    """The run in ``path`` with its curves: ``config.json`` (with :func:`read_record`),
    ``results.json``, ``metrics.csv`` and ``diagnostics.json``. A JSON file that is missing or
    cannot be read leaves its part empty; so does a missing ``metrics.csv``."""
    path = Path(path)
    try:
        record = read_record(path)
    except ConfigError:
        record = {}
    curves = RunCurves(str(path), record, read_results(path) or {})
    if (path / METRICS_FILE).is_file():
        history = MetricsHistory(path / METRICS_FILE)
        history.load()
        for row in history.rows:
            _add_metrics(curves, row)
    layers = _read_object(path / DIAGNOSTICS_FILE)
    curves.activation_layers = list(layers.get("activation_layers", []))
    curves.parameter_layers = list(layers.get("parameter_layers", []))
    return curves


def _add_metrics(curves: RunCurves, row: Mapping[str, Any]) -> None:
    """Add one ``metrics.csv`` row to the curves it has values for."""
    values = {k: float(v) for k, v in row.items() if k and v not in ("", None)}
    step = int(values.get("step", 0))
    if "val_acc" in values:
        curves.epochs.append(int(values.get("epoch", len(curves.epochs))))
        curves.val_acc.append(values["val_acc"])
        curves.val_loss.append(values.get("val_loss", math.nan))
    # Epoch means: train_loss_epoch (logged on step and epoch) or train_loss.
    epoch_loss = values.get("train_loss_epoch", values.get("train_loss"))
    if epoch_loss is not None:
        curves.train_loss_epoch.append(epoch_loss)
    if "train_loss_step" in values:
        curves.train_loss_steps.append((step, values["train_loss_step"]))
    diag = {k: v for k, v in values.items() if k.startswith(DIAG_PREFIX)}
    if diag:
        curves.diag.append({"step": step, "epoch": values.get("epoch", 0.0), **diag})


def _read_object(file: Path) -> dict[str, Any]:
    """A JSON file's object, or an empty dict if it is missing, unreadable or not an object."""
    try:
        data = parse_json(file.read_text(encoding="utf-8"), str(file))
    except (OSError, UnicodeDecodeError, ConfigError):
        return {}
    return data if isinstance(data, dict) else {}


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
