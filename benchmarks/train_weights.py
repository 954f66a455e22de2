"""Train the built-in weights and write them into zoo/weights/files (they ship in the wheel).

The seed study's MLP (784-128-64-10) with relu, leakyrelu, sigmoid and tanh on MNIST, seed 0,
a few epochs of Adam each. Each run is exported (model.safetensors measured: parameters, FLOPs,
size, sha256), evaluated on the test split exactly as ``zoo evaluate`` does, and recorded in
zoo/weights/files/manifest.json with the command that trained it. The file name carries the first
8 hex digits of its sha256, as torchvision's do.

    ZOO_DATA_DIR=/path/to/data OMP_NUM_THREADS=1 python benchmarks/train_weights.py --epochs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
from pathlib import Path

import zoo
from zoo.training.evaluation import evaluate
from zoo.weights.entry import Weights, read_weights_manifest
from zoo.weights.export import export_model

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "zoo" / "weights" / "files"
MANIFEST = FILES / "manifest.json"
ACTIVATIONS = ("relu", "leakyrelu", "sigmoid", "tanh")


def train_one(act: str, epochs: int, seed: int, work: Path) -> Weights:
    """Train, export, evaluate one activation; its entry, its file copied into FILES."""
    result = zoo.train("mlp", act=act, dataset="mnist", epochs=epochs, seed=seed,
                       output_dir=work / "runs", progress=False)  # fmt: skip
    exported = work / act
    entry = export_model(result.run_dir, exported)
    scores = evaluate(exported, split="test")
    file_name = f"{entry.name}-{entry.sha256[:8]}.safetensors"
    for old in FILES.glob(f"{entry.name}-*.safetensors"):
        old.unlink()
    (FILES / file_name).write_bytes((exported / "model.safetensors").read_bytes())
    command = shlex.join(["zoo", "train", "--arch", "mlp", "--act", act, "--dataset", "mnist",
                          "--epochs", str(epochs), "--seed", str(seed)])  # fmt: skip
    return dataclasses.replace(
        entry,
        location=f"pkg:zoo.weights/files/{file_name}",
        metrics={"test_acc": scores.accuracy, "test_loss": round(scores.loss, 6)},
        command=command,
        summary=f"seed study MLP 784-128-64-10 with {act}, {epochs} epochs of Adam on MNIST",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--acts", default=",".join(ACTIVATIONS))
    args = parser.parse_args()
    entries = {entry.name: entry for entry in read_weights_manifest(MANIFEST)}
    with tempfile.TemporaryDirectory() as work:
        for act in args.acts.split(","):
            entry = train_one(act, args.epochs, args.seed, Path(work))
            entries[entry.name] = entry
            print(f"{entry.name}: {entry.describe()}", file=sys.stderr, flush=True)
            data = [entries[name].to_dict() for name in sorted(entries)]
            MANIFEST.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
