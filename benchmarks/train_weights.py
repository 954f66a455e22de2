"""Train the built-in weights and write them into zoo/weights/files (they ship in the wheel).

The seed study's MLP (784-128-64-10) with relu, leakyrelu, sigmoid and tanh on MNIST, seed 0,
a few epochs of Adam each; and the best MLP recipes of docs/recipes.md on MNIST and
Fashion-MNIST, as docs/recipes.md gives them (15 epochs, seed 0; about 1 and 3 minutes here).
Each run is exported (model.safetensors measured: parameters, FLOPs, size, sha256), evaluated on
the test split exactly as ``zoo evaluate`` does, and recorded in zoo/weights/files/manifest.json
with the command that trained it. The file name carries the first 8 hex digits of its sha256, as
torchvision's do.

    ZOO_DATA_DIR=/path/to/data OMP_NUM_THREADS=1 python benchmarks/train_weights.py --epochs 3
    ZOO_DATA_DIR=/path/to/data OMP_NUM_THREADS=1 python benchmarks/train_weights.py --acts '' \
        --recipes mlp-relu.mnist-recipe,mlp-relu.fashion-mnist-recipe
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import zoo
from zoo.runs.config import RunConfig
from zoo.training.evaluation import evaluate
from zoo.weights.entry import Weights, read_weights_manifest
from zoo.weights.export import export_model

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "zoo" / "weights" / "files"
MANIFEST = FILES / "manifest.json"
ACTIVATIONS = ("relu", "leakyrelu", "sigmoid", "tanh")
#: The best MLP recipes of docs/recipes.md, as there (seed 0): name, run options (a RunConfig),
#: summary.
RECIPES: dict[str, tuple[dict[str, object], str]] = {
    "mlp-relu.mnist-recipe": (
        {"arch": "mlp:hidden=(256,128,100)", "epochs": 15,
         "optimizer": "adamw:weight_decay=0.05", "scheduler": "onecycle", "seed": 0},
        "docs/recipes.md's MNIST MLP recipe (784-256-128-100-10, AdamW, one-cycle), "
        "15 epochs, seed 0",
    ),
    "mlp-relu.fashion-mnist-recipe": (
        {"arch": "mlp:hidden=(512,256),dropout=0.2", "dataset": "fashion-mnist", "epochs": 15,
         "optimizer": "adamw:weight_decay=0.05", "scheduler": "onecycle",
         "label_smoothing": 0.1, "augment": ("hflip",), "seed": 0},
        "docs/recipes.md's Fashion-MNIST MLP recipe (784-512-256-10, dropout 0.2, AdamW, "
        "one-cycle, label smoothing 0.1, hflip), 15 epochs, seed 0",
    ),
}  # fmt: skip


def train_one(act: str, epochs: int, seed: int, work: Path) -> Weights:
    """Train, export, evaluate one activation; its entry, its file copied into FILES."""
    result = zoo.train("mlp", act=act, dataset="mnist", epochs=epochs, seed=seed,
                       output_dir=work / "runs", progress=False)  # fmt: skip
    command = shlex.join(["zoo", "train", "--arch", "mlp", "--act", act, "--dataset", "mnist",
                          "--epochs", str(epochs), "--seed", str(seed)])  # fmt: skip
    summary = f"seed study MLP 784-128-64-10 with {act}, {epochs} epochs of Adam on MNIST"
    return ship(Path(result.run_dir), work / act, None, command, summary)


def train_recipe(name: str, work: Path) -> Weights:
    """Train, export, evaluate one recipe of :data:`RECIPES` as weights ``name``."""
    options, summary = RECIPES[name]
    config = RunConfig(**options)  # type: ignore[arg-type]
    data_dir = os.environ.get("ZOO_DATA_DIR")
    result = zoo.run(config.replace(data_dir=data_dir), output_dir=work / "runs", progress=False)
    return ship(Path(result.run_dir), work / name, name, config.command(), summary)


def ship(run_dir: Path, exported: Path, name: str | None, command: str, summary: str) -> Weights:
    """Export ``run_dir`` (as weights ``name``, else the default name), evaluate it on the test
    split and copy its file into FILES; its entry."""
    entry = export_model(run_dir, exported)
    if name is not None:
        entry = dataclasses.replace(entry, name=name)
        config = exported / "config.json"
        config.write_text(json.dumps(entry.to_dict(), indent=2) + "\n", encoding="utf-8")
    scores = evaluate(exported, split="test")
    file_name = f"{entry.name}-{entry.sha256[:8]}.safetensors"
    for old in FILES.glob(f"{entry.name}-*.safetensors"):
        old.unlink()
    (FILES / file_name).write_bytes((exported / "model.safetensors").read_bytes())
    return dataclasses.replace(
        entry,
        location=f"pkg:zoo.weights/files/{file_name}",
        metrics={"test_acc": scores.accuracy, "test_loss": round(scores.loss, 6)},
        command=command,
        summary=summary,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--acts", default=",".join(ACTIVATIONS))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    args = parser.parse_args()
    entries = {entry.name: entry for entry in read_weights_manifest(MANIFEST)}
    jobs = [(train_one, (act, args.epochs, args.seed)) for act in args.acts.split(",") if act]
    jobs += [(train_recipe, (name,)) for name in args.recipes.split(",") if name]
    with tempfile.TemporaryDirectory() as work:
        for job, job_args in jobs:
            started = time.perf_counter()
            entry = job(*job_args, Path(work))  # type: ignore[operator]
            print(f"{time.perf_counter() - started:.0f} s", file=sys.stderr, end=" ")
            entries[entry.name] = entry
            print(f"{entry.name}: {entry.describe()}", file=sys.stderr, flush=True)
            data = [entries[name].to_dict() for name in sorted(entries)]
            MANIFEST.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
