"""The built-in learning-rate schedules, torch.optim.lr_scheduler's classes.

All but ``plateau`` are stepped after every optimizer step, so that ``--warmup-steps`` composes
with them (:func:`zoo.training.recipe.create_schedule` puts a linear warm-up before the schedule,
and
``total_steps`` is what is left after it). Those given in epochs (``step``, ``multistep``,
``exponential``) are converted to optimizer steps with ``steps_per_epoch``. ``plateau`` watches
a validation metric, so it steps once an epoch, after validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import zoo

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int, min_lr: float = 0.0
) -> LRScheduler:
    """Cosine decay from the optimizer's lr to ``min_lr`` over the run's steps."""
    from torch.optim.lr_scheduler import CosineAnnealingLR

    _check(min_lr >= 0, f"min_lr must be 0 or more, got {min_lr}")
    return CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=min_lr)


def onecycle(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    max_lr: float | None = None,
    pct_start: float = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
    cycle_momentum: bool | None = None,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> LRScheduler:
    """The 1cycle policy (Smith 2018): from ``max_lr / div_factor`` up to ``max_lr`` (the
    optimizer's lr unless set) over ``pct_start`` of the run, then down to ``max_lr /
    (div_factor * final_div_factor)``. ``cycle_momentum`` (the default where the optimizer has
    a momentum or betas) cycles the momentum the other way."""
    from torch.optim.lr_scheduler import OneCycleLR

    _check(0 < pct_start < 1, f"pct_start must be between 0 and 1, got {pct_start}")
    _check(div_factor > 0 and final_div_factor > 0, "div_factor and final_div_factor must be > 0")
    _check(max_lr is None or max_lr > 0, f"max_lr must be more than 0, got {max_lr}")
    # torch divides by (pct_start * total_steps - 1), the number of warm-up steps less one.
    _check(
        abs(pct_start * total_steps - 1) > 1e-9,
        f"pct_start={pct_start} of {total_steps} steps leaves a warm-up of one step; "
        f"choose another pct_start",
    )
    groups = optimizer.param_groups
    if cycle_momentum is None:
        cycle_momentum = all("momentum" in g or "betas" in g for g in groups)
    return OneCycleLR(
        optimizer,
        max_lr=[float(g["lr"]) for g in groups] if max_lr is None else max_lr,
        total_steps=total_steps,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        three_phase=three_phase,
        cycle_momentum=cycle_momentum,
        base_momentum=base_momentum,
        max_momentum=max_momentum,
    )


def step(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    step_size: int = 1,
    gamma: float = 0.7,
) -> LRScheduler:
    """The lr times ``gamma`` every ``step_size`` epochs (the defaults: PyTorch's MNIST
    example)."""
    from torch.optim.lr_scheduler import StepLR

    _check(step_size >= 1, f"step_size is in epochs and must be 1 or more, got {step_size}")
    _check(gamma > 0, f"gamma must be more than 0, got {gamma}")
    return StepLR(optimizer, step_size=step_size * steps_per_epoch, gamma=gamma)


def multistep(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    milestones: Sequence[int] | None = None,
    gamma: float = 0.1,
) -> LRScheduler:
    """The lr times ``gamma`` at each of the ``milestones`` (epochs); by default at half and
    three quarters of the run."""
    from torch.optim.lr_scheduler import MultiStepLR

    _check(gamma > 0, f"gamma must be more than 0, got {gamma}")
    if milestones is None:
        steps = sorted({max(1, total_steps // 2), max(1, total_steps * 3 // 4)})
    else:
        _check(
            all(isinstance(m, int) and m >= 1 for m in milestones),
            f"milestones are epochs, whole numbers of 1 or more, e.g. (30, 60); got {milestones}",
        )
        steps = [m * steps_per_epoch for m in milestones]
    return MultiStepLR(optimizer, milestones=steps, gamma=gamma)


def exponential(
    optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int, gamma: float = 0.9
) -> LRScheduler:
    """The lr times ``gamma`` per epoch, a little every step."""
    from torch.optim.lr_scheduler import ExponentialLR

    _check(0 < gamma <= 1, f"gamma is the factor per epoch, in (0, 1]; got {gamma}")
    return ExponentialLR(optimizer, gamma=gamma ** (1 / steps_per_epoch))


def linear(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    start_factor: float = 1.0,
    end_factor: float = 0.0,
) -> LRScheduler:
    """Linear from ``start_factor`` times the lr to ``end_factor`` times it over the run."""
    from torch.optim.lr_scheduler import LinearLR

    _check(0 < start_factor <= 1, f"start_factor must be in (0, 1], got {start_factor}")
    _check(0 <= end_factor <= 1, f"end_factor must be in [0, 1], got {end_factor}")
    return LinearLR(
        optimizer, start_factor=start_factor, end_factor=end_factor, total_iters=total_steps
    )


def constant(
    optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int
) -> LRScheduler:
    """The optimizer's lr throughout (after any warm-up)."""
    from torch.optim.lr_scheduler import ConstantLR

    return ConstantLR(optimizer, factor=1.0, total_iters=0)


def plateau(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    monitor: Literal["val_acc", "val_loss"] = "val_acc",
    factor: float = 0.1,
    patience: int = 2,
    threshold: float = 1e-4,
    cooldown: int = 0,
    min_lr: float = 0.0,
) -> dict[str, Any]:
    """The lr times ``factor`` when ``monitor`` has not improved for ``patience`` epochs."""
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    _check(0 < factor < 1, f"factor must be between 0 and 1, got {factor}")
    _check(patience >= 0 and cooldown >= 0, "patience and cooldown are epochs, 0 or more")
    _check(min_lr >= 0, f"min_lr must be 0 or more, got {min_lr}")
    scheduler = ReduceLROnPlateau(
        optimizer,
        mode="max" if monitor == "val_acc" else "min",
        factor=factor,
        patience=patience,
        threshold=threshold,
        cooldown=cooldown,
        min_lr=min_lr,
    )
    return {"scheduler": scheduler, "interval": "epoch", "frequency": 1, "monitor": monitor}


#: (name, factory, summary): the summaries give the defaults.
SCHEDULERS: tuple[tuple[str, Any, str], ...] = (
    ("cosine", cosine, "CosineAnnealingLR: cosine decay to min_lr (0) over the run"),
    ("onecycle", onecycle, "OneCycleLR: up to max_lr (the lr) in pct_start (0.3) of the run, down"),
    ("step", step, "StepLR: lr times gamma (0.7) every step_size (1) epochs"),
    (
        "multistep",
        multistep,
        "MultiStepLR: lr times gamma (0.1) at milestones (½ and ¾ of the run)",
    ),
    (
        "exponential",
        exponential,
        "ExponentialLR: lr times gamma (0.9) per epoch, a little every step",
    ),
    ("linear", linear, "LinearLR: linear decay to end_factor (0) times the lr over the run"),
    ("constant", constant, "ConstantLR: the optimizer's lr throughout, after any warm-up"),
    (
        "plateau",
        plateau,
        "ReduceLROnPlateau: lr times factor (0.1) when val_acc stalls (patience 2)",
    ),
)


@zoo.hookimpl
def register_schedulers(register: zoo.Register) -> None:
    """torch.optim.lr_scheduler's schedules, stepped per optimizer step (plateau: per epoch)."""
    for name, factory, summary in SCHEDULERS:
        register(name, factory, summary=summary)
