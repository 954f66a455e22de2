"""Plugin packages: write a new one from the template (:func:`new_plugin`); installing and
uninstalling them with pip is :mod:`zoo.tools.pip`'s.

Naming: ``new_plugin("myacts")`` (or ``"zoo-myacts"``) writes the distribution ``zoo-myacts``
with the module ``zoo_myacts`` and the entry point ``myacts``; its components are named
``myacts-swish``, ``myacts-convnet``, ... and its command ``zoo myacts``. The directory is the
name as given. The template lives in ``zoo/tools/templates/plugin/`` as ``.tmpl`` files (package
data),
with ``{{placeholder}}`` fields. Nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from zoo._version import __version__
from zoo.errors import ZooError, ZooUsageError

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
    _check_not_installed(name, names.distribution)
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


def _check_not_installed(name: str, distribution: str) -> None:
    """Refuse a name whose distribution is installed: installing the new package would
    replace the installed one, whose plugin then silently changes."""
    from zoo.tools.pip import canonical_name, installed_plugins

    key = canonical_name(distribution)
    installed = [p for (dist, _), p in installed_plugins().items() if dist == key]
    if installed:
        plugin = installed[0]
        raise ZooUsageError(
            f"cannot make a plugin named {name!r}: the distribution {plugin.distribution} "
            f"{plugin.version} is installed already (plugin {plugin.name!r}, from "
            f"{plugin.location or 'an unknown place'}), and installing the new package would "
            f"replace it. Pick another name, or first run: zoo uninstall {plugin.distribution}"
        )


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
