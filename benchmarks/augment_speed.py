"""What the built-in batch augmentations cost: seconds per epoch of ``zoo.train`` on real MNIST
(batch 64, the in-memory data path) with no augmentation, ``crop``, ``affine`` and
``crop`` + ``affine`` + ``erasing``, for the ``mlp`` and the ``cnn``, side by side in one run.

Every run is its own process with one torch thread (``torch.set_num_threads(1)`` and
``OMP_NUM_THREADS=1``) and trains ``--max-steps`` steps of the first epoch; the variants are
interleaved, so that a busy spell on a shared machine hits every one, ``--repeats`` times
(3). Three measures:

* **s/epoch**: the median step time (from one ``on_train_batch_start`` to the next, after
  ``WARMUP`` steps; it includes moving the batch and augmenting it) times the steps of a full
  epoch (860 of the 55,000 training images), the lowest of the repeats; validation is left
  out;
* **vs none**: that over the same architecture's s/epoch without augmentation;
* **augment ms/batch**: the augmentations alone on a training batch of 64 on the run's device
  (the best of ``timeit`` runs inside the run), which is what the step pays for them.

Prints a markdown table; ``--docs docs/performance.md`` also writes it into that file's
``augment-speed`` block::

    python benchmarks/augment_speed.py --data-dir DIR --max-steps 60 --docs docs/performance.md
    python benchmarks/augment_speed.py --data-dir DIR --archs mlp --max-steps 300 --repeats 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

#: The augmentations compared, by name: their ``--augment`` specs.
VARIANTS: dict[str, tuple[str, ...]] = {
    "none": (),
    "crop": ("crop:padding=2",),
    "affine": ("affine:degrees=10,translate=0.1,scale=(0.9,1.1)",),
    "crop+affine+erasing": (
        "crop:padding=2",
        "affine:degrees=10,translate=0.1,scale=(0.9,1.1)",
        "erasing:p=0.25",
    ),
}
ARCHS = ("mlp", "cnn")
#: Steps left out of the timing at the start of a run (first calls, caches).
WARMUP = 10


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.run:  # a child process: one JSON line on stdout
        print(json.dumps(_one_run(args)), flush=True)
        return 0
    if not args.data_dir:
        sys.exit("--data-dir (or $ZOO_DATA_DIR) must name a root holding MNIST/raw/")
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    loads: list[float] = []
    for repeat in range(args.repeats):
        for arch in args.archs:
            for variant in args.variants:
                print(f"[{repeat + 1}/{args.repeats}] {arch} {variant} ...", file=sys.stderr)
                loads.append(os.getloadavg()[0])  # the machine may be busy with other work
                runs.setdefault((arch, variant), []).append(_child(arch, variant, args))
    table = _table(runs, args, loads)
    print(table)
    if args.docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from docblocks import write_block

        command = (
            f"python benchmarks/augment_speed.py --data-dir DIR --archs {' '.join(args.archs)} "
            f"--max-steps {args.max_steps} --repeats {args.repeats}"
        )
        write_block(args.docs, "augment-speed", f"{table}\n\nMeasured with `{command}`.")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--docs", type=Path, default=None, help="write the table into this file")
    parser.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--max-steps", type=int, default=150, help="steps each run trains and times [150]"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant [3]")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--run", nargs=2, metavar=("ARCH", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    return parser


def _child(arch: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    work_dir = tempfile.mkdtemp(prefix="zoo-bench-augment-")
    command = [
        *[sys.executable, str(Path(__file__).resolve()), "--run", arch, variant],
        *["--data-dir", args.data_dir, "--max-steps", str(args.max_steps)],
        *["--batch-size", str(args.batch_size), "--work-dir", work_dir],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if completed.returncode != 0:
        sys.exit(f"{arch} {variant} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _one_run(args: argparse.Namespace) -> dict[str, Any]:
    import time

    import lightning as L
    import torch

    import zoo

    torch.set_num_threads(1)
    arch, variant = args.run

    class StepTimer(L.Callback):
        """The start of every training step; at the end, the augmentations alone on the last
        training batch."""

        def __init__(self) -> None:
            self.starts: list[float] = []
            self.batches, self.augment_ms = 0, None
            self.last: tuple[Any, int] | None = None

        def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, i: int) -> None:
            self.starts.append(time.perf_counter())
            self.batches, self.last = trainer.num_training_batches, (batch[0], i)

        def on_train_end(self, trainer: L.Trainer, module: Any) -> None:
            if module.augmenter and self.last is not None:
                images, i = self.last
                runs = timeit.repeat(lambda: _augment(module, images, i), number=20, repeat=5)
                self.augment_ms = min(runs) / 20 * 1e3

    timer = StepTimer()
    result = zoo.train(
        arch,
        act="relu",
        dataset="mnist",
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        augment=VARIANTS[variant],
        seed=0,
        data_dir=args.data_dir,
        output_dir=args.work_dir,
        progress=False,
        callbacks=[timer],
        trainer_options={"limit_test_batches": 1},
    )
    steps = [b - a for a, b in itertools.pairwise(timer.starts[WARMUP:])]
    return {
        "step_s": statistics.median(steps),
        "steps_per_epoch": timer.batches,
        "augment_ms": timer.augment_ms,
        "steps": result.steps,
        "accelerator": result.accelerator,
        "device": torch.cuda.get_device_name() if result.accelerator == "gpu" else None,
    }


def _augment(module: Any, images: Any, batch: int) -> None:
    import torch

    module.augmenter(images, 0, batch)
    if images.is_cuda:
        torch.cuda.synchronize()


def _table(
    runs: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace, loads: list[float]
) -> str:
    import lightning
    import torch

    first = next(iter(runs.values()))[0]
    where = first["device"] or f"{platform.machine()} CPU, {os.cpu_count()} cores"
    lines = [
        f"MNIST, batch {args.batch_size}, {args.max_steps} steps a run ({WARMUP} left out), "
        f"s/epoch extrapolated to {first['steps_per_epoch']} steps, lowest of {args.repeats} "
        f"runs; {where}, 1 torch thread; lightning {lightning.__version__}, torch "
        f"{torch.__version__}; load average {min(loads):.1f}-{max(loads):.1f}",
        "",
        "| arch | augment | s/epoch | vs none | augment ms/batch |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (arch, variant), results in runs.items():
        epoch = min(r["step_s"] * r["steps_per_epoch"] for r in results)
        none = runs.get((arch, "none"))
        ratio = "-"
        if none and variant != "none":
            ratio = f"{epoch / min(r['step_s'] * r['steps_per_epoch'] for r in none):.2f}"
        augment = [r["augment_ms"] for r in results if r["augment_ms"] is not None]
        cost = f"{min(augment):.2f}" if augment else "-"
        specs = " ".join(f"`{spec}`" for spec in VARIANTS[variant]) or "none"
        lines.append(f"| {arch} | {specs} | {epoch:.2f} | {ratio} | {cost} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
