"""The built-in learning-rate schedules: their trajectories over a run's steps (stepped by hand
as Lightning steps them, after every optimizer step), warm-up composed before them, plateau on
val_acc, bad arguments, and a real run whose logged learning rate follows the schedule."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import zoo
from zoo.plugins.schedulers import SCHEDULERS
from zoo.training.recipe import WARMUP_START_FACTOR, create_optimizer, create_schedule

TINY = "mnist:val_size=100"  # of tiny_mnist's 600 training images: 8 steps an epoch


def _optimizer(spec: str = "sgd", lr: float | None = None) -> torch.optim.Optimizer:
    torch.manual_seed(0)
    model = zoo.create_model("mlp", act="relu", input_shape=(1, 28, 28), num_classes=10)
    return create_optimizer(spec, model, lr=lr)


def _trajectory(
    spec: str | None, total: int, per_epoch: int = 10, warmup: int = 0, optimizer: str = "sgd"
) -> list[float]:
    """The learning rate of each of ``total`` optimizer steps."""
    opt = _optimizer(optimizer)
    config = create_schedule(
        spec, opt, total_steps=total, steps_per_epoch=per_epoch, warmup_steps=warmup
    )
    assert config is not None and config["interval"] == "step"
    rates = []
    for _ in range(total):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradients: the parameters stay, the schedule is what is tested
        config["scheduler"].step()
    return rates


def _close(actual: list[float], expected: list[float]) -> bool:
    return len(actual) == len(expected) and all(
        math.isclose(a, e, rel_tol=1e-6, abs_tol=1e-12)
        for a, e in zip(actual, expected, strict=True)
    )


def test_cosine_decays_to_min_lr_over_total_steps() -> None:
    total, lr = 50, 1e-2
    expected = [lr / 2 * (1 + math.cos(math.pi * t / total)) for t in range(total)]
    assert _close(_trajectory("cosine", total), expected)
    floor = 1e-3
    expected = [
        floor + (lr - floor) / 2 * (1 + math.cos(math.pi * t / total)) for t in range(total)
    ]
    rates = _trajectory("cosine:min_lr=1e-3", total)
    assert _close(rates, expected) and min(rates) > floor


def test_warmup_then_cosine() -> None:
    total, warmup, lr = 60, 10, 1e-2
    rates = _trajectory("cosine", total, warmup=warmup)
    start = WARMUP_START_FACTOR * lr
    ramp = [start + (lr - start) * t / warmup for t in range(warmup)]
    main = total - warmup  # the core passes the steps after the warm-up
    decay = [lr / 2 * (1 + math.cos(math.pi * t / main)) for t in range(main)]
    assert _close(rates, ramp + decay)


def test_onecycle_rises_to_the_optimizers_lr_and_falls() -> None:
    total, lr = 100, 1e-2
    rates = _trajectory("onecycle", total)
    peak = rates.index(max(rates))
    assert math.isclose(max(rates), lr) and peak == round(0.3 * total) - 1
    assert math.isclose(rates[0], lr / 25)
    assert rates[:peak] == sorted(rates[:peak]) and rates[peak:] == sorted(rates[peak:])[::-1]
    assert math.isclose(rates[-1], lr / 25 / 1e4, rel_tol=1e-3)
    # max_lr set; the SGD momentum cycles the other way, between 0.85 and 0.95.
    opt = _optimizer("sgd")
    config = create_schedule(
        "onecycle:max_lr=0.1,pct_start=0.5", opt, total_steps=total, steps_per_epoch=10
    )
    assert config is not None
    momenta, rates = [], []
    for _ in range(total):
        momenta.append(opt.param_groups[0]["momentum"])
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        config["scheduler"].step()
    assert max(momenta) == pytest.approx(0.95) and min(momenta) == pytest.approx(0.85)
    assert momenta.index(min(momenta)) == rates.index(max(rates)) == total // 2 - 1
    assert max(rates) == pytest.approx(0.1) and rates[-1] == pytest.approx(0.1 / 25 / 1e4)


def test_onecycle_cycles_adams_beta1_and_leaves_adagrad_alone() -> None:
    for optimizer, cycles in (("adam", True), ("adagrad", False)):
        opt = _optimizer(optimizer)
        config = create_schedule("onecycle", opt, total_steps=20, steps_per_epoch=10)
        assert config is not None and config["scheduler"].cycle_momentum is cycles
    beta1 = _optimizer("adam").param_groups[0]["betas"][0]
    assert beta1 == 0.9


def test_step_and_multistep_count_epochs() -> None:
    per_epoch = 10
    rates = _trajectory("step", 40, per_epoch=per_epoch)  # 0.7 every epoch
    assert _close(rates, [1e-2 * 0.7 ** (t // per_epoch) for t in range(40)])
    rates = _trajectory("step:step_size=2,gamma=0.5", 50, per_epoch=per_epoch)
    assert _close(rates, [1e-2 * 0.5 ** (t // 20) for t in range(50)])
    rates = _trajectory("multistep:milestones=(1,3)", 40, per_epoch=per_epoch)
    assert _close(rates, [1e-2 * 0.1 ** ((t >= 10) + (t >= 30)) for t in range(40)])
    rates = _trajectory("multistep", 40, per_epoch=per_epoch)  # at half and three quarters
    assert _close(rates, [1e-2 * 0.1 ** ((t >= 20) + (t >= 30)) for t in range(40)])


def test_exponential_linear_and_constant() -> None:
    per_epoch = 10
    rates = _trajectory("exponential:gamma=0.5", 30, per_epoch=per_epoch)
    assert _close(rates, [1e-2 * 0.5 ** (t / per_epoch) for t in range(30)])
    rates = _trajectory("linear", 40)
    assert _close(rates, [1e-2 * (1 - t / 40) for t in range(40)])
    rates = _trajectory("linear:end_factor=0.5", 40)
    assert _close(rates, [1e-2 * (1 - 0.5 * t / 40) for t in range(40)])
    assert _trajectory("constant", 30) == [1e-2] * 30
    warm = _trajectory("constant", 30, warmup=10)
    assert warm[0] == pytest.approx(WARMUP_START_FACTOR * 1e-2) and warm[10:] == [1e-2] * 20


@pytest.mark.parametrize("name", [name for name, _, _ in SCHEDULERS if name != "plateau"])
def test_every_per_step_schedule_composes_with_warmup(name: str) -> None:
    rates = _trajectory(name, 40, warmup=8, optimizer="adam")
    assert rates[0] < rates[7] and all(r >= 0 for r in rates)


def test_plateau_lowers_the_lr_when_val_acc_stalls() -> None:
    opt = _optimizer("adam")
    config = create_schedule("plateau", opt, total_steps=100, steps_per_epoch=10)
    assert config is not None
    assert (config["interval"], config["monitor"]) == ("epoch", "val_acc")
    scheduler = config["scheduler"]
    assert scheduler.mode == "max"
    rates = []
    for val_acc in (0.5, 0.6, 0.6, 0.6, 0.6, 0.7):  # patience 2: the third epoch without gain
        scheduler.step(val_acc)
        rates.append(opt.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4])
    loss = create_schedule("plateau:monitor='val_loss'", opt, total_steps=1, steps_per_epoch=1)
    assert loss is not None and loss["monitor"] == "val_loss" and loss["scheduler"].mode == "min"
    with pytest.raises(zoo.ZooUsageError, match="stepped every step"):
        create_schedule("plateau", opt, total_steps=100, steps_per_epoch=10, warmup_steps=5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cosine:min_lr=-1.0", "min_lr must be 0 or more"),
        ("step:step_size=0", "step_size is in epochs"),
        ("multistep:milestones=(0,2)", "milestones are epochs"),
        ("exponential:gamma=2.0", "gamma is the factor per epoch"),
        ("onecycle:pct_start=1.5", "pct_start must be between 0 and 1"),
        ("onecycle:pct_start=0.1", "warm-up of one step"),
        ("linear:end_factor=2.0", "end_factor must be in"),
        ("plateau:factor=1.0", "factor must be between 0 and 1"),
        ("plateau:monitor='train_acc'", "argument 'monitor' expects"),
        ("cosine:t_max=3", "takes no argument 't_max'"),
        ("cosine:total_steps=3", "set by zoo itself"),
    ],
)
def test_bad_schedule_arguments_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(zoo.ZooUsageError, match=message):
        create_schedule(spec, _optimizer(), total_steps=10, steps_per_epoch=10)


def _lr_rows(result: zoo.TrainResult, column: str) -> list[tuple[int, float]]:
    with open(Path(result.run_dir) / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]


def _train(data: Path, out: Path, **options: Any) -> zoo.TrainResult:
    options = {"seed": 0, "dataset": TINY, "progress": False, **options}
    return zoo.train("mlp", act="relu", data_dir=data, output_dir=out, **options)


def test_a_run_logs_the_warmup_and_cosine_it_follows(tiny_mnist: Path, tmp_path: Path) -> None:
    # Lightning logs the learning rate every 50 steps (its log_every_n_steps).
    total, warmup, lr = 150, 10, 1e-3
    result = _train(
        tiny_mnist, tmp_path, max_steps=total, epochs=20, scheduler="cosine", warmup_steps=warmup
    )
    assert result.steps == total
    logged = _lr_rows(result, "lr-Adam")
    assert [step for step, _ in logged] == [49, 99, 149]
    for step, rate in logged:
        expected = lr / 2 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        assert rate == pytest.approx(expected, rel=1e-6), step


def test_a_run_with_plateau_lowers_the_lr_on_a_stalled_val_acc(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    # A learning rate too small to move val_acc: with patience 0, every epoch after the first
    # lowers it tenfold. LearningRateMonitor logs epoch-stepped schedules at each epoch's start.
    result = _train(
        tiny_mnist, tmp_path, max_steps=-1, epochs=4, lr=1e-6, scheduler="plateau:patience=0"
    )
    rates = [rate for _, rate in _lr_rows(result, "lr-Adam")]
    assert rates == pytest.approx([1e-6, 1e-6, 1e-7, 1e-8], rel=1e-6)
