"""The code's layout, read with ``ast``: the layers of CONTRIBUTING.md imported one way only, no
import cycles among the project's modules, no module or function so long that it should have been
split into named parts."""

from __future__ import annotations

import ast
from collections.abc import Container, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The source folders and the package each one installs as.
PACKAGES = {"zoo": "zoo", "plugins": "zoo.plugins", "cli": "zoo.cli"}
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400
#: The layers, top to bottom (CONTRIBUTING.md's table): a module may import its own unit and the
#: units of the layers below its own, never a unit beside it or above it. ``zoo`` is the public
#: face (``zoo/__init__.py``) alone; every other module belongs to the longest unit naming it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("zoo.__main__",),
    ("zoo.cli",),
    ("zoo.plugins",),
    ("zoo",),
    ("zoo.comparison", "zoo.tools", "zoo.tuning"),
    ("zoo.training", "zoo.plots"),
    ("zoo.data", "zoo.weights"),
    ("zoo.runs",),
    ("zoo.plugin",),
    ("zoo.processes",),
    ("zoo._compat", "zoo.errors", "zoo.paths", "zoo.text", "zoo._version"),
)
#: What the built-in plugins may import of zoo besides the public face and one another: the data
#: base classes, and the gates on third-party internals (the one place those are used).
PLUGIN_PACKAGES = ("zoo.data", "zoo._compat", "zoo.plugins")


def source_modules() -> dict[str, Path]:
    """Every module of the project by its import name (``cli/plot.py`` is ``zoo.cli.plot``)."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _imported_names(module: str, path: Path, modules: Container[str]) -> Iterator[str]:
    """The dotted names that ``module`` imports anywhere (in functions and ``TYPE_CHECKING``
    blocks too), relative imports resolved; ``from a import b`` names ``a.b`` if it is a
    module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                name = f"{base}.{alias.name}"
                yield name if name in modules else base


def import_graph() -> dict[str, set[str]]:
    """For each project module, the project modules it imports."""
    modules = source_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        graph[module] = set()
        for name in _imported_names(module, path, modules):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                graph[module].add(name)
    return graph


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The shortest import chain from ``start`` to ``goal`` (at least one step)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for imported in sorted(graph[module]):
                if imported in previous:
                    continue
                previous[imported] = module
                if imported == goal:
                    path = [goal]
                    while path[-1] != start or len(path) == 1:
                        path.append(previous[path[-1]])
                    return path[::-1]
                following.append(imported)
        frontier = following
    return None


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle (first module repeated last) for each group of modules that import
    one another, directly or through others."""
    cycles = []
    grouped: set[str] = set()
    for module in sorted(graph):
        if module in grouped:
            continue
        cycle = _shortest_path(graph, module, module)
        if cycle is None:
            continue
        cycles.append(cycle)
        grouped.update(
            other
            for other in graph
            if _shortest_path(graph, module, other) and _shortest_path(graph, other, module)
        )
    return cycles


def test_no_import_cycles() -> None:
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"], ["e", "e2", "e"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_imports_are_read_everywhere_and_resolved(tmp_path: Path) -> None:
    path = tmp_path / "runs.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from zoo.comparison.compare import Comparison\n"
        "def plot() -> None:\n"
        "    from . import config\n"
        "    from ..cli.options import run_options\n"
        "    import zoo.text as text\n"
    )
    modules = {"zoo", "zoo.comparison.compare", "zoo.runs.config", "zoo.cli.options", "zoo.text"}
    names = set(_imported_names("zoo.runs.directory", path, modules))
    assert names == {
        "typing",
        "zoo.comparison.compare",
        "zoo.runs.config",
        "zoo.cli.options",
        "zoo.text",
    }


def _functions(body: list[ast.stmt], prefix: str = "") -> Iterator[tuple[str, int, int]]:
    """``(qualified name, line, lines)`` of every function defined in ``body``, however deep."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            yield name, node.lineno, (node.end_lineno or node.lineno) - node.lineno + 1
            yield from _functions(node.body, f"{name}.<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f"{prefix}{node.name}.")
        else:
            for block in ("body", "orelse", "finalbody", "handlers", "cases"):
                yield from _functions(getattr(node, block, []), prefix)


def long_functions() -> list[tuple[str, str]]:
    """``(file, description)`` for every function (``def`` to its last line, methods and
    nested functions included) over MAX_FUNCTION_LINES lines."""
    found = []
    for path in source_modules().values():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        file = path.relative_to(ROOT).as_posix()
        for name, line, length in _functions(tree.body):
            if length > MAX_FUNCTION_LINES:
                found.append((file, f"{file}:{line}: {name}, {length} lines"))
    return found


def test_no_function_over_80_lines() -> None:
    found = [entry for _, entry in long_functions()]
    assert not found, "split these into named steps:\n" + "\n".join(found)


def unit_in(module: str, units: tuple[str, ...]) -> str | None:
    """The unit of ``units`` that ``module`` is or lies inside, if any."""
    return next((unit for unit in units if module == unit or module.startswith(unit + ".")), None)


def unit_of(module: str) -> tuple[str, int]:
    """The unit of LAYERS that ``module`` belongs to, and its layer (0 is the top)."""
    found = [
        (unit, layer)
        for layer, units in enumerate(LAYERS)
        for unit in units
        if module == unit or (unit != "zoo" and module.startswith(unit + "."))
    ]
    assert found, f"{module} is in no layer of LAYERS: add it to the table (and CONTRIBUTING.md)"
    return max(found, key=lambda pair: len(pair[0]))


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a unit beside or above the importing module's own."""
    found = []
    for module, imported in sorted(graph.items()):
        unit, layer = unit_of(module)
        for other in sorted(imported):
            other_unit, other_layer = unit_of(other)
            if other_unit != unit and other_layer <= layer:
                found.append(f"{module} (layer {layer}) imports {other} (layer {other_layer})")
    return found


def test_layers_import_one_way() -> None:
    found = layer_violations(import_graph())
    assert not found, "imports against the layers of CONTRIBUTING.md:\n" + "\n".join(found)


def test_the_layer_check_finds_climbs_and_side_steps() -> None:
    graph = {
        "zoo.training.module": {"zoo.runs.config", "zoo.training.recipe"},
        "zoo.runs.config": {"zoo.training.module", "zoo.errors"},
        "zoo.comparison.groups": {"zoo.tools.scaffold"},
        "zoo.data.vision": {"zoo"},
    }
    assert layer_violations(graph) == [
        "zoo.comparison.groups (layer 4) imports zoo.tools.scaffold (layer 4)",
        "zoo.data.vision (layer 6) imports zoo (layer 3)",
        "zoo.runs.config (layer 7) imports zoo.training.module (layer 5)",
    ]


def test_built_in_plugins_use_only_the_plugin_api() -> None:
    found = [
        f"{module} imports {other}"
        for module, imported in sorted(import_graph().items())
        if module.startswith("zoo.plugins.")
        for other in sorted(imported)
        if other != "zoo" and unit_in(other, PLUGIN_PACKAGES) is None
    ]
    assert not found, "built-in plugins use what zoo exports, nothing else:\n" + "\n".join(found)


def test_no_module_over_400_lines() -> None:
    found = [
        f"{path.relative_to(ROOT).as_posix()}: {lines} lines"
        for path in source_modules().values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not found, "split these by job:\n" + "\n".join(found)
