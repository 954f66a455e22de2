"""The ``zoo`` command line, through click's runner and as a real subprocess."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import INTERRUPTED_MESSAGE
from zoo.plugin.registry import KINDS

TRAIN_JSON_KEYS = {
    "test_acc",
    "test_loss",
    "train_seconds",
    "run_dir",
    "checkpoint",
    "arch",
    "act",
    "dataset",
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert zoo.__version__ in result.output


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["list", "--help"]])
def test_help_has_examples(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "zoo " in result.output.split("Examples:")[1]


def test_list_activations_shows_the_original_four_with_summaries(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "activations"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    for name in ("relu", "leakyrelu", "sigmoid", "tanh"):
        assert name in lines
        summary = lines[name].split("built-in", 1)[1].strip()
        assert len(summary) > 10
    assert "Architectures" not in result.output


def test_list_pattern_and_prefix_kind(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "act", "LEAKY*"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()[1:] if line.strip()]
    assert names == ["leakyrelu"]


def test_list_everything_and_pattern_over_all_kinds(runner: CliRunner) -> None:
    everything = runner.invoke(cli, ["list"]).output
    for heading in ("Activations", "Architectures", "Datasets"):
        assert heading in everything
    assert "mlp" in everything and "mnist" in everything
    relus = runner.invoke(cli, ["list", "*relu*"]).output
    assert "leakyrelu" in relus and "relu6" in relus and "sigmoid" not in relus
    assert "none match" in relus  # no architecture or dataset matches *relu*


def test_list_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "--json"])
    rows = json.loads(result.output)
    by_name = {(row["kind"], row["name"]): row for row in rows}
    assert by_name[("activation", "silu")]["aliases"] == ["swish"]
    assert by_name[("architecture", "mlp")]["source"] == "built-in"
    assert by_name[("dataset", "mnist")]["summary"]
    assert {row["kind"] for row in rows} == set(KINDS)


def test_list_bad_kind_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "metrics", "x*"])
    assert result.exit_code == 2
    assert "activations, architectures, datasets, optimizers, schedulers" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--act", "leakyrelu2"], "Did you mean 'leakyrelu'?"),
        (["--act", "leakyrelu:negative_slope=abc"], "negative_slope"),
        (["--act", "leakyrelu:slope=0.1"], "takes no argument 'slope'"),
        (["--arch", "mlpp"], "Did you mean 'mlp'?"),
        (["--arch", "mlp:hidden=(128,"], "unclosed"),
        (["--dataset", "mnits"], "Did you mean 'mnist'"),
        (["--optimizer", "adagard"], "Did you mean 'adagrad'"),
        (["--epochs", "0"], "--epochs"),
    ],
)
def test_train_usage_errors_exit_2_with_an_actionable_message(
    runner: CliRunner, tmp_path: Path, args: list[str], expected: str
) -> None:
    result = runner.invoke(cli, ["train", "--output-dir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_unknown_activation_names_the_list_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["train", "--act", "leakyrelu2"])
    assert "Invalid value for '--act'" in result.output
    assert "zoo list activations" in result.output


def test_train_json_prints_exactly_one_object(
    runner: CliRunner, tiny_mnist: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "mnist:val_size=100",
            "--act",
            "tanh",
            "--epochs",
            "1",
            "--seed",
            "0",
            "--data-dir",
            str(tiny_mnist),
            "--output-dir",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload.keys() >= TRAIN_JSON_KEYS
    assert payload["act"] == "tanh" and payload["arch"] == "mlp"
    assert Path(payload["checkpoint"]).is_file()
    assert payload["test_acc"] > 0.5


def test_train_summary(runner: CliRunner, tiny_mnist: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "train",
            "--dataset",
            "mnist:val_size=100",
            "--max-steps",
            "4",
            "--data-dir",
            str(tiny_mnist),
            "--output-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Test accuracy" in result.output
    assert "Run directory: " + str(tmp_path) in result.output
    assert "best.ckpt" in result.output


def test_plugin_commands_are_added_and_cannot_replace_builtins(runner: CliRunner) -> None:
    class CommandPlugin:
        @zoo.hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command("hello")
            def hello() -> None:
                """Say hello."""
                click.echo("hello from a plugin")

            @cli.command("train")
            def fake_train() -> None:
                click.echo("hijacked")

    name = zoo.register_plugin(CommandPlugin(), name="command-plugin")
    try:
        result = runner.invoke(cli, ["hello"])
        assert result.exit_code == 0
        assert result.stdout.strip() == "hello from a plugin"
        assert "'command-plugin'" in result.stderr
        assert "command 'train' already exists" in result.stderr
        assert "hello" in runner.invoke(cli, ["--help"]).output
        help_text = runner.invoke(cli, ["train", "--help"]).output
        assert "hijacked" not in help_text and "--arch" in help_text
    finally:
        zoo.unregister_plugin(name)
        cli.commands.pop("hello", None)


def test_real_subprocess_json_run(tiny_mnist: Path, tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoo",
            "train",
            "--act",
            "leakyrelu",
            "--dataset",
            "mnist:val_size=100",
            "--epochs",
            "1",
            "--seed",
            "1",
            "--data-dir",
            str(tiny_mnist),
            "--output-dir",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)  # stdout holds the JSON object and nothing else
    assert payload.keys() >= TRAIN_JSON_KEYS
    assert Path(payload["run_dir"]).parent == tmp_path


def test_console_script_usage_error_exit_code() -> None:
    completed = subprocess.run(
        ["zoo", "train", "--act", "leakyrelu2"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 2
    assert "Did you mean 'leakyrelu'?" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_listing_and_help_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from zoo.cli import cli\n"
        "for args in (['--help'], ['list'], ['list', 'activations', 'leaky*']):\n"
        "    try:\n"
        "        cli.main(args, prog_name='zoo', standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'torchvision', 'lightning', 'timm') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert "HEAVY []" in completed.stderr


def test_a_closed_pipe_ends_quietly() -> None:
    # `zoo list | head -1`: the reader stops reading; zoo stops without an error message.
    completed = subprocess.run(
        f"{shlex.quote(sys.executable)} -m zoo list | head -1",
        shell=True, capture_output=True, text=True, timeout=120,
        executable="/bin/bash",
    )  # fmt: skip
    assert completed.stdout.startswith("Activations")
    assert "Error" not in completed.stderr and "Traceback" not in completed.stderr


#: A -p plugin that says it is loading (a file appears), then takes its time: Ctrl-C arrives
#: while `zoo train` starts up, before anything is trained.
_SLOW_START = """
import pathlib, time
import zoo


@zoo.hookimpl
def register_activations(register):
    pathlib.Path({marker!r}).write_text("loading")
    time.sleep(60)
"""


@pytest.mark.parametrize("command", [["train", "--max-steps", "2", "--json"], ["list"]])
def test_ctrl_c_during_start_up_exits_130_with_one_line(
    command: list[str], tmp_path: Path, tiny_mnist: Path
) -> None:
    marker = tmp_path / "loading"
    plugin = tmp_path / "slow_start.py"
    plugin.write_text(_SLOW_START.format(marker=str(marker)))
    extra = ["--data-dir", str(tiny_mnist), "--output-dir", str(tmp_path / "runs")]
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", "-p", str(plugin), *command,
         *(extra if command[0] == "train" else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), process.communicate(timeout=10)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == [INTERRUPTED_MESSAGE], stderr  # no "Aborted!", no traceback
    assert stdout == ""
    assert not (tmp_path / "runs").exists()  # nothing was written
