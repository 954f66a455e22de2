"""The MLP architecture, built through zoo.create_model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.plugin.components import resolve

MNIST_SHAPE = (1, 28, 28)


def linears(model):
    return [m for m in model if isinstance(m, nn.Linear)]


def test_original_study_mlp_exactly():
    model = zoo.create_model(
        "mlp", act="leakyrelu:negative_slope=0.2", input_shape=MNIST_SHAPE, num_classes=10
    )
    assert type(model) is nn.Sequential
    assert [type(m) for m in model] == [
        nn.Flatten,
        nn.Linear,
        nn.LeakyReLU,
        nn.Linear,
        nn.LeakyReLU,
        nn.Linear,
        nn.LogSoftmax,
    ]
    assert [(m.in_features, m.out_features) for m in linears(model)] == [
        (784, 128),
        (128, 64),
        (64, 10),
    ]
    assert all(m.bias is not None for m in linears(model))
    assert model[2].negative_slope == 0.2
    assert model[4].negative_slope == 0.2
    assert model[2] is not model[4]
    assert model[6].dim == 1
    assert model[0].start_dim == 1


def test_default_activation_is_relu():
    model = zoo.create_model("mlp", input_shape=MNIST_SHAPE, num_classes=10)
    assert [type(model[2]), type(model[4])] == [nn.ReLU, nn.ReLU]


def test_activation_as_component_spec():
    act = zoo.ComponentSpec("elu", {"alpha": 0.5})
    model = zoo.create_model("mlp", act=act, input_shape=MNIST_SHAPE, num_classes=10)
    assert [m.alpha for m in model if isinstance(m, nn.ELU)] == [0.5, 0.5]


def test_prelu_activations_do_not_share_weights():
    model = zoo.create_model("mlp", act="prelu", input_shape=MNIST_SHAPE, num_classes=10)
    prelus = [m for m in model if isinstance(m, nn.PReLU)]
    assert len(prelus) == 2
    assert prelus[0].weight is not prelus[1].weight


@pytest.mark.parametrize(
    ("spec", "kwargs", "widths"),
    [
        ("mlp:hidden=(256,128,32)", {}, [(784, 256), (256, 128), (128, 32), (32, 10)]),
        ("mlp:hidden=[50]", {}, [(784, 50), (50, 10)]),
        ("mlp", {"hidden": (256, 128, 32)}, [(784, 256), (256, 128), (128, 32), (32, 10)]),
        ("mlp:hidden=(8,)", {"hidden": (16, 4)}, [(784, 16), (16, 4), (4, 10)]),
    ],
)
def test_hidden_sizes(spec, kwargs, widths):
    model = zoo.create_model(spec, input_shape=MNIST_SHAPE, num_classes=10, **kwargs)
    assert [(m.in_features, m.out_features) for m in linears(model)] == widths
    activations = [m for m in model if isinstance(m, nn.ReLU)]
    assert len(activations) == len(widths) - 1


def test_three_hidden_layers():
    model = zoo.create_model("mlp:hidden=(256,128,32)", input_shape=MNIST_SHAPE, num_classes=10)
    assert len(model) == 1 + 2 * 3 + 2


def test_no_hidden_layers_is_a_single_linear():
    model = zoo.create_model("mlp:hidden=()", act="tanh", input_shape=MNIST_SHAPE, num_classes=10)
    assert [type(m) for m in model] == [nn.Flatten, nn.Linear, nn.LogSoftmax]
    assert (model[1].in_features, model[1].out_features) == (784, 10)


def test_colour_input_shape():
    model = zoo.create_model("mlp", input_shape=(3, 32, 32), num_classes=10)
    assert model[1].in_features == 3072
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("num_classes", [2, 3, 100])
def test_num_classes(num_classes):
    model = zoo.create_model("mlp", input_shape=MNIST_SHAPE, num_classes=num_classes)
    assert linears(model)[-1].out_features == num_classes


def test_output_is_log_probabilities():
    torch.manual_seed(0)
    model = zoo.create_model("mlp", act="leakyrelu", input_shape=MNIST_SHAPE, num_classes=7)
    batch = torch.randn(5, *MNIST_SHAPE)
    with torch.no_grad():
        out = model(batch)
    assert out.shape == (5, 7)
    assert (out <= 0).all()
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(5))


@pytest.mark.parametrize("hidden", ["(0,)", "(128,0)", "(-1,)", "(64,-32)", "(True,)"])
def test_non_positive_hidden_size_is_refused(hidden):
    with pytest.raises(zoo.ComponentSpecError) as info:
        zoo.create_model(f"mlp:hidden={hidden}", input_shape=MNIST_SHAPE, num_classes=10)
    assert "'mlp'" in str(info.value)
    assert "hidden" in str(info.value)


@pytest.mark.parametrize("hidden", ["'abc'", "(64.5,)", "('a',)"])
def test_wrong_hidden_type_is_refused_when_built(hidden):
    with pytest.raises(zoo.ComponentSpecError, match="'mlp'"):
        zoo.create_model(f"mlp:hidden={hidden}", input_shape=MNIST_SHAPE, num_classes=10)


@pytest.mark.parametrize("hidden", ["'abc'", "(64.5,)", "('a',)"])
def test_wrong_hidden_type_is_refused_when_resolved(hidden):
    # zoo.train resolves its specs before doing anything slow; hidden is annotated
    # Sequence[int], so a value of the wrong type must be caught then, naming the argument.
    with pytest.raises(zoo.ComponentSpecError, match="'hidden'"):
        resolve("architecture", f"mlp:hidden={hidden}")


def test_unknown_mlp_argument_lists_hidden():
    with pytest.raises(zoo.ComponentSpecError) as info:
        zoo.create_model("mlp:depth=3", input_shape=MNIST_SHAPE, num_classes=10)
    assert "'depth'" in str(info.value)
    assert "hidden" in str(info.value)


def test_bad_activation_fails_before_building():
    with pytest.raises(zoo.UnknownComponentError):
        zoo.create_model("mlp", act="leakyrelu2", input_shape=MNIST_SHAPE, num_classes=10)
    with pytest.raises(zoo.ComponentSpecError, match="'negative_slope'"):
        zoo.create_model(
            "mlp", act="leakyrelu:negative_slope='x'", input_shape=MNIST_SHAPE, num_classes=10
        )


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"input_shape": MNIST_SHAPE}, {"num_classes": 10}],
    ids=["neither", "no-num-classes", "no-input-shape"],
)
def test_shape_and_classes_are_required_without_dataset(kwargs):
    with pytest.raises(zoo.ComponentSpecError, match="input_shape and num_classes"):
        zoo.create_model("mlp", **kwargs)


@pytest.mark.parametrize("shape", [(784,), (28, 28), (1, 1, 28, 28)])
def test_input_shape_must_have_three_dimensions(shape):
    with pytest.raises(zoo.ComponentSpecError, match="input_shape"):
        zoo.create_model("mlp", input_shape=shape, num_classes=10)


def test_shape_and_classes_from_datamodule(tiny_mnist):
    datamodule = zoo.create_datamodule("mnist", data_dir=tiny_mnist)
    model = zoo.create_model("mlp", dataset=datamodule)
    assert model[1].in_features == 784
    assert linears(model)[-1].out_features == 10
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_explicit_arguments_win_over_datamodule(tiny_mnist):
    datamodule = zoo.create_datamodule("mnist", data_dir=tiny_mnist)
    model = zoo.create_model("mlp", dataset=datamodule, num_classes=4)
    assert model[1].in_features == 784
    assert linears(model)[-1].out_features == 4


def test_dataset_given_as_spec(tiny_mnist, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tiny_mnist))
    model = zoo.create_model("mlp:hidden=(32,)", dataset="mnist")
    assert [(m.in_features, m.out_features) for m in linears(model)] == [(784, 32), (32, 10)]
