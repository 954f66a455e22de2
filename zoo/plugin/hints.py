"""Where a component that no loaded plugin provides comes from, for its error: the plugin a run
recorded (what to install or load to get it back), or the plugins that did not load and may
provide it (and why they did not)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.plugin.info import PluginInfo
from zoo.plugin.kinds import normalise


def missing_hint(
    plugins: Mapping[str, PluginInfo],
    kind: str,
    name: str,
    origin: Mapping[str, Any] | None = None,
) -> str:
    """Sentences on where a component no loaded plugin provides comes from: the plugin a
    run recorded (``origin``, as :meth:`PluginInfo.origin_of_components` gives), or else
    the plugins that did not load and may provide it. Empty if there is nothing to say."""
    if origin and origin.get("plugin"):
        return _origin_hint(plugins, origin)
    key = normalise(name.split("/", 1)[0])
    candidates = [
        info for info in plugins.values() if info.status != "loaded" and _may_provide(info, key)
    ]
    if candidates:
        return " ".join(
            f"It may come from plugin {info.describe()}, which is {_not_loaded(info)}."
            for info in candidates
        )
    failed = [info for info in plugins.values() if info.status == "failed"]
    if not failed or "/" in name:
        return ""
    named = ", ".join(info.describe() for info in failed[:3])
    more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
    return f"Plugins that failed to load may provide it: {named}{more}; `zoo plugins` says why."


def _origin_hint(plugins: Mapping[str, PluginInfo], origin: Mapping[str, Any]) -> str:
    plugin, dist = str(origin["plugin"]), normalise(str(origin.get("distribution") or ""))
    came = f"It came from plugin {plugin!r}"
    if dist:
        came += f" of the distribution {origin['distribution']} {origin.get('version') or ''}"
        came = came.rstrip()
    info = plugins.get(plugin)
    if dist and (info is None or normalise(info.distribution or "") != dist):
        same = [i for i in plugins.values() if normalise(i.distribution or "") == dist]
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
