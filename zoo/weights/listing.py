"""What ``zoo list weights`` shows of each entry: accuracy, parameters, FLOPs and file size."""

from __future__ import annotations

from typing import Any

from zoo.plugin.registry import Component
from zoo.weights.entry import Weights


def _entry(component: Component) -> Weights | None:
    entry = component.factory() if component.kind == "weight" else None
    return entry if isinstance(entry, Weights) else None


def details(component: Component) -> dict[str, Any]:
    """The fields ``--json`` adds to a weights row (none for other kinds)."""
    entry = _entry(component)
    return entry.listing() if entry is not None else {}


def summary(component: Component) -> str:
    """The line a table shows: a weights entry's cost and accuracy, else the summary."""
    entry = _entry(component)
    if entry is None:
        return str(component.summary)
    described = entry.describe()
    return described if component.summary in described else f"{component.summary}; {described}"
