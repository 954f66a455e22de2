"""Documented training recipes, each trained over seeds 0-2, into docs/recipes.md.

    python benchmarks/accuracy.py recipes --data-dir DIR [--rows mnist-mlp,...] [--seeds 0,1,2]

Each row is one ``zoo train`` command (printed in the table) run once per seed by ``zoo.run``;
the table gives the test accuracy of the best-validation checkpoint as mean ± standard deviation
over the seeds, each seed's figure, and the training time per run. Runs go to ``--output-dir``
with ``recipes.json``, from which an interrupted table resumes (``--table-only`` rewrites it
without training). A row not trained on this machine says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from docblocks import ROOT, machine, threads_note, write_block

BLOCK = "recipes-table"


@dataclass(frozen=True)
class Recipe:
    """One row: what it trains, and the accuracy it is meant to reach."""

    dataset: str
    arch: str
    goal: float  # test accuracy, percent
    options: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"{self.dataset}-{self.arch}"

    def config(self, seed: int, data_dir: str | None = None) -> Any:
        from zoo import RunConfig

        return RunConfig(dataset=self.dataset, seed=seed, data_dir=data_dir, **self.options)

    def command(self) -> str:
        config = self.config(seed=0)
        return config.command().replace(" --seed 0", " --seed K")


RECIPES: tuple[Recipe, ...] = (
    Recipe("mnist", "mlp", 98.4, {
        "arch": "mlp:hidden=(256,128,100)", "act": "relu", "epochs": 15,
        "optimizer": "adamw:weight_decay=0.05", "scheduler": "onecycle",
    }),
    Recipe("fashion-mnist", "mlp", 90.0, {
        "arch": "mlp:hidden=(512,256),dropout=0.2", "act": "relu", "epochs": 15,
        "optimizer": "adamw:weight_decay=0.05", "scheduler": "onecycle", "label_smoothing": 0.1,
        "augment": ("hflip",),
    }),
    Recipe("mnist", "cnn", 99.5, {
        "arch": "cnn", "act": "relu", "epochs": 15, "batch_size": 128,
        "optimizer": "adamw:weight_decay=0.05", "scheduler": "onecycle", "label_smoothing": 0.1,
        "augment": ("affine:degrees=10,translate=0.1",),
    }),
    Recipe("fashion-mnist", "cnn", 93.5, {
        "arch": "cnn:channels=(64,128)", "act": "relu", "epochs": 15, "batch_size": 128,
        "optimizer": "adamw:weight_decay=0.05", "scheduler": "onecycle", "label_smoothing": 0.1,
        "augment": ("hflip", "crop:padding=2", "erasing:p=0.25"),
    }),
)  # fmt: skip


def train_rows(
    recipes: Sequence[Recipe],
    seeds: Sequence[int],
    data_dir: str,
    output_dir: Path,
    results: dict[str, Any],
) -> None:
    """Train every (recipe, seed) not in ``results`` yet, saving them after each run."""
    import zoo

    path = output_dir / "recipes.json"
    for recipe in recipes:
        for seed in seeds:
            key = f"{recipe.key}|{seed}"
            if key in results:
                continue
            print(f"[recipes] {key} ...", file=sys.stderr, flush=True)
            config = recipe.config(seed, data_dir)
            result = zoo.run(config, output_dir=output_dir / "runs", progress=False)
            results[key] = {
                "command": recipe.command(),
                "test_acc": result.test_acc,
                "epochs": result.epochs,
                "train_seconds": result.train_seconds,
                "run_dir": result.run_dir,
                "date": date.today().isoformat(),
            }
            print(f"[recipes] {key}: {100 * result.test_acc:.2f} %", file=sys.stderr, flush=True)
            path.write_text(json.dumps(results, indent=2) + "\n")


def render(results: Mapping[str, Any], seeds: Sequence[int], where: str) -> str:
    """The table, the commands, and where and when they were measured."""
    lines = [
        "| dataset | architecture | goal | test accuracy (mean ± std) | per seed | time per run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for recipe in RECIPES:
        runs = [results[f"{recipe.key}|{s}"] for s in seeds if f"{recipe.key}|{s}" in results]
        accuracies = [100 * run["test_acc"] for run in runs]
        if not runs:
            cells = ["not trained on this machine", "—", "—"]
        else:
            spread = statistics.stdev(accuracies) if len(accuracies) > 1 else None
            mean = f"{statistics.mean(accuracies):.2f} %" + (
                f" ± {spread:.2f}" if spread is not None else " (one seed)"
            )
            minutes = statistics.mean(run["train_seconds"] for run in runs) / 60
            per_seed = ", ".join(f"{a:.2f}" for a in accuracies)
            cells = [mean, per_seed, f"{minutes:.1f} min"]
        row = [recipe.dataset, recipe.arch, f"≥ {recipe.goal} %", *cells]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "The commands (`K` is the seed):", ""]
    for recipe in RECIPES:
        lines += [f"- {recipe.dataset} {recipe.arch}:", "", "  ```bash", f"  {recipe.command()}",
                  "  ```", ""]  # fmt: skip
    dates = sorted({run["date"] for run in results.values()})
    when = (dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}") if dates else "never"
    seeds_text = ", ".join(str(s) for s in seeds)
    lines.append(f"Seeds {seeds_text}; measured {when} on {where}.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--output-dir", type=Path, default=Path("/tmp/zoo-recipes"))
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "recipes.md")
    parser.add_argument("--rows", default=",".join(r.key for r in RECIPES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.data_dir and not args.table_only:
        parser.error("--data-dir (or ZOO_DATA_DIR) must name the directory that holds MNIST/raw/")
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = [r for r in RECIPES if r.key in args.rows.split(",")]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "recipes.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    started = time.perf_counter()
    if not args.table_only:
        import torch

        torch.set_num_threads(args.threads)
        train_rows(chosen, seeds, args.data_dir, args.output_dir, results)
    where = f"{machine()}; {threads_note(args.threads)}"
    table = render(results, seeds, where)
    write_block(args.docs, BLOCK, table)
    print(table)
    print(f"[recipes] wrote {args.docs} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
