"""Train the accuracy grid and write its table into README.md; or, with ``recipes``, the
documented training recipes into docs/recipes.md (see benchmarks/recipes.py).

    python benchmarks/accuracy.py --data-dir DIR [--mlp-epochs 10] [--cnn-epochs 3] [--seed 0]
    python benchmarks/accuracy.py recipes --data-dir DIR [--rows mnist-mlp] [--seeds 0,1,2]

The grid is mlp and cnn x relu, leakyrelu, sigmoid, tanh, gelu x mnist and fashion-mnist, each
run trained by ``zoo.train`` with fixed epochs and seed and evaluated on the test split. The table
replaces what lies between the accuracy-table markers in README.md, next to the published
references, with the date of the runs, the machine and the thread count. ``--data-dir`` holds
MNIST/raw/; Fashion-MNIST comes from there too, or from the Debian package dataset-fashion-mnist.
Nothing is downloaded, and nothing is written into the data directory: runs go to
``--output-dir``, with ``results.json``, from which an interrupted grid resumes
(``--table-only`` rewrites the table from it without training).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- accuracy-table:start -->"
END = "<!-- accuracy-table:end -->"

ACTIVATIONS = ("relu", "leakyrelu", "sigmoid", "tanh", "gelu")
DATASETS = ("mnist", "fashion-mnist")
#: Grid architecture -> (spec, description). The MLP has the hidden sizes of the Fashion-MNIST
#: benchmark's MLPClassifier (256-128-100), so that reference compares like with like.
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "mlp": ("mlp:hidden=(256,128,100)", "mlp 256-128-100"),
    "cnn": ("cnn", "cnn (defaults: conv 32-32, 64-64)"),
}
#: (dataset, architecture) -> the published result to compare with.
REFERENCES: dict[tuple[str, str], str] = {
    ("mnist", "mlp"): "LeCun et al.'s MNIST table: 3-layer MLP 500-150, 97.05 %",
    ("mnist", "cnn"): "—",
    ("fashion-mnist", "mlp"): "Fashion-MNIST benchmark: MLP 256-128-100, 88.3 %",
    ("fashion-mnist", "cnn"): "Fashion-MNIST benchmark: 2 conv layers + pooling, 92.5 %",
}


def run_key(arch: str, act: str, dataset: str, epochs: int, seed: int) -> str:
    """The key of one run in results.json."""
    return f"{ARCHITECTURES[arch][0]}|{act}|{dataset}|{epochs}|{seed}"


def train_grid(
    *,
    data_dir: str,
    output_dir: Path,
    epochs: Mapping[str, int],
    seed: int,
    archs: Sequence[str],
    acts: Sequence[str],
    datasets: Sequence[str],
    results: dict[str, Any],
    results_path: Path,
    threads: int | None = None,
) -> None:
    """Train every run of the grid not in ``results`` yet, saving ``results`` after each."""
    import zoo

    for dataset in datasets:
        for arch in archs:
            for act in acts:
                key = run_key(arch, act, dataset, epochs[arch], seed)
                if key in results:
                    continue
                print(f"[accuracy] {key} ...", file=sys.stderr, flush=True)
                result = zoo.train(
                    ARCHITECTURES[arch][0],
                    act=act,
                    dataset=f"{dataset}:download=False",
                    epochs=epochs[arch],
                    seed=seed,
                    data_dir=data_dir,
                    output_dir=output_dir / "runs",
                    progress=False,
                )
                results[key] = {
                    "arch": arch,
                    "act": act,
                    "dataset": dataset,
                    "epochs": epochs[arch],
                    "seed": seed,
                    "test_acc": result.test_acc,
                    "test_loss": result.test_loss,
                    "train_seconds": result.train_seconds,
                    "best_val_acc": result.best_val_acc,
                    "run_dir": result.run_dir,
                    "date": date.today().isoformat(),
                    "threads": threads,
                }
                print(
                    f"[accuracy] {key}: {100 * result.test_acc:.2f} % "
                    f"in {result.train_seconds:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
                results_path.write_text(json.dumps(results, indent=2) + "\n")


def render_table(
    results: Mapping[str, Any],
    epochs: Mapping[str, int],
    seed: int,
    machine: str,
    threads: int | None = None,
) -> str:
    """The markdown that goes between the markers: the table, when and where the runs were
    measured, and the command."""
    header = ["dataset", "architecture", "epochs", *ACTIVATIONS, "published reference"]
    lines = [
        f"Test accuracy of the best-validation checkpoint (seed {seed}, Adam at lr 1e-3, batch 64) "
        f"and, in brackets, the run's training time on {machine}"
        + (f", {threads} torch thread{'s' if threads > 1 else ''}" if threads else "")
        + ":",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    for dataset in DATASETS:
        for arch in ARCHITECTURES:
            cells = []
            scores: dict[str, float] = {}
            for act in ACTIVATIONS:
                run = results.get(run_key(arch, act, dataset, epochs[arch], seed))
                if run is None:
                    cells.append("not run")
                    continue
                scores[act] = 100 * run["test_acc"]
                cells.append(f"{scores[act]:.2f} % ({run['train_seconds']:.0f} s)")
            row = [dataset, ARCHITECTURES[arch][1], str(epochs[arch]), *cells]
            lines.append("| " + " | ".join([*row, REFERENCES[(dataset, arch)]]) + " |")
    dates = sorted({run["date"] for run in results.values() if run.get("date")})
    if dates:
        when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
        lines += ["", f"Measured on {when}."]
    lines.append("")
    lines.append(
        "Reproduce (about "
        + _total_minutes(results)
        + " on that machine; nothing is downloaded or written into the data directory):"
    )
    lines += [
        "",
        "```bash",
        f"python benchmarks/accuracy.py --data-dir DIR --mlp-epochs {epochs['mlp']} "
        f"--cnn-epochs {epochs['cnn']} --seed {seed}"
        + (f" --threads {threads}" if threads else ""),
        "```",
    ]
    return "\n".join(lines)


def _total_minutes(results: Mapping[str, Any]) -> str:
    seconds = sum(run["train_seconds"] for run in results.values())
    return f"{max(1, round(seconds / 60))} minutes of training"


def replace_between_markers(text: str, content: str) -> str:
    """``text`` with what lies between START and END replaced by ``content``."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"the README has no {START} ... {END} markers")
    return pattern.sub(lambda _: f"{START}\n{content}\n{END}", text, count=1)


def machine_description() -> str:
    """The machine, in words: the platform, the CPU count and model, or the GPU."""
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f"one {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from docblocks import machine

    return machine(gpu)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["recipes"]:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import recipes

        return recipes.main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--output-dir", type=Path, default=Path("/tmp/zoo-accuracy"))
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--mlp-epochs", type=int, default=10)
    parser.add_argument("--cnn-epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--archs", default=",".join(ARCHITECTURES))
    parser.add_argument("--acts", default=",".join(ACTIVATIONS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--machine", default=None, help="how the table names the machine")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch's CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--table-only", action="store_true", help="rewrite the table from results.json"
    )
    args = parser.parse_args(argv)
    if not args.data_dir and not args.table_only:
        parser.error("--data-dir (or ZOO_DATA_DIR) must name the directory that holds MNIST/raw/")

    epochs = {"mlp": args.mlp_epochs, "cnn": args.cnn_epochs}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.output_dir / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    started = time.perf_counter()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not args.table_only:
        train_grid(
            data_dir=args.data_dir,
            output_dir=args.output_dir,
            epochs=epochs,
            seed=args.seed,
            archs=args.archs.split(","),
            acts=args.acts.split(","),
            datasets=args.datasets.split(","),
            results=results,
            results_path=results_path,
            threads=args.threads,
        )
    machine = args.machine or machine_description()
    table = render_table(results, epochs, args.seed, machine, args.threads)
    args.readme.write_text(replace_between_markers(args.readme.read_text(), table))
    print(table)
    print(
        f"[accuracy] wrote the table into {args.readme} ({time.perf_counter() - started:.0f} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
