"""The ``zoo`` command group: plugin controls, plugin commands, and errors as click errors."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

import zoo
from zoo.cli.compare import compare_command
from zoo.cli.export import export_command
from zoo.cli.hub import push_command
from zoo.cli.listing import list_command
from zoo.cli.manage import install_command, new_plugin_command, uninstall_command
from zoo.cli.plot import plot_command
from zoo.cli.plugins import plugins_command
from zoo.cli.runs import evaluate_command, predict_command, runs_command
from zoo.cli.train import train_command
from zoo.cli.tune import tune_command
from zoo.errors import (
    INTERRUPTED_MESSAGE,
    ComponentSpecError,
    PluginFailure,
    TrainingInterrupted,
    UnknownComponentError,
    ZooError,
    ZooUsageError,
)
from zoo.plugin.commands import add_commands
from zoo.plugin.loading import PluginHost, configure_plugins, get_host, plugin_of
from zoo.text import printable

_OPTION_OF_KIND = {
    "activation": "--act", "architecture": "--arch", "dataset": "--dataset",
    "optimizer": "--optimizer", "scheduler": "--scheduler", "augmentation": "--augment",
    "logger": "--logger",
}  # fmt: skip


#: Exceptions click reports (or exits with) itself; they pass through ZooGroup.invoke.
_CLICK_EXCEPTIONS = (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"zoo.{param.name}"] = value
    return value


def _traceback_wanted(ctx: click.Context) -> bool:
    """``--traceback`` or ``ZOO_TRACEBACK=1``: let errors through with their traceback."""
    if ctx.find_root().meta.get("zoo.traceback"):
        return True
    return os.environ.get("ZOO_TRACEBACK", "").strip().lower() in {"1", "true", "yes", "on"}


def _message(error: BaseException) -> str:
    """An error's message, safe to print (control characters escaped, newlines kept)."""
    return printable(str(error), newlines=True)


class ZooGroup(click.Group):
    """Applies ``-p``/``--strict-plugins`` before any command is looked up, adds the commands of
    plugins, and turns errors into click errors: usage errors exit with 2, others with 1, with
    one message and no traceback (unless ``--traceback`` or ``ZOO_TRACEBACK=1``)."""

    def _host(self, ctx: click.Context) -> PluginHost:
        root = ctx.find_root()
        try:
            if not root.meta.get("zoo.configured"):
                root.meta["zoo.configured"] = True
                plugins = root.meta.get("zoo.plugins") or ()
                strict = root.meta.get("zoo.strict_plugins") or None
                if plugins or strict:
                    configure_plugins(
                        plugins=[p for p in plugins if not p.startswith("no:")],
                        block=[p.removeprefix("no:") for p in plugins if p.startswith("no:")],
                        strict=strict,
                    )
            host = get_host()
            add_commands(host, self)
        except ZooError as error:
            if _traceback_wanted(ctx):
                raise
            raise _click_error(error) from error
        return host

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._host(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        host = self._host(ctx)
        if cmd_name == "list":  # exploring what is there: say what makes zoo slow to start
            host.warn_slow_plugins()
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Built-in commands first, then each plugin's commands under its name."""
        host = self._host(ctx)
        host.warn_slow_plugins()
        sections: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            command = self.commands[name]
            if command.hidden:
                continue
            plugin = host.command_plugins.get(name)
            title = "Commands" if plugin is None else f"Commands from plugin {plugin}"
            sections.setdefault(title, []).append((name, command.get_short_help_str(60)))
        for title, rows in sections.items():
            with formatter.section(title):
                formatter.write_dl(rows)

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        """Parsing the arguments loads the plugins (``--help`` lists their commands): Ctrl-C
        there exits with 130 too."""
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            _interrupted()

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _interrupted()
        except click.exceptions.Abort as error:  # Ctrl-C at a prompt, which click turns into this
            if isinstance(error.__context__, KeyboardInterrupt):
                _interrupted()
            raise
        except _CLICK_EXCEPTIONS:
            raise
        except TrainingInterrupted as error:
            click.echo(f"Interrupted: {_message(error)}", err=True)
            ctx.exit(128 + error.signum)  # the shell's convention for death by a signal
        except BrokenPipeError:  # `zoo list | head`: the reader has all it wanted
            # Python would report the pipe again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)  # the shell's code for death by SIGPIPE
        except Exception as error:
            if _traceback_wanted(ctx):
                raise
            raise _click_error(error) from error


def _interrupted() -> NoReturn:
    """Ctrl-C outside a run's training loop (which stops at a step boundary by itself): one
    line on stderr, and 130, the shell's status for death by SIGINT, not click's "Aborted!"."""
    click.echo(f"\n{INTERRUPTED_MESSAGE}", err=True)
    sys.exit(130)


def _click_error(error: Exception) -> click.ClickException:
    """The click error that reports ``error``: usage errors exit with 2, others with 1."""
    if isinstance(error, (UnknownComponentError, ComponentSpecError)):
        option = _OPTION_OF_KIND.get(error.kind or "")
        prefix = f"Invalid value for '{option}': " if option else ""
        return click.UsageError(prefix + _message(error))
    if isinstance(error, ZooUsageError):
        return click.UsageError(_message(error))
    if isinstance(error, PluginFailure):  # named with its plugin's source, and how to dig in
        return click.ClickException(
            printable(error.message(plugin_of(error.component)))
            + "\n(an error in the plugin's code: rerun with --traceback or ZOO_TRACEBACK=1 for "
            "the traceback)"
        )
    if isinstance(error, ZooError):
        return click.ClickException(_message(error))
    # A bug, or a plugin's: one line, and how to get the traceback for a report.
    message = printable(str(error).strip())
    return click.ClickException(
        f"{type(error).__name__}{': ' if message else ''}{message} "
        "(rerun with --traceback or ZOO_TRACEBACK=1 for the traceback)"
    )


@click.group(
    cls=ZooGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  zoo train --arch mlp --act leakyrelu
  zoo train --act 'leakyrelu:negative_slope=0.2' --epochs 1 --json
  zoo list activations 'leaky*'
  zoo -p ./my_plugin.py list activations
  zoo -p no:mnist plugins
""",
)
@click.version_option(zoo.__version__, "-V", "--version", package_name="lightning-zoo")
@click.option(
    "-p",
    "--plugin",
    "plugins",
    multiple=True,
    metavar="NAME",
    is_eager=True,
    expose_value=False,
    callback=_remember,
    help="Load a plugin module (import name or path to a .py file); "
    "'no:NAME' blocks a plugin, built-ins included. Repeatable.",
)
@click.option(
    "--strict-plugins",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_remember,
    help="Fail if any plugin fails to load or conflicts [env: ZOO_STRICT_PLUGINS=1].",
)
@click.option(
    "--traceback",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_remember,
    help="Show the full Python traceback of an error, for a bug report [env: ZOO_TRACEBACK=1].",
)
def cli() -> None:
    """lightning-zoo: compose an architecture, an activation and a dataset into a
    PyTorch Lightning training run. Components come from plugins; `zoo list` shows them."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="zoo")


cli.add_command(train_command)
cli.add_command(list_command)
cli.add_command(plugins_command)
cli.add_command(compare_command)
cli.add_command(tune_command)
cli.add_command(plot_command)
cli.add_command(runs_command)
cli.add_command(evaluate_command)
cli.add_command(predict_command)
cli.add_command(export_command)
cli.add_command(push_command)
cli.add_command(install_command)
cli.add_command(uninstall_command)
cli.add_command(new_plugin_command)
