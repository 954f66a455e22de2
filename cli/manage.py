"""``zoo install``, ``zoo uninstall`` and ``zoo new-plugin``: plugin packages, with pip in zoo's
own interpreter (:mod:`zoo.tools.scaffold` and :mod:`zoo.tools.pip` do the work)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from zoo.text import printable
from zoo.tools import pip, scaffold
from zoo.tools.pip import InstalledPlugin, PluginChanges


def _pip_line(line: str) -> None:
    """pip's output goes to stderr, as it comes: stdout is the command's result."""
    click.echo(line, nl=False, err=True)


def _plugin(plugin: InstalledPlugin) -> str:
    return printable(plugin.describe())


def _report(changes: PluginChanges) -> None:
    for plugin in changes.added:
        click.echo(f"Installed plugin {_plugin(plugin)}.")
    for plugin, old in changes.updated:
        if old.location != plugin.location:  # the same name, now from somewhere else
            click.echo(
                f"Replaced plugin {_plugin(old)} from {printable(old.location)} with "
                f"{_plugin(plugin)} from {printable(plugin.location)}."
            )
        else:
            click.echo(f"Updated plugin {_plugin(plugin)}, was {printable(old.version)}.")
    for plugin in changes.removed:
        click.echo(f"Removed plugin {_plugin(plugin)}.")
    for plugin in changes.kept:
        click.echo(
            f"Not removed: plugin {_plugin(plugin)} in {printable(plugin.site)}; pip "
            f"leaves what is outside the environment zoo runs in ({printable(sys.prefix)}), "
            "see its output above. Remove it where it was installed.",
            err=True,
        )
    if changes.added or changes.updated:
        click.echo("'zoo plugins' shows what they register.")


@click.command(
    "install",
    short_help="Install plugins (pip packages) where zoo runs.",
    epilog="""\b
Examples:
  zoo install zoo-snake
  zoo install -U zoo-snake
  zoo install -e ./myacts
  zoo install ./examples/zoo-snake --force-reinstall
""",
)
@click.argument("packages", nargs=-1, metavar="[PACKAGE]...")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade the packages to their newest version.")
@click.option(
    "-e",
    "--editable",
    multiple=True,
    metavar="PATH",
    help="Install the local project at PATH in editable mode; repeatable.",
)
@click.option("--force-reinstall", is_flag=True, help="Reinstall even if already up to date.")
@click.option("--no-cache-dir", is_flag=True, help="Don't use pip's cache.")
def install_command(
    packages: tuple[str, ...],
    upgrade: bool,
    editable: tuple[str, ...],
    force_reinstall: bool,
    no_cache_dir: bool,
) -> None:
    """Install packages (zoo plugins) with pip into the environment zoo runs in.

    PACKAGE is anything pip installs: a name (zoo-snake, 'zoo-snake>=0.2'), a local path or a
    URL. pip's output goes to stderr; then the zoo plugins the install added or updated are
    named. If pip fails, so does this (exit 1)."""
    changes = pip.pip_install(
        packages,
        editable=editable,
        upgrade=upgrade,
        force_reinstall=force_reinstall,
        no_cache_dir=no_cache_dir,
        output=_pip_line,
    )
    _report(changes)
    if not (changes.added or changes.updated):
        click.echo("No zoo plugin was added or updated ('zoo plugins' lists those installed).")


@click.command(
    "uninstall",
    short_help="Uninstall plugins (pip packages) where zoo runs.",
    epilog="""\b
Examples:
  zoo uninstall zoo-snake
  zoo uninstall zoo-snake zoo-myacts -y
""",
)
@click.argument("packages", nargs=-1, required=True, metavar="PACKAGE...")
@click.option("-y", "--yes", is_flag=True, help="Don't ask for confirmation.")
def uninstall_command(packages: tuple[str, ...], yes: bool) -> None:
    """Uninstall packages (zoo plugins) with pip from the environment zoo runs in.

    Asks first, naming the zoo plugins that would go, unless -y. lightning-zoo itself is not
    uninstalled this way (exit 2)."""
    pip.check_uninstallable(packages)
    if not yes:
        plugins = pip.plugins_of(packages)
        removing = (
            f", removing the zoo plugin{'s' if len(plugins) > 1 else ''} "
            + ", ".join(_plugin(p) for p in plugins)
            if plugins
            else ""
        )
        question = f"Uninstall {printable(' '.join(packages))} with pip{removing}?"
        click.confirm(question, abort=True, err=True)
    changes = pip.pip_uninstall(packages, output=_pip_line)
    _report(changes)
    if not changes.removed:
        click.echo("No zoo plugin was removed.")
    if changes.kept:
        raise click.exceptions.Exit(1)


@click.command(
    "new-plugin",
    short_help="Write a new plugin package: one example of every hook.",
    epilog="""\b
Examples:
  zoo new-plugin myacts
  zoo new-plugin zoo-myacts --dir ~/src
""",
)
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="The directory to write the package NAME/ in.",
)
@click.pass_context
def new_plugin_command(ctx: click.Context, name: str, parent: Path) -> None:
    """Write a ready plugin package NAME/: pyproject.toml with the entry point, a module with
    one example of every hook, tests and a README.

    For NAME myacts (or zoo-myacts) the distribution is zoo-myacts, the module zoo_myacts, the
    entry point myacts; the components are myacts-swish, myacts-convnet, ... and the command
    'zoo myacts'. NAME/ must not exist, or be empty."""
    taken = set(ctx.find_root().command.list_commands(ctx))  # type: ignore[attr-defined]
    plugin = scaffold.new_plugin(name, parent, taken=taken)
    names = plugin.names
    root = plugin.root.as_posix()
    # ./NAME, not NAME: pip reads a bare name as a package to download.
    where = shlex.quote(root if plugin.root.is_absolute() or root.startswith(".") else f"./{root}")
    click.echo(f"Wrote the plugin {names.distribution} (module {names.module}) in {where}/:")
    for path in plugin.files:
        click.echo(f"  {path.as_posix()}")
    click.echo("It registers:")
    for kind, component in names.components.items():
        shown = f"zoo {component}" if kind == "command" else component
        click.echo(f"  {kind:<13} {shown}")
    click.echo("Next:")
    click.echo(f"  zoo install -e {where}")
    click.echo(f"  zoo train --act {names.components['activation']} --max-steps 20")
    click.echo(f"  pytest {where}")
