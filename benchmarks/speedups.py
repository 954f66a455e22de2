"""What each of ``zoo._compat.speedups``' speed-ups saves: one epoch of the default MLP
(``zoo.train("mlp", act="relu", dataset="mnist")``, batch 64, progress bar on) on real MNIST
with all of them on, with each one off in turn, and with all off, side by side in one run.

Every run is its own process with one torch thread (``OMP_NUM_THREADS=1``) and the speed-ups
chosen by ``$ZOO_SPEEDUPS``; the variants are interleaved, so that a busy spell on a shared
machine hits every one, and each figure is the best of ``--repeats`` (3). Two measures:

* **epoch s**: the epoch's training batches, from the epoch's start to its validation;
* **µs/step**: the lower quartile of the epoch's step times (each from one
  ``on_train_batch_start`` to the next): a step that another process preempted takes
  milliseconds longer, and on a shared machine many are, but a cost that every step pays
  moves the quartile as much as the mean. (It leaves out the throttled progress bar's
  redraws, ten a second, ≈1 % of the steps; with ``throttled_redraws`` off, every step
  redraws.)

A speed-up's saving is its variant's figure (that one off) less the figure with all on. On a
shared machine, savings of a few µs a step drown in the noise between processes, so a second
table times what each speed-up replaces on its own, inside a real fit with all on (the plain
call and the call with the speed-up, each the best of 7 ``timeit`` runs), times how often a
training step makes that call::

    python benchmarks/speedups.py --data-dir DIR
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ALL, NONE = "all on", "all off"
QUANTILE = 0.25  # of the step times: µs/step


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.run:  # a child process: one JSON line on stdout
        print(json.dumps(_one_epoch(args) if args.run == "epoch" else _isolated(args)), flush=True)
        return 0
    if not args.data_dir:
        sys.exit("--data-dir (or $ZOO_DATA_DIR) must name a root holding MNIST/raw/")
    from zoo._compat.speedups import NAMES

    variants = {ALL: "all", **{f"{name} off": _all_but(name, NAMES) for name in NAMES}}
    variants[NONE] = "none"
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}
    for repeat in range(args.repeats):
        for variant, switch in variants.items():
            print(f"[{repeat + 1}/{args.repeats}] {variant} ...", file=sys.stderr, flush=True)
            load = os.getloadavg()[0]  # the machine may be busy with other work
            runs[variant].append({**_child("epoch", switch, args), "load_average_before": load})
    print(_table(runs, args))
    print("\n" + _isolated_table([_child("isolated", "all", args) for _ in range(args.repeats)]))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant [3]")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--run", choices=("epoch", "isolated"), help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    return parser


def _all_but(name: str, names: tuple[str, ...]) -> str:
    return ",".join(other for other in names if other != name)


def _child(mode: str, switch: str, args: argparse.Namespace) -> Any:
    work_dir = tempfile.mkdtemp(prefix="zoo-bench-speedups-")
    command = [
        *[sys.executable, str(Path(__file__).resolve()), "--run", mode],
        *["--data-dir", args.data_dir, "--batch-size", str(args.batch_size)],
        *["--work-dir", work_dir],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_SPEEDUPS": switch}
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if completed.returncode != 0:
        sys.exit(f"ZOO_SPEEDUPS={switch} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _one_epoch(args: argparse.Namespace) -> dict[str, Any]:
    import lightning as L

    import zoo
    from zoo._compat import speedups as _speedups

    class StepTimer(L.Callback):
        """The start of every training step, and of the epoch's validation (its end)."""

        def __init__(self) -> None:
            self.starts: list[float] = []

        def on_train_batch_start(self, *args: Any) -> None:
            self.starts.append(time.perf_counter())

        def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if trainer.state.fn == "fit" and not trainer.sanity_checking and self.starts:
                self.starts.append(time.perf_counter())

    timer = StepTimer()
    result = zoo.train(
        "mlp",
        act="relu",
        dataset="mnist",
        epochs=1,
        batch_size=args.batch_size,
        seed=0,
        data_dir=args.data_dir,
        output_dir=args.work_dir,
        callbacks=[timer],
    )
    steps = sorted(b - a for a, b in itertools.pairwise(timer.starts[: result.steps + 1]))
    return {
        "epoch_seconds": timer.starts[result.steps] - timer.starts[0],
        "step_us": steps[int(len(steps) * QUANTILE)] * 1e6,
        "steps": result.steps,
        "test_acc": result.test_acc,
        "applied": sorted(_speedups.applied()),
    }


def _table(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    import lightning
    import torch

    from zoo._compat.speedups import NAMES

    epoch = {variant: min(r["epoch_seconds"] for r in results) for variant, results in runs.items()}
    step = {variant: min(r["step_us"] for r in results) for variant, results in runs.items()}
    steps = runs[ALL][0]["steps"]
    loads = [r["load_average_before"] for results in runs.values() for r in results]
    lines = [
        f"MNIST MLP 784-128-64-10, batch {args.batch_size}, one epoch ({steps} steps), progress "
        f"bar on, 1 torch thread, best of {args.repeats}; lightning {lightning.__version__}, "
        f"torch {torch.__version__}; load average {min(loads):.1f}-{max(loads):.1f}",
        "",
        "| variant | applied | epoch s | saves s | µs/step | saves µs/step |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant, results in runs.items():
        applied = f"{len(results[0]['applied'])}/{len(NAMES)}"
        saved = "- | " if variant == ALL else f"{epoch[variant] - epoch[ALL]:+.3f} | "
        saved_us = "-" if variant == ALL else f"{step[variant] - step[ALL]:+.1f}"
        lines.append(
            f"| {variant} | {applied} | {epoch[variant]:.3f} | {saved}{step[variant]:.1f} | "
            f"{saved_us} |"
        )
    return "\n".join(lines)


def _isolated(args: argparse.Namespace) -> list[dict[str, Any]]:
    """What each speed-up replaces, timed on its own at step 200 of a real fit (all on), with
    how often a step calls it (counted over steps 50 to 150)."""
    import lightning as L

    import zoo

    class Probe(L.Callback):
        def __init__(self) -> None:
            self.calls: dict[str, float] = {}
            self.rows: list[dict[str, Any]] = []
            self._undo: list[Any] = []

        def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, i: int) -> None:
            if i == COUNTED[0]:
                self._undo = _count_calls(trainer, module, self.calls)
            elif i == COUNTED[1]:
                for undo in self._undo:
                    undo()
                steps = COUNTED[1] - COUNTED[0]
                self.calls = {name: count / steps for name, count in self.calls.items()}

        def on_train_batch_end(self, trainer: L.Trainer, module: Any, *args: Any) -> None:
            if args[-1] == TIMED_AT:
                self.rows = _time_each(trainer, module, *args, calls=self.calls)

    probe = Probe()
    zoo.train(
        "mlp",
        act="relu",
        dataset="mnist",
        epochs=1,
        batch_size=args.batch_size,
        seed=0,
        data_dir=args.data_dir,
        output_dir=args.work_dir,
        callbacks=[probe],
        trainer_options={"limit_train_batches": TIMED_AT + 50, "limit_val_batches": 2},
    )
    return probe.rows


COUNTED, TIMED_AT = (50, 150), 200


def _count_calls(trainer: Any, module: Any, calls: dict[str, float]) -> list[Any]:
    """Counts the module's ``_current_fx_name`` assignments and the checkpoint callback's
    ``state_key`` reads into ``calls``; returns what undoes the counting."""
    module_class, checkpoint = type(module), trainer.checkpoint_callback
    checkpoint_class, setattr_ = type(checkpoint), module_class.__setattr__
    key = checkpoint_class.__dict__["state_key"]
    calls.update(hook_name=0, state_key=0)

    def counted_setattr(self: Any, name: str, value: Any) -> None:
        calls["hook_name"] += name == "_current_fx_name"
        setattr_(self, name, value)

    def counted_key(self: Any) -> str:
        calls["state_key"] += self is checkpoint
        return key.__get__(self, checkpoint_class)

    module_class.__setattr__ = counted_setattr
    checkpoint_class.state_key = property(counted_key)
    return [
        lambda: setattr(module_class, "__setattr__", setattr_),
        lambda: setattr(checkpoint_class, "state_key", key),
    ]


def _time_each(trainer: Any, module: Any, *hook_args: Any, calls: dict[str, float]) -> list[Any]:
    """``(name, calls a step, plain µs, with the speed-up µs)`` for each speed-up."""
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature

    checkpoint, bar = trainer.checkpoint_callback, trainer.progress_bar_callback
    (optimizer,) = trainer.optimizers
    hook = (trainer, module, *hook_args)
    plain_key = type(checkpoint).__dict__["state_key"].func  # the cached property's function
    pairs = {
        "hook_name": (
            lambda: torch.nn.Module.__setattr__(module, "_current_fx_name", "training_step"),
            lambda: type(module).__setattr__(module, "_current_fx_name", "training_step"),
        ),
        "graph_capture_check": (
            lambda: torch.optim.Optimizer._accelerator_graph_capture_health_check(optimizer),
            lambda: optimizer._accelerator_graph_capture_health_check(),
        ),
        "state_key": (lambda: plain_key(checkpoint), lambda: checkpoint.state_key),
        "checkpoint_step": (
            lambda: ModelCheckpoint.on_train_batch_end(checkpoint, *hook),
            lambda: checkpoint.on_train_batch_end(*hook),
        ),
    }
    rows = [(name, calls.get(name, 1.0), _best(p), _best(f)) for name, (p, f) in pairs.items()]

    def signature_check() -> bool:
        return is_param_in_hook_signature(module.training_step, "batch_idx", min_args=2)

    step, fast = type(module).training_step, _best(signature_check)
    stored = step.__dict__.pop("__signature__")
    rows.append(("step_signature", 1.0, _best(signature_check), fast))
    step.__signature__ = stored
    fast = _best(lambda: bar.on_train_batch_end(*hook))
    bar._should_update = TQDMProgressBar._should_update.__get__(bar)  # a redraw every step
    rows.append(("throttled_redraws", 1.0, _best(lambda: bar.on_train_batch_end(*hook)), fast))
    del bar._should_update
    return rows


def _best(function: Any, number: int = 200) -> float:
    """µs a call: the best of 7 timeit runs of ``number`` calls, with the garbage collector on
    (as in training: what a call allocates costs collections too)."""
    import timeit

    runs = timeit.repeat(function, setup="import gc; gc.enable()", number=number, repeat=7)
    return min(runs) / number * 1e6


def _isolated_table(runs: list[list[Any]]) -> str:
    lines = [
        "What each replaces, on its own (best of 7 x 200 calls, in the best of "
        f"{len(runs)} processes):",
        "",
        "| speed-up | calls a step | plain µs | with it µs | saves µs/step |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    total = 0.0
    for name, calls, _, _ in runs[0]:
        plain = min(row[2] for run in runs for row in run if row[0] == name)
        fast = min(row[3] for run in runs for row in run if row[0] == name)
        total += (plain - fast) * calls
        lines.append(
            f"| {name} | {calls:g} | {plain:.2f} | {fast:.2f} | {(plain - fast) * calls:.1f} |"
        )
    lines.append(f"| all | | | | {total:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
