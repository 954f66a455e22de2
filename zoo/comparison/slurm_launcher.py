"""The ``slurm`` launcher: all tasks as one Slurm job array through submitit (``pip install
'lightning-zoo[slurm]'``), or through submitit's ``local`` executor (subprocesses here) or
``debug`` executor (this process) for tests and dry runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from zoo.comparison.launching import (
    Done,
    Guarded,
    LaunchOptions,
    TaskOutcome,
    describe,
    error_text,
    outcome_of,
    report,
    require_module,
)
from zoo.errors import ZooError, ZooUsageError

T = TypeVar("T")


def _slurm_executor(submitit: Any, options: LaunchOptions) -> Any:
    """A submitit executor for ``options`` (real Slurm unless ``slurm_cluster`` says not)."""
    cluster = options.slurm_cluster or "slurm"
    folder = Path(options.slurm_log_folder).expanduser().absolute()
    if cluster == "slurm" and submitit.SlurmExecutor.affinity() <= 0:
        raise ZooError(
            "the 'slurm' launcher needs Slurm, but srun/sbatch are not on PATH. Run zoo from a "
            "Slurm login node, or choose another launcher (local, ray)."
        )
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    parameters: dict[str, Any] = {
        "name": "zoo",
        "timeout_min": options.slurm_time_minutes,
        "cpus_per_task": options.slurm_cpus_per_task,
        "gpus_per_node": options.slurm_gpus_per_task,
        "mem_gb": options.slurm_mem_gb,
        "nodes": 1,
        "tasks_per_node": 1,
        "slurm_partition": options.slurm_partition,
        "slurm_array_parallelism": options.slurm_array_parallelism,
        **dict(options.slurm_parameters),
    }
    try:
        executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    except (NameError, ValueError, TypeError, AssertionError) as error:
        raise ZooUsageError(f"bad Slurm parameters: {error}") from None
    return executor


def _job_ids(jobs: Sequence[Any]) -> str:
    """The submitted job ids, an array as ``1234_[0-9]``."""
    ids = [str(job.job_id) for job in jobs]
    arrays = {i.split("_", 1)[0] for i in ids}
    if len(arrays) == 1 and all("_" in i for i in ids):
        return f"{arrays.pop()}_[0-{len(ids) - 1}]"
    return ", ".join(ids)


def _slurm_failure(index: int, task: object, job: Any, error: BaseException) -> TaskOutcome:
    """The outcome of a job that did not return: it could not run the task (cannot unpickle
    it), or Slurm stopped it (time limit, out of memory, cancelled)."""
    text = str(error)
    parts = text.split("-" * 22)
    error_type = type(error).__name__
    if error_type == "FailedJobError" and len(parts) >= 3:
        trace = [line.strip() for line in parts[1].splitlines() if line.strip()]
        message = trace[-1] if trace else "the job failed"
        name = message.split(":", 1)[0].rsplit(".", 1)[-1]
        if name.isidentifier():
            error_type = name
        if error_type in ("ModuleNotFoundError", "ImportError"):
            message = (
                f"the Slurm job cannot import the task ({message}): install lightning-zoo and "
                "the task's package in the environment the jobs run in"
            )
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        message = " ".join(lines[:2]) if lines else error_type
    log = str(job.paths.stderr)
    return TaskOutcome(
        index=index,
        description=describe(task),
        error=f"{message} (log: {log})",
        error_type=error_type,
        job_id=str(job.job_id),
        log=log,
    )


def _collect_job(index: int, task: object, job: Any) -> TaskOutcome:
    """The outcome of a finished job."""
    try:
        done = job.result()
    except Exception as error:
        return _slurm_failure(index, task, job, error)
    log = str(job.paths.stderr)
    if not isinstance(done, Done):
        done = Done(value=done)
    outcome = outcome_of(index, task, done, job_id=str(job.job_id), log=log)
    if not outcome.ok:
        outcome = dataclasses.replace(outcome, error=f"{outcome.error} (log: {log})")
    return outcome


def launch_slurm(
    tasks: list[Callable[[], T]], options: LaunchOptions, echo: Callable[[str], None]
) -> list[TaskOutcome]:
    submitit = require_module("submitit", "slurm", "slurm")
    executor = _slurm_executor(submitit, options)
    folder = executor.folder
    jobs: list[Any] = []
    try:
        try:
            jobs = executor.submit_array([Guarded(task) for task in tasks])
        except Exception as error:
            raise ZooError(f"could not submit the Slurm job array: {error_text(error)}") from None
        echo(f"slurm: submitted {len(jobs)} tasks as job {_job_ids(jobs)}; logs in {folder}")
        outcomes: dict[int, TaskOutcome] = {}
        poll = 0.2
        while len(outcomes) < len(jobs):
            for i, job in enumerate(jobs):
                if i not in outcomes and job.done():
                    outcomes[i] = _collect_job(i, tasks[i], job)
                    report(echo, len(outcomes), len(tasks), outcomes[i])
            if len(outcomes) < len(jobs):
                time.sleep(poll)
                poll = min(poll * 1.5, 5.0)
        return [outcomes[i] for i in range(len(tasks))]
    except KeyboardInterrupt:
        echo(f"slurm: interrupted; cancelling job {_job_ids(jobs) if jobs else '(none)'}")
        for job in jobs:
            with contextlib.suppress(Exception):  # finished, or scancel failed: nothing to do
                job.cancel(check=False)
        raise
