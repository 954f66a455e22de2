"""Train several runs as one: the members of a comparison that share the architecture, dataset
and recipe (activations x seeds), stepped together in one Lightning run.

Each member is exactly the run it stands for. Its seed gives it the initial weights of
``zoo train --seed k`` (the same :class:`~zoo.training.module.ZooClassifier` is built, seeded
the same way) and that run's data order (each distinct seed draws its own permutation of the
training split, as :class:`zoo.data.loaders.EpochSampler` does for one run). It has an ordinary
run directory: ``config.json``, ``metrics.csv``, ``diagnostics.json``, ``results.json`` and
``checkpoints/best.ckpt`` and ``last.ckpt``, which are ordinary Lightning checkpoints of its own
``ZooClassifier``: ``zoo evaluate``, ``zoo predict`` and ``zoo train --resume`` take them.

The members' models are stacked by :class:`zoo.comparison.stacking.ModelStack` and trained by one
optimizer over the stacked parameters; that equals one optimizer per member only for
element-wise optimizers (:data:`ELEMENTWISE_OPTIMIZERS`). :func:`fusion_problem` says which
settings cannot be fused; ``zoo compare`` trains those runs separately. A member whose loss
becomes NaN or infinite stops alone (its run fails as a separate run would, its checkpoints
being those before the loss diverged); the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from zoo.comparison.members import Member, save_member, slice_optimizer_state
from zoo.errors import NonFiniteLossError

#: Steps between checks of the members' losses for NaN/inf (each check is one sync).
FINITE_CHECK_INTERVAL = 50


class SeedBatches:
    """The training batches of every seed at once: ``(images [seeds, batch, ...], labels
    [seeds, batch])``, seed ``s`` in row ``s`` drawing the order a run with that seed draws.
    Resumable inside an epoch, as :class:`zoo.data.loaders.ResumableLoader` is (same state)."""

    def __init__(self, loaders: Sequence[Any], trainer: Callable[[], Any]) -> None:
        self.loaders = list(loaders)
        self.batch_size = self.loaders[0].batch_size
        self._trainer = trainer
        self._state: dict[str, int] | None = None
        self._epoch = 0

    def __len__(self) -> int:
        return len(self.loaders[0])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from zoo._compat.lightning import epoch_in_progress

        epoch, skip = epoch_in_progress(self._trainer()), 0
        if self._state is not None:
            epoch, skip = self._state["epoch"], self._state["batches"]
            if skip >= len(self):
                epoch, skip = epoch + 1, 0
            self._state = None
        self._epoch = epoch
        streams = []
        for loader in self.loaders:
            loader.sampler.set_epoch(epoch)
            positions = loader.sampler.indices()[skip * self.batch_size :]
            streams.append(loader.batches(positions.to(loader.images.device)))
        for batches in zip(*streams, strict=True):
            yield torch.stack([x for x, _ in batches]), torch.stack([y for _, y in batches])

    def state_dict(self) -> dict[str, int]:
        from zoo._compat.lightning import batches_trained_in_epoch

        return {"epoch": self._epoch, "batches": batches_trained_in_epoch(self._trainer())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}


class FusedClassifier(L.LightningModule):
    """The members' models stacked, with each member's loss, metrics and files."""

    def __init__(self, members: Sequence[Member], seeds: Sequence[int], metadata: dict[str, Any]):
        super().__init__()
        from zoo.comparison.stacking import ModelStack

        self.members = list(members)
        self.stack = ModelStack([m.module.model for m in self.members])
        self.register_buffer("seed_rows", torch.tensor([m.seed_row for m in self.members]))
        alive = torch.tensor([m.alive for m in self.members])  # a resumed group's may be dead
        self.register_buffer("alive", alive, persistent=False)
        first = self.members[0].module
        self.returns_log_probs = first.returns_log_probs
        self.smoothing = float(first.hparams.get("label_smoothing", 0.0))
        self.augmenters = [
            (seeds.index(m.config.seed), m.module.augmenter)
            for m in self.members
            if m.module.augmenter is not None
        ]
        self.metadata = metadata
        self.log_every = 50
        self._totals: dict[str, list[torch.Tensor]] = {}
        self._finite: torch.Tensor | None = None
        self._resumed_totals = False
        self.state_index: list[list[int]] = []
        self.group_slices: list[tuple[int, int]] = []

    # -- the step ------------------------------------------------------------------------------

    def losses(self, output: torch.Tensor, target: torch.Tensor, train: bool) -> torch.Tensor:
        """Each member's mean loss on its batch: ``output [members, batch, classes]``."""
        flat, labels = output.flatten(0, 1), target.flatten()
        smoothing = self.smoothing if train else 0.0
        if self.returns_log_probs and not smoothing:
            per_sample = F.nll_loss(flat, labels, reduction="none")
        else:
            per_sample = F.cross_entropy(flat, labels, reduction="none", label_smoothing=smoothing)
        return per_sample.view(target.shape).mean(dim=1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        if self.augmenters:
            from zoo._compat.lightning import batches_trained_in_epoch

            index = batches_trained_in_epoch(self.trainer)
            done: set[int] = set()
            for row, augmenter in self.augmenters:
                if row not in done:
                    images[row] = augmenter(images[row], self.current_epoch, index)
                    done.add(row)
        x = images.index_select(0, self.seed_rows)
        y = labels.index_select(0, self.seed_rows)
        output = self.stack(x)
        losses = self.losses(output, y, train=True)
        finite = torch.isfinite(losses.detach())
        self._finite = finite if self._finite is None else self._finite & finite
        self._add("train", losses, output, y)
        if self.log_every and (self.global_step + 1) % self.log_every == 0:
            self._log_step(losses, output, y)
        if self.global_step % FINITE_CHECK_INTERVAL == 0:
            self.check_finite()
        return torch.where(self.alive & finite, losses, torch.zeros_like(losses)).sum()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def _shared_step(self, batch: Any, stage: str) -> None:
        images, labels = batch
        output = self.stack(images, shared=True)
        y = labels.expand(len(self.members), *labels.shape)
        self._add(stage, self.losses(output, y, train=False), output, y)

    def _add(self, stage: str, losses: torch.Tensor, output: torch.Tensor, y: torch.Tensor) -> None:
        if stage not in self._totals:
            zeros = torch.zeros(len(self.members), dtype=torch.float64, device=losses.device)
            self._totals[stage] = [zeros, zeros.clone(), zeros.clone()]
        loss_sum, correct, count = self._totals[stage]
        batch = y.shape[1]
        loss_sum.add_(losses.detach().to(torch.float64), alpha=batch)
        correct.add_((output.argmax(dim=-1) == y).sum(dim=1))
        count.add_(batch)

    def _log_step(self, losses: torch.Tensor, output: torch.Tensor, y: torch.Tensor) -> None:
        acc = (output.argmax(dim=-1) == y).float().mean(dim=1)
        values = torch.stack([losses.detach().float(), acc]).tolist()
        lr_name = f"lr-{type(self.trainer.optimizers[0]).__name__}"
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        for m, loss, accuracy in zip(self.members, *values, strict=True):
            if m.alive:
                m.run.metrics.append(
                    {
                        "train_loss_step": loss,
                        "train_acc_step": accuracy,
                        "epoch": self.current_epoch,
                        "step": self.global_step,
                    }
                )
                m.run.metrics.append({lr_name: lr, "step": self.global_step})  # fmt: skip

    def check_finite(self) -> None:
        """Stop the members whose loss became NaN or infinite since the last check."""
        if self._finite is None:
            return
        for m, finite in zip(self.members, self._finite.tolist(), strict=True):
            if m.alive and not finite:
                m.alive = False
                m.error = str(NonFiniteLossError(
                    f"training stopped at epoch {self.current_epoch}, step {self.global_step}: "
                    "the loss became NaN or infinite, so no checkpoint was written after it. "
                    "Lower the learning rate (--lr) or try another activation or optimizer."
                ))  # fmt: skip
                m.run.metrics.flush()
                m.run.fail("failed", f"NonFiniteLossError: {m.error}")
        self.alive.copy_(torch.tensor([m.alive for m in self.members]))
        if not any(m.alive for m in self.members):
            raise NonFiniteLossError("the loss of every run became NaN or infinite")

    # -- epochs --------------------------------------------------------------------------------

    def on_train_epoch_start(self) -> None:
        if not self._resumed_totals:  # a run resumed inside an epoch keeps its sums
            self._totals.pop("train", None)
        self._resumed_totals = False
        for stage, totals in self._totals.items():
            self._totals[stage] = [t.to(self.device) for t in totals]

    def on_validation_epoch_start(self) -> None:
        self._totals.pop("val", None)
        if self.trainer.state.fn == "fit":
            self.check_finite()

    def on_test_epoch_start(self) -> None:
        self._totals.pop("test", None)

    def _means(self, stage: str) -> list[tuple[float, float] | None]:
        totals = self._totals.get(stage)
        if totals is None:
            return [None] * len(self.members)
        loss_sum, correct, count = torch.stack(totals).tolist()
        return [(s / n, c / n) if n else None for s, c, n in zip(loss_sum, correct, count,
                                                                  strict=True)]  # fmt: skip

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        for m, means in zip(self.members, self._means("val"), strict=True):
            if not m.alive or means is None:
                continue
            loss, acc = means
            m.run.metrics.append({"val_loss": loss, "val_acc": acc, "epoch": self.current_epoch,
                                  "step": self.global_step - 1})  # fmt: skip
            m.improved = m.best_score is None or acc > m.best_score
            if m.improved:
                m.best_score = acc
                m.best_state = {k: v.detach().clone() for k, v in self.stack.state_of(
                    m.index).items()}  # fmt: skip

    def on_train_epoch_end(self) -> None:
        self.check_finite()
        for m, means in zip(self.members, self._means("train"), strict=True):
            if m.alive and means is not None:
                m.run.metrics.append({"train_loss": means[0], "train_acc": means[1],
                                      "epoch": self.current_epoch,
                                      "step": self.global_step - 1})  # fmt: skip
        self._totals.pop("train", None)

    def on_test_epoch_end(self) -> None:
        for m, means in zip(self.members, self._means("test"), strict=True):
            if m.alive and means is not None:
                m.rows.append({"test_loss": means[0], "test_acc": means[1]})

    # -- the optimizer -------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        """One optimizer over the stacked parameters, with each member's parameter groups (as
        its own optimizer would make them, over its own model) and the member's schedule."""
        from zoo._compat import speedups as speedups
        from zoo.training.recipe import create_optimizer, create_schedule

        hparams = self.members[0].module.hparams
        groups: list[dict[str, Any]] = []
        template = None
        slices = []  # per stack group: its optimizer groups' range
        for group in self.stack.groups:
            model = self.members[group.members[0]].module.model
            template = create_optimizer(hparams["optimizer"], model, lr=hparams["lr"])
            names = {id(p): n for n, p in model.named_parameters()}
            start = len(groups)
            for settings in template.param_groups:
                stacked = [self.stack.stacked_parameter(group.members[0], names[id(p)])
                           for p in settings["params"]]  # fmt: skip
                groups.append({**settings, "params": stacked})
            slices.append((start, len(groups)))
        optimizer = speedups.optimizer(type(template)(groups))
        positions = {id(p): i for i, p in enumerate(
            p for settings in optimizer.param_groups for p in settings["params"])}  # fmt: skip
        self.state_index, self.group_slices = [], []
        for m in self.members:
            model = m.module.model
            own = create_optimizer(hparams["optimizer"], model, lr=hparams["lr"])
            names = {id(p): n for n, p in model.named_parameters()}
            self.state_index.append([
                positions[id(self.stack.stacked_parameter(m.index, names[id(p)]))]
                for settings in own.param_groups for p in settings["params"]
            ])  # fmt: skip
            (g,) = [g for g, group in enumerate(self.stack.groups) if m.index in group.members]
            self.group_slices.append(slices[g])
        warmup = hparams.get("warmup_steps", 0)
        if hparams.get("scheduler") is None and not warmup:
            return optimizer
        total, per_epoch = self.members[0].module.schedule_length
        schedule = create_schedule(hparams["scheduler"], optimizer, total_steps=total,
                                   steps_per_epoch=per_epoch, warmup_steps=warmup)  # fmt: skip
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    # -- the members' checkpoints --------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Write every living member's ``last.ckpt`` (and ``best.ckpt`` when it improved)
        from the fused checkpoint being saved: its own weights, optimizer state and files."""
        self.check_finite()
        totals = self._totals.get("train")
        for m in self.members:
            if m.alive:
                optimizer_state = self.member_optimizer_state(m, checkpoint["optimizer_states"][0])
                save_member(m, checkpoint, state=self.stack.state_of(m.index),
                            optimizer_state=optimizer_state, totals=totals,
                            metadata=self.metadata)  # fmt: skip
        # What a resumed fused run needs besides the stack, optimizer and loops.
        checkpoint["zoo_fused"] = {
            "slots": [str(m.slot) for m in self.members],
            "members": [{"run_dir": str(m.run.path), "alive": m.alive, "error": m.error,
                         "best_score": m.best_score, "metrics_rows": m.run.metrics.flushed}
                        for m in self.members],
            "train_totals": [t.tolist() for t in totals] if totals is not None else None,
        }  # fmt: skip

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = (checkpoint.get("zoo_fused") or {}).get("train_totals")
        if saved is not None:
            self._totals["train"] = [torch.tensor(t, dtype=torch.float64) for t in saved]
            self._resumed_totals = True

    def member_optimizer_state(self, m: Member, fused: dict[str, Any]) -> dict[str, Any]:
        """Member ``m``'s slice of the fused optimizer's state dict ``fused``, indexed as its
        own optimizer's (what its checkpoints hold)."""
        slot = self.stack.locate(m.index)[1]
        return slice_optimizer_state(
            fused, slot, self.state_index[m.index], self.group_slices[m.index]
        )
