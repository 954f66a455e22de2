"""What every task of a comparison shares, fused group or separate run: the ``-p`` arguments
passed on to it, the thread set-up of tasks that run side by side, running tasks one after
another here, and the outcome of a task that failed as a whole.

A task is plain data and a ``__call__`` that trains; it returns one *outcome* per run, a dict
with ``act``, ``seed``, ``status`` (``finished`` or ``failed``), ``run_dir``, ``result`` and
``error`` (and ``log``, ``exit``, ``seconds`` where known).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import FusionUnavailable, RunDamagedError, TrainingInterrupted, ZooUsageError


def plugin_args(plugins: Sequence[str], strict_plugins: bool) -> list[str]:
    """``zoo``'s ``-p`` arguments (and ``--strict-plugins``)."""
    args = [word for plugin in plugins for word in ("-p", plugin)]
    return [*args, "--strict-plugins"] if strict_plugins else args


def configure_plugins(plugins: Sequence[str], strict_plugins: bool) -> None:
    """Load the ``-p`` plugins the comparison was given, unless this process has them (as
    ``zoo compare -p ...`` does): a launcher's worker starts without them."""
    from zoo.plugin.loading import configure_plugins as configure
    from zoo.plugin.loading import get_host

    settings = get_host().settings
    if set(plugins) <= set(settings.plugins) and settings.strict >= strict_plugins:
        return
    configure(plugins=[*settings.plugins, *plugins], strict=strict_plugins)


def thread_environment(jobs: int) -> dict[str, str]:
    """The environment of a task's process: this process's, and with ``jobs > 1``
    ``OMP_NUM_THREADS`` = CPUs / jobs (unless it is set), so that processes side by side share
    the cores instead of each taking all of them."""
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def run_here(
    tasks: Sequence[Callable[[], list[dict[str, Any]]]], echo: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Run ``tasks`` one after another in this process; their outcomes, in order."""
    outcomes = []
    for number, task in enumerate(tasks, 1):
        describe = getattr(task, "describe", lambda: "task")
        echo(f"group {number}/{len(tasks)}: {describe()}")
        try:
            outcomes += task.train(echo) if hasattr(task, "train") else task()
        except (ZooUsageError, FusionUnavailable, TrainingInterrupted, RunDamagedError):
            raise
        except Exception as error:  # the group failed as a whole: each of its runs failed
            outcomes += failed_outcomes(task, f"{type(error).__name__}: {error}")
    return outcomes


def failed_outcomes(task: Any, error: str) -> list[dict[str, Any]]:
    """The outcome of every run of ``task`` when the task failed as a whole."""
    configs = getattr(task, "configs", None) or (getattr(task, "config", {}),)
    slots = getattr(task, "slots", None) or (getattr(task, "slot", None),)
    return [
        {
            "act": config["act"],
            "seed": config["seed"],
            "status": "failed",
            "run_dir": None,
            "log": slot,
            "error": error,
        }
        for config, slot in zip(configs, slots, strict=True)
    ]


def tail(log: str | Path, lines: int = 5) -> str:
    """The last ``lines`` lines of a log ('' if it cannot be read)."""
    try:
        text = Path(log).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])
