"""Checks a run's components before anything slow happens: before the data loads and before a
run directory exists, so a bad argument is a usage error naming the component.

The model is first built on the meta device, where it takes no memory, to count its parameters
and refuse one that cannot be trained in the memory the machine has; then the activation and the
model run forward on one dummy batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from zoo.errors import ComponentSpecError, PluginFailure, ZooError
from zoo.plugin.components import create_activation, create_model, resolve
from zoo.plugin.loading import plugin_of
from zoo.plugin.registry import Kind

#: Bytes per parameter while training with Adam in float32: weights, gradients, two moments.
TRAINING_BYTES_PER_PARAMETER = 16


def check_components(arch: str, act: str, input_shape: Sequence[int], num_classes: int) -> None:
    """Raise :class:`ComponentSpecError` if ``act`` or ``arch`` fails on a dummy input, or if
    the model would not fit in the memory this machine has."""
    _run_activation(act)
    parameters = count_parameters(arch, act, input_shape, num_classes)
    available = available_memory()
    if parameters is not None and available is not None:
        needed = parameters * TRAINING_BYTES_PER_PARAMETER
        if needed > available:
            raise ComponentSpecError(
                f"architecture {arch!r} has {parameters:,} parameters: training it needs about "
                f"{_size(needed)} (weights, gradients and optimizer state), and this machine "
                f"has {_size(available)} of memory available. Make it smaller.",
                kind="architecture",
            )
    _run_model(arch, act, input_shape, num_classes)


def _run_activation(act: str) -> None:
    module = create_activation(act)
    try:
        with torch.no_grad():
            module(torch.linspace(-3, 3, 16).view(2, 8))
    except ZooError:
        raise
    except Exception as error:
        raise ComponentSpecError(
            f"activation {act!r} fails on a test input: {_exception(error)} "
            f"({_plugins(('activation', act))})",
            kind="activation",
        ) from None


def count_parameters(
    arch: str, act: str, input_shape: Sequence[int], num_classes: int
) -> int | None:
    """The model's number of parameters, counted on the meta device (None if it cannot be
    built there)."""
    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device("meta"):
                model = create_model(
                    arch, act=act, input_shape=tuple(input_shape), num_classes=num_classes
                )
        except PluginFailure:  # some modules cannot be built on the meta device
            return None
        except ZooError:
            raise
        except Exception:
            return None
    return sum(p.numel() for p in model.parameters())


def _run_model(arch: str, act: str, input_shape: Sequence[int], num_classes: int) -> None:
    with torch.random.fork_rng(devices=[]):
        model = create_model(arch, act=act, input_shape=tuple(input_shape), num_classes=num_classes)
        try:
            with torch.no_grad():
                output = model.eval()(torch.zeros(2, *input_shape))
        except ZooError:
            raise
        except Exception as error:
            raise ComponentSpecError(
                f"architecture {arch!r} with activation {act!r} fails on a dummy batch of shape "
                f"{(2, *input_shape)}: {_exception(error)} "
                f"({_plugins(('architecture', arch), ('activation', act))})",
                kind="architecture",
            ) from None
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, num_classes):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ComponentSpecError(
            f"architecture {arch!r} returns {shape} for a batch of 2, not (2, {num_classes}) "
            f"({_plugins(('architecture', arch))})",
            kind="architecture",
        )


def _exception(error: BaseException) -> str:
    """``RuntimeError: what it says``, on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}{': ' if text else ''}{text}"


def _plugins(*specs: tuple[Kind, str]) -> str:
    """Where components come from, for a message: ``activation 'snake' from plugin 'snake',
    zoo-snake 0.1.0; architecture 'mlp' from plugin 'mlp', built-in``."""
    parts = []
    for kind, spec in specs:
        component, _ = resolve(kind, spec)
        info = plugin_of(component)
        source = f", {info.source}" if info is not None else ""
        parts.append(f"{kind} {component.name!r} from plugin {component.plugin!r}{source}")
    return "; ".join(parts)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), if known."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
