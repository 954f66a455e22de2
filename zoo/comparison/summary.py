"""Summarising a comparison: each finished run's curves read from its run directory, one row
per activation (means over seeds, per-layer diagnostics) and each activation's paired test
against the best (:mod:`zoo.comparison.stats`)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.comparison.plan import PlannedRuns, Settings
from zoo.comparison.stats import paired_differences
from zoo.comparison.table import format_table
from zoo.runs.curves import RunCurves, read_curves


@dataclass
class Comparison:
    """What :func:`compare` produced: one summary row per activation, the runs, the files."""

    settings: Settings
    command: str
    summary: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    output_dir: str
    files: dict[str, str]
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: How this invocation trained its pending runs: ``mode`` (``fused``, ``separate`` or
    #: ``none``: every run had finished before) and, fused, the ``groups`` of (act, seed).
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "settings": self.settings.to_dict(),
            "summary": self.summary,
            "runs": self.runs,
            "failed": self.failed,
            "training": self.training,
            "output_dir": self.output_dir,
            "files": self.files,
        }

    def table(self) -> str:
        """The summary as an aligned text table."""
        return format_table(self.summary)


def summarise_comparison(
    runs: PlannedRuns, finished: dict[tuple[str, int], str], failed: list[dict[str, Any]]
) -> tuple[Comparison, list[tuple[str, int, RunCurves]]]:
    """The comparison of the ``finished`` runs (their curves read from their directories, in
    the plan's order), and those curves."""
    curves = [
        (act, seed, read_curves(finished[(act, seed)]))
        for act, seed in runs.todo
        if (act, seed) in finished
    ]
    comparison = Comparison(
        settings=runs.settings,
        command=runs.command,
        summary=summarise(runs.settings.acts, curves),
        runs=[_run_row(act, seed, run, runs.out) for act, seed, run in curves],
        output_dir=str(runs.out),
        files={},
        failed=failed,
        training=runs.training,
    )
    return comparison, curves


def summarise(
    acts: Sequence[str], runs: Sequence[tuple[str, int, RunCurves]]
) -> list[dict[str, Any]]:
    """One row per activation: means over its seeds (test accuracy also with its std), and its
    test accuracy against the best activation's, paired by seed (see :func:`add_paired_tests`)."""
    rows = []
    for act in acts:
        mine = [curves for a, _, curves in runs if a == act]
        if not mine:
            continue
        test = [c.results["test_acc"] for c in mine]
        first_layer = [_first_layer_grad(c) for c in mine]
        rows.append(
            {
                "activation": act,
                "runs": len(mine),
                "test_acc": _mean(test),
                "test_acc_std": statistics.stdev(test) if len(test) > 1 else 0.0,
                "best_val_acc": _mean([c.results.get("best_val_acc") for c in mine]),
                "final_train_loss": _mean([_final_train_loss(c) for c in mine]),
                "seconds_per_epoch": _mean([_seconds_per_epoch(c) for c in mine]),
                "dead_end": _mean([c.final("dead") for c in mine]),
                "saturated_end": _mean([c.final("saturated") for c in mine]),
                "grad_norm_first": _mean(first_layer),
                "layers": {
                    stat: _per_layer(mine, stat)
                    for stat in ("dead", "saturated", "grad_norm", "weight_norm")
                },
                "seeds": [s for a, s, _ in runs if a == act],
            }
        )
    add_paired_tests(rows, runs)
    return rows


def add_paired_tests(
    rows: Sequence[dict[str, Any]], runs: Sequence[tuple[str, int, RunCurves]]
) -> None:
    """Add to each summary row its test accuracy against the best activation's (the highest
    mean), seed by seed (:func:`zoo.comparison.stats.paired_differences`): ``diff_from_best`` (the
    mean
    per-seed difference), ``ci95`` (``[low, high]``, or None), ``p_value`` (the paired t-test's,
    or None) and ``verdict`` (in words). Seed k gives every activation the same initial weights
    and data order, so runs with the same seed are a pair."""
    test_acc: dict[str, dict[int, float]] = {row["activation"]: {} for row in rows}
    for act, seed, curves in runs:
        if act in test_acc and curves.results.get("test_acc") is not None:
            test_acc[act][seed] = float(curves.results["test_acc"])
    paired = paired_differences(test_acc)
    for row in rows:
        result = paired.get(row["activation"])
        if result is not None:
            row.update(result.to_dict())
        else:
            row.update(diff_from_best=None, ci95=None, p_value=None, verdict="no test accuracy")


def _mean(values: Sequence[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return statistics.fmean(present) if present else None


def _final_train_loss(curves: RunCurves) -> float | None:
    if curves.train_loss_epoch:
        return curves.train_loss_epoch[-1]
    return curves.train_loss_steps[-1][1] if curves.train_loss_steps else None


def _seconds_per_epoch(curves: RunCurves) -> float | None:
    epochs = curves.results.get("epochs") or 0
    seconds = curves.results.get("train_seconds")
    return seconds / epochs if epochs and seconds is not None else None


def _first_layer_grad(curves: RunCurves) -> float | None:
    layers = curves.layers("grad_norm")
    if not layers:
        return None
    return _mean(curves.diag_series("grad_norm", layers[0])[1])


def _per_layer(runs: Sequence[RunCurves], stat: str) -> dict[str, dict[str, float | None]]:
    """Per layer (forward order): the first probe's value, the last one's and the mean over
    training, each averaged over the runs."""
    layers = runs[0].layers(stat)
    table = {}
    for layer in layers:
        series = [c.diag_series(stat, layer)[1] for c in runs]
        series = [values for values in series if values]
        table[layer] = {
            "start": _mean([values[0] for values in series]),
            "end": _mean([values[-1] for values in series]),
            "mean": _mean([_mean(values) for values in series]),
        }
    return table


def _run_row(act: str, seed: int, curves: RunCurves, out: Path) -> dict[str, Any]:
    run_dir = Path(curves.run_dir)
    try:
        shown = str(run_dir.resolve().relative_to(out.resolve()))
    except ValueError:
        shown = str(run_dir)
    return {
        "activation": act,
        "seed": seed,
        "run_dir": shown,
        "test_acc": curves.results.get("test_acc"),
        "best_val_acc": curves.results.get("best_val_acc"),
        "final_train_loss": _final_train_loss(curves),
        "seconds_per_epoch": _seconds_per_epoch(curves),
        "dead_end": curves.final("dead"),
        "saturated_end": curves.final("saturated"),
        "grad_norm_first": _first_layer_grad(curves),
    }
