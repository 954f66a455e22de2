"""Reading run directories without writing or locking them: :func:`read_run` (one run's status
and results), :func:`list_runs` (every run in a folder) and the checked ``config.json``. A run
whose process died while it held the lock is reported ``interrupted``, with the reason its
process left in ``.lock`` where there is one. Reads JSON only; no torch here.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo.runs.config import ConfigError, RunConfig, parse_json
from zoo.runs.files import (
    CONFIG_FILE,
    DEFAULT_OUTPUT_DIR,
    LOCK_FILE,
    RESULTS_FILE,
    STATUSES,
    held,
    lock_note,
)


@dataclass
class RunInfo:
    """One run directory, as its files describe it; ``error`` says why a run failed, or why
    its directory could not be read (status ``unreadable``)."""

    run_dir: str
    arch: str | None
    act: str | None
    dataset: str | None
    status: str  # running, finished, interrupted, failed or unreadable
    started: str | None
    seed: int | None
    epochs: int | None
    best_val_acc: float | None
    test_acc: float | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``config.json`` as a checked dict (its ``config`` is a valid RunConfig);
    a :class:`ConfigError` naming the file and the problem otherwise."""
    file = Path(path) / CONFIG_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {file}: {error}") from None
    record = parse_json(text, str(file))
    if not isinstance(record, dict):
        raise ConfigError(f"{file} is not a JSON object")
    if not isinstance(record.get("config"), dict):
        raise ConfigError(f"{file} has no 'config' object")
    RunConfig.from_dict(record["config"], source=str(file))
    for key, types in (("status", (str,)), ("started", (str, type(None)))):
        if not isinstance(record.get(key), types):
            raise ConfigError(f"{file}: {key!r} is {record.get(key)!r}")
    if record["status"] not in STATUSES:
        raise ConfigError(f"{file}: unknown status {record['status']!r}")
    return record


def read_config(path: str | os.PathLike[str]) -> RunConfig:
    """The configuration of the run in ``path``."""
    return RunConfig.from_dict(read_record(path)["config"], source=str(Path(path) / CONFIG_FILE))


def read_results(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run's ``results.json``, or None if it has none that reads as a JSON object."""
    try:
        results = parse_json((Path(path) / RESULTS_FILE).read_text(encoding="utf-8"), "results")
    except (OSError, UnicodeDecodeError, ConfigError):
        return None
    return results if isinstance(results, dict) else None


def read_run(path: str | os.PathLike[str]) -> RunInfo:
    """The run in ``path``; never raises: a directory that cannot be read is ``unreadable``,
    with the reason in ``error``."""
    path = Path(path)
    try:
        record = read_record(path)
    except ConfigError as error:
        return RunInfo(str(path), None, None, None, "unreadable", None, None, None, None, None,
                       str(error))  # fmt: skip
    config = record["config"]
    status, error = record["status"], record.get("error")
    if status == "running" and not held(path):
        note = lock_note(path / LOCK_FILE)
        status = note.get("status") if note.get("status") in STATUSES else "interrupted"
        error = note.get("error") or "its process ended without recording why (killed?)"
    results = read_results(path) or {}
    return RunInfo(
        run_dir=str(path),
        arch=config["arch"],
        act=config["act"],
        dataset=config["dataset"],
        status=status,
        started=record.get("started"),
        seed=record["seed"] if isinstance(record.get("seed"), int) else config["seed"],
        epochs=_number(results.get("epochs"), int) or config["epochs"],
        best_val_acc=_number(results.get("best_val_acc"), float),
        test_acc=_number(results.get("test_acc"), float),
        error=str(error) if error is not None and status != "finished" else None,
    )


def list_runs(directory: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR) -> list[RunInfo]:
    """The runs in ``directory`` (default ``./runs``), oldest first; unreadable ones included,
    marked so."""
    directory = Path(directory)
    try:
        candidates = sorted(p for p in directory.iterdir() if (p / CONFIG_FILE).exists())
    except OSError:
        return []
    runs = [read_run(path) for path in candidates]
    return sorted(runs, key=lambda r: (r.started or "", r.run_dir))


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)
