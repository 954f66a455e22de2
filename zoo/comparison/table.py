"""The one table writer: rows of cells as an aligned plain-text table or a markdown table, and
a comparison's summary rows as either (:data:`COLUMNS`, each value formatted for reading)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoo.comparison.stats import format_p_value

#: The table's columns: (key in the summary, heading).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("activation", "activation"),
    ("test_acc", "test acc (mean ± std)"),
    ("diff_from_best", "vs best (95 % CI)"),
    ("p_value", "p"),
    ("best_val_acc", "best val acc"),
    ("final_train_loss", "final train loss"),
    ("seconds_per_epoch", "s/epoch"),
    ("dead_end", "dead units (end)"),
    ("saturated_end", "saturated (end)"),
    ("grad_norm_first", "grad norm, 1st layer"),
)


def aligned(cells: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells (the headings first) as aligned text lines: the first column to the left,
    the others to the right, a rule under the headings."""
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def markdown(cells: Sequence[Sequence[str]]) -> str:
    """Rows of cells (the headings first) as a markdown table, the first column as code and
    the others aligned right."""
    lines = ["| " + " | ".join(cells[0]) + " |", "| --- " + "| ---: " * (len(cells[0]) - 1) + "|"]
    for line in cells[1:]:
        lines.append("| " + " | ".join([f"`{line[0]}`", *line[1:]]) + " |")
    return "\n".join(lines)


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if key == "activation":
        return str(value)
    if key == "diff_from_best" and row.get("verdict") == "best":
        return "best"
    if value is None:
        return "-"
    if key == "test_acc":
        if row.get("runs") == 1:  # one seed: no spread to show
            return f"{100 * value:.2f} %"
        return f"{100 * value:.2f} ± {100 * row.get('test_acc_std', 0.0):.2f} %"
    if key == "diff_from_best":
        ci = row.get("ci95")
        shown = _points(value)
        return f"{shown} [{_points(ci[0])}, {_points(ci[1])}]" if ci else shown
    if key == "p_value":
        return format_p_value(value)
    if key == "best_val_acc":
        return f"{100 * value:.2f} %"
    if key == "seconds_per_epoch":
        return f"{value:.1f}"
    if key in ("dead_end", "saturated_end"):
        return f"{value:.3f}"
    return f"{value:.4g}"


def _points(difference: float) -> str:
    """An accuracy difference in percentage points, ``-0.42`` (never ``-0.00``)."""
    shown = f"{100 * difference:.2f}"
    return "0.00" if shown == "-0.00" else shown


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    """The summary rows as an aligned plain-text table."""
    return "\n".join([*aligned(_summary_cells(summary)), *table_notes(summary)])


def table_notes(summary: Sequence[dict[str, Any]]) -> list[str]:
    """The table's footer: what *vs best* and *p* are, or that one seed allows no test."""
    if not any("verdict" in row for row in summary):
        return []  # a summary from before the paired tests
    if all((row.get("runs") or 0) < 2 for row in summary):
        return [
            "",
            "One seed: no test possible (no std, confidence interval or p-value); "
            "compare with --seeds 2 or more.",
        ]
    return [
        "",
        "vs best: test acc minus the best activation's, in percentage points, paired by seed "
        "(mean [95 % CI]); p: paired t-test across seeds.",
    ]


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    """The summary rows as a markdown table."""
    return markdown(_summary_cells(summary))


def _summary_cells(summary: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The summary rows as cells: a heading row, then one row per activation."""
    cells = [[heading for _, heading in COLUMNS]]
    return cells + [[_cell(row, key) for key, _ in COLUMNS] for row in summary]
