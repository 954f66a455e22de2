"""zoo-snake: the Snake activation for lightning-zoo, registered through its plugin hooks."""

from __future__ import annotations

import click

import zoo

__version__ = "0.1.0"


@zoo.hookimpl
def register_activations(register: zoo.Register) -> None:
    register(
        "snake",
        "zoo_snake.snake:Snake",  # imported on first use: listing needs no torch
        summary="x + sin²(a·x)/a, periodic inductive bias (Ziyin et al. 2020); a trainable",
    )


@zoo.hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(snake_command)


@click.command("snake")
@click.option("--a", "a", default=1.0, show_default=True, help="Frequency a.")
@click.option("--range", "bounds", nargs=2, type=float, default=(-4.0, 4.0), show_default=True)
@click.option("--points", default=9, show_default=True, type=click.IntRange(min=2))
def snake_command(a: float, bounds: tuple[float, float], points: int) -> None:
    """Print Snake and its derivative on a grid."""
    import torch

    act = zoo.create_activation("snake", a=a, trainable=False)
    x = torch.linspace(bounds[0], bounds[1], points, requires_grad=True)
    y = act(x)
    (slope,) = torch.autograd.grad(y.sum(), x)
    click.echo(f"{'x':>8} {'snake(x)':>10} {'derivative':>11}")
    for xi, yi, di in zip(x.tolist(), y.tolist(), slope.tolist(), strict=True):
        click.echo(f"{xi:8.3f} {yi:10.4f} {di:11.4f}")
