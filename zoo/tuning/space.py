"""The search space of ``zoo tune``: ``NAME=EXPR`` expressions parsed, checked against a run's
configuration, and turned into Optuna's suggestions and back into a :class:`RunConfig`.

An expression is one of ``log(LOW,HIGH)`` (a log-uniform number), ``float(LOW,HIGH[,STEP])``,
``int(LOW,HIGH[,STEP])`` and ``choice(A,B,...)`` (values as in a component spec: Python
literals, or bare words taken as strings). A name is a run option that takes one value (``lr``,
``batch_size``, ``act``, ``optimizer``, ...), or an argument of one of the run's components:
``arch.hidden`` (also written ``mlp.hidden``, or ``hidden`` where one component alone takes
it). Parsing needs no Optuna and no torch; :meth:`SearchSpace.suggest` takes an Optuna trial.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError, ZooUsageError
from zoo.runs.config import RunConfig, field_names, fields, types_of

#: The run options whose value is a component spec, and the kind of that component.
SPEC_KINDS = {
    "arch": "architecture",
    "act": "activation",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
}
#: The run options a search may vary: what a run computes, one value each. The others say where
#: or how a run runs (devices, data folder, workers, loggers), or are the study's own (the seed,
#: the same for every trial, and the dataset the metric is measured on).
SEARCHABLE = (
    "arch", "act", "optimizer", "scheduler", "epochs", "batch_size", "lr", "warmup_steps",
    "label_smoothing", "gradient_clip", "accumulate_grad_batches", "early_stopping", "max_steps",
)  # fmt: skip
_KINDS = ("log", "float", "int", "choice")
_EXPRESSION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=\s*([a-z]+)\s*\((.*)\)\s*$", re.DOTALL)
_BARE_WORD = re.compile(r"[A-Za-z_][\w.\-/:=]*")


@dataclass(frozen=True)
class Parameter:
    """One searched value: ``name`` (as Optuna records it: an option, or ``option.argument``),
    the ``kind`` of distribution and its ``values`` (bounds and step, or the choices as text)."""

    name: str
    kind: str
    values: tuple[Any, ...]

    @property
    def option(self) -> str:
        return self.name.partition(".")[0]

    @property
    def argument(self) -> str | None:
        return self.name.partition(".")[2] or None

    def __str__(self) -> str:
        return f"{self.name}={self.kind}({','.join(str(v) for v in self.values)})"

    def decode(self, value: Any) -> Any:
        """The run's value of Optuna's ``value`` (a choice is recorded as the text written)."""
        if self.kind != "choice":
            return value
        text = str(value)
        if self.option in SPEC_KINDS and self.argument is None and text[:1] not in "'\"":
            return text  # a spec, as written
        return literal(text)

    def distribution(self) -> Any:
        """Optuna's distribution of this parameter."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        try:
            if self.kind == "choice":
                return CategoricalDistribution(self.values)
            step = self.values[2] if len(self.values) > 2 else None
            whole = self.kind == "int" or (self.kind == "log" and _integer_option(self.name))
            if whole:
                return IntDistribution(*self.values[:2], log=self.kind == "log", step=step or 1)
            return FloatDistribution(*self.values[:2], log=self.kind == "log", step=step)
        except (ValueError, TypeError) as error:
            raise ZooUsageError(f"--search {str(self)!r}: {error}") from None


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of a search, one per name, in the order given."""

    parameters: tuple[Parameter, ...]

    def describe(self) -> list[str]:
        """The space as text, sorted: what a study records and compares."""
        return sorted(str(p) for p in self.parameters)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """The trial's values (Optuna's), one per parameter."""
        values = {}
        for p in self.parameters:
            d = p.distribution()
            if p.kind == "choice":
                values[p.name] = trial.suggest_categorical(p.name, d.choices)
            elif type(d).__name__ == "IntDistribution":
                values[p.name] = trial.suggest_int(p.name, d.low, d.high, step=d.step, log=d.log)
            else:
                values[p.name] = trial.suggest_float(p.name, d.low, d.high, step=d.step, log=d.log)
        return values

    def apply(self, config: RunConfig, values: Mapping[str, Any]) -> RunConfig:
        """``config`` with ``values`` (Optuna's, by parameter name) set: options first, then
        the arguments of the (possibly searched) components."""
        by_name = {p.name: p for p in self.parameters}
        options = {n: by_name[n].decode(v) for n, v in values.items() if "." not in n}
        config = config.replace(**options)
        specs: dict[str, Any] = {}
        for name, value in values.items():
            if "." in name:
                option, _, argument = name.partition(".")
                specs.setdefault(option, {})[argument] = by_name[name].decode(value)
        from zoo.plugin.specs import parse_spec

        changes = {
            option: str(parse_spec(getattr(config, option)).with_kwargs(**kwargs))
            for option, kwargs in specs.items()
        }
        return config.replace(**changes)


def literal(text: str) -> Any:
    """A value as a component spec reads it: a Python literal, or a bare word as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if _BARE_WORD.fullmatch(text):
            return text
        raise ZooUsageError(
            f"{text!r} is not a value (a number, a quoted string, a tuple, True/False/None, or "
            "a bare word)"
        ) from None


def parse_expression(text: str) -> Parameter:
    """``NAME=KIND(ARGS)`` -> a :class:`Parameter` with the name as written (not yet checked
    against a configuration). A :class:`ZooUsageError` says what does not parse."""
    match = _EXPRESSION.match(text)
    example = "e.g. 'lr=log(1e-4,1e-1)' or 'act=choice(relu,tanh)'"
    if match is None:
        raise ZooUsageError(f"--search {text!r} is not NAME=KIND(ARGS), {example}")
    name, kind, body = match.groups()
    if kind not in _KINDS:
        close = difflib.get_close_matches(kind, _KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ZooUsageError(
            f"--search {text!r}: unknown kind {kind!r}; use log, float, int or choice.{hint}"
        )
    parts = [part.strip() for part in split_top_level(body, text)]
    if any(not part for part in parts):
        raise ZooUsageError(f"--search {text!r}: an empty value (a stray comma?)")
    if kind == "choice":
        if len(parts) < 2 or len(set(parts)) != len(parts):
            raise ZooUsageError(f"--search {text!r}: choice takes two or more different values")
        for part in parts:
            literal(part)
        return Parameter(name, kind, tuple(parts))
    numbers = tuple(_number(part, text) for part in parts)
    if not 2 <= len(numbers) <= (2 if kind == "log" else 3):
        shape = "LOW,HIGH" if kind == "log" else "LOW,HIGH[,STEP]"
        raise ZooUsageError(f"--search {text!r}: {kind} takes {shape}")
    if kind == "int" and not all(isinstance(n, int) for n in numbers):
        raise ZooUsageError(f"--search {text!r}: int takes whole numbers")
    if numbers[0] >= numbers[1] or (kind == "log" and numbers[0] <= 0):
        need = "0 < LOW < HIGH" if kind == "log" else "LOW < HIGH"
        raise ZooUsageError(f"--search {text!r}: {kind} needs {need}")
    return Parameter(name, kind, numbers)


def _number(text: str, expression: str) -> int | float:
    value = literal(text) if text else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ZooUsageError(f"--search {expression!r}: {text!r} is not a number")
    return value


def split_top_level(text: str, expression: str) -> list[str]:
    """``text`` split on the commas outside brackets and quotes."""
    parts, stack, quote, start = [], [], None, 0
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote and text[i - 1] != "\\" else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            stack.append({"(": ")", "[": "]", "{": "}"}[char])
        elif char in ")]}":
            if not stack or stack.pop() != char:
                raise ZooUsageError(f"--search {expression!r}: unbalanced {char!r}")
        elif char == "," and not stack:
            parts.append(text[start:i])
            start = i + 1
    if quote or stack:
        raise ZooUsageError(f"--search {expression!r}: unclosed {quote or 'bracket'}")
    return [*parts, text[start:]]


def _integer_option(name: str) -> bool:
    if "." in name:
        return False
    (spec,) = [spec for spec in fields() if spec.name == name]
    return int in types_of(spec) and float not in types_of(spec)


def parse_space(expressions: Sequence[str], config: RunConfig) -> SearchSpace:
    """The search space of ``expressions`` for runs like ``config``: each name resolved (an
    option, or an argument of one of its components), each kind fitting its option, and each
    bound and choice a value the run accepts; one :class:`ZooUsageError` for the first that is
    not."""
    if not expressions:
        raise ZooUsageError(
            "give the space to search: --search NAME=EXPR (e.g. 'lr=log(1e-4,1e-1)')"
        )
    parameters: dict[str, Parameter] = {}
    for text in expressions:
        written = parse_expression(text)
        name = resolve_name(written.name, config)
        if name in parameters:
            raise ZooUsageError(f"--search: {name!r} is searched twice ({text!r})")
        parameters[name] = Parameter(name, written.kind, written.values)
    space = SearchSpace(tuple(parameters.values()))
    for parameter in space.parameters:
        _check_parameter(space, parameter, config)
    return space


def resolve_name(name: str, config: RunConfig) -> str:
    """The parameter name of ``name`` for runs like ``config``: an option (``lr``) or
    ``option.argument`` (``arch.hidden`` for ``arch.hidden``, ``mlp.hidden`` or ``hidden``)."""
    options = field_names()
    if name in options or name in ("output_dir", "resume", "config"):
        if name not in SEARCHABLE:
            raise ZooUsageError(
                f"--search: {name!r} cannot be searched (it says where or how the runs run, or "
                f"is the same for every trial); searchable options: {', '.join(SEARCHABLE)}, "
                "and the arguments of their components (e.g. arch.hidden, optimizer.weight_decay)"
            )
        return name
    owner, dot, argument = name.rpartition(".")
    if dot:
        option = owner if owner in SPEC_KINDS else _option_of_component(owner, config)
        if option is None:
            owners = [*SPEC_KINDS, *(_spec_name(config, o) for o in SPEC_KINDS)]
            raise ZooUsageError(
                f"--search: unknown component {owner!r}{_did_you_mean(owner, owners)}"
            )
        if argument not in _arguments(option, config):
            raise ZooUsageError(
                f"--search: {option} {_spec_name(config, option)!r} takes no argument "
                f"{argument!r}{_did_you_mean(argument, _arguments(option, config))}"
            )
        return f"{option}.{argument}"
    takers = [option for option in SPEC_KINDS if name in _arguments(option, config)]
    if len(takers) == 1:
        return f"{takers[0]}.{name}"
    if len(takers) > 1:
        raise ZooUsageError(
            f"--search: {name!r} is an argument of {' and '.join(takers)}; name one, e.g. "
            f"{takers[0]}.{name}"
        )
    known = [*SEARCHABLE, *(a for o in SPEC_KINDS for a in _arguments(o, config))]
    raise ZooUsageError(
        f"--search: {name!r} is neither a run option nor an argument of the run's components"
        f"{_did_you_mean(name, known)}"
    )


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f". Did you mean {close[0]!r}?" if close else ""


def _spec_name(config: RunConfig, option: str) -> str:
    value = getattr(config, option)
    return "" if value is None else str(value).partition(":")[0]


def _option_of_component(name: str, config: RunConfig) -> str | None:
    return next((o for o in SPEC_KINDS if name and _spec_name(config, o) == name), None)


def _arguments(option: str, config: RunConfig) -> list[str]:
    """The arguments the component of ``option`` in ``config`` takes (none: no component)."""
    spec = getattr(config, option)
    if spec is None:
        return []
    from zoo.plugin.components import resolve

    try:
        component, _ = resolve(SPEC_KINDS[option], spec)  # type: ignore[arg-type]
    except ZooError:
        return []  # the run's own option names it; training reports it
    return [name for name, p in component.parameters().items() if p.kind is not p.VAR_KEYWORD]


def _check_parameter(space: SearchSpace, parameter: Parameter, config: RunConfig) -> None:
    """Each bound (or choice) of ``parameter``, set alone in ``config``, is a run the options
    and the components accept."""
    option = parameter.option
    allowed = types_of(next(spec for spec in fields() if spec.name == option))
    if parameter.argument is None and parameter.kind != "choice":
        numeric = {int, float} & set(allowed)
        if not numeric:
            raise ZooUsageError(
                f"--search {str(parameter)!r}: {option} takes a spec, not a number; "
                f"search it with choice(A,B,...)"
            )
        if parameter.kind == "float" and float not in allowed:
            raise ZooUsageError(
                f"--search {str(parameter)!r}: {option} takes whole numbers; use int(LOW,HIGH)"
            )
    parameter.distribution()  # Optuna's own checks of the bounds and step
    samples = parameter.values if parameter.kind == "choice" else parameter.values[:2]
    for value in samples:
        try:
            trial_config = space.apply(config, {parameter.name: value})
            if option in SPEC_KINDS and getattr(trial_config, option) is not None:
                from zoo.plugin.components import resolve

                resolve(SPEC_KINDS[option], getattr(trial_config, option))  # type: ignore[arg-type]
        except ZooUsageError as error:
            raise ZooUsageError(f"--search {str(parameter)!r}: {value}: {error}") from None
