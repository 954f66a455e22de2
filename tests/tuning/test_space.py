"""The search space of ``zoo tune``, parsed in this process: names resolved against a run's
configuration, values applied to it, and each kind of bad expression refused with a message
that names it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from zoo.errors import ZooUsageError
from zoo.runs.config import RunConfig
from zoo.tuning.space import parse_expression, parse_space

CONFIG = RunConfig()


def test_each_kind_parses_and_resolves_its_name() -> None:
    space = parse_space(
        [
            "lr=log(1e-4,1e-1)",
            "weight_decay=log(1e-6,1e-2)",
            "act=choice(relu,tanh,gelu)",
            "batch_size=int(32,256)",
            "dropout=float(0,0.5)",
            "mlp.hidden=choice((128,64),(256,128))",
            "label_smoothing=float(0,0.2,0.05)",
        ],
        CONFIG,
    )
    assert space.describe() == [
        "act=choice(relu,tanh,gelu)",
        "arch.dropout=float(0,0.5)",
        "arch.hidden=choice((128,64),(256,128))",
        "batch_size=int(32,256)",
        "label_smoothing=float(0,0.2,0.05)",
        "lr=log(0.0001,0.1)",
        "optimizer.weight_decay=log(1e-06,0.01)",
    ]


def test_a_trial_s_values_make_a_run_configuration() -> None:
    space = parse_space(
        ["lr=log(1e-4,1e-1)", "optimizer.weight_decay=log(1e-6,1e-2)", "act=choice(relu,tanh)",
         "hidden=choice((128,64),(256,128))", "epochs=choice(1,2)"],
        RunConfig(arch="mlp:dropout=0.1"),
    )  # fmt: skip
    values = {"lr": 0.01, "optimizer.weight_decay": 1e-4, "act": "tanh",
              "arch.hidden": "(256,128)", "epochs": "2"}  # fmt: skip
    config = space.apply(RunConfig(arch="mlp:dropout=0.1"), values)
    assert (config.lr, config.act, config.epochs) == (0.01, "tanh", 2)
    assert config.arch == "mlp:dropout=0.1,hidden=(256, 128)"
    assert config.optimizer == "adam:weight_decay=0.0001"
    # the configuration round-trips through JSON, as best.json and zoo train --config read it
    assert RunConfig.from_dict(config.to_dict()) == config


def test_a_quoted_spec_is_a_choice_with_commas() -> None:
    space = parse_space(["act=choice(relu,'leakyrelu:negative_slope=0.2')"], CONFIG)
    config = space.apply(CONFIG, {"act": "'leakyrelu:negative_slope=0.2'"})
    assert config.act == "leakyrelu:negative_slope=0.2"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("lr=log(1e-4", "is not NAME=KIND(ARGS)"),
        ("lr", "is not NAME=KIND(ARGS)"),
        ("lr=lgo(1e-4,1)", "Did you mean 'log'"),
        ("lr=log(0,1)", "0 < LOW < HIGH"),
        ("lr=float(1,0.5)", "LOW < HIGH"),
        ("lr=log(1e-4,1e-1,2)", "log takes LOW,HIGH"),
        ("lr=float(a,1)", "'a' is not a number"),
        ("batch_size=int(1.5,8)", "int takes whole numbers"),
        ("batch_size=float(16,64)", "takes whole numbers; use int"),
        ("batch_size=int(0,8)", "--batch-size must be between 1"),
        ("act=float(0,1)", "takes a spec, not a number"),
        ("act=choice(relu)", "two or more different values"),
        ("act=choice(relu,,tanh)", "empty value"),
        ("act=choice(relu,nosuch)", "unknown activation 'nosuch'"),
        ("act=choice(relu,(1,2)", "unclosed bracket"),
        ("lrr=log(1e-4,1)", "Did you mean 'lr'"),
        ("hiden=choice((1,),(2,))", "Did you mean 'hidden'"),
        ("mlp.hiden=int(1,2)", "takes no argument 'hiden'. Did you mean 'hidden'"),
        ("mpl.hidden=int(1,2)", "unknown component 'mpl'. Did you mean 'mlp'"),
        ("seed=int(0,3)", "'seed' cannot be searched"),
        ("data_dir=choice(a,b)", "'data_dir' cannot be searched"),
        ("output_dir=choice(a,b)", "'output_dir' cannot be searched"),
        ("resume=choice(a,b)", "'resume' cannot be searched"),
    ],
)
def test_a_bad_expression_is_a_usage_error_naming_it(expression: str, message: str) -> None:
    with pytest.raises(ZooUsageError, match="--search") as raised:
        parse_space([expression], CONFIG)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_name_searched_twice_is_refused() -> None:
    with pytest.raises(ZooUsageError, match=r"'arch\.hidden' is searched twice"):
        parse_space(["hidden=choice((1,),(2,))", "mlp.hidden=choice((3,),(4,))"], CONFIG)


def test_parsing_alone_needs_no_configuration() -> None:
    parameter = parse_expression(" lr = log( 1e-4 , 0.1 ) ")
    assert (parameter.name, parameter.kind, parameter.values) == ("lr", "log", (1e-4, 0.1))


def test_help_and_listing_import_neither_optuna_nor_torch() -> None:
    """``zoo --help``, ``zoo list`` and ``zoo tune --help`` in a fresh interpreter (what the
    command imports is the point)."""
    code = (
        "import sys\n"
        "from zoo.cli import cli\n"
        "for args in (['--help'], ['list'], ['tune', '--help']):\n"
        "    try:\n"
        "        cli.main(args, prog_name='zoo', standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'lightning', 'optuna', 'sqlalchemy') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert "HEAVY []" in completed.stderr
