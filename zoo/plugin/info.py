"""What the plugin host knows of plugins: the settings that choose which to load, and each
plugin's record (:class:`PluginInfo`): where it came from, whether it loaded, what it registered."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.plugin.isolation import plugin_timeout

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
    #: Seconds an installed or -p plugin's import or hook may take before it is skipped.
    timeout: float | None = None

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
        timeout: float | None = None,
    ) -> PluginSettings:
        return cls(
            plugins=tuple(plugins),
            block=tuple(block),
            autoload=not _env_flag("ZOO_DISABLE_PLUGIN_AUTOLOAD") if autoload is None else autoload,
            allow=_env_list("ZOO_PLUGINS") if allow is None else tuple(allow),
            strict=_env_flag("ZOO_STRICT_PLUGINS") if strict is None else strict,
            debug=_env_flag("ZOO_DEBUG_PLUGINS") if debug is None else debug,
            timeout=plugin_timeout() if timeout is None else timeout or None,
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
        """What ``zoo plugins --json`` prints of it."""
        where = {k: v for k, v in self.origin_of_components().items() if k != "plugin"}
        return {
            "name": self.name,
            "source": self.source,
            "origin": self.origin,
            **where,
            "status": self.status,
            "error": self.error,
            "registered": self.registered,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 4),
        }
