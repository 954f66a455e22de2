"""lightning-zoo against the loop a researcher writes by hand (``handwritten_loops.py``: plain
PyTorch, data in memory, the same models, split, data order, epochs and optimizer), side by side
in one invocation, every side a whole process of its own, timed from its start to its exit:

* **study**: the activation study (4 activations x 3 seeds x 3 epochs of the MLP 784-128-64-10)
  with the 12 models stacked in one loop (``torch.baddbmm``, one thread per core) against
  ``zoo compare`` (fused, its defaults), and one model after another (1 thread) against
  ``zoo compare --separate --jobs 2``;
* **run**: one MLP (relu, seed 0) as a whole process for 1 epoch (1 thread) against
  ``zoo train --epochs 1``, and for 2 epochs the training seconds (data set-up, training and
  validation, not the test) against ``zoo train --json``'s ``train_seconds``;
* **cnn**: one training step of the default ``cnn`` at batch 128 (1 thread) against zoo's step
  inside a real ``zoo.train`` run: the time from one ``on_train_batch_start`` to the next, so
  everything zoo does per step (fetching the batch, hooks, metrics) is in it;
* **scaling**: the study at 1 epoch with 3, 12 and 48 seeds (12, 48 and 192 runs), stacked
  against ``zoo compare``: wall time and peak memory, drawn as a plot.

Every part runs its variants ``--repeats`` times (the run part ``--run-repeats`` times), in
reverse order on every other repeat, so that a busy spell on a shared machine hits each; the
tables show min / median. Test accuracies are printed side by side: the two sides train the same
models on the same data in the same order, so they must agree within the seeds' spread.

``--quick`` is a tiny version for tests (two activations, one seed, 3 steps a run; processes
forked from zoo's fork server instead of fresh interpreters, so its figures are not comparable).
``--docs PATH`` (default docs/performance.md, none with ``--quick``) writes the tables into the
``handwritten`` block of PATH and the plot beside it; ``--no-doc`` writes nothing::

    python benchmarks/handwritten.py --data-dir DIR --repeats 2
    python benchmarks/handwritten.py --data-dir DIR --only cnn run --no-doc
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare_speed import TreeMemory  # noqa: E402  (a sibling script, not a package)

ACTS = ("relu", "leakyrelu", "sigmoid", "tanh")
PARTS = ("study", "run", "cnn", "scaling")
#: The blocks of docs/performance.md this script writes, and the parts each one shows.
BLOCKS = {"handwritten": ("study", "run", "cnn"), "handwritten-scaling": ("scaling",)}
PLOT = "handwritten-scaling.png"
CPUS = os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.zoo_cnn_step:  # a child process: zoo's cnn steps, one JSON line on stdout
        print(json.dumps(zoo_cnn_steps(args)), flush=True)
        return 0
    if not args.data_dir and not args.from_json:
        sys.exit("--data-dir (or $ZOO_DATA_DIR) must name a root holding MNIST/raw/")
    settle(args)
    report = read_report(args) if args.from_json else measure_parts(args)
    text = render(report, args)
    print(text, flush=True)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    plot = args.plot or (args.docs.parent / PLOT if args.docs and "scaling" in args.only else None)
    if plot and "scaling" in report:
        draw(report["scaling"], plot, args)
    if args.docs:
        from docblocks import write_block

        for block, parts in BLOCKS.items():
            if any(part in report for part in parts):
                picture = plot if "scaling" in parts else None
                text = doc_block(render(report, args, parts), args, picture, report.get("date"))
                write_block(args.docs, block, text)
                print(f"Wrote the {block} block of {args.docs}", file=sys.stderr)
    return 0


def measure_parts(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parts of ``--only``: every measurement, and the settings they were made with."""
    bench = Bench(args)
    report: dict[str, Any] = {"settings": {k: v for k, v in vars(args).items() if k != "docs"}}
    report["date"] = date.today().isoformat()
    for part in args.only:
        print(f"== {part}", file=sys.stderr, flush=True)
        report[part] = PART_RUNNERS[part](bench, args)
        report["load_average"] = [min(bench.loads), max(bench.loads)]
        if args.output:  # after each part: what was measured survives an interruption
            args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def read_report(args: argparse.Namespace) -> dict[str, Any]:
    """The measurements of an earlier ``--output`` file, with the settings they were made with
    (``--from-json``: the tables written again without measuring)."""
    report = json.loads(args.from_json.read_text())
    kept = ("docs", "plot", "output", "from_json")
    for key, value in report["settings"].items():
        if key not in kept:
            setattr(args, key, value)
    if "scaling" in report:
        report["scaling"] = {int(runs): point for runs, point in report["scaling"].items()}
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    add("--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run [all]")
    add("--repeats", type=int, default=2, help="runs of each variant [2]")
    add("--run-repeats", type=int, default=3, help="runs of each one-run variant [3]")
    add("--scaling-repeats", type=int, default=None, help="runs of each scaling point [--repeats]")
    add("--acts", nargs="+", default=list(ACTS), help="the study's activations [its four]")
    add("--seeds", type=int, default=3, help="the study's seeds [3]")
    add("--epochs", type=int, default=3, help="the study's epochs [3]")
    add("--scaling-seeds", nargs="+", type=int, default=[3, 12, 48], help="[3 12 48]")
    add("--stacked-threads", type=int, default=None, help="the stacked loop's [one per core]")
    add("--cnn-steps", type=int, default=20, help="cnn steps timed, after 3 of warm-up [20]")
    add("--max-steps", type=int, default=None, help="stop every run after this many steps")
    add("--val-size", type=int, default=5000, help="validation images [5000]")
    add("--accelerator", choices=("cpu", "gpu"), default="cpu", help="[cpu]")
    add("--quick", action="store_true", help="a tiny version, for tests")
    add("--docs", type=Path, default=None, help="the file whose block gets the tables")
    add("--no-doc", dest="docs", action="store_const", const=Path())
    add("--plot", type=Path, default=None, help="the scaling plot [beside --docs]")
    add("--output", type=Path, default=None, help="write every figure as JSON")
    add("--from-json", type=Path, default=None, help="write the tables of an --output file")
    add("--zoo-cnn-step", action="store_true", help=argparse.SUPPRESS)
    add("--steps", type=int, default=0, help=argparse.SUPPRESS)
    add("--work-dir", help=argparse.SUPPRESS)
    return parser


def settle(args: argparse.Namespace) -> None:
    """``--quick``'s settings, and the default of ``--docs``."""
    if args.quick:
        args.acts, args.seeds, args.epochs = args.acts[:1] + args.acts[-1:], 1, 1
        args.max_steps = args.max_steps or 3
        args.scaling_seeds, args.cnn_steps = [1], 2  # the study's size: measured once
        args.repeats, args.run_repeats, args.scaling_repeats = 1, 1, 1
    if args.docs is None:
        args.docs = None if args.quick else HERE.parent / "docs" / "performance.md"
    elif args.docs == Path():
        args.docs = None


# -- running the sides ------------------------------------------------------------------------


class Bench:
    """Runs the two sides' processes and measures them; a command already measured in the same
    repeat (``--quick``'s scaling point equal to its study) is measured once."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loads: list[float] = []
        self._done: dict[tuple[Any, ...], dict[str, Any]] = {}

    def hand(self, words: list[str], threads: int, repeat: int) -> dict[str, Any]:
        """``handwritten_loops.py WORDS``: its measurement and its JSON line."""
        words = [*words, "--data-dir", str(self.args.data_dir)]
        words += ["--val-size", str(self.args.val_size)]
        if self.args.max_steps:
            words += ["--max-steps", str(self.args.max_steps)]
        if self.args.accelerator == "gpu":
            words += ["--device", "cuda"]
        return self._measured("handwritten_loops", words, threads, repeat)

    def zoo(self, words: list[str], threads: int | None, repeat: int) -> dict[str, Any]:
        """``zoo WORDS`` with the run options of this benchmark, into a temporary output
        directory."""
        return self._measured("zoo", [*words, *zoo_run_options(self.args)], threads, repeat)

    def zoo_cnn(self, steps: int, repeat: int) -> dict[str, Any]:
        """zoo's cnn steps, timed inside a run by this script (``--zoo-cnn-step``)."""
        words = ["--zoo-cnn-step", "--steps", str(steps), "--data-dir", str(self.args.data_dir)]
        words += ["--val-size", str(self.args.val_size), "--accelerator", self.args.accelerator]
        return self._measured("handwritten", words, 1, repeat)

    def _measured(
        self, module: str, words: list[str], threads: int | None, repeat: int
    ) -> dict[str, Any]:
        key = (module, tuple(words), threads, repeat)
        if key not in self._done:
            with tempfile.TemporaryDirectory(prefix="zoo-bench-hand-") as work:
                if module != "handwritten_loops":
                    words = [*words, "--output-dir" if module == "zoo" else "--work-dir", work]
                self._done[key] = self._run(module, words, threads)
        return self._done[key]

    def _run(self, module: str, words: list[str], threads: int | None) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        self.loads.append(os.getloadavg()[0])
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            started = time.perf_counter()
            process, usage = start(module, words, env, out, err, forked=self.args.quick)
            sampler = TreeMemory(process.pid)
            sampler.start()
            status, max_rss = usage(process)
            wall = time.perf_counter() - started
            sampler.stop()
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        self.loads.append(os.getloadavg()[0])
        if status != 0:
            sys.exit(f"{module} {' '.join(words)} failed ({status}):\n{stderr[-4000:]}")
        result = json.loads(stdout.strip().splitlines()[-1])
        peak = sampler.peak / 2**20 if sampler.peak else max_rss
        said = [line for line in stderr.splitlines() if line.startswith("training ")]
        return {"wall_s": wall, "peak_mb": peak, "max_rss_mb": max_rss, "result": result,
                "training": said[0] if said else None}  # fmt: skip


def start(module: str, words: list[str], env: dict[str, str], out: Any, err: Any, forked: bool):
    """``python -m MODULE WORDS`` started: the process, and a function that waits for it and
    returns its exit status and its peak resident memory in MB (None where unknown)."""
    if forked:  # --quick: forked from zoo's server, which imported torch and Lightning once
        from zoo.processes import start_module

        process = start_module(module, words, env=env, stdout=out, stderr=err, text=True)
        return process, lambda p: (p.wait(), None)
    process = subprocess.Popen(
        [sys.executable, "-m", module, *words], env=env, stdout=out, stderr=err, text=True
    )

    def wait(p: subprocess.Popen) -> tuple[int, float]:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        return p.returncode, usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)

    return process, wait


def zoo_run_options(args: argparse.Namespace) -> list[str]:
    words = ["--data-dir", str(args.data_dir)]
    if args.val_size != 5000:
        words += ["--dataset", f"mnist:val_size={args.val_size}"]
    if args.max_steps:
        words += ["--max-steps", str(args.max_steps)]
    if args.accelerator == "gpu":
        words += ["--accelerator", "gpu"]
    return words


def stacked_threads(args: argparse.Namespace) -> int:
    """The stacked loop's threads: ``--stacked-threads``, by default one per core."""
    return getattr(args, "stacked_threads", None) or CPUS


def alternate(variants: list[Any], repeat: int) -> list[Any]:
    return variants if repeat % 2 == 0 else variants[::-1]


def study_words(acts: list[str], seeds: int, epochs: int) -> list[str]:
    return [*(w for act in acts for w in ("--act", act)), "--seeds", str(seeds), "--epochs",
            str(epochs)]  # fmt: skip


# -- the parts --------------------------------------------------------------------------------


def study_part(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """The study: stacked against fused, one after another against --separate --jobs 2."""
    hand = ["study", "--acts", *args.acts, "--seeds", str(args.seeds), "--epochs", str(args.epochs)]
    compare = ["compare", *study_words(args.acts, args.seeds, args.epochs), "--json"]
    variants = {
        "stacked": lambda r: bench.hand([*hand, "--stacked"], stacked_threads(args), r),
        "fused": lambda r: bench.zoo(compare, None, r),
        "sequential": lambda r: bench.hand(hand, 1, r),
        "separate": lambda r: bench.zoo([*compare, "--separate", "--jobs", "2"], None, r),
    }
    return repeated(variants, args.repeats)


def run_part(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """One run, relu, seed 0: whole processes of 1 epoch, and train_seconds of 2 epochs."""
    hand = ["study", "--acts", "relu", "--seeds", "1", "--epochs"]
    train = ["train", "--act", "relu", "--seed", "0", "--json", "--epochs"]
    variants = {
        "hand 1": lambda r: bench.hand([*hand, "1"], 1, r),
        "zoo 1": lambda r: bench.zoo([*train, "1"], 1, r),
        "hand 2": lambda r: bench.hand([*hand, "2"], 1, r),
        "zoo 2": lambda r: bench.zoo([*train, "2"], 1, r),
    }
    return repeated(variants, args.run_repeats)


def cnn_part(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """The cnn's training step at batch 128, 1 thread, each side in a process of its own."""
    steps = str(args.cnn_steps + 3)
    variants = {
        "hand": lambda r: bench.hand(["cnn-step", "--steps", steps], 1, r),
        "zoo": lambda r: bench.zoo_cnn(int(steps), r),
    }
    return repeated(variants, args.repeats)


def scaling_part(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """The study at 1 epoch with more and more seeds: stacked against fused."""
    points = {}
    for seeds in args.scaling_seeds:
        hand = ["study", "--acts", *args.acts, "--seeds", str(seeds), "--epochs", "1", "--stacked"]
        compare = ["compare", *study_words(args.acts, seeds, 1), "--json"]
        variants = {
            "stacked": lambda r, hand=hand: bench.hand(hand, stacked_threads(args), r),
            "fused": lambda r, compare=compare: bench.zoo(compare, None, r),
        }
        print(f"   {seeds * len(args.acts)} runs", file=sys.stderr, flush=True)
        points[seeds * len(args.acts)] = repeated(variants, args.scaling_repeats or args.repeats)
    return points


def repeated(variants: dict[str, Any], repeats: int) -> dict[str, list[dict[str, Any]]]:
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for repeat in range(repeats):
        for name in alternate(list(variants), repeat):
            m = variants[name](repeat)
            measured[name].append(m)
            print(f"   [{repeat + 1}/{repeats}] {name}: {m['wall_s']:.1f} s", file=sys.stderr)
    return measured


PART_RUNNERS = {"study": study_part, "run": run_part, "cnn": cnn_part, "scaling": scaling_part}


# -- zoo's cnn step, inside a real run ----------------------------------------------------------


def zoo_cnn_steps(args: argparse.Namespace) -> dict[str, Any]:
    """``zoo.train("cnn", batch_size=128, max_steps=--steps)`` with a callback that notes the
    time at the start and the end of every training batch."""
    import lightning as L

    import zoo

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.ends: list[float] = []

        def on_train_batch_start(self, *_: Any) -> None:
            self.starts.append(time.perf_counter())

        def on_train_batch_end(self, *_: Any) -> None:
            self.ends.append(time.perf_counter())

    timer = StepTimer()
    dataset = f"mnist:val_size={args.val_size}"
    result = zoo.train(
        "cnn", act="relu", dataset=dataset, epochs=1000, batch_size=128, seed=0,
        max_steps=args.steps, data_dir=args.data_dir, output_dir=args.work_dir,
        accelerator=args.accelerator, callbacks=[timer],
    )  # fmt: skip
    starts, ends = timer.starts, timer.ends
    return {
        "step_ms": [(b - a) * 1000 for a, b in itertools.pairwise(starts)],
        "inner_ms": [(b - a) * 1000 for a, b in zip(starts, ends, strict=True)],
        "test_acc": result.test_acc,
    }


# -- the report -------------------------------------------------------------------------------


def walls(measured: list[dict[str, Any]]) -> list[float]:
    return [m["wall_s"] for m in measured]


def train_seconds(measured: list[dict[str, Any]]) -> list[float]:
    """``train_seconds``: zoo's own, or the hand-written loop's data set-up and fit."""
    values = []
    for m in measured:
        result = m["result"]
        if "train_seconds" in result:
            values.append(result["train_seconds"])
        else:
            values.append(result["load_seconds"] + result["runs"][0]["fit_seconds"])
    return values


def step_ms(measured: list[dict[str, Any]]) -> list[float]:
    """Each process's median step in ms, the first 3 steps (warm-up) left out."""
    return [statistics.median(m["result"]["step_ms"][3:]) for m in measured]


def groups(measured: list[dict[str, Any]]) -> str:
    """What ``zoo compare`` said about how it trains (its groups, processes and threads)."""
    said = measured[0].get("training")
    return said.removeprefix("training ").rstrip(".:") if said else "as it chooses"


def spread(values: list[float], unit: str = "s", digits: int = 1) -> str:
    """``min / median`` (one value where there is one)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f} {unit}"
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} {unit}"


def ratio(zoo: list[float], hand: list[float]) -> str:
    best = min(zoo) / min(hand)
    if len(zoo) == 1 and len(hand) == 1:
        return f"**{best:.2f}**"
    return f"**{best:.2f}** / {statistics.median(zoo) / statistics.median(hand):.2f}"


def speed_rows(report: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The rows of the main table, one per part measured."""
    rows = []
    if "study" in report:
        s = report["study"]
        work = f"the study, {len(args.acts)} activations x {args.seeds} seeds x {args.epochs}"
        rows.append(
            f"| {work} epochs: {len(args.acts) * args.seeds} models stacked in one loop "
            f"(`torch.baddbmm`) / `zoo compare` (fused, its defaults) | {stacked_threads(args)} "
            "/ its own "
            f"({groups(s['fused'])}) | {spread(walls(s['stacked']))} "
            f"| {spread(walls(s['fused']))} | {ratio(walls(s['fused']), walls(s['stacked']))} |"
        )
        rows.append(
            f"| the same study, the runs one after another / `zoo compare --separate --jobs 2` "
            f"| 1 / 2 runs x {max(1, CPUS // 2)} | {spread(walls(s['sequential']))} | "
            f"{spread(walls(s['separate']))} | "
            f"{ratio(walls(s['separate']), walls(s['sequential']))} |"
        )
    if "run" in report:
        r = report["run"]
        rows.append(
            f"| one run (relu, seed 0), whole process, 1 epoch / `zoo train --epochs 1` "
            f"| 1 / 1 | {spread(walls(r['hand 1']), 's', 2)} | {spread(walls(r['zoo 1']), 's', 2)} "
            f"| {ratio(walls(r['zoo 1']), walls(r['hand 1']))} |"
        )
        hand, zoo = train_seconds(r["hand 2"]), train_seconds(r["zoo 2"])
        rows.append(
            f"| one run, `train_seconds` (data set-up, training, validation), 2 epochs / "
            f"`zoo train --epochs 2 --json` | 1 / 1 | {spread(hand, 's', 2)} | "
            f"{spread(zoo, 's', 2)} | {ratio(zoo, hand)} |"
        )
    if "cnn" in report:
        c = report["cnn"]
        hand, zoo = step_ms(c["hand"]), step_ms(c["zoo"])
        rows.append(
            f"| the default `cnn` (468,010 parameters), one training step at batch 128 "
            f"(median of {args.cnn_steps}) / zoo's step in a `zoo.train` run | 1 / 1 "
            f"| {spread(hand, 'ms', 0)} | {spread(zoo, 'ms', 0)} | {ratio(zoo, hand)} |"
        )
    return rows


def accuracies(measured: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each activation's test accuracies, one per seed (the mean over the repeats)."""
    by_run: dict[tuple[str, int], list[float]] = {}
    for m in measured:
        for run in m["result"]["runs"]:
            act = run.get("act") or run["activation"]
            by_run.setdefault((act, int(run["seed"])), []).append(run["test_acc"])
    by_act: dict[str, list[float]] = {}
    for (act, _), values in sorted(by_run.items()):
        by_act.setdefault(act, []).append(statistics.mean(values))
    return by_act


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2%} ± {std:.2%}"


def accuracy_lines(report: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Test accuracies side by side: per activation over the seeds, and the one run's."""
    lines = []
    if "study" in report:
        s = report["study"]
        names = ("stacked", "fused", "sequential", "separate")
        accs = {name: accuracies(s[name]) for name in names}
        lines += [
            f"Test accuracy, mean ± std over {args.seeds} seed(s):",
            "",
            "| activation | hand-written, stacked | `zoo compare` (fused) | hand-written, one "
            "after another | `zoo compare --separate` | largest difference of the means |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for act in args.acts:
            means = [statistics.mean(accs[name][act]) for name in accs]
            cells = " | ".join(mean_std(accs[name][act]) for name in accs)
            lines.append(f"| {act} | {cells} | {(max(means) - min(means)) * 100:.2f} pts |")
        lines.append("")
    if "run" in report:
        r = report["run"]
        words = []
        for epochs in ("1", "2"):
            hand = statistics.mean(m["result"]["runs"][0]["test_acc"] for m in r[f"hand {epochs}"])
            zoo = statistics.mean(m["result"]["test_acc"] for m in r[f"zoo {epochs}"])
            words.append(f"{epochs} epoch(s): hand-written {hand:.2%}, zoo {zoo:.2%}")
        lines += [f"One run (relu, seed 0), test accuracy: {'; '.join(words)}.", ""]
    return lines


def scaling_lines(report: dict[str, Any], args: argparse.Namespace) -> list[str]:
    if "scaling" not in report:
        return []
    acts, largest = len(args.acts), report["scaling"][max(report["scaling"])]
    threads = stacked_threads(args)
    lines = [
        f"How cost grows: the study at {extent(args)} with more seeds ({acts} activations x "
        "seeds), "
        "wall time (min / median) and peak memory (the process tree's resident memory summed, "
        f"sampled every 0.2 s); the stacked loop with {threads} thread{'s' * (threads != 1)}, "
        f"`zoo compare` with its own ({groups(largest['fused'])} at the largest):",
        "",
        "| runs | hand-written, stacked | `zoo compare` (fused) | zoo / hand | hand-written peak "
        "MB | zoo peak MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for runs, point in report["scaling"].items():
        hand, zoo = walls(point["stacked"]), walls(point["fused"])
        peaks = [max(m["peak_mb"] or 0 for m in point[name]) for name in ("stacked", "fused")]
        lines.append(
            f"| {runs} | {spread(hand)} | {spread(zoo)} | {ratio(zoo, hand)} | "
            f"{peaks[0]:.0f} | {peaks[1]:.0f} |"
        )
    return [*lines, ""]


def render(report: dict[str, Any], args: argparse.Namespace, parts: tuple[str, ...] = PARTS) -> str:
    """The tables of ``parts`` and the sentences around them."""
    report = {k: v for k, v in report.items() if k not in PARTS or k in parts}
    steps = f", at most {args.max_steps} steps a run" if args.max_steps else ""
    quick = " `--quick`: processes forked from zoo's server, figures not comparable." * args.quick
    counts = [f"{args.run_repeats} for one run"] * ("run" in report)
    counts += [f"{args.scaling_repeats or args.repeats} for scaling"] * ("scaling" in report)
    counted = f" ({', '.join(counts)})" if counts else ""
    lines = [
        f"MNIST, MLP 784-128-64-10 (LogSoftmax + NLL), Adam 1e-3, batch 64{steps}, "
        f"{args.accelerator}; every side a whole process, timed from its start to its exit; "
        f"{args.repeats} repeat(s){counted}, alternating the order.{quick}",
        "",
    ]
    rows = speed_rows(report, args)
    if rows:
        lines += [
            "| work: hand-written / zoo | threads: hand / zoo | hand-written (min / median) | "
            "zoo (min / median) | zoo / hand (min / median) |",
            "| --- | --- | ---: | ---: | ---: |",
            *rows,
            "",
        ]
    lines += accuracy_lines(report, args)
    lines += scaling_lines(report, args)
    low, high = report["load_average"]
    lines.append(f"Load average {low:.1f} to {high:.1f} during the runs ({CPUS} CPUs).")
    return "\n".join(lines)


def extent(args: argparse.Namespace) -> str:
    """How long each run of the scaling part trains, in words."""
    return f"1 epoch, at most {args.max_steps} steps," if args.max_steps else "1 epoch"


def draw(points: dict[int, dict[str, Any]], path: Path, args: argparse.Namespace) -> None:
    """Wall time and peak memory against the number of runs, both sides."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(points)
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for name, label in (("stacked", "hand-written, stacked"), ("fused", "zoo compare (fused)")):
        seconds = [statistics.median(walls(points[n][name])) for n in runs]
        memory = [max(m["peak_mb"] or 0 for m in points[n][name]) for n in runs]
        time_axis.plot(runs, seconds, marker="o", label=label)
        memory_axis.plot(runs, memory, marker="o", label=label)
    for axis, ylabel in ((time_axis, "wall time, s (median)"), (memory_axis, "peak memory, MB")):
        axis.set_xscale("log")
        axis.minorticks_off()
        axis.set_xticks(runs, [str(n) for n in runs])
        axis.set_xlabel(f"runs ({len(args.acts)} activations x seeds), {extent(args)}".rstrip(","))
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("The study as it grows: zoo against the hand-written stacked loop")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def doc_block(text: str, args: argparse.Namespace, plot: Path | None, when: str | None) -> str:
    """The block: the tables, the plot, the command that measured them, where and when."""
    from docblocks import provenance

    words = ["python", "benchmarks/handwritten.py", "--data-dir", "DIR"]
    parser = _parser()
    options = ("only", "repeats", "run_repeats", "scaling_repeats", "acts", "seeds", "epochs",
               "scaling_seeds", "stacked_threads", "cnn_steps", "max_steps", "val_size",
               "accelerator")  # fmt: skip
    if args.quick:  # the options --quick sets are not shown
        words, options = [*words, "--quick"], ("only", "val_size", "accelerator")
    for option in options:
        value = getattr(args, option)
        if value != parser.get_default(option) or option == "repeats":
            flag = "--" + option.replace("_", "-")
            words += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    words += ["--docs", os.path.relpath(args.docs, HERE.parent)]
    picture = ""
    if plot is not None:
        link = os.path.relpath(plot, args.docs.parent)
        picture = f"\n\n![wall time and peak memory against the number of runs]({link})"
    threads = "threads per side as in the table (`OMP_NUM_THREADS` set by the script)"
    gpu = "a GPU" if args.accelerator == "gpu" else None
    return f"{text}{picture}\n\n{provenance(' '.join(words), threads, gpu=gpu, when=when)}"


if __name__ == "__main__":
    sys.exit(main())
