"""The built-in activation functions, all from ``torch.nn``.

The factories are ``"torch.nn:Class"`` references, so listing them does not import torch.
"""

from __future__ import annotations

import zoo

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


@zoo.hookimpl
def register_activations(register: zoo.Register) -> None:
    for name, class_name, summary, aliases in ACTIVATIONS:
        register(name, f"torch.nn:{class_name}", summary=summary, aliases=aliases)
