"""Plugin loading: the built-in plugins, the entry points of group ``zoo`` and ``-p`` plugins.

Plugins are loaded once, lazily, on first use of the registry. The core calls each plugin's
hooks one plugin at a time with a ``register`` callback bound to that plugin, so it knows who
registered what. A plugin that fails (import error, invalid hooks, a hook that raises) is skipped
with a one-line warning and leaves nothing registered; with ``strict`` the failure is an error.
When two plugins register one name, the first keeps it (built-ins first, then entry points in
a stable order, then ``-p`` plugins) and the second registration is rejected.

Environment: ``ZOO_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points; ``ZOO_PLUGINS=a,b`` loads
only those entry points; ``ZOO_STRICT_PLUGINS=1`` makes any plugin failure an error.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from zoo import hookspecs
from zoo.errors import DuplicateComponentError, PluginError
from zoo.registry import KINDS, Component, Registry
from zoo.text import printable

if TYPE_CHECKING:
    import click

#: The built-in plugins, registered through the same hooks as any third-party plugin. Each is
#: known by the last part of its module name (``mnist``), which ``-p no:mnist`` blocks.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "zoo.plugins.activations",
    "zoo.plugins.mlp",
    "zoo.plugins.mnist",
    "zoo.plugins.cnn",
    "zoo.plugins.datasets",
    "zoo.plugins.timm_activations",
    "zoo.plugins.timm_models",
    "zoo.plugins.optimizers",
    "zoo.plugins.schedulers",
    "zoo.plugins.augmentations",
    "zoo.plugins.loggers",
)

#: Installed distributions advertise plugins under this entry-point group.
ENTRY_POINT_GROUP = "zoo"

Status = Literal["loaded", "failed", "blocked"]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> tuple[str, ...] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class PluginSettings:
    """Which plugins to load. ``from_env`` fills what is not given from the environment."""

    plugins: tuple[str, ...] = ()  # extra plugins: import names or paths of .py files
    block: tuple[str, ...] = ()  # plugin names (or distribution names) not to load
    autoload: bool = True  # load the installed entry points at all
    allow: tuple[str, ...] | None = None  # if set, only these entry points
    strict: bool = False  # any plugin failure or conflict raises PluginError

    @classmethod
    def from_env(
        cls,
        *,
        plugins: Iterable[str] = (),
        block: Iterable[str] = (),
        autoload: bool | None = None,
        allow: Iterable[str] | None = None,
        strict: bool | None = None,
    ) -> PluginSettings:
        return cls(
            plugins=tuple(plugins),
            block=tuple(block),
            autoload=not _env_flag("ZOO_DISABLE_PLUGIN_AUTOLOAD") if autoload is None else autoload,
            allow=_env_list("ZOO_PLUGINS") if allow is None else tuple(allow),
            strict=_env_flag("ZOO_STRICT_PLUGINS") if strict is None else strict,
        )


@dataclass
class PluginInfo:
    """A plugin: where it came from, whether it loaded, and what it registered."""

    name: str
    origin: str  # "built-in", "entry point" or "local"
    module: str | None = None
    distribution: str | None = None
    version: str | None = None
    status: Status = "loaded"
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        """``built-in``, ``<distribution> <version>``, or the module or file it came from."""
        if self.origin == "built-in":
            return "built-in"
        if self.distribution:
            return f"{self.distribution} {self.version}"
        return self.module or "local"

    def describe(self) -> str:
        """The plugin as named in messages: ``'snake' (zoo-snake 0.1.0)``."""
        return f"{self.name!r} ({self.source})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "origin": self.origin,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "registered": self.registered,
            "rejected": self.rejected,
        }


class PluginHost:
    """A plugin manager, the registry its plugins filled, and what happened to each plugin."""

    def __init__(self, settings: PluginSettings | None = None) -> None:
        self.settings = settings or PluginSettings()
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}
        self.command_plugins: dict[str, str] = {}  # command name -> plugin name
        self._asked_for_commands: set[str] = set()

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> PluginHost:
        """Load the built-ins, the entry points and the extra plugins the settings name."""
        for module_name in DEFAULT_PLUGINS:
            info = PluginInfo(module_name.rsplit(".", 1)[-1], "built-in", module=module_name)
            if self._blocked(info):
                continue
            self._load(info, lambda name=module_name: importlib.import_module(name))
        if self.settings.autoload:
            for entry_point in _entry_points():
                dist = entry_point.dist
                info = PluginInfo(
                    entry_point.name,
                    "entry point",
                    module=entry_point.value,
                    distribution=dist.name if dist else None,
                    version=dist.version if dist else None,
                )
                if self._blocked(info):
                    continue
                self._load(info, entry_point.load)
        for spec in self.settings.plugins:
            path = Path(spec)
            name = path.stem if spec.endswith(".py") else spec
            info = PluginInfo(name, "local", module=spec)
            if not self._blocked(info):
                self._load(info, lambda spec=spec: _import_plugin(spec))
        return self

    def _blocked(self, info: PluginInfo) -> bool:
        names = {info.name, info.module, info.distribution} - {None}
        reason = None
        if names & set(self.settings.block):
            reason = "blocked with -p no:NAME"
        elif (
            info.origin == "entry point"
            and self.settings.allow is not None
            and not names & set(self.settings.allow)
        ):
            reason = "not in ZOO_PLUGINS"
        if reason is None:
            return False
        info.status, info.error = "blocked", reason
        self.plugins.setdefault(info.name, info)
        return True

    def _load(self, info: PluginInfo, importer: Any) -> None:
        try:
            plugin = importer()
        except BaseException as error:  # a plugin's import may even call sys.exit()
            if isinstance(error, KeyboardInterrupt):
                raise
            self._fail(info, f"failed to import: {type(error).__name__}: {error}")
            return
        self.add(plugin, info)

    def add(
        self, plugin: ModuleType | object, info: PluginInfo, *, strict: bool | None = None
    ) -> PluginInfo:
        """Register one plugin and collect its components. On failure nothing of it remains:
        it is recorded as failed with a warning or, if ``strict``, :class:`PluginError` raised."""
        strict = self.settings.strict if strict is None else strict
        if info.name in self.plugins and self.plugins[info.name].status == "loaded":
            self._fail(info, f"has the name of a loaded plugin, {info.name!r}", strict, False)
            return info
        pm = self.plugin_manager
        try:
            pm.register(plugin, name=info.name)
            pm.check_pending()  # an unknown hook name, e.g. register_activation
        except Exception as error:
            if pm.has_plugin(info.name):
                pm.unregister(name=info.name)
            hooks = ", ".join(sorted(h for h in dir(pm.hook) if h.startswith("register_")))
            self._fail(info, f"is invalid: {error} (the hooks are: {hooks})", strict)
            return info
        self.plugins[info.name] = info
        try:
            for kind in KINDS:
                register = self._registrar(kind, info, strict)
                for impl in getattr(pm.hook, f"register_{kind}s").get_hookimpls():
                    if impl.plugin_name == info.name:
                        impl.function(**{arg: register for arg in impl.argnames})
        except PluginError:
            self._forget(info)
            del self.plugins[info.name]
            raise
        except Exception as error:
            self._forget(info)
            reason = f"failed while registering: {type(error).__name__}: {error}"
            self._fail(info, reason, strict)
            return info
        for kind in KINDS:
            info.registered[f"{kind}s"] = [
                c.name for c in self.registry.components(kind) if c.plugin == info.name
            ]
        return info

    def _registrar(self, kind: str, info: PluginInfo, strict: bool) -> Any:
        add = self.registry.registrar(kind, info.name)  # type: ignore[arg-type]

        def register(name: str, factory: Any, *, summary: str, **fields: Any) -> None:
            try:
                add(name, factory, summary=summary, **fields)
            except DuplicateComponentError as error:
                if strict:
                    raise PluginError(f"plugin {info.describe()}: {error}") from error
                message = f"{error} The first registration is kept."
                info.rejected.append(message)
                self._warn(f"plugin {info.describe()}: {message}")

        return register

    def _forget(self, info: PluginInfo) -> None:
        self.registry.remove_plugin(info.name)
        if self.plugin_manager.has_plugin(info.name):
            self.plugin_manager.unregister(name=info.name)
        info.registered = {}

    def _fail(
        self, info: PluginInfo, reason: str, strict: bool | None = None, record: bool = True
    ) -> None:
        reason = " ".join(reason.split())  # one line, whatever the exception's text
        message = f"plugin {info.describe()} {reason}"
        if self.settings.strict if strict is None else strict:
            if self.plugins.get(info.name) is info:
                del self.plugins[info.name]
            raise PluginError(message)
        info.status, info.error = "failed", reason
        if record:
            self.plugins[info.name] = info
        self._warn(message + "; skipped (see `zoo plugins`)")

    @staticmethod
    def _warn(message: str) -> None:
        print(f"zoo: warning: {printable(message, newlines=True)}", file=sys.stderr)

    def remove(self, name: str) -> None:
        """Unload a plugin and everything it registered."""
        info = self.plugins.pop(name, None)
        if info is None:
            raise PluginError(f"no plugin named {name!r} is loaded")
        self._forget(info)
        for command in [c for c, p in self.command_plugins.items() if p == name]:
            del self.command_plugins[command]

    # -- commands --------------------------------------------------------------------------

    def add_commands(self, group: click.Group) -> None:
        """Ask each loaded plugin not asked yet for its commands and add them to ``group``.

        A command whose name is taken is refused with a warning; it never replaces one."""
        import click

        for impl in self.plugin_manager.hook.register_commands.get_hookimpls():
            name = impl.plugin_name
            if name in self._asked_for_commands:
                continue
            self._asked_for_commands.add(name)
            info = self.plugins[name]
            offered = click.Group()
            try:
                impl.function(**{arg: offered for arg in impl.argnames})
            except Exception as error:
                self._forget(info)
                self._fail(info, f"failed in register_commands: {type(error).__name__}: {error}")
                continue
            added = []
            for command_name, command in offered.commands.items():
                if command_name in group.commands:
                    owner = self.command_plugins.get(command_name, "zoo")
                    message = (
                        f"command {command_name!r} already exists (from {owner!r}); "
                        "the plugin's command is ignored."
                    )
                    info.rejected.append(message)
                    self._warn(f"plugin {info.describe()}: {message}")
                    continue
                group.add_command(command, command_name)
                self.command_plugins[command_name] = name
                added.append(command_name)
            info.registered["commands"] = added


def _entry_points() -> list[metadata.EntryPoint]:
    """The ``zoo`` entry points, each name once, in a stable order."""
    unique: dict[str, metadata.EntryPoint] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        unique.setdefault(entry_point.name, entry_point)  # a distribution found twice on the path
    return sorted(unique.values(), key=lambda ep: ((ep.dist.name if ep.dist else ""), ep.name))


def _import_plugin(spec: str) -> ModuleType:
    """Import a plugin by module name, or from the path of a ``.py`` file."""
    if not spec.endswith(".py"):
        return importlib.import_module(spec)
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    module_name = f"zoo_local_plugin_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


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
