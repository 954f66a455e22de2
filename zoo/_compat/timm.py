"""timm's registries read from its source files, without importing timm (or torch), on the timm
versions in :data:`CHECKED_WITH` (major.minor); with any other timm, or where its sources do not
read as expected, :func:`timm_registry` returns ``None`` and the caller asks timm's public API
(``timm.list_models()``, ``timm.optim.list_optimizers()``), which imports timm (seconds).

* ``"models"``: the functions decorated ``@register_model`` in ``timm/models/*.py``;
* ``"optimizers"``: the ``OptimInfo(...)`` entries and ``register_alias(...)`` calls of
  ``timm/optim/_optim_factory.py``, a private module of timm.

``tests/test_compat.py`` checks that both equal what timm's public API says on the installed
timm.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

#: The timm versions (major.minor) the source reads were checked with.
CHECKED_WITH = ("1.0",)

#: What :func:`timm_registry` reads.
KINDS = ("models", "optimizers")

# A model entry point in timm's sources: ``@register_model`` (maybe more decorators), then a def.
_ENTRY_POINT = re.compile(r"^@register_model[ \t]*\r?\n(?:[ \t]*@[^\n]*\n)*def[ \t]+(\w+)", re.M)


def installed_version() -> str:
    """The installed timm's version, or ``""`` where timm is not installed (read without
    importing it)."""
    try:
        return metadata.version("timm")
    except metadata.PackageNotFoundError:
        return ""


def checked(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed timm's) is one in :data:`CHECKED_WITH`."""
    version = installed_version() if version is None else version
    return ".".join(version.split("+")[0].split(".")[:2]) in CHECKED_WITH


def timm_registry(kind: str) -> dict[str, Any] | None:
    """timm's registry ``kind`` read from its sources, or ``None`` (ask timm):

    * ``"models"``: model name -> the stem of its module in ``timm.models``;
    * ``"optimizers"``: lower-case name (aliases too) -> ``{"name", "description",
      "second_order", "opt_class"}`` as far as the source states them (``opt_class`` only where
      it is a string naming a class of another package, e.g. ``"apex.optimizers.FusedLAMB"``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown timm registry {kind!r}; choose one of {', '.join(KINDS)}")
    if not checked():
        return None
    read = _model_modules if kind == "models" else _optimizer_infos
    for folder in _timm_folders():
        try:
            found = read(folder)
        except (OSError, SyntaxError, ValueError, KeyError):  # sources not as checked
            continue
        if found:
            return found
    return None


def _timm_folders() -> Iterator[Path]:
    spec = importlib.util.find_spec("timm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        yield Path(folder)


def _model_modules(folder: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    for path in sorted((folder / "models").glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "@register_model" in text:
            for name in _ENTRY_POINT.findall(text):
                names[name] = path.stem
    return dict(sorted(names.items()))


def _optimizer_infos(folder: Path) -> dict[str, dict[str, Any]]:
    source = (folder / "optim" / "_optim_factory.py").read_text(encoding="utf-8")
    infos: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func.attr if isinstance(node.func, ast.Attribute) else None
        callee = node.func.id if isinstance(node.func, ast.Name) else callee
        if callee == "OptimInfo":
            fields = dict(zip(("name", "opt_class", "description"), node.args, strict=False))
            fields.update({k.arg: k.value for k in node.keywords if k.arg})
            values = {
                k: ast.literal_eval(v)
                for k, v in fields.items()
                if k in ("name", "description", "second_order")
                or (k == "opt_class" and isinstance(v, ast.Constant))
            }
            infos[str(values["name"]).lower()] = values
        elif callee == "register_alias" and len(node.args) == 2:
            alias, target = (ast.literal_eval(a) for a in node.args)
            aliases[str(alias).lower()] = str(target).lower()
    for alias, target in aliases.items():
        infos[alias] = infos[target]
    return dict(sorted(infos.items()))
