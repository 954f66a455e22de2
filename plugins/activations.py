"""The built-in activation functions: those of ``torch.nn``, and ``default``.

The factories are ``"module:Class"`` references (``"torch.nn:Class"`` for torch's), so listing
them does not import torch. ``default`` is the architecture's own activation: timm models keep
theirs (:mod:`zoo.plugins.timm_models` recognises it), ``mlp`` and ``cnn`` get a ReLU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import zoo

if TYPE_CHECKING:
    from torch import nn

# (name, torch.nn class, summary, aliases)
ACTIVATIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("relu", "ReLU", "Rectified linear unit, max(0, x): the default; its units can die", ()),
    ("leakyrelu", "LeakyReLU", "max(0, x) + negative_slope·min(0, x): ReLU that cannot die", ()),
    ("sigmoid", "Sigmoid", "Logistic 1/(1+e^-x), in (0, 1): saturates, gradients vanish", ()),
    ("tanh", "Tanh", "Hyperbolic tangent, in (-1, 1): zero-centred, still saturates", ()),
    ("gelu", "GELU", "Gaussian error linear unit, x·Φ(x) (approximate='tanh' optional)", ()),
    ("silu", "SiLU", "Sigmoid linear unit (swish), x·sigmoid(x)", ("swish",)),
    ("mish", "Mish", "x·tanh(softplus(x)), smooth and non-monotonic", ()),
    ("elu", "ELU", "Exponential linear unit: x, or alpha·(e^x - 1) below zero", ()),
    ("selu", "SELU", "Scaled ELU with self-normalising constants", ()),
    ("celu", "CELU", "Continuously differentiable ELU with parameter alpha", ()),
    ("softplus", "Softplus", "Smooth ReLU, log(1 + e^(beta·x))/beta", ()),
    ("hardswish", "Hardswish", "Piecewise-linear swish, x·relu6(x+3)/6 (MobileNetV3)", ()),
    ("hardsigmoid", "Hardsigmoid", "Piecewise-linear sigmoid, relu6(x+3)/6", ()),
    ("relu6", "ReLU6", "ReLU clipped at 6, min(max(0, x), 6)", ()),
    ("prelu", "PReLU", "Leaky ReLU whose negative slope is learned", ()),
    ("logsigmoid", "LogSigmoid", "log(sigmoid(x)), always negative", ()),
    ("identity", "Identity", "No activation at all: the network stays linear", ()),
)


def default_activation_class() -> type[nn.Module]:
    """The class of ``--act default``, a ``torch.nn.ReLU`` subclass that architectures with
    activations of their own recognise (``isinstance``) and keep theirs for."""
    # It subclasses torch's ReLU, so it is defined on first use, not at import; it is then a
    # module attribute like any class (importable, picklable).
    cls: type[nn.Module] | None = globals().get("DefaultActivation")
    if cls is None:
        from torch import nn

        class DefaultActivation(nn.ReLU):
            """``--act default``: the architecture's own activation. timm models keep theirs;
            architectures that take their activation from zoo (mlp, cnn) get a ReLU."""

        DefaultActivation.__qualname__ = "DefaultActivation"
        globals()["DefaultActivation"] = cls = DefaultActivation
    return cls


def __getattr__(name: str) -> Any:
    if name == "DefaultActivation":
        return default_activation_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@zoo.hookimpl
def register_activations(register: zoo.Register) -> None:
    for name, class_name, summary, aliases in ACTIVATIONS:
        register(name, f"torch.nn:{class_name}", summary=summary, aliases=aliases)
    register(
        "default",
        "zoo.plugins.activations:DefaultActivation",
        summary="The architecture's own activation: timm models keep theirs (needed for those "
        "without act_layer); mlp and cnn use ReLU",
    )
