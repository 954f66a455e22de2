"""pip in the interpreter zoo runs in: install and uninstall packages (:func:`pip_install`,
:func:`pip_uninstall`), telling which ``zoo`` plugins that added, updated, replaced or removed,
and which it could not remove. Nothing here imports torch."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata

from zoo.errors import ZooError, ZooUsageError
from zoo.plugin.discovery import ENTRY_POINT_GROUP, direct_url

#: The distribution that ``zoo uninstall`` refuses to remove: zoo itself.
SELF_DISTRIBUTION = "lightning-zoo"


@dataclass(frozen=True, order=True)
class InstalledPlugin:
    """An entry point of group ``zoo`` of an installed distribution."""

    distribution: str
    name: str
    version: str = field(compare=False)
    value: str = field(compare=False)  # the module it loads
    #: The directory that holds it (site-packages, or pip's --target).
    site: str = field(compare=False, default="")
    #: The project directory or URL it was installed from (PEP 610); "" from an index.
    source: str = field(compare=False, default="")

    @property
    def location(self) -> str:
        """Where it comes from, as messages say: its source, else its directory."""
        return self.source or self.site

    def describe(self) -> str:
        """``name (distribution version)``, as messages name it."""
        return f"{self.name} ({self.distribution} {self.version})"


@dataclass(frozen=True)
class PluginChanges:
    """The ``zoo`` plugins a pip command added, updated (a new version, or the same name from
    somewhere else), or removed; and those an uninstall asked for that are still there."""

    added: tuple[InstalledPlugin, ...] = ()
    updated: tuple[tuple[InstalledPlugin, InstalledPlugin], ...] = ()  # (now, before)
    removed: tuple[InstalledPlugin, ...] = ()
    kept: tuple[InstalledPlugin, ...] = ()


def canonical_name(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Lightning_Zoo`` is
    ``lightning-zoo``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_plugins() -> dict[tuple[str, str], InstalledPlugin]:
    """The ``zoo`` entry points installed now, by (canonical distribution, entry-point name);
    of a distribution found twice on ``sys.path``, the first, as the loader sees it."""
    importlib.invalidate_caches()
    found: dict[tuple[str, str], InstalledPlugin] = {}
    seen: set[str] = set()
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"] or ""
        key = canonical_name(dist_name)
        if key in seen:
            continue
        seen.add(key)
        for entry_point in dist.entry_points:
            if entry_point.group == ENTRY_POINT_GROUP:
                plugin = InstalledPlugin(
                    dist_name, entry_point.name, dist.version, entry_point.value, *_location(dist)
                )
                found[(key, entry_point.name)] = plugin
    return found


def _location(dist: metadata.Distribution) -> tuple[str, str]:
    """The directory that holds ``dist``, and the path or URL it was installed from."""
    url, path = direct_url(dist)
    try:
        site = str(dist.locate_file(""))
    except Exception:  # a distribution of an unusual finder
        site = ""
    return site, str(path or url or "")


#: Run by :func:`installed_plugins_afresh` in a new interpreter. The current directory goes off
#: ``sys.path``: a ``zoo`` console script does not look there.
_LIST_PLUGINS = """\
import dataclasses, json, os, sys
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]
from zoo.tools.pip import installed_plugins
print(json.dumps([dataclasses.asdict(p) for p in installed_plugins().values()]))
"""


def installed_plugins_afresh() -> dict[tuple[str, str], InstalledPlugin]:
    """:func:`installed_plugins` as a new ``zoo`` process sees them: after pip has run, this
    process's ``sys.path`` may be out of date (an editable install adds its source directory to
    it at start-up, and that directory keeps its ``.egg-info`` after an uninstall). Falls back
    to this process's view if the new interpreter cannot say."""
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _LIST_PLUGINS],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        listed = json.loads(completed.stdout) if completed.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        listed = None
    if not isinstance(listed, list):
        return installed_plugins()
    plugins = [InstalledPlugin(**fields) for fields in listed]
    return {(canonical_name(p.distribution), p.name): p for p in plugins}


def plugins_of(distributions: Iterable[str]) -> list[InstalledPlugin]:
    """The installed ``zoo`` plugins of these distributions (by name or requirement)."""
    wanted = {canonical_name(_requirement_name(d)) for d in distributions}
    return sorted(p for (dist, _), p in installed_plugins().items() if dist in wanted)


def _requirement_name(requirement: str) -> str:
    """The distribution name a requirement starts with: ``zoo-snake`` of ``zoo-snake>=0.1``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else requirement


def _changes(
    before: dict[tuple[str, str], InstalledPlugin], after: dict[tuple[str, str], InstalledPlugin]
) -> PluginChanges:
    return PluginChanges(
        added=tuple(sorted(p for key, p in after.items() if key not in before)),
        updated=tuple(
            (p, before[key])
            for key, p in sorted(after.items())
            if key in before
            and (before[key].version, before[key].location) != (p.version, p.location)
        ),
        removed=tuple(sorted(p for key, p in before.items() if key not in after)),
    )


def run_pip(arguments: Sequence[str], output: Callable[[str], None]) -> None:
    """``python -m pip ARGUMENTS`` in zoo's own interpreter, each line of its output (stdout and
    stderr) passed to ``output`` as it comes; a :class:`ZooError` if pip fails."""
    if not sys.executable:
        raise ZooError("cannot find the Python interpreter zoo runs in, to run pip with")
    command = [sys.executable, "-m", "pip", *arguments]
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as error:
        raise ZooError(f"cannot run pip ({sys.executable}): {error.strerror or error}") from None
    with process:
        assert process.stdout is not None
        for line in process.stdout:
            output(line)
    if process.returncode != 0:
        raise ZooError(f"pip failed (exit {process.returncode}); its output is above")


def pip_install(
    packages: Sequence[str],
    *,
    editable: Sequence[str] = (),
    upgrade: bool = False,
    force_reinstall: bool = False,
    no_cache_dir: bool = False,
    output: Callable[[str], None] = print,
) -> PluginChanges:
    """``pip install`` the packages (and ``-e`` the ``editable`` paths) into the environment zoo
    runs in; the ``zoo`` plugins that this added or changed the version of."""
    if not packages and not editable:
        raise ZooUsageError("nothing to install: give a PACKAGE, or -e PATH for a local project")
    flags = [
        flag
        for flag, wanted in (
            ("--upgrade", upgrade),
            ("--force-reinstall", force_reinstall),
            ("--no-cache-dir", no_cache_dir),
        )
        if wanted
    ]
    for path in editable:
        flags += ["--editable", path]
    before = installed_plugins_afresh()
    run_pip(["install", *flags, *packages], output)
    return _changes(before, installed_plugins_afresh())


def pip_uninstall(
    packages: Sequence[str], *, output: Callable[[str], None] = print
) -> PluginChanges:
    """``pip uninstall -y`` the packages from the environment zoo runs in; the ``zoo`` plugins
    that this removed, and those of ``packages`` pip left (``kept``: in a virtual environment,
    pip removes nothing outside it). lightning-zoo itself is refused, a
    :class:`ZooUsageError`."""
    check_uninstallable(packages)
    before = installed_plugins_afresh()
    run_pip(["uninstall", "--yes", *packages], output)
    after = installed_plugins_afresh()
    wanted = {canonical_name(_requirement_name(p)) for p in packages}
    kept = tuple(sorted(p for (dist, _), p in after.items() if dist in wanted))
    return dataclasses.replace(_changes(before, after), kept=kept)


def check_uninstallable(packages: Sequence[str]) -> None:
    """A :class:`ZooUsageError` unless ``packages`` are names to uninstall, zoo's own not among
    them."""
    if not packages:
        raise ZooUsageError("nothing to uninstall: give a PACKAGE")
    for package in packages:
        if canonical_name(_requirement_name(package)) == SELF_DISTRIBUTION:
            raise ZooUsageError(
                f"zoo uninstall does not remove {SELF_DISTRIBUTION} itself (zoo would be gone "
                f"with it); to do that, run: {sys.executable or 'python'} -m pip uninstall "
                f"{SELF_DISTRIBUTION}"
            )
