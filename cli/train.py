"""``zoo train``: one training run, as ``zoo.train`` does it."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click
from click.core import ParameterSource

import zoo
from zoo.runs import load_config
from zoo.training import DEFAULT_OUTPUT_DIR, is_main_process, resume_config

#: Command-line parameter names that differ from zoo.train's.
_CLI_NAMES = {"compile_model": "compile"}


def _devices(value: str) -> int | str | list[int]:
    """``auto``, a count (``2``), or a list of indices (``0,1``), as Lightning takes them."""
    if value == "auto" or value == "-1":
        return value if value == "auto" else -1
    try:
        if "," in value:
            return [int(part) for part in value.split(",") if part.strip()]
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not 'auto', a number or a list like 0,1") from None


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
""",
)
@click.option("--arch", default="mlp", show_default=True, help="Architecture spec, NAME[:k=v,...].")
@click.option("--act", default="relu", show_default=True, help="Activation spec, NAME[:k=v,...].")
@click.option("--dataset", default="mnist", show_default=True, help="Dataset spec, NAME[:k=v,...].")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Learning rate [default: 1e-3 for adam/adamw, 1e-2 for sgd].",
)
@click.option(
    "--optimizer",
    type=click.Choice(["adam", "adamw", "sgd"], case_sensitive=False),
    default="adam",
    show_default=True,
    help="sgd uses momentum 0.9.",
)
@click.option("--seed", type=int, default=None, help="Seed everything [default: random, recorded].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dataset root [default: $ZOO_DATA_DIR, else ~/.cache/lightning-zoo/data].",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUTPUT_DIR,
    show_default=True,
    help="Where run directories go.",
)
@click.option(
    "--accelerator", default="auto", show_default=True, help="cpu, gpu, cuda, mps, tpu or auto."
)
@click.option(
    "--devices",
    default="auto",
    show_default=True,
    help="auto, a number of devices, or device indices like 0,1.",
)
@click.option(
    "--precision",
    default=None,
    help="32-true, 16-mixed, bf16-mixed, 64-true ... [default: 32-true].",
)
@click.option(
    "--max-steps",
    default=-1,
    show_default=True,
    type=int,
    help="Stop after this many optimizer steps (-1: no limit).",
)
@click.option(
    "--compile",
    "compile_model",
    is_flag=True,
    help="Compile the model with torch.compile (compiling takes seconds; on a CPU it did not "
    "pay off for the default MLP).",
)
@click.option(
    "--num-workers",
    type=click.IntRange(min=0),
    default=None,
    help="DataLoader worker processes; more than 0 selects the standard data path "
    "[default: the dataset's, 0].",
)
@click.option(
    "--strategy",
    default="auto",
    show_default=True,
    help="Lightning strategy: auto, ddp, ddp_spawn, fsdp, deepspeed ...",
)
@click.option(
    "--num-nodes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of machines (with torchrun or SLURM).",
)
@click.option(
    "--diagnostics",
    is_flag=True,
    help="Log dead/saturated units and gradient/weight norms per layer to metrics.csv.",
)
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rerun the configuration in FILE (a run's config.json); options given here override it.",
)
@click.option(
    "--resume",
    default=None,
    type=click.Path(exists=True, path_type=Path),
    help="Continue a run from its directory (checkpoints/last.ckpt) or a checkpoint, with its "
    "configuration, optimizer state, epoch and step.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print only one JSON object with the results on stdout."
)
def train_command(
    arch: str,
    act: str,
    dataset: str,
    epochs: int,
    batch_size: int,
    lr: float | None,
    optimizer: str,
    seed: int | None,
    data_dir: Path | None,
    output_dir: Path,
    accelerator: str,
    devices: str,
    precision: str | None,
    max_steps: int,
    compile_model: bool,
    num_workers: int | None,
    strategy: str,
    num_nodes: int,
    diagnostics: bool,
    config_file: Path | None,
    resume: Path | None,
    as_json: bool,
) -> None:
    """Train an architecture with an activation on a dataset, then test it.

    Each run gets a directory under --output-dir with config.json, metrics.csv,
    checkpoints/best.ckpt and last.ckpt, and results.json.
    """
    options = {
        "arch": arch,
        "act": act,
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "seed": seed,
        "data_dir": data_dir,
        "output_dir": output_dir,
        "accelerator": accelerator,
        "devices": _devices(devices),
        "precision": precision,
        "max_steps": max_steps,
        "compile": compile_model,
        "num_workers": num_workers,
        "strategy": strategy,
        "num_nodes": num_nodes,
        "diagnostics": diagnostics,
    }
    if config_file is not None or resume is not None:
        # The file's values, overridden by the options given on this command line.
        base = resume_config(resume) if resume is not None else {}
        if config_file is not None:
            base.update(load_config(config_file))
        ctx = click.get_current_context()
        given = {
            _CLI_NAMES.get(name, name)
            for name in ctx.params
            if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
        }
        options = {**options, **{k: v for k, v in base.items() if k not in given}}
    # With --json stdout carries the one JSON object; whatever else prints goes to stderr.
    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with redirect:
        result = zoo.train(**options, progress=not as_json, resume=resume)
    if not is_main_process():
        return  # the other ranks of a distributed run: rank 0 reports
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(
        f"\nTest accuracy {result.test_acc:.2%} (loss {result.test_loss:.4f}) · "
        f"{result.arch} + {result.act} on {result.dataset} · {result.epochs} epoch(s), "
        f"{result.steps} steps in {result.train_seconds:.1f} s on {result.accelerator} · "
        f"seed {result.seed}"
    )
    click.echo(f"Run directory: {result.run_dir}")
    click.echo(f"Checkpoint:    {result.checkpoint}")
