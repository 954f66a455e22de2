"""The one LightningModule that trains any registered architecture as a classifier: its loss,
metrics and recipe (optimizer, schedule and augmentations from :mod:`zoo.training.recipe`).

Nothing costs per step what it need not: the epoch metrics are sums kept on the device (no
``.item()`` and no host-device sync per step), per-step values are logged only on the steps
Lightning writes to its loggers (every ``log_every_n_steps``), and the built-in optimizers use
torch's fused kernels where the parameters' device and dtype have them. What saves time by
relying on Lightning's or torch's internals is applied through :mod:`zoo._compat.speedups`;
the Trainer's checkpoint callback, progress bar and profiler are in
:mod:`zoo.training.callbacks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from zoo._compat import speedups as speedups
from zoo.plugin.components import create_model
from zoo.training.recipe import BatchAugmenter, create_optimizer, create_schedule, default_lr


@speedups.apply_to_module
class ZooClassifier(L.LightningModule):
    """Wraps ``create_model(arch, act=act, ...)`` with a classification loss and metrics.

    The hyperparameters are plain data (spec strings, numbers, names), so a checkpoint rebuilds
    its model by looking the components up in the registry, never by importing what it names.
    ``compile=True`` compiles the model's forward with ``torch.compile`` (not saved in
    checkpoints: a restored model runs eagerly unless compiled again).

    Logged: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``test_loss`` and
    ``test_acc`` per epoch (means over the epoch's samples, summed over all processes), and
    ``train_loss_step``, ``train_acc_step`` on the steps Lightning writes to its loggers.
    """

    def __init__(
        self,
        arch: str,
        act: str,
        input_shape: Sequence[int],
        num_classes: int,
        optimizer: str = "adam",
        lr: float | None = None,
        dataset: str | None = None,
        class_names: Sequence[str] | None = None,
        compile: bool = False,
        scheduler: str | None = None,
        warmup_steps: int = 0,
        label_smoothing: float = 0.0,
        augment: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            {
                "arch": str(arch),
                "act": str(act),
                "input_shape": [int(n) for n in input_shape],
                "num_classes": int(num_classes),
                "optimizer": str(optimizer),
                "lr": default_lr(optimizer) if lr is None else float(lr),
                "dataset": dataset,
                "class_names": list(class_names) if class_names is not None else None,
                "scheduler": scheduler,
                "warmup_steps": int(warmup_steps),
                "label_smoothing": float(label_smoothing),
                "augment": [str(spec) for spec in augment],
                "seed": int(seed),
            }
        )
        self.model = create_model(
            arch, act=act, input_shape=tuple(input_shape), num_classes=num_classes
        )
        # An architecture that ends in log_softmax returns log-probabilities: the NLL loss on
        # them is the cross-entropy, without applying log_softmax a second time. On logits, it
        # is cross_entropy (which is the same loss on log-probabilities too, log_softmax being
        # idempotent, only slower).
        last = self.model[-1] if isinstance(self.model, nn.Sequential) else None
        self.returns_log_probs = isinstance(last, nn.LogSoftmax) and last.dim in (1, -1)
        self.compiled = compile
        self._compile_pending = compile
        self._totals: dict[str, _Totals] = {}  # per stage, reset at the start of each epoch
        self._resumed_totals: dict[str, Any] = {}  # of the epoch a checkpoint stopped in
        self.augmenter: BatchAugmenter | None = None  # set by the run: it needs the dataset
        #: (optimizer steps in the run, per epoch) of a one-process run, set by the run, which
        #: counts them from its data; else estimated by Lightning (_estimated_schedule_length).
        self.schedule_length: tuple[int, int] | None = None

    def configure_model(self) -> None:
        # Compiled here, in the process that trains (ddp_spawn pickles the module, and compiled
        # functions do not pickle). nn.Module.compile() keeps the state_dict keys unchanged.
        if self._compile_pending:
            self.model.compile()
            self._compile_pending = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The cross-entropy of the model's output (log-probabilities or logits)."""
        smoothing = self.hparams.get("label_smoothing", 0.0) if self.training else 0.0
        if self.returns_log_probs and not smoothing:
            return F.nll_loss(output, target)
        return F.cross_entropy(output, target, label_smoothing=smoothing)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.augmenter and self.trainer.training:
            from zoo._compat.lightning import batches_trained_in_epoch

            images, labels = batch
            trainer = self.trainer
            epoch, index = trainer.current_epoch, batches_trained_in_epoch(trainer)
            images = self.augmenter(images, epoch, index)
            batch = (images, labels)
        return batch

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        output = self(x)
        loss = self.loss(output, y)
        correct = (output.argmax(dim=1) == y).sum()
        if stage not in self._totals:  # resumed mid-epoch: Lightning skips the epoch start
            self._start_epoch(stage, resumed=True)
        totals = self._totals[stage]
        totals.loss_sum.add_(loss.detach(), alpha=len(y))
        totals.correct.add_(correct)
        totals.count += len(y)
        if stage == "train" and self._logging_step():
            # Straight to the loggers, as part of this step: a checkpoint saved at the end of
            # the step then holds its row (Lightning would log it only after the step's hooks).
            row = {
                "train_loss_step": float(loss.detach()),
                "train_acc_step": float(correct) / len(y),
                "epoch": self.current_epoch,
            }
            for logger in self.loggers:
                logger.log_metrics(row, step=self.global_step)
        return loss

    def _logging_step(self) -> bool:
        """Whether this step's values are logged: every ``log_every_n_steps`` steps, as
        Lightning's own step logging does it."""
        every = self.trainer.log_every_n_steps
        return every > 0 and (self.global_step + 1) % every == 0 and self.trainer.is_global_zero

    def _start_epoch(self, stage: str, resumed: bool = False) -> None:
        totals = self._totals[stage] = _Totals(self.device)
        saved = self._resumed_totals.pop(stage, None)
        if resumed and saved is not None:
            totals.loss_sum.fill_(float(saved["loss_sum"]))
            totals.correct.fill_(int(saved["correct"]))
            totals.count = int(saved["count"])

    def _end_epoch(self, stage: str) -> None:
        if stage not in self._totals and stage in self._resumed_totals:
            self._start_epoch(stage, resumed=True)  # resumed after the epoch's last step
        totals = self._totals.pop(stage, None)
        if totals is None:
            return
        # One sum over all processes and one copy to the host per epoch.
        losses = totals.loss_sum
        count = losses.new_tensor(totals.count)
        summed = torch.stack([losses, totals.correct.to(losses.dtype), count])
        loss_sum, correct, count = self.trainer.strategy.reduce(summed, reduce_op="sum").tolist()
        if count > 0:
            # The values are global already; sync_dist (a mean of equal values, once an epoch)
            # tells Lightning so, instead of a warning per metric in distributed runs.
            for name, value in (("loss", loss_sum / count), ("acc", correct / count)):
                self.log(f"{stage}_{name}", value, on_epoch=True, prog_bar=True, sync_dist=True)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_epoch_start(self) -> None:
        self._start_epoch("train")

    def on_train_epoch_end(self) -> None:
        self._end_epoch("train")

    def on_validation_epoch_start(self) -> None:
        self._start_epoch("val")

    def on_validation_epoch_end(self) -> None:
        self._end_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._start_epoch("test")

    def on_test_epoch_end(self) -> None:
        self._end_epoch("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The sums of an epoch in progress, so that a run resumed inside it ends the epoch
        # with the same means as a run that was never stopped.
        checkpoint["zoo_epoch_totals"] = {
            stage: {"loss_sum": t.loss_sum.item(), "correct": t.correct.item(), "count": t.count}
            for stage, t in self._totals.items()
            if stage == "train"
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Applied when the resumed epoch goes on (the model may not be on its device yet).
        self._resumed_totals = dict(checkpoint.get("zoo_epoch_totals") or {})

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        # Lightning calls this on every step with the Trainer's gradient_clip_val; without one
        # there is nothing to clip (the default implementation validates its settings first).
        if gradient_clip_val:
            super().configure_gradient_clipping(
                optimizer, gradient_clip_val, gradient_clip_algorithm
            )

    def configure_optimizers(self) -> Any:
        hparams = self.hparams
        optimizer = create_optimizer(hparams["optimizer"], self.model, lr=hparams["lr"])
        warmup = hparams.get("warmup_steps", 0)
        if hparams.get("scheduler") is None and not warmup:
            return optimizer
        given = self.schedule_length if self.trainer.world_size == 1 else None
        total, per_epoch = given or self._estimated_schedule_length()
        schedule = create_schedule(
            hparams["scheduler"],
            optimizer,
            total_steps=total,
            steps_per_epoch=per_epoch,
            warmup_steps=warmup,
        )
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def _estimated_schedule_length(self) -> tuple[int, int]:
        """Optimizer steps in the run and per epoch, as Lightning estimates them. That loads the
        training DataLoader before a checkpoint is restored, which is why a zoo run gives
        :attr:`schedule_length` instead: a resumed epoch must not be started early."""
        trainer = self.trainer
        total = int(trainer.estimated_stepping_batches)
        per_epoch = max(1, total // max(1, trainer.max_epochs or 1))
        batches = trainer.num_training_batches
        if trainer.max_epochs and trainer.max_epochs > 0 and isinstance(batches, int) and batches:
            per_epoch = -(-batches // trainer.accumulate_grad_batches)
        return total, per_epoch


class _Totals:
    """One epoch's sums for one stage: losses and correct predictions on the device (added to
    without a sync), the number of samples on the host."""

    def __init__(self, device: torch.device) -> None:
        # float64 sums stay exact over any epoch; MPS has no float64.
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.loss_sum = torch.zeros((), dtype=dtype, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.count = 0
