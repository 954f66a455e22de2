"""Separate runs: each run of a comparison as its own ``zoo train`` process (``--separate``, or
settings that cannot be fused). :class:`SeparateRunTask` is the one way a separate run trains,
here (:func:`run_side_by_side`, ``jobs`` at a time) or on a launcher's worker."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.comparison.tasks import plugin_args, tail, thread_environment
from zoo.errors import ZooUsageError
from zoo.processes import run_module
from zoo.runs.config import RunConfig

#: The exit status of a usage error: it fails every run alike.
USAGE_EXIT = 2


@dataclass(frozen=True)
class SeparateRunTask:
    """Train one run as its own ``zoo train`` process, into ``slot``, its stderr in
    ``slot/train.log``; ``side_by_side``: how many such processes share the cores."""

    config: dict[str, Any]
    slot: str
    plugins: tuple[str, ...] = ()
    strict_plugins: bool = False
    side_by_side: int = 1

    def describe(self) -> str:
        config = RunConfig.from_dict(self.config)
        return f"{config.act} seed {config.seed}"

    def __call__(self) -> list[dict[str, Any]]:
        config = RunConfig.from_dict(self.config)
        slot = Path(self.slot)
        slot.mkdir(parents=True, exist_ok=True)
        args = [*plugin_args(self.plugins, self.strict_plugins),
                "train", *config.to_args(), "--output-dir", str(slot), "--json"]  # fmt: skip
        log = slot / "train.log"
        started = time.perf_counter()
        env = thread_environment(self.side_by_side)
        with log.open("w") as stderr:  # forked after the imports: see zoo.processes
            code, out, _ = run_module("zoo", args, stdout=subprocess.PIPE, stderr=stderr,
                                      text=True, env=env)  # fmt: skip
        completed = subprocess.CompletedProcess(args, code, out)
        outcome: dict[str, Any] = {
            "act": config.act,
            "seed": config.seed,
            "log": str(log),
            "exit": completed.returncode,
            "seconds": time.perf_counter() - started,
        }
        result = _payload(completed)
        if result is not None:
            return [{**outcome, "status": "finished", "run_dir": result["run_dir"],
                     "result": result, "error": None}]  # fmt: skip
        return [{**outcome, "status": "failed", "run_dir": None, "error": _error(log, completed)}]


def _payload(completed: subprocess.CompletedProcess[str]) -> Any:
    """The JSON object a successful ``zoo train --json`` printed last, or None."""
    if completed.returncode != 0:
        return None
    try:
        return json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _error(log: Path, completed: subprocess.CompletedProcess[str]) -> str:
    """What went wrong: the ``Error:`` line of the log, else its last line, else the exit."""
    lines = [line for line in tail(log, 20).splitlines() if line.strip()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error:")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else f"exit {completed.returncode}"


def separate_tasks(runs: Any, jobs: int = 1) -> list[SeparateRunTask]:
    """One ``zoo train`` task per pending run of ``runs``
    (:class:`zoo.comparison.plan.PlannedRuns`), ``jobs`` of them side by side."""
    return [
        SeparateRunTask(
            runs.settings.run_config(act, seed).to_dict(),
            str(runs.slot(act, seed)),
            runs.plugins,
            runs.strict_plugins,
            jobs,
        )
        for act, seed in runs.pending
    ]


def run_side_by_side(
    tasks: Sequence[SeparateRunTask], jobs: int, record: Callable[[dict[str, Any]], None]
) -> None:
    """Run ``tasks`` here, ``jobs`` at a time, each outcome to ``record`` as its run ends. A
    usage error (a bad spec argument, a bad trainer setting) fails every run alike: the first
    one stops those not started and is raised as a :class:`ZooUsageError` once the others have
    ended."""
    stop = threading.Event()
    usage_errors: list[str] = []

    def train(task: SeparateRunTask) -> list[dict[str, Any]]:
        if stop.is_set():
            return []
        outcomes = task()
        usage = [o["error"] for o in outcomes if o.get("exit") == USAGE_EXIT]
        if usage:
            usage_errors.extend(usage)
            stop.set()
        return [o for o in outcomes if o.get("exit") != USAGE_EXIT]

    executor = ThreadPoolExecutor(max_workers=jobs)
    try:
        for future in as_completed([executor.submit(train, task) for task in tasks]):
            for outcome in future.result():
                record(outcome)
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown()
    if usage_errors:
        raise ZooUsageError(usage_errors[0])
