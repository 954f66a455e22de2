"""Callbacks that keep a run's work safe: stop cleanly on SIGINT/SIGTERM with a resumable
checkpoint, stop on a non-finite loss before a checkpoint is written, and carry the run's
metadata (component origins, random state) in every checkpoint."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch

from zoo.errors import NonFiniteLossError

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
        if self.signum is not None:
            self._check_finite(trainer)
            trainer.save_checkpoint(self.last_checkpoint)
            trainer.should_stop = True

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
