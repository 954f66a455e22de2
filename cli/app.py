"""The ``zoo`` command group: errors become click errors, plugins add commands lazily."""

from __future__ import annotations

from typing import Any

import click

import zoo
from zoo.cli.listing import list_command
from zoo.cli.train import train_command
from zoo.errors import ComponentSpecError, UnknownComponentError, ZooError, ZooUsageError

_OPTION_OF_KIND = {"activation": "--act", "architecture": "--arch", "dataset": "--dataset"}


class ZooGroup(click.Group):
    """Adds the commands of plugins (``register_commands``) on first need, and turns lightning-zoo
    errors into click errors: usage errors exit with 2, others with 1, never with a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins_asked: set[str] = set()

    def _add_plugin_commands(self) -> None:
        """Ask each plugin not asked yet for its commands; a name already taken is refused."""
        hook = zoo.get_plugin_manager().hook.register_commands
        for impl in hook.get_hookimpls():
            if impl.plugin_name in self._plugins_asked:
                continue
            self._plugins_asked.add(impl.plugin_name)
            offered = click.Group()
            impl.function(**{arg: offered for arg in impl.argnames})
            for name, command in offered.commands.items():
                if name in self.commands:
                    click.echo(
                        f"zoo: warning: plugin {impl.plugin_name!r} tried to add command "
                        f"{name!r}, which already exists; ignored",
                        err=True,
                    )
                    continue
                self.add_command(command, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._add_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (UnknownComponentError, ComponentSpecError) as error:
            option = _OPTION_OF_KIND.get(error.kind or "")
            prefix = f"Invalid value for '{option}': " if option else ""
            raise click.UsageError(prefix + str(error)) from error
        except ZooUsageError as error:
            raise click.UsageError(str(error)) from error
        except ZooError as error:
            raise click.ClickException(str(error)) from error


@click.group(
    cls=ZooGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  zoo train --arch mlp --act leakyrelu
  zoo train --act 'leakyrelu:negative_slope=0.2' --epochs 1 --json
  zoo list activations 'leaky*'
""",
)
@click.version_option(zoo.__version__, "-V", "--version", package_name="lightning-zoo")
def cli() -> None:
    """lightning-zoo: compose an architecture, an activation and a dataset into a
    PyTorch Lightning training run. Components come from plugins; `zoo list` shows them."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="zoo")


cli.add_command(train_command)
cli.add_command(list_command)
