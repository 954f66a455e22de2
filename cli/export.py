"""``zoo export``: a run or trained weights as a directory anyone can load."""

from __future__ import annotations

import json

import click

from zoo.cli.options import json_option
from zoo.text import printable


@click.command(
    "export",
    epilog="""\b
Examples:
  zoo export runs/20261127-140501-mlp-leakyrelu-mnist out/
  zoo export runs/20261127-140501-mlp-leakyrelu-mnist out/ --format onnx
  zoo export mlp-relu.mnist out/ --format torchscript --format pt2
  zoo export mlp-tanh.mnist out/
""",
)
@click.argument("source", metavar="RUN_OR_WEIGHTS")
@click.argument("out_dir", type=click.Path(dir_okay=True))
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["safetensors", "onnx", "torchscript", "pt2"]),
    help="Also write model.onnx (checked with onnxruntime; needs lightning-zoo[export]), "
    "model.torchscript.pt (torch.jit.trace) or model.pt2 (torch.export), each reloaded and "
    "checked against PyTorch. model.safetensors, config.json and README.md are always "
    "written. Repeatable.",
)
@click.option("--force", is_flag=True, help="Replace OUT_DIR if it exists.")
@json_option("Print the exported entry as one JSON object.")
def export_command(
    source: str, out_dir: str, formats: tuple[str, ...], force: bool, as_json: bool
) -> None:
    """Export RUN_OR_WEIGHTS (a run directory, a .ckpt file, a weights name, an exported
    directory or hf-hub:OWNER/REPO) into OUT_DIR: model.safetensors, config.json (zoo rebuilds
    the model from it alone) and a model card, README.md. OUT_DIR is written whole or not at
    all."""
    from zoo.weights.export import export_model

    entry = export_model(source, out_dir, formats=("safetensors", *formats), overwrite=force)
    if as_json:
        click.echo(json.dumps(entry.to_dict()))
        return
    from zoo.weights.traced import FILES

    extra = {"onnx": "model.onnx", **FILES}
    files = ", ".join(["model.safetensors, config.json, README.md"] +
                      [extra[f] for f in extra if f in formats])  # fmt: skip
    click.echo(f"exported {printable(entry.name)} to {printable(out_dir)}: {files}")
    click.echo(f"  {printable(entry.describe())}")
