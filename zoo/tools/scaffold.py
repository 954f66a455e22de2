"""Plugin packages: write a new one from the template (:func:`new_plugin`), and install or
uninstall packages with pip in the interpreter zoo runs in (:func:`pip_install`,
:func:`pip_uninstall`), telling which ``zoo`` plugins that added or removed.

Naming: ``new_plugin("myacts")`` (or ``"zoo-myacts"``) writes the distribution ``zoo-myacts``
with the module ``zoo_myacts`` and the entry point ``myacts``; its components are named
``myacts-swish``, ``myacts-convnet``, ... and its command ``zoo myacts``. The directory is the
name as given. The template lives in ``zoo/tools/templates/plugin/`` as ``.tmpl`` files (package
data),
with ``{{placeholder}}`` fields. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

from zoo._version import __version__
from zoo.errors import ZooError, ZooUsageError
from zoo.plugin.loading import ENTRY_POINT_GROUP

#: The distribution that ``zoo uninstall`` refuses to remove: zoo itself.
SELF_DISTRIBUTION = "lightning-zoo"

MAX_NAME_LENGTH = 30
NAME_RULE = (
    "a plugin name is lower-case letters and digits, starting with a letter, with single '-' or "
    f"'_' between words, at most {MAX_NAME_LENGTH} characters (e.g. myacts, my-acts); "
    "a 'zoo-' prefix is dropped from the names inside"
)
_NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*\Z")

#: What the template writes: the file in the new package -> its template resource.
TEMPLATE_FILES: dict[str, str] = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "src/{module}/__init__.py": "__init__.py.tmpl",
    "src/{module}/components.py": "components.py.tmpl",
    "src/{module}/data.py": "data.py.tmpl",
    "src/{module}/commands.py": "commands.py.tmpl",
    "src/{module}/py.typed": "py.typed.tmpl",
    "tests/test_plugin.py": "test_plugin.py.tmpl",
    ".gitignore": "gitignore.tmpl",
}

#: The components the template registers, by kind: ``{name}`` is the plugin's name.
TEMPLATE_COMPONENTS: dict[str, str] = {
    "activation": "{name}-swish",
    "architecture": "{name}-convnet",
    "dataset": "{name}-stripes",
    "optimizer": "{name}-sgd",
    "scheduler": "{name}-linear",
    "augmentation": "{name}-noise",
    "logger": "{name}-csv",
    "command": "{name}",
}

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class PluginNames:
    """The names of a new plugin package, all derived from the one the user gives."""

    name: str  # the entry point, the prefix of its components, its command: myacts
    distribution: str  # zoo-myacts
    module: str  # zoo_myacts
    directory: str  # the name as given: myacts, or zoo-myacts

    @property
    def components(self) -> dict[str, str]:
        """Kind -> the name of the template's example of that kind (``command``: ``zoo NAME``)."""
        return {
            kind: pattern.format(name=self.name) for kind, pattern in TEMPLATE_COMPONENTS.items()
        }


@dataclass(frozen=True)
class NewPlugin:
    """What :func:`new_plugin` wrote."""

    names: PluginNames
    root: Path
    files: tuple[Path, ...]  # relative to root


def plugin_names(name: str) -> PluginNames:
    """The names of a plugin called ``name``; a :class:`ZooUsageError` giving the rule if it
    cannot be one."""
    if len(name) > MAX_NAME_LENGTH or not _NAME_PATTERN.match(name):
        raise ZooUsageError(f"cannot make a plugin named {name!r}: {NAME_RULE}")
    short = name
    for prefix in ("zoo-", "zoo_"):
        if name.startswith(prefix):
            short = name.removeprefix(prefix)
    return PluginNames(
        name=short,
        distribution="zoo-" + short.replace("_", "-"),
        module="zoo_" + short.replace("-", "_"),
        directory=name,
    )


def new_plugin(name: str, parent: str | Path = ".", *, taken: Collection[str] = ()) -> NewPlugin:
    """Write a ready plugin package ``parent/name/``: pyproject.toml with the entry point, a
    module with one example of every hook, its tests and a README.

    ``taken`` are command names in use (``zoo``'s own): a plugin whose command would be one of
    them is refused. So is a target that exists and is not an empty directory.
    """
    names = plugin_names(name)
    if names.name in taken:
        raise ZooUsageError(
            f"cannot make a plugin named {name!r}: its command would be 'zoo {names.name}', "
            "which exists already; pick another name"
        )
    root = Path(parent) / names.directory
    _check_target(root)
    values = {
        "name": names.name,
        "distribution": names.distribution,
        "module": names.module,
        "directory": names.directory,
        "zoo_version": __version__,
    }
    written = []
    for target, template in TEMPLATE_FILES.items():
        path = Path(target.format(module=names.module))
        _write(root / path, render(read_template(template), values))
        written.append(path)
    return NewPlugin(names, root, tuple(written))


def _check_target(root: Path) -> None:
    """Refuse a target that exists and is not an empty directory."""
    try:
        if root.is_dir() and not any(root.iterdir()):
            return
    except OSError as error:
        raise ZooError(f"cannot read {root}: {error.strerror or error}") from None
    if root.exists() or root.is_symlink():
        what = "is not empty" if root.is_dir() else "is not a directory"
        raise ZooUsageError(f"{root} exists and {what}; choose another NAME or --dir")


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ZooError(f"cannot write {path}: {error.strerror or error}") from None


def read_template(template: str) -> str:
    """The text of one template resource of ``zoo/tools/templates/plugin/``."""
    return (resources.files("zoo.tools") / "templates" / "plugin" / template).read_text(
        encoding="utf-8"
    )


def render(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{{key}}`` replaced by ``values[key]``; an unknown key is a bug in the
    template, a ``KeyError``."""
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


# -- installing and uninstalling with pip ------------------------------------------------------


@dataclass(frozen=True, order=True)
class InstalledPlugin:
    """An entry point of group ``zoo`` of an installed distribution."""

    distribution: str
    name: str
    version: str = field(compare=False)
    value: str = field(compare=False)  # the module it loads


@dataclass(frozen=True)
class PluginChanges:
    """The ``zoo`` plugins a pip command added, changed the version of, or removed."""

    added: tuple[InstalledPlugin, ...] = ()
    updated: tuple[tuple[InstalledPlugin, str], ...] = ()  # the plugin now, its old version
    removed: tuple[InstalledPlugin, ...] = ()


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
                    dist_name, entry_point.name, dist.version, entry_point.value
                )
                found[(key, entry_point.name)] = plugin
    return found


#: Run by :func:`installed_plugins_afresh` in a new interpreter. The current directory goes off
#: ``sys.path``: a ``zoo`` console script does not look there.
_LIST_PLUGINS = """\
import dataclasses, json, os, sys
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]
from zoo.tools.scaffold import installed_plugins
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
            (p, before[key].version)
            for key, p in sorted(after.items())
            if key in before and before[key].version != p.version
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
    that this removed. lightning-zoo itself is refused, a :class:`ZooUsageError`."""
    check_uninstallable(packages)
    before = installed_plugins_afresh()
    run_pip(["uninstall", "--yes", *packages], output)
    return _changes(before, installed_plugins_afresh())


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
