"""Comparisons on several datasets: what :func:`zoo.comparison.compare.compare_datasets`
produced (:class:`MultiComparison`), the activations ranked across the datasets, and
``ranking.json``/``ranking.md``."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.comparison.plan import Settings
from zoo.comparison.report import describe_settings, stats_paragraph
from zoo.comparison.stats import not_worse
from zoo.comparison.summary import Comparison
from zoo.comparison.table import aligned, format_table, markdown, markdown_table


@dataclass
class MultiComparison:
    """What :func:`compare_datasets` produced: one comparison per dataset (each in its own
    output directory, as :func:`compare` writes it) and the activations ranked across them.

    ``summaries`` holds every dataset's summary rows (also of a dataset whose comparison had
    failed runs, read from its ``comparison.json``); ``comparisons`` those that finished;
    ``failed`` the error of each dataset that had failed runs."""

    settings: Settings
    datasets: list[str]
    directories: dict[str, str]
    summaries: dict[str, list[dict[str, Any]]]
    comparisons: dict[str, Comparison]
    ranking: list[dict[str, Any]]
    command: str
    output_dir: str
    files: dict[str, str]
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``ranking.json``'s object."""
        settings = {k: v for k, v in self.settings.to_dict().items() if k != "dataset"}
        return {
            "command": self.command,
            "settings": {**settings, "datasets": self.datasets},
            "datasets": [
                {
                    "dataset": name,
                    "output_dir": self.directories[name],
                    "summary": [
                        {k: v for k, v in row.items() if k != "layers"}
                        for row in self.summaries[name]
                    ],
                }
                for name in self.datasets
            ],
            "ranking": self.ranking,
            "failed": self.failed,
            "output_dir": self.output_dir,
            "files": self.files,
        }

    def table(self) -> str:
        """One aligned text table per dataset, then the ranking (one dataset: its table)."""
        if len(self.datasets) == 1:
            return format_table(self.summaries[self.datasets[0]])
        parts = [f"{name}:\n{format_table(self.summaries[name])}" for name in self.datasets]
        parts.append("Ranking across datasets:\n" + format_ranking(self.ranking, self.datasets))
        return "\n\n".join(parts)


def rank_activations(summaries: dict[str, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The activations ranked across datasets (``summaries``: each dataset's summary rows).

    Per activation: ``ranks`` (its rank on each dataset by mean test accuracy, 1 the highest;
    tied accuracies share the mean of their ranks; None where it has no test accuracy),
    ``mean_rank`` (over the datasets where it has one), ``best`` (on how many it was the best),
    ``best_or_indistinguishable`` (on how many it was the best or not significantly worse than
    the best by the paired t-test across seeds, at 5 %; with one seed only the best counts) and
    ``datasets`` (how many it has a rank on). Sorted by mean rank, then by the last count."""
    acts: list[str] = []
    for summary in summaries.values():
        acts += [row["activation"] for row in summary if row["activation"] not in acts]
    ranks = {
        name: _ranks({row["activation"]: row.get("test_acc") for row in summary})
        for name, summary in summaries.items()
    }
    rows = {name: {row["activation"]: row for row in s} for name, s in summaries.items()}
    ranking = []
    for act in acts:
        mine = {name: ranks[name].get(act) for name in summaries}
        present = [rank for rank in mine.values() if rank is not None]
        matched = [rows[name][act] for name in summaries if act in rows[name]]
        ranking.append(
            {
                "activation": act,
                "ranks": mine,
                "mean_rank": statistics.fmean(present) if present else None,
                "best": sum(1 for row in matched if row.get("verdict") == "best"),
                "best_or_indistinguishable": sum(1 for row in matched if _tied_with_best(row)),
                "datasets": len(present),
            }
        )
    ranking.sort(
        key=lambda r: (r["mean_rank"] is None, r["mean_rank"] or 0, -r["best_or_indistinguishable"])
    )
    return ranking


def _tied_with_best(row: dict[str, Any]) -> bool:
    """Whether a summary row is the best's, or not significantly worse than the best's."""
    return row.get("verdict") == "best" or not_worse(row.get("diff_from_best"), row.get("p_value"))


def _ranks(values: dict[str, float | None]) -> dict[str, float]:
    """Ranks by value, highest first (1); equal values share the mean of their ranks."""
    present = {k: float(v) for k, v in values.items() if v is not None and not math.isnan(v)}
    ordered = sorted(present, key=lambda k: -present[k])
    ranks: dict[str, float] = {}
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and present[ordered[end + 1]] == present[ordered[start]]:
            end += 1
        rank = (start + end) / 2 + 1
        for key in ordered[start : end + 1]:
            ranks[key] = int(rank) if rank.is_integer() else rank
        start = end + 1
    return ranks


#: The ranking table's columns after the per-dataset ranks: (key, heading).
RANKING_COLUMNS = (("mean_rank", "mean rank"), ("best_or_indistinguishable", "best or n.s."))


def _ranking_cells(ranking: Sequence[dict[str, Any]], datasets: Sequence[str]) -> list[list[str]]:
    """The ranking as cells: a heading row, then one row per activation."""
    cells = [["activation", *(f"rank: {name}" for name in datasets)]]
    cells[0] += [heading for _, heading in RANKING_COLUMNS]
    for row in ranking:
        ranks = ["-" if row["ranks"].get(n) is None else f"{row['ranks'][n]:g}" for n in datasets]
        mean = "-" if row["mean_rank"] is None else f"{row['mean_rank']:.2f}"
        top = f"{row['best_or_indistinguishable']} of {len(datasets)}"
        cells.append([row["activation"], *ranks, mean, top])
    return cells


RANKING_NOTE = (
    "Rank: by mean test accuracy on that dataset (1 = best; tied accuracies share the mean of "
    "their ranks). Best or n.s.: on how many datasets the activation was the best or not "
    "significantly worse than the best (paired t-test across seeds, 5 %; with one seed only "
    "the best counts)."
)


def format_ranking(ranking: Sequence[dict[str, Any]], datasets: Sequence[str]) -> str:
    """The ranking across datasets as an aligned plain-text table, with a note."""
    return "\n".join([*aligned(_ranking_cells(ranking, datasets)), "", RANKING_NOTE])


def markdown_ranking(ranking: Sequence[dict[str, Any]], datasets: Sequence[str]) -> str:
    """The ranking across datasets as a markdown table."""
    return markdown(_ranking_cells(ranking, datasets))


def write_ranking(multi: MultiComparison) -> None:
    """Write ``ranking.json`` and ``ranking.md`` to the comparison's output directory."""
    out = Path(multi.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ranking.json").write_text(json.dumps(multi.to_dict(), indent=2) + "\n")
    (out / "ranking.md").write_text(ranking_report(multi))


def ranking_report(multi: MultiComparison) -> str:
    """``ranking.md``: the ranking across datasets, each dataset's table, the command."""
    lines = [
        f"# Activation comparison on {len(multi.datasets)} datasets: `{multi.settings.base.arch}`",
        "",
        f"{describe_settings(multi.settings)}, on each dataset. Each dataset's comparison (runs, "
        "plots, report) is in its own directory.",
        "",
        "## Ranking",
        "",
        markdown_ranking(multi.ranking, multi.datasets),
        "",
        RANKING_NOTE,
        "",
    ]
    for name in multi.datasets:
        folder = Path(multi.directories[name]).name
        lines += [f"## `{name}`", "", f"Report: [{folder}/report.md]({folder}/report.md)", ""]
        if name in multi.failed:
            lines += [f"**Failed runs**: {multi.failed[name]}", ""]
        lines += [markdown_table(multi.summaries[name]), ""]
        seeds = max((row.get("runs") or 0 for row in multi.summaries[name]), default=0)
        lines += stats_paragraph(multi.summaries[name], seeds)
    lines += ["## Reproduce", "", "```bash", multi.command, "```", ""]
    lines.append("Rerunning it in the same output directory reuses the finished runs.")
    return "\n".join([*lines, ""])


def written_summary(directory: Path) -> list[dict[str, Any]]:
    """The summary in ``directory/comparison.json`` (none if it cannot be read)."""
    try:
        summary = json.loads((directory / "comparison.json").read_text())["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return summary if isinstance(summary, list) else []
