"""A ``zoo tune`` study in Optuna's storage: opened (created, or loaded and checked against the
command's settings), its trials counted, and the trials that dead workers left ``RUNNING``
failed and asked again.

A study records its settings (the space, the metric and direction, and the runs' options
that decide what a trial computes) in its user attributes; loading it with other settings is a
usage error that writes nothing. Workers beat a heartbeat (Optuna's, on RDB storage): a trial
whose worker stopped beating is failed by the next worker that starts a trial, and its
parameters are asked again (:func:`retry`); a worker on the same machine finds a dead worker's
trial at once, by its process id.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import random
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import ZooError, ZooUsageError
from zoo.runs.config import flag

#: Seconds between a trial's heartbeats, and without one before another worker fails it.
HEARTBEAT_INTERVAL = 20
GRACE_PERIOD = 60
#: What opening a new database says when another worker is creating its tables at that moment.
CREATE_RACES = ("already exists", "UNIQUE constraint failed", "database is locked")
CREATE_ATTEMPTS = 5
#: The user attribute under which a study keeps zoo's settings.
SETTINGS = "zoo"
#: Run options a worker may set its own way: where and how it runs, not what a trial computes.
PLACEMENT = ("data_dir", "accelerator", "devices", "num_workers", "strategy", "num_nodes",
             "logger", "diagnostics", "compile")  # fmt: skip


def import_optuna() -> Any:
    """Optuna, quiet (zoo prints one line per trial), or a ZooError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ZooError(
            "zoo tune needs Optuna: pip install 'lightning-zoo[tune]' (or pip install optuna)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # zoo says how each trial ended
    return optuna


def default_storage(output_dir: Path) -> str:
    """``sqlite:///OUTPUT/study.db``."""
    return f"sqlite:///{(output_dir / 'study.db').resolve()}"


def open_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url``, with heartbeats; a :class:`ZooUsageError` when it
    cannot be opened."""
    import_optuna()
    from optuna.storages import RDBStorage

    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}  # workers wait for each other's writes
        path = url.partition(":///")[2]
        if path and not Path(path).parent.is_dir():
            raise ZooUsageError(
                f"cannot open the study storage {url}: no folder {Path(path).parent}"
            )
    stale = "heartbeat_stale_trial_callback"
    callback = (
        stale if stale in inspect.signature(RDBStorage).parameters else "failed_trial_callback"
    )
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_INTERVAL,
                    grace_period=GRACE_PERIOD, **{callback: retry},
                )  # fmt: skip
        except Exception as error:  # SQLAlchemy's and the database driver's, of any kind
            # Two workers creating the tables of a new database at once: the second one finds
            # them made (or half made) by the first, and opens them on a later try.
            racing = any(text in str(error) for text in CREATE_RACES)
            if racing and attempt < CREATE_ATTEMPTS - 1:
                time.sleep(0.2 + random.random())
                continue
            reason = " ".join(str(error).split())[:300]
            raise ZooUsageError(f"cannot open the study storage {url}: {reason}") from None
    raise AssertionError("unreachable")


def open_study(storage: Any, name: str, settings: dict[str, Any], sampler: Any, pruner: Any) -> Any:
    """The study ``name`` in ``storage``: loaded if it exists (its settings must be
    ``settings``: else a :class:`ZooUsageError` and nothing written), else created."""
    optuna = import_optuna()
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        study = optuna.create_study(
            study_name=name, storage=storage, sampler=sampler, pruner=pruner,
            direction=settings["direction"], load_if_exists=True,
        )  # fmt: skip
    settings = json.loads(json.dumps(settings))  # as the storage gives it back
    recorded = _recorded_settings(study)
    if recorded is None:
        study.set_user_attr(SETTINGS, settings)
        return study
    for key, value in settings.items():
        if recorded.get(key) != value:
            was, now = _difference(key, recorded.get(key), value)
            raise ZooUsageError(
                f"the study {name!r} in {storage.url} was created with other {_what(key)} "
                f"({was}; this command: {now}); give another --output-dir (or --study-name) "
                "for a new study, or the same options to continue it"
            )
    return study


def _recorded_settings(study: Any) -> dict[str, Any] | None:
    """The settings the study was created with (None: a study this worker just created)."""
    return study.user_attrs.get(SETTINGS)


def _what(key: str) -> str:
    return {"space": "--search options", "config": "run options"}.get(key, f"--{key}")


def _difference(key: str, was: Any, now: Any) -> tuple[str, str]:
    """The recorded and the given value of a setting, as the message shows them: for the run
    options, only those that differ."""
    if key == "space":
        return " ".join(map(repr, was or [])), " ".join(map(repr, now))
    if key == "config" and isinstance(was, dict):
        names = sorted(k for k in {*was, *now} if was.get(k) != now.get(k))
        return (
            ", ".join(f"{flag(k)} {was.get(k)!r}" for k in names),
            ", ".join(f"{flag(k)} {now.get(k)!r}" for k in names),
        )
    return str(was), str(now)


def counts(study: Any) -> dict[str, int]:
    """The number of the study's trials in each state (``COMPLETE``, ``PRUNED``, ...)."""
    numbers: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        numbers[trial.state.name] = numbers.get(trial.state.name, 0) + 1
    return numbers


def done(study: Any) -> int:
    """The trials that count towards ``--trials``: complete or pruned."""
    found = counts(study)
    return found.get("COMPLETE", 0) + found.get("PRUNED", 0)


def worker_id() -> dict[str, Any]:
    """This process, as a trial records the worker that runs it."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: the signal check is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def recover(study: Any) -> list[int]:
    """Fail the ``RUNNING`` trials of dead workers and ask their parameters again
    (:func:`retry`): on this machine those whose process has ended, elsewhere those whose
    heartbeat is :data:`GRACE_PERIOD` seconds old (Optuna's ``fail_stale_trials``, which calls
    :func:`retry`); the numbers of those trials."""
    optuna = import_optuna()
    stale = optuna.trial.TrialState.RUNNING
    before = {t.number for t in study.get_trials(deepcopy=False, states=(stale,))}
    optuna.storages.fail_stale_trials(study)  # those without a heartbeat for GRACE_PERIOD
    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    recovered = sorted(t.number for t in failed if t.number in before)
    here = worker_id()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker") or {}
        if worker.get("host") != here["host"] or worker.get("pid") in (None, here["pid"]):
            continue
        if _alive(int(worker["pid"])):
            continue
        try:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker failed it first, and retries it
        retry(study, trial)
        recovered.append(trial.number)
    return recovered


def retry(study: Any, trial: Any) -> None:
    """Ask ``trial``'s parameters again (a failed trial whose worker died or was stopped):
    a trial enqueued with them, which resumes ``trial``'s run where it can."""
    attrs = {"retry_of": trial.number}
    if trial.user_attrs.get("run_dir"):
        attrs["resume"] = trial.user_attrs["run_dir"]
    if trial.user_attrs.get("retry_of") is not None:
        attrs["first"] = trial.user_attrs.get("first", trial.user_attrs["retry_of"])
    if trial.params:  # else it failed before its parameters were drawn: nothing to repeat
        study.enqueue_trial(dict(trial.params), user_attrs=attrs)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Optuna's experimental warnings (heartbeats, the plot) silenced: they are zoo's choice."""
    optuna = import_optuna()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield
