"""What fusing buys ``zoo compare``: the activation study
``zoo compare --act relu --act leakyrelu --act sigmoid --act tanh --epochs 3 --seeds 3`` trained
fused (the default: the runs stepped together in one process) and with ``--separate --jobs 2``
(one ``zoo train`` process per run, two at a time), side by side in one run.

Each study runs in a fresh temporary output directory, so nothing is reused; the modes
alternate, in reverse order on every other repeat (``--repeats``), so that a busy spell on a
shared machine hits each. Measured for each:

* **wall s**: from starting ``zoo compare`` to its exit (start-up, training, testing, the
  comparison's tables and plots);
* **test accuracy** of every run (``comparison.json``), as mean ± std over the seeds per
  activation, and the largest difference of those means between fused and separate next to the
  seeds' standard deviation: the fused runs are meant to be the separate runs;
* **peak memory**, two ways: the largest single process (``ru_maxrss`` of the ``zoo compare``
  process and its descendants, from ``os.wait4``), and the peak of the resident memory of the
  whole process tree summed, sampled every ``SAMPLE_S`` seconds from /proc (Linux only; the
  libraries' pages count once per process that maps them). With ``--jobs 2`` two runs live at
  once, which only the second measure sees;
* **speed-up**: the separate mode's median wall time over the fused mode's.

Threads: ``OMP_NUM_THREADS`` is removed from every mode's environment, so that ``zoo compare``
sets it as it does by default: the fused groups train in processes of their own, ``--jobs`` of
them at once (by default one per core on a CPU), each with cores // jobs threads; with
``--separate --jobs 2`` each ``zoo train`` run gets cores // 2 threads. Both use every core: that
is how a user runs them, which is what this measures. ``--fused-threads default 1`` adds a fused
mode with ``OMP_NUM_THREADS=1`` set for it (before the groups had processes of their own, the
fused process ran torch's default threads, one per core, which a busy core stalls).

Prints markdown tables; ``--docs docs/performance.md`` also writes them into that file's
``compare-speed`` block::

    python benchmarks/compare_speed.py --data-dir DIR --docs docs/performance.md
    python benchmarks/compare_speed.py --data-dir DIR --fused-threads default 1 --repeats 3
    python benchmarks/compare_speed.py --data-dir DIR --acts relu tanh --seeds 2 --max-steps 50
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ACTS = ("relu", "leakyrelu", "sigmoid", "tanh")
SEPARATE = "separate"
#: Seconds between two samples of the process tree's memory.
SAMPLE_S = 0.2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.data_dir:
        sys.exit("--data-dir (or $ZOO_DATA_DIR) must name a root holding MNIST/raw/")
    names = modes(args)
    measurements: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for mode in names if repeat % 2 == 0 else names[::-1]:
            print(f"[{repeat + 1}/{args.repeats}] {mode} ...", file=sys.stderr, flush=True)
            measurement = study(mode, args)
            measurement["repeat"] = repeat
            measurements.append(measurement)
            print(f"  {measurement['wall_s']:.1f} s", file=sys.stderr, flush=True)
    report = summarise(measurements, args)
    text = render(report)
    print(text, flush=True)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    if args.docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from docblocks import write_block

        write_block(args.docs, "compare-speed", doc_block(report, args, text))
        print(f"Wrote the compare-speed block of {args.docs}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--acts", nargs="+", default=list(ACTS), help="activations [the study's]")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="--separate's --jobs [2]")
    parser.add_argument(
        "--fused-threads",
        nargs="+",
        default=["default"],
        metavar="N",
        help="one fused mode per entry: 'default' (torch's threads) or an OMP_NUM_THREADS",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each mode [1]")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="stop every run after this many steps"
    )
    parser.add_argument("--dataset", default="mnist", help="dataset spec [mnist]")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--docs", type=Path, default=None, help="write the tables into this file")
    parser.add_argument("--output", type=Path, default=None, help="write every figure as JSON")
    return parser


def modes(args: argparse.Namespace) -> list[str]:
    """The modes measured: a fused one per ``--fused-threads`` entry, then separate."""
    names = []
    for threads in args.fused_threads:
        if threads != "default" and not (threads.isdigit() and int(threads) > 0):
            sys.exit(f"--fused-threads takes 'default' or a positive number, not {threads!r}")
        names.append("fused" if threads == "default" else f"fused, {threads} thread(s)")
    return [*dict.fromkeys(names), SEPARATE]


def mode_threads(mode: str) -> str | None:
    """The ``OMP_NUM_THREADS`` a mode sets itself (None: the environment's, without it)."""
    return mode.split(", ")[1].split()[0] if ", " in mode else None


# -- measuring --------------------------------------------------------------------------------


def compare_command(mode: str, args: argparse.Namespace, output_dir: str | None) -> list[str]:
    """The ``zoo compare`` words of ``mode`` (``output_dir`` None: without the paths)."""
    words = ["compare", *[w for act in args.acts for w in ("--act", act)]]
    words += ["--epochs", str(args.epochs), "--seeds", str(args.seeds)]
    if args.dataset != "mnist":
        words += ["--dataset", args.dataset]
    if args.max_steps is not None:
        words += ["--max-steps", str(args.max_steps)]
    if args.accelerator != "auto":
        words += ["--accelerator", args.accelerator]
    if mode == SEPARATE:
        words += ["--separate", "--jobs", str(args.jobs)]
    if output_dir is not None:
        words += ["--data-dir", str(args.data_dir), "--output-dir", output_dir, "--json"]
    return words


def study(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the study in ``mode`` in a fresh output directory: its figures."""
    output_dir = tempfile.mkdtemp(prefix="zoo-bench-compare-")
    command = [sys.executable, "-m", "zoo", *compare_command(mode, args, output_dir)]
    env = clean_environment()
    if mode_threads(mode):
        env["OMP_NUM_THREADS"] = str(mode_threads(mode))
    try:
        measured = measure(command, env)
        if measured["returncode"] != 0:
            sys.exit(f"{mode} failed:\n{measured['stderr'][-4000:]}")
        comparison = json.loads(measured["stdout"].strip().splitlines()[-1])
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    runs = [
        {"act": run["activation"], "seed": run["seed"], "test_acc": run["test_acc"]}
        for run in comparison["runs"]
    ]
    groups = [line for line in measured["stderr"].splitlines() if line.startswith("training ")]
    return {
        "mode": mode,
        "wall_s": measured["wall_s"],
        "max_rss_mb": measured["max_rss_mb"],
        "peak_tree_mb": measured["peak_tree_mb"],
        "load_before": measured["load_before"],
        "load_after": measured["load_after"],
        "runs": runs,
        "groups": groups[0] if groups else None,
    }


def clean_environment() -> dict[str, str]:
    """This process's environment without ``OMP_NUM_THREADS``: torch's default threads for a
    fused run, and ``zoo compare --jobs N`` free to set its own for separate runs."""
    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def measure(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``command``: its wall time, output, exit status and peak memory (see the module's
    docstring), and the load average before and after."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, text=True)
        sampler = TreeMemory(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    return {
        "returncode": process.returncode,
        "stdout": out,
        "stderr": err,
        "wall_s": wall,
        # Linux counts ru_maxrss in KiB, macOS in bytes.
        "max_rss_mb": usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10),
        "peak_tree_mb": sampler.peak / 2**20 if sampler.peak else None,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


class TreeMemory(threading.Thread):
    """Samples the resident memory of process ``pid`` and all its descendants, summed, every
    ``SAMPLE_S`` seconds; ``peak`` is the highest sum in bytes (0 where there is no /proc)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, sum(_rss(p) for p in _tree(self.pid)))
            self._done.wait(SAMPLE_S)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (children of any of a process's threads), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as file:
                    todo += [int(child) for child in file.read().split()]
            except OSError:
                pass
    return found


def _rss(pid: int) -> int:
    """Process ``pid``'s resident memory in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


# -- the report -------------------------------------------------------------------------------


def summarise(measurements: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """The figures the tables show, from every measurement."""
    names = modes(args)
    figures: dict[str, Any] = {}
    for mode in names:
        mine = [m for m in measurements if m["mode"] == mode]
        accs: dict[tuple[str, int], list[float]] = {}
        for m in mine:
            for run in m["runs"]:
                accs.setdefault((run["act"], int(run["seed"])), []).append(run["test_acc"])
        trees = [m["peak_tree_mb"] for m in mine if m["peak_tree_mb"] is not None]
        figures[mode] = {
            "wall_s": [m["wall_s"] for m in mine],
            "median_wall_s": statistics.median(m["wall_s"] for m in mine),
            "max_rss_mb": max(m["max_rss_mb"] for m in mine),
            "peak_tree_mb": max(trees) if trees else None,
            "groups": mine[0]["groups"],
            # one accuracy per run: the mean over the repeats (the same run each time)
            "test_acc": {f"{a}/{s}": statistics.mean(v) for (a, s), v in accs.items()},
            "repeat_spread": max(max(v) - min(v) for v in accs.values()),
        }
    fused = [mode for mode in names if mode != SEPARATE]
    rows, largest = [], None
    for act in args.acts:
        row: dict[str, Any] = {"act": act, "diff": {}}
        for mode in names:
            values = [v for k, v in figures[mode]["test_acc"].items() if k.split("/")[0] == act]
            row[mode] = {
                "mean": statistics.mean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
        for mode in fused:
            row["diff"][mode] = diff = row[mode]["mean"] - row[SEPARATE]["mean"]
            if largest is None or abs(diff) > abs(largest["diff"]):
                std = max(row[mode]["std"], row[SEPARATE]["std"])
                largest = {"act": act, "mode": mode, "diff": diff, "seed_std": std}
        rows.append(row)
    by_run = [
        {"run": run, "mode": mode, "diff": acc - figures[SEPARATE]["test_acc"][run]}
        for mode in fused
        for run, acc in figures[mode]["test_acc"].items()
        if run in figures[SEPARATE]["test_acc"]
    ]
    loads = [m[k] for m in measurements for k in ("load_before", "load_after")]
    separate = figures[SEPARATE]["median_wall_s"]
    return {
        "settings": {
            "acts": args.acts,
            "epochs": args.epochs,
            "seeds": args.seeds,
            "jobs": args.jobs,
            "repeats": args.repeats,
            "max_steps": args.max_steps,
            "dataset": args.dataset,
            "accelerator": args.accelerator,
            "cpus": os.cpu_count(),
            "modes": names,
            "commands": {mode: _shown_command(mode, args) for mode in names},
        },
        "modes": figures,
        "speed_up": {mode: separate / figures[mode]["median_wall_s"] for mode in names},
        "accuracy": rows,
        "largest_diff": largest,
        "largest_run_diff": max(by_run, key=lambda d: abs(d["diff"])),
        "load_average": [min(loads), max(loads)],
        "measurements": measurements,
    }


def _shown_command(mode: str, args: argparse.Namespace) -> str:
    threads = mode_threads(mode)
    prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
    return prefix + "zoo " + shlex.join(compare_command(mode, args, None))


def render(report: dict[str, Any]) -> str:
    """The markdown tables and the sentences around them."""
    s, figures = report["settings"], report["modes"]
    names, cpus, jobs = s["modes"], s["cpus"] or 1, s["jobs"]
    fused = [mode for mode in names if mode != SEPARATE]
    steps = f", at most {s['max_steps']} steps a run" if s["max_steps"] is not None else ""
    low, high = report["load_average"]
    lines = [
        f"{len(s['acts'])} activations x {s['seeds']} seeds = {len(s['acts']) * s['seeds']} runs "
        f"of {s['epochs']} epoch(s) on {s['dataset']}{steps}, {s['repeats']} repeat(s) of each "
        f"mode (alternating); load average {low:.1f} to {high:.1f}",
        "",
        "| mode | command | wall s | speed-up | largest process MB | all processes MB |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for mode in names:
        m = figures[mode]
        walls = " / ".join(f"{w:.1f}" for w in m["wall_s"])
        wall = walls if len(m["wall_s"]) == 1 else f"{m['median_wall_s']:.1f} ({walls})"
        tree = f"{m['peak_tree_mb']:.0f}" if m["peak_tree_mb"] is not None else "-"
        lines.append(
            f"| {mode} | `{s['commands'][mode]}` | {wall} | {report['speed_up'][mode]:.2f}x "
            f"| {m['max_rss_mb']:.0f} | {tree} |"
        )
    per_run = max(1, cpus // jobs)
    lines += [
        "",
        f"**wall s**: the whole `zoo compare` command (median, then each repeat); **speed-up**: "
        f"separate's wall time over the mode's. **largest process**: the peak resident memory "
        f"(`ru_maxrss`) of the biggest single process, `zoo compare` or one of its `zoo train` "
        f"runs; **all processes**: the peak of their resident memory summed, sampled every "
        f"{SAMPLE_S:g} s (a shorter peak can slip through; shared libraries count once per "
        f"process), which counts the {jobs} runs that `--jobs {jobs}` keeps alive at once. "
        f"Threads: `OMP_NUM_THREADS` is unset unless the command shows it, and `zoo compare` "
        f"sets it: the fused groups (last sentence below) train in processes of their own, "
        f"by default as many at once as there are cores, each with cores / processes threads; "
        f"`--separate --jobs {jobs}` sets `OMP_NUM_THREADS={per_run}` in each run's environment "
        f"({jobs} runs x {per_run} "
        f"thread(s) for the {cpus} cores).",
        "",
        "| activation | " + " | ".join(f"{mode} test acc" for mode in names) + " | "
        + " | ".join(f"{mode} - separate" for mode in fused) + " |",
        "| --- |" + " ---: |" * (len(names) + len(fused)),
    ]  # fmt: skip
    for row in report["accuracy"]:
        cells = [f"{row[mode]['mean']:.2%} ± {row[mode]['std']:.2%}" for mode in names]
        cells += [f"{row['diff'][mode] * 100:+.2f} pts" for mode in fused]
        lines.append(f"| {row['act']} | " + " | ".join(cells) + " |")
    big = report["largest_diff"]
    std = big["seed_std"] * 100
    versus = f"{abs(big['diff']) / big['seed_std']:.2f} x" if big["seed_std"] else "next to"
    which = f" ({big['act']}, {big['mode']})" if len(fused) > 1 else f" ({big['act']})"
    lines += [
        "",
        f"Test accuracy: mean ± std over the {s['seeds']} seeds. The largest difference of means "
        f"between fused and separate is {abs(big['diff']) * 100:.2f} pts{which}, {versus} that "
        f"activation's seed std ({std:.2f} pts)." + _run_note(report) + _repeat_note(report),
    ]
    groups = figures[fused[0]]["groups"]
    if groups:
        lines[-1] += f" Fused: {groups[len('training ') :]}."
    return "\n".join(lines)


def _run_note(report: dict[str, Any]) -> str:
    """The largest difference between a fused run and the same run trained separately."""
    run = report["largest_run_diff"]
    if run["diff"] == 0:
        return " Every fused run's accuracy equals its separate run's."
    act, seed = run["run"].split("/")
    return (
        f" Run by run, the largest difference is {abs(run['diff']) * 100:.2f} pts ({act} seed "
        f"{seed}): a fused run computes its layers as one stacked operation (`baddbmm` for the "
        f"`mlp`), which rounds differently from the separate run's, so that over thousands "
        f"of steps the two can drift apart."
    )


def _repeat_note(report: dict[str, Any]) -> str:
    if report["settings"]["repeats"] < 2:
        return ""
    spread = max(m["repeat_spread"] for m in report["modes"].values())
    if spread == 0:
        return " Every run's accuracy was the same in every repeat."
    return f" A run's accuracy varied by up to {spread * 100:.2f} pts between repeats."


def doc_block(report: dict[str, Any], args: argparse.Namespace, text: str) -> str:
    """The compare-speed block: the tables, the command that measured them, where and when."""
    from docblocks import provenance

    words = ["python", "benchmarks/compare_speed.py", "--data-dir", "DIR"]
    parser = _parser()
    for option in ("acts", "epochs", "seeds", "jobs", "fused_threads", "repeats", "max_steps",
                   "dataset", "accelerator"):  # fmt: skip
        value = getattr(args, option)
        if value != parser.get_default(option):
            flag = "--" + option.replace("_", "-")
            words += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    words += ["--docs", "docs/performance.md"]
    gpu = _gpu_name() if args.accelerator != "cpu" else None
    threads = "threads as in the note above"
    return f"{text}\n\n{provenance(' '.join(words), threads, gpu=gpu)}"


def _gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else None
    except ImportError:
        return None


if __name__ == "__main__":
    sys.exit(main())
