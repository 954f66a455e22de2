"""A registered component: one factory of one kind, with the plugin that registered it, built
with checked arguments; a family of names (``timm/*``) lists and gives its members."""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from zoo.errors import (
    ComponentSpecError,
    PluginError,
    PluginFailure,
    UnknownComponentError,
    ZooError,
    ZooUsageError,
)
from zoo.plugin import arguments
from zoo.plugin.kinds import FAMILY_SEPARATOR, FAMILY_SUFFIX, Kind, normalise

#: What a family's ``members`` returns: member names, or member name -> summary.
Members = Iterable[str] | Mapping[str, str]


@dataclass
class Component:
    """One registered factory, with the plugin that registered it.

    A family (``members`` set, ``name`` ``PREFIX/*``) stands for the names ``PREFIX/<member>``;
    :meth:`get_member` and :meth:`list_members` give their components, each with ``member`` set
    and the family's factory called with the member name as its first positional argument.
    """

    kind: Kind
    name: str
    target: Callable[..., Any] | str
    summary: str
    plugin: str
    aliases: tuple[str, ...] = ()
    members: Callable[[], Members] | str | None = None
    member: str | None = None
    _factory: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    _member_table: dict[str, tuple[str, str]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def is_family(self) -> bool:
        """Whether this registration stands for a family of names rather than one."""
        return self.members is not None

    @property
    def prefix(self) -> str:
        """A family's prefix, ``timm`` for ``timm/*``: its members are ``prefix/<member>``."""
        return self.name.removesuffix(FAMILY_SUFFIX)

    @property
    def factory(self) -> Callable[..., Any]:
        """The factory itself; a ``"module:attribute"`` target is imported on first use. For a
        family member, the family's factory with the member name bound."""
        if self._factory is None:
            factory = self.target if callable(self.target) else self._import(self.target)
            if self.member is not None:
                factory = functools.partial(factory, self.member)
            self._factory = factory
        return self._factory

    def _import(self, reference: str) -> Any:
        module_name, _, attribute = reference.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as error:
            raise PluginError(
                f"plugin {self.plugin!r} registered {self.kind} {self.name!r} as "
                f"{reference!r}, which cannot be imported: {error}"
            ) from error
        return obj

    def _members(self) -> dict[str, tuple[str, str]]:
        """A family's members: normalised name -> (name, summary), listed once."""
        if self._member_table is None:
            members = self.members
            lister = members if callable(members) else self._import(str(members))
            try:
                listed = lister()
                items = (
                    listed.items()
                    if isinstance(listed, Mapping)
                    else ((m, self.summary) for m in listed)
                )
                table = {normalise(m): (m, s) for m, s in items}
            except Exception as error:
                raise PluginError(
                    f"plugin {self.plugin!r} could not list the members of {self.kind} family "
                    f"{self.name!r}: {type(error).__name__}: {error}"
                ) from error
            self._member_table = table
        return self._member_table

    def _member_component(self, member: str, summary: str) -> Component:
        return Component(
            self.kind,
            f"{self.prefix}{FAMILY_SEPARATOR}{member}",
            self.target,
            summary,
            self.plugin,
            member=member,
        )

    def get_member(self, member: str) -> Component:
        """The component of one member of this family, by its (normalised) member name."""
        table = self._members()
        key = normalise(member)
        if key not in table:
            matches = difflib.get_close_matches(key, list(table), n=3, cutoff=0.6)
            suggestions = [f"{self.prefix}{FAMILY_SEPARATOR}{table[m][0]}" for m in matches]
            raise UnknownComponentError(
                self.kind, f"{self.prefix}{FAMILY_SEPARATOR}{member}", suggestions
            )
        return self._member_component(*table[key])

    def list_members(self) -> list[Component]:
        """The components of every member of this family."""
        return [self._member_component(m, s) for m, s in self._members().values()]

    def build(self, kwargs: Mapping[str, Any], **core_kwargs: Any) -> Any:
        """Call the factory with the user's ``kwargs`` (checked first) and the core's arguments.

        A ``TypeError`` or ``ValueError`` it raises is the spec's fault
        (:class:`ComponentSpecError`); any other exception but a :class:`ZooError` becomes a
        :class:`PluginFailure` naming this component and its plugin."""
        self.check_arguments(kwargs)
        try:
            return self.factory(**core_kwargs, **kwargs)
        except ComponentSpecError:
            raise
        except ZooUsageError as error:  # the factory said what is wrong; say of which option
            raise ComponentSpecError(str(error), kind=self.kind) from error
        except ZooError:
            raise
        except (TypeError, ValueError) as error:
            raise ComponentSpecError(
                f"{self.kind} {self.name!r} could not be built with {dict(kwargs)!r}: {error}",
                kind=self.kind,
            ) from error
        except Exception as error:  # a bug in the plugin, or its environment
            raise PluginFailure(self, "failed to build", error) from error

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The arguments a spec may set, with their defaults."""
        return arguments.parameters(self.kind, self.factory)

    def check_arguments(self, kwargs: Mapping[str, Any]) -> None:
        """Raise :class:`ComponentSpecError` for an argument the factory does not take or whose
        value does not have the annotated type."""
        arguments.check_arguments(self.kind, self.name, self.factory, kwargs)
