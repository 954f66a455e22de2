"""Run directories: what ``zoo runs`` lists. Reads JSON only; no torch here."""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ZooUsageError
from zoo.registry import _matches, _type_hints, _type_name


class ConfigError(ZooUsageError):
    """A configuration file that cannot be read or does not describe a run."""


@dataclass
class RunInfo:
    """One run directory, as its config.json and results.json describe it."""

    run_dir: str
    arch: str
    act: str
    dataset: str
    status: str  # running, finished, interrupted or failed
    started: str | None
    seed: int | None
    epochs: int | None
    best_val_acc: float | None
    test_acc: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_run(run_dir: str | os.PathLike[str]) -> RunInfo | None:
    """The run in ``run_dir``, or None if it is not a run directory."""
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or "arch" not in config:
        return None
    try:
        results = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        results = {}
    status = str(config.get("status", "unknown"))
    if status == "running" and not _alive(config.get("pid")):
        status = "interrupted"  # killed without a chance to say so
    options = config.get("options") or {}
    return RunInfo(
        run_dir=str(run_dir),
        arch=str(config.get("arch")),
        act=str(config.get("act")),
        dataset=str(config.get("dataset")),
        status=status,
        started=config.get("started"),
        seed=options.get("seed"),
        epochs=results.get("epochs", options.get("epochs")),
        best_val_acc=results.get("best_val_acc", config.get("best_val_acc")),
        test_acc=results.get("test_acc"),
    )


def list_runs(directory: str | os.PathLike[str] = "runs") -> list[RunInfo]:
    """The runs in ``directory`` (default ``./runs``), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    runs = [read_run(path) for path in sorted(directory.iterdir()) if path.is_dir()]
    return sorted((r for r in runs if r is not None), key=lambda r: (r.started or "", r.run_dir))


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # cannot tell; trust the recorded status
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Options of ``zoo.train`` a configuration file may not set: they describe where a run goes.
_NOT_FROM_CONFIG = frozenset({"output_dir", "progress", "trainer_options", "callbacks", "resume"})


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The keyword arguments of :func:`zoo.train` that a run's ``config.json`` records.

    Raises :class:`ConfigError` naming the file for anything that is not such a configuration.
    """
    from zoo.training import train

    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config {path}: {error}") from error
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"config {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a JSON object, like a run's config.json")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"config {path}: 'options' must be an object")
    kwargs: dict[str, Any] = {k: data[k] for k in ("arch", "act", "dataset") if k in data}
    kwargs.update(options)
    parameters = inspect.signature(train).parameters
    hints = _type_hints(train)
    for key, value in kwargs.items():
        if key not in parameters or key in _NOT_FROM_CONFIG:
            raise ConfigError(f"config {path}: unknown option {key!r}")
        expected = hints.get(key)
        if expected is not None and not _matches(value, expected):
            raise ConfigError(
                f"config {path}: option {key!r} expects {_type_name(expected)}, "
                f"got {type(value).__name__} {value!r}"
            )
    return kwargs
