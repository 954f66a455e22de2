"""``zoo plot``: draw activations and their derivatives, or one run's curves."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.cli.options import output_file_option


@click.group(
    "plot",
    epilog="""\b
Examples:
  zoo plot activations relu leakyrelu sigmoid tanh -o acts.png
  zoo plot activations 'leakyrelu:negative_slope=0.2' gelu --range -3 3
  zoo plot run runs/20250101-120000-mlp-relu-mnist
""",
)
def plot_command() -> None:
    """Draw pictures (needs matplotlib: pip install 'lightning-zoo[plot]')."""


@plot_command.command(
    "activations",
    epilog="""\b
Examples:
  zoo plot activations relu leakyrelu sigmoid tanh -o acts.png
  zoo plot activations 'leakyrelu:negative_slope=0.2' elu:alpha=0.5 --range -3 3
  zoo -p ./my_acts.py plot activations cube
""",
)
@click.argument("specs", nargs=-1, required=True)
@click.option(
    "--range",
    "value_range",
    type=(float, float),
    default=(-5.0, 5.0),
    show_default=True,
    metavar="LOW HIGH",
    help="The x range to draw.",
)
@output_file_option(Path("activations.png"), "PNG file to write.")
def plot_activations_command(
    specs: tuple[str, ...], value_range: tuple[float, float], output: Path
) -> None:
    """Draw each activation SPEC (any registered one, with arguments) and its derivative,
    computed with autograd."""
    from zoo.plots import plot_activations

    path = plot_activations(specs, output, *value_range)
    click.echo(f"Wrote {path}")


@plot_command.command(
    "run",
    epilog="""\b
Examples:
  zoo plot run runs/20250101-120000-mlp-relu-mnist
  zoo plot run runs/20250101-120000-mlp-relu-mnist -o relu.png
""",
)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@output_file_option(None, "PNG file to write [default: RUN_DIR/curves.png].")
def plot_run_command(run_dir: Path, output: Path | None) -> None:
    """Draw a run's loss and accuracy curves and, for a --diagnostics run, its dead and
    saturated fractions and gradient norms per layer."""
    from zoo.plots import plot_run

    path = plot_run(run_dir, output)
    click.echo(f"Wrote {path}")
