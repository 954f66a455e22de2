"""The built-in optimizers: torch.optim's, timm's, and every timm optimizer as ``timm/<name>``.

Every factory keeps weight decay off biases and normalisation layers, as timm's
``create_optimizer_v2`` does (``filter_bias_and_bn``): parameters of one dimension or named
``*.bias``, and those the model's ``no_weight_decay()`` names, go into a group with weight decay 0.
With no weight decay there is one group, of all the parameters.

torch.optim's optimizers are built here directly, with those parameter groups, so that training
with them never imports timm (which costs seconds); Adam, AdamW, SGD and Adagrad get torch's fused
kernel where the parameters' device and dtype have one. timm's own optimizers (``lion``, ``lamb``,
``lars``, ``adan``, ``adabelief``, ``madgrad`` and the ``timm/*`` family) are built by
``timm.optim.create_optimizer_v2`` (:mod:`zoo.plugins.timm_optimizers`).

The named optimizers are one table, :data:`TABLE`: each row names the torch.optim class or timm
optimizer, says what it is, and gives the factory's arguments with their defaults (which
``zoo list`` shows and a spec may set). Nothing here imports torch or timm until an optimizer is
built: ``zoo list`` stays cheap.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import zoo
from zoo.plugins.timm_optimizers import build_timm, timm_optimizer, timm_optimizer_names

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Arguments that may also be ``None`` (their annotation is not their default's type).
_NULLABLE = ("max_grad_norm",)


# -- parameter groups ------------------------------------------------------------------------


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """``model``'s trainable parameters in timm's groups: with ``weight_decay``, one group
    without decay (1-d parameters, ``*.bias``, names matching ``model.no_weight_decay()``) and
    one with it; without, a single group."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not weight_decay:
        return [{"params": [p for _, p in named], "weight_decay": 0.0}]
    exempt = tuple(getattr(model, "no_weight_decay", lambda: ())())
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, parameter in named:
        skip = parameter.ndim <= 1 or name.endswith(".bias")
        skip = skip or any(fnmatch.fnmatch(name, pattern) for pattern in exempt)
        (no_decay if skip else decay).append(parameter)
    groups = []
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    if decay:
        groups.append({"params": decay, "weight_decay": float(weight_decay)})
    return groups


def _betas(betas: Sequence[float], count: int = 2) -> tuple[float, ...]:
    if len(betas) != count or not all(isinstance(b, (int, float)) for b in betas):
        raise ValueError(f"betas must be {count} numbers, e.g. betas=(0.9, 0.999); got {betas!r}")
    return tuple(float(b) for b in betas)


def _torch(
    class_name: str, model: nn.Module, weight_decay: float, fused: bool = False, **options: Any
) -> torch.optim.Optimizer:
    """torch.optim's ``class_name`` over ``model``'s parameter groups; with ``fused``, torch's
    fused kernel where the parameters' device and dtype have one."""
    import torch

    optimizer_class = getattr(torch.optim, class_name)
    groups = parameter_groups(model, weight_decay)
    if fused:
        try:
            return optimizer_class(groups, fused=True, **options)
        except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
            pass
    return optimizer_class(groups, **options)


# -- the table -------------------------------------------------------------------------------


class TableOptimizer:
    """An optimizer factory made from a row of :data:`TABLE`: ``factory(model, lr=..., ...)``
    builds torch.optim's class ``target`` over :func:`parameter_groups` (with torch's fused kernel
    where ``fused`` and the parameters' device and dtype have one), or timm's optimizer
    ``target``. Its signature is ``model`` then ``defaults``, annotated with their types, so
    that specs are checked against it and ``zoo list`` shows its defaults."""

    def __init__(
        self,
        library: str,
        target: str,
        what: str,
        defaults: Mapping[str, Any],
        fused: bool = False,
    ) -> None:
        self.library, self.target, self.what, self.fused = library, target, what, fused
        self.defaults = dict(defaults)
        self.__annotations__ = {k: _annotation(k, v) for k, v in self.defaults.items()}
        positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
        self.__signature__ = inspect.Signature(
            [inspect.Parameter("model", positional)]
            + [
                inspect.Parameter(k, positional, default=v, annotation=self.__annotations__[k])
                for k, v in self.defaults.items()
            ]
        )
        self.__doc__ = f"{what}."

    def __call__(self, model: nn.Module, *args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        bound = self.__signature__.bind(model, *args, **kwargs)
        bound.apply_defaults()
        options = dict(bound.arguments)
        del options["model"]
        lr, weight_decay = options.pop("lr"), options.pop("weight_decay")
        if "betas" in options:
            options["betas"] = _betas(options["betas"], len(self.defaults["betas"]))
        if self.library == "timm":
            return build_timm(self.target, model, lr, weight_decay, **options)
        return _torch(self.target, model, weight_decay, fused=self.fused, lr=lr, **options)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TableOptimizer, (self.library, self.target, self.what, self.defaults, self.fused))

    def __repr__(self) -> str:
        return f"<{self.library} optimizer {self.target}>"


def _annotation(name: str, default: Any) -> Any:
    """The type an argument takes, from its default: numbers are floats, tuples of numbers."""
    if isinstance(default, bool):
        return bool
    if isinstance(default, tuple):
        return tuple[float, ...]
    return float | None if name in _NULLABLE else float


def _torch_row(target: str, what: str, fused: bool = False, **defaults: Any) -> TableOptimizer:
    return TableOptimizer("torch", target, what, defaults, fused)


def _timm_row(target: str, what: str, **defaults: Any) -> TableOptimizer:
    return TableOptimizer("timm", target, what, defaults)


_ADAM = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}

#: The named optimizers: name -> the factory, made from its row (what it builds, what it is,
#: its arguments and their defaults, in the order of its signature).
TABLE: dict[str, TableOptimizer] = {
    "adam": _torch_row("Adam", "torch.optim.Adam, fused kernel", True,
                       **_ADAM, weight_decay=0.0, amsgrad=False),
    "adamw": _torch_row("AdamW", "torch.optim.AdamW, Adam with decoupled weight decay, fused "
                        "kernel", True, **_ADAM, weight_decay=0.01, amsgrad=False),
    "sgd": _torch_row("SGD", "torch.optim.SGD, momentum 0.9 (nesterov=True: Nesterov's), fused "
                      "kernel", True, lr=1e-2, momentum=0.9, nesterov=False, dampening=0.0,
                      weight_decay=0.0),
    "rmsprop": _torch_row("RMSprop", "torch.optim.RMSprop, alpha 0.99", lr=1e-3, alpha=0.99,
                          eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0),
    "adagrad": _torch_row("Adagrad", "torch.optim.Adagrad, fused kernel", True, lr=1e-2,
                          lr_decay=0.0, eps=1e-10, initial_accumulator_value=0.0,
                          weight_decay=0.0),
    "adamax": _torch_row("Adamax", "torch.optim.Adamax, Adam with the infinity norm",
                         **{**_ADAM, "lr": 2e-3}, weight_decay=0.0),
    "nadam": _torch_row("NAdam", "torch.optim.NAdam, Adam with Nesterov momentum",
                        **{**_ADAM, "lr": 2e-3}, momentum_decay=4e-3,
                        decoupled_weight_decay=False, weight_decay=0.0),
    "radam": _torch_row("RAdam", "torch.optim.RAdam, rectified Adam", **_ADAM,
                        decoupled_weight_decay=False, weight_decay=0.0),
    "adadelta": _torch_row("Adadelta", "torch.optim.Adadelta", lr=1.0, rho=0.9, eps=1e-6,
                           weight_decay=0.0),
    "lion": _timm_row("lion", "timm's Lion, the sign of a momentum (Chen et al. 2023)",
                      lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0),
    "lamb": _timm_row("lamb", "timm's LAMB, Adam with layer-wise trust ratios (You et al. 2019)",
                      **{**_ADAM, "eps": 1e-6}, max_grad_norm=1.0, trust_clip=False,
                      weight_decay=0.01),
    # always_adapt: the trust ratio on every parameter, also those without weight decay (timm's
    # own default adapts only where there is weight decay: at lr 1 and no decay, plain SGD).
    "lars": _timm_row("lars", "timm's LARS, SGD with momentum 0.9 scaled by layer-wise trust "
                      "ratios", lr=1.0, momentum=0.9, nesterov=False, trust_coeff=1e-3,
                      trust_clip=False, always_adapt=True, weight_decay=0.0),
    "adan": _timm_row("adan", "timm's Adan, adaptive Nesterov momentum (Xie et al. 2022)",
                      lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, no_prox=False,
                      weight_decay=0.0),
    "adabelief": _timm_row("adabelief", "timm's AdaBelief, Adam scaled by belief in the "
                           "gradient", **{**_ADAM, "eps": 1e-16}, rectify=False,
                           decoupled_decay=True, weight_decay=0.0),
    "madgrad": _timm_row("madgrad", "timm's MADGRAD, momentumized dual averaging (Defazio "
                         "2021)", lr=1e-2, momentum=0.9, eps=1e-6, decoupled_decay=False,
                         weight_decay=0.0),
}  # fmt: skip

#: (name, factory, what it is), in :data:`TABLE`'s order.
OPTIMIZERS: tuple[tuple[str, TableOptimizer, str], ...] = tuple(
    (name, factory, factory.what) for name, factory in TABLE.items()
)


# -- registration ----------------------------------------------------------------------------


def _with_defaults(what: str, factory: Any) -> str:
    """``what``, and the factory's default lr and weight decay (read from its signature)."""
    parameters = inspect.signature(factory).parameters
    lr, decay = (parameters[name].default for name in ("lr", "weight_decay"))
    return f"{what}; lr {lr:g}, weight decay {decay:g}"


@zoo.hookimpl
def register_optimizers(register: zoo.Register) -> None:
    """torch.optim's and timm's optimizers by short names, and every timm one as timm/NAME."""
    for name, factory, what in OPTIMIZERS:
        register(name, factory, summary=_with_defaults(what, factory))
    register(
        "timm/*",
        timm_optimizer,
        summary=_with_defaults(
            "every timm optimizer, by timm's create_optimizer_v2", timm_optimizer
        ),
        members=timm_optimizer_names,
    )
