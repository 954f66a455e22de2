"""Plugin loading: the built-in plugins, the entry points of group ``zoo`` and ``-p`` plugins.

Plugins are loaded once, lazily, on first use of the registry. The core calls each plugin's
hooks one plugin at a time with a ``register`` callback bound to that plugin, so it knows who
registered what. A plugin that fails (import error, invalid hooks, a hook that raises) is skipped
with a one-line warning and leaves nothing registered; with ``strict`` the failure is an error.
When two plugins register one name, the first keeps it (built-ins first, then entry points in
a stable order, then ``-p`` plugins) and the second registration is rejected; an alias that is
taken is left out and the rest of the registration kept. Whatever a plugin prints while it is
imported or registers goes to stderr: stdout is zoo's (``--json``).

Environment: ``ZOO_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry points; ``ZOO_PLUGINS=a,b`` loads
only those entry points; ``ZOO_STRICT_PLUGINS=1`` makes any plugin failure an error;
``ZOO_DEBUG_PLUGINS=1`` prints each plugin to stderr as it starts and finishes loading.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import inspect
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import pluggy

from zoo.errors import DuplicateComponentError, PluginError, UnknownComponentError
from zoo.plugin import hookspecs
from zoo.plugin.registry import KINDS, Component, Kind, Registry, normalise
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

#: A plugin that takes longer than this to import and register is named in a warning by
#: ``zoo --help`` and ``zoo list``.
SLOW_PLUGIN_SECONDS = 1.0

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
    debug: bool = False  # print each plugin to stderr as it starts and finishes loading

    @classmethod
    def from_env(
        cls,
        *,
        plugins: Iterable[str] = (),
        block: Iterable[str] = (),
        autoload: bool | None = None,
        allow: Iterable[str] | None = None,
        strict: bool | None = None,
        debug: bool | None = None,
    ) -> PluginSettings:
        return cls(
            plugins=tuple(plugins),
            block=tuple(block),
            autoload=not _env_flag("ZOO_DISABLE_PLUGIN_AUTOLOAD") if autoload is None else autoload,
            allow=_env_list("ZOO_PLUGINS") if allow is None else tuple(allow),
            strict=_env_flag("ZOO_STRICT_PLUGINS") if strict is None else strict,
            debug=_env_flag("ZOO_DEBUG_PLUGINS") if debug is None else debug,
        )


@dataclass
class PluginInfo:
    """A plugin: where it came from, whether it loaded, what it registered, how long it took."""

    name: str
    origin: str  # "built-in", "entry point" or "local"
    module: str | None = None
    distribution: str | None = None
    version: str | None = None
    status: Status = "loaded"
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    #: A file plugin's file, or the local directory its distribution was installed from.
    path: str | None = None
    #: The URL its distribution was installed from (PEP 610 ``direct_url.json``), if any.
    url: str | None = None
    #: Seconds its import and registration took (None if it was blocked).
    load_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        """``built-in``, ``<distribution> <version>``, or the module or file it came from."""
        if self.origin == "built-in":
            return "built-in"
        if self.distribution:
            return f"{self.distribution} {self.version}"
        return self.module or "local"

    @property
    def requirement(self) -> str | None:
        """Its distribution as pip installs it again: ``name==version``, or ``name @ URL``
        for one installed from a path or URL; None for a plugin without a distribution."""
        if not self.distribution:
            return None
        if self.url:
            return f"{self.distribution} @ {self.url}"
        return f"{self.distribution}=={self.version}"

    def describe(self) -> str:
        """The plugin as named in messages: ``'snake' (zoo-snake 0.1.0)``."""
        return f"{self.name!r} ({self.source})"

    def origin_of_components(self) -> dict[str, Any]:
        """What a run records of where its components came from (``config.json``)."""
        return {
            "plugin": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "path": self.path,
            "url": self.url,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "origin": self.origin,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "path": self.path,
            "url": self.url,
            "status": self.status,
            "error": self.error,
            "registered": self.registered,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 4),
        }


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """What a plugin prints goes to stderr: stdout carries zoo's output (``--json``)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


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
        self._asked_for_commands: set[str] = set()
        self._warned_slow: set[str] = set()

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> PluginHost:
        """Load the built-ins, the entry points and the extra plugins the settings name."""
        for module_name in DEFAULT_PLUGINS:
            info = PluginInfo(module_name.rsplit(".", 1)[-1], "built-in", module=module_name)
            self._load(info, lambda name=module_name: importlib.import_module(name))
        if self.settings.autoload:
            for entry_point in _entry_points():
                self._load(_entry_point_info(entry_point), entry_point.load)
        for spec in self.settings.plugins:
            self._load(_local_info(spec), lambda spec=spec: _import_plugin(spec))
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

    def _load(self, info: PluginInfo, importer: Callable[[], Any]) -> None:
        """Import one plugin and add it, timed; with ``debug``, say so before and after."""
        if self._blocked(info):
            self._debug(f"plugin {info.describe()}: {info.error}")
            return
        self._debug(f"loading plugin {info.describe()} ...")
        started = time.perf_counter()
        outcome = "stopped"  # what the debug line says if an exception passes through
        try:
            try:
                with _stdout_to_stderr():
                    plugin = importer()
            except BaseException as error:  # a plugin's import may even call sys.exit()
                if isinstance(error, KeyboardInterrupt):
                    raise
                info.load_seconds = time.perf_counter() - started
                outcome = "failed"
                self._fail(info, f"failed to import: {type(error).__name__}: {error}")
                return
            info.load_seconds = time.perf_counter() - started
            outcome = "failed"  # unless add() returns
            self.add(plugin, info)
            outcome = info.status
        finally:
            elapsed = time.perf_counter() - started
            self._debug(f"plugin {info.name!r} {outcome} after {elapsed:.2f} s")

    def add(
        self, plugin: ModuleType | object, info: PluginInfo, *, strict: bool | None = None
    ) -> PluginInfo:
        """Register one plugin and collect its components. On failure nothing of it remains:
        it is recorded as failed with a warning or, if ``strict``, :class:`PluginError` raised."""
        strict = self.settings.strict if strict is None else strict
        started = time.perf_counter()
        try:
            self._add(plugin, info, strict)
        finally:
            info.load_seconds = (info.load_seconds or 0.0) + time.perf_counter() - started
        return info

    def _add(self, plugin: ModuleType | object, info: PluginInfo, strict: bool) -> None:
        if info.name in self.plugins and self.plugins[info.name].status == "loaded":
            self._fail(info, f"has the name of a loaded plugin, {info.name!r}", strict, False)
            return
        if not self._register_hooks(plugin, info, strict):
            return
        self.plugins[info.name] = info
        pm = self.plugin_manager
        try:
            with _stdout_to_stderr():
                for kind in KINDS:
                    register = self._registrar(kind, info, strict)
                    for impl in getattr(pm.hook, f"register_{kind}s").get_hookimpls():
                        if impl.plugin_name == info.name:
                            impl.function(**{arg: register for arg in impl.argnames})
        except PluginError:
            self._forget(info)
            del self.plugins[info.name]
            raise
        except BaseException as error:  # a hook may even call sys.exit()
            if isinstance(error, KeyboardInterrupt):
                raise
            self._forget(info)
            reason = f"failed while registering: {type(error).__name__}: {error}"
            self._fail(info, reason, strict)
            return
        for kind in KINDS:
            info.registered[f"{kind}s"] = [
                c.name for c in self.registry.components(kind) if c.plugin == info.name
            ]

    def _register_hooks(self, plugin: ModuleType | object, info: PluginInfo, strict: bool) -> bool:
        """Check the plugin's hooks and register them with pluggy; False if it is invalid. A
        plugin with no hooks at all is a warning (an error if ``strict``)."""
        hooks, problems = self._check_hooks(plugin)
        if problems:
            self._fail(info, f"is invalid: {'; '.join(problems)}", strict)
            return False
        if not hooks:
            unmarked = [name for name in self._hook_specs() if callable(_attribute(plugin, name))]
            message = "registered nothing: are its functions marked @zoo.hookimpl?"
            if unmarked:
                message += f" ({', '.join(unmarked)} {'is' if len(unmarked) == 1 else 'are'} not)"
            if strict:
                self._fail(info, message, strict)
            info.warnings.append(message)
            self._warn(f"plugin {info.describe()} {message}")
        pm = self.plugin_manager
        try:
            pm.register(plugin, name=info.name)
            pm.check_pending()
        except Exception as error:  # e.g. the same module already registered under another name
            if pm.has_plugin(info.name):
                pm.unregister(name=info.name)
            self._fail(info, f"is invalid: {error}", strict)
            return False
        return True

    def _hook_specs(self) -> dict[str, tuple[str, ...]]:
        """The real hooks and their arguments (``pm.hook`` also holds callers pluggy made for
        unknown names some plugin used)."""
        return {
            name: caller.spec.argnames
            for name, caller in sorted(vars(self.plugin_manager.hook).items())
            if getattr(caller, "spec", None) is not None
        }

    def _check_hooks(self, plugin: ModuleType | object) -> tuple[list[str], list[str]]:
        """The names of the plugin's hook implementations, and what is wrong with them: an
        unknown hook (with the closest real one), an argument zoo does not pass."""
        specs = self._hook_specs()
        hooks: list[str] = []
        problems: list[str] = []
        for attribute in dir(plugin):
            try:
                options = self.plugin_manager.parse_hookimpl_opts(plugin, attribute)
            except Exception:
                continue  # pluggy's own register reports what is wrong with it
            if options is None:
                continue
            hook = options.get("specname") or attribute
            hooks.append(hook)
            if hook not in specs:
                close = difflib.get_close_matches(hook, specs, n=1)
                problems.append(
                    f"unknown hook {hook!r}"
                    + (f"; did you mean {close[0]!r}?" if close else "")
                    + f" (the hooks are: {', '.join(specs)})"
                )
                continue
            function = _attribute(plugin, attribute)
            extra = [a for a in _required_arguments(function) if a not in specs[hook]]
            if extra:
                problems.append(
                    f"hook {hook!r} takes {', '.join(repr(a) for a in extra)}, which zoo does "
                    f"not pass (it passes {', '.join(repr(a) for a in specs[hook])})"
                )
        return hooks, problems

    def _registrar(self, kind: Kind, info: PluginInfo, strict: bool) -> Any:
        """The plugin's ``register`` callback: a conflict is recorded with a warning, or with
        ``strict`` raised as PluginError."""

        def rejected(message: str, error: DuplicateComponentError, if_strict: str = "") -> None:
            if strict:
                raise PluginError(f"plugin {info.describe()}: {error}{if_strict}") from error
            info.rejected.append(message)
            self._warn(f"plugin {info.describe()}: {message}")

        def register(name: str, factory: Any, *, summary: str, **fields: Any) -> None:
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
            self._warn(
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
        self._forget(info)
        for command in [c for c, p in self.command_plugins.items() if p == name]:
            del self.command_plugins[command]

    # -- where a missing component comes from --------------------------------------------

    def missing_hint(self, kind: str, name: str, origin: Mapping[str, Any] | None = None) -> str:
        """Sentences on where a component no loaded plugin provides comes from: the plugin a
        run recorded (``origin``, as :meth:`PluginInfo.origin_of_components` gives), or else
        the plugins that did not load and may provide it. Empty if there is nothing to say."""
        if origin and origin.get("plugin"):
            return self._origin_hint(origin)
        key = normalise(name.split("/", 1)[0])
        candidates = [
            info
            for info in self.plugins.values()
            if info.status != "loaded" and _may_provide(info, key)
        ]
        if candidates:
            return " ".join(
                f"It may come from plugin {info.describe()}, which is {_not_loaded(info)}."
                for info in candidates
            )
        failed = [info for info in self.plugins.values() if info.status == "failed"]
        if not failed or "/" in name:
            return ""
        named = ", ".join(info.describe() for info in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        return f"Plugins that failed to load may provide it: {named}{more}; `zoo plugins` says why."

    def _origin_hint(self, origin: Mapping[str, Any]) -> str:
        plugin, dist = str(origin["plugin"]), normalise(str(origin.get("distribution") or ""))
        came = f"It came from plugin {plugin!r}"
        if dist:
            came += f" of the distribution {origin['distribution']} {origin.get('version') or ''}"
            came = came.rstrip()
        info = self.plugins.get(plugin)
        if dist and (info is None or normalise(info.distribution or "") != dist):
            same = [i for i in self.plugins.values() if normalise(i.distribution or "") == dist]
            info = same[0] if same else info
        if info is not None and info.status != "loaded":
            return f"{came}, which is {_not_loaded(info)}."
        if info is not None:
            return f"{came}; {info.describe()} is loaded but does not provide it."
        if dist:
            return f"{came}, which is not installed: {_install_command(origin)}."
        where = origin.get("path") or origin.get("module")
        if where:
            option = f"-p {shlex.quote(str(where))}"
            return f"{came}, loaded with `zoo {option}`; load it again: zoo {option} ..."
        return f"{came}, which is not loaded."

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
            started = time.perf_counter()
            try:
                with _stdout_to_stderr():
                    impl.function(**{arg: offered for arg in impl.argnames})
            except Exception as error:
                self._forget(info)
                self._fail(info, f"failed in register_commands: {type(error).__name__}: {error}")
                continue
            finally:
                info.load_seconds = (info.load_seconds or 0.0) + time.perf_counter() - started
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


def _entry_point_info(entry_point: metadata.EntryPoint) -> PluginInfo:
    dist = entry_point.dist
    url, path = _direct_url(dist) if dist is not None else (None, None)
    return PluginInfo(
        entry_point.name,
        "entry point",
        module=entry_point.value,
        distribution=dist.name if dist else None,
        version=dist.version if dist else None,
        path=path,
        url=url,
    )


def _local_info(spec: str) -> PluginInfo:
    """A ``-p`` plugin: a file is named by its stem and known by its absolute path."""
    if spec.endswith(".py"):
        path = Path(spec).expanduser()
        return PluginInfo(path.stem, "local", module=spec, path=str(path.resolve()))
    return PluginInfo(spec, "local", module=spec)


def _direct_url(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """The URL a distribution was installed from (PEP 610), as a requirement takes it
    (``git+https://...@commit`` for a VCS), and the local path for a ``file:`` URL."""
    try:
        data = json.loads(dist.read_text("direct_url.json") or "null")
        url = data["url"]
    except (OSError, ValueError, TypeError, KeyError):
        return None, None  # installed from an index, or a record we cannot read
    if not isinstance(url, str) or not url:
        return None, None
    vcs = data.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs"):
        commit = vcs.get("commit_id")
        return f"{vcs['vcs']}+{url}" + (f"@{commit}" if commit else ""), None
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return url, None
    from urllib.request import url2pathname  # not at the top: it imports http.client

    return url, url2pathname(parsed.path)


def _attribute(plugin: object, name: str) -> Any:
    try:
        return getattr(plugin, name, None)
    except Exception:
        return None


def _required_arguments(function: Any) -> list[str]:
    """The positional arguments without a default: those pluggy passes from the hook."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _may_provide(info: PluginInfo, key: str) -> bool:
    """Whether a plugin's names suggest it provides the component with normalised name
    ``key``: ``snake`` from plugin ``snake``, distribution ``zoo-snake`` or module
    ``zoo_snake``; ``timm/...`` from ``timm_models``."""
    names = {info.name, info.distribution, info.module, info.path and Path(info.path).stem}
    for name in filter(None, names):
        base = normalise(str(name).split(":", 1)[0].rsplit(".", 1)[-1].removesuffix(".py"))
        for candidate in {base, base.removeprefix("zoo")} - {""}:
            if candidate == key or (len(key) >= 3 and candidate.startswith(key)):
                return True
    return False


def _not_loaded(info: PluginInfo) -> str:
    """Why a plugin is not loaded, as the end of a sentence: ``installed but failed to load:
    ModuleNotFoundError: ...``."""
    installed = "installed but " if info.origin == "entry point" else ""
    if info.status == "blocked":
        return f"{installed}not loaded: {info.error}"
    reason = str(info.error)
    for prefix, replacement in (
        ("failed to import: ", ""),
        ("failed while registering: ", "its hook raised "),
        ("failed in register_commands: ", "its register_commands raised "),
        ("is invalid: ", ""),
    ):
        if reason.startswith(prefix):
            reason = replacement + reason.removeprefix(prefix)
            break
    return f"{installed}failed to load: {reason}"


def _install_command(origin: Mapping[str, Any]) -> str:
    """How to install the distribution a run's component came from: from the local path it was
    installed from, the URL, or by name."""
    dist = str(origin.get("distribution"))
    if origin.get("path"):
        return f"pip install {shlex.quote(str(origin['path']))}"
    if origin.get("url"):
        return "pip install " + shlex.quote(f"{dist} @ {origin['url']}")
    return f"pip install {shlex.quote(dist)}"


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


def installed_requirements() -> list[str]:
    """The installed distributions with ``zoo`` plugins (entry points), as requirement lines
    (``name==version``, or ``name @ URL`` for one installed from a path or URL), sorted, each
    once: what ``zoo plugins --requirements`` prints. Load controls don't change it."""
    requirements: dict[str, str] = {}
    for entry_point in _entry_points():
        info = _entry_point_info(entry_point)
        if info.requirement and info.distribution:
            requirements.setdefault(normalise(info.distribution), info.requirement)
    return [requirements[key] for key in sorted(requirements)]
