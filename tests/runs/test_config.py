"""The run configuration: one definition of every option, kept as given, round-tripped through
config.json and the command line, and checked before anything slow happens."""

from __future__ import annotations

import contextlib
import inspect
import json
import math
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo
from zoo.cli.compare import compare_command
from zoo.cli.options import given_options, run_config
from zoo.cli.train import train_command
from zoo.errors import ConfigError, ZooUsageError
from zoo.runs.config import MAX_SEED, RunConfig, field_names, fields, flag, load_config

#: zoo.train's keywords that say where and how a run goes, not what it computes.
RUN_ONLY = ("output_dir", "progress", "trainer_options", "callbacks", "resume")


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def _parse(command: click.Command, args: list[str]) -> RunConfig:
    """The RunConfig that ``zoo train ARGS`` would run, parsed by the real command."""
    with command.make_context(command.name or "", args) as ctx:
        return run_config(ctx.params)


# -- one definition --------------------------------------------------------------------------


def test_zoo_train_takes_exactly_the_run_options_with_the_same_defaults() -> None:
    parameters = inspect.signature(zoo.train).parameters
    assert tuple(parameters)[: len(field_names())] == field_names()
    assert tuple(parameters)[len(field_names()) :] == RUN_ONLY
    for spec in fields():
        assert parameters[spec.name].default == spec.default, spec.name


def test_zoo_train_has_an_option_for_every_field_and_compare_for_all_but_act_and_seed() -> None:
    train_options = {p.name for p in train_command.params}
    assert set(field_names()) <= train_options
    compare_options = {p.name for p in compare_command.params}
    assert set(field_names()) - compare_options == {"act", "seed", "diagnostics"}
    for param in train_command.params:
        if param.name in field_names():
            assert param.opts == [flag(param.name)]
            assert param.default == getattr(RunConfig(), param.name), param.name


def test_defaults_parse_to_the_default_config() -> None:
    assert _parse(train_command, []) == RunConfig()


def test_values_stay_as_given() -> None:
    config = _parse(train_command, ["--dataset", "mnist", "--devices", "2"])
    assert config.dataset == "mnist" and config.devices == "2"
    assert config.data_dir is None and config.num_workers is None and config.lr is None
    assert json.loads(json.dumps(config.to_dict()))["data_dir"] is None


def test_only_options_given_on_the_command_line_count_as_changes() -> None:
    with train_command.make_context("train", ["--epochs", "5", "--act", "gelu"]) as ctx:
        changes = given_options(ctx, ctx.params)
    assert changes == {"epochs": 5, "act": "gelu"}  # --epochs 5 equals the default, but given


# -- round trips -----------------------------------------------------------------------------

configs = st.builds(
    RunConfig,
    arch=st.sampled_from(["mlp", "mlp:hidden=(32,)", "cnn", "mlp:hidden=(8, 8)"]),
    act=st.sampled_from(["relu", "gelu:approximate='tanh'", "leakyrelu:negative_slope=0.2"]),
    dataset=st.sampled_from(["mnist", "mnist:val_size=100", "fashion_mnist"]),
    epochs=st.integers(1, 1000),
    batch_size=st.integers(1, 4096),
    lr=st.none() | st.floats(min_value=1e-9, max_value=10, allow_nan=False),
    optimizer=st.sampled_from(["adam", "adamw", "sgd"]),
    seed=st.none() | st.integers(0, MAX_SEED),
    data_dir=st.none() | st.sampled_from(["/data", "relative/dir", "with space"]),
    accelerator=st.sampled_from(["auto", "cpu", "gpu"]),
    devices=st.sampled_from(["auto", "1", "0,1", "-1"]),
    precision=st.none() | st.sampled_from(["32-true", "bf16-mixed"]),
    max_steps=st.sampled_from([-1, 1, 100]),
    compile=st.booleans(),
    num_workers=st.none() | st.integers(0, 8),
    strategy=st.sampled_from(["auto", "ddp"]),
    num_nodes=st.integers(1, 4),
    diagnostics=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(config=configs)
def test_config_round_trips_through_json(config: RunConfig) -> None:
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@settings(max_examples=300, deadline=None)
@given(config=configs)
def test_config_round_trips_through_the_command_line(config: RunConfig) -> None:
    assert _parse(train_command, config.to_args()) == config


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs)
def test_config_round_trips_through_a_config_file(tmp_path_factory, config: RunConfig) -> None:
    path = tmp_path_factory.mktemp("config") / "config.json"
    path.write_text(json.dumps({"config": config.to_dict(), "status": "finished"}))
    assert load_config(path) == config


# -- checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": -1}, "--seed must be between 0 and"),
        ({"seed": 2**32}, "--seed must be between 0 and"),
        ({"lr": math.nan}, "--lr must be a finite number above 0"),
        ({"lr": math.inf}, "--lr must be a finite number above 0"),
        ({"lr": 0.0}, "--lr must be a finite number above 0"),
        ({"lr": -0.1}, "--lr must be a finite number above 0"),
        ({"epochs": 0}, "--epochs must be between 1 and"),
        ({"batch_size": 0}, "--batch-size must be between 1 and"),
        ({"batch_size": 10**9}, "--batch-size must be between 1 and"),
        ({"max_steps": 0}, "--max-steps must be -1"),
        ({"max_steps": -2}, "--max-steps must be at least -1"),
        ({"num_workers": -1}, "--num-workers must be between 0 and"),
        ({"epochs": "5"}, "--epochs expects int"),
        ({"epochs": True}, "--epochs expects int"),
        ({"compile": 1}, "--compile expects bool"),
        ({"act": None}, "--act expects str"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(changes: dict, message: str) -> None:
    with pytest.raises(ZooUsageError, match=message):
        RunConfig(**changes)


def test_replace_refuses_unknown_options() -> None:
    with pytest.raises(ZooUsageError, match="unknown run option 'learning_rate'"):
        RunConfig().replace(learning_rate=0.1)


# -- config files ----------------------------------------------------------------------------


def test_a_runs_config_json_reads_back(tmp_path: Path) -> None:
    config = RunConfig(arch="mlp:hidden=(32,)", act="tanh", epochs=2, seed=7, lr=0.01)
    record = {"config": config.to_dict(), "status": "finished", "versions": {"torch": "2"}}
    assert load_config(_write(tmp_path, record)) == config
    assert load_config(_write(tmp_path, {"act": "tanh", "epochs": 2})) == RunConfig(
        act="tanh", epochs=2
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"config": []}, "'config' must be an object"),
        ({"epochs": "five"}, "--epochs expects int"),
        ({"learning_rate": 0.1}, "unknown option 'learning_rate'"),
        ({"output_dir": "/tmp"}, "unknown option 'output_dir'"),
        ({"act": 3}, "--act expects str"),
        ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),
        ('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', "unknown option 'a'"),
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
@given(text=st.text(max_size=300) | st.from_regex(r'\{"[a-z_]{1,12}": .{0,20}\}'))
def test_any_text_parses_or_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(text)
    with contextlib.suppress(ConfigError):
        assert isinstance(load_config(path), RunConfig)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=20,
    )
)
def test_any_json_value_parses_or_is_a_config_error(tmp_path: Path, data: object) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(data))
    with contextlib.suppress(ConfigError):
        load_config(path)
