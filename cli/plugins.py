"""``zoo plugins``: every plugin, where it came from, whether it loaded, what it registered."""

from __future__ import annotations

import json

import click

from zoo.cli.options import json_option
from zoo.plugin.loading import PluginInfo, installed_requirements, list_plugins
from zoo.text import printable

_STATUS_COLOURS = {"loaded": "green", "failed": "red", "blocked": "yellow"}


@click.command(
    "plugins",
    epilog="""\b
Examples:
  zoo plugins
  zoo plugins --json
  zoo plugins --requirements > plugin-requirements.txt
  zoo -p no:mnist plugins
  ZOO_DISABLE_PLUGIN_AUTOLOAD=1 zoo plugins
  ZOO_DEBUG_PLUGINS=1 zoo plugins
""",
)
@json_option("Print a JSON list instead of a table.")
@click.option(
    "--requirements",
    is_flag=True,
    help="Print the installed plugin distributions as a pip requirements list "
    "(name==version, or 'name @ URL' for one installed from a path or URL), to reproduce "
    "this environment with pip install -r.",
)
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool, requirements: bool) -> None:
    """List plugins: built-in, installed (entry points of group 'zoo') and loaded with -p.

    One row per plugin: name, source, status (loaded, failed with the error, or blocked with
    -p no:NAME or ZOO_PLUGINS), the seconds it took to import and register, and what it
    registered. ZOO_DEBUG_PLUGINS=1 prints each plugin to stderr as it starts and finishes
    loading, to find one that hangs."""
    if requirements:
        if as_json:
            raise click.UsageError("--requirements prints a requirements list; drop --json")
        for line in installed_requirements():
            click.echo(printable(line))
        return
    ctx.find_root().command.list_commands(ctx)  # plugins' commands are known once asked for
    plugins = list_plugins()
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in plugins], indent=2))
        return
    _print_table(plugins)


def _seconds(info: PluginInfo) -> str:
    return "" if info.load_seconds is None else f"{info.load_seconds:.2f} s"


def _print_table(plugins: list[PluginInfo]) -> None:
    """One line per plugin: name, source, status, time, what it registered or its error."""
    name_width = max(len(printable(info.name)) for info in plugins)
    source_width = max(len(printable(info.source)) for info in plugins)
    time_width = max(len(_seconds(info)) for info in plugins)
    for info in plugins:
        registered = "; ".join(
            f"{kind}: {', '.join(names)}" for kind, names in info.registered.items() if names
        )
        status = click.style(f"{info.status:<7}", fg=_STATUS_COLOURS[info.status])
        if info.status != "loaded":
            detail = str(info.error)
        else:
            detail = registered or "; ".join(info.warnings) or "nothing registered"
        click.echo(
            f"{printable(info.name):<{name_width}}  {printable(info.source):<{source_width}}  "
            f"{status}  {_seconds(info):>{time_width}}  {printable(detail)}"
        )
        indent = " " * name_width
        for message in info.rejected:
            click.echo(f"{indent}  rejected: {printable(str(message))}")
        if registered:
            for message in info.warnings:
                click.echo(f"{indent}  warning: {printable(str(message))}")
