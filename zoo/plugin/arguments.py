"""A spec's arguments checked against a factory before it is called: the names its signature
takes, and the values its annotations allow (as far as a literal can tell)."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from zoo.errors import ComponentSpecError
from zoo.plugin.kinds import RESERVED_ARGUMENTS


def parameters(kind: str, factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The arguments a spec may set on ``factory`` (one of ``kind``), with their defaults."""
    if _takes_no_arguments(factory):
        return {}
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    reserved = RESERVED_ARGUMENTS[kind]
    return {
        name: p
        for name, p in signature.parameters.items()
        if name not in reserved and p.kind not in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY)
    }


def check_arguments(
    kind: str, name: str, factory: Callable[..., Any], kwargs: Mapping[str, Any]
) -> None:
    """Raise :class:`ComponentSpecError` for an argument the factory of ``kind`` ``name`` does
    not take or whose value does not have the annotated type."""
    for key in kwargs:
        if key in RESERVED_ARGUMENTS[kind]:
            raise ComponentSpecError(
                f"{kind} {name!r}: {key!r} is set by zoo itself, not in the spec", kind=kind
            )
    params = parameters(kind, factory)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if not params and not _takes_no_arguments(factory):
        try:
            inspect.signature(factory)
        except (TypeError, ValueError):
            takes_any = True  # no signature to check against; the call will tell
    hints = _type_hints(factory)
    for key, value in kwargs.items():
        if key not in params:
            if takes_any:
                continue
            accepted = ", ".join(n for n, p in params.items() if p.kind is not p.VAR_KEYWORD)
            raise ComponentSpecError(
                f"{kind} {name!r} takes no argument {key!r}; "
                f"it takes: {accepted or 'no arguments'}",
                kind=kind,
            )
        expected = hints.get(key)
        if expected is not None and not _matches(value, expected):
            raise ComponentSpecError(
                f"{kind} {name!r}: argument {key!r} expects "
                f"{_type_name(expected)}, got {type(value).__name__} {value!r}",
                kind=kind,
            )


def _takes_no_arguments(factory: Callable[..., Any]) -> bool:
    """A class whose only ``__init__`` is ``object``'s or ``torch.nn.Module``'s, such as
    ``nn.Sigmoid``: its signature says ``(*args, **kwargs)``, but it takes nothing."""
    if not inspect.isclass(factory):
        return False
    owner = next(cls for cls in factory.__mro__ if "__init__" in cls.__dict__)
    return owner is object or (
        owner.__name__ == "Module" and owner.__module__ == "torch.nn.modules.module"
    )


def _type_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """The factory's parameter annotations, each resolved on its own, so that one naming a
    type imported only under TYPE_CHECKING doesn't cost us the others."""
    while isinstance(factory, functools.partial):  # a family member's factory
        factory = factory.func
    function = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    annotations = getattr(function, "__annotations__", {})
    namespace = getattr(function, "__globals__", {})
    hints: dict[str, Any] = {}
    for name, annotation in annotations.items():
        if isinstance(annotation, str):
            try:
                # What typing.get_type_hints does, one annotation at a time; the strings are
                # the plugin author's source code, never user input.
                annotation = eval(annotation, namespace)
            except Exception:
                continue
        hints[name] = annotation
    return hints


def _matches(value: Any, expected: Any) -> bool:
    """Whether ``value`` fits the annotation ``expected``, as far as a literal can tell."""
    if expected is Any or expected is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(expected)
    args = typing.get_args(expected)
    if origin is typing.Union or type(expected).__name__ == "UnionType":
        return any(_matches(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected in (bool, str, bytes, dict):
        return isinstance(value, expected)
    if expected in (tuple, list) or origin in (tuple, list, Sequence):
        if not isinstance(value, (tuple, list)):
            return False
        if args and (len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis)):
            return all(_matches(item, args[0]) for item in value)
        return True
    return True  # an annotation a literal cannot be checked against


def _type_name(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")
