"""What a launch is: where it runs (:class:`LaunchOptions`), what a task is and what became of
it (:class:`TaskOutcome`), and the pieces every launcher shares: a task guarded so that its
failure travels back as plain data (:class:`Guarded`, :class:`Done`), its one-line description,
its progress lines, and the optional package a launcher needs.

A task is a picklable zero-argument callable (a frozen dataclass with ``__call__``, defined at
module level, holding plain data) that returns a picklable, preferably JSON-able, result.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Generic, TypeVar

from zoo.errors import ZooError, ZooUsageError

T = TypeVar("T")

#: The launcher names :class:`LaunchOptions` accepts.
LAUNCHERS = ("local", "ray", "slurm")

#: submitit clusters ``LaunchOptions.slurm_cluster`` may force (``None``: real Slurm).
SLURM_CLUSTERS = ("slurm", "local", "debug")

_DESCRIPTION_CHARS = 120


def silent(message: str) -> None:
    """The default ``echo``: say nothing."""


@dataclass(frozen=True)
class LaunchOptions:
    """Where and how :func:`launch` runs tasks. Only the fields of the chosen launcher apply."""

    #: ``"local"``, ``"ray"`` or ``"slurm"`` (:data:`LAUNCHERS`).
    launcher: str = "local"

    #: Ray cluster to connect to: ``"host:port"`` (the head's GCS port, 6379 by default),
    #: ``"ray://host:10001"`` (Ray Client) or ``"auto"``. ``None``: ``$RAY_ADDRESS`` if set,
    #: else start a Ray in this machine for the duration of :func:`launch`.
    ray_address: str | None = None
    #: CPUs of a Ray started here (``None``: ``os.cpu_count()``); ignored for a cluster.
    ray_num_cpus: int | None = None
    #: CPUs Ray reserves for each task: how many tasks run at once on a node.
    ray_cpus_per_task: float = 1.0
    #: GPUs Ray reserves for each task (fractions share a GPU).
    ray_gpus_per_task: float = 0.0
    #: Ray ``runtime_env`` for the job (``env_vars``, ``working_dir``, ``pip``...), or ``None``.
    ray_runtime_env: Mapping[str, Any] | None = None
    #: Seconds to wait for the cluster at ``ray_address`` to answer before giving up.
    ray_connect_timeout_s: float = 10.0

    #: Slurm partition (``None``: the cluster's default).
    slurm_partition: str | None = None
    #: Time limit of each array task, in minutes (Slurm's ``--time``).
    slurm_time_minutes: int = 240
    #: CPUs of each array task (``--cpus-per-task``): data loading workers plus one.
    slurm_cpus_per_task: int = 1
    #: GPUs of each array task (``--gpus-per-node``, each task being one node's only task).
    slurm_gpus_per_task: int = 0
    #: Memory of each array task in GB (``--mem``; ``None``: the cluster's default).
    slurm_mem_gb: float | None = None
    #: At most this many array tasks run at once (``--array=...%N``; ``None``: submitit's 256).
    slurm_array_parallelism: int | None = None
    #: Where submitit writes its pickles and each task's logs, on a filesystem the compute nodes
    #: share; ``%j`` becomes the job id. Relative paths are taken from the current directory.
    slurm_log_folder: str = "zoo-slurm-logs/%j"
    #: Further submitit parameters, e.g. ``{"slurm_account": "lab", "slurm_qos": "high"}``.
    slurm_parameters: Mapping[str, Any] = field(default_factory=dict)
    #: Force a submitit executor: ``"local"`` (subprocesses here, all at once) or ``"debug"``
    #: (in this process), for tests and dry runs. ``None``: real Slurm (``sbatch``).
    slurm_cluster: str | None = None

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ZooUsageError(
                f"unknown launcher {self.launcher!r}; choose one of {', '.join(LAUNCHERS)}."
            )
        if self.slurm_cluster is not None and self.slurm_cluster not in SLURM_CLUSTERS:
            raise ZooUsageError(
                f"unknown submitit cluster {self.slurm_cluster!r}; choose one of "
                f"{', '.join(SLURM_CLUSTERS)}."
            )
        positive = {
            "ray_num_cpus": self.ray_num_cpus,
            "ray_connect_timeout_s": self.ray_connect_timeout_s,
            "slurm_time_minutes": self.slurm_time_minutes,
            "slurm_cpus_per_task": self.slurm_cpus_per_task,
            "slurm_mem_gb": self.slurm_mem_gb,
            "slurm_array_parallelism": self.slurm_array_parallelism,
        }
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ZooUsageError(f"{name} must be positive, not {value}.")
        not_negative = {
            "ray_cpus_per_task": self.ray_cpus_per_task,
            "ray_gpus_per_task": self.ray_gpus_per_task,
            "slurm_gpus_per_task": self.slurm_gpus_per_task,
        }
        for name, value in not_negative.items():
            if value < 0:
                raise ZooUsageError(f"{name} must not be negative, not {value}.")


@dataclass(frozen=True)
class TaskOutcome(Generic[T]):
    """What became of one task: its ``result``, or the ``error`` text when it failed."""

    #: The task's position in the list given to :func:`launch`.
    index: int
    #: The task's ``describe()``, else ``str(task)``, shortened.
    description: str
    #: What the task returned (``None`` when it failed).
    result: T | None = None
    #: One or a few lines saying why the task failed; ``None`` when it succeeded.
    error: str | None = None
    #: The exception's class name (``"ValueError"``, ``"WorkerCrashedError"``...), if it failed.
    error_type: str | None = None
    #: Seconds the task ran, as the worker measured it (``None`` when unknown).
    seconds: float | None = None
    #: Slurm job id (``"1234_5"``) of the task, for the ``slurm`` launcher.
    job_id: str | None = None
    #: Path of the task's log (its stderr), where the launcher keeps one.
    log: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the task returned normally."""
        return self.error is None


def describe(task: object) -> str:
    """A short one-line description of ``task``: its ``describe()`` if it has one, else
    ``str(task)``."""
    method = getattr(task, "describe", None)
    try:
        text = str(method()) if callable(method) else str(task)
    except Exception as error:  # a description must never fail a launch
        text = f"{type(task).__name__} (describe() failed: {type(error).__name__})"
    text = " ".join(text.split())
    if len(text) > _DESCRIPTION_CHARS:
        text = text[: _DESCRIPTION_CHARS - 1] + "…"
    return text


def error_text(error: BaseException) -> str:
    """An exception as an outcome's ``error``: a :class:`ZooError`'s message as is (it is
    written for users), any other as ``Type: message``."""
    message = str(error).strip()
    if isinstance(error, ZooError) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@dataclass(frozen=True)
class Done:
    """What :class:`Guarded` sends back from a worker: the value or the failure."""

    value: Any = None
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Guarded:
    """Runs a task on a worker and returns a :class:`Done` instead of raising, so the
    failure's text travels back as plain data and its traceback goes to the worker's log."""

    task: Callable[[], Any]

    def __call__(self) -> Done:
        start = time.perf_counter()
        try:
            value = self.task()
        except Exception as error:
            traceback.print_exc()
            return Done(
                error=error_text(error),
                error_type=type(error).__name__,
                seconds=time.perf_counter() - start,
            )
        return Done(value=value, seconds=time.perf_counter() - start)


def outcome_of(index: int, task: object, done: Done, **extra: Any) -> TaskOutcome[Any]:
    return TaskOutcome(
        index=index,
        description=describe(task),
        result=done.value,
        error=done.error,
        error_type=done.error_type,
        seconds=done.seconds,
        **extra,
    )


def report(echo: Callable[[str], None], finished: int, total: int, item: TaskOutcome) -> None:
    if item.ok:
        took = f" ({item.seconds:.1f}s)" if item.seconds is not None else ""
        echo(f"[{finished}/{total}] done: {item.description}{took}")
    else:
        echo(f"[{finished}/{total}] failed: {item.description}: {item.error}")


def missing_package_message(package: str, extra: str, launcher: str) -> str:
    """What to tell a user whose environment lacks ``package`` for ``launcher``."""
    return (
        f"the {launcher!r} launcher needs {package}, which is not installed: "
        f"pip install 'lightning-zoo[{extra}]'"
    )


def require_module(module: str, extra: str, launcher: str) -> ModuleType:
    """Import ``module`` or raise a :class:`ZooUsageError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] != module.split(".")[0]:
            raise ZooError(f"{module} is installed but failed to import: {error}") from error
        raise ZooUsageError(missing_package_message(module, extra, launcher)) from None
