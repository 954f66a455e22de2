"""Fine-tuning from trained weights vs training from scratch, side by side.

Each seed trains the same MLP on the target dataset twice for the same budget: once from random
weights, once from built-in weights (``zoo train --init-weights``); the table gives the test
accuracy of both and their difference, per seed and on average. The default: MNIST weights
(``mlp-relu.mnist``) fine-tuned on Fashion-MNIST for one epoch, seeds 0 and 1.

    ZOO_DATA_DIR=DIR OMP_NUM_THREADS=1 python benchmarks/finetune.py --docs docs/weights.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from statistics import mean

BLOCK = "finetune"


def measure(args: argparse.Namespace, work: Path) -> dict[int, dict[str, float]]:
    """Test accuracy by seed: ``scratch`` and ``weights``."""
    import zoo

    entry = zoo.load_weights(args.weights)[1]
    results: dict[int, dict[str, float]] = {}
    for seed in args.seeds:
        for label, init in (("scratch", None), ("weights", args.weights)):
            result = zoo.train(
                entry.arch, act=entry.act, dataset=args.dataset, epochs=args.epochs,
                max_steps=args.max_steps, seed=seed, init_weights=init, data_dir=args.data_dir,
                output_dir=work, progress=False,
            )  # fmt: skip
            results.setdefault(seed, {})[label] = result.test_acc
            print(f"seed {seed}, {label}: {result.test_acc:.2%}", file=sys.stderr, flush=True)
    return results


def render_table(results: dict[int, dict[str, float]], weights: str) -> str:
    """The Markdown table: one row per seed, then the mean."""
    lines = [
        f"| seed | from scratch | from `{weights}` | difference |",
        "|---|---|---|---|",
    ]
    rows = [(str(seed), r["scratch"], r["weights"]) for seed, r in sorted(results.items())]
    rows.append(
        ("mean", mean(r[1] for r in rows), mean(r[2] for r in rows))  # type: ignore[misc]
    )
    for name, scratch, tuned in rows:
        bold = "**" if name == "mean" else ""
        lines.append(
            f"| {bold}{name}{bold} | {scratch:.2%} | {tuned:.2%} | "
            f"{(tuned - scratch) * 100:+.2f} points |"
        )
    return "\n".join(lines).replace("%", " %")


def command(args: argparse.Namespace) -> str:
    """The command line that measures this again."""
    parts = ["python benchmarks/finetune.py", f"--weights {args.weights}",
             f"--dataset {args.dataset}", f"--epochs {args.epochs}",
             "--seeds " + " ".join(str(s) for s in args.seeds)]  # fmt: skip
    if args.max_steps != -1:
        parts.append(f"--max-steps {args.max_steps}")
    return " ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="mlp-relu.mnist")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--docs", type=Path, default=None, help="write the table into this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = measure(args, Path(work))
    table = render_table(results, args.weights)
    print(table)
    if args.docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from docblocks import provenance, threads_note, write_block

        threads = os.environ.get("OMP_NUM_THREADS")
        note = provenance(command(args), threads_note(int(threads) if threads else None))
        write_block(args.docs, BLOCK, f"{table}\n\n{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
