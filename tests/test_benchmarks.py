"""The benchmark scripts' tables and the marked blocks they rewrite."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = "mnist:val_size=100"


# --- the accuracy benchmark's table ------------------------------------------------------------


@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks/accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_accuracy_table(accuracy) -> None:
    epochs = {"mlp": 10, "cnn": 3}
    results = {}
    for act, acc in zip(accuracy.ACTIVATIONS, (0.981, 0.9805, 0.975, 0.979, 0.982), strict=True):
        key = accuracy.run_key("mlp", act, "mnist", 10, 0)
        results[key] = {"test_acc": acc, "train_seconds": 30.4}
    table = accuracy.render_table(results, epochs, 0, "a test machine")
    assert "| mnist | mlp 256-128-100 | 10 | 98.10 % (30 s) | 98.05 % (30 s) |" in table
    assert "97.05 %" in table and "88.3 %" in table and "92.5 %" in table
    assert "| mnist | cnn" in table and "not run" in table
    assert "--mlp-epochs 10 --cnn-epochs 3 --seed 0" in table

    readme = f"intro\n{accuracy.START}\nold table\n{accuracy.END}\nrest\n"
    updated = accuracy.replace_between_markers(readme, "new table")
    assert updated == f"intro\n{accuracy.START}\nnew table\n{accuracy.END}\nrest\n"
    with pytest.raises(ValueError, match="markers"):
        accuracy.replace_between_markers("no markers", "x")


def test_readme_has_the_accuracy_table(accuracy) -> None:
    readme = (ROOT / "README.md").read_text()
    assert accuracy.START in readme and accuracy.END in readme
    assert "python benchmarks/accuracy.py" in readme
