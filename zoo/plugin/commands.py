"""Plugins' commands: each loaded plugin's ``register_commands`` hook, asked once, adds its
commands to the ``zoo`` group; a command whose name is taken is refused, never replaced."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from zoo.plugin.host import PluginHost
from zoo.plugin.info import PluginInfo
from zoo.plugin.isolation import PluginTimeout, run_plugin_code

if TYPE_CHECKING:
    import click


def add_commands(host: PluginHost, group: click.Group) -> None:
    """Ask each plugin of ``host`` not asked yet for its commands and add them to ``group``.

    A command whose name is taken is refused with a warning; it never replaces one."""
    import click

    for impl in host.plugin_manager.hook.register_commands.get_hookimpls():
        name = impl.plugin_name
        if name in host.asked_for_commands:
            continue
        host.asked_for_commands.add(name)
        info = host.plugins[name]
        offered = click.Group()
        limit = None if info.origin == "built-in" else host.settings.timeout
        started = time.perf_counter()
        try:
            arguments = dict.fromkeys(impl.argnames, offered)
            run_plugin_code(functools.partial(impl.function, **arguments), limit)
        except PluginTimeout as error:
            host.forget(info)
            host.fail(info, error.reason("register_commands"))
            continue
        except Exception as error:
            host.forget(info)
            host.fail(info, f"failed in register_commands: {type(error).__name__}: {error}")
            continue
        finally:
            info.load_seconds = (info.load_seconds or 0.0) + time.perf_counter() - started
        info.registered["commands"] = _add_offered(host, info, offered, group)


def _add_offered(
    host: PluginHost, info: PluginInfo, offered: click.Group, group: click.Group
) -> list[str]:
    """Add the commands a plugin offered to ``group``, each whose name is free; their names."""
    added = []
    for command_name, command in offered.commands.items():
        if command_name in group.commands:
            owner = host.command_plugins.get(command_name, "zoo")
            message = (
                f"command {command_name!r} already exists (from {owner!r}); "
                "the plugin's command is ignored."
            )
            info.rejected.append(message)
            host.warn(f"plugin {info.describe()}: {message}")
            continue
        group.add_command(command, command_name)
        host.command_plugins[command_name] = info.name
        added.append(command_name)
    return added
