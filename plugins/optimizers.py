"""The built-in optimizers: torch.optim's, timm's, and every timm optimizer as ``timm/<name>``.

Every factory keeps weight decay off biases and normalisation layers, as timm's
``create_optimizer_v2`` does (``filter_bias_and_bn``): parameters of one dimension or named
``*.bias``, and those the model's ``no_weight_decay()`` names, go into a group with weight decay 0.
With no weight decay there is one group, of all the parameters.

torch.optim's optimizers are built here directly, with those parameter groups, so that training
with them never imports timm (which costs seconds); Adam, AdamW, SGD and Adagrad get torch's fused
kernel where the parameters' device and dtype have one. timm's own optimizers (``lion``, ``lamb``,
``lars``, ``adan``, ``adabelief``, ``madgrad`` and the ``timm/*`` family) are built by
``timm.optim.create_optimizer_v2``.

Nothing here imports torch or timm until an optimizer is built: ``zoo list`` stays cheap, and the
``timm/*`` family's names are read from timm's source, not by importing it.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import importlib.util
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zoo

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The learning rate of a ``timm/<name>`` optimizer when ``--lr`` is not given.
TIMM_FAMILY_LR = 1e-3

#: Packages some timm optimizers need (NVIDIA apex, bitsandbytes): listed only if installed.
_OPTIONAL_PACKAGES = ("apex", "bitsandbytes")


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


# -- torch.optim -----------------------------------------------------------------------------


def adam(
    model: nn.Module,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
) -> torch.optim.Optimizer:
    """torch.optim.Adam, fused where it can be."""
    return _torch(
        "Adam",
        model,
        weight_decay,
        fused=True,
        lr=lr,
        betas=_betas(betas),
        eps=eps,
        amsgrad=amsgrad,
    )


def adamw(
    model: nn.Module,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    amsgrad: bool = False,
) -> torch.optim.Optimizer:
    """torch.optim.AdamW (decoupled weight decay), fused where it can be."""
    return _torch(
        "AdamW",
        model,
        weight_decay,
        fused=True,
        lr=lr,
        betas=_betas(betas),
        eps=eps,
        amsgrad=amsgrad,
    )


def sgd(
    model: nn.Module,
    lr: float = 1e-2,
    momentum: float = 0.9,
    nesterov: bool = False,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """torch.optim.SGD with (classical) momentum, Nesterov's with ``nesterov=True``; fused."""
    return _torch(
        "SGD",
        model,
        weight_decay,
        fused=True,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        dampening=dampening,
    )


def rmsprop(
    model: nn.Module,
    lr: float = 1e-3,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """torch.optim.RMSprop."""
    return _torch(
        "RMSprop",
        model,
        weight_decay,
        lr=lr,
        alpha=alpha,
        eps=eps,
        momentum=momentum,
        centered=centered,
    )


def adagrad(
    model: nn.Module,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    eps: float = 1e-10,
    initial_accumulator_value: float = 0.0,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """torch.optim.Adagrad, fused where it can be."""
    return _torch(
        "Adagrad",
        model,
        weight_decay,
        fused=True,
        lr=lr,
        lr_decay=lr_decay,
        eps=eps,
        initial_accumulator_value=initial_accumulator_value,
    )


def adamax(
    model: nn.Module,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """torch.optim.Adamax."""
    return _torch("Adamax", model, weight_decay, lr=lr, betas=_betas(betas), eps=eps)


def nadam(
    model: nn.Module,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """torch.optim.NAdam."""
    return _torch(
        "NAdam",
        model,
        weight_decay,
        lr=lr,
        betas=_betas(betas),
        eps=eps,
        momentum_decay=momentum_decay,
        decoupled_weight_decay=decoupled_weight_decay,
    )


def radam(
    model: nn.Module,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    decoupled_weight_decay: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """torch.optim.RAdam."""
    return _torch(
        "RAdam",
        model,
        weight_decay,
        lr=lr,
        betas=_betas(betas),
        eps=eps,
        decoupled_weight_decay=decoupled_weight_decay,
    )


def adadelta(
    model: nn.Module,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """torch.optim.Adadelta."""
    return _torch("Adadelta", model, weight_decay, lr=lr, rho=rho, eps=eps)


# -- timm ------------------------------------------------------------------------------------


def _timm(
    opt: str, model: nn.Module, lr: float, weight_decay: float, **options: Any
) -> torch.optim.Optimizer:
    """``timm.optim.create_optimizer_v2(model, opt=opt, ...)``, which keeps weight decay off
    biases and normalisation layers."""
    import timm.optim

    try:
        return timm.optim.create_optimizer_v2(
            model, opt=opt, lr=lr, weight_decay=weight_decay, **options
        )
    except (AssertionError, ImportError) as error:  # CUDA or a package it needs is missing
        raise ValueError(f"timm's {opt!r} cannot be built here: {error}") from error


def lion(
    model: nn.Module,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.99),
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """timm's Lion (Chen et al. 2023)."""
    return _timm("lion", model, lr, weight_decay, betas=_betas(betas))


def lamb(
    model: nn.Module,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
    max_grad_norm: float | None = 1.0,
    trust_clip: bool = False,
    weight_decay: float = 0.01,
) -> torch.optim.Optimizer:
    """timm's LAMB (You et al. 2019)."""
    return _timm(
        "lamb",
        model,
        lr,
        weight_decay,
        betas=_betas(betas),
        eps=eps,
        max_grad_norm=max_grad_norm,
        trust_clip=trust_clip,
    )


def lars(
    model: nn.Module,
    lr: float = 1.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    trust_coeff: float = 1e-3,
    trust_clip: bool = False,
    always_adapt: bool = True,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """timm's LARS (You et al. 2017). ``always_adapt``: the trust ratio on every parameter, also
    those without weight decay (timm's own default adapts only where there is weight decay, which
    at lr 1 and no decay is plain SGD at lr 1)."""
    return _timm(
        "lars",
        model,
        lr,
        weight_decay,
        momentum=momentum,
        nesterov=nesterov,
        trust_coeff=trust_coeff,
        trust_clip=trust_clip,
        always_adapt=always_adapt,
    )


def adan(
    model: nn.Module,
    lr: float = 1e-3,
    betas: tuple[float, float, float] = (0.98, 0.92, 0.99),
    eps: float = 1e-8,
    no_prox: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """timm's Adan (Xie et al. 2022)."""
    return _timm("adan", model, lr, weight_decay, betas=_betas(betas, 3), eps=eps, no_prox=no_prox)


def adabelief(
    model: nn.Module,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-16,
    rectify: bool = False,
    decoupled_decay: bool = True,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """timm's AdaBelief (Zhuang et al. 2020)."""
    return _timm(
        "adabelief",
        model,
        lr,
        weight_decay,
        betas=_betas(betas),
        eps=eps,
        rectify=rectify,
        decoupled_decay=decoupled_decay,
    )


def madgrad(
    model: nn.Module,
    lr: float = 1e-2,
    momentum: float = 0.9,
    eps: float = 1e-6,
    decoupled_decay: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """timm's MADGRAD (Defazio & Jelassi 2021)."""
    return _timm(
        "madgrad",
        model,
        lr,
        weight_decay,
        momentum=momentum,
        eps=eps,
        decoupled_decay=decoupled_decay,
    )


def timm_optimizer(
    name: str,
    /,
    model: nn.Module,
    lr: float = TIMM_FAMILY_LR,
    weight_decay: float = 0.0,
    **options: Any,
) -> torch.optim.Optimizer:
    """timm's optimizer ``name`` by ``timm.optim.create_optimizer_v2``; ``options`` go to it as
    they are (``betas=(0.9, 0.95)``, ``momentum=0.9``)."""
    return _timm(name, model, lr, weight_decay, **options)


@functools.cache
def timm_optimizer_names() -> dict[str, str]:
    """Every optimizer timm lists, with its description, less the second-order ones and those
    whose package (apex, bitsandbytes) is not installed.

    Read from timm's ``optim/_optim_factory.py`` with ``ast``, without importing timm (or torch);
    a test checks the result against ``timm.optim.list_optimizers()``. If the source cannot be
    read, timm is imported and asked.
    """
    spec = importlib.util.find_spec("timm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "optim" / "_optim_factory.py"
        try:
            found = _read_timm_registry(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        if found:
            return found
    return _ask_timm()


def _read_timm_registry(source: str) -> dict[str, str]:
    """The ``OptimInfo(name=..., description=...)`` entries and ``register_alias`` calls of
    timm's optimizer registry: name -> summary."""
    infos: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func.attr if isinstance(node.func, ast.Attribute) else None
        callee = node.func.id if isinstance(node.func, ast.Name) else callee
        if callee == "OptimInfo":
            fields = dict(zip(("name", "opt_class", "description"), node.args, strict=False))
            fields.update({k.arg: k.value for k in node.keywords if k.arg})
            values = {
                k: ast.literal_eval(v)
                for k, v in fields.items()
                if k in ("name", "description", "second_order")
                or (k == "opt_class" and isinstance(v, ast.Constant))
            }
            infos[str(values["name"]).lower()] = values
        elif callee == "register_alias" and len(node.args) == 2:
            alias, target = (ast.literal_eval(a) for a in node.args)
            aliases[str(alias).lower()] = str(target).lower()
    for alias, target in aliases.items():
        infos[alias] = infos[target]
    return {name: _family_summary(info) for name, info in sorted(infos.items()) if _usable(info)}


def _usable(info: dict[str, Any]) -> bool:
    # A second-order optimizer (adahessian) needs backward(create_graph=True), which
    # Lightning's training step does not do.
    if info.get("second_order"):
        return False
    opt_class = info.get("opt_class")
    root = opt_class.split(".", 1)[0] if isinstance(opt_class, str) else ""
    return root not in _OPTIONAL_PACKAGES or importlib.util.find_spec(root) is not None


def _family_summary(info: dict[str, Any]) -> str:
    description = str(info.get("description") or "timm optimizer").rstrip(".")
    return f"{description} (timm); lr {TIMM_FAMILY_LR:g}, weight decay 0"


def _ask_timm() -> dict[str, str]:
    import timm.optim

    names: dict[str, str] = {}
    for name in timm.optim.list_optimizers():
        info = timm.optim.get_optimizer_info(name)
        entry = {"description": info.description, "second_order": info.second_order}
        entry["opt_class"] = info.opt_class if isinstance(info.opt_class, str) else None
        if _usable(entry):
            names[name] = _family_summary(entry)
    return names


# -- registration ----------------------------------------------------------------------------

#: (name, factory, what it is); ``zoo list`` adds the defaults of lr and weight decay.
OPTIMIZERS: tuple[tuple[str, Any, str], ...] = (
    ("adam", adam, "torch.optim.Adam, fused kernel"),
    ("adamw", adamw, "torch.optim.AdamW, Adam with decoupled weight decay, fused kernel"),
    ("sgd", sgd, "torch.optim.SGD, momentum 0.9 (nesterov=True: Nesterov's), fused kernel"),
    ("rmsprop", rmsprop, "torch.optim.RMSprop, alpha 0.99"),
    ("adagrad", adagrad, "torch.optim.Adagrad, fused kernel"),
    ("adamax", adamax, "torch.optim.Adamax, Adam with the infinity norm"),
    ("nadam", nadam, "torch.optim.NAdam, Adam with Nesterov momentum"),
    ("radam", radam, "torch.optim.RAdam, rectified Adam"),
    ("adadelta", adadelta, "torch.optim.Adadelta"),
    ("lion", lion, "timm's Lion, the sign of a momentum (Chen et al. 2023)"),
    ("lamb", lamb, "timm's LAMB, Adam with layer-wise trust ratios (You et al. 2019)"),
    ("lars", lars, "timm's LARS, SGD with momentum 0.9 scaled by layer-wise trust ratios"),
    ("adan", adan, "timm's Adan, adaptive Nesterov momentum (Xie et al. 2022)"),
    ("adabelief", adabelief, "timm's AdaBelief, Adam scaled by belief in the gradient"),
    ("madgrad", madgrad, "timm's MADGRAD, momentumized dual averaging (Defazio 2021)"),
)


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
