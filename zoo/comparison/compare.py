"""Compare activations: train each activation x seed as an ordinary ``zoo train`` run, then
summarise, plot and report.

Every run is a subprocess, ``python -m zoo train ... --diagnostics --json``, so a comparison
measures exactly what ``zoo train`` does. Runs go to ``<output_dir>/runs/<slot>/<run dir>``, where
the slot names the activation, the seed and a hash of the settings; a slot that already holds a
finished run (status ``finished`` with a test accuracy, as :func:`zoo.runs.reading.read_run`
reads it)
is not trained again, so an interrupted comparison resumes where it stopped.

:func:`compare` goes through four phases: :func:`plan_comparison` (the settings, the slots and
the runs already finished), :class:`RunPool` (the ``zoo train`` processes),
:func:`summarise_comparison` (each run's curves, read with :func:`zoo.runs.curves.read_curves`,
and one
row per activation) and :func:`write_comparison` (the files). This module imports neither torch
nor matplotlib (plots are drawn by :mod:`zoo.plots`, imported only when plotting).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.comparison.stats import ALPHA, format_p_value, not_worse, paired_differences
from zoo.errors import FusionUnavailable, TrainingInterrupted, ZooError, ZooUsageError
from zoo.plugin.components import resolve
from zoo.runs.config import RunConfig
from zoo.runs.curves import RunCurves, read_curves
from zoo.runs.reading import read_run
from zoo.text import slug

DEFAULT_OUTPUT_DIR = "comparison"

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


# -- the comparison --------------------------------------------------------------------------


#: Options that say where a run trains, not what it computes: not part of a run's slot.
_PLACE_OPTIONS = ("data_dir", "accelerator", "devices", "strategy", "num_nodes", "num_workers")


@dataclass
class Settings:
    """What a comparison trains: every activation in ``acts`` with seeds ``0 .. seeds-1``,
    each run ``base`` with that activation and seed (and diagnostics on)."""

    acts: list[str]
    seeds: int
    base: RunConfig

    def run_config(self, act: str, seed: int) -> RunConfig:
        return self.base.replace(act=act, seed=seed, diagnostics=True)

    def slot(self, act: str, seed: int) -> str:
        """The directory (under ``runs/``) that holds the run of ``act`` with ``seed``."""
        key = self.run_config(act, seed).to_dict()
        for name in _PLACE_OPTIONS:
            key.pop(name)
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
        return f"{slug(act, 'act')}-seed{seed}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        options = {k: v for k, v in self.base.to_dict().items() if k not in ("act", "seed")}
        return {"acts": self.acts, "seeds": self.seeds, **options}


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


def compare(
    acts: Sequence[str],
    *,
    seeds: int = 3,
    jobs: int | None = None,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    config: RunConfig | None = None,
    plugins: Sequence[str] = (),
    strict_plugins: bool = False,
    plots: bool = True,
    echo: Callable[[str], None] | None = None,
    separate: bool = False,
    group_size: int | None = None,
    launch: Any = None,
    **options: Any,
) -> Comparison:
    """Train every activation in ``acts`` with seeds ``0 .. seeds-1``, then write
    ``comparison.csv``, ``comparison.json``, the plots and ``report.md`` to ``output_dir``.

    Each run is ``config`` (or ``RunConfig(**options)``: ``arch="mlp", epochs=3, ...``) with
    its activation and seed, and an ordinary ``zoo train --diagnostics`` run directory. By
    default the runs are trained fused, in groups that fit in memory (at most ``group_size``
    runs each), ``jobs`` groups at once (default: one per CPU core, each in a process of its
    own with one thread; one on a GPU; see :mod:`zoo.comparison.fused`); with ``separate=True``, or
    settings that cannot be fused, each run is its own ``zoo train`` process, ``jobs`` (default
    1) at a time. ``launch`` (:class:`zoo.comparison.launchers.LaunchOptions`) runs the groups or
    runs
    on Ray or SLURM. Finished runs already in ``output_dir`` are reused. ``plugins`` are ``-p``
    arguments for the runs. Raises :class:`ZooError` if a run fails, after writing what the
    others produced.
    """
    echo = echo or _silent
    plan = plan_comparison(
        acts,
        seeds=seeds,
        jobs=jobs,
        output_dir=output_dir,
        config=config,
        plugins=plugins,
        strict_plugins=strict_plugins,
        options=options,
    )
    if plan.finished:
        count = f"{len(plan.finished)} of {len(plan.todo)}"
        echo(f"{count} runs already finished in {plan.out}; skipping them")
    finished, failed = train_pending(
        plan, separate=separate, group_size=group_size, launch=launch, echo=echo
    )
    comparison, runs = summarise_comparison(plan, finished, failed)
    write_comparison(comparison, runs, plots=plots, echo=echo)
    if failed:
        raise ZooError(_failure_message(failed))
    return comparison


def train_pending(
    plan: Plan,
    *,
    separate: bool,
    group_size: int | None,
    launch: Any,
    echo: Callable[[str], None],
) -> tuple[dict[tuple[str, int], str], list[dict[str, Any]]]:
    """Train the plan's pending runs, fused (see :mod:`zoo.comparison.groups`) or separately; the
    run
    directories of the finished runs (those finished before included) and the failures."""
    from zoo.comparison import groups

    if not plan.pending:
        return dict(plan.finished), []
    remote = launch is not None and getattr(launch, "launcher", "local") != "local"
    reason = None if separate else groups.fusion_problem(plan.settings.base)
    if reason:
        echo(f"training the runs separately: {reason}")
    if (separate or reason) and not remote:
        return _separately(plan, echo)
    try:
        if separate or reason:
            plan.training = {"mode": "separate"}
            outcomes = _run_tasks(groups.separate_tasks(plan), launch, echo)
        else:
            outcomes = _train_fused(plan, group_size, launch if remote else None, echo)
    except FusionUnavailable as error:
        echo(f"training the runs separately: {error}")
        return _separately(plan, echo)
    except TrainingInterrupted as error:
        raise TrainingInterrupted(
            f"{error} Rerun the same command to resume the comparison.", error.signum
        ) from None
    except ZooError:
        _remove_empty(plan)
        raise
    return _outcomes(plan, outcomes, echo)


def _separately(
    plan: Plan, echo: Callable[[str], None]
) -> tuple[dict[tuple[str, int], str], list[dict[str, Any]]]:
    plan.training = {"mode": "separate"}
    pool = RunPool(plan, echo)
    pool.run()
    return pool.finished, pool.failed


def _train_fused(
    plan: Plan, group_size: int | None, launch: Any, echo: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The pending runs in fused groups: here (``jobs`` groups at once, each in a process of
    its own) or by the launcher."""
    from zoo.comparison import groups

    jobs = plan.jobs or (groups.default_jobs(plan.settings.base.accelerator) if not launch else 1)
    planned = groups.plan_groups(plan, group_size, at_least=jobs)
    sizes = ", ".join(str(len(group)) for group in planned)
    at_once = min(jobs, len(planned)) if launch is None else len(planned)
    echo(f"training {len(plan.pending)} runs fused, in {len(planned)} group(s) of {sizes}, "
         f"{at_once} at once")  # fmt: skip
    plan.training = {"mode": "fused", "groups": planned}
    tasks = groups.fused_tasks(plan, planned)
    if launch is None and at_once > 1:
        return groups.run_in_processes(tasks, at_once, echo)
    return _run_tasks(tasks, launch, echo)


def _run_tasks(tasks: Sequence[Any], launch: Any, echo: Callable[[str], None]) -> list[Any]:
    """Every task's outcomes: run here, one after another, or by the launcher."""
    from zoo.comparison.groups import run_here

    if launch is None:
        return run_here(tasks, echo)
    from zoo.comparison.groups import failed_outcomes
    from zoo.comparison.launchers import launch as run_launched

    outcomes: list[Any] = []
    for task, launched in zip(tasks, run_launched(tasks, launch, echo), strict=True):
        if launched.error is None:
            outcomes += launched.result
        else:
            outcomes += failed_outcomes(task, launched.error)
    return outcomes


def _outcomes(
    plan: Plan, outcomes: Sequence[dict[str, Any]], echo: Callable[[str], None]
) -> tuple[dict[tuple[str, int], str], list[dict[str, Any]]]:
    finished, failed = dict(plan.finished), []
    for number, outcome in enumerate(outcomes, len(plan.finished) + 1):
        key = (outcome["act"], int(outcome["seed"]))
        prefix = f"[{number}/{len(plan.todo)}] {key[0]} seed {key[1]}"
        if outcome["status"] == "finished":
            finished[key] = outcome["run_dir"]
            echo(f"{prefix}: test acc {outcome['result']['test_acc']:.2%}")
        else:
            log = outcome.get("log") or outcome.get("run_dir") or str(plan.slot(*key))
            failed.append({"act": key[0], "seed": key[1], "log": log, "error": outcome["error"]})
            echo(f"{prefix}: FAILED: {outcome['error']}")
    return finished, failed


def _silent(message: str) -> None:
    """An ``echo`` that says nothing."""


# -- planning --------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a comparison does: of the runs ``todo`` (activation, seed) in ``out``, train the
    ``pending`` ones; the ``finished`` ones (their run directories) are there already."""

    settings: Settings
    out: Path
    jobs: int | None
    plugins: tuple[str, ...]
    strict_plugins: bool
    command: str
    new_output_dir: bool
    todo: list[tuple[str, int]]
    finished: dict[tuple[str, int], str] = field(default_factory=dict)
    pending: list[tuple[str, int]] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=lambda: {"mode": "none"})

    def slot(self, act: str, seed: int) -> Path:
        """The directory that holds the runs of ``act`` with ``seed``."""
        return self.out / "runs" / self.settings.slot(act, seed)


def plan_comparison(
    acts: Sequence[str],
    *,
    seeds: int,
    jobs: int | None,
    output_dir: str | os.PathLike[str],
    config: RunConfig | None,
    plugins: Sequence[str],
    strict_plugins: bool,
    options: dict[str, Any],
) -> Plan:
    """Check and resolve the settings (a :class:`ZooUsageError` before anything is written),
    create ``output_dir/runs`` and find the runs already finished there."""
    settings = _settings(acts, seeds, jobs, config, options)
    out = Path(output_dir)
    plan = Plan(
        settings=settings,
        out=out,
        jobs=jobs,
        plugins=tuple(plugins),
        strict_plugins=strict_plugins,
        command=reproduce_command(settings, out, jobs, plugins, strict_plugins),
        new_output_dir=not out.exists(),
        todo=[(act, seed) for act in settings.acts for seed in range(seeds)],
    )
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for act, seed in plan.todo:
        existing = finished_run(plan.slot(act, seed))
        if existing is not None:
            plan.finished[(act, seed)] = str(existing)
        else:
            plan.pending.append((act, seed))
    return plan


def _settings(
    acts: Sequence[str],
    seeds: int,
    jobs: int | None,
    config: RunConfig | None,
    options: dict[str, Any],
) -> Settings:
    """The settings with the activations, architecture and dataset by their canonical names."""
    if not acts:
        raise ZooUsageError("give at least one activation to compare (--act NAME)")
    if seeds < 1 or (jobs is not None and jobs < 1):
        raise ZooUsageError("--seeds and --jobs must be at least 1")
    base = (config or RunConfig()).replace(**options)
    canonical: list[str] = []
    for act in acts:
        name = str(resolve("activation", act)[1])
        if name not in canonical:
            canonical.append(name)
    base = base.replace(
        arch=str(resolve("architecture", base.arch)[1]),
        dataset=str(resolve("dataset", base.dataset)[1]),
    )
    return Settings(acts=canonical, seeds=seeds, base=base)


def finished_run(slot: Path) -> Path | None:
    """The newest finished run directory in ``slot`` (one with a test accuracy), if any."""
    if not slot.is_dir():
        return None
    found = None
    for run_dir in sorted(p for p in slot.iterdir() if p.is_dir()):
        info = read_run(run_dir)
        if info.status == "finished" and info.test_acc is not None:
            found = run_dir
    return found


def reproduce_command(
    settings: Settings,
    output_dir: Path,
    jobs: int | None,
    plugins: Sequence[str] = (),
    strict_plugins: bool = False,
) -> str:
    """The ``zoo compare`` command line that reproduces (or resumes) this comparison."""
    words = ["zoo", *_plugin_args(plugins, strict_plugins), "compare"]
    words += [word for act in settings.acts for word in ("--act", act)]
    words += settings.base.replace(act=RunConfig.act, seed=None).to_args()
    words += ["--seeds", str(settings.seeds)]
    if jobs not in (None, 1):
        words += ["--jobs", str(jobs)]
    words += ["--output-dir", str(output_dir)]
    return shlex.join(words)


def _plugin_args(plugins: Sequence[str], strict_plugins: bool) -> list[str]:
    args = [word for plugin in plugins for word in ("-p", plugin)]
    return [*args, "--strict-plugins"] if strict_plugins else args


# -- running ---------------------------------------------------------------------------------


class RunPool:
    """Trains a plan's pending runs, ``plan.jobs`` at a time, each a ``zoo train`` process;
    holds what its threads share: the runs done, those finished and failed, usage errors."""

    def __init__(self, plan: Plan, echo: Callable[[str], None]) -> None:
        self.plan = plan
        self.echo = echo
        self.env = _run_environment(plan.jobs or 1)
        self.finished = dict(plan.finished)
        self.failed: list[dict[str, Any]] = []
        self.usage_errors: list[str] = []
        self._done = len(plan.finished)
        self._lock = threading.Lock()
        self._abort = threading.Event()

    def run(self) -> None:
        """Train every pending run. A usage error (exit code 2: a bad spec argument, a bad
        trainer setting) fails every run alike: the first one stops the others, and the
        comparison's new files are removed before it is raised as a :class:`ZooUsageError`."""
        if not self.plan.pending:
            return
        executor = ThreadPoolExecutor(max_workers=self.plan.jobs or 1)
        try:
            futures = [executor.submit(self._train, act, seed) for act, seed in self.plan.pending]
            for future in as_completed(futures):
                future.result()
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown()
        if self.usage_errors:
            _remove_empty(self.plan)
            raise ZooUsageError(self.usage_errors[0])

    def _train(self, act: str, seed: int) -> None:
        """Train one run (in a worker thread) and record how it ended."""
        if self._abort.is_set():
            return
        slot = self.plan.slot(act, seed)
        slot.mkdir(parents=True, exist_ok=True)
        args = _train_args(
            self.plan.settings.run_config(act, seed),
            slot,
            self.plan.plugins,
            self.plan.strict_plugins,
        )
        log = slot / "train.log"
        started = time.perf_counter()
        with log.open("w") as stderr:
            completed = subprocess.run(
                args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=self.env, check=False
            )
        seconds = time.perf_counter() - started
        if completed.returncode == 2:
            with self._lock:
                self.usage_errors.append(_error_message(log))
            self._abort.set()
            return
        self._record(act, seed, completed, log, seconds)

    def _record(
        self,
        act: str,
        seed: int,
        completed: subprocess.CompletedProcess[str],
        log: Path,
        seconds: float,
    ) -> None:
        """Count a run that ended (but not with a usage error) and say how it went."""
        payload = _payload(completed)
        error = _tail(str(log)) if payload is None else ""
        with self._lock:
            self._done += 1
            prefix = f"[{self._done}/{len(self.plan.todo)}] {act} seed {seed}"
            if payload is not None:
                self.finished[(act, seed)] = payload["run_dir"]
                self.echo(f"{prefix}: test acc {payload['test_acc']:.2%} in {seconds:.0f} s")
            else:
                self.failed.append({"act": act, "seed": seed, "log": str(log), "error": error})
                self.echo(f"{prefix}: FAILED (exit {completed.returncode}), see {log}")


def _run_environment(jobs: int) -> dict[str, str]:
    """The runs' environment: this process's, and with ``jobs > 1`` OMP_NUM_THREADS (unless it
    is set) so that parallel runs share the cores instead of each taking all of them."""
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def _payload(completed: subprocess.CompletedProcess[str]) -> Any:
    """The JSON object a successful ``zoo train --json`` printed last, or None."""
    if completed.returncode != 0:
        return None
    try:
        return json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _error_message(log: Path) -> str:
    lines = [line for line in _tail(str(log), 20).splitlines() if line.strip()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error:")]
    return errors[-1] if errors else (lines[-1] if lines else "a run failed with a usage error")


def _remove_empty(plan: Plan) -> None:
    """Remove what a comparison stopped by a usage error created: logs of runs that never
    started a run directory, and the directories left empty."""
    for act, seed in plan.pending:
        slot = plan.slot(act, seed)
        if slot.is_dir() and all(p.name == "train.log" for p in slot.iterdir()):
            for path in slot.iterdir():
                path.unlink()
            slot.rmdir()
    out = plan.out
    fused = out / "fused"
    for group in fused.iterdir() if fused.is_dir() else ():
        if not (group / "last.ckpt").exists():  # a group that never trained: its task and log
            shutil.rmtree(group, ignore_errors=True)
    directories = (fused, out / "runs", out) if plan.new_output_dir else (fused, out / "runs")
    for directory in directories:
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def _failure_message(failed: Sequence[dict[str, Any]]) -> str:
    names = ", ".join(f"{f['act']} seed {f['seed']}" for f in failed)
    logs = ", ".join(f["log"] for f in failed)
    return (
        f"{len(failed)} run(s) failed: {names}. Logs: {logs}"
        "\nRerun the same command to retry them; finished runs are skipped."
    )


def _train_args(
    config: RunConfig, slot: Path, plugins: Sequence[str], strict_plugins: bool
) -> list[str]:
    return [
        sys.executable, "-m", "zoo", *_plugin_args(plugins, strict_plugins),
        "train", *config.to_args(), "--output-dir", str(slot), "--json",
    ]  # fmt: skip


# -- summarising -----------------------------------------------------------------------------


def summarise_comparison(
    plan: Plan, finished: dict[tuple[str, int], str], failed: list[dict[str, Any]]
) -> tuple[Comparison, list[tuple[str, int, RunCurves]]]:
    """The comparison of the ``finished`` runs (their curves read from their directories, in
    the plan's order), and those curves."""
    runs = [
        (act, seed, read_curves(finished[(act, seed)]))
        for act, seed in plan.todo
        if (act, seed) in finished
    ]
    comparison = Comparison(
        settings=plan.settings,
        command=plan.command,
        summary=summarise(plan.settings.acts, runs),
        runs=[_run_row(act, seed, curves, plan.out) for act, seed, curves in runs],
        output_dir=str(plan.out),
        files={},
        failed=failed,
        training=plan.training,
    )
    return comparison, runs


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


# -- output ----------------------------------------------------------------------------------


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


def _cell(row: dict[str, Any], key: str, markdown: bool = False) -> str:
    value = row.get(key)
    if key == "activation":
        return f"`{value}`" if markdown else str(value)
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
    cells = [[heading for _, heading in COLUMNS]]
    cells += [[_cell(row, key) for key, _ in COLUMNS] for row in summary]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, *table_notes(summary)])


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
    lines = ["| " + " | ".join(heading for _, heading in COLUMNS) + " |"]
    lines.append("| --- " + "| ---: " * (len(COLUMNS) - 1) + "|")
    for row in summary:
        lines.append("| " + " | ".join(_cell(row, key, True) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


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
    steps = f", at most {s.max_steps} steps" if s.max_steps >= 0 else ""
    lines = [
        f"# Activation comparison: `{s.arch}` on `{s.dataset}`",
        "",
        f"{len(settings.acts)} activation(s) x {settings.seeds} seed(s) "
        f"(0-{settings.seeds - 1}), {s.epochs} epoch(s)"
        f"{steps}, batch size {s.batch_size}, optimizer {s.optimizer}"
        + (f" (lr {s.lr})" if s.lr is not None else " (default lr)")
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


def _tail(log: str, lines: int = 5) -> str:
    try:
        text = Path(log).read_text().strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


# -- several datasets ------------------------------------------------------------------------


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


def compare_datasets(
    datasets: Sequence[str],
    acts: Sequence[str],
    *,
    seeds: int = 3,
    jobs: int | None = None,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    config: RunConfig | None = None,
    plugins: Sequence[str] = (),
    strict_plugins: bool = False,
    plots: bool = True,
    echo: Callable[[str], None] | None = None,
    separate: bool = False,
    group_size: int | None = None,
    launch: Any = None,
    **options: Any,
) -> MultiComparison:
    """:func:`compare` the activations on each dataset spec in ``datasets``, one after the
    other, each in ``output_dir/<dataset slug>``, then write ``ranking.json`` and ``ranking.md``
    to ``output_dir``: each dataset's table and the activations ranked across the datasets (see
    :func:`rank_activations`). The other arguments are :func:`compare`'s.

    One dataset (after resolving the specs: duplicates count once) is exactly :func:`compare`
    in ``output_dir``, without ranking files. Every spec is checked before anything runs. A
    dataset whose runs fail does not stop the others: its error is raised as a
    :class:`ZooError` after the ranking of what finished is written.
    """
    echo = echo or _silent
    if "dataset" in options:
        raise ZooUsageError("give compare_datasets the datasets as its first argument")
    base, names = _dataset_settings(datasets, acts, seeds, jobs, config, options)
    out = Path(output_dir)
    keywords = {"seeds": seeds, "jobs": jobs, "config": config, "plugins": plugins}
    keywords.update(strict_plugins=strict_plugins, plots=plots, echo=echo, separate=separate,
                    group_size=group_size, launch=launch, **options)  # fmt: skip
    if len(names) == 1:
        return _single_dataset(compare(acts, output_dir=out, dataset=names[0], **keywords))
    directories = _dataset_directories(names, out)
    new_output_dir = not out.exists()
    summaries: dict[str, list[dict[str, Any]]] = {}
    comparisons: dict[str, Comparison] = {}
    failed: dict[str, str] = {}
    for number, name in enumerate(names, 1):
        echo(f"dataset {number}/{len(names)}: {name} (in {directories[name]})")
        try:
            comparisons[name] = compare(
                acts, output_dir=directories[name], dataset=name, **keywords
            )
            summaries[name] = comparisons[name].summary
        except ZooUsageError:
            if new_output_dir and out.is_dir() and not any(out.iterdir()):
                out.rmdir()
            raise
        except ZooError as error:
            failed[name] = str(error)
            summaries[name] = _written_summary(Path(directories[name]))
    multi = MultiComparison(
        settings=base,
        datasets=names,
        directories=directories,
        summaries=summaries,
        comparisons=comparisons,
        ranking=rank_activations(summaries),
        command=_datasets_command(base, names, out, jobs, plugins, strict_plugins),
        output_dir=str(out),
        files={"json": str(out / "ranking.json"), "report": str(out / "ranking.md")},
        failed=failed,
    )
    write_ranking(multi)
    if failed:
        raise ZooError("\n".join(f"{name}: {error}" for name, error in failed.items()))
    return multi


def _dataset_settings(
    datasets: Sequence[str],
    acts: Sequence[str],
    seeds: int,
    jobs: int | None,
    config: RunConfig | None,
    options: dict[str, Any],
) -> tuple[Settings, list[str]]:
    """The settings (with the default dataset) and the datasets by their canonical specs, each
    once; a :class:`ZooUsageError` for a bad one before anything runs."""
    if not datasets:
        raise ZooUsageError("give at least one dataset to compare on (--dataset SPEC)")
    names: list[str] = []
    for dataset in datasets:
        settings = _settings(acts, seeds, jobs, config, {**options, "dataset": dataset})
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


def _written_summary(directory: Path) -> list[dict[str, Any]]:
    """The summary in ``directory/comparison.json`` (none if it cannot be read)."""
    try:
        summary = json.loads((directory / "comparison.json").read_text())["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return summary if isinstance(summary, list) else []


def _datasets_command(
    settings: Settings,
    names: Sequence[str],
    out: Path,
    jobs: int | None,
    plugins: Sequence[str],
    strict_plugins: bool,
) -> str:
    """The ``zoo compare`` command line that reproduces (or resumes) a comparison on several
    datasets: :func:`reproduce_command`'s, with a ``--dataset`` for each."""
    words = shlex.split(reproduce_command(settings, out, jobs, plugins, strict_plugins))
    at = len(words) - 1 - words[::-1].index("--seeds")
    words[at:at] = [word for name in names for word in ("--dataset", name)]
    return shlex.join(words)


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
    cells = _ranking_cells(ranking, datasets)
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", RANKING_NOTE])


def markdown_ranking(ranking: Sequence[dict[str, Any]], datasets: Sequence[str]) -> str:
    """The ranking across datasets as a markdown table."""
    cells = _ranking_cells(ranking, datasets)
    lines = ["| " + " | ".join(cells[0]) + " |", "| --- " + "| ---: " * (len(cells[0]) - 1) + "|"]
    for line in cells[1:]:
        lines.append("| " + " | ".join([f"`{line[0]}`", *line[1:]]) + " |")
    return "\n".join(lines)


def write_ranking(multi: MultiComparison) -> None:
    """Write ``ranking.json`` and ``ranking.md`` to the comparison's output directory."""
    out = Path(multi.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ranking.json").write_text(json.dumps(multi.to_dict(), indent=2) + "\n")
    (out / "ranking.md").write_text(ranking_report(multi))


def ranking_report(multi: MultiComparison) -> str:
    """``ranking.md``: the ranking across datasets, each dataset's table, the command."""
    s = multi.settings
    base = s.base
    steps = f", at most {base.max_steps} steps" if base.max_steps >= 0 else ""
    lines = [
        f"# Activation comparison on {len(multi.datasets)} datasets: `{base.arch}`",
        "",
        f"{len(s.acts)} activation(s) x {s.seeds} seed(s) (0-{s.seeds - 1}) on each dataset, "
        f"{base.epochs} epoch(s){steps}, batch size {base.batch_size}, optimizer "
        f"{base.optimizer}. Each dataset's comparison (runs, plots, report) is in its own "
        "directory.",
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
