"""Launchers: run a list of *tasks* here, on a Ray cluster or as a Slurm job array.

A task is a picklable zero-argument callable (a frozen dataclass with ``__call__``, defined at
module level, holding plain data) that returns a picklable, preferably JSON-able, result.
:func:`launch` runs every task with the launcher that :class:`LaunchOptions` names and returns
one :class:`TaskOutcome` per task, in task order: the result, or the error text when the task
failed. One task failing does not lose the others' results.

* ``"local"``: each task in this process, one after another (here).
* ``"ray"``: each task a Ray task (:mod:`zoo.comparison.ray_launcher`), on the cluster at
  :attr:`LaunchOptions.ray_address` (or ``$RAY_ADDRESS``), else on a Ray started here, which
  listens on the loopback only.
* ``"slurm"``: all tasks as one Slurm job array through submitit
  (:mod:`zoo.comparison.slurm_launcher`).

What a task, its options and its outcome are is in :mod:`zoo.comparison.launching`; this module
re-exports them.

Remote workers unpickle the tasks, so they must import ``zoo`` (and the task's module) from the
same version in the same kind of environment: a Ray started here and submitit jobs use this
interpreter; on a Ray cluster install lightning-zoo on every node (or pass a ``runtime_env``).

Importing this module imports neither ray, submitit, torch nor Lightning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from zoo.comparison.launching import (
    LAUNCHERS,
    SLURM_CLUSTERS,
    Done,
    LaunchOptions,
    TaskOutcome,
    describe,
    error_text,
    missing_package_message,
    outcome_of,
    report,
    require_module,
    silent,
)
from zoo.errors import TrainingInterrupted

T = TypeVar("T")


def launch(
    tasks: Sequence[Callable[[], T]],
    options: LaunchOptions,
    echo: Callable[[str], None] = silent,
) -> list[TaskOutcome[T]]:
    """Run every task with ``options.launcher``; one outcome per task, in task order.

    ``echo`` receives progress lines. Ctrl-C cancels what still runs (Ray tasks, Slurm jobs)
    and re-raises :class:`KeyboardInterrupt`."""
    tasks = list(tasks)
    if not tasks:
        return []
    if options.launcher == "local":
        return _launch_local(tasks, echo)
    if options.launcher == "ray":
        from zoo.comparison.ray_launcher import launch_ray

        return launch_ray(tasks, options, echo)
    from zoo.comparison.slurm_launcher import launch_slurm

    return launch_slurm(tasks, options, echo)


def _launch_local(tasks: list[Callable[[], T]], echo: Callable[[str], None]) -> list[TaskOutcome]:
    """Each task in this process, in order. A task stopped by Ctrl-C
    (:class:`TrainingInterrupted`, :class:`KeyboardInterrupt`) stops the launch."""
    outcomes: list[TaskOutcome] = []
    for index, task in enumerate(tasks):
        echo(f"[{index + 1}/{len(tasks)}] running: {describe(task)}")
        start = time.perf_counter()
        try:
            value = task()
        except TrainingInterrupted:
            raise
        except Exception as error:
            done = Done(
                error=error_text(error),
                error_type=type(error).__name__,
                seconds=time.perf_counter() - start,
            )
        else:
            done = Done(value=value, seconds=time.perf_counter() - start)
        outcomes.append(outcome_of(index, task, done))
        report(echo, index + 1, len(tasks), outcomes[-1])
    return outcomes


__all__ = [
    "LAUNCHERS",
    "SLURM_CLUSTERS",
    "LaunchOptions",
    "TaskOutcome",
    "describe",
    "error_text",
    "launch",
    "missing_package_message",
    "require_module",
]
