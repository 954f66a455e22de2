"""The composition of a run: a :class:`~zoo.runs.config.RunConfig` -> checked components ->
LightningModule + DataModule -> Trainer, in a :class:`~zoo.runs.directory.Run` directory.

Distributed runs use Lightning's strategies (``strategy="ddp"``, ``devices``, ``num_nodes``, or
processes started by ``torchrun`` or SLURM): every process runs :func:`run`, and only global
rank 0 creates, locks and writes the run directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from zoo.errors import (
    ConfigError,
    RunAlreadyFinished,
    RunDamagedError,
    RunWriteError,
    TrainingInterrupted,
    ZooError,
    ZooUsageError,
)
from zoo.plugin.components import DEFAULT_BATCH_SIZE, resolve
from zoo.plugin.loading import component_origin
from zoo.runs.config import RunConfig, field_names, flag
from zoo.runs.directory import Run
from zoo.runs.files import CONFIG_FILE, DEFAULT_OUTPUT_DIR
from zoo.runs.reading import read_config, read_results

#: Variables that give a process's rank when torchrun, SLURM or Lightning's launcher started it.
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")
#: Options a resumed run may change: they extend it or say where it runs, not what it computes.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "max_steps", "data_dir", "accelerator", "devices", "strategy", "num_nodes",
     "num_workers", "compile", "precision", "diagnostics", "logger"}
)  # fmt: skip


@dataclass
class TrainResult:
    """What a training run produced; ``to_dict()`` is what ``zoo train --json`` prints."""

    test_acc: float
    test_loss: float
    train_seconds: float
    run_dir: str
    checkpoint: str
    arch: str
    act: str
    dataset: str
    epochs: int
    steps: int
    seed: int
    best_val_acc: float | None
    accelerator: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train(
    arch: str = "mlp",
    act: str = "relu",
    dataset: str = "mnist",
    *,
    epochs: int = 5,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float | None = None,
    optimizer: str = "adam",
    scheduler: str | None = None,
    warmup_steps: int = 0,
    label_smoothing: float = 0.0,
    gradient_clip: float | None = None,
    accumulate_grad_batches: int = 1,
    early_stopping: int | None = None,
    augment: tuple[str, ...] = (),
    logger: tuple[str, ...] = (),
    seed: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    accelerator: str = "auto",
    devices: int | str = "auto",
    precision: str | None = None,
    max_steps: int = -1,
    compile: bool = False,
    num_workers: int | None = None,
    strategy: str = "auto",
    num_nodes: int = 1,
    diagnostics: bool = False,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    progress: bool = True,
    trainer_options: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
    resume: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train ``arch`` with activation ``act`` on ``dataset`` and evaluate it on the test split.

    The options before ``output_dir`` are those of :class:`zoo.RunConfig` (see it, or
    ``zoo train --help``); ``zoo.run(config)`` does the same from a configuration. The others:
    ``output_dir`` gets the run directory; ``progress=False`` prints nothing;
    ``trainer_options`` go to ``lightning.Trainer`` as they are; ``callbacks`` are added to the
    Trainer's; ``resume`` continues that run (see :func:`resume`), with the options given here
    that differ from the defaults as changes.
    """
    given = locals()
    config = RunConfig(**{name: given[name] for name in field_names()})
    options = {"output_dir": output_dir, "progress": progress, "callbacks": callbacks,
               "trainer_options": trainer_options}  # fmt: skip
    if resume is not None:
        defaults = RunConfig()
        changes = {k: v for k, v in config.to_dict().items() if getattr(defaults, k) != v}
        return _resume(resume, changes, **options)
    return run(config, **options)


def resume(
    run_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    trainer_options: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
    **changes: Any,
) -> TrainResult:
    """Continue the run in ``run_dir`` where it stopped, with its configuration, weights,
    optimizer state and position in the data; ``changes`` extend it (``epochs=10``) or move it
    (``accelerator="gpu"``). A finished run with nothing left to train raises
    :class:`RunAlreadyFinished`, which carries its result. ``progress``, ``trainer_options``
    and ``callbacks`` are as for :func:`train`."""
    options = {"progress": progress, "trainer_options": trainer_options, "callbacks": callbacks}
    return _resume(run_dir, changes, **options)


def run(
    config: RunConfig,
    *,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    progress: bool = True,
    trainer_options: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Train the run ``config`` describes in a new directory under ``output_dir``."""
    return _Composition(config, progress, trainer_options, callbacks).start(Path(output_dir))


def _resume(path: str | os.PathLike[str], changes: dict[str, Any], **options: Any) -> TrainResult:
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".ckpt":
        path = path.parent.parent  # a run's checkpoints/last.ckpt names its run
    fixed = sorted(set(changes) - RESUMABLE_CHANGES)
    if fixed:
        raise ZooUsageError(
            f"a resumed run keeps its --{fixed[0].replace('_', '-')}; to train another one, "
            f"start a new run from its configuration: zoo train --config {path / 'config.json'}"
        )
    if not (path / CONFIG_FILE).is_file():
        raise ZooUsageError(
            f"cannot resume: {path} is not a run directory (it has no {CONFIG_FILE}); give a "
            "directory that zoo train created (zoo runs DIR lists them)"
        )
    try:
        config = read_config(path)
    except ConfigError as error:
        raise RunDamagedError(
            f"cannot resume {path}: {error}. Repair the file, or start the run again with "
            "zoo train and its options"
        ) from None
    lengthened = sorted({"epochs", "max_steps"} & set(changes))
    if config.scheduler and lengthened and changes[lengthened[0]] != getattr(config, lengthened[0]):
        raise ZooUsageError(
            f"a run with a learning-rate schedule keeps its {flag(lengthened[0])}: its schedule "
            f"({config.scheduler}) spans the steps it was started with; to train longer, start a "
            f"new run: zoo train --config {path / 'config.json'} {flag(lengthened[0])} N"
        )
    config = config.replace(**changes)
    options.pop("output_dir", None)
    return _Composition(config, **options).resume(path)


class _Composition:
    """One run being put together and trained; :meth:`start` and :meth:`resume` are the two
    ways in."""

    def __init__(
        self,
        config: RunConfig,
        progress: bool = True,
        trainer_options: dict[str, Any] | None = None,
        callbacks: list[Any] | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.trainer_options = dict(trainer_options or {})
        self.callbacks = list(callbacks or [])
        self.main = is_main_process()

    # -- the two ways in -----------------------------------------------------------------------

    def start(self, output_dir: Path) -> TrainResult:
        self._check()
        seed = self.config.seed
        if seed is None:
            # The processes Lightning's DDP launcher starts inherit the seed rank 0 drew.
            inherited = None if self.main else os.environ.get("PL_GLOBAL_SEED")
            seed = int(inherited) if inherited else random.SystemRandom().randrange(2**31)
        self._build(seed)
        record = self._record(seed, started=datetime.now().isoformat(timespec="seconds"))
        specs = (self.arch_spec, self.act_spec, self.data_spec)
        names = "-".join(re.sub(r"[^A-Za-z0-9]+", "_", s.name).strip("_") for s in specs)
        run = Run.create(output_dir, names, record) if self.main else Run(output_dir / names)
        with run:
            try:
                trainer = self._trainer(run)
            except BaseException:
                if self.main:
                    run.discard()
                raise
            return self._fit(run, trainer, seed, checkpoint=None)

    def resume(self, path: Path) -> TrainResult:
        run = Run.open(path) if self.main else Run(path)  # first: another writer stops here
        with run:
            self._check()
            from zoo.training.checkpoints import read_resume_checkpoints

            seed = int(run.record["seed"])
            if not run.last_checkpoint.is_file():
                raise ZooUsageError(
                    f"cannot resume {path}: it has no checkpoints/last.ckpt (nothing was saved "
                    f"yet); start it again with: zoo train --config {path / 'config.json'}"
                )
            read_resume_checkpoints(run.path)  # a damaged last.ckpt or best.ckpt is named here
            self._check_not_finished(run)
            self._build(seed)
            trainer = self._trainer(run)
            if self.main:
                history = [
                    *run.record.get("resumed", []),
                    datetime.now().isoformat(timespec="seconds"),
                ]
                run.metrics.load()
                run.update(**self._record(seed, started=run.record["started"]),
                           status="running", error=None, resumed=history)  # fmt: skip
            return self._fit(run, trainer, seed, checkpoint=run.last_checkpoint)

    # -- steps ---------------------------------------------------------------------------------

    def _check(self) -> None:
        """Every name and argument, before anything slow happens; then the Trainer settings,
        before the data loads."""
        c = self.config
        self.arch_component, self.arch_spec = resolve("architecture", c.arch)
        self.act_component, self.act_spec = resolve("activation", c.act)
        self.data_component, self.data_spec = resolve("dataset", c.dataset)
        self.recipe = {
            "optimizer": [resolve("optimizer", c.optimizer)],
            "scheduler": [resolve("scheduler", c.scheduler)] if c.scheduler else [],
            "augment": [resolve("augmentation", spec) for spec in c.augment],
            "logger": [resolve("logger", spec) for spec in c.logger],
        }
        self._check_trainer_settings()

    def _check_trainer_settings(self) -> None:
        import lightning as L

        c = self.config
        try:
            with _quiet_lightning(progress=False):
                L.Trainer(
                    accelerator=c.accelerator, devices=c.devices, strategy=c.strategy,
                    num_nodes=c.num_nodes, precision=c.precision,  # type: ignore[arg-type]
                    logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False,
                )  # fmt: skip
        except Exception as error:  # Lightning says what is wrong: a misconfiguration, a
            # missing package (torch_xla), a bad device index
            given = [
                f"{flag(name)} {getattr(c, name)}"
                for name in ("accelerator", "devices", "strategy", "num_nodes", "precision")
                if getattr(c, name) != getattr(RunConfig, name)
            ]
            where = f" ({' '.join(given)})" if given else ""
            raise ZooUsageError(f"invalid trainer setting{where}: {error}") from None

    def _check_not_finished(self, run: Run) -> None:
        results = read_results(run.path)
        if run.record.get("status") != "finished" or results is None:
            return
        try:
            result = TrainResult(**{k: results[k] for k in TrainResult.__dataclass_fields__})
        except KeyError:
            return  # results.json is not ours: train and test again
        epochs, steps = result.epochs, result.steps
        step_limit = self.config.max_steps
        if self.config.epochs > epochs and (step_limit == -1 or step_limit > steps):
            return
        raise RunAlreadyFinished(
            f"run {run.path} is finished ({epochs} epochs, {steps} steps, test accuracy "
            f"{result.test_acc:.2%}); nothing to do. To train it further, give more epochs: "
            f"zoo train --resume {run.path} --epochs {epochs + 5}",
            result,
        )

    def _build(self, seed: int) -> None:
        """Components checked on a dummy batch, then the model and the data, loaded."""
        from zoo.data.vision import load_data

        self._build_datamodule()
        self._build_module(seed)
        # Missing or unusable data fails here, before a new run directory exists.
        load_data(self.datamodule, self.data_component, "fit")
        self._check_recipe()

    def _build_datamodule(self) -> None:
        """The dataset's datamodule, its declarations checked (no data loaded yet)."""
        from zoo.data.vision import check_datamodule, dataset_arguments

        c = self.config
        data_args = dataset_arguments(self.data_component, c.num_workers)  # only if set
        self.datamodule = self.data_component.build(
            {**self.data_spec.kwargs, **data_args}, data_dir=c.data_dir, batch_size=c.batch_size
        )
        check_datamodule(self.datamodule, self.data_component)

    def _build_module(self, seed: int) -> None:
        """The components checked on a dummy batch, then the model, seeded with ``seed`` (its
        initial weights depend on nothing else)."""
        import lightning as L

        from zoo.training.module import ZooClassifier
        from zoo.training.preflight import check_components

        c = self.config
        shape, classes = self.datamodule.input_shape, self.datamodule.num_classes
        check_components(str(self.arch_spec), str(self.act_spec), shape, classes)
        L.seed_everything(seed, workers=True, verbose=False)
        self.module = ZooClassifier(
            arch=str(self.arch_spec),
            act=str(self.act_spec),
            input_shape=shape,
            num_classes=classes,
            optimizer=str(self.recipe["optimizer"][0][1]),
            lr=c.lr,
            dataset=str(self.data_spec),
            class_names=self.datamodule.class_names,
            compile=c.compile,
            scheduler=c.scheduler and str(self.recipe["scheduler"][0][1]),
            warmup_steps=c.warmup_steps,
            label_smoothing=c.label_smoothing,
            augment=[str(spec) for _, spec in self.recipe["augment"]],
            seed=seed,
        )
        if c.augment:
            from zoo.training.recipe import BatchAugmenter

            mean, std = _normalisation(self.datamodule)
            self.module.augmenter = BatchAugmenter(c.augment, mean, std, seed)

    def _check_recipe(self) -> None:
        """Build the optimizer and schedule once, on the model: a bad argument that only their
        own checks see (``adam:betas=(0.9,)``) fails here, before a run directory exists."""
        from zoo.training.recipe import create_optimizer, create_schedule

        c, hparams = self.config, self.module.hparams
        optimizer = create_optimizer(hparams["optimizer"], self.module.model, lr=c.lr)
        batches = len(self.datamodule.train_dataloader())
        per_epoch = max(1, -(-batches // c.accumulate_grad_batches))
        total = per_epoch * c.epochs
        if c.max_steps != -1:
            total = min(total, c.max_steps)
        create_schedule(hparams["scheduler"], optimizer, total_steps=total,
                        steps_per_epoch=per_epoch, warmup_steps=c.warmup_steps)  # fmt: skip
        self.module.schedule_length = (total, per_epoch)

    def _record(self, seed: int, started: str) -> dict[str, Any]:
        """What ``config.json`` says of the run besides its status."""
        return {
            "config": self.config.to_dict(),
            "seed": seed,
            "lr": self.module.hparams["lr"],
            "data_path": "in-memory" if getattr(self.datamodule, "in_memory", False)
            else "dataloader",
            "components": self._components(),
            "versions": _versions(),
            "started": started,
            "pid": os.getpid(),
        }  # fmt: skip

    def _components(self) -> dict[str, Any]:
        components = {
            "arch": _origin(self.arch_component),
            "act": _origin(self.act_component),
            "dataset": _origin(self.data_component),
        }
        for option, resolved in self.recipe.items():
            for index, (component, _) in enumerate(resolved):
                key = (
                    option
                    if len(resolved) == 1 and option in ("optimizer", "scheduler")
                    else (f"{option}[{index}]")
                )
                components[key] = _origin(component)
        return components

    def _fit(self, run: Run, trainer: Any, seed: int, checkpoint: Path | None) -> TrainResult:
        model_checkpoint = trainer.checkpoint_callback
        started = time.perf_counter()
        try:
            with _quiet_lightning(self.progress):
                trainer.fit(
                    self.module, datamodule=self.datamodule, ckpt_path=checkpoint, weights_only=True
                )
                train_seconds = time.perf_counter() - started
                guard = next(cb for cb in trainer.callbacks if type(cb).__name__ == "RunGuard")
                if guard.signum is not None:  # after the last step, during the last validation
                    raise TrainingInterrupted(
                        f"stopped after training (epoch {trainer.current_epoch}), before testing",
                        guard.signum,
                    )
                best = model_checkpoint.best_model_path or None
                if best is None:  # no validation happened (--max-steps inside the first epoch)
                    best = str(run.best_checkpoint)
                    trainer.save_checkpoint(best)
                (metrics,) = trainer.test(
                    self.module,
                    datamodule=self.datamodule,
                    ckpt_path=best,
                    verbose=False,
                    weights_only=True,
                )
        except TrainingInterrupted as error:
            if self.main:
                run.metrics.flush()
                run.fail("interrupted", str(error))
            raise TrainingInterrupted(
                f"{error} Continue it with: zoo train --resume {run.path}", error.signum
            ) from None
        except BaseException as error:
            if self.main:
                stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
                with contextlib.suppress(ZooError, OSError):
                    run.metrics.flush()
                run.fail("interrupted" if stopped else "failed", f"{type(error).__name__}: {error}")
            raise
        best_score = model_checkpoint.best_model_score
        result = TrainResult(
            test_acc=float(metrics["test_acc"]),
            test_loss=float(metrics["test_loss"]),
            train_seconds=round(train_seconds, 3),
            run_dir=str(run.path),
            checkpoint=str(best),
            arch=str(self.arch_spec),
            act=str(self.act_spec),
            dataset=str(self.data_spec),
            epochs=trainer.current_epoch,
            steps=trainer.global_step,
            seed=seed,
            best_val_acc=float(best_score) if best_score is not None else None,
            accelerator=type(trainer.accelerator).__name__.removesuffix("Accelerator").lower(),
        )
        if self.main:
            try:
                run.metrics.flush()
            except RunWriteError as error:
                run.fail("failed", str(error))
                raise
            run.finish(result.to_dict())
        return result

    def _trainer(self, run: Run) -> Any:
        import lightning as L
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from zoo.training.callbacks import EpochCheckpoint, NullProfiler, ThrottledProgressBar
        from zoo.training.checkpoints import AtomicCheckpointIO
        from zoo.training.guard import (
            CheckpointSync,
            LastCheckpoint,
            RunGuard,
            RunMetadata,
            RunRecorder,
        )

        c = self.config
        model_checkpoint = EpochCheckpoint(
            dirpath=run.checkpoint_dir,
            filename="best",
            monitor="val_acc",
            mode="max",
            auto_insert_metric_name=False,
            enable_version_counter=False,  # best.ckpt is always the current best one
            save_on_train_epoch_end=False,  # after validation, before LastCheckpoint saves
        )
        metadata = {"components": self._components(), "versions": _versions()}
        callbacks = [
            model_checkpoint,
            *self._recipe_callbacks(),
            LastCheckpoint(run.last_checkpoint),
            RunMetadata(metadata),
            CheckpointSync(run),
            *self._diagnostics(),
            *self.callbacks,
            *([ThrottledProgressBar()] if self.progress else []),
            # After the others: a step's hooks have all run when a signal stops the run there.
            RunGuard(run.last_checkpoint),
        ]
        loggers = [RunRecorder(run), *self._loggers(run)]  # a logger's own errors are its own
        try:
            with _quiet_lightning(self.progress):
                trainer = L.Trainer(
                    max_epochs=c.epochs,
                    max_steps=c.max_steps,
                    accelerator=c.accelerator,
                    devices=c.devices,
                    strategy=c.strategy,
                    num_nodes=c.num_nodes,
                    precision=c.precision,  # type: ignore[arg-type]
                    logger=loggers,
                    callbacks=callbacks,
                    default_root_dir=run.path,
                    plugins=[AtomicCheckpointIO()],
                    enable_progress_bar=self.progress,
                    enable_model_summary=self.progress,
                    **{
                        "profiler": NullProfiler(),
                        "gradient_clip_val": c.gradient_clip,
                        "accumulate_grad_batches": c.accumulate_grad_batches,
                        **self.trainer_options,  # given to the Trainer as they are
                    },
                )
        except (MisconfigurationException, ValueError, TypeError, ImportError) as error:
            raise ZooUsageError(f"invalid trainer setting: {error}") from None
        return trainer

    def _recipe_callbacks(self) -> list[Any]:
        from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor

        callbacks: list[Any] = [LearningRateMonitor()]
        if self.config.early_stopping is not None:
            patience = self.config.early_stopping
            # Checked after validation: --max-steps inside the first epoch has none.
            callbacks.append(EarlyStopping(monitor="val_acc", mode="max", patience=patience,
                                           check_on_train_epoch_end=False))  # fmt: skip
        return callbacks

    def _loggers(self, run: Run) -> list[Any]:
        """The ``--logger`` loggers, in rank 0 only (the others log nothing)."""
        if not self.main:
            return []
        return [
            component.build(spec.kwargs, save_dir=str(run.path))
            for component, spec in self.recipe["logger"]
        ]

    def _diagnostics(self) -> list[Any]:
        if not self.config.diagnostics:
            return []
        from zoo.training.diagnostics import ActivationDiagnostics

        return [ActivationDiagnostics()]


def _normalisation(datamodule: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel mean and std a dataset normalises with (0 and 1 if it declares none)."""
    channels = int(datamodule.input_shape[0])
    mean = getattr(datamodule, "mean", None) or (0.0,) * channels
    std = getattr(datamodule, "std", None) or (1.0,) * channels
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def is_main_process() -> bool:
    """Whether this process is global rank 0 or not part of a distributed run; false in the
    processes that torchrun, SLURM or Lightning's DDP launcher start for the other ranks."""
    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def _origin(component: Any) -> dict[str, Any]:
    # name, plugin, distribution, version; module, path, url: what a missing-plugin hint needs
    return component_origin(component)


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in ("lightning-zoo", "torch", "torchvision", "lightning", "pluggy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    versions["python"] = sys.version.split()[0]
    return versions


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡")


@contextlib.contextmanager
def _quiet_lightning(progress: bool) -> Iterator[None]:
    """Drop the hints Lightning prints on every run; with ``progress=False``, its info too."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    handlers = [handler for logger in loggers for handler in logger.handlers]
    tips = _DropTips()
    with warnings.catch_warnings():
        # Our loaders are in-process on purpose; Lightning's hint to add workers is noise here.
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated.*")
        # A resumed run's checkpoint directory holds its checkpoints, which it replaces.
        warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")
        # With --max-steps inside the first epoch there is no val_acc yet; we handle that.
        warnings.filterwarnings("ignore", message=r".*could not find the monitored key.*")
        # Batches are augmented by the module's hook, whatever the datamodule does.
        warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer`.*")
        # Epoch metrics are always logged, so short epochs lose nothing.
        warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
        for handler in handlers:
            handler.addFilter(tips)
        if not progress:
            for logger in loggers:
                logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(tips)
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
