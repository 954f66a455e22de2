"""The composition of a run: components by spec -> LightningModule + DataModule -> Trainer.

Every run gets its own directory with ``config.json`` (the resolved configuration and versions),
``metrics.csv`` (Lightning's CSVLogger), ``checkpoints/best.ckpt`` and ``checkpoints/last.ckpt``,
and ``results.json`` (the same object ``zoo train --json`` prints).

Distributed runs use Lightning's strategies (``strategy="ddp"``, ``devices``, ``num_nodes``, or
processes started by ``torchrun`` or SLURM): every process runs this function, and only global
rank 0 creates the run directory and writes ``config.json`` and ``results.json``; Lightning writes
the checkpoints and metrics from rank 0 too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from zoo.api import DEFAULT_BATCH_SIZE, resolve
from zoo.errors import TrainingInterrupted, ZooUsageError
from zoo.loader import plugin_of

DEFAULT_OUTPUT_DIR = "runs"
#: Variables that give a process's rank when torchrun, SLURM or Lightning's launcher started it.
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")


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
    seed: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    precision: str | None = None,
    max_steps: int = -1,
    progress: bool = True,
    trainer_options: dict[str, Any] | None = None,
    diagnostics: bool = False,
    callbacks: list[Any] | None = None,
    compile: bool = False,
    num_workers: int | None = None,
    strategy: str = "auto",
    num_nodes: int = 1,
    resume: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train ``arch`` with activation ``act`` on ``dataset`` and evaluate it on the test split.

    ``arch``, ``act`` and ``dataset`` are component specs such as ``"mlp:hidden=(256,128)"``.
    ``seed`` defaults to a random one, recorded in the run's config. ``trainer_options`` go to
    ``lightning.Trainer`` as they are. With ``progress=False`` nothing is printed.
    ``diagnostics=True`` adds :class:`zoo.diagnostics.ActivationDiagnostics` (dead and saturated
    units, gradient and weight norms in ``metrics.csv``); ``callbacks`` are added to the Trainer's.
    ``compile=True`` compiles the model with ``torch.compile``. ``num_workers`` sets the dataset's
    DataLoader workers (which selects its standard path, see :mod:`zoo.data`). ``strategy`` and
    ``num_nodes`` go to ``lightning.Trainer`` like ``accelerator``, ``devices`` and ``precision``.
    ``resume`` (a run directory or a checkpoint) continues that run, with its optimizer state,
    epoch and step, in its own run directory; pass the run's configuration too (see
    :func:`zoo.resume`, which does).

    SIGINT/SIGTERM stop the run at a step boundary after saving ``checkpoints/last.ckpt``
    (:class:`zoo.TrainingInterrupted`); a NaN or infinite loss stops it before any checkpoint
    is written with such weights (:class:`zoo.NonFiniteLossError`).
    """
    # Check every name and argument before anything slow happens.
    arch_component, arch_spec = resolve("architecture", arch)
    act_component, act_spec = resolve("activation", act)
    data_overrides = {} if num_workers is None else {"num_workers": num_workers}
    data_component, data_spec = resolve("dataset", dataset, **data_overrides)
    from zoo.module import check_optimizer

    optimizer = check_optimizer(optimizer)
    if epochs < 1 and max_steps < 0:
        raise ZooUsageError(f"epochs must be at least 1, got {epochs}")
    main = is_main_process()
    if seed is None:
        # The processes Lightning's DDP launcher starts inherit the seed rank 0 drew.
        inherited = None if main else os.environ.get("PL_GLOBAL_SEED")
        seed = int(inherited) if inherited else random.SystemRandom().randrange(2**31)

    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.loggers import CSVLogger

    from zoo.checkpoints import AtomicCheckpointIO, read_checkpoint, resolve_resume
    from zoo.guard import RunGuard, RunMetadata
    from zoo.module import EpochCheckpoint, NullProfiler, ThrottledProgressBar, ZooClassifier

    resume_from = resolve_resume(resume) if resume is not None else None
    if resume_from is not None:
        read_checkpoint(resume_from)  # a damaged checkpoint fails here, naming the file

    L.seed_everything(seed, workers=True, verbose=False)
    datamodule = data_component.build(data_spec.kwargs, data_dir=data_dir, batch_size=batch_size)
    module = ZooClassifier(
        arch=str(arch_spec),
        act=str(act_spec),
        input_shape=datamodule.input_shape,
        num_classes=datamodule.num_classes,
        optimizer=optimizer,
        lr=lr,
        dataset=str(data_spec),
        class_names=datamodule.class_names,
        compile=compile,
    )
    # Missing or unusable data fails here, before a run directory exists.
    datamodule.prepare_data()
    datamodule.setup("fit")

    names = (arch_spec.name, act_spec.name, data_spec.name)
    # Only rank 0 creates the directory; the others learn its name from rank 0 (the checkpoint
    # callback and the broadcast after fit), so this name is a placeholder there.
    if resume_from is not None and (resume_from.parent.parent / "config.json").is_file():
        run_dir = resume_from.parent.parent  # continue in the run's own directory
    elif main:
        run_dir = _new_run_dir(Path(output_dir), *names)
    else:
        run_dir = _run_dir_name(output_dir, names)
    checkpoint = EpochCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor="val_acc",
        mode="max",
        save_last=True,
        auto_insert_metric_name=False,
    )
    config: dict[str, Any] = {
        "arch": str(arch_spec),
        "act": str(act_spec),
        "dataset": str(data_spec),
        "options": {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": module.hparams["lr"],
            "optimizer": optimizer,
            "seed": seed,
            "data_dir": str(getattr(datamodule, "data_dir", data_dir)),
            "accelerator": accelerator,
            "devices": devices,
            "precision": precision,
            "max_steps": max_steps,
            "compile": compile,
            "num_workers": getattr(datamodule, "num_workers", num_workers),
            "strategy": strategy,
            "num_nodes": num_nodes,
        },
        "data_path": "in-memory" if getattr(datamodule, "in_memory", False) else "dataloader",
        "components": {
            "arch": _origin(arch_component),
            "act": _origin(act_component),
            "dataset": _origin(data_component),
        },
        "versions": _versions(),
        "status": "running",
        "started": datetime.now().isoformat(timespec="seconds"),
        "pid": os.getpid(),
        "resumed_from": str(resume_from) if resume_from is not None else None,
    }
    guard = RunGuard(run_dir / "checkpoints" / "last.ckpt")
    with _quiet_lightning(progress):
        try:
            trainer = L.Trainer(
                max_epochs=epochs,
                max_steps=max_steps,
                accelerator=accelerator,
                devices=devices,
                strategy=strategy,
                num_nodes=num_nodes,
                precision=precision,  # type: ignore[arg-type]
                logger=CSVLogger(run_dir, name="", version=""),
                callbacks=[
                    checkpoint,
                    guard,
                    RunMetadata(
                        {"components": config["components"], "versions": config["versions"]}
                    ),
                    *_extra_callbacks(diagnostics),
                    *(callbacks or []),
                    *([ThrottledProgressBar()] if progress else []),
                ],
                default_root_dir=run_dir,
                plugins=[AtomicCheckpointIO()],
                enable_progress_bar=progress,
                enable_model_summary=progress,
                **{"profiler": NullProfiler(), **(trainer_options or {})},
            )
        except (MisconfigurationException, ValueError) as error:
            if main and resume_from is None:
                run_dir.rmdir()
            raise ZooUsageError(f"invalid trainer setting: {error}") from error
        if main:
            _write_json(run_dir / "config.json", config)

        started = time.perf_counter()
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        except BaseException as error:
            if main:
                stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
                config["status"] = "interrupted" if stopped else "failed"
                config["error"] = f"{type(error).__name__}: {error}"
                _write_json(run_dir / "config.json", config)
            raise
        train_seconds = time.perf_counter() - started
        if guard.signum is not None:
            name = signal.Signals(guard.signum).name
            if main:
                config["status"] = "interrupted"
                config["error"] = f"stopped by {name}"
                _write_json(run_dir / "config.json", config)
            raise TrainingInterrupted(
                f"{name} stopped the run at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}; saved {guard.last_checkpoint}. "
                f"Continue it with: zoo train --resume {run_dir}",
                guard.signum,
            )
        run_dir = Path(trainer.strategy.broadcast(str(run_dir)))  # rank 0's, on every rank
        best = checkpoint.best_model_path or None
        if best is None:  # no validation happened (e.g. --max-steps inside the first epoch)
            best = str(run_dir / "checkpoints" / "best.ckpt")
            trainer.save_checkpoint(best)
        (metrics,) = trainer.test(
            module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True
        )

    best_score = checkpoint.best_model_score
    result = TrainResult(
        test_acc=float(metrics["test_acc"]),
        test_loss=float(metrics["test_loss"]),
        train_seconds=round(train_seconds, 3),
        run_dir=str(run_dir),
        checkpoint=str(best),
        arch=str(arch_spec),
        act=str(act_spec),
        dataset=str(data_spec),
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        seed=seed,
        best_val_acc=float(best_score) if best_score is not None else None,
        accelerator=type(trainer.accelerator).__name__.removesuffix("Accelerator").lower(),
    )
    if main:
        _write_json(run_dir / "results.json", result.to_dict())
        config["status"] = "finished"
        _write_json(run_dir / "config.json", config)
    return result


def resume_config(run: str | os.PathLike[str]) -> dict[str, Any]:
    """The arguments of :func:`train` that continue ``run`` (a run directory or a checkpoint):
    its ``config.json`` if it has one, else what the checkpoint records."""
    from zoo.checkpoints import read_checkpoint, resolve_resume
    from zoo.runs import load_config

    checkpoint = resolve_resume(run)
    config = checkpoint.parent.parent / "config.json"
    if config.is_file():
        return load_config(config)
    hparams = read_checkpoint(checkpoint)["hyper_parameters"]
    keys = ("arch", "act", "dataset", "optimizer", "lr")
    return {key: hparams[key] for key in keys if hparams.get(key) is not None}


def resume(run: str | os.PathLike[str], **overrides: Any) -> TrainResult:
    """Continue an interrupted run (its directory, or a checkpoint) where it stopped, with its
    configuration, optimizer state, epoch and step; ``overrides`` change options (``epochs=10``).
    """
    return train(**{**resume_config(run), **overrides, "resume": run})


def is_main_process() -> bool:
    """Whether this process is global rank 0 or not part of a distributed run; false in the
    processes that torchrun, SLURM or Lightning's DDP launcher start for the other ranks."""
    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def _extra_callbacks(diagnostics: bool) -> list[Any]:
    if not diagnostics:
        return []
    from zoo.diagnostics import ActivationDiagnostics

    return [ActivationDiagnostics()]


def _run_dir_name(output_dir: str | os.PathLike[str], names: tuple[str, ...]) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = "-".join(re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") for name in names)
    return Path(output_dir) / f"{stamp}-{slug}"


def _new_run_dir(output_dir: Path, *names: str) -> Path:
    base = _run_dir_name(output_dir, names)
    output_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        candidate = base if attempt == 0 else base.with_name(f"{base.name}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a new run directory in {output_dir}")


def _origin(component: Any) -> dict[str, Any]:
    info = plugin_of(component.plugin)
    return {
        "name": component.name,
        "plugin": component.plugin,
        "distribution": info.distribution if info else None,
        "version": info.version if info else None,
    }


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in ("lightning-zoo", "torch", "torchvision", "lightning", "pluggy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    versions["python"] = sys.version.split()[0]
    return versions


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    temporary.replace(path)


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
        # config.json is written into the run directory before the CSV logger starts.
        warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated.*")
        # With --max-steps inside the first epoch there is no val_acc yet; we handle that.
        warnings.filterwarnings("ignore", message=r".*could not find the monitored key.*")
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
