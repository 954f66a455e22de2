"""zoo-snake's own tests: run them with zoo-snake installed next to lightning-zoo."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import zoo
from zoo.cli import cli


def test_snake_is_registered_by_this_distribution() -> None:
    (component,) = zoo.list_activations("snake")
    info = zoo.plugin_of(component)
    assert info is not None
    assert (info.distribution, info.version) == ("zoo-snake", "0.1.0")


def test_snake_values_and_derivative() -> None:
    act = zoo.create_activation("snake:a=0.5,trainable=False")
    x = torch.tensor([-2.0, 0.0, 1.0, 3.0], requires_grad=True)
    y = act(x)
    expected = [v + math.sin(0.5 * v) ** 2 / 0.5 for v in (-2.0, 0.0, 1.0, 3.0)]
    assert y.tolist() == pytest.approx(expected, rel=1e-6)
    (slope,) = torch.autograd.grad(y.sum(), x)
    # d/dx = 1 + sin(2ax)
    assert slope.tolist() == pytest.approx([1 + math.sin(v) for v in (-2.0, 0.0, 1.0, 3.0)])


def test_a_is_trainable_or_fixed() -> None:
    trainable = zoo.create_activation("snake")
    fixed = zoo.create_activation("snake:trainable=False")
    assert [name for name, _ in trainable.named_parameters()] == ["a"]
    assert list(fixed.parameters()) == []


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(zoo.ComponentSpecError, match="'a'"):
        zoo.create_activation("snake:a='big'")
    with pytest.raises(zoo.ComponentSpecError, match="a must be positive"):
        zoo.create_activation("snake:a=0")


def test_snake_composes_with_the_mlp() -> None:
    model = zoo.create_model("mlp", act="snake", input_shape=(1, 28, 28), num_classes=10)
    snakes = [m for m in model.modules() if type(m).__name__ == "Snake"]
    assert len(snakes) == 2 and snakes[0] is not snakes[1]
    out = model(torch.randn(4, 1, 28, 28))
    out.sum().backward()
    assert isinstance(model[2], nn.Module) and model[2].a.grad is not None


def test_command() -> None:
    result = CliRunner().invoke(cli, ["snake", "--a", "1", "--range", "0", "1", "--points", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["0.000", "0.0000", "1.0000"]
    assert float(lines[2].split()[1]) == pytest.approx(1 + math.sin(1) ** 2, abs=1e-4)
