"""The plugin host: one pluggy manager, the registry its plugins fill, and what happened to each
plugin. Plugins are added one at a time, their hooks called with a ``register`` callback bound to
the plugin, so the host knows who registered what; a plugin that fails (import error, invalid
hooks, a hook that raises or hangs) leaves nothing registered and is skipped with a one-line
warning, or with ``strict`` raises :class:`PluginError`. When two plugins register one name the
first keeps it; an alias that is taken is left out and the rest of the registration kept."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pluggy

from zoo.errors import DuplicateComponentError, PluginError, UnknownComponentError
from zoo.plugin import checks, hints, hookspecs
from zoo.plugin.discovery import (
    DEFAULT_PLUGINS,
    entry_point_info,
    entry_points,
    import_plugin,
    local_info,
)
from zoo.plugin.info import PluginInfo, PluginSettings
from zoo.plugin.isolation import PluginTimeout, run_plugin_code
from zoo.plugin.kinds import KINDS, Kind
from zoo.plugin.registry import Component, Registry
from zoo.text import printable

#: A plugin that takes longer than this to import and register is named in a warning by
#: ``zoo --help`` and ``zoo list``.
SLOW_PLUGIN_SECONDS = 1.0


class _HostRegistry(Registry):
    """The host's registry: an unknown name's error says which plugin that did not load may
    provide it."""

    def __init__(self, host: PluginHost) -> None:
        super().__init__()
        self._host = host

    def get(self, kind: Kind, name: str) -> Component:
        try:
            return super().get(kind, name)
        except UnknownComponentError as error:
            hint = "" if error.hint else self._host.missing_hint(kind, name)
            if not hint:
                raise
            raise UnknownComponentError(error.kind, error.name, error.suggestions, hint) from None


class PluginHost:
    """A plugin manager, the registry its plugins filled, and what happened to each plugin."""

    def __init__(self, settings: PluginSettings | None = None) -> None:
        self.settings = settings or PluginSettings()
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self.registry: Registry = _HostRegistry(self)
        self.plugins: dict[str, PluginInfo] = {}
        self.command_plugins: dict[str, str] = {}  # command name -> plugin name
        self.asked_for_commands: set[str] = set()
        self._warned_slow: set[str] = set()
        self._abandoned: set[int] = set()  # ids of the PluginInfo of plugins that timed out

    def load(self) -> PluginHost:
        """Load the built-ins, the entry points and the extra plugins the settings name.
        Installed and ``-p`` plugins are held to ``settings.timeout``; the built-ins are not."""
        for module_name in DEFAULT_PLUGINS:
            info = PluginInfo(module_name.rsplit(".", 1)[-1], "built-in", module=module_name)
            self._load(info, lambda name=module_name: importlib.import_module(name), None)
        limit = self.settings.timeout
        if self.settings.autoload:
            for entry_point in entry_points():
                self._load(entry_point_info(entry_point), entry_point.load, limit)
        for spec in self.settings.plugins:
            self._load(local_info(spec), lambda spec=spec: import_plugin(spec), limit)
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

    def _load(self, info: PluginInfo, importer: Callable[[], Any], limit: float | None) -> None:
        """Import one plugin and add it, timed; with ``debug``, say so before and after."""
        if self._blocked(info):
            self._debug(f"plugin {info.describe()}: {info.error}")
            return
        self._debug(f"loading plugin {info.describe()} ...")
        started = time.perf_counter()
        outcome = "stopped"  # what the debug line says if an exception passes through
        try:
            try:
                plugin = run_plugin_code(importer, limit)
            except BaseException as error:  # a plugin's import may even call sys.exit()
                if isinstance(error, KeyboardInterrupt):
                    raise
                info.load_seconds = time.perf_counter() - started
                outcome = "failed"
                if isinstance(error, PluginTimeout):
                    self.fail(info, error.reason("its import"))
                else:
                    self.fail(info, f"failed to import: {type(error).__name__}: {error}")
                return
            info.load_seconds = time.perf_counter() - started
            outcome = "failed"  # unless add() returns
            self.add(plugin, info, limit=limit)
            outcome = info.status
        finally:
            elapsed = time.perf_counter() - started
            self._debug(f"plugin {info.name!r} {outcome} after {elapsed:.2f} s")

    def add(
        self,
        plugin: ModuleType | object,
        info: PluginInfo,
        *,
        strict: bool | None = None,
        limit: float | None = None,
    ) -> PluginInfo:
        """Register one plugin and collect its components. On failure nothing of it remains:
        it is recorded as failed with a warning or, if ``strict``, :class:`PluginError` raised.
        A hook that runs longer than ``limit`` seconds is such a failure."""
        strict = self.settings.strict if strict is None else strict
        started = time.perf_counter()
        try:
            self._add(plugin, info, strict, limit)
        finally:
            info.load_seconds = (info.load_seconds or 0.0) + time.perf_counter() - started
        return info

    def _add(
        self, plugin: ModuleType | object, info: PluginInfo, strict: bool, limit: float | None
    ) -> None:
        if info.name in self.plugins and self.plugins[info.name].status == "loaded":
            self.fail(info, f"has the name of a loaded plugin, {info.name!r}", strict, False)
            return
        if not self._register_hooks(plugin, info, strict):
            return
        self.plugins[info.name] = info
        calling = ["its hooks"]  # the hook running, for the message if it times out

        def call_hooks() -> None:
            for kind in KINDS:
                register = self._registrar(kind, info, strict)
                for impl in getattr(self.plugin_manager.hook, f"register_{kind}s").get_hookimpls():
                    if impl.plugin_name == info.name:
                        calling[0] = f"register_{kind}s"
                        impl.function(**{arg: register for arg in impl.argnames})

        try:
            run_plugin_code(call_hooks, limit)
        except PluginError:
            self.forget(info)
            del self.plugins[info.name]
            raise
        except BaseException as error:  # a hook may even call sys.exit()
            if isinstance(error, KeyboardInterrupt):
                raise
            if isinstance(error, PluginTimeout):
                self._abandoned.add(id(info))
                reason = error.reason(calling[0])
            else:
                reason = f"failed while registering: {type(error).__name__}: {error}"
            self.forget(info)
            self.fail(info, reason, strict)
            return
        for kind in KINDS:
            info.registered[f"{kind}s"] = [
                c.name for c in self.registry.components(kind) if c.plugin == info.name
            ]

    def _register_hooks(self, plugin: ModuleType | object, info: PluginInfo, strict: bool) -> bool:
        """Check the plugin's hooks and register them with pluggy; False if it is invalid. A
        plugin with no hooks at all is a warning (an error if ``strict``)."""
        pm = self.plugin_manager
        hooks, problems = checks.check_hooks(pm, plugin)
        if problems:
            self.fail(info, f"is invalid: {'; '.join(problems)}", strict)
            return False
        if not hooks:
            message = checks.unmarked_hooks(pm, plugin)
            if strict:
                self.fail(info, message, strict)
            info.warnings.append(message)
            self.warn(f"plugin {info.describe()} {message}")
        try:
            pm.register(plugin, name=info.name)
            pm.check_pending()
        except Exception as error:  # e.g. the same module already registered under another name
            if pm.has_plugin(info.name):
                pm.unregister(name=info.name)
            self.fail(info, f"is invalid: {error}", strict)
            return False
        return True

    def _registrar(self, kind: Kind, info: PluginInfo, strict: bool) -> Any:
        """The plugin's ``register`` callback: a conflict is recorded with a warning, or with
        ``strict`` raised as PluginError."""

        def rejected(message: str, error: DuplicateComponentError, if_strict: str = "") -> None:
            if strict:
                raise PluginError(f"plugin {info.describe()}: {error}{if_strict}") from error
            info.rejected.append(message)
            self.warn(f"plugin {info.describe()}: {message}")

        def register(name: str, factory: Any, *, summary: str, **fields: Any) -> None:
            if id(info) in self._abandoned:  # a hook that timed out and goes on regardless
                raise PluginError(f"plugin {info.describe()} was skipped: it timed out")

            def alias_taken(error: DuplicateComponentError) -> None:
                rejected(
                    f"{error}; {kind} {name!r} is registered without it.",
                    error,
                    ". Block one of the plugins with `zoo -p no:PLUGIN`, or drop "
                    f"--strict-plugins to register {kind} {name!r} without that alias.",
                )

            add = self.registry.registrar(kind, info.name, alias_taken=alias_taken)
            try:
                add(name, factory, summary=summary, **fields)
            except DuplicateComponentError as error:
                rejected(f"{error} The first registration is kept.", error)

        return register

    def forget(self, info: PluginInfo) -> None:
        """Take out everything ``info``'s plugin registered, its hooks included."""
        self.registry.remove_plugin(info.name)
        if self.plugin_manager.has_plugin(info.name):
            self.plugin_manager.unregister(name=info.name)
        info.registered = {}

    def fail(
        self, info: PluginInfo, reason: str, strict: bool | None = None, record: bool = True
    ) -> None:
        """Record ``info``'s plugin as failed for ``reason`` and warn, or with ``strict``
        raise :class:`PluginError`."""
        reason = " ".join(reason.split())  # one line, whatever the exception's text
        message = f"plugin {info.describe()} {reason}"
        if self.settings.strict if strict is None else strict:
            if self.plugins.get(info.name) is info:
                del self.plugins[info.name]
            raise PluginError(message)
        info.status, info.error = "failed", reason
        if record:
            self.plugins[info.name] = info
        self.warn(message + "; skipped (see `zoo plugins`)")

    @staticmethod
    def warn(message: str) -> None:
        """One warning line on stderr."""
        print(f"zoo: warning: {printable(message, newlines=True)}", file=sys.stderr, flush=True)

    def _debug(self, message: str) -> None:
        if self.settings.debug:
            print(f"zoo: debug: {printable(message)}", file=sys.stderr, flush=True)

    def warn_slow_plugins(self, threshold: float = SLOW_PLUGIN_SECONDS) -> None:
        """Warn, once per plugin, of each installed or ``-p`` plugin that took longer than
        ``threshold`` seconds to import and register."""
        for info in self.plugins.values():
            seconds = info.load_seconds
            if (
                seconds is None
                or seconds <= threshold
                or info.origin == "built-in"
                or info.name in self._warned_slow
            ):
                continue
            self._warned_slow.add(info.name)
            self.warn(
                f"plugin {info.describe()} took {seconds:.1f} s to import; every zoo command "
                f"waits for it. Block it with `zoo -p no:{info.name}` if you don't need it; "
                "its author can import heavy modules lazily (docs/plugins.md, 'Lazy imports'); "
                "ZOO_DEBUG_PLUGINS=1 times each plugin."
            )

    def remove(self, name: str) -> None:
        """Unload a plugin and everything it registered."""
        info = self.plugins.pop(name, None)
        if info is None:
            raise PluginError(f"no plugin named {name!r} is loaded")
        self.forget(info)
        for command in [c for c, p in self.command_plugins.items() if p == name]:
            del self.command_plugins[command]

    def missing_hint(self, kind: str, name: str, origin: Mapping[str, Any] | None = None) -> str:
        """Sentences on where a component no loaded plugin provides comes from
        (:func:`zoo.plugin.hints.missing_hint`)."""
        return hints.missing_hint(self.plugins, kind, name, origin)
