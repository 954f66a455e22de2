"""The one LightningModule that trains any registered architecture as a classifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from zoo.api import create_model
from zoo.errors import ZooUsageError

#: name -> (torch.optim class, default learning rate, extra keyword arguments)
OPTIMIZERS: dict[str, tuple[str, float, dict[str, Any]]] = {
    "adam": ("Adam", 1e-3, {}),
    "adamw": ("AdamW", 1e-3, {}),
    "sgd": ("SGD", 1e-2, {"momentum": 0.9}),
}


def check_optimizer(name: str) -> str:
    """The optimizer's canonical name, or a :class:`ZooUsageError` listing the choices."""
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ZooUsageError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return key


class ZooClassifier(L.LightningModule):
    """Wraps ``create_model(arch, act=act, ...)`` with a classification loss and metrics.

    The hyperparameters are plain data (spec strings, numbers, names), so a checkpoint rebuilds
    its model by looking the components up in the registry, never by importing what it names.
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
    ) -> None:
        super().__init__()
        optimizer = check_optimizer(optimizer)
        self.save_hyperparameters(
            {
                "arch": str(arch),
                "act": str(act),
                "input_shape": [int(n) for n in input_shape],
                "num_classes": int(num_classes),
                "optimizer": optimizer,
                "lr": OPTIMIZERS[optimizer][1] if lr is None else float(lr),
                "dataset": dataset,
                "class_names": list(class_names) if class_names is not None else None,
            }
        )
        self.model = create_model(
            arch, act=act, input_shape=tuple(input_shape), num_classes=num_classes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        output = self(x)
        # cross_entropy applies log_softmax, which is idempotent: on an architecture that already
        # ends in LogSoftmax (the MLP) this is exactly the NLL loss, and on logits it is the same
        # loss too, so one loss serves both.
        loss = F.cross_entropy(output, y)
        accuracy = (output.argmax(dim=1) == y).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=on_step, on_epoch=True, prog_bar=True)
        self.log(f"{stage}_acc", accuracy, on_step=on_step, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        class_name, _, extra = OPTIMIZERS[self.hparams["optimizer"]]
        optimizer_class = getattr(torch.optim, class_name)
        return optimizer_class(self.parameters(), lr=self.hparams["lr"], **extra)
