"""Component specs: ``NAME`` or ``NAME:key=value,key=value``.

Values are Python literals read with :func:`ast.literal_eval` (never ``eval``); a bare word that is
not a literal, such as ``split=balanced``, is taken as a string. Commas inside brackets or quotes do
not split arguments, so ``mlp:hidden=(256,128),bias=True`` has two arguments.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import ComponentSpecError

_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CLOSING = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class ComponentSpec:
    """A component name with the keyword arguments for its factory."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.kwargs:
            return self.name
        args = ",".join(f"{key}={value!r}" for key, value in self.kwargs.items())
        return f"{self.name}:{args}"

    def with_kwargs(self, **kwargs: Any) -> ComponentSpec:
        """A copy with ``kwargs`` added to (and overriding) this spec's arguments."""
        return ComponentSpec(self.name, {**self.kwargs, **kwargs})


def parse_spec(spec: str | ComponentSpec) -> ComponentSpec:
    """Parse ``NAME`` or ``NAME:key=value,...`` into a :class:`ComponentSpec`."""
    if isinstance(spec, ComponentSpec):
        return spec
    if not isinstance(spec, str):
        raise ComponentSpecError(f"a component spec must be a string, not {type(spec).__name__}")
    name, sep, args = spec.strip().partition(":")
    name = name.strip()
    if not name:
        raise ComponentSpecError(f"component spec {_abridged(spec)} has no name")
    kwargs: dict[str, Any] = {}
    if sep:
        for part in _split_top_level(args, spec):
            key, eq, raw = part.partition("=")
            key = key.strip()
            if not eq or not _KEY.fullmatch(key):
                raise ComponentSpecError(
                    f"in {_abridged(spec)}: {part.strip()!r} is not key=value "
                    f"(write e.g. {name}:negative_slope=0.2)"
                )
            if key in kwargs:
                raise ComponentSpecError(f"in {_abridged(spec)}: argument {key!r} is given twice")
            kwargs[key] = _parse_value(raw.strip(), key, spec)
    return ComponentSpec(name, kwargs)


def _split_top_level(args: str, spec: str) -> list[str]:
    """Split on commas that are outside brackets and quotes."""
    parts: list[str] = []
    stack: list[str] = []
    quote: str | None = None
    start = 0
    i = 0
    while i < len(args):
        char = args[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in _CLOSING:
            stack.append(_CLOSING[char])
        elif char in ")]}":
            if not stack or stack.pop() != char:
                raise ComponentSpecError(f"in {_abridged(spec)}: unbalanced {char!r}")
        elif char == "," and not stack:
            parts.append(args[start:i])
            start = i + 1
        i += 1
    if quote or stack:
        raise ComponentSpecError(f"in {_abridged(spec)}: unclosed {quote or 'bracket'}")
    parts.append(args[start:])
    if any(not part.strip() for part in parts):
        raise ComponentSpecError(f"in {_abridged(spec)}: empty argument (stray comma?)")
    return parts


def _parse_value(raw: str, key: str, spec: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if _BARE_WORD.fullmatch(raw):
            return raw
        raise ComponentSpecError(
            f"in {_abridged(spec)}: the value of {key!r}, {_abridged(raw)}, is not a Python "
            "literal (numbers, strings, tuples, lists, True/False/None)"
        ) from None


def _abridged(text: str, limit: int = 80) -> str:
    """``repr(text)``, cut to about ``limit`` characters: error messages echo what was typed."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} characters)"
