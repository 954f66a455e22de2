"""Finding plugins: the built-ins, the installed distributions' entry points of group ``zoo``,
and ``-p`` plugins (import names or ``.py`` files), each with the record of where it came from."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

from zoo.plugin.info import PluginInfo
from zoo.plugin.kinds import normalise

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
    "zoo.plugins.weights",
)

#: Installed distributions advertise plugins under this entry-point group.
ENTRY_POINT_GROUP = "zoo"


def entry_points() -> list[metadata.EntryPoint]:
    """The ``zoo`` entry points, each name once, in a stable order."""
    unique: dict[str, metadata.EntryPoint] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        unique.setdefault(entry_point.name, entry_point)  # a distribution found twice on the path
    return sorted(unique.values(), key=lambda ep: ((ep.dist.name if ep.dist else ""), ep.name))


def entry_point_info(entry_point: metadata.EntryPoint) -> PluginInfo:
    dist = entry_point.dist
    url, path = direct_url(dist) if dist is not None else (None, None)
    return PluginInfo(
        entry_point.name,
        "entry point",
        module=entry_point.value,
        distribution=dist.name if dist else None,
        version=dist.version if dist else None,
        path=path,
        url=url,
    )


def local_info(spec: str) -> PluginInfo:
    """A ``-p`` plugin: a file is named by its stem and known by its absolute path."""
    if spec.endswith(".py"):
        path = Path(spec).expanduser()
        return PluginInfo(path.stem, "local", module=spec, path=str(path.resolve()))
    return PluginInfo(spec, "local", module=spec)


def direct_url(dist: metadata.Distribution) -> tuple[str | None, str | None]:
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


def import_plugin(spec: str) -> ModuleType:
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


def installed_requirements() -> list[str]:
    """The installed distributions with ``zoo`` plugins (entry points), as requirement lines
    (``name==version``, or ``name @ URL`` for one installed from a path or URL), sorted, each
    once: what ``zoo plugins --requirements`` prints. Load controls don't change it."""
    requirements: dict[str, str] = {}
    for entry_point in entry_points():
        info = entry_point_info(entry_point)
        if info.requirement and info.distribution:
            requirements.setdefault(normalise(info.distribution), info.requirement)
    return [requirements[key] for key in sorted(requirements)]
