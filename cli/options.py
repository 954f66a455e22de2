"""The run options of ``zoo train`` and ``zoo compare``, made from :class:`zoo.RunConfig`'s
fields: each is defined once, there. Also the options that several commands share
(``--json``, ``--output-dir``, ``-o/--output``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from zoo.runs.config import RunConfig, fields, flag, types_of

F = TypeVar("F", bound=Callable[..., Any])


def _click_type(spec: dataclasses.Field[Any]) -> click.ParamType:
    types = set(types_of(spec)) - {type(None)}
    low, high = spec.metadata.get("low"), spec.metadata.get("high")
    if types == {int}:
        return click.IntRange(min=low, max=high)
    if types == {float}:
        return click.FLOAT  # RunConfig checks the range (and refuses nan) with the message
    if spec.name == "data_dir":
        return click.Path(file_okay=False)
    return click.STRING


def _option(spec: dataclasses.Field[Any]) -> Callable[[F], F]:
    help_text = spec.metadata["help"]
    if spec.type == "bool":
        return click.option(
            flag(spec.name), spec.name, is_flag=True, default=spec.default, help=help_text
        )
    if types_of(spec) == (tuple,):  # repeatable
        return click.option(
            flag(spec.name), spec.name, multiple=True, default=(), metavar="SPEC", help=help_text
        )
    shown = spec.default is not None and "[default:" not in help_text
    return click.option(
        flag(spec.name),
        spec.name,
        type=_click_type(spec),
        default=spec.default,
        show_default=shown,
        help=help_text,
    )


def run_options(exclude: Collection[str] = ()) -> Callable[[F], F]:
    """Add a click option for every RunConfig field but ``exclude``, in the fields' order."""

    def decorate(command: F) -> F:
        for spec in reversed(fields()):
            if spec.name not in exclude:
                command = _option(spec)(command)
        return command

    return decorate


def given_options(ctx: click.Context, values: Mapping[str, Any]) -> dict[str, Any]:
    """The run options among ``values`` that were set on the command line (or from the
    environment), not left at their defaults."""
    sources = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return {
        name: value for name, value in values.items() if ctx.get_parameter_source(name) in sources
    }


def run_config(values: Mapping[str, Any]) -> RunConfig:
    """The RunConfig of the run options in ``values`` (click's parameters)."""
    names = {spec.name for spec in fields()}
    return RunConfig(**{k: v for k, v in values.items() if k in names})


def run_option(name: str) -> Callable[[F], F]:
    """The click option of the RunConfig field ``name``, as :func:`run_options` makes it."""
    (spec,) = [spec for spec in fields() if spec.name == name]
    return _option(spec)


def json_option(help_text: str) -> Callable[[F], F]:
    """``--json``: a flag passed to the command as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def output_dir_option(default: str, help_text: str) -> Callable[[F], F]:
    """``--output-dir``: a directory (it need not exist yet), passed as a Path."""
    return click.option(
        "--output-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help_text,
    )


def output_file_option(default: Path | None, help_text: str) -> Callable[[F], F]:
    """``-o/--output``: a file to write, passed as a Path."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default,
        show_default=default is not None,
        help=help_text,
    )
