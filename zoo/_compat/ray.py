"""Ray's internals that the Ray launcher relies on, each used only on the Ray versions in
:data:`CHECKED_WITH` (major.minor); with any other Ray, each falls back to Ray's public behaviour.
``tests/test_compat.py`` checks that each still holds on the installed Ray, and
``tests/comparison/test_launchers.py`` that a local Ray started through them listens on the
loopback only, read from the operating system's socket table.

* :func:`loopback_only`: a Ray started here listens on 127.0.0.1 only. Ray picks the address its
  processes listen on (the GCS, the raylet, every worker, the agents, the driver) with its
  cluster switch ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``: on (Linux's default) it is the machine's
  address or all interfaces, even when ``ray.init(_node_ip_address="127.0.0.1")`` asks for the
  loopback; off (the default on macOS and Windows) it is the loopback. The processes Ray starts
  read the switch from the environment; this process read it when it imported ray, into
  ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``, which is set for the start only. Fallback:
  Ray's own choice (the dashboard, if started, on 127.0.0.1 either way).
* :func:`auto_address`: the cluster ``ray.init(address="auto")`` would join, through
  ``ray._private.services.canonicalize_bootstrap_address``. Fallback: ``None`` (unknown).
* :func:`worker_logs_silenced`: Ray's driver prints what its raylets publish ("A worker
  died...") on stdout even with ``log_to_driver=False``; the private switch Ray's own debugger
  flips, ``ray._private.worker._worker_logs_enabled``, stops it. Fallback: Ray prints.

Importing this module does not import ray.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from typing import Any

#: The Ray versions (major.minor) these uses were checked with.
CHECKED_WITH = ("2.60",)

#: Ray's cluster switch: ``0`` keeps every process of a Ray started here on the loopback.
CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def installed_version() -> str:
    """The installed Ray's version, or ``""`` where Ray is not installed (read without importing
    it)."""
    from importlib import metadata

    try:
        return metadata.version("ray")
    except metadata.PackageNotFoundError:
        return ""


def checked(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed Ray's) is one in :data:`CHECKED_WITH`."""
    version = installed_version() if version is None else version
    return ".".join(version.split("+")[0].split(".")[:2]) in CHECKED_WITH


def _private(module: str) -> Any | None:
    """Ray's private ``module``, on a checked Ray; else (or where it is gone) ``None``."""
    if not checked():
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


@contextlib.contextmanager
def loopback_only() -> Iterator[bool]:
    """While a Ray starts in this block (``ray.init(address="local")``), make all of its
    processes listen on the loopback only; yields whether it does (a checked Ray). Both
    switches are restored after, so that a later ``ray.init`` that joins a cluster from this
    process gives the cluster an address it can reach."""
    constants = _private("ray._private.ray_constants")
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield False
        return
    before_env = os.environ.get(CLUSTER_SWITCH)
    before = constants.ENABLE_RAY_CLUSTER
    os.environ[CLUSTER_SWITCH] = "0"
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield True
    finally:
        constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(CLUSTER_SWITCH, None)
        else:
            os.environ[CLUSTER_SWITCH] = before_env


def auto_address() -> str | None:
    """The ``host:port`` of the cluster ``address="auto"`` means (the last ``ray start`` on this
    machine, or ``$RAY_ADDRESS``), or ``None`` where there is none or this Ray cannot say."""
    services = _private("ray._private.services")
    try:
        return services.canonicalize_bootstrap_address("auto") if services else None
    except Exception:  # no cluster recorded, or a Ray whose helper changed
        return None


@contextlib.contextmanager
def worker_logs_silenced() -> Iterator[None]:
    """Keep Ray's driver from printing what its raylets publish while the block runs (where
    ``zoo compare --json`` writes, stdout)."""
    worker = _private("ray._private.worker")
    if worker is None or not isinstance(getattr(worker, "_worker_logs_enabled", None), bool):
        yield
        return
    before = worker._worker_logs_enabled
    worker._worker_logs_enabled = False
    try:
        yield
    finally:
        worker._worker_logs_enabled = before
