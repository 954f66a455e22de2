"""``zoo train``: one training run, as ``zoo.run`` does it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import click

import zoo
from zoo.cli.options import (
    given_options,
    json_option,
    output_dir_option,
    run_config,
    run_options,
)
from zoo.errors import RunAlreadyFinished
from zoo.plugin.isolation import stdout_to_stderr
from zoo.runs.config import load_config
from zoo.runs.files import DEFAULT_OUTPUT_DIR
from zoo.training.composition import is_main_process
from zoo.training.runner import TrainResult


@click.command(
    "train",
    epilog="""\b
Examples:
  zoo train --arch mlp --act leakyrelu
  zoo train --act 'leakyrelu:negative_slope=0.2' --epochs 1 --json
  zoo train --arch 'mlp:hidden=(256,128)' --act gelu --optimizer sgd --lr 0.05
  zoo train --data-dir ~/datasets --output-dir /tmp/runs --seed 0 --max-steps 100
  zoo train --compile --precision bf16-mixed --accelerator gpu
  zoo train --dataset mnist:fast=False --num-workers 4
  zoo train --strategy ddp --devices 2 --accelerator cpu
  zoo train --config runs/20261127-140501-mlp-relu-mnist/config.json --seed 1
  zoo train --resume runs/20261127-140501-mlp-relu-mnist
  zoo train --resume runs/20261127-140501-mlp-relu-mnist --epochs 10
""",
)
@run_options()
@output_dir_option(DEFAULT_OUTPUT_DIR, "Where run directories go.")
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Train the configuration in FILE (a run's config.json); options given here change it.",
)
@click.option(
    "--resume",
    default=None,
    type=click.Path(exists=True, path_type=Path),
    help="Continue the run in this directory (or of this last.ckpt) where it stopped: its "
    "weights, optimizer state and place in the data; --epochs or --max-steps extend it.",
)
@json_option("Print only one JSON object with the results on stdout.")
@click.pass_context
def train_command(
    ctx: click.Context,
    output_dir: Path,
    config_file: Path | None,
    resume: Path | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Train an architecture with an activation on a dataset, then test it.

    Each run gets a directory under --output-dir with config.json, metrics.csv,
    checkpoints/best.ckpt and last.ckpt, and results.json.
    """
    given = given_options(ctx, options)
    if resume is not None and config_file is not None:
        raise click.UsageError("--resume continues a run with its own configuration; drop --config")
    # With --json stdout carries the one JSON object; whatever else prints, plugin code writing
    # to file descriptor 1 included, goes to stderr.
    redirect = stdout_to_stderr() if as_json else contextlib.nullcontext()
    with redirect:
        if resume is not None:
            try:
                result = zoo.resume(resume, progress=not as_json, **given)
            except RunAlreadyFinished as finished:
                click.echo(str(finished), err=True)
                result = finished.result
        else:
            config = (
                load_config(config_file).replace(**given) if config_file else run_config(options)
            )
            result = zoo.run(config, output_dir=output_dir, progress=not as_json)
    if is_main_process():  # the other ranks of a distributed run: rank 0 reports
        _report(result, as_json)


def _report(result: TrainResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(err=True)  # after the progress bar, which is on stderr
    click.echo(
        f"Test accuracy {result.test_acc:.2%} (loss {result.test_loss:.4f}) · "
        f"{result.arch} + {result.act} on {result.dataset} · {result.epochs} epoch(s), "
        f"{result.steps} steps in {result.train_seconds:.1f} s on {result.accelerator} · "
        f"seed {result.seed}"
    )
    click.echo(f"Run directory: {result.run_dir}")
    click.echo(f"Checkpoint:    {result.checkpoint}")
