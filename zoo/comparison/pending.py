"""Training a comparison's pending runs: fused in groups (:mod:`zoo.comparison.groups`) or as
separate ``zoo train`` processes (:mod:`zoo.comparison.separate`), here or by a launcher
(:mod:`zoo.comparison.launchers`), each run's end said in one line; what a run that never
started left behind is removed when a usage error stops the comparison."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Sequence
from typing import Any

from zoo.comparison.groups import (
    default_jobs,
    fused_tasks,
    fusion_problem,
    plan_groups,
    run_in_processes,
)
from zoo.comparison.plan import ComparisonPlan, PlannedRuns
from zoo.comparison.separate import USAGE_EXIT, run_side_by_side, separate_tasks
from zoo.comparison.tasks import failed_outcomes, run_here
from zoo.errors import FusionUnavailable, TrainingInterrupted, ZooError, ZooUsageError

Finished = dict[tuple[str, int], str]


class Tally:
    """The runs that ended, said one line each: ``finished`` (their run directories, those
    finished before included) and ``failed``."""

    def __init__(self, runs: PlannedRuns, echo: Callable[[str], None]) -> None:
        self.runs, self.echo = runs, echo
        self.finished: Finished = dict(runs.finished)
        self.failed: list[dict[str, Any]] = []
        self.done = len(runs.finished)

    def record(self, outcome: dict[str, Any]) -> None:
        """Count a run that ended and say how."""
        key = (outcome["act"], int(outcome["seed"]))
        self.done += 1
        prefix = f"[{self.done}/{len(self.runs.todo)}] {key[0]} seed {key[1]}"
        took = f" in {outcome['seconds']:.0f} s" if outcome.get("seconds") is not None else ""
        if outcome["status"] == "finished":
            self.finished[key] = outcome["run_dir"]
            self.echo(f"{prefix}: test acc {outcome['result']['test_acc']:.2%}{took}")
            return
        log = outcome.get("log") or outcome.get("run_dir") or str(self.runs.slot(*key))
        self.failed.append({"act": key[0], "seed": key[1], "log": log, "error": outcome["error"]})
        self.echo(f"{prefix}: FAILED: {outcome['error']} (see {log})")


def train_pending(
    runs: PlannedRuns, plan: ComparisonPlan, echo: Callable[[str], None]
) -> tuple[Finished, list[dict[str, Any]]]:
    """Train the pending runs, fused or separately; the run directories of the finished runs
    (those finished before included) and the failures. Ctrl-C stops the comparison as a
    :class:`TrainingInterrupted` that says how to resume it."""
    tally = Tally(runs, echo)
    if not runs.pending:
        return tally.finished, tally.failed
    reason = None if plan.separate else fusion_problem(runs.settings.base)
    if reason:
        echo(f"training the runs separately: {reason}")
    try:
        try:
            if plan.separate or reason:
                _train_separately(runs, plan, tally, echo)
            else:
                _train_fused(runs, plan, tally, echo)
        except FusionUnavailable as error:
            echo(f"training the runs separately: {error}")
            _train_separately(runs, plan, tally, echo)
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            "the finished runs are kept in their run directories. Rerun the same command to "
            "resume the comparison.",
            signal.SIGINT,
        ) from None
    except TrainingInterrupted as error:
        raise TrainingInterrupted(
            f"{error} Rerun the same command to resume the comparison.", error.signum
        ) from None
    except ZooError:
        remove_unstarted(runs)
        raise
    return tally.finished, tally.failed


def _train_separately(
    runs: PlannedRuns, plan: ComparisonPlan, tally: Tally, echo: Callable[[str], None]
) -> None:
    """Each pending run its own ``zoo train`` process: ``jobs`` at a time here, or by the
    launcher."""
    runs.training = {"mode": "separate"}
    jobs = plan.jobs or 1
    where = f"by the {plan.launch.launcher} launcher" if plan.remote else f"{jobs} at a time"
    echo(f"training {len(runs.pending)} runs separately, {where}")
    tasks = separate_tasks(runs, 1 if plan.remote else jobs)
    if not plan.remote:
        run_side_by_side(tasks, jobs, tally.record)
        return
    _record(_launched(tasks, plan.launch, echo), tally)


def _train_fused(
    runs: PlannedRuns, plan: ComparisonPlan, tally: Tally, echo: Callable[[str], None]
) -> None:
    """The pending runs in fused groups: here (``jobs`` groups at once, each in a process of
    its own) or by the launcher."""
    accelerator = runs.settings.base.accelerator
    jobs = plan.jobs or (1 if plan.remote else default_jobs(accelerator))
    planned = plan_groups(runs, plan.group_size, at_least=jobs)
    sizes = ", ".join(str(len(group)) for group in planned)
    at_once = len(planned) if plan.remote else min(jobs, len(planned))
    echo(f"training {len(runs.pending)} runs fused, in {len(planned)} group(s) of {sizes}, "
         f"{at_once} at once")  # fmt: skip
    runs.training = {"mode": "fused", "groups": planned}
    tasks = fused_tasks(runs, planned)
    if plan.remote:
        outcomes = _launched(tasks, plan.launch, echo)
    elif at_once > 1:
        outcomes = run_in_processes(tasks, at_once, echo)
    else:
        outcomes = run_here(tasks, echo)
    _record(outcomes, tally)


def _launched(tasks: Sequence[Any], launch: Any, echo: Callable[[str], None]) -> list[Any]:
    """Every task's outcomes, run by the launcher."""
    from zoo.comparison.launchers import launch as run_launched

    outcomes: list[Any] = []
    for task, launched in zip(tasks, run_launched(tasks, launch, echo), strict=True):
        if launched.error is None:
            outcomes += launched.result
        else:
            outcomes += failed_outcomes(task, launched.error)
    return outcomes


def _record(outcomes: Sequence[dict[str, Any]], tally: Tally) -> None:
    """Count every outcome; a usage error in any run stops the comparison."""
    usage = [o["error"] for o in outcomes if o.get("exit") == USAGE_EXIT]
    if usage:
        raise ZooUsageError(usage[0])
    for outcome in outcomes:
        tally.record(outcome)


def remove_unstarted(runs: PlannedRuns) -> None:
    """Remove what a comparison stopped by a usage error created: logs of runs that never
    started a run directory, groups that never trained, and the folders left empty."""
    for act, seed in runs.pending:
        slot = runs.slot(act, seed)
        if slot.is_dir() and all(p.name == "train.log" for p in slot.iterdir()):
            for path in slot.iterdir():
                path.unlink()
            slot.rmdir()
    fused = runs.out / "fused"
    for group in fused.iterdir() if fused.is_dir() else ():
        if not (group / "last.ckpt").exists():  # a group that never trained: its task and log
            shutil.rmtree(group, ignore_errors=True)
    for directory in (fused, runs.out / "runs"):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
