"""Seconds per epoch of the seed's MLP (784-128-64-10, ReLU, Adam 1e-3, batch 64) on MNIST, four
ways, each in its own process:

* ``tutorial``: Lightning as its tutorials write it (``tutorial_baseline.py``);
* ``handwritten``: an eager PyTorch loop over tensors preloaded (and normalised) once;
* ``zoo``: ``zoo.train`` with its defaults;
* ``zoo-compile``: ``zoo.train(..., compile=True)``;
* ``zoo-diagnostics``: ``zoo.train(..., diagnostics=True)`` (``zoo train --diagnostics``).

Every variant trains on the same 55,000/5,000 split, validates once per epoch and tests on the
10,000 test images. An epoch's time runs from the start of one training epoch to the start of
the next (the last: to the end of fit), so it includes validation and, for the Lightning
variants, their checkpointing and logging. Prints one table, writes every measurement to a
JSON file and rewrites the ``train-speed`` block of docs/performance.md with the table, the
start-up times, the date, the machine and the thread count (``--no-doc`` leaves it alone)::

    python benchmarks/train_speed.py --data-dir DIR --epochs 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

VARIANTS = ("tutorial", "handwritten", "zoo", "zoo-compile", "zoo-diagnostics")
BASELINE = "handwritten"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.run:  # a child process: one variant, one JSON line on stdout
        print(json.dumps(_run_variant(args)), flush=True)
        return 0
    if not args.data_dir:
        sys.exit("--data-dir (or $ZOO_DATA_DIR) must name a root holding MNIST/raw/")
    output = args.output or Path(tempfile.gettempdir()) / (
        f"zoo-train-speed-{datetime.now():%Y%m%d-%H%M%S}.json"
    )
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for variant in args.variants:  # interleaved, so that a busy spell hits every variant
            print(f"[{repeat + 1}/{args.repeats}] {variant} ...", file=sys.stderr, flush=True)
            runs.append(_child(variant, args, seed=args.seed + repeat))
    startup = _startup(args) if args.startup else None
    rows = _summarise(runs, args.variants)
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "repeats": args.repeats,
            "threads": args.threads,
            "accelerator": args.accelerator,
            "precision": args.precision,
        },
        "summary": rows,
        "startup": startup,
        "runs": runs,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(rows, args))
    if startup:
        print(
            f"\nStartup (best of {len(startup['import_lightning'])}): "
            f"python -c 'import lightning' {min(startup['import_lightning']):.2f} s, "
            f"zoo train --max-steps 1 {min(startup['zoo_train_max_steps_1']):.2f} s"
        )
    print(f"\nAll measurements: {output}")
    if args.doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from docblocks import write_block

        write_block(args.doc, "train-speed", _doc_block(report, args, argv))
        print(f"Wrote the train-speed block of {args.doc}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="repeat k uses seed SEED + k")
    parser.add_argument("--repeats", type=int, default=1, help="run every variant this often")
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), metavar="VARIANT"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads [torch's]")
    parser.add_argument("--accelerator", default="auto", help="for the zoo variants")
    parser.add_argument("--precision", default=None, help="for the zoo variants")
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON file [a new one in the temp directory]"
    )
    parser.add_argument(
        "--no-startup", dest="startup", action="store_false", help="skip the startup timing"
    )
    parser.add_argument(
        "--doc",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "docs" / "performance.md",
        help="the file whose train-speed block gets the results [docs/performance.md]",
    )
    parser.add_argument("--no-doc", dest="doc", action="store_const", const=None)
    parser.add_argument("--run", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    return parser


def _child(variant: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    work_dir = tempfile.mkdtemp(prefix=f"zoo-bench-{variant}-")
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run",
        variant,
        "--data-dir",
        args.data_dir,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(seed),
        "--accelerator",
        args.accelerator,
        "--work-dir",
        work_dir,
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.precision:
        command += ["--precision", args.precision]
    load = os.getloadavg()[0]  # the machine may be busy with other work: keep a record
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if completed.returncode != 0:
        sys.exit(f"{variant} failed:\n{completed.stderr[-4000:]}")
    run: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    run["load_average_before"] = load
    return run


def _run_variant(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.run == BASELINE:
        epoch_seconds, test_acc = _handwritten(args)
    else:
        epoch_seconds, test_acc = _lightning(args)
    return {
        "variant": args.run,
        "seed": args.seed,
        "epoch_seconds": epoch_seconds,
        "seconds": time.perf_counter() - started,
        "test_acc": test_acc,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def _lightning(args: argparse.Namespace) -> tuple[list[float], float]:
    import lightning as L

    class EpochTimer(L.Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.end = 0.0

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.starts.append(time.perf_counter())

        def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.end = time.perf_counter()

        def seconds(self) -> list[float]:
            edges = [*self.starts, self.end]
            return [b - a for a, b in itertools.pairwise(edges)]

    timer = EpochTimer()
    if args.run == "tutorial":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import tutorial_baseline

        test_acc = tutorial_baseline.train(
            args.data_dir, args.work_dir, args.epochs, args.batch_size, args.seed, [timer]
        )
        return timer.seconds(), test_acc

    import zoo

    result = zoo.train(
        "mlp",
        act="relu",
        dataset="mnist",
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        data_dir=args.data_dir,
        output_dir=args.work_dir,
        accelerator=args.accelerator,
        precision=args.precision,
        compile=args.run == "zoo-compile",
        diagnostics=args.run == "zoo-diagnostics",
        callbacks=[timer],
    )
    return timer.seconds(), result.test_acc


def _handwritten(args: argparse.Namespace) -> tuple[list[float], float]:
    """The loop one writes by hand: tensors preloaded and normalised once, plain eager PyTorch."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torchvision.datasets import MNIST

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def load(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        dataset = MNIST(args.data_dir, train=train)
        images = (dataset.data.float() / 255 - 0.1307) / 0.3081
        return images.unsqueeze(1).to(device), dataset.targets.to(device)

    (x, y), (x_test, y_test) = load(True), load(False)
    split = torch.randperm(60_000, generator=torch.Generator().manual_seed(0)).to(device)
    train_idx, val_idx = split[:55_000], split[55_000:]
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
        nn.LogSoftmax(dim=1),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def evaluate(images: torch.Tensor, labels: torch.Tensor) -> float:
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(labels), args.batch_size):
                out = model(images[start : start + args.batch_size])
                correct += int((out.argmax(1) == labels[start : start + args.batch_size]).sum())
        model.train()
        return correct / len(labels)

    epoch_seconds = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        order = train_idx[torch.randperm(len(train_idx), device=device)]
        for index in order.split(args.batch_size):
            loss = F.nll_loss(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        evaluate(x[val_idx], y[val_idx])
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - started)
    return epoch_seconds, evaluate(x_test, y_test)


def _startup(args: argparse.Namespace, repeats: int = 3) -> dict[str, list[float]]:
    """Wall time of ``python -c 'import lightning'`` and of a one-step ``zoo train``."""
    print("startup ...", file=sys.stderr, flush=True)
    timings: dict[str, list[float]] = {
        "import_lightning": [],
        "zoo_train_max_steps_1": [],
        "zoo_help": [],
    }
    with tempfile.TemporaryDirectory(prefix="zoo-bench-startup-") as runs:
        commands = {
            "import_lightning": [sys.executable, "-c", "import lightning"],
            "zoo_train_max_steps_1": [
                *[sys.executable, "-m", "zoo", "train", "--max-steps", "1", "--seed", "0"],
                *["--data-dir", args.data_dir, "--output-dir", runs, "--json"],
            ],
            "zoo_help": [sys.executable, "-m", "zoo", "--help"],
        }
        env = dict(os.environ)
        if args.threads:  # the same torch threads as the variants
            env["OMP_NUM_THREADS"] = str(args.threads)
        for _ in range(repeats):
            for name, command in commands.items():
                started = time.perf_counter()
                subprocess.run(command, capture_output=True, check=True, env=env)
                timings[name].append(time.perf_counter() - started)
    return timings


def _summarise(runs: list[dict[str, Any]], variants: list[str]) -> list[dict[str, Any]]:
    rows = []
    for variant in variants:
        mine = [run for run in runs if run["variant"] == variant]
        epochs = [s for run in mine for s in run["epoch_seconds"]]
        rows.append(
            {
                "variant": variant,
                "seconds_per_epoch": statistics.median(epochs),
                "first_epoch_seconds": statistics.median(run["epoch_seconds"][0] for run in mine),
                "peak_rss_mb": max(run["peak_rss_mb"] for run in mine),
                "test_acc": statistics.mean(run["test_acc"] for run in mine),
                "threads": mine[0]["threads"],
            }
        )
    baseline = next((r["seconds_per_epoch"] for r in rows if r["variant"] == BASELINE), None)
    for row in rows:
        row["vs_handwritten"] = row["seconds_per_epoch"] / baseline if baseline else None
    return rows


def _table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"MNIST MLP 784-128-64-10, batch {args.batch_size}, {args.epochs} epoch(s), "
        f"{args.repeats} run(s) each, {rows[0]['threads']} torch thread(s)",
        "",
        "| variant | s/epoch (median) | x hand-written | 1st epoch s | peak RSS MB "
        "| test acc (mean) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ratio = f"{row['vs_handwritten']:.2f}" if row["vs_handwritten"] is not None else "-"
        lines.append(
            f"| {row['variant']} | {row['seconds_per_epoch']:.2f} | {ratio} | "
            f"{row['first_epoch_seconds']:.2f} | {row['peak_rss_mb']:.0f} | "
            f"{row['test_acc']:.2%} |"
        )
    return "\n".join(lines)


def _doc_block(report: dict[str, Any], args: argparse.Namespace, argv: list[str] | None) -> str:
    """The train-speed block of docs/performance.md: the table, start-up, where and when."""
    from docblocks import provenance

    rows = report["summary"]
    lines = [_table(rows, args), ""]
    startup = report["startup"]
    if startup:
        lines += [
            f"Start-up, wall time, best of {len(startup['import_lightning'])}: "
            f"`python -c 'import lightning'` {min(startup['import_lightning']):.2f} s; "
            f"`zoo train --max-steps 1` (one step, then the test on 10,000 images) "
            f"{min(startup['zoo_train_max_steps_1']):.2f} s; "
            f"`zoo --help` {min(startup['zoo_help']):.2f} s.",
            "",
        ]
    loads = [run["load_average_before"] for run in report["runs"]]
    words = ["python", "benchmarks/train_speed.py", *(argv if argv is not None else sys.argv[1:])]
    words = [words[0], *("DIR" if a == "--data-dir" else b for a, b in itertools.pairwise(words))]
    threads = rows[0]["threads"]
    note = f"{threads} torch thread{'s' if threads != 1 else ''}"
    note += " (`--threads`)" if args.threads else " (torch's default)"
    lines.append(
        provenance(" ".join(words), note, gpu=report["machine"]["cuda"])
        + f" Load average {min(loads):.1f} to {max(loads):.1f} before the variants."
    )
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


if __name__ == "__main__":
    sys.exit(main())
