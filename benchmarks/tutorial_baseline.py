"""The baseline: the seed's MLP trained on MNIST the way the Lightning tutorials write it.

torchvision's ``MNIST`` with ``ToTensor`` + ``Normalize`` behind a ``DataLoader`` (one PIL image
per sample), ``self.log`` of loss and accuracy on every step with ``prog_bar=True``, and a default
``Trainer`` (progress bar redrawn every step, logger, checkpoints). Nothing here is from
lightning-zoo; ``benchmarks/train_speed.py`` runs it as variant ``tutorial``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, random_split
from torchvision import transforms
from torchvision.datasets import MNIST


class LitMLP(L.LightningModule):
    """784-128-64-10 with ReLU and log-softmax, Adam at 1e-3."""

    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
            nn.LogSoftmax(dim=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch
        log_probs = self(x)
        loss = F.nll_loss(log_probs, y)
        acc = (log_probs.argmax(dim=1) == y).float().mean()
        self.log(f"{stage}_loss", loss, prog_bar=True)
        self.log(f"{stage}_acc", acc, prog_bar=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])


def loaders(data_dir: str, batch_size: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    """Train/validation/test loaders: the 55,000/5,000 split lightning-zoo uses (split seed 0)."""
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    full = MNIST(data_dir, train=True, transform=transform)
    train, val = random_split(full, [55_000, 5_000], generator=torch.Generator().manual_seed(0))
    test = MNIST(data_dir, train=False, transform=transform)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True),
        DataLoader(val, batch_size=batch_size),
        DataLoader(test, batch_size=batch_size),
    )


def train(
    data_dir: str,
    output_dir: str | Path,
    epochs: int,
    batch_size: int = 64,
    seed: int = 0,
    callbacks: list[L.Callback] | None = None,
) -> float:
    """Train, test, and return the test accuracy."""
    L.seed_everything(seed)
    train_loader, val_loader, test_loader = loaders(data_dir, batch_size)
    model = LitMLP()
    trainer = L.Trainer(max_epochs=epochs, default_root_dir=output_dir, callbacks=callbacks)
    trainer.fit(model, train_loader, val_loader)
    (metrics,) = trainer.test(model, test_loader, verbose=False)
    return float(metrics["test_acc"])
