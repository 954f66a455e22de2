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
import functools
import importlib
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.errors import (
    ComponentSpecError,
    DuplicateComponentError,
    PluginError,
    PluginFailure,
    UnknownComponentError,
    ZooError,
    ZooUsageError,
)

Kind = Literal[
    "activation", "architecture", "dataset", "optimizer", "scheduler", "augmentation", "logger"
]
#: Every kind of component, in the order ``zoo list`` shows them; kind ``k`` is registered by
#: the hook ``register_<k>s``.
KINDS: tuple[Kind, ...] = (
    "activation", "architecture", "dataset", "optimizer", "scheduler", "augmentation", "logger"
)  # fmt: skip

#: Separates a family's prefix from a member's name: ``timm/resnet18``.
FAMILY_SEPARATOR = "/"
#: A family is registered as ``PREFIX/*``.
FAMILY_SUFFIX = FAMILY_SEPARATOR + "*"

#: What a family's ``members`` returns: member names, or member name -> summary.
Members = Iterable[str] | Mapping[str, str]

#: Arguments the core passes to each kind of factory; a spec may not set them.
RESERVED_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "activation": (),
    "architecture": ("act", "input_shape", "num_classes"),
    "dataset": ("data_dir", "batch_size"),
    "optimizer": ("model", "lr"),
    "scheduler": ("optimizer", "total_steps", "steps_per_epoch"),
    "augmentation": (),
    "logger": ("save_dir",),
}


def normalise(name: str) -> str:
    """The lookup key of a name: ``LeakyReLU``, ``leaky_relu`` and ``leaky-relu`` are one name."""
    return name.lower().replace("-", "").replace("_", "")


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
        if _takes_no_arguments(self.factory):
            return {}
        try:
            signature = inspect.signature(self.factory)
        except (TypeError, ValueError):
            return {}
        reserved = RESERVED_ARGUMENTS[self.kind]
        return {
            name: p
            for name, p in signature.parameters.items()
            if name not in reserved and p.kind not in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY)
        }

    def check_arguments(self, kwargs: Mapping[str, Any]) -> None:
        """Raise :class:`ComponentSpecError` for an argument the factory does not take or whose
        value does not have the annotated type."""
        reserved = RESERVED_ARGUMENTS[self.kind]
        for key in kwargs:
            if key in reserved:
                raise ComponentSpecError(
                    f"{self.kind} {self.name!r}: {key!r} is set by zoo itself, not in the spec",
                    kind=self.kind,
                )
        params = self.parameters()
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        if not params and not _takes_no_arguments(self.factory):
            try:
                inspect.signature(self.factory)
            except (TypeError, ValueError):
                takes_any = True  # no signature to check against; the call will tell
        hints = _type_hints(self.factory)
        for key, value in kwargs.items():
            if key not in params:
                if takes_any:
                    continue
                accepted = ", ".join(n for n, p in params.items() if p.kind is not p.VAR_KEYWORD)
                raise ComponentSpecError(
                    f"{self.kind} {self.name!r} takes no argument {key!r}; "
                    f"it takes: {accepted or 'no arguments'}",
                    kind=self.kind,
                )
            expected = hints.get(key)
            if expected is not None and not _matches(value, expected):
                raise ComponentSpecError(
                    f"{self.kind} {self.name!r}: argument {key!r} expects "
                    f"{_type_name(expected)}, got {type(value).__name__} {value!r}",
                    kind=self.kind,
                )


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
