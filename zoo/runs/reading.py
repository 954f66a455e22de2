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

#: The keys of ``results.json`` that hold paths; they are relative to the run directory.
RESULT_PATHS = ("run_dir", "checkpoint")
#: How many folder levels :func:`list_runs` searches for runs.
SEARCH_DEPTH = 4


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
    """A run's ``results.json``, or None if it has none that reads as a JSON object. Its paths
    (:data:`RESULT_PATHS`), written relative to the run directory, are returned joined to
    ``path``, where the run is now."""
    results, _ = _load_results(Path(path))
    if results is None:
        return None
    for key in RESULT_PATHS:
        value = results.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            results[key] = os.path.normpath(os.path.join(path, value))
    return results


def _load_results(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``results.json`` as written, or None and why it cannot be read (None if missing)."""
    file = path / RESULTS_FILE
    try:
        results = parse_json(file.read_text(encoding="utf-8"), str(file))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as error:
        return None, f"cannot read {file}: {error}"
    except ConfigError as error:
        return None, str(error)
    if not isinstance(results, dict):
        return None, f"{file} is not a JSON object"
    return results, None


def read_run(path: str | os.PathLike[str]) -> RunInfo:
    """The run in ``path``; never raises: a directory that cannot be read is ``unreadable``,
    with the reason in ``error``; so is a finished run whose ``results.json`` cannot be read."""
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
    results, problem = _load_results(path)
    if status == "finished" and results is None:
        status = "unreadable"
        error = problem or f"it is finished, but its {RESULTS_FILE} is missing"
    results = results or {}
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
    """The runs in ``directory`` (default ``./runs``) and in its folders down to
    :data:`SEARCH_DEPTH` levels (a comparison's ``runs/<slot>/<run>``, and
    ``<dataset>/runs/<slot>/<run>``), oldest first; unreadable ones included, marked so."""
    runs = [read_run(path) for path in _run_directories(Path(directory), SEARCH_DEPTH)]
    return sorted(runs, key=lambda r: (r.started or "", r.run_dir))


def _run_directories(folder: Path, depth: int) -> list[Path]:
    """The folders under ``folder`` that hold a ``config.json``, ``depth`` levels down at most;
    a run's own folders, hidden folders and links are not searched."""
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
    found = []
    for child in children:
        if (child / CONFIG_FILE).exists():
            found.append(child)
        elif depth > 1 and not child.name.startswith("."):
            found.extend(_run_directories(child, depth - 1))
    return found


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)
