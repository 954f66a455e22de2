"""The Lightning side of a run's safety: stop on SIGINT/SIGTERM with a checkpoint that resumes
exactly, stop on a non-finite loss before a checkpoint is written, keep ``metrics.csv`` in step
with the checkpoints, and carry the run's metadata (component origins, random state) in every
checkpoint."""

from __future__ import annotations

import os
import signal
import threading
from argparse import Namespace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from zoo.errors import NonFiniteLossError, TrainingInterrupted
from zoo.runs.directory import Run

#: Steps between checks of the loss for NaN/inf; each check is one host-device sync.
FINITE_CHECK_INTERVAL = 50


class RunGuard(L.Callback):
    """Graceful stop on signals and a NaN/inf stop that never checkpoints non-finite weights."""

    def __init__(self, last_checkpoint: Path, interval: int = FINITE_CHECK_INTERVAL) -> None:
        self.last_checkpoint = Path(last_checkpoint)
        self.interval = interval
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._finite: torch.Tensor | None = None

    # -- signals -------------------------------------------------------------------------------

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second signal: stop now, the hard way
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signum = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning has installed its own SIGTERM handler (which would raise mid-loop),
        # so that ours replaces it for the training loop; both are restored when fit ends.
        # (A signal before this, while the data loads, stops the process at once: no run
        # directory exists yet, or a resumed one is as it was.)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    # -- per step ------------------------------------------------------------------------------

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            finite = torch.isfinite(loss.detach()).all()
            self._finite = finite if self._finite is None else self._finite & finite
        if trainer.global_step % self.interval == 0:
            self._check_finite(trainer)
        # Not after an epoch's last batch: resumed from there, Lightning would skip the
        # epoch's validation. The run stops one step later, or after training.
        last_of_epoch = batch_idx + 1 >= trainer.num_training_batches
        if self.signum is not None and not last_of_epoch:
            self._check_finite(trainer)
            # Saved here, at the end of a step, Lightning resumes with the next batch and our
            # loader with the next position of the epoch's order; the exception then leaves
            # fit without closing the epoch (which would mark it complete).
            trainer.save_checkpoint(self.last_checkpoint)
            name = signal.Signals(self.signum).name
            raise TrainingInterrupted(
                f"{name} stopped the run at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}; saved {self.last_checkpoint}.",
                self.signum,
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_finite(trainer)  # before the checkpoint callback saves anything

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._check_finite(trainer)

    def _check_finite(self, trainer: L.Trainer) -> None:
        if self._finite is not None and not bool(self._finite):
            raise NonFiniteLossError(
                f"training stopped at epoch {trainer.current_epoch}, step {trainer.global_step}: "
                "the loss became NaN or infinite, so no checkpoint was written after it. "
                "Lower the learning rate (--lr) or try another activation or optimizer."
            )


class RunMetadata(L.Callback):
    """Writes the run's metadata into every checkpoint under ``"zoo"`` (plain data only) and
    keeps the random state, so a resumed run continues the same random sequence."""

    def __init__(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["zoo"] = self.metadata
        checkpoint["zoo_rng"] = {"torch": torch.get_rng_state()}

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = (checkpoint.get("zoo_rng") or {}).get("torch")
        if isinstance(state, torch.Tensor):
            torch.set_rng_state(state)


class RunRecorder(Logger):
    """Lightning's logger for a :class:`~zoo.runs.directory.Run`: rows go to the run's metrics
    history,
    which is written with every checkpoint (see :class:`CheckpointSync`) and at the end."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run

    @property
    def name(self) -> str:
        return "zoo"

    @property
    def version(self) -> str:
        return self.run.path.name

    @property
    def save_dir(self) -> str:
        return str(self.run.path)

    @property
    def log_dir(self) -> str:
        return str(self.run.path)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kw: Any) -> None:
        return None  # config.json and every checkpoint hold them

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in metrics.items()}
        self.run.metrics.append({**row, "step": step})

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.run.metrics.flush()


class CheckpointSync(L.Callback):
    """Writes ``metrics.csv`` with every checkpoint and records in it how many rows it holds;
    a resumed run drops the rows after its checkpoint's and appends from there. A run resumed
    in another folder than it was saved in (copied or moved) has its checkpoint callbacks'
    state moved with it (see :func:`relocate_checkpoint_state`)."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        rows = self.run.metrics.flush() if trainer.is_global_zero else len(self.run.metrics.rows)
        checkpoint["zoo_run"] = {"metrics_rows": rows}

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        rows = (checkpoint.get("zoo_run") or {}).get("metrics_rows")
        if isinstance(rows, int) and trainer.state.fn == "fit":  # not when testing best.ckpt
            self.run.metrics.truncate(rows)
        # Called before the callbacks' states are loaded from the same dict (when testing
        # best.ckpt too, whose state Lightning also loads).
        relocate_checkpoint_state(checkpoint, trainer.checkpoint_callbacks)


def relocate_checkpoint_state(checkpoint: dict[str, Any], callbacks: list[Any]) -> None:
    """Make the state ``checkpoint`` holds for each ``ModelCheckpoint`` in ``callbacks`` name the
    callback's own folder, where the run's folder was copied or moved since it was saved.

    Lightning restores that state only if its folder is unchanged: otherwise it drops the best
    score, so that the next epoch's model replaces ``best.ckpt`` however much worse it is, and
    keeps paths into the old folder, where it would delete a replaced best checkpoint. The
    checkpoint files moved with the run, so each path into the old folder is made the same
    file's path in the new one.
    """
    states = checkpoint.get("callbacks")
    if not isinstance(states, dict):
        return
    for callback in callbacks:
        state = states.get(getattr(callback, "state_key", None))
        if not isinstance(callback, ModelCheckpoint) or not isinstance(state, dict):
            continue
        old, new = state.get("dirpath"), callback.dirpath
        if not isinstance(old, str) or new is None or old == new:
            continue

        def moved(path: Any, old: str = old, new: str = new) -> Any:
            if isinstance(path, str) and path and os.path.dirname(path) == old:
                return os.path.join(new, os.path.basename(path))
            return path

        state["dirpath"] = new
        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if key in state:
                state[key] = moved(state[key])
        if isinstance(state.get("best_k_models"), dict):
            state["best_k_models"] = {moved(k): v for k, v in state["best_k_models"].items()}


class LastCheckpoint(Checkpoint):
    """Saves ``last.ckpt`` after every epoch's validation (or at the end of an epoch that had
    none), whether or not the monitored metric improved: the point a killed run resumes from.

    (Lightning's ``ModelCheckpoint(save_last=True)`` saves it only with a new best one.) As a
    ``Checkpoint``, the Trainer calls it after the other callbacks, so the best score it
    records is the current one.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._saved_at: int | None = None

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if self._saved_at != trainer.global_step:
            trainer.save_checkpoint(self.path)
            self._saved_at = trainer.global_step

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)
