"""Compare activations: :func:`compare` trains each activation x seed of a
:class:`ComparisonPlan` as an ordinary run directory, then summarises, plots and reports;
:func:`compare_datasets` does it on several datasets and ranks the activations across them.

A comparison goes through these steps, each in a module of its own: the plan resolved in its
output directory, finished runs skipped (:mod:`~zoo.comparison.plan`), the directory locked
(:mod:`~zoo.comparison.lock`), the pending runs trained, fused in groups or each as its own
``zoo train`` process (:mod:`~zoo.comparison.pending`), the runs read and tested against the
best (:mod:`~zoo.comparison.summary`), the files written (:mod:`~zoo.comparison.report`), and
across datasets the ranking (:mod:`~zoo.comparison.ranking`). This module imports neither torch
nor matplotlib.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from zoo.comparison.lock import output_lock
from zoo.comparison.pending import train_pending
from zoo.comparison.plan import (
    DEFAULT_MAX_RUNS,
    DEFAULT_OUTPUT_DIR,
    ComparisonPlan,
    PlannedRuns,
    Settings,
    check_run_count,
    make_output_dir,
    plan_runs,
    reproduce_command,
    resolve_settings,
    unwritable,
)
from zoo.comparison.ranking import MultiComparison, rank_activations, write_ranking, written_summary
from zoo.comparison.report import write_comparison
from zoo.comparison.summary import Comparison, summarise_comparison
from zoo.comparison.table import COLUMNS, format_table, markdown_table
from zoo.errors import TrainingInterrupted, ZooError, ZooUsageError
from zoo.runs.config import RunConfig
from zoo.text import slug

__all__ = [
    "COLUMNS",
    "DEFAULT_MAX_RUNS",
    "DEFAULT_OUTPUT_DIR",
    "Comparison",
    "ComparisonPlan",
    "MultiComparison",
    "compare",
    "compare_datasets",
    "format_table",
    "markdown_table",
    "rank_activations",
]


def compare(plan: ComparisonPlan, *, echo: Callable[[str], None] | None = None) -> Comparison:
    """Train every activation of ``plan`` with its seeds on its dataset (one at most), then
    write ``comparison.csv``, ``comparison.json``, the plots and ``report.md`` to its output
    directory; ``echo`` receives progress lines, the plan first.

    Finished runs already in the output directory are reused. Raises :class:`ZooUsageError`
    before anything is written for bad settings or too many runs (``plan.max_runs``), a
    :class:`ZooError` if another comparison holds the output directory, and one if a run fails,
    after writing what the others produced."""
    echo = echo or _silent
    if len(plan.datasets) > 1:
        raise ZooUsageError("compare() takes one dataset: compare_datasets() takes several")
    settings = resolve_settings(plan, plan.datasets[0] if plan.datasets else None)
    check_run_count(plan, len(settings.acts))
    with _output_dir(plan.output_dir, "runs"):
        runs = plan_runs(plan, settings, reproduce_command(plan, settings))
        echo(_plan_line(runs))
        finished, failed = train_pending(runs, plan, echo)
        comparison = _summarise(runs, finished, failed, plan.plots, echo)
    if failed:
        raise ZooError(_failure_message(failed))
    return comparison


@contextlib.contextmanager
def _output_dir(out: Path, *inside: str) -> Iterator[None]:
    """Create ``out`` (and ``out/inside``) and hold its lock while the block runs; a usage
    error removes ``out`` again if it was created here and is left empty."""
    new = not out.exists()
    try:
        make_output_dir(out, *inside)
        with output_lock(out):
            yield
    except ZooUsageError:
        if new and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    except KeyboardInterrupt:  # planning, locking, or between training and the summary
        raise TrainingInterrupted(
            f"stopped before training or summarising anything more; the runs already finished in "
            f"{out} are kept. Rerun the same command to go on.",
            signal.SIGINT,
        ) from None


def _plan_line(runs: PlannedRuns) -> str:
    """The plan, said before any work: how many runs, of them how many new, and where."""
    s = runs.settings
    line = f"plan: {len(runs.todo)} runs ({len(s.acts)} activation(s) x {s.seeds} seed(s)) in "
    line += f"{runs.out}: {len(runs.pending)} to train"
    if runs.finished:
        line += f", {len(runs.finished)} of {len(runs.todo)} runs already finished (skipped)"
    return line


def _summarise(
    runs: PlannedRuns,
    finished: dict[tuple[str, int], str],
    failed: list[dict[str, Any]],
    plots: bool,
    echo: Callable[[str], None],
) -> Comparison:
    """Read the finished runs and write the comparison's files. Ctrl-C here keeps the runs
    (they are on disk) and says how to write the summary."""
    try:
        echo(f"summary: {len(finished)} finished runs read, tested and written to {runs.out}")
        comparison, curves = summarise_comparison(runs, finished, failed)
        write_comparison(comparison, curves, plots=plots, echo=echo)
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"stopped while writing the summary; the {len(finished)} finished runs are kept in "
            f"{runs.out / 'runs'}. Rerun the same command to write it.",
            signal.SIGINT,
        ) from None
    except OSError as error:
        raise unwritable(runs.out, error) from None
    return comparison


def _failure_message(failed: Sequence[dict[str, Any]]) -> str:
    names = ", ".join(f"{f['act']} seed {f['seed']}" for f in failed)
    logs = ", ".join(f["log"] for f in failed)
    return (
        f"{len(failed)} run(s) failed: {names}. Logs: {logs}"
        "\nRerun the same command to retry them; finished runs are skipped."
    )


def compare_datasets(
    plan: ComparisonPlan, *, echo: Callable[[str], None] | None = None
) -> MultiComparison:
    """:func:`compare` the plan's activations on each of its ``datasets``, one after the
    other, each in ``output_dir/<dataset slug>``, then write ``ranking.json`` and ``ranking.md``
    to ``output_dir``: each dataset's table and the activations ranked across the datasets (see
    :func:`rank_activations`).

    One dataset (after resolving the specs: duplicates count once) is exactly :func:`compare`
    in ``output_dir``, without ranking files. Every spec, and the number of runs, is checked
    before anything runs. A dataset whose runs fail does not stop the others: its error is
    raised as a :class:`ZooError` after the ranking of what finished is written.
    """
    echo = echo or _silent
    settings, names = _dataset_settings(plan)
    check_run_count(plan, len(settings.acts), len(names))
    if len(names) == 1:
        return _single_dataset(compare(plan.replace(datasets=(names[0],)), echo=echo))
    out = plan.output_dir
    directories = _dataset_directories(names, out)
    with _output_dir(out):
        comparisons, summaries, failed = _each_dataset(plan, directories, echo)
        multi = MultiComparison(
            settings=settings,
            datasets=names,
            directories=directories,
            summaries=summaries,
            comparisons=comparisons,
            ranking=rank_activations(summaries),
            command=reproduce_command(plan, settings, names),
            output_dir=str(out),
            files={"json": str(out / "ranking.json"), "report": str(out / "ranking.md")},
            failed=failed,
        )
        write_ranking(multi)
    if failed:
        raise ZooError("\n".join(f"{name}: {error}" for name, error in failed.items()))
    return multi


def _each_dataset(
    plan: ComparisonPlan, directories: dict[str, str], echo: Callable[[str], None]
) -> tuple[dict[str, Comparison], dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Compare on each dataset: the comparisons that finished, every dataset's summary rows
    (a failed one's read from its ``comparison.json``) and the failed datasets' errors."""
    comparisons: dict[str, Comparison] = {}
    summaries: dict[str, list[dict[str, Any]]] = {}
    failed: dict[str, str] = {}
    for number, (name, directory) in enumerate(directories.items(), 1):
        echo(f"dataset {number}/{len(directories)}: {name} (in {directory})")
        try:
            comparisons[name] = compare(
                plan.replace(datasets=(name,), output_dir=Path(directory)), echo=echo
            )
            summaries[name] = comparisons[name].summary
        except (ZooUsageError, TrainingInterrupted):
            raise
        except ZooError as error:
            failed[name] = str(error)
            summaries[name] = written_summary(Path(directory))
    return comparisons, summaries, failed


def _dataset_settings(plan: ComparisonPlan) -> tuple[Settings, list[str]]:
    """The settings (with the default dataset) and the datasets by their canonical specs, each
    once; a :class:`ZooUsageError` for a bad one before anything runs."""
    datasets = plan.datasets or (plan.config.dataset,)
    names: list[str] = []
    for dataset in datasets:
        settings = resolve_settings(plan, dataset)
        if settings.base.dataset not in names:
            names.append(settings.base.dataset)
    settings.base = settings.base.replace(dataset=RunConfig.dataset)
    return settings, names


def _dataset_directories(names: Sequence[str], out: Path) -> dict[str, str]:
    """Each dataset's output directory, ``out/<slug>`` (made unique if two slugs coincide)."""
    directories: dict[str, str] = {}
    for name in names:
        base = slug(name)
        unique, number = base, 1
        while str(out / unique) in directories.values():
            number += 1
            unique = f"{base}-{number}"
        directories[name] = str(out / unique)
    return directories


def _single_dataset(comparison: Comparison) -> MultiComparison:
    name = comparison.settings.base.dataset
    return MultiComparison(
        settings=comparison.settings,
        datasets=[name],
        directories={name: comparison.output_dir},
        summaries={name: comparison.summary},
        comparisons={name: comparison},
        ranking=rank_activations({name: comparison.summary}),
        command=comparison.command,
        output_dir=comparison.output_dir,
        files=dict(comparison.files),
    )


def _silent(message: str) -> None:
    """An ``echo`` that says nothing."""
