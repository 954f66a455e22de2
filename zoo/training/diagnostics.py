"""Training diagnostics for activation functions, as a Lightning callback.

:class:`ActivationDiagnostics` runs a fixed *probe batch* through the model at the start of
training, every ``interval`` optimizer steps and at the end of every training epoch, and logs to
the run's loggers (``metrics.csv`` for ``zoo train``) one row of values per probe:

``diag/dead/<layer>``
    The fraction of the activation layer's units that are **dead** on the probe batch. A *unit*
    is one index along dimension 1 of the layer's output (a feature after a linear layer, a
    channel after a convolution; further dimensions are pooled into it). A unit is dead when its
    output is exactly zero for every probe sample, or when the gradient of the probe loss with
    respect to its *input* (the pre-activation) is exactly zero for every probe sample: it passes
    nothing forward, or it learns nothing (no gradient reaches its incoming weights). For the
    ReLU family the two conditions coincide: the unit's pre-activation is ≤ 0 on every sample.
    The gradient condition holds whatever stops the gradient, downstream causes included: at
    initialisation, a residual branch that ends in a zero-initialised normalisation (timm's
    ResNets) passes no gradient back, so the units inside it count as dead until the first step.
``diag/saturated/<layer>``
    The fraction of the layer's outputs (units x probe samples) that are **saturated**: within
    ``eps`` (default 1 %) of the activation's range from one of its horizontal asymptotes, i.e.
    the share of its units saturated on an average probe sample. The asymptotes are measured, not
    assumed: the activation module itself is evaluated at ±1e4 and ±1e6, and a side whose value
    no longer changes has an asymptote there. Only activations bounded on both sides
    (sigmoid/tanh-style: sigmoid, tanh, hardsigmoid, relu6, a plugin's softsign …) get this
    metric; for sigmoid it means an output below 0.01 or above 0.99, for tanh within 0.02 of ±1.
    The flat side of one-sided activations (ReLU, ELU, GELU …) is what the dead fraction covers.
``diag/grad_norm/<layer>``, ``diag/weight_norm/<layer>``
    For every module holding parameters of its own (a ``Linear``, a ``Conv2d`` …): the L2 norm of
    the probe loss's gradient with respect to those parameters (weight and bias together), and
    the L2 norm of the parameters themselves.
``diag/dead/all``, ``diag/saturated/all``
    The same fractions over all activation layers together, weighted by units.

Activation layers are found generically: they are the modules the architecture built with the
``act`` factory it was given (:func:`zoo.plugin.components.activation_modules`), whatever
the architecture and the activation. A module called several times in one forward pass is
measured per call (``<layer>#1``, ``<layer>#2`` …). Layers are named by their module path in the
LightningModule (``model.2``), and listed in forward order in ``diagnostics.json``, which the
callback writes next to ``metrics.csv`` with its settings and the seconds it spent.

The probe is the first ``probe_size`` samples of the validation loader (the training loader if
there is none), fixed for the whole run, run in eval mode with the model's loss
(``cross_entropy``). The probe's gradients are computed with ``torch.autograd.grad`` and never
touch the parameters' ``.grad``, and the random state is restored after reading the probe, so a
seeded run trains exactly as it does without diagnostics.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from zoo.plugin.components import activation_modules
from zoo.training.probing import (
    PREFIX,
    Call,
    Owner,
    ProbeHooks,
    by_unit,
    eager,
    first_samples,
    parameter_norms,
    parameter_owners,
)

#: Probe every this many optimizer steps by default: about 17 probes in an MNIST epoch of 860
#: steps, costing a few per cent of the epoch (measured in the README).
DEFAULT_INTERVAL = 50
DEFAULT_PROBE_SIZE = 256
DEFAULT_EPS = 0.01
SUMMARY_FILE = "diagnostics.json"

_FAR = (1e4, 1e6)  # where asymptotes are read off
_FAR_HALF = (1e3, 3e4)  # the same within float16's range


class ActivationDiagnostics(Callback):
    """Logs dead-unit and saturated-unit fractions per activation layer, and gradient and weight
    norms per layer, on a fixed probe batch (see the module docstring for the definitions).

    Args:
        interval: probe every this many optimizer steps (also at step 0 and at each epoch's end).
        probe_size: samples in the probe batch.
        eps: saturation tolerance, as a fraction of the activation's output range.
        probe: an ``(inputs, targets)`` batch to use instead of the first validation samples.
        loss_fn: the loss of ``(output, targets)``; ``cross_entropy`` by default.

    After training, ``history`` holds one dict per probe (``step``, ``epoch`` and the metrics),
    ``seconds`` the time the probes took.
    """

    def __init__(
        self,
        interval: int = DEFAULT_INTERVAL,
        probe_size: int = DEFAULT_PROBE_SIZE,
        eps: float = DEFAULT_EPS,
        probe: tuple[torch.Tensor, torch.Tensor] | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if interval < 1:
            raise ValueError(f"interval must be at least 1, got {interval}")
        if probe_size < 1:
            raise ValueError(f"probe_size must be at least 1, got {probe_size}")
        if not 0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps}")
        self.interval = interval
        self.probe_size = probe_size
        self.eps = eps
        self.probe = probe
        self.loss_fn = loss_fn or F.cross_entropy
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0
        self.activation_layers: list[str] = []
        self.parameter_layers: list[str] = []
        self.bounds: dict[str, tuple[float, float]] = {}
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._last_step = -1

    # -- Lightning hooks -----------------------------------------------------------------------

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        started = time.perf_counter()
        self._batch = self._probe_batch(trainer)
        self.seconds += time.perf_counter() - started
        if trainer.global_step == 0:  # a resumed run was probed when it started
            self._record(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:  # args: the step's outputs, batch and batch index
        if trainer.global_step % self.interval == 0:
            self._record(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)  # training may stop between probes (max_steps)
        if trainer.is_global_zero and trainer.log_dir is not None:
            self.write_summary(Path(trainer.log_dir) / SUMMARY_FILE)

    # -- measuring -----------------------------------------------------------------------------

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        if step == self._last_step or self._batch is None:
            return  # gradient accumulation, or an epoch ending on a probed step
        self._last_step = step
        started = time.perf_counter()
        metrics = self.measure(pl_module, self._batch)
        self.seconds += time.perf_counter() - started
        row = {"epoch": float(trainer.current_epoch), **metrics}
        self.history.append({"step": float(step), **row})
        for logger in trainer.loggers:
            logger.log_metrics(row, step=step)

    def measure(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> dict[str, float]:
        """Run one probe of ``model`` on ``batch`` and return the metrics, named as logged."""
        x, y = batch
        parameter = next((p for p in model.parameters() if p.is_floating_point()), None)
        if parameter is not None:
            x = x.to(parameter.device, parameter.dtype if x.is_floating_point() else None)
            y = y.to(parameter.device)
        owners = parameter_owners(model)
        hooks = ProbeHooks(activation_modules(model), owners)
        was_training = model.training
        model.eval()
        try:
            values = self._probe(model, x, y, hooks, owners)
        finally:
            model.train(was_training)

        self.activation_layers = [label for label, *_ in hooks.calls]
        by_name = {name: module for name, module, _ in owners}
        self.parameter_layers = [n for n in hooks.parameter_order if n in by_name] + [
            n for n in by_name if n not in hooks.parameter_order
        ]
        names = list(values)
        flat_values = torch.stack([values[n].float() for n in names]).cpu().tolist()
        return {name: float(v) for name, v in zip(names, flat_values, strict=True)}

    def _probe(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        hooks: ProbeHooks,
        owners: Sequence[Owner],
    ) -> dict[str, torch.Tensor]:
        """The probe's forward pass (eager, through ``hooks``, which it then removes) and its
        gradients, and the values of every activation layer and parameter owner from them."""
        # A compiled model (torch.compile) would skip the hooks: probe it eagerly.
        with eager(), torch.enable_grad():
            try:
                loss = self.loss_fn(model(x), y)
            finally:
                hooks.remove()
            wanted = [z for _, _, z, _ in hooks.calls if z.requires_grad]
            flat = [p for _, _, params in owners for p in params]
            grads = torch.autograd.grad(loss, wanted + flat, allow_unused=True)
        z_grads = iter(grads[: len(wanted)])
        p_grads = iter(grads[len(wanted) :])
        with torch.no_grad():
            values = self._layer_values(hooks.calls, z_grads)
            values.update(parameter_norms(owners, p_grads))
        return values

    def _layer_values(
        self,
        calls: Sequence[Call],
        z_grads: Any,
    ) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {}
        dead_total: list[torch.Tensor] = []
        units_total = 0
        saturated_total: list[torch.Tensor] = []
        saturated_units = 0
        for label, module, z, a in calls:
            grad = next(z_grads) if z.requires_grad else None
            outputs = by_unit(a.detach())
            units = outputs.shape[0]
            dead = (outputs == 0).all(dim=1)
            if grad is None and z.requires_grad:
                dead = torch.ones_like(dead)  # the output reaches no loss: nothing is learned
            elif grad is not None:
                dead = dead | (by_unit(grad) == 0).all(dim=1)
            values[f"{PREFIX}/dead/{label}"] = dead.float().mean()
            dead_total.append(dead.float().sum())
            units_total += units
            bounds = self._bounds(label, module, z)
            if bounds is not None:
                low, high = bounds
                bounded = torch.isfinite(low) & torch.isfinite(high) & (high != low)
                a_ = a.detach()
                distance = torch.minimum((a_ - low).abs(), (a_ - high).abs())
                saturated = (distance <= self.eps * (high - low).abs()) & bounded
                share = saturated.float().sum() / bounded.expand_as(a_).float().sum()
                values[f"{PREFIX}/saturated/{label}"] = share
                saturated_total.append(share * units)
                saturated_units += units
        if units_total:
            values[f"{PREFIX}/dead/all"] = torch.stack(dead_total).sum() / units_total
        if saturated_units:
            values[f"{PREFIX}/saturated/all"] = torch.stack(saturated_total).sum() / saturated_units
        return values

    def _bounds(
        self, label: str, module: nn.Module, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The activation's lower and upper asymptotes per element (for one sample), or None if
        it is unbounded on a side everywhere."""
        near, far = _FAR_HALF if z.dtype in (torch.float16, torch.bfloat16) else _FAR
        like = z.detach()[:1]
        sides = []
        for sign in (-1.0, 1.0):
            at_near = module(torch.full_like(like, sign * near))
            at_far = module(torch.full_like(like, sign * far))
            if not isinstance(at_far, torch.Tensor) or at_far.shape != like.shape:
                return None  # not elementwise: no per-element asymptote to speak of
            flat = (at_far - at_near).abs() <= 1e-3 * at_far.abs().clamp(min=1.0)
            sides.append(torch.where(flat & torch.isfinite(at_far), at_far, math.inf))
        low, high = sides
        if not bool((torch.isfinite(low) & torch.isfinite(high) & (low != high)).any()):
            return None
        if label not in self.bounds:
            self.bounds[label] = (float(low.min()), float(high.max()))
        return low, high

    def _probe_batch(self, trainer: L.Trainer) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.probe is not None:
            x, y = self.probe
            return x[: self.probe_size], y[: self.probe_size]
        # Making a loader's iterator draws from the global RNG: put the state back afterwards so
        # that a seeded run trains the same with and without diagnostics.
        with torch.random.fork_rng(devices=[]):
            loader = None
            datamodule = getattr(trainer, "datamodule", None)
            if datamodule is not None:
                try:
                    loader = datamodule.val_dataloader()
                except Exception:  # no validation data: fall back to the training data
                    loader = None
            if loader is None:
                loader = trainer.train_dataloader
            if loader is None:
                return None
            return first_samples(loader, self.probe_size)

    # -- output --------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Settings, layer names in forward order, asymptotes found, probe count and seconds."""
        return {
            "interval": self.interval,
            "probe_size": self.probe_size if self._batch is None else len(self._batch[0]),
            "eps": self.eps,
            "activation_layers": self.activation_layers,
            "parameter_layers": self.parameter_layers,
            "bounds": {name: list(bounds) for name, bounds in self.bounds.items()},
            "probes": len(self.history),
            "seconds": round(self.seconds, 4),
        }

    def write_summary(self, path: str | Path) -> None:
        """Write :meth:`summary` as JSON to ``path`` (atomically)."""
        from zoo.runs.files import write_atomically

        write_atomically(Path(path), json.dumps(self.summary(), indent=2) + "\n")
