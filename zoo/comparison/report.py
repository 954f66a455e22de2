"""A comparison's files: ``comparison.csv``, ``comparison.json``, the plots (drawn by
:mod:`zoo.plots`, imported only then) and ``report.md`` with the paired tests in words."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoo.comparison.plan import Settings
from zoo.comparison.stats import ALPHA
from zoo.comparison.summary import Comparison
from zoo.comparison.table import markdown_table
from zoo.errors import ZooError
from zoo.runs.curves import RunCurves


def _silent(message: str) -> None:
    """An ``echo`` that says nothing."""


def write_comparison(
    comparison: Comparison,
    runs: Sequence[tuple[str, int, RunCurves]],
    *,
    plots: bool = True,
    echo: Callable[[str], None] = _silent,
) -> None:
    """Write the plots (with ``plots``, if matplotlib is installed), ``comparison.csv``,
    ``report.md`` and ``comparison.json`` to the comparison's output directory, and name them
    in its ``files``."""
    out = Path(comparison.output_dir)
    plot_files: list[str] = []
    plot_error = None
    if plots and runs:
        plot_files, plot_error = _draw_plots(comparison.settings.acts, runs, out, echo)
    comparison.files = {
        "csv": str(out / "comparison.csv"),
        "json": str(out / "comparison.json"),
        "report": str(out / "report.md"),
        **{Path(name).stem: str(out / name) for name in plot_files},
    }
    _write_csv(out / "comparison.csv", comparison.summary)
    (out / "report.md").write_text(report(comparison, plot_files, plot_error))
    (out / "comparison.json").write_text(json.dumps(comparison.to_dict(), indent=2) + "\n")


def _draw_plots(
    acts: Sequence[str],
    runs: Sequence[tuple[str, int, RunCurves]],
    out: Path,
    echo: Callable[[str], None],
) -> tuple[list[str], str | None]:
    """The plots' file names, or none and why (matplotlib is missing: the rest is written)."""
    try:
        from zoo.plots import plot_comparison

        return [path.name for path in plot_comparison(acts, runs, out)], None
    except ZooError as error:
        echo(f"warning: plots skipped: {error}")
        return [], str(error)


def _write_csv(path: Path, summary: Sequence[dict[str, Any]]) -> None:
    fields = [
        "activation",
        "runs",
        "test_acc",
        "test_acc_std",
        "diff_from_best",
        "ci95_low",
        "ci95_high",
        "p_value",
        "verdict",
        "best_val_acc",
        "final_train_loss",
        "seconds_per_epoch",
        "dead_end",
        "saturated_end",
        "grad_norm_first",
    ]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in summary:
            ci = row.get("ci95") or (None, None)
            row = {**row, "ci95_low": ci[0], "ci95_high": ci[1]}
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in fields})


PLOT_TITLES = {
    "val_curves": "Validation loss and accuracy per epoch (mean over seeds, band: min-max)",
    "dead_units": "Dead-unit fraction per activation layer over training (mean over seeds)",
    "saturation": "Saturated fraction per activation layer over training (mean over seeds)",
    "grad_norms": "Gradient norm per layer over training (mean over seeds, log scale)",
}


def report(comparison: Comparison, plot_files: Sequence[str], plot_error: str | None) -> str:
    """The comparison as markdown: settings, table, plots by relative path, the command."""
    settings = comparison.settings
    s = settings.base
    lines = [
        f"# Activation comparison: `{s.arch}` on `{s.dataset}`",
        "",
        describe_settings(settings)
        + ". Each run is an ordinary `zoo train --diagnostics` run directory under `runs/`.",
        "",
        markdown_table(comparison.summary),
        "",
        "Test accuracy: mean ± sample standard deviation over seeds; the other columns are means "
        "over seeds. *Dead units (end)*: fraction of all hidden activation units that are dead "
        "on the fixed probe batch at the end of training (output exactly 0, or zero gradient "
        "w.r.t. the pre-activation, for every probe sample). *Saturated (end)*: fraction of "
        "outputs within 1 % of the range from an asymptote, for activations bounded on both "
        "sides (- otherwise). *Grad norm, 1st layer*: L2 norm of the probe loss's gradient "
        "w.r.t. the first layer's parameters, averaged over training. See "
        "`zoo.training.diagnostics`.",
        "",
        *stats_paragraph(comparison.summary, settings.seeds),
    ]
    if comparison.failed:
        lines += ["**Failed runs** (rerun the command to retry):", ""]
        lines += [f"- `{f['act']}` seed {f['seed']}: see `{f['log']}`" for f in comparison.failed]
        lines.append("")
    if plot_files:
        lines += ["## Plots", ""]
        for name in plot_files:
            title = PLOT_TITLES.get(Path(name).stem, Path(name).stem)
            lines += [f"**{title}**", "", f"![{title}]({name})", ""]
    elif plot_error:
        lines += [f"Plots were skipped: {plot_error}", ""]
    lines += ["## Runs", "", "| activation | seed | test acc | run directory |", "| --- |"]
    lines[-1] = "| --- | ---: | ---: | --- |"
    for run in comparison.runs:
        acc = run["test_acc"]
        shown = f"{100 * acc:.2f} %" if acc is not None else "-"
        lines.append(f"| `{run['activation']}` | {run['seed']} | {shown} | `{run['run_dir']}` |")
    lines += [
        "",
        "## Reproduce",
        "",
        "```bash",
        comparison.command,
        "```",
        "",
        "Rerunning it in the same output directory reuses the finished runs.",
        "",
    ]
    return "\n".join(lines)


def describe_settings(settings: Settings) -> str:
    """The settings in words: activations x seeds, epochs, batch size, optimizer."""
    s = settings.base
    steps = f", at most {s.max_steps} steps" if s.max_steps >= 0 else ""
    lr = f" (lr {s.lr})" if s.lr is not None else " (default lr)"
    return (
        f"{len(settings.acts)} activation(s) x {settings.seeds} seed(s) (0-{settings.seeds - 1}), "
        f"{s.epochs} epoch(s){steps}, batch size {s.batch_size}, optimizer {s.optimizer}{lr}"
    )


def stats_paragraph(summary: Sequence[dict[str, Any]], seeds: int) -> list[str]:
    """report.md's lines on the paired t-test across seeds and each activation's verdict."""
    best = [row["activation"] for row in summary if row.get("verdict") == "best"]
    if not best:
        return []
    if seeds < 2 or all((row.get("runs") or 0) < 2 for row in summary):
        return [
            f"With one seed no test is possible: *vs best* is the difference from `{best[0]}` "
            "(the highest test accuracy) in percentage points, without a confidence interval or "
            "p-value, and the test accuracy has no std. Compare with `--seeds 2` or more.",
            "",
        ]
    level = f"{100 * ALPHA:g} %"
    lines = [
        f"*vs best*: test accuracy minus that of `{best[0]}` (the highest mean), in percentage "
        "points: the mean of the per-seed differences with its 95 % confidence interval. Seed k "
        "gives every activation the same initial weights (where the shapes match) and the same "
        "data order, so the runs are paired by seed; *p* is the two-sided paired t-test across "
        f"seeds of a mean difference of 0 (Student t, n - 1 degrees of freedom), at {level}. "
        "Each activation is tested against the best on its own, without a correction for "
        "multiple comparisons, and the best is picked on the same runs: read a p near "
        f"{ALPHA:g} with care.",
        "",
    ]
    lines += [f"- `{row['activation']}`: {row.get('verdict')}" for row in summary]
    return [*lines, ""]
