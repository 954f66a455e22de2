"""Lightning and torch internals patched for speed.

Each speed-up below relies on something Lightning or torch does inside (a private method, or
what a method does on every step) to save a few microseconds on every training step, which add
up on a small model. Each is a small named function, applied by :mod:`zoo.training.module` and
:mod:`zoo.training.callbacks` through :func:`apply_to_module`, :func:`optimizer`,
:func:`apply_to_checkpoint` and :func:`apply_to_progress_bar`, and only where

* the switch selects it: ``$ZOO_SPEEDUPS`` unset or ``all`` (all of them), ``none`` (none), or
  a comma-separated list of names;
* the installed Lightning and torch are versions it was measured with (:data:`MEASURED_WITH`,
  major.minor);
* the internal it relies on is there, as assumed (checked with ``hasattr`` / ``inspect``);

elsewhere the class or object is left as it is, with Lightning's and torch's plain behaviour
(and the same results). The speed-ups, with what each saves per training step of the default
MLP on one CPU thread, timed on its own inside a real fit (``benchmarks/speedups.py``; within
whole steps they cost more: an epoch's 860 steps took 0.5-1.1 s longer with all of them off
than the 1.15-1.4 s they took with all on, in five runs on a shared 2-core machine):

* ``hook_name``: ``_current_fx_name``, which Lightning sets around every hook it calls (44 times
  a step), set as a plain attribute, not through ``nn.Module.__setattr__`` (≈50-90 µs a step);
* ``step_signature``: ``training_step``'s signature stored on it, for the ``inspect`` Lightning
  runs on every step (≈6 µs);
* ``graph_capture_check``: torch's CUDA-graph capture check skipped on optimizers of CPU
  parameters, which on a CUDA build without a GPU loads NVML on every step (≈40 µs);
* ``state_key``: the checkpoint callback's state key, which Lightning formats around every hook
  it calls (6 times a step), formatted once (≈8 µs);
* ``checkpoint_step``: the checkpoint callback's per-step check skipped, for a callback that
  never saves by steps or time (≈2.5 µs);
* ``throttled_redraws``: the progress bar redrawn at most every ``interval`` seconds, not every
  ``refresh_rate`` steps (≈70-120 µs against Lightning's default, a redraw every step).

:func:`applied` says which are in effect. ``tests/training/test_lightning_internals.py`` checks
that each assumption still holds on the installed versions, and that training without the
speed-ups gives the same results. (The loop progress that exact resume reads is in
:mod:`zoo._compat.lightning`.)
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import lightning
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

#: The Lightning and torch versions (major.minor) the speed-ups were measured with; with any
#: other, none is applied. To add one: run tests/training/test_lightning_internals.py and
#: benchmarks/speedups.py with it.
MEASURED_WITH: dict[str, tuple[str, ...]] = {"lightning": ("2.6",), "torch": ("2.14",)}

#: The speed-ups by name (see the module's docstring).
NAMES = (
    "hook_name",
    "step_signature",
    "graph_capture_check",
    "state_key",
    "checkpoint_step",
    "throttled_redraws",
)

#: The environment variable that selects them: ``all`` (the default), ``none``, or names.
SWITCH = "ZOO_SPEEDUPS"

C = TypeVar("C", bound=type)
_log = logging.getLogger(__name__)
_applied: dict[str, str] = {}


# -- the gate --------------------------------------------------------------------------------


def installed_versions() -> dict[str, str]:
    """The versions of Lightning and torch this process imported."""
    return {"lightning": lightning.__version__, "torch": torch.__version__}


def measured(versions: Mapping[str, str] | None = None) -> bool:
    """Whether ``versions`` (default: the installed ones) are all in :data:`MEASURED_WITH`."""
    versions = installed_versions() if versions is None else versions
    return all(
        _major_minor(versions.get(library, "")) in allowed
        for library, allowed in MEASURED_WITH.items()
    )


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def selected() -> frozenset[str]:
    """The speed-ups that ``$ZOO_SPEEDUPS`` selects (all where it is unset)."""
    value = os.environ.get(SWITCH, "all").strip().lower()
    if value in ("", "all", "1", "on"):
        return frozenset(NAMES)
    if value in ("none", "0", "off"):
        return frozenset()
    names = {name.strip() for name in value.split(",") if name.strip()}
    if names - set(NAMES):
        unknown = ", ".join(sorted(names - set(NAMES)))
        known = ", ".join(NAMES)
        warnings.warn(f"{SWITCH}: unknown speed-ups {unknown} (known: {known})", stacklevel=2)
    return frozenset(names & set(NAMES))


def enabled(name: str) -> bool:
    """Whether the switch selects ``name`` and the installed versions are measured ones."""
    return name in selected() and measured()


def applied() -> dict[str, str]:
    """The speed-ups in effect in this process, each with what it was applied to."""
    return dict(_applied)


def _gate(name: str, holds: Callable[[], bool], target: str) -> bool:
    """Whether to apply ``name`` to ``target``: enabled, and what it relies on ``holds``."""
    if not enabled(name):
        return False
    try:
        ok = holds()
    except (AttributeError, ImportError, TypeError, ValueError):
        ok = False
    if not ok:
        _log.debug("speed-up %s not applied to %s: the internal it relies on differs", name, target)
        return False
    _applied[name] = target
    return True


def code_names(owner: Any, attribute: str) -> tuple[str, ...]:
    """The global and attribute names that function ``owner.attribute`` uses, or ()."""
    code = getattr(getattr(owner, attribute, None), "__code__", None)
    return tuple(code.co_names) if code is not None else ()


# -- the LightningModule ---------------------------------------------------------------------


def apply_to_module(cls: C) -> C:
    """Class decorator for a LightningModule: ``hook_name`` and ``step_signature``."""
    return stored_step_signature(plain_hook_name(cls))


def plain_hook_name(cls: C) -> C:
    """``hook_name``: Lightning sets ``_current_fx_name`` on the module around every hook it
    calls, dozens of times a step, and ``nn.Module.__setattr__`` looks through the module's
    parameters, buffers and submodules each time; set as a plain attribute instead."""
    if not _gate("hook_name", lightning_sets_hook_name, f"{cls.__qualname__}.__setattr__"):
        return cls
    module_setattr = cls.__setattr__

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            module_setattr(self, name, value)

    cls.__setattr__ = __setattr__  # type: ignore[assignment]
    return cls


def lightning_sets_hook_name() -> bool:
    """Whether Lightning's hook calls set ``_current_fx_name`` (what ``log_hook_name`` assumes)."""
    call = importlib.import_module("lightning.pytorch.trainer.call")
    return all(
        "_current_fx_name" in code_names(call, hook)
        for hook in ("_call_lightning_module_hook", "_call_callback_hooks")
    )


def stored_step_signature(cls: C) -> C:
    """``step_signature``: Lightning inspects ``training_step``'s signature on every step (does
    it take ``batch_idx``?); a stored ``__signature__`` makes ``inspect`` return it at once
    instead of rebuilding it from the code object."""
    step = cls.__dict__.get("training_step")
    target = f"{cls.__qualname__}.training_step"
    if step is None or not _gate("step_signature", lightning_inspects_step, target):
        return cls
    step.__signature__ = inspect.signature(step)
    return cls


def lightning_inspects_step() -> bool:
    """Whether the training loop inspects ``training_step``'s signature on every step."""
    loop = importlib.import_module("lightning.pytorch.loops.training_epoch_loop")
    builds_kwargs = code_names(getattr(loop, "_TrainingEpochLoop", None), "_build_kwargs")
    return "is_param_in_hook_signature" in builds_kwargs and "getfullargspec" in code_names(
        loop, "is_param_in_hook_signature"
    )


# -- the optimizer ---------------------------------------------------------------------------


def optimizer(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """``graph_capture_check`` for ``opt`` where all its parameters are on the CPU: Adam's
    ``step()`` checks that it is not being captured into a CUDA graph, which CPU parameters
    never are, and on a CUDA build of torch without a GPU that check loads NVML on every step
    once Lightning has set ``PYTORCH_NVML_BASED_CUDA_CHECK=1``."""
    on_cpu = all(p.device.type == "cpu" for group in opt.param_groups for p in group["params"])
    if not on_cpu:
        return opt

    def holds() -> bool:
        return callable(getattr(opt, "_accelerator_graph_capture_health_check", None))

    if _gate("graph_capture_check", holds, type(opt).__qualname__):
        opt._accelerator_graph_capture_health_check = no_check  # type: ignore[method-assign]
    return opt


def no_check() -> None:
    """The optimizer's graph-capture health check, skipped: CPU parameters are never captured."""
    return None


# -- the checkpoint callback -----------------------------------------------------------------


def apply_to_checkpoint(cls: C) -> C:
    """Class decorator for a ``ModelCheckpoint`` that saves by epochs only (it refuses
    ``every_n_train_steps`` and ``train_time_interval``): ``state_key`` and
    ``checkpoint_step``."""
    return skipped_checkpoint_step(cached_state_key(cls))


def cached_state_key(cls: C) -> C:
    """``state_key``: Lightning formats the callback's state key (a repr of its settings) around
    every hook it calls; formatted once per callback instead (the settings are fixed when it is
    made)."""
    key = inspect.getattr_static(cls, "state_key", None)
    if not isinstance(key, property) or key.fget is None:
        return cls

    def holds() -> bool:
        return isinstance(inspect.getattr_static(ModelCheckpoint, "state_key"), property)

    if _gate("state_key", holds, f"{cls.__qualname__}.state_key"):
        cached = functools.cached_property(key.fget)
        cached.__set_name__(cls, "state_key")
        cls.state_key = cached  # type: ignore[attr-defined]
    return cls


def skipped_checkpoint_step(cls: C) -> C:
    """``checkpoint_step``: ``ModelCheckpoint.on_train_batch_end`` checks on every step whether
    to save by ``every_n_train_steps`` or ``train_time_interval``; skipped for a callback that
    takes neither."""

    def holds() -> bool:
        names = code_names(ModelCheckpoint, "on_train_batch_end")
        return "_every_n_train_steps" in names and "_train_time_interval" in names

    if _gate("checkpoint_step", holds, f"{cls.__qualname__}.on_train_batch_end"):
        cls.on_train_batch_end = _nothing_per_step  # type: ignore[attr-defined]
    return cls


def _nothing_per_step(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


# -- the progress bar ------------------------------------------------------------------------


def apply_to_progress_bar(cls: C) -> C:
    """Class decorator for a ``TQDMProgressBar`` with an ``interval`` (seconds):
    ``throttled_redraws``."""
    return throttled_redraws(cls)


def throttled_redraws(cls: C) -> C:
    """``throttled_redraws``: Lightning's tqdm bar redraws every ``refresh_rate`` steps, whatever
    their speed, and a redraw costs more than a small model's step; redrawn at most every
    ``interval`` seconds (and at the end of every epoch) instead."""

    def holds() -> bool:
        parameters = list(inspect.signature(TQDMProgressBar._should_update).parameters)
        names = code_names(TQDMProgressBar, "on_train_batch_end")
        return parameters == ["self", "current", "total"] and "_should_update" in names

    if _gate("throttled_redraws", holds, f"{cls.__qualname__}._should_update"):
        cls._last_redraw = 0.0  # type: ignore[attr-defined]
        cls._should_update = _should_update  # type: ignore[attr-defined]
    return cls


def _should_update(self: Any, current: int, total: int | float) -> bool:
    if not self.is_enabled:
        return False
    now = time.monotonic()
    if current == total or now - self._last_redraw >= self.interval:
        self._last_redraw = now
        return True
    return False
