"""The component registry: three plain tables (activations, architectures, datasets) of factories.

Plugins fill it through the ``register`` callback the core hands to their hooks, so the registry
knows which plugin registered what and refuses two registrations of one name. Names are looked up
normalised: case-insensitive, with ``-`` and ``_`` ignored.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from zoo.errors import (
    ComponentSpecError,
    DuplicateComponentError,
    PluginError,
    UnknownComponentError,
)

Kind = Literal["activation", "architecture", "dataset"]
KINDS: tuple[Kind, ...] = ("activation", "architecture", "dataset")

#: Arguments the core passes to each kind of factory; a spec may not set them.
RESERVED_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "activation": (),
    "architecture": ("act", "input_shape", "num_classes"),
    "dataset": ("data_dir", "batch_size"),
}


def normalise(name: str) -> str:
    """The lookup key of a name: ``LeakyReLU``, ``leaky_relu`` and ``leaky-relu`` are one name."""
    return name.lower().replace("-", "").replace("_", "")


@dataclass
class Component:
    """One registered factory, with the plugin that registered it."""

    kind: Kind
    name: str
    target: Callable[..., Any] | str
    summary: str
    plugin: str
    aliases: tuple[str, ...] = ()
    _factory: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    @property
    def factory(self) -> Callable[..., Any]:
        """The factory itself; a ``"module:attribute"`` target is imported on first use."""
        if self._factory is None:
            if callable(self.target):
                self._factory = self.target
            else:
                module_name, _, attribute = self.target.partition(":")
                try:
                    obj: Any = importlib.import_module(module_name)
                    for part in attribute.split("."):
                        obj = getattr(obj, part)
                except (ImportError, AttributeError) as error:
                    raise PluginError(
                        f"plugin {self.plugin!r} registered {self.kind} {self.name!r} as "
                        f"{self.target!r}, which cannot be imported: {error}"
                    ) from error
                self._factory = obj
        return self._factory

    def build(self, kwargs: Mapping[str, Any], **core_kwargs: Any) -> Any:
        """Call the factory with the user's ``kwargs`` (checked first) and the core's arguments."""
        self.check_arguments(kwargs)
        try:
            return self.factory(**core_kwargs, **kwargs)
        except (TypeError, ValueError) as error:
            raise ComponentSpecError(
                f"{self.kind} {self.name!r} could not be built with {dict(kwargs)!r}: {error}",
                kind=self.kind,
            ) from error

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
    """Activations, architectures and datasets by normalised name."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def registrar(self, kind: Kind, plugin: str) -> Callable[..., None]:
        """The ``register`` callback handed to one plugin's ``register_<kind>s`` hook."""

        def register(
            name: str,
            factory: Callable[..., Any] | str,
            *,
            summary: str,
            aliases: Iterable[str] = (),
        ) -> None:
            self.add(
                Component(kind, name, factory, summary.strip(), plugin, tuple(aliases)),
            )

        register.__doc__ = f"Register one {kind}: register(name, factory, *, summary, aliases=())."
        return register

    def add(self, component: Component) -> None:
        """Add a component; a name or alias already taken raises DuplicateComponentError."""
        if not isinstance(component.name, str) or not component.name.strip():
            raise ValueError(f"plugin {component.plugin!r} registered a {component.kind} no name")
        if not (callable(component.target) or _is_reference(component.target)):
            raise TypeError(
                f"plugin {component.plugin!r} registered {component.kind} {component.name!r} with "
                f"factory {component.target!r}: expected a callable or a 'module:attribute' string"
            )
        table = self._tables[component.kind]
        keys = [normalise(n) for n in (component.name, *component.aliases)]
        for key in keys:
            if key in table:
                other = table[key]
                raise DuplicateComponentError(
                    f"{component.kind} {component.name!r} is registered twice: by plugin "
                    f"{other.plugin!r} (as {other.name!r}) and by plugin {component.plugin!r}. "
                    f"Block one with `zoo -p no:PLUGIN` or uninstall it."
                )
        for key in keys:
            table[key] = component

    def remove_plugin(self, plugin: str) -> None:
        """Forget everything one plugin registered."""
        for table in self._tables.values():
            for key in [k for k, c in table.items() if c.plugin == plugin]:
                del table[key]

    def get(self, kind: Kind, name: str) -> Component:
        """The component registered under ``name`` (normalised), else UnknownComponentError."""
        table = self._tables[kind]
        key = normalise(name)
        if key in table:
            return table[key]
        matches = difflib.get_close_matches(key, list(table), n=3, cutoff=0.6)
        suggestions = list(dict.fromkeys(table[m].name for m in matches))
        raise UnknownComponentError(kind, name, suggestions)

    def components(self, kind: Kind, pattern: str | None = None) -> list[Component]:
        """Components of one kind sorted by name, filtered by an fnmatch ``pattern`` if given."""
        unique = {id(c): c for c in self._tables[kind].values()}.values()
        found = sorted(unique, key=lambda c: normalise(c.name))
        if pattern is None:
            return found
        lowered, normalised = pattern.lower(), normalise(pattern)
        return [
            c
            for c in found
            if any(
                fnmatch.fnmatchcase(n.lower(), lowered)
                or fnmatch.fnmatchcase(normalise(n), normalised)
                for n in (c.name, *c.aliases)
            )
        ]


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
