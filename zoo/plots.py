"""Plots: activations and their derivatives, one run's curves, and a comparison's curves.

matplotlib is an optional extra (``pip install 'lightning-zoo[plot]'``), imported only inside
these functions and always with the non-interactive Agg backend; without it they raise a
:class:`zoo.ZooError` that says how to install it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError, ZooUsageError
from zoo.runs.curves import RunCurves, read_curves
from zoo.runs.files import METRICS_FILE

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install 'lightning-zoo[plot]'"
#: Colours of the compared activations, in order (matplotlib's tab10).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
DPI = 100


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or a ZooError naming the extra to install."""
    try:
        import matplotlib
    except ImportError as error:
        raise ZooError(
            f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from error
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def colour(index: int) -> str:
    """The colour of the ``index``-th compared activation."""
    return PALETTE[index % len(PALETTE)]


def _save(fig: Figure, output: str | os.PathLike[str]) -> Path:
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def _grid(count: int, columns: int = 4) -> tuple[int, int]:
    cols = min(columns, max(count, 1))
    return math.ceil(max(count, 1) / cols), cols


# -- activations -----------------------------------------------------------------------------


def activation_curve(spec: str, low: float = -5.0, high: float = 5.0, points: int = 501) -> Any:
    """``(x, f(x), f'(x))`` as NumPy arrays for an activation spec; the derivative comes from
    autograd (for an activation that is not elementwise, the sum over its outputs)."""
    import torch

    from zoo.plugin.components import create_activation

    module = create_activation(spec)
    module.eval()
    x = torch.linspace(low, high, points, dtype=torch.float32).reshape(-1, 1)
    x.requires_grad_(True)
    y = module(x.clone())  # a clone, so that an in-place activation leaves x alone
    (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    return (
        x.detach().flatten().numpy(),
        y.detach().float().flatten().numpy(),
        grad.detach().float().flatten().numpy(),
    )


def plot_activations(
    specs: Sequence[str],
    output: str | os.PathLike[str] = "activations.png",
    low: float = -5.0,
    high: float = 5.0,
) -> Path:
    """Draw each activation (solid) and its autograd derivative (dashed), one panel each."""
    if not specs:
        raise ZooUsageError("name at least one activation to plot")
    if not low < high:
        raise ZooUsageError(f"the range must be increasing, got {low} {high}")
    plt = _pyplot()  # before any work: say at once if matplotlib is missing
    curves = [(spec, *activation_curve(spec, low, high)) for spec in specs]
    rows, cols = _grid(len(curves))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False, layout="constrained"
    )
    for index, (spec, x, y, dy) in enumerate(curves):
        ax = axes[index // cols][index % cols]
        ax.axhline(0, color="#999999", linewidth=0.6)
        ax.axvline(0, color="#999999", linewidth=0.6)
        ax.plot(x, y, color=colour(index), linewidth=2.2, label="f(x)")
        ax.plot(x, dy, color=colour(index), linewidth=1.6, linestyle="--", label="f'(x)")
        ax.set_title(spec, fontsize=10)
        ax.set_xlim(low, high)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    for index in range(len(curves), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    return _save(fig, output)


# -- one run ---------------------------------------------------------------------------------


def plot_run(run_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Path:
    """Draw a run's loss and accuracy curves and, for a ``--diagnostics`` run, its dead and
    saturated fractions and gradient norms per layer. Defaults to ``RUN_DIR/curves.png``."""
    path = Path(run_dir)
    if not (path / METRICS_FILE).is_file():
        raise ZooUsageError(f"{path} is not a run directory: it has no {METRICS_FILE}")
    run = read_curves(path)
    plt = _pyplot()
    panels = ["loss", "acc"]
    panels += [stat for stat in ("dead", "saturated", "grad_norm") if run.layers(stat)]
    rows, cols = _grid(len(panels), columns=3)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False, layout="constrained"
    )
    flat = [axes[i // cols][i % cols] for i in range(rows * cols)]
    ax = flat[0]
    if run.train_loss_steps:
        steps, losses = zip(*run.train_loss_steps, strict=True)
        ax.plot(steps, losses, color="#bbbbbb", linewidth=1, label="train (step)")
    steps_per_epoch = _steps_per_epoch(run)
    if run.train_loss_epoch:
        x = [(e + 1) * steps_per_epoch for e in range(len(run.train_loss_epoch))]
        ax.plot(x, run.train_loss_epoch, color=colour(1), marker="s", label="train (epoch mean)")
    if run.val_loss:
        x = [(e + 1) * steps_per_epoch for e in run.epochs]
        ax.plot(x, run.val_loss, color=colour(0), marker="o", linewidth=2, label="validation")
    ax.set(title="loss", xlabel="step")
    ax.legend(fontsize=8)
    ax = flat[1]
    if run.val_acc:
        x = [e + 1 for e in run.epochs]
        ax.plot(x, run.val_acc, color=colour(0), marker="o", linewidth=2, label="validation")
        ax.legend(fontsize=8)
    ax.set(title="validation accuracy", xlabel="epoch")
    _integer_ticks(ax)
    for ax, stat in zip(flat[2:], panels[2:], strict=False):
        _layer_lines(ax, [run], stat)
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    config = run.config
    fig.suptitle(f"{config.get('arch')} + {config.get('act')} on {config.get('dataset')}")
    return _save(fig, output if output is not None else path / "curves.png")


def _integer_ticks(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _steps_per_epoch(run: RunCurves) -> float:
    epochs = run.results.get("epochs") or 0
    steps = run.results.get("steps") or 0
    return steps / epochs if epochs and steps else 1.0


STAT_TITLES = {
    "dead": "dead-unit fraction",
    "saturated": "saturated fraction",
    "grad_norm": "gradient norm",
}


def _layer_lines(ax: Axes, runs: Sequence[RunCurves], stat: str) -> None:
    """One line per layer (mean over ``runs``), coloured from the first layer to the last."""
    import matplotlib

    layers = runs[0].layers(stat)
    cmap = matplotlib.colormaps["viridis"]
    for index, layer in enumerate(layers):
        steps, values = _mean_series(runs, stat, layer)
        shade = cmap(index / max(len(layers) - 1, 1) * 0.9)
        ax.plot(steps, values, color=shade, linewidth=1.6, label=layer)
    if stat == "grad_norm":
        ax.set_yscale("log")
    else:
        ax.set_ylim(-0.03, 1.03)
    ax.set(title=STAT_TITLES[stat], xlabel="step")
    ax.grid(alpha=0.3)
    if layers:
        ax.legend(fontsize=7, title="layer", title_fontsize=7)


def _mean_series(runs: Sequence[RunCurves], stat: str, layer: str) -> tuple[list[float], Any]:
    by_step: dict[float, list[float]] = {}
    for run in runs:
        for step, value in zip(*run.diag_series(stat, layer), strict=True):
            by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    return steps, [sum(by_step[s]) / len(by_step[s]) for s in steps]


# -- a comparison ----------------------------------------------------------------------------


def plot_comparison(
    acts: Sequence[str],
    runs: Sequence[tuple[str, int, RunCurves]],
    output_dir: str | os.PathLike[str],
) -> list[Path]:
    """Draw a comparison's plots into ``output_dir``: ``val_curves.png`` (validation loss and
    accuracy per epoch, mean over seeds with a min-max band), ``dead_units.png``,
    ``saturation.png`` (when an activation is bounded) and ``grad_norms.png`` (per layer over
    training, one panel per activation)."""
    plt = _pyplot()
    out = Path(output_dir)
    by_act = {act: [curves for a, _, curves in runs if a == act] for act in acts}
    by_act = {act: curves for act, curves in by_act.items() if curves}
    paths = []

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for index, act in enumerate(acts):
        if act not in by_act:
            continue
        for ax, attribute in ((loss_ax, "val_loss"), (acc_ax, "val_acc")):
            epochs, mean, low, high = _band(by_act[act], attribute)
            if not epochs:
                continue
            ax.fill_between(epochs, low, high, color=colour(index), alpha=0.18, linewidth=0)
            ax.plot(epochs, mean, color=colour(index), linewidth=2.2, marker="o", label=act)
    loss_ax.set(title="validation loss", xlabel="epoch")
    acc_ax.set(title="validation accuracy", xlabel="epoch")
    for ax in (loss_ax, acc_ax):
        _integer_ticks(ax)
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no epoch finished", ha="center", transform=ax.transAxes)
    paths.append(_save(fig, out / "val_curves.png"))

    for stat, name in (
        ("dead", "dead_units"),
        ("saturated", "saturation"),
        ("grad_norm", "grad_norms"),
    ):
        panels = [(act, curves) for act, curves in by_act.items() if curves[0].layers(stat)]
        if not panels:
            continue
        rows, cols = _grid(len(panels))
        fig, axes = plt.subplots(
            rows,
            cols,
            figsize=(3.6 * cols, 3.1 * rows),
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
        for index, (act, curves) in enumerate(panels):
            ax = axes[index // cols][index % cols]
            _layer_lines(ax, curves, stat)
            ax.set_title(act, fontsize=9, color=colour(list(acts).index(act)))
        for index in range(len(panels), rows * cols):
            axes[index // cols][index % cols].set_visible(False)
        fig.suptitle(STAT_TITLES[stat] + " per layer over training")
        paths.append(_save(fig, out / f"{name}.png"))
    return paths


def _band(runs: Sequence[RunCurves], attribute: str) -> tuple[list[int], Any, Any, Any]:
    """Epoch numbers (from 1), and the mean, min and max over runs of a per-epoch curve."""
    by_epoch: dict[int, list[float]] = {}
    for run in runs:
        for epoch, value in zip(run.epochs, getattr(run, attribute), strict=True):
            if not math.isnan(value):
                by_epoch.setdefault(epoch + 1, []).append(value)
    epochs = sorted(by_epoch)
    mean = [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]
    return epochs, mean, [min(by_epoch[e]) for e in epochs], [max(by_epoch[e]) for e in epochs]
