"""Plugin loading: the built-in plugins plus every entry point of group ``zoo``, once, lazily.

The core calls each plugin's ``register_*`` hooks one plugin at a time with a ``register``
callback bound to that plugin, so the registry knows who registered what.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

import pluggy

from zoo import hookspecs
from zoo.errors import DuplicateComponentError, ZooError
from zoo.registry import KINDS, Registry

#: The built-in plugins, registered through the same hooks as any third-party plugin.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "zoo.plugins.activations",
    "zoo.plugins.mlp",
    "zoo.plugins.mnist",
)

#: Installed distributions advertise plugins under this entry-point group.
ENTRY_POINT_GROUP = "zoo"


class PluginError(ZooError):
    """A plugin could not be imported, validated or asked for its components."""


@dataclass
class PluginInfo:
    """Where a loaded plugin came from."""

    name: str
    distribution: str | None = None  # None for built-in and ad-hoc plugins
    version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """``built-in``, ``<distribution> <version>`` or ``local``."""
        if self.name in DEFAULT_PLUGINS:
            return "built-in"
        if self.distribution:
            return f"{self.distribution} {self.version}"
        return "local"


class PluginHost:
    """A plugin manager and the registry its plugins filled."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}

    def load_defaults(self) -> None:
        """Register the built-in plugins and every installed ``zoo`` entry point."""
        for module_name in DEFAULT_PLUGINS:
            self.add(importlib.import_module(module_name), module_name)
        seen: set[str] = set()
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(entry_point.name)
            dist = entry_point.dist
            try:
                plugin = entry_point.load()
            except Exception as error:
                raise PluginError(
                    f"plugin {entry_point.name!r} (distribution "
                    f"{dist.name if dist else '?'}) failed to import: "
                    f"{type(error).__name__}: {error}"
                ) from error
            self.add(
                plugin,
                entry_point.name,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
            )

    def add(
        self,
        plugin: ModuleType | object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        """Register one plugin and collect its components; on failure nothing of it remains."""
        if name in self.plugins:
            raise PluginError(f"a plugin named {name!r} is already registered")
        pm = self.plugin_manager
        try:
            pm.register(plugin, name=name)
            pm.check_pending()
        except pluggy.PluginValidationError as error:
            if pm.has_plugin(name):
                pm.unregister(name=name)
            raise PluginError(f"plugin {name!r} is invalid: {error}") from error
        info = PluginInfo(name, distribution, version)
        try:
            for kind in KINDS:
                caller = getattr(pm.hook, f"register_{kind}s")
                register = self.registry.registrar(kind, name)
                for impl in caller.get_hookimpls():
                    if impl.plugin_name == name:
                        impl.function(**{arg: register for arg in impl.argnames})
                info.registered[kind] = [
                    c.name for c in self.registry.components(kind) if c.plugin == name
                ]
        except Exception as error:
            self.registry.remove_plugin(name)
            pm.unregister(name=name)
            if isinstance(error, DuplicateComponentError):
                raise
            raise PluginError(
                f"plugin {name!r} failed while registering its components: "
                f"{type(error).__name__}: {error}"
            ) from error
        self.plugins[name] = info


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loading the plugins on first use."""
    global _host
    if _host is None:
        host = PluginHost()
        host.load_defaults()
        _host = host
    return _host


def get_plugin_manager() -> pluggy.PluginManager:
    """The pluggy plugin manager, with every plugin loaded."""
    return get_host().plugin_manager


def get_registry() -> Registry:
    """The registry, with every plugin's components in it."""
    return get_host().registry


def register_plugin(plugin: ModuleType | object, name: str | None = None) -> str:
    """Register a module or object with ``@zoo.hookimpl`` functions, e.g. from research code.

    Its components are usable at once, like those of an installed plugin. Returns its name.
    """
    if name is None:
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin):x}"
    get_host().add(plugin, name)
    return name


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`, and its components."""
    host = get_host()
    if name not in host.plugins:
        raise PluginError(f"no plugin named {name!r} is registered")
    host.registry.remove_plugin(name)
    host.plugin_manager.unregister(name=name)
    del host.plugins[name]


def plugin_of(component_plugin: str) -> PluginInfo | None:
    """The :class:`PluginInfo` of a loaded plugin by name."""
    return get_host().plugins.get(component_plugin)
