"""The built-in cnn architecture: its structure, options and learning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import zoo

ROOT = Path(__file__).resolve().parents[2]
TINY = "mnist:val_size=100"


# --- the cnn -----------------------------------------------------------------------------------


def test_cnn_default_structure() -> None:
    model = zoo.create_model("cnn", act="relu", input_shape=(1, 28, 28), num_classes=10)
    kinds = [type(m).__name__ for m in model]
    stage = ("Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d")
    assert kinds == [*stage, *stage, "Flatten", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.out_channels for m in model if isinstance(m, nn.Conv2d)] == [32, 32, 64, 64]
    assert all(m.bias is None for m in model if isinstance(m, nn.Conv2d))  # BatchNorm has one
    first, last = (m for m in model if isinstance(m, nn.Linear))
    assert first.in_features == 64 * 7 * 7 and last.out_features == 10
    assert {m.p for m in model if isinstance(m, nn.Dropout)} == {0.25}
    assert sum(p.numel() for p in model.parameters()) == 468_010
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)


def test_cnn_options() -> None:
    model = zoo.create_model(
        "cnn:channels=(8,16,32),convs=1,batchnorm=False,dropout=0.0,hidden=20",
        act="leakyrelu:negative_slope=0.2",
        input_shape=(3, 32, 32),
        num_classes=5,
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model)
    assert all(m.bias is not None for m in model if isinstance(m, nn.Conv2d))
    acts = [m for m in model if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and {m.negative_slope for m in acts} == {0.2}
    assert len({id(m) for m in acts}) == 4  # a fresh module per place
    assert {m.p for m in model if isinstance(m, nn.Dropout)} == {0.0}
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    deeper = zoo.create_model("cnn:channels=(8,),convs=3", input_shape=(1, 28, 28), num_classes=2)
    assert sum(isinstance(m, nn.Conv2d) for m in deeper) == 3
    # Inputs too small to pool are not pooled.
    tiny = zoo.create_model("cnn:channels=(4,4,4)", input_shape=(1, 3, 3), num_classes=2)
    assert sum(isinstance(m, nn.MaxPool2d) for m in tiny) == 1
    assert tiny(torch.randn(2, 1, 3, 3)).shape == (2, 2)


@pytest.mark.parametrize(
    "spec",
    ["cnn:channels=()", "cnn:channels=(0,)", "cnn:convs=0", "cnn:dropout=1.0", "cnn:hidden=0"],
)
def test_cnn_bad_options(spec: str) -> None:
    with pytest.raises(zoo.ComponentSpecError):
        zoo.create_model(spec, input_shape=(1, 28, 28), num_classes=10)


def test_cnn_learns_the_tiny_dataset(tiny_mnist: Path, tmp_path: Path) -> None:
    result = zoo.train(
        "cnn:channels=(8,16)",
        act="gelu",
        dataset=TINY,
        epochs=2,
        seed=0,
        data_dir=tiny_mnist,
        output_dir=tmp_path,
        progress=False,
    )
    assert result.test_acc > 0.9
