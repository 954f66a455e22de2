"""``zoo push``: an exported model to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.text import printable


@click.command(
    "push",
    epilog="""\b
Examples:
  zoo export runs/20261127-140501-mlp-leakyrelu-mnist out/
  zoo push out/ me/mlp-leakyrelu-mnist
  python -c "import zoo; zoo.load_weights('hf-hub:me/mlp-leakyrelu-mnist')"
""",
)
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("repo", metavar="OWNER/REPO")
@click.option("--private", is_flag=True, help="Create the repository private.")
def push_command(directory: Path, repo: str, private: bool) -> None:
    """Upload DIRECTORY, made by `zoo export`, to the Hugging Face Hub repository OWNER/REPO
    (created if needed) in one commit. The token comes from huggingface_hub's usual places
    (HF_TOKEN, `hf auth login`)."""
    from zoo.weights.hub import push

    url = push(directory, repo, private=private)
    click.echo(f"pushed {printable(str(directory))} to {printable(url)}")
