"""``zoo runs``, ``zoo evaluate`` and ``zoo predict``: what comes after training."""

from __future__ import annotations

import json
from pathlib import Path

import click

from zoo.cli.options import json_option, run_option
from zoo.runs.files import DEFAULT_OUTPUT_DIR
from zoo.runs.reading import RunInfo
from zoo.text import printable


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _cost(run: RunInfo) -> dict[str, int | None]:
    """A run's parameter count (its results.json, from training) and the size of its best
    checkpoint in bytes (optimizer state included), read from its files without torch."""
    from zoo.runs.reading import read_results

    results = read_results(run.run_dir) or {}
    params = results.get("num_params")
    best = Path(run.run_dir) / "checkpoints" / "best.ckpt"
    try:
        size: int | None = best.stat().st_size
    except OSError:
        size = None
    return {
        "num_params": params if isinstance(params, int) and not isinstance(params, bool) else None,
        "checkpoint_size": size,
    }


def _count(value: int | None) -> str:
    from zoo.weights.entry import human

    return "-" if value is None else human(value)


@click.command(
    "runs",
    epilog="""\b
Examples:
  zoo runs
  zoo runs /tmp/runs --json
""",
)
@click.argument("directory", required=False, default=DEFAULT_OUTPUT_DIR, type=click.Path())
@json_option("Print a JSON list instead of a table.")
def runs_command(directory: str, as_json: bool) -> None:
    """List the runs in DIRECTORY (default ./runs) and in its folders (a comparison's
    output): components, status (finished, interrupted, failed, running, unreadable), best
    validation accuracy, test accuracy, parameters and the size of the best checkpoint."""
    from zoo.runs.reading import list_runs

    if not Path(directory).is_dir():
        raise click.BadParameter(f"{directory!r} is not a directory", param_hint="DIRECTORY")
    runs = list_runs(directory)
    if as_json:
        click.echo(json.dumps([{**run.to_dict(), **_cost(run)} for run in runs], indent=2))
        return
    if not runs:
        click.echo(f"no runs in {directory}")
        return
    rows = [_row(run, Path(directory)) for run in runs]
    header = ("RUN", "COMPONENTS", "STATUS", "BEST VAL", "TEST", "PARAMS", "CKPT")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row, run in zip([header, *rows], [None, *runs], strict=True):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
        if run is not None and run.error and run.status != "running":
            click.echo(f"    {printable(run.error)}")  # why it failed, stopped or can't be read


def _row(run: RunInfo, directory: Path) -> tuple[str, ...]:
    components = "-" if run.arch is None else f"{run.arch} + {run.act} on {run.dataset}"
    cost = _cost(run)
    return (
        printable(Path(run.run_dir).relative_to(directory).as_posix()),  # a comparison's: slot/run
        printable(components),
        printable(run.status),
        _pct(run.best_val_acc),
        _pct(run.test_acc),
        _count(cost["num_params"]),
        "-" if cost["checkpoint_size"] is None else f"{_count(cost['checkpoint_size'])}B",
    )


@click.command(
    "evaluate",
    epilog="""\b
Examples:
  zoo evaluate runs/20261127-140501-mlp-leakyrelu-mnist
  zoo evaluate runs/.../checkpoints/last.ckpt --split val --json
  zoo evaluate mlp-leakyrelu.mnist
""",
)
@click.argument("checkpoint", metavar="CHECKPOINT_OR_WEIGHTS")
@click.option("--dataset", default=None, help="Dataset spec [default: the checkpoint's own].")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True)
@run_option("data_dir")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@json_option("Print one JSON object.")
def evaluate_command(
    checkpoint: str,
    dataset: str | None,
    split: str,
    data_dir: str | None,
    batch_size: int,
    as_json: bool,
) -> None:
    """Accuracy, loss and per-class accuracy of CHECKPOINT_OR_WEIGHTS: a .ckpt file, a run
    directory (its best checkpoint), a weights name (zoo list weights), an exported model
    directory or hf-hub:OWNER/REPO."""
    from zoo.training.evaluation import evaluate

    result = evaluate(
        checkpoint, dataset=dataset, split=split, data_dir=data_dir, batch_size=batch_size
    )
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(printable(result.checkpoint))
    click.echo(
        f"{printable(result.dataset)} {result.split} split, {result.samples} samples: "
        f"accuracy {result.accuracy:.2%}, loss {result.loss:.4f}"
    )
    per_class = {printable(name): accuracy for name, accuracy in result.per_class.items()}
    width = max(len(name) for name in per_class)
    for name, accuracy in per_class.items():
        click.echo(f"  {name:<{width}}  {accuracy:.2%}")


@click.command(
    "predict",
    epilog="""\b
Examples:
  zoo predict runs/20261127-140501-mlp-leakyrelu-mnist digit.png
  zoo predict model.ckpt a.png b.jpg --top-k 1 --json
""",
)
@click.argument("checkpoint", metavar="CHECKPOINT_OR_WEIGHTS")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(min=1))
@json_option("Print a JSON list.")
def predict_command(checkpoint: str, images: tuple[str, ...], top_k: int, as_json: bool) -> None:
    """The most likely classes of each image (PNG, JPEG, ... any size or mode), resized and
    normalised like the checkpoint's dataset. CHECKPOINT_OR_WEIGHTS may be a run directory,
    a weights name, an exported model directory or hf-hub:OWNER/REPO."""
    from zoo.training.evaluation import predict

    predictions = predict(checkpoint, images, top_k=top_k)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in predictions]))
        return
    for prediction in predictions:
        ranked = ", ".join(
            f"{printable(name)} {probability:.1%}" for name, probability in prediction.top
        )
        click.echo(f"{printable(prediction.image)}: {ranked}")
