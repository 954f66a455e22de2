"""``zoo list``: the registered components, with their plugin and summary."""

from __future__ import annotations

import json
from typing import Any

import click

import zoo
from zoo.cli.options import json_option
from zoo.plugin.loading import plugin_of
from zoo.plugin.registry import KINDS
from zoo.text import printable
from zoo.weights.listing import details as weights_details
from zoo.weights.listing import summary as weights_summary

#: ``zoo list KIND`` takes the plural of every kind of component.
_KINDS = {f"{kind}s": kind for kind in KINDS}


def _source(component: zoo.Component) -> str:
    info = plugin_of(component)
    return info.source if info else component.plugin


def _name(component: zoo.Component) -> str:
    aliases = f" ({', '.join(component.aliases)})" if component.aliases else ""
    return printable(component.name + aliases)


@click.command(
    "list",
    epilog="""\b
Examples:
  zoo list
  zoo list activations
  zoo list activations 'leaky*'
  zoo list '*relu*'
  zoo list optimizers
  zoo list datasets --json
  zoo list weights
  zoo list architectures -l
  zoo list architectures -l --dataset cifar10 --json
""",
)
@click.argument("kind_or_pattern", required=False, metavar="[KIND]")
@click.argument("pattern", required=False)
@click.option(
    "-l",
    "--details",
    is_flag=True,
    help="Architectures: also their parameters, FLOPs per image and weights size with their "
    "defaults on --dataset's input (measured on the meta device: imports torch, takes seconds).",
)
@click.option(
    "--dataset",
    default="mnist",
    show_default=True,
    metavar="SPEC",
    help="With -l: the dataset whose input shape and classes the costs are measured on.",
)
@json_option("Print a JSON list instead of a table.")
def list_command(
    kind_or_pattern: str | None, pattern: str | None, details: bool, dataset: str, as_json: bool
) -> None:
    """List registered components. KIND is activations, architectures, datasets, optimizers,
    schedulers, augmentations, loggers or weights (all of them if left out); PATTERN is an fnmatch
    pattern, matched case-insensitively, '-' and '_' ignored. Weights always show their cost and
    accuracy; architectures with -l."""
    kinds = list(_KINDS)
    if kind_or_pattern is not None:
        kind = kind_or_pattern.lower()
        matches = [k for k in _KINDS if k.startswith(kind)]  # `zoo list act` is enough
        if matches:
            kinds = matches
        elif pattern is None:  # `zoo list 'leaky*'`: a pattern over every kind
            pattern = kind_or_pattern
        else:
            raise click.BadParameter(
                f"{kind_or_pattern!r} is not one of {', '.join(_KINDS)}", param_hint="KIND"
            )
    found = {kind: zoo.list_components(_KINDS[kind], pattern) for kind in kinds}
    cost: dict[str, Any] = {}
    if details and "architectures" in found:
        from zoo.weights.cost import costs

        cost = costs(found["architectures"], dataset)
    if as_json:
        rows = [
            {
                "kind": component.kind,
                "name": component.name,
                "aliases": list(component.aliases),
                "plugin": component.plugin,
                "source": _source(component),
                "summary": component.summary,
                **weights_details(component),
                **({"cost": cost[component.name].to_dict()} if component.name in cost else {}),
            }
            for components in found.values()
            for component in components
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for index, (kind, components) in enumerate(found.items()):
        if index:
            click.echo()
        click.secho(f"{kind.capitalize()} ({len(components)})", bold=True)
        if not components:
            click.echo(f"  none match {pattern!r}" if pattern else "  none registered")
            continue
        names = [_name(c) for c in components]
        sources = [printable(_source(c)) for c in components]
        name_width = max(len(n) for n in names)
        source_width = max(len(s) for s in sources)
        for name, source, component in zip(names, sources, components, strict=True):
            summary = printable(weights_summary(component))
            if kind == "architectures" and component.name in cost:
                summary = f"{printable(cost[component.name].describe())}; {summary}"
            click.echo(f"  {name:<{name_width}}  {source:<{source_width}}  {summary}")
