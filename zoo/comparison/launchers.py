"""Launchers: run a list of *tasks* here, on a Ray cluster or as a Slurm job array.

A task is a picklable zero-argument callable (a frozen dataclass with ``__call__``, defined at
module level, holding plain data) that returns a picklable, preferably JSON-able, result.
:func:`launch` runs every task with the launcher that :class:`LaunchOptions` names and returns
one :class:`TaskOutcome` per task, in task order: the result, or the error text when the task
failed. One task failing does not lose the others' results.

* ``"local"``: each task in this process, one after another.
* ``"ray"``: each task a Ray task (``pip install 'lightning-zoo[ray]'``), on the cluster at
  :attr:`LaunchOptions.ray_address` (or ``$RAY_ADDRESS``), else on a Ray started here, which
  listens on the loopback only (:func:`zoo._compat.ray.loopback_only`); a Ray this process
  already initialised is used as it is and left running, one :func:`launch` started (or
  connected to) is shut down (or disconnected from) when it returns.
* ``"slurm"``: all tasks as one Slurm job array through submitit
  (``pip install 'lightning-zoo[slurm]'``).

Remote workers unpickle the tasks, so they must import ``zoo`` (and the task's module) from the
same version in the same kind of environment: a Ray started here and submitit jobs use this
interpreter; on a Ray cluster install lightning-zoo on every node (or pass a ``runtime_env``).

Importing this module imports neither ray, submitit, torch nor Lightning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from zoo._compat import ray as ray_compat
from zoo.errors import TrainingInterrupted, ZooError, ZooUsageError

T = TypeVar("T")

#: The launcher names :class:`LaunchOptions` accepts.
LAUNCHERS = ("local", "ray", "slurm")

#: submitit clusters ``LaunchOptions.slurm_cluster`` may force (``None``: real Slurm).
SLURM_CLUSTERS = ("slurm", "local", "debug")

_DESCRIPTION_CHARS = 120
_RAY_CLIENT_PORT = 10001
_RAY_GCS_PORT = 6379
#: Object store of a Ray started here: tasks and results are small.
_LOCAL_RAY_OBJECT_STORE_BYTES = 128 * 1024**2


def _silent(message: str) -> None:
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
class _Done:
    """What :class:`_Guarded` sends back from a worker: the value or the failure."""

    value: Any = None
    error: str | None = None
    error_type: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class _Guarded:
    """Runs a task on a worker and returns a :class:`_Done` instead of raising, so the
    failure's text travels back as plain data and its traceback goes to the worker's log."""

    task: Callable[[], Any]

    def __call__(self) -> _Done:
        start = time.perf_counter()
        try:
            value = self.task()
        except Exception as error:
            traceback.print_exc()
            return _Done(
                error=error_text(error),
                error_type=type(error).__name__,
                seconds=time.perf_counter() - start,
            )
        return _Done(value=value, seconds=time.perf_counter() - start)


def _outcome(index: int, task: object, done: _Done, **extra: Any) -> TaskOutcome[Any]:
    return TaskOutcome(
        index=index,
        description=describe(task),
        result=done.value,
        error=done.error,
        error_type=done.error_type,
        seconds=done.seconds,
        **extra,
    )


def _report(echo: Callable[[str], None], finished: int, total: int, item: TaskOutcome) -> None:
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


def launch(
    tasks: Sequence[Callable[[], T]],
    options: LaunchOptions,
    echo: Callable[[str], None] = _silent,
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
        return _launch_ray(tasks, options, echo)
    return _launch_slurm(tasks, options, echo)


# -- local ----------------------------------------------------------------------------------


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
            done = _Done(
                error=error_text(error),
                error_type=type(error).__name__,
                seconds=time.perf_counter() - start,
            )
        else:
            done = _Done(value=value, seconds=time.perf_counter() - start)
        outcomes.append(_outcome(index, task, done))
        _report(echo, index + 1, len(tasks), outcomes[-1])
    return outcomes


# -- ray ------------------------------------------------------------------------------------


def _ray_address(options: LaunchOptions) -> str | None:
    """The cluster to connect to, or ``None`` to start a Ray here."""
    address = options.ray_address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and address.strip().lower() == "local":
        return None
    return address.strip() if address else None


def _split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` of a Ray address (``ray://`` or not); a ZooUsageError if it is none."""
    client = address.startswith("ray://")
    rest = address[len("ray://") :] if client else address
    rest = rest.split("/", 1)[0]
    default = _RAY_CLIENT_PORT if client else _RAY_GCS_PORT
    if rest.startswith("["):  # [ipv6]:port
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:
        host, port_text = rest, ""
    try:
        port = int(port_text) if port_text else default
    except ValueError:
        port = -1
    if not host or not 0 < port < 65536:
        raise ZooUsageError(
            f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379 or "
            "ray://10.0.0.5:10001)."
        )
    return host, port


def _probe_ray_address(address: str, timeout_s: float) -> None:
    """Fail fast, with a ZooError, when nothing listens at ``address``: ``ray.init`` would
    otherwise retry for many minutes."""
    if address == "auto":
        address = ray_compat.auto_address() or ""
        if not address:
            return  # no cluster recorded here: ray.init says so, quickly
    host, port = _split_host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        if isinstance(error, TimeoutError):
            reason = f"no answer within {timeout_s:g}s"
        raise ZooError(
            f"cannot reach the Ray cluster at {address!r} ({reason}). Check that its head "
            "node is running ('ray status' on it), that the host and port are right (the GCS "
            "port, 6379 by default, or ray://host:10001 for Ray Client) and that no firewall "
            "blocks it; or give no Ray address (and unset RAY_ADDRESS) to start a Ray here."
        ) from None


def _start_ray(ray: Any, options: LaunchOptions, echo: Callable[[str], None]) -> bool:
    """Start a Ray here, or connect to the cluster; True when this call initialised Ray (so
    :func:`launch` shuts it down after). A Ray already initialised in this process is reused
    and left running."""
    if ray.is_initialized():
        echo("ray: using the Ray already running in this process")
        return False
    quiet: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "runtime_env": dict(options.ray_runtime_env) if options.ray_runtime_env else None,
    }
    address = _ray_address(options)
    if address is None:
        _start_local_ray(ray, options, quiet, echo)
        return True
    _probe_ray_address(address, options.ray_connect_timeout_s)
    try:
        ray.init(address=address, **quiet)
    except Exception as error:
        raise ZooError(
            f"could not connect to the Ray cluster at {address!r}: {error_text(error)}. Check "
            "that the cluster runs the same Ray and Python versions as this machine."
        ) from None
    echo(f"ray: connected to the Ray cluster at {address}")
    return True


def _start_local_ray(
    ray: Any, options: LaunchOptions, quiet: dict[str, Any], echo: Callable[[str], None]
) -> None:
    """Start a Ray on this machine that listens on the loopback only (where this Ray is one
    :mod:`zoo._compat.ray` checked)."""
    num_cpus = options.ray_num_cpus or os.cpu_count() or 1
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        with ray_compat.loopback_only() as loopback:
            ray.init(
                address="local",
                num_cpus=num_cpus,
                object_store_memory=_LOCAL_RAY_OBJECT_STORE_BYTES,
                dashboard_host="127.0.0.1",
                **quiet,
            )
    except Exception as error:
        raise ZooError(
            f"could not start a local Ray: {error_text(error)}. Its logs are under "
            f"{_ray_temp_root()}/ray/session_latest/logs."
        ) from None
    if loopback:
        echo(f"ray: started a local Ray with {num_cpus} CPUs, listening on 127.0.0.1 only")
    else:
        echo(
            f"ray: started a local Ray with {num_cpus} CPUs; zoo checked that Ray "
            f"{', '.join(ray_compat.CHECKED_WITH)} listens on 127.0.0.1 only, not Ray "
            f"{ray_compat.installed_version()}, which may listen on every interface"
        )


def _ray_temp_root() -> str:
    """Where a Ray started here keeps its session folders (Ray's order: ``$RAY_TMPDIR``,
    ``$TMPDIR``, ``/tmp``)."""
    return os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"


def _ray_failure(index: int, task: object, error: BaseException) -> TaskOutcome[Any]:
    """The outcome of a Ray task that failed outside the task's own code: its worker died,
    or could not unpickle the task."""
    shown = error
    for _ in range(3):  # RayTaskError(RaySystemError) -> RaySystemError -> ImportError
        inner = getattr(shown, "cause", None) or getattr(shown, "client_exc", None)
        if not isinstance(inner, BaseException) or inner is shown:
            break
        shown = inner
    lines = [line.strip() for line in error_text(shown).splitlines() if line.strip()]
    message = lines[0] if lines else type(shown).__name__
    if isinstance(shown, ImportError):
        message = (
            f"the Ray worker cannot import the task ({message}): install lightning-zoo and the "
            "task's package where the workers run, or pass a runtime_env"
        )
    return TaskOutcome(
        index=index,
        description=describe(task),
        error=message,
        error_type=type(shown).__name__,
    )


def _launch_ray(
    tasks: list[Callable[[], T]], options: LaunchOptions, echo: Callable[[str], None]
) -> list[TaskOutcome]:
    ray = require_module("ray", "ray", "ray")
    with ray_compat.worker_logs_silenced():
        initialised = _start_ray(ray, options, echo)
        try:
            return _run_on_ray(ray, tasks, options, echo)
        finally:
            if initialised:  # stops the Ray started here; from a cluster, only disconnects
                ray.shutdown()


def _run_on_ray(
    ray: Any, tasks: list[Callable[[], T]], options: LaunchOptions, echo: Callable[[str], None]
) -> list[TaskOutcome]:
    """Submit every task, then gather outcomes as tasks finish; Ctrl-C cancels them."""
    refs: list[Any] = []
    try:
        run = ray.remote(
            num_cpus=options.ray_cpus_per_task,
            num_gpus=options.ray_gpus_per_task,
            max_retries=0,  # a rerun would train into the same directory as the lost one
        )(_run_guarded)
        refs = [
            run.options(name=f"zoo-task-{i}").remote(_Guarded(task)) for i, task in enumerate(tasks)
        ]
        echo(f"ray: submitted {len(refs)} tasks")
        index_of = {ref: i for i, ref in enumerate(refs)}
        outcomes: dict[int, TaskOutcome] = {}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = index_of[ref]
                try:
                    outcomes[i] = _outcome(i, tasks[i], ray.get(ref))
                except Exception as error:
                    outcomes[i] = _ray_failure(i, tasks[i], error)
                _report(echo, len(outcomes), len(tasks), outcomes[i])
        return [outcomes[i] for i in range(len(tasks))]
    except KeyboardInterrupt:
        echo(f"ray: interrupted; cancelling {len(refs)} tasks")
        for ref in refs:
            with contextlib.suppress(Exception):  # already finished or gone
                ray.cancel(ref)
        raise


def _run_guarded(guarded: _Guarded) -> _Done:
    """The Ray remote function: run one guarded task."""
    return guarded()


# -- slurm ----------------------------------------------------------------------------------


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
    if not isinstance(done, _Done):
        done = _Done(value=done)
    outcome = _outcome(index, task, done, job_id=str(job.job_id), log=log)
    if not outcome.ok:
        outcome = dataclasses.replace(outcome, error=f"{outcome.error} (log: {log})")
    return outcome


def _launch_slurm(
    tasks: list[Callable[[], T]], options: LaunchOptions, echo: Callable[[str], None]
) -> list[TaskOutcome]:
    submitit = require_module("submitit", "slurm", "slurm")
    executor = _slurm_executor(submitit, options)
    folder = executor.folder
    jobs: list[Any] = []
    try:
        try:
            jobs = executor.submit_array([_Guarded(task) for task in tasks])
        except Exception as error:
            raise ZooError(f"could not submit the Slurm job array: {error_text(error)}") from None
        echo(f"slurm: submitted {len(jobs)} tasks as job {_job_ids(jobs)}; logs in {folder}")
        outcomes: dict[int, TaskOutcome] = {}
        poll = 0.2
        while len(outcomes) < len(jobs):
            for i, job in enumerate(jobs):
                if i not in outcomes and job.done():
                    outcomes[i] = _collect_job(i, tasks[i], job)
                    _report(echo, len(outcomes), len(tasks), outcomes[i])
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
