"""Run configurations: a run's config.json reads back as the arguments of zoo.train."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.runs import ConfigError, load_config

CONFIG = {
    "arch": "mlp:hidden=(32,)",
    "act": "tanh",
    "dataset": "mnist:val_size=100",
    "options": {"epochs": 2, "batch_size": 32, "lr": 0.01, "optimizer": "sgd", "seed": 7},
    "versions": {"torch": "2.14.1"},
    "status": "finished",
}


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_a_config_reads_back_as_train_arguments(tmp_path: Path) -> None:
    kwargs = load_config(_write(tmp_path, CONFIG))
    assert kwargs == {
        "arch": "mlp:hidden=(32,)",
        "act": "tanh",
        "dataset": "mnist:val_size=100",
        "epochs": 2,
        "batch_size": 32,
        "lr": 0.01,
        "optimizer": "sgd",
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"options": []}, "'options' must be an object"),
        ({"options": {"epochs": "five"}}, "option 'epochs' expects int"),
        ({"options": {"learning_rate": 0.1}}, "unknown option 'learning_rate'"),
        ({"options": {"output_dir": "/tmp"}}, "unknown option 'output_dir'"),
        ({"act": 3}, "option 'act' expects"),
    ],
)
def test_bad_configs_are_named_errors(tmp_path: Path, data: object, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.json")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300) | st.from_regex(r'\{"options": \{"[a-z_]{1,12}": .{0,20}\}\}'))
def test_any_text_parses_or_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(text)
    try:
        kwargs = load_config(path)
    except ConfigError:
        return
    assert isinstance(kwargs, dict)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=20,
    )
)
def test_any_json_value_parses_or_is_a_config_error(tmp_path: Path, data: object) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(data))
    with contextlib.suppress(ConfigError):
        load_config(path)
