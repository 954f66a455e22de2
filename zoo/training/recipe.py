"""The training recipe of a run: its optimizer, learning-rate schedule (with warm-up) and batch
augmentations, built from the registry by their specs.

``ZooClassifier`` calls :func:`create_optimizer` and :func:`create_schedule` from
``configure_optimizers`` and applies a :class:`BatchAugmenter` to each training batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from zoo._compat import speedups as speedups
from zoo.errors import PluginError, ZooUsageError
from zoo.plugin.components import resolve

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Warm-up starts from this fraction of the learning rate.
WARMUP_START_FACTOR = 0.01


def default_lr(optimizer_spec: str) -> float | None:
    """The learning rate an optimizer uses when ``--lr`` is not given: its factory's default."""
    component, _ = resolve("optimizer", optimizer_spec)
    try:
        parameter = inspect.signature(component.factory).parameters.get("lr")
    except (TypeError, ValueError):
        return None
    if parameter is None or not isinstance(parameter.default, (int, float)):
        return None
    return float(parameter.default)


def create_optimizer(spec: str, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer ``spec`` names (``"adamw:weight_decay=0.05"``) over ``model``'s parameters,
    with :func:`zoo._compat.speedups.optimizer`'s speed-up."""
    import torch

    component, parsed = resolve("optimizer", spec)
    optimizer = component.build(parsed.kwargs, model=model, **({} if lr is None else {"lr": lr}))
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise PluginError(
            f"optimizer {component.name!r} of plugin {component.plugin!r} returned "
            f"{type(optimizer).__name__}, not a torch.optim.Optimizer"
        )
    return speedups.optimizer(optimizer)


def create_schedule(
    spec: str | None,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    steps_per_epoch: int,
    warmup_steps: int = 0,
) -> dict[str, Any] | None:
    """Lightning's ``lr_scheduler`` config for the schedule ``spec`` names after a linear
    warm-up of ``warmup_steps`` optimizer steps; ``None`` for a constant learning rate."""
    from torch.optim.lr_scheduler import LinearLR, LRScheduler, SequentialLR

    if spec is None and warmup_steps == 0:
        return None
    config: dict[str, Any] | None = None
    if spec is not None:
        component, parsed = resolve("scheduler", spec)
        built = component.build(
            parsed.kwargs,
            optimizer=optimizer,
            total_steps=max(1, total_steps - warmup_steps),
            steps_per_epoch=steps_per_epoch,
        )
        config = dict(built) if isinstance(built, dict) else {"scheduler": built}
        config.setdefault("interval", "step")
        if not isinstance(config.get("scheduler"), (LRScheduler, _plateau_class())):
            raise PluginError(
                f"scheduler {component.name!r} of plugin {component.plugin!r} returned "
                f"{type(built).__name__}, not a torch LRScheduler or Lightning's dict of one"
            )
    if warmup_steps == 0:
        return config
    if config is not None and config["interval"] != "step":
        raise ZooUsageError(
            f"--warmup-steps needs a schedule stepped every step; {spec!r} steps every "
            f"{config['interval']}"
        )
    warmup = LinearLR(optimizer, start_factor=WARMUP_START_FACTOR, total_iters=warmup_steps)
    if config is None:
        return {"scheduler": warmup, "interval": "step"}
    main = config["scheduler"]
    sequence = SequentialLR(optimizer, [warmup, main], milestones=[warmup_steps])
    return {**config, "scheduler": sequence}


def _plateau_class() -> type:
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    return ReduceLROnPlateau


Augmentation = Callable[["torch.Tensor", "torch.Generator"], "torch.Tensor"]


class BatchAugmenter:
    """The ``--augment`` specs applied in order to a training batch on its device.

    Batches arrive normalised; each augmentation sees them on the ``ToTensor`` scale (0 to 1),
    so padding and erasing fill with black, not with the mean. Its randomness comes from a
    generator seeded by the run's seed, the epoch, the batch's index in the epoch and the
    process's rank: the same seed gives the same augmented batches, and a resumed run continues
    them exactly.
    """

    def __init__(
        self, specs: Sequence[str], mean: Sequence[float], std: Sequence[float], seed: int
    ) -> None:
        self.specs = tuple(specs)
        self.augmentations: list[Augmentation] = []
        for spec in self.specs:
            component, parsed = resolve("augmentation", spec)
            augmentation = component.build(parsed.kwargs)
            if not callable(augmentation):
                raise PluginError(
                    f"augmentation {component.name!r} of plugin {component.plugin!r} returned "
                    f"{type(augmentation).__name__}, which is not callable"
                )
            self.augmentations.append(augmentation)
        self.mean, self.std, self.seed = tuple(mean), tuple(std), int(seed)
        self._channel_cache: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}

    def __bool__(self) -> bool:
        return bool(self.augmentations)

    def __call__(self, images: torch.Tensor, epoch: int, batch: int) -> torch.Tensor:
        import torch

        generator = torch.Generator(device=images.device)
        # One stream per (seed, epoch, batch): independent of how many batches came before;
        # and per process, so that the ranks of a distributed run augment their shards apart.
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if distributed else 0
        generator.manual_seed(hash((self.seed, epoch, batch, rank)) & (2**63 - 1))
        mean, std = self._channels(images)
        images = images * std + mean
        for augmentation in self.augmentations:
            images = augmentation(images, generator)
        return (images - mean) / std

    def _channels(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        key = (images.device, images.dtype)
        if key not in self._channel_cache:
            mean, std = (
                torch.tensor(v, dtype=images.dtype, device=images.device).view(-1, 1, 1)
                for v in (self.mean, self.std)
            )
            self._channel_cache[key] = (mean, std)
        return self._channel_cache[key]
