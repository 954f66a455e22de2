"""Train the README's headline runs as a user would, and write their figures into README.md.

    python benchmarks/headline.py [--threads 1] [--data-dir DIR]

Each run is the ``zoo`` command itself, in its own process, with ``OMP_NUM_THREADS`` set (one
torch thread by default, so that a busy machine disturbs the timing less):

    zoo train --arch mlp --act leakyrelu --epochs 5 --seed 0 --data-dir DIR --json
    zoo train --dataset fashion-mnist --epochs 1 --seed 0 --json

``DIR`` (``--data-dir``, default ``$ZOO_DATA_DIR``) holds ``MNIST/raw/``. Fashion-MNIST is found
the way ``zoo train`` finds it for a user: in ``$ZOO_DATA_DIR`` if it is there, else from Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``), else downloaded; pass
``--fashion-data-dir`` to name a root yourself. Runs go to a temporary directory, removed after.
The test accuracy, test loss and training seconds (``train_seconds`` of ``--json``: fitting,
validation included, not the final test) replace the ``headline`` block of README.md, with the
date, the machine and the thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docblocks import ROOT, provenance, threads_note, write_block

BLOCK = "headline"

#: (what the README says, the options a user types, what the run is).
RUNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "mnist",
        ("--arch", "mlp", "--act", "leakyrelu", "--epochs", "5", "--seed", "0"),
        "MNIST, the MLP 784-128-64-10",
    ),
    (
        "fashion-mnist",
        ("--dataset", "fashion-mnist", "--epochs", "1", "--seed", "0"),
        "Fashion-MNIST, the default MLP with ReLU",
    ),
)


def zoo_command() -> list[str]:
    """``zoo`` as a user runs it: the console script, else ``python -m zoo``."""
    script = shutil.which("zoo")
    return [script] if script else [sys.executable, "-m", "zoo"]


def train(options: Sequence[str], data_dir: str | None, threads: int, output: Path) -> Any:
    """Run ``zoo train OPTIONS --output-dir OUTPUT --json``; its JSON result."""
    command = [*zoo_command(), "train", *options]
    if data_dir:
        command += ["--data-dir", data_dir]
    command += ["--output-dir", str(output), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    print(f"[headline] {shlex.join(command)}", file=sys.stderr, flush=True)
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        sys.exit(f"zoo train failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def render(results: Sequence[tuple[str, Any]], threads: int, load: float) -> str:
    """The block: one row per run, then where and how it was measured."""
    lines = [
        "| command | data | test accuracy | test loss | training time |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (_, options, what), (_, result) in zip(RUNS, results, strict=True):
        command = f"OMP_NUM_THREADS={threads} zoo train {shlex.join(options)}"
        lines.append(
            f"| `{command}` | {what} | **{100 * result['test_acc']:.2f} %** | "
            f"{result['test_loss']:.4f} | {result['train_seconds']:.1f} s |"
        )
    gpu = next((r["accelerator"] for _, r in results if r["accelerator"] != "cpu"), None)
    lines += [
        "",
        "Training time is the run's `train_seconds` (fitting, validation included; not the final "
        "test or start-up). "
        + provenance("python benchmarks/headline.py", threads_note(threads), gpu=gpu)
        + f" Load average {load:.1f} before the first run.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--fashion-data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for the runs")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("--data-dir (or ZOO_DATA_DIR) must name the directory that holds MNIST/raw/")
    load = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="zoo-headline-") as output:
        for name, options, _ in RUNS:
            data_dir = args.data_dir if name == "mnist" else args.fashion_data_dir
            result = train(options, data_dir, args.threads, Path(output) / name)
            results.append((name, result))
    block = render(results, args.threads, load)
    write_block(args.readme, BLOCK, block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
