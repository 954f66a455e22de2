"""One probe of a model, the measuring half of :mod:`zoo.training.diagnostics`: forward hooks on
its activation layers and on the modules holding parameters (:class:`ProbeHooks`), each layer's
units as rows (:func:`by_unit`), the parameters' norms, and the probe batch itself
(:func:`first_samples`)."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

#: Metric-name prefix of everything the diagnostics log.
PREFIX = "diag"

#: A module holding trainable parameters of its own: ``(name, module, parameters)``.
Owner = tuple[str, nn.Module, list[nn.Parameter]]
#: One call of an activation module: ``(label, module, input z, output a)``.
Call = tuple[str, nn.Module, torch.Tensor, torch.Tensor]


def first_samples(batches: Iterable[Any], size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The first ``size`` samples of ``batches`` (``(inputs, targets)`` pairs) as one batch, or
    None if there are none. Making a loader's iterator draws from the global RNG: callers that
    must not change a seeded run read it inside ``torch.random.fork_rng``."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    count = 0
    for batch in batches:
        xs.append(batch[0])
        ys.append(batch[1])
        count += len(batch[0])
        if count >= size:
            break
    if not xs:
        return None
    return torch.cat(xs)[:size], torch.cat(ys)[:size]


def eager() -> contextlib.AbstractContextManager[Any]:
    """Run eagerly inside: a compiled model (torch.compile) would skip the probe's hooks."""
    if "torch._dynamo" not in sys.modules:  # nothing can be compiled; don't import it
        return contextlib.nullcontext()
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()


def by_unit(tensor: torch.Tensor) -> torch.Tensor:
    """(N, C, ...) -> (C, N·...): one row per unit (dimension 1), samples and positions pooled."""
    if tensor.dim() < 2:
        return tensor.reshape(1, -1)
    return tensor.transpose(0, 1).reshape(tensor.shape[1], -1)


def norm(tensors: Sequence[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """The L2 norm of ``tensors`` together (0, on the device of ``like``, for none)."""
    if not tensors:
        return torch.zeros((), device=like.device)
    return torch.linalg.vector_norm(torch.stack([t.float().norm() for t in tensors]))


def parameter_owners(model: nn.Module) -> list[Owner]:
    """The modules of ``model`` holding trainable parameters of their own, in module order."""
    owners = [
        (name, module, [p for p in module.parameters(recurse=False) if p.requires_grad])
        for name, module in model.named_modules()
    ]
    return [(name, module, params) for name, module, params in owners if params]


def parameter_norms(owners: Sequence[Owner], grads: Iterator[Any]) -> dict[str, torch.Tensor]:
    """Per owner, the norm of its parameters' gradients (``grads``, in owner and parameter order;
    None for one the loss does not reach) and of the parameters themselves."""
    values: dict[str, torch.Tensor] = {}
    for name, _, params in owners:
        gs = [next(grads) for _ in params]
        values[f"{PREFIX}/grad_norm/{name}"] = norm([g for g in gs if g is not None], params[0])
        values[f"{PREFIX}/weight_norm/{name}"] = norm(params, params[0])
    return values


class ProbeHooks:
    """Forward hooks for one probe: each call of an activation module, with its input (the
    pre-activation ``z``) and output ``a``, in ``calls``; the order in which the parameter owners
    run in ``parameter_order``. :meth:`remove` takes the hooks off again."""

    def __init__(
        self, activations: Sequence[tuple[str, nn.Module]], owners: Sequence[Owner]
    ) -> None:
        self.calls: list[Call] = []
        self.parameter_order: list[str] = []
        self._pending: dict[int, list[torch.Tensor]] = {}
        self._call_counts: dict[str, int] = {}
        self._handles: list[Any] = []
        for name, module in activations:
            self._handles.append(module.register_forward_pre_hook(self._before))
            self._handles.append(module.register_forward_hook(functools.partial(self._after, name)))
        for name, module, _ in owners:
            self._handles.append(module.register_forward_hook(functools.partial(self._ran, name)))

    def remove(self) -> None:
        """Take every hook off its module."""
        for handle in self._handles:
            handle.remove()

    def _before(self, module: nn.Module, args: tuple[Any, ...]) -> Any:
        if not args or not isinstance(args[0], torch.Tensor):
            return None
        self._pending.setdefault(id(module), []).append(args[0])
        # An in-place activation (ReLU(inplace=True)) must not overwrite the tensor whose
        # gradient we want, so it gets a copy.
        return (args[0].clone(), *args[1:])

    def _after(self, name: str, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        stack = self._pending.get(id(module))
        if not stack or not isinstance(output, torch.Tensor):
            return
        count = self._call_counts[name] = self._call_counts.get(name, 0) + 1
        label = name if count == 1 else f"{name}#{count}"
        if count == 2:  # name the first call #1 too, now that there are several
            self.calls[:] = [(f"{name}#1" if c[0] == name else c[0], *c[1:]) for c in self.calls]
        self.calls.append((label, module, stack.pop(), output))

    def _ran(self, name: str, module: nn.Module, args: Any, output: Any) -> None:
        if name not in self.parameter_order:
            self.parameter_order.append(name)
