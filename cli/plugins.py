"""``zoo plugins``: every plugin, where it came from, whether it loaded, what it registered."""

from __future__ import annotations

import json

import click

from zoo.cli.options import json_option
from zoo.loader import list_plugins
from zoo.text import printable


@click.command(
    "plugins",
    epilog="""\b
Examples:
  zoo plugins
  zoo plugins --json
  zoo -p no:mnist plugins
  ZOO_DISABLE_PLUGIN_AUTOLOAD=1 zoo plugins
""",
)
@json_option("Print a JSON list instead of a table.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List plugins: built-in, installed (entry points of group 'zoo') and loaded with -p.

    Status is loaded, failed (with the error) or blocked (with -p no:NAME or ZOO_PLUGINS)."""
    ctx.find_root().command.list_commands(ctx)  # plugins' commands are known once asked for
    plugins = list_plugins()
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in plugins], indent=2))
        return
    name_width = max(len(printable(info.name)) for info in plugins)
    source_width = max(len(printable(info.source)) for info in plugins)
    for info in plugins:
        registered = "; ".join(
            f"{kind}: {', '.join(names)}" for kind, names in info.registered.items() if names
        )
        status = click.style(
            f"{info.status:<7}",
            fg={"loaded": "green", "failed": "red", "blocked": "yellow"}[info.status],
        )
        detail = registered if info.status == "loaded" else str(info.error)
        click.echo(
            f"{printable(info.name):<{name_width}}  {printable(info.source):<{source_width}}  "
            f"{status}  {printable(detail)}"
        )
        for message in info.rejected:
            click.echo(f"{'':<{name_width}}  rejected: {printable(str(message))}")
