"""Every built-in activation: the right torch module, fresh per call, right values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.plugin.loading import plugin_of
from zoo.plugins.activations import default_activation_class

# The activations of the built-in plugin `activations`: torch.nn's, and `default` (timm's are
# tested in test_timm).
BUILTIN = sorted(c.name for c in zoo.list_activations() if c.plugin == "activations")

# name -> (module class, reference function of the input)
REFERENCES = {
    "relu": (nn.ReLU, F.relu),
    "leakyrelu": (nn.LeakyReLU, lambda x: F.leaky_relu(x, 0.01)),
    "sigmoid": (nn.Sigmoid, torch.sigmoid),
    "tanh": (nn.Tanh, torch.tanh),
    "gelu": (nn.GELU, F.gelu),
    "silu": (nn.SiLU, F.silu),
    "mish": (nn.Mish, F.mish),
    "elu": (nn.ELU, F.elu),
    "selu": (nn.SELU, F.selu),
    "celu": (nn.CELU, F.celu),
    "softplus": (nn.Softplus, F.softplus),
    "hardswish": (nn.Hardswish, F.hardswish),
    "hardsigmoid": (nn.Hardsigmoid, F.hardsigmoid),
    "relu6": (nn.ReLU6, F.relu6),
    "prelu": (nn.PReLU, lambda x: F.prelu(x, torch.tensor([0.25]))),
    "logsigmoid": (nn.LogSigmoid, F.logsigmoid),
    "identity": (nn.Identity, lambda x: x),
    "default": (default_activation_class(), F.relu),  # a ReLU, for architectures of zoo's
}

ORIGINAL_STUDY = ("relu", "leakyrelu", "sigmoid", "tanh")


@pytest.fixture
def x():
    return torch.linspace(-5, 5, 101)


def test_every_builtin_has_a_reference():
    assert len(BUILTIN) >= len(ORIGINAL_STUDY)
    assert set(BUILTIN) == set(REFERENCES)


@pytest.mark.parametrize("name", BUILTIN)
def test_builds_the_right_module(name):
    module = zoo.create_activation(name)
    assert isinstance(module, nn.Module)
    assert type(module) is REFERENCES[name][0]


@pytest.mark.parametrize("name", BUILTIN)
def test_each_call_returns_a_fresh_module(name):
    first = zoo.create_activation(name)
    second = zoo.create_activation(name)
    assert first is not second
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert a is not b


@pytest.mark.parametrize("name", BUILTIN)
def test_output_matches_torch_reference(name, x):
    module = zoo.create_activation(name)
    expected = REFERENCES[name][1](x)
    with torch.no_grad():
        actual = module(x)
    assert actual.shape == x.shape
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("name", BUILTIN)
def test_input_gradient_exists_and_is_finite(name, x):
    x = x.clone().requires_grad_(True)
    zoo.create_activation(name)(x).sum().backward()
    assert x.grad is not None
    assert x.grad.shape == x.shape
    assert torch.isfinite(x.grad).all()


def test_gradient_values_for_original_study(x):
    # d/dx of the four original activations, checked against closed forms.
    grads = {}
    for name in ORIGINAL_STUDY:
        xi = x.clone().requires_grad_(True)
        zoo.create_activation(name)(xi).sum().backward()
        grads[name] = xi.grad
    positive, negative = x > 0, x < 0
    assert (grads["relu"][positive] == 1).all()
    assert (grads["relu"][negative] == 0).all()
    torch.testing.assert_close(grads["leakyrelu"][negative], torch.full_like(x[negative], 0.01))
    s = torch.sigmoid(x)
    torch.testing.assert_close(grads["sigmoid"], s * (1 - s))
    torch.testing.assert_close(grads["tanh"], 1 - torch.tanh(x) ** 2)


def test_relu6_clips_above_six():
    big = torch.tensor([-10.0, 10.0])
    assert zoo.create_activation("relu6")(big).tolist() == [0.0, 6.0]
    assert zoo.create_activation("relu")(big).tolist() == [0.0, 10.0]


def test_prelu_weight_is_learnable_and_starts_at_quarter():
    module = zoo.create_activation("prelu")
    assert module.weight.requires_grad
    assert module.weight.tolist() == [0.25]


@pytest.mark.parametrize("name", ORIGINAL_STUDY)
def test_original_study_activations_are_registered_with_summaries(name):
    (component,) = [c for c in zoo.list_activations() if c.name == name]
    assert plugin_of(component.plugin).source == "built-in"
    assert component.kind == "activation"
    assert component.summary.strip()


def test_every_builtin_has_a_summary():
    for component in zoo.list_activations():
        if component.name in BUILTIN:
            assert component.summary.strip(), component.name


def test_leakyrelu_slope_from_spec(x):
    module = zoo.create_activation("leakyrelu:negative_slope=0.2")
    assert isinstance(module, nn.LeakyReLU)
    assert module.negative_slope == 0.2
    negative = x < 0
    out = module(x)
    torch.testing.assert_close(out[negative], 0.2 * x[negative])
    torch.testing.assert_close(out[~negative], x[~negative])
    assert module(torch.tensor([-5.0])).item() == pytest.approx(-1.0)


def test_leakyrelu_default_slope():
    assert zoo.create_activation("leakyrelu").negative_slope == 0.01


def test_keyword_arguments_override_the_spec():
    module = zoo.create_activation("leakyrelu:negative_slope=0.2", negative_slope=0.3)
    assert module.negative_slope == 0.3
    assert module(torch.tensor([-10.0])).item() == pytest.approx(-3.0)


def test_keyword_arguments_without_spec_arguments():
    module = zoo.create_activation("leakyrelu", negative_slope=0.3)
    assert module.negative_slope == 0.3


def test_component_spec_object_is_accepted():
    module = zoo.create_activation(zoo.ComponentSpec("leakyrelu", {"negative_slope": 0.05}))
    assert module.negative_slope == 0.05


def test_swish_alias_gives_silu(x):
    module = zoo.create_activation("swish")
    assert type(module) is nn.SiLU
    torch.testing.assert_close(module(x), x * torch.sigmoid(x))


def test_gelu_tanh_approximation(x):
    module = zoo.create_activation("gelu:approximate='tanh'")
    assert isinstance(module, nn.GELU)
    assert module.approximate == "tanh"
    out = module(x)
    torch.testing.assert_close(out, F.gelu(x, approximate="tanh"))
    assert not torch.equal(out, F.gelu(x))  # it really is the approximation


def test_elu_alpha(x):
    module = zoo.create_activation("elu:alpha=2")
    torch.testing.assert_close(module(x), F.elu(x, alpha=2.0))
