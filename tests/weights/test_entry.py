"""Weights entries: read from JSON and checked, written back the same; absurd ones refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.weights.entry import from_dict, human, read_weights_manifest
from zoo.weights.errors import WeightsError

ENTRY = {
    "name": "mlp-tanh.mnist",
    "arch": "mlp",
    "act": "tanh",
    "dataset": {
        "name": "mnist",
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "class_names": [str(i) for i in range(10)],
        "mean": [0.1307],
        "std": [0.3081],
    },
    "location": "pkg:zoo.weights/files/x.safetensors",
    "sha256": "0" * 64,
    "file_size": 437976,
    "num_params": 109386,
    "flops": 218368,
    "metrics": {"test_acc": 0.97},
    "command": "zoo train --act tanh",
}


def test_an_entry_round_trips_through_json() -> None:
    entry = from_dict(ENTRY, "test")
    assert entry.accuracy == 0.97
    assert entry.dataset.input_shape == (1, 28, 28)
    again = from_dict(json.loads(json.dumps(entry.to_dict())), "again")
    assert again == entry
    assert entry() is entry  # an entry is its own factory
    assert "test acc 97.00%" in entry.describe() and "109.4k params" in entry.describe()


def test_human_sizes() -> None:
    assert human(999) == "999"
    assert human(109386) == "109.4k"
    assert human(437976) == "438.0k"
    assert human(3 * 10**9) == "3.0G"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "../evil"}, "is not a weights name"),
        ({"sha256": "abc"}, "sha256 must be 64"),
        ({"arch": ""}, "'arch' must be a non-empty string"),
        ({"num_params": -1}, "'num_params' must be an integer"),
        ({"metrics": {"test_acc": "high"}}, "metrics must map names to numbers"),
        ({"format": 99}, "unknown weights format"),
        ({"dataset": {**ENTRY["dataset"], "input_shape": [1, 10**6, 10**6]}}, "input_shape"),
        ({"dataset": {**ENTRY["dataset"], "input_shape": [1, 28]}}, "input_shape"),
        ({"dataset": {**ENTRY["dataset"], "num_classes": 10**9}}, "'num_classes'"),
        ({"dataset": {**ENTRY["dataset"], "class_names": ["a"]}}, "1 class_names for 10"),
        ({"dataset": {**ENTRY["dataset"], "std": [0.0]}}, "std above 0"),
        ({"dataset": {**ENTRY["dataset"], "mean": [0.1, 0.2]}}, "mean must be 1 finite"),
        ({"dataset": "mnist"}, "'dataset' must be an object"),
    ],
)
def test_absurd_entries_are_refused_in_one_line(change: dict, message: str) -> None:
    with pytest.raises(WeightsError, match=message) as caught:
        from_dict({**ENTRY, **change}, "config.json")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("config.json: ")


def test_a_manifest_must_be_a_list(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(ENTRY))
    with pytest.raises(WeightsError, match="must hold a JSON list"):
        read_weights_manifest(path)
    path.write_text("[{")
    with pytest.raises(WeightsError, match="cannot read weights manifest"):
        read_weights_manifest(path)
    path.write_text(json.dumps([ENTRY]))
    assert [e.name for e in read_weights_manifest(path)] == ["mlp-tanh.mnist"]
