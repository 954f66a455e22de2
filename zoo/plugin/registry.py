"""The component registry: one plain table of factories per kind (activations, architectures,
datasets, optimizers, schedulers, augmentations, loggers).

Plugins fill it through the ``register`` callback the core hands to their hooks, so the registry
knows which plugin registered what and refuses two registrations of one name. Names are looked up
normalised: case-insensitive, with ``-`` and ``_`` ignored.

A *family* is one registration, named ``PREFIX/*``, that stands for many names ``PREFIX/member``
(``timm/*``: every timm model as ``timm/<model_name>``): its ``members`` callable lists them, and is
called only when such a name is looked up or a pattern that can match one is listed.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable
from typing import Any

from zoo.errors import ComponentSpecError, DuplicateComponentError, UnknownComponentError
from zoo.plugin.component import Component, Members
from zoo.plugin.kinds import FAMILY_SEPARATOR, FAMILY_SUFFIX, KINDS, Kind, normalise

__all__ = ["KINDS", "Component", "Kind", "Members", "Registry", "normalise"]


class Registry:
    """Components of every kind by normalised name."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def registrar(
        self,
        kind: Kind,
        plugin: str,
        alias_taken: Callable[[DuplicateComponentError], None] | None = None,
    ) -> Callable[..., None]:
        """The ``register`` callback handed to one plugin's ``register_<kind>s`` hook;
        ``alias_taken`` as in :meth:`add`."""

        def register(
            name: str,
            factory: Callable[..., Any] | str,
            *,
            summary: str,
            aliases: Iterable[str] = (),
            members: Callable[[], Members] | str | None = None,
        ) -> None:
            self.add(
                Component(
                    kind, name, factory, summary.strip(), plugin, tuple(aliases), members=members
                ),
                alias_taken=alias_taken,
            )

        register.__doc__ = (
            f"Register one {kind}: register(name, factory, *, summary, aliases=(), members=None)."
        )
        return register

    def add(
        self,
        component: Component,
        *,
        alias_taken: Callable[[DuplicateComponentError], None] | None = None,
    ) -> None:
        """Add a component; a name already taken raises DuplicateComponentError. So does an
        alias already taken, unless ``alias_taken`` is given: then it is called with that error
        (it may raise) and the component is added without the alias."""
        if not isinstance(component.name, str) or not component.name.strip():
            raise ValueError(f"plugin {component.plugin!r} registered a {component.kind} no name")
        if not (callable(component.target) or _is_reference(component.target)):
            raise TypeError(
                f"plugin {component.plugin!r} registered {component.kind} {component.name!r} with "
                f"factory {component.target!r}: expected a callable or a 'module:attribute' string"
            )
        members = component.members
        if members is not None and not (callable(members) or _is_reference(members)):
            raise TypeError(
                f"plugin {component.plugin!r} registered {component.kind} family "
                f"{component.name!r} with members {members!r}: expected a callable or a "
                f"'module:attribute' string"
            )
        names = (component.name, *component.aliases)
        for name in names:
            prefix = name.removesuffix(FAMILY_SUFFIX) if members is not None else name
            if (members is not None) != name.endswith(FAMILY_SUFFIX) or FAMILY_SEPARATOR in prefix:
                raise ValueError(
                    f"plugin {component.plugin!r} registered {component.kind} {name!r}: "
                    f"'{FAMILY_SEPARATOR}' separates a family from its members; a family is "
                    f"registered as 'PREFIX{FAMILY_SUFFIX}' with members=..., and other names "
                    f"may not contain '{FAMILY_SEPARATOR}'"
                )
        table = self._tables[component.kind]
        # A family is found by its prefix: timm/* under "timm".
        key = normalise(component.name.removesuffix(FAMILY_SUFFIX))
        if key in table:
            other = table[key]
            raise DuplicateComponentError(
                f"{component.kind} {component.name!r} is registered twice: by plugin "
                f"{other.plugin!r} (as {other.name!r}) and by plugin {component.plugin!r}. "
                f"Block one with `zoo -p no:PLUGIN` or uninstall it."
            )
        keys, aliases = [key], []
        for alias in component.aliases:
            alias_key = normalise(alias.removesuffix(FAMILY_SUFFIX))
            if alias_key in table:
                other = table[alias_key]
                error = DuplicateComponentError(
                    f"alias {alias!r} of {component.kind} {component.name!r} is taken by plugin "
                    f"{other.plugin!r} (as {other.name!r})"
                )
                if alias_taken is None:
                    raise DuplicateComponentError(
                        f"{error}, so plugin {component.plugin!r} cannot have it. Block one with "
                        "`zoo -p no:PLUGIN` or uninstall it."
                    )
                alias_taken(error)
                continue
            keys.append(alias_key)
            aliases.append(alias)
        if len(aliases) < len(component.aliases):
            component = dataclasses.replace(component, aliases=tuple(aliases))
        for alias_key in keys:
            table[alias_key] = component

    def remove_plugin(self, plugin: str) -> None:
        """Forget everything one plugin registered."""
        for table in self._tables.values():
            for key in [k for k, c in table.items() if c.plugin == plugin]:
                del table[key]

    def get(self, kind: Kind, name: str) -> Component:
        """The component registered under ``name`` (normalised), or the member of a family named
        ``family/member``; else UnknownComponentError."""
        table = self._tables[kind]
        key = normalise(name)
        family_key, separator, member = key.partition(FAMILY_SEPARATOR)
        family = table.get(family_key)
        if family is not None and family.is_family and member in ("", "*"):
            raise ComponentSpecError(
                f"{kind} {family.name!r} is a family of names: name one of its members, "
                f"'{family.prefix}{FAMILY_SEPARATOR}<name>' "
                f"(zoo list {kind}s '{family.name}' lists them)",
                kind=kind,
            )
        if separator and family is not None and family.is_family:
            return family.get_member(name.split(FAMILY_SEPARATOR, 1)[1])
        if key in table:
            return table[key]
        matches = difflib.get_close_matches(key, list(table), n=3, cutoff=0.6)
        suggestions = list(dict.fromkeys(table[m].name for m in matches))
        raise UnknownComponentError(kind, name, suggestions)

    def components(self, kind: Kind, pattern: str | None = None) -> list[Component]:
        """Components of one kind sorted by name, filtered by an fnmatch ``pattern`` if given.

        Without a pattern a family is one entry (``timm/*``); a pattern also matches its members'
        names (``timm/*resnet*``), which lists them: only then is the family asked for them."""
        unique = {id(c): c for c in self._tables[kind].values()}.values()
        found = sorted(unique, key=lambda c: normalise(c.name))
        if pattern is None:
            return found
        lowered, normalised = pattern.lower(), normalise(pattern)
        matched = []
        for c in found:
            members = []
            if c.is_family and _may_match_members(c.prefix, lowered, normalised):
                members = [
                    m for m in c.list_members() if _matches_any((m.name,), lowered, normalised)
                ]
            if members:  # the members a pattern names stand in for their family
                matched += members
            elif _matches_any((c.name, *c.aliases, c.prefix), lowered, normalised):
                matched.append(c)
        return sorted(matched, key=lambda c: normalise(c.name))


def _matches_any(names: Iterable[str], lowered: str, normalised: str) -> bool:
    return any(
        fnmatch.fnmatchcase(n.lower(), lowered) or fnmatch.fnmatchcase(normalise(n), normalised)
        for n in names
    )


def _may_match_members(family_prefix: str, lowered: str, normalised: str) -> bool:
    """Whether a pattern can match ``prefix/<anything>``: its literal start fits the prefix."""
    for pattern, prefix in (
        (lowered, family_prefix.lower() + FAMILY_SEPARATOR),
        (normalised, normalise(family_prefix) + FAMILY_SEPARATOR),
    ):
        literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        if prefix.startswith(literal) or literal.startswith(prefix):
            return True
    return False


def _is_reference(target: object) -> bool:
    return isinstance(target, str) and ":" in target and all(target.split(":", 1))
