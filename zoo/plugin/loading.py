"""Plugin loading, once per process: the built-in plugins, the entry points of group ``zoo`` and
``-p`` plugins, loaded lazily on first use of the registry into one :class:`PluginHost`
(:mod:`zoo.plugin.host`), and what the rest of zoo asks of it.

When two plugins register one name, the first keeps it (built-ins first, then entry points in
a stable order, then ``-p`` plugins). Whatever a plugin prints while it is imported or registers
goes to stderr: stdout is zoo's (``--json``).

Environment: ``ZOO_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points; ``ZOO_PLUGINS=a,b`` loads
only those entry points; ``ZOO_STRICT_PLUGINS=1`` makes any plugin failure an error;
``ZOO_DEBUG_PLUGINS=1`` prints each plugin to stderr as it starts and finishes loading;
``ZOO_PLUGIN_TIMEOUT=SECONDS`` (default 120, 0 for none) skips an installed or ``-p`` plugin
whose import or hook takes longer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import pluggy

from zoo.plugin.discovery import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, installed_requirements
from zoo.plugin.host import PluginHost
from zoo.plugin.info import PluginInfo, PluginSettings
from zoo.plugin.registry import Component, Registry

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginInfo",
    "component_origin",
    "configure_plugins",
    "get_host",
    "get_plugin_manager",
    "get_registry",
    "installed_requirements",
    "list_plugins",
    "missing_component_hint",
    "plugin_of",
    "register_plugin",
    "unregister_plugin",
]

_host: PluginHost | None = None


def configure_plugins(
    *,
    plugins: Iterable[str] = (),
    block: Iterable[str] = (),
    autoload: bool | None = None,
    allow: Iterable[str] | None = None,
    strict: bool | None = None,
) -> PluginHost:
    """(Re)load the plugins with these controls; what is not given comes from the environment.

    ``plugins`` are extra plugins (import names or ``.py`` paths), ``block`` the names of plugins
    not to load (built-ins included), ``allow`` an allowlist of entry points, ``autoload=False``
    loads no entry points, ``strict=True`` turns any plugin failure into :class:`PluginError`.
    """
    global _host
    settings = PluginSettings.from_env(
        plugins=plugins, block=block, autoload=autoload, allow=allow, strict=strict
    )
    _host = PluginHost(settings).load()
    return _host


def get_host() -> PluginHost:
    """The process-wide plugin host, loading the plugins on first use."""
    return _host if _host is not None else configure_plugins()


def get_plugin_manager() -> pluggy.PluginManager:
    """The pluggy plugin manager, with every plugin loaded."""
    return get_host().plugin_manager


def get_registry() -> Registry:
    """The registry, with every plugin's components in it."""
    return get_host().registry


def list_plugins() -> list[PluginInfo]:
    """Every plugin considered: loaded, failed and blocked, in load order."""
    return list(get_host().plugins.values())


def register_plugin(plugin: ModuleType | object, name: str | None = None) -> str:
    """Register a module or object with ``@zoo.hookimpl`` functions, e.g. from research code.

    Its components are usable at once, like those of an installed plugin. Returns its name.
    Raises :class:`PluginError` if it is invalid or its hooks fail.
    """
    if name is None:
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin):x}"
    info = PluginInfo(name, "local", module=getattr(plugin, "__name__", None))
    get_host().add(plugin, info, strict=True)
    return name


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`, and its components."""
    get_host().remove(name)


def plugin_of(component: Component | str) -> PluginInfo | None:
    """The :class:`PluginInfo` of the plugin that registered a component (or of a plugin name)."""
    name = component if isinstance(component, str) else component.plugin
    return get_host().plugins.get(name)


def component_origin(component: Component) -> dict[str, Any]:
    """Where a component came from, as a run records it: its name, plugin, distribution and
    version, the plugin's module, and the path or URL its distribution was installed from."""
    info = plugin_of(component.plugin)
    if info is None:
        return {"name": component.name, "plugin": component.plugin, "distribution": None}
    return {"name": component.name, **info.origin_of_components()}


def missing_component_hint(kind: str, name: str, origin: Mapping[str, Any] | None = None) -> str:
    """Sentences on where a component that no loaded plugin provides comes from, for an error:
    with ``origin`` (what :func:`component_origin` recorded for a run), what to install or load
    to get it back, or that its plugin is installed but failed to load and why; without, the
    plugins that did not load and may provide it. Empty if there is nothing to say."""
    return get_host().missing_hint(kind, name, origin)
