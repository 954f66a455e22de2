"""The built-in loggers: ``csv``, ``tensorboard``, ``mlflow`` and ``wandb``.

Each factory is called as ``factory(save_dir=RUN_DIR, **spec_kwargs)`` and returns a Lightning
logger whose files stay inside the run directory unless the spec points it at a server. The
logger libraries are imported only inside the factories; a missing one is a :class:`zoo.ZooError`
naming the extra to install.

Every logger here records the run's configuration (``config.json``'s options, with the seed and
learning rate used) as its hyperparameters, instead of the LightningModule's, and continues the
same run when zoo resumes it: TensorBoard appends to its directory, MLflow and W&B reuse their
run, and the CSV logger writes a new ``version_N`` directory.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import zoo
from zoo._compat import wandb as wandb_compat

#: The experiment (MLflow) and project (W&B) runs go to unless the spec names another.
DEFAULT_PROJECT = "lightning-zoo"
#: The MLflow run tag, and W&B id suffix, that identify a zoo run across resumes.
RUN_KEY_TAG = "zoo.run_key"
#: The Lightning loggers subclassed here, by class name.
_BASES = ("CSVLogger", "TensorBoardLogger", "MLFlowLogger", "WandbLogger")
_CLASSES: dict[str, type] = {}


@zoo.hookimpl
def register_loggers(register: zoo.Register) -> None:
    """The loggers that ship with lightning-zoo."""
    register(
        "csv",
        csv_logger,
        summary="Lightning's CSVLogger: RUN/csv/version_N/metrics.csv and hparams.yaml",
    )
    register(
        "tensorboard",
        tensorboard_logger,
        summary="TensorBoard event files in RUN/tensorboard (extra: tensorboard)",
        aliases=("tb",),
    )
    register(
        "mlflow",
        mlflow_logger,
        summary="MLflow: a local store RUN/mlflow.db, or tracking_uri=... (extra: mlflow)",
    )
    register(
        "wandb",
        wandb_logger,
        summary="Weights & Biases, offline in RUN/wandb unless offline=False (extra: wandb)",
    )


# -- the factories ---------------------------------------------------------------------------


def csv_logger(save_dir: str) -> Any:
    """Lightning's CSVLogger, in ``RUN_DIR/csv/version_N`` (one version per start or resume)."""
    cls = _logger_class("CSVLogger")
    return cls(_run_dir=save_dir, save_dir=save_dir, name="csv")


def tensorboard_logger(save_dir: str) -> Any:
    """Lightning's TensorBoardLogger, writing event files into ``RUN_DIR/tensorboard``."""
    _require("tensorboard", "tensorboard", "tensorboard")
    cls = _logger_class("TensorBoardLogger")
    # One directory for the whole run: a resumed run adds an event file next to the first.
    return cls(
        _run_dir=save_dir, save_dir=save_dir, name="tensorboard", version="",
        default_hp_metric=False,
    )  # fmt: skip


def mlflow_logger(
    save_dir: str,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_PROJECT,
    run_name: str | None = None,
    artifact_location: str | None = None,
) -> Any:
    """Lightning's MLFlowLogger. Without ``tracking_uri``, a SQLite store ``RUN_DIR/mlflow.db``
    (``mlflow ui --backend-store-uri sqlite:///RUN_DIR/mlflow.db`` shows it); the run is named
    after the run directory and tagged with it, and a resumed zoo run continues its MLflow run."""
    _require("mlflow", "mlflow", "mlflow")
    run_dir = Path(save_dir).resolve()
    if tracking_uri is None:
        tracking_uri = f"sqlite:///{run_dir / 'mlflow.db'}"
        artifact_location = artifact_location or (run_dir / "mlartifacts").as_uri()
    key = _run_key(run_dir)
    tags = {"zoo.run_dir": str(run_dir), **({RUN_KEY_TAG: key} if key else {})}
    with _quiet_mlflow():
        run_id = _mlflow_run_of(tracking_uri, experiment, artifact_location, key)
        cls = _logger_class("MLFlowLogger")
        return cls(
            _run_dir=save_dir, experiment_name=experiment, run_name=run_name or run_dir.name,
            tracking_uri=tracking_uri, tags=tags, artifact_location=artifact_location,
            run_id=run_id, log_model=False,
        )  # fmt: skip


def wandb_logger(
    save_dir: str,
    project: str = DEFAULT_PROJECT,
    entity: str | None = None,
    name: str | None = None,
    offline: bool = True,
) -> Any:
    """Lightning's WandbLogger, offline by default (``wandb sync RUN_DIR/wandb/offline-run-*``
    uploads it later); its files go to ``RUN_DIR/wandb``, and a resumed zoo run continues the
    same W&B run."""
    wandb = _require("wandb", "wandb", "wandb")
    run_dir = Path(save_dir).resolve()
    key = _run_key(run_dir)
    cls = _logger_class("WandbLogger")
    # quiet: no history and summary tables when the run ends; console "off": W&B does not
    # capture (and wrap) zoo's stdout and stderr.
    settings = wandb.Settings(quiet=True, console="off")
    return cls(
        _run_dir=save_dir, save_dir=str(run_dir), project=project, entity=entity,
        name=name or run_dir.name, offline=offline, id=f"zoo-{key}" if key else None,
        log_model=False, settings=settings,
    )  # fmt: skip


# -- the run's hyperparameters ---------------------------------------------------------------


def run_hyperparameters(run_dir: str | Path) -> dict[str, Any] | None:
    """The run options in ``run_dir/config.json``, with the seed and learning rate the run
    uses; None where ``run_dir`` is not a readable zoo run directory."""
    from zoo import read_record

    try:
        record = read_record(run_dir)
    except zoo.ZooError:
        return None
    params = dict(record["config"])
    for key in ("seed", "lr"):
        if record.get(key) is not None:
            params[key] = record[key]
    return params


def _run_key(run_dir: Path) -> str | None:
    """An id for the run in ``run_dir`` that stays the same when it is resumed: its path and
    start time, hashed. None outside a zoo run directory."""
    from zoo import read_record

    try:
        started = read_record(run_dir).get("started")
    except zoo.ZooError:
        return None
    return hashlib.sha256(f"{run_dir}|{started}".encode()).hexdigest()[:16]


class _RunHyperparameters:
    """Mixed into each Lightning logger class: log the run's configuration as the
    hyperparameters, read from the run directory when Lightning logs them (at the start of
    fitting and of testing, so that a resumed run's changes are in)."""

    def __init__(self, *args: Any, _run_dir: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._zoo_run_dir = _run_dir

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        ours = run_hyperparameters(self._zoo_run_dir)
        if ours is None:  # not in a zoo run directory: what Lightning gives
            ours = dict(params if isinstance(params, Mapping) else vars(params))
        self._log_params(ours, *args, **kwargs)

    def _log_params(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().log_hyperparams(params, *args, **kwargs)  # type: ignore[misc]


class _TensorBoardHyperparameters(_RunHyperparameters):
    """Also writes the hyperparameters, once, as TensorBoard's HParams session without a metric
    of its own: the HParams tab then shows them with every scalar the run logs."""

    _zoo_session_written = False

    def _log_params(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super()._log_params(params, *args, **kwargs)
        writer = self.experiment.file_writer  # type: ignore[attr-defined]
        if self._zoo_session_written or writer is None:  # None: closed after fitting
            return
        from torch.utils.tensorboard.summary import hparams

        plain = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
                 for k, v in params.items()}  # fmt: skip
        _, session_start, _ = hparams(plain, {})
        writer.add_summary(session_start)
        self._zoo_session_written = True


class _MLflowHyperparameters(_RunHyperparameters):
    """MLflow's params cannot change: a resumed run logs only the ones not logged yet. And
    MLflow's "View run at" line goes to stderr, so that stdout stays zoo's."""

    def _log_params(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        logged = self.experiment.get_run(self.run_id).data.params  # type: ignore[attr-defined]
        new = {k: v for k, v in params.items() if k not in logged}
        if new:
            super()._log_params(new, *args, **kwargs)

    def finalize(self, status: str = "success") -> None:
        with contextlib.redirect_stdout(sys.stderr):
            super().finalize(status)  # type: ignore[misc]


class _WandbRun(_RunHyperparameters):
    """Finishes the W&B run when zoo's run is over (after testing, or when a stage fails), so
    that the next run in this process gets a run of its own and W&B's closing lines go to
    stderr, not to zoo's stdout as they do when W&B finishes at exit."""

    _zoo_stage: str | None = None
    _zoo_started = False
    _zoo_owns_run = True

    _zoo_run: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Lightning (2.6) passes anonymous=None to wandb.init, which W&B (0.31) warns about.
        wandb_compat.drop_wandb_anonymous(self)

    @property
    def experiment(self) -> Any:
        if self._zoo_started:
            return super().experiment  # type: ignore[misc]
        import wandb

        # A run the caller started before is theirs (Lightning logs to it): not finished here.
        self._zoo_owns_run = wandb.run is None
        run = super().experiment  # type: ignore[misc]
        self._zoo_started = True
        if self._zoo_owns_run:  # runs before W&B's own exit hook, registered by wandb.init
            self._zoo_run = run
            atexit.register(self._zoo_finish, 0)
        return run

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # type: ignore[misc]
        state.pop("_zoo_run", None)  # a copy (ddp_spawn) does not finish this process's run
        return state

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        # Lightning calls this at the start of every stage: note which one.
        try:
            self._zoo_stage = str(model.trainer.state.fn.value)
        except (AttributeError, RuntimeError):  # not a LightningModule attached to a Trainer
            self._zoo_stage = None
        super().log_graph(model, input_array)  # type: ignore[misc]

    def finalize(self, status: str) -> None:
        super().finalize(status)  # type: ignore[misc]
        if status != "success":
            self._zoo_finish(1)
        elif self._zoo_stage not in (None, "fit"):  # fitting is followed by testing
            self._zoo_finish(0)

    def _zoo_finish(self, exit_code: int) -> None:
        run, self._zoo_run = self._zoo_run, None
        if run is not None:
            with contextlib.redirect_stdout(sys.stderr):
                run.finish(exit_code=exit_code)


_MIXINS: dict[str, type] = {
    "TensorBoardLogger": _TensorBoardHyperparameters,
    "MLFlowLogger": _MLflowHyperparameters,
    "WandbLogger": _WandbRun,
}


def _logger_class(name: str) -> type:
    """The zoo subclass of Lightning's logger class ``name``, made on first use (Lightning is
    imported then). It is this module's attribute ``name``, so loggers pickle (ddp_spawn)."""
    if name not in _CLASSES:
        from lightning.pytorch import loggers

        base = getattr(loggers, name)
        mixin = _MIXINS.get(name, _RunHyperparameters)
        namespace = {"__module__": __name__, "__qualname__": name, "__doc__": base.__doc__}
        _CLASSES[name] = type(name, (mixin, base), namespace)
        globals()[name] = _CLASSES[name]
    return _CLASSES[name]


def __getattr__(name: str) -> type:
    if name in _BASES:
        return _logger_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- helpers ---------------------------------------------------------------------------------


def _require(module: str, extra: str, logger: str) -> Any:
    """Import ``module``, or raise a ZooError saying which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise zoo.ZooError(
            f"logger {logger!r} needs {module}, which cannot be imported ({error}): "
            f"pip install 'lightning-zoo[{extra}]'"
        ) from None


def _mlflow_run_of(
    tracking_uri: str, experiment: str, artifact_location: str | None, key: str | None
) -> str | None:
    """The id of the MLflow run an earlier start of this zoo run logged to, if any. Creates
    the experiment if it is missing (Lightning would, with a warning on every new store)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            try:
                client.create_experiment(experiment, artifact_location=artifact_location)
            except MlflowException:  # another run created it meanwhile
                if client.get_experiment_by_name(experiment) is None:
                    raise
            return None
        if key is None:
            return None
        runs = client.search_runs(
            [found.experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{key}'", max_results=1
        )
    except MlflowException as error:
        raise zoo.ZooError(f"MLflow tracking store {tracking_uri}: {error}") from None
    return runs[0].info.run_id if runs else None


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Without MLflow's messages about creating the tables of a new SQLite store."""
    quiet = [logging.getLogger(n) for n in ("mlflow.store.db.utils", "alembic.runtime.migration")]
    levels = [logger.level for logger in quiet]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mlflow\..*")
        for logger in quiet:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(quiet, levels, strict=True):
                logger.setLevel(level)
