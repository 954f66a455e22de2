"""Training one run in its run directory: a :class:`~zoo.training.composition.Composition` started
in a new directory or resumed in its own, fitted and tested by the Trainer of
:func:`~zoo.training.trainer.build_trainer` with the run's callbacks, and how it ended recorded
(:class:`TrainResult` in ``results.json``, or ``interrupted``/``failed`` in ``config.json``).

Distributed runs use Lightning's strategies (``strategy="ddp"``, ``devices``, ``num_nodes``, or
processes started by ``torchrun`` or SLURM): every process trains, and only global rank 0
creates, locks and writes the run directory.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from zoo.errors import (
    RunAlreadyFinished,
    RunWriteError,
    TrainingInterrupted,
    ZooError,
    ZooUsageError,
)
from zoo.runs.directory import Run
from zoo.runs.reading import read_results
from zoo.training.composition import Composition, is_main_process
from zoo.training.trainer import build_trainer, quiet_lightning


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
    num_params: int | None = None  # of the model, counted before training (none in older runs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_result(composition: Composition, trainer: Any, run: Run, **measured: Any) -> TrainResult:
    """The result of ``composition``'s run after ``trainer`` fitted and tested it: its specs,
    epochs, steps and device, with ``measured`` (``test_acc``, ``test_loss``, ``train_seconds``,
    ``checkpoint``, ``seed``, ``best_val_acc``, and ``num_params`` where the model's whole
    parameters are no longer in this process: else they are counted here)."""
    accelerator = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
    if "num_params" not in measured:
        measured["num_params"] = sum(p.numel() for p in composition.module.model.parameters())
    return TrainResult(
        run_dir=str(run.path),
        arch=str(composition.arch_spec),
        act=str(composition.act_spec),
        dataset=str(composition.data_spec),
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        accelerator=accelerator,
        **measured,
    )


def stopped_by_signal(trainer: Any) -> int | None:
    """The signal that stopped the fit of ``trainer`` (after its last step), or None."""
    guard = next(cb for cb in trainer.callbacks if type(cb).__name__ == "RunGuard")
    return guard.signum


class RunTraining:
    """One run trained from its composition: :meth:`start` in a new directory, or
    :meth:`resume` in its own. ``progress=False`` prints nothing; ``trainer_options`` go to the
    Trainer as they are; ``callbacks`` are added to the run's."""

    def __init__(
        self,
        composition: Composition,
        progress: bool = True,
        trainer_options: dict[str, Any] | None = None,
        callbacks: list[Any] | None = None,
    ) -> None:
        self.composition = composition
        self.config = composition.config
        self.progress = progress
        self.trainer_options = dict(trainer_options or {})
        self.callbacks = list(callbacks or [])
        self.main = is_main_process()

    def start(self, output_dir: Path) -> TrainResult:
        """Train the run in a new directory under ``output_dir``."""
        parts = self.composition
        parts.check()
        seed = self.config.seed
        if seed is None:
            # The processes Lightning's DDP launcher starts inherit the seed rank 0 drew.
            inherited = None if self.main else os.environ.get("PL_GLOBAL_SEED")
            seed = int(inherited) if inherited else random.SystemRandom().randrange(2**31)
        parts.build(seed)
        record = parts.record(seed, started=datetime.now().isoformat(timespec="seconds"))
        name = parts.run_name()
        run = Run.create(output_dir, name, record) if self.main else Run(output_dir / name)
        with run:
            try:
                trainer = self._trainer(run)
            except BaseException:
                if self.main:
                    run.discard()
                raise
            return self._fit(run, trainer, seed, checkpoint=None)

    def resume(self, path: Path) -> TrainResult:
        """Continue the run in ``path`` from its ``last.ckpt``."""
        run = Run.open(path) if self.main else Run(path)  # first: another writer stops here
        with run:
            self.composition.check()
            from zoo.training.checkpoints import read_resume_checkpoints

            seed = int(run.record["seed"])
            if not run.last_checkpoint.is_file():
                raise ZooUsageError(
                    f"cannot resume {path}: it has no checkpoints/last.ckpt (nothing was saved "
                    f"yet); start it again with: zoo train --config {path / 'config.json'}"
                )
            read_resume_checkpoints(run.path)  # a damaged last.ckpt or best.ckpt is named here
            self._check_not_finished(run)
            self.composition.build(seed)
            trainer = self._trainer(run)
            if self.main:
                now = datetime.now().isoformat(timespec="seconds")
                history = [*run.record.get("resumed", []), now]
                run.metrics.load()
                record = self.composition.record(seed, started=run.record["started"])
                run.update(**record, status="running", error=None, resumed=history)
            return self._fit(run, trainer, seed, checkpoint=run.last_checkpoint)

    def _check_not_finished(self, run: Run) -> None:
        results = read_results(run.path)
        if run.record.get("status") != "finished" or results is None:
            return
        try:
            fields = TrainResult.__dataclass_fields__
            result = TrainResult(**{k: results[k] for k in fields if k in results})
        except TypeError:
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

    def _fit(self, run: Run, trainer: Any, seed: int, checkpoint: Path | None) -> TrainResult:
        module, datamodule = self.composition.module, self.composition.datamodule
        # Counted before fit: a sharding strategy leaves each rank a part of the parameters.
        num_params = sum(p.numel() for p in module.model.parameters())
        model_checkpoint = trainer.checkpoint_callback
        started = time.perf_counter()
        with self._recording_failures(run), quiet_lightning(self.progress):
            trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)
            train_seconds = time.perf_counter() - started
            signum = stopped_by_signal(trainer)
            if signum is not None:  # after the last step, during the last validation
                raise TrainingInterrupted(
                    f"stopped after training (epoch {trainer.current_epoch}), before testing",
                    signum,
                )
            best = model_checkpoint.best_model_path or None
            if best is None:  # no validation happened (--max-steps inside the first epoch)
                best = str(run.best_checkpoint)
                trainer.save_checkpoint(best, weights_only=False)
            (metrics,) = trainer.test(
                module, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True
            )
        best_score = model_checkpoint.best_model_score
        result = train_result(
            self.composition, trainer, run,
            test_acc=float(metrics["test_acc"]), test_loss=float(metrics["test_loss"]),
            train_seconds=round(train_seconds, 3), checkpoint=str(best), seed=seed,
            best_val_acc=float(best_score) if best_score is not None else None,
            num_params=num_params,
        )  # fmt: skip
        if self.main:
            try:
                run.metrics.flush()
            except RunWriteError as error:
                run.fail("failed", str(error))
                raise
            run.finish(result.to_dict())
        return result

    @contextlib.contextmanager
    def _recording_failures(self, run: Run) -> Iterator[None]:
        """Mark the run ``interrupted`` or ``failed`` (rank 0) when the block raises."""
        try:
            yield
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

    def _trainer(self, run: Run) -> Any:
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from zoo.training.callbacks import best_checkpoint
        from zoo.training.guard import CheckpointSync, LastCheckpoint, RunMetadata, RunRecorder

        callbacks = [
            best_checkpoint(run),
            *self._recipe_callbacks(),
            LastCheckpoint(run.last_checkpoint),
            RunMetadata(self.composition.metadata()),
            CheckpointSync(run),
            *self._diagnostics(),
            *self.callbacks,
        ]
        loggers = [RunRecorder(run), *self._loggers(run)]  # a logger's own errors are its own
        try:
            return build_trainer(
                self.config, callbacks=callbacks, logger=loggers, progress=self.progress,
                root=run.path, guard=run.last_checkpoint,
                **self.trainer_options,  # given to the Trainer as they are
            )  # fmt: skip
        except (MisconfigurationException, ValueError, TypeError, ImportError) as error:
            raise ZooUsageError(f"invalid trainer setting: {error}") from None

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
            for component, spec in self.composition.recipe["logger"]
        ]

    def _diagnostics(self) -> list[Any]:
        if not self.config.diagnostics:
            return []
        from zoo.training.diagnostics import ActivationDiagnostics

        return [ActivationDiagnostics()]
