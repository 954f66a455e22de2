"""The ``ray`` launcher: each task a Ray task, on the cluster at
:attr:`~zoo.comparison.launching.LaunchOptions.ray_address` (or ``$RAY_ADDRESS``), else on a Ray
started here for the launch, which listens on the loopback only
(:func:`zoo._compat.ray.loopback_only`). A Ray this process already initialised is used as it is
and left running; one the launch started (or connected to) is shut down (or disconnected from)
when it returns. Needs ``pip install 'lightning-zoo[ray]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from zoo._compat import ray as ray_compat
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

_RAY_CLIENT_PORT = 10001
_RAY_GCS_PORT = 6379
#: Object store of a Ray started here: tasks and results are small.
_LOCAL_RAY_OBJECT_STORE_BYTES = 128 * 1024**2


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


def start_ray(ray: Any, options: LaunchOptions, echo: Callable[[str], None]) -> bool:
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


def launch_ray(
    tasks: list[Callable[[], T]], options: LaunchOptions, echo: Callable[[str], None]
) -> list[TaskOutcome]:
    ray = require_module("ray", "ray", "ray")
    with ray_compat.worker_logs_silenced():
        initialised = start_ray(ray, options, echo)
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
            run.options(name=f"zoo-task-{i}").remote(Guarded(task)) for i, task in enumerate(tasks)
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
                    outcomes[i] = outcome_of(i, tasks[i], ray.get(ref))
                except Exception as error:
                    outcomes[i] = _ray_failure(i, tasks[i], error)
                report(echo, len(outcomes), len(tasks), outcomes[i])
        return [outcomes[i] for i in range(len(tasks))]
    except KeyboardInterrupt:
        echo(f"ray: interrupted; cancelling {len(refs)} tasks")
        for ref in refs:
            with contextlib.suppress(Exception):  # already finished or gone
                ray.cancel(ref)
        raise


def _run_guarded(guarded: Guarded) -> Done:
    """The Ray remote function: run one guarded task."""
    return guarded()
