"""How fused ``zoo compare`` scales with the members of a group: the wall time of
``zoo compare --act relu --seeds N --epochs 1`` (N runs fused in one process) for N in 1, 2, 4,
8, 16, 32, against training the N runs one by one, estimated as N x the wall time of one
``zoo train`` run of the same settings (``--diagnostics``, as a comparison's runs have),
measured once per repeat.

Every command is its own process in a fresh temporary output directory, with
``OMP_NUM_THREADS`` unset: torch's default threads (one per core) for the fused group and for
the single run alike; ``--threads N`` sets ``OMP_NUM_THREADS=N`` for both instead (on a shared
machine, one thread keeps a busy core from stalling the others). Each repeat measures the
single run first, then the groups, in ascending order of N on even repeats and descending on
odd ones, so that a busy spell on a shared machine does not fall on the large groups only; the
figures are medians over the repeats.

Columns: **fused s** (the whole ``zoo compare`` command: start-up, training, testing, the
comparison's files), **s per member** (that over N), **added member s** (what each member
added since the previous N cost), **one by one s** (N x the single run) and **speed-up** (one by
one over fused). ``--plot PATH`` draws both against N (log-log, needs matplotlib);
``--docs docs/performance.md`` writes the table and the plot into that file's
``compare-scaling`` block::

    python benchmarks/scaling.py --data-dir DIR --plot docs/scaling.png --docs docs/performance.md
    python benchmarks/scaling.py --data-dir DIR --seeds-list 1 4 16 --max-steps 300 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_speed import clean_environment, measure

SEEDS = (1, 2, 4, 8, 16, 32)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.data_dir:
        sys.exit("--data-dir (or $ZOO_DATA_DIR) must name a root holding MNIST/raw/")
    single: list[float] = []
    fused: dict[int, list[float]] = {n: [] for n in args.seeds_list}
    groups: dict[int, str | None] = {}
    loads: list[float] = []
    for repeat in range(args.repeats):
        print(f"[{repeat + 1}/{args.repeats}] one zoo train run ...", file=sys.stderr, flush=True)
        measured = _timed(train_command(args), args, loads)
        single.append(measured["wall_s"])
        order = args.seeds_list if repeat % 2 == 0 else args.seeds_list[::-1]
        for n in order:
            print(f"[{repeat + 1}/{args.repeats}] {n} fused ...", file=sys.stderr, flush=True)
            measured = _timed(compare_command(n, args), args, loads)
            fused[n].append(measured["wall_s"])
            lines = [x for x in measured["stderr"].splitlines() if x.startswith("training ")]
            groups[n] = lines[0][len("training ") :] if lines else None
    rows = table_rows(single, fused)
    report = {
        "settings": {
            "act": args.act,
            "epochs": args.epochs,
            "max_steps": args.max_steps,
            "dataset": args.dataset,
            "repeats": args.repeats,
            "seeds_list": args.seeds_list,
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "jobs": args.jobs,
        },
        "single_s": single,
        "fused_s": {str(n): v for n, v in fused.items()},
        "groups": {str(n): g for n, g in groups.items()},
        "rows": rows,
        "load_average": [min(loads), max(loads)],
    }
    text = render(report)
    print(text, flush=True)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(rows, report, args.plot)
        print(f"Drew {args.plot}", file=sys.stderr)
    if args.docs:
        from docblocks import write_block

        write_block(args.docs, "compare-scaling", doc_block(report, args, text))
        print(f"Wrote the compare-scaling block of {args.docs}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument(
        "--seeds-list", nargs="+", type=int, default=list(SEEDS), help="group sizes N"
    )
    parser.add_argument("--act", default="relu")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--max-steps", type=int, default=None, help="stop every run after this many steps"
    )
    parser.add_argument("--dataset", default="mnist", help="dataset spec [mnist]")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--jobs", type=int, default=None, help="zoo compare's --jobs [its default]; 1: one group"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="OMP_NUM_THREADS for every command [unset]"
    )
    parser.add_argument("--plot", type=Path, default=None, help="draw the figure into this PNG")
    parser.add_argument("--docs", type=Path, default=None, help="write the table into this file")
    parser.add_argument("--output", type=Path, default=None, help="write every figure as JSON")
    return parser


def _common(args: argparse.Namespace) -> list[str]:
    words = ["--act", args.act, "--epochs", str(args.epochs)]
    if args.dataset != "mnist":
        words += ["--dataset", args.dataset]
    if args.max_steps is not None:
        words += ["--max-steps", str(args.max_steps)]
    if args.accelerator != "auto":
        words += ["--accelerator", args.accelerator]
    return words


def train_command(args: argparse.Namespace) -> list[str]:
    """The one run: ``zoo train`` as ``zoo compare --separate`` runs it (with diagnostics)."""
    return ["train", *_common(args), "--seed", "0", "--diagnostics"]


def compare_command(n: int, args: argparse.Namespace) -> list[str]:
    """The fused group of ``n`` members."""
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    return ["compare", *_common(args), "--seeds", str(n), *jobs]


def _timed(words: list[str], args: argparse.Namespace, loads: list[float]) -> dict[str, Any]:
    output_dir = tempfile.mkdtemp(prefix="zoo-bench-scaling-")
    command = [sys.executable, "-m", "zoo", *words, "--data-dir", str(args.data_dir)]
    command += ["--output-dir", output_dir, "--json"]
    try:
        env = clean_environment()
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        measured = measure(command, env)
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    if measured["returncode"] != 0:
        sys.exit(f"zoo {' '.join(words)} failed:\n{measured['stderr'][-4000:]}")
    loads += [measured["load_before"], measured["load_after"]]
    return measured


def table_rows(single: list[float], fused: dict[int, list[float]]) -> list[dict[str, Any]]:
    """One row per group size, from the medians over the repeats."""
    one = statistics.median(single)
    rows: list[dict[str, Any]] = []
    previous: tuple[int, float] | None = None
    for n in sorted(fused):
        wall = statistics.median(fused[n])
        added = (wall - previous[1]) / (n - previous[0]) if previous else None
        rows.append(
            {
                "members": n,
                "fused_s": wall,
                "per_member_s": wall / n,
                "added_member_s": added,
                "one_by_one_s": n * one,
                "speed_up": n * one / wall,
            }
        )
        previous = (n, wall)
    return rows


def render(report: dict[str, Any]) -> str:
    s, rows = report["settings"], report["rows"]
    one = statistics.median(report["single_s"])
    low, high = report["load_average"]
    steps = f", at most {s['max_steps']} steps a run" if s["max_steps"] is not None else ""
    jobs = f" --jobs {s['jobs']}" if s.get("jobs") else ""
    lines = [
        f"`zoo compare --act {s['act']} --seeds N{jobs}`, {s['epochs']} epoch(s) on {s['dataset']}"
        f"{steps}; one `zoo train` run {one:.1f} s; median of {s['repeats']} repeat(s); "
        f"{_threads(s['threads'])}; load average {low:.1f} to {high:.1f}",
        "",
        "| members N | fused s | s per member | added member s | one by one s | speed-up |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        added = f"{row['added_member_s']:.2f}" if row["added_member_s"] is not None else "-"
        lines.append(
            f"| {row['members']} | {row['fused_s']:.1f} | {row['per_member_s']:.2f} | {added} "
            f"| {row['one_by_one_s']:.1f} | {row['speed_up']:.2f}x |"
        )
    split = {n: g for n, g in report["groups"].items() if g and "in 1 group(s)" not in g}
    lines += ["", summary(rows, one)]
    if split:
        lines[-1] += " Split into groups: " + "; ".join(f"N = {n}: {g}" for n, g in split.items())
        lines[-1] += "."
    return "\n".join(lines)


def _threads(threads: int | None) -> str:
    if threads is None:
        return "torch's default threads (`OMP_NUM_THREADS` unset)"
    return f"`OMP_NUM_THREADS={threads}`"


def summary(rows: list[dict[str, Any]], one: float) -> str:
    """Where fusing stops paying, in one sentence: the cheapest member, and what a member
    added to the largest groups costs next to a run of its own."""
    best = min(rows, key=lambda r: r["per_member_s"])
    words = (
        f"A member costs least in the group of {best['members']} ({best['per_member_s']:.2f} s, "
        f"{best['speed_up']:.1f}x faster than one by one)"
    )
    last = rows[-1]
    if last["added_member_s"] is not None:
        words += (
            f"; each member added between N = {rows[-2]['members']} and {last['members']} cost "
            f"{last['added_member_s']:.2f} s, {last['added_member_s'] / one:.0%} of a run of "
            f"its own ({one:.1f} s)"
        )
    return words + "."


def plot(rows: list[dict[str, Any]], report: dict[str, Any], path: Path) -> None:
    """Wall time against members, fused and one by one, log-log."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        sys.exit("--plot needs matplotlib (pip install 'lightning-zoo[plot]')")
    s = report["settings"]
    members = [r["members"] for r in rows]
    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
    axes.plot(members, [r["one_by_one_s"] for r in rows], "o--", label="one by one (N x one run)")
    axes.plot(members, [r["fused_s"] for r in rows], "o-", label="fused (zoo compare)")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(  # label 2, 3 and 5 x a power of ten
        FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "235" else "")
    )
    axes.set_xticks(members, [str(n) for n in members])
    axes.set_xlabel("members N (runs)")
    axes.set_ylabel("wall time, s")
    steps = f", {s['max_steps']} steps" if s["max_steps"] is not None else ""
    threads = f", {s['threads']} thread(s)" if s["threads"] else ""
    axes.set_title(f"mlp {s['act']}, {s['epochs']} epoch(s){steps}, {s['cpus']} CPUs{threads}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def doc_block(report: dict[str, Any], args: argparse.Namespace, text: str) -> str:
    """The compare-scaling block: the table, the figure, the command, where and when."""
    from docblocks import ROOT, provenance

    words = ["python", "benchmarks/scaling.py", "--data-dir", "DIR"]
    if args.seeds_list != list(SEEDS):
        words += ["--seeds-list", *map(str, args.seeds_list)]
    options = ("act", "epochs", "max_steps", "dataset", "accelerator", "repeats", "threads", "jobs")
    for option in options:
        value = getattr(args, option)
        if value != _parser().get_default(option):
            words += ["--" + option.replace("_", "-"), str(value)]
    lines = [text, ""]
    if args.plot:
        relative = os.path.relpath(args.plot.resolve(), args.docs.resolve().parent)
        lines += [f"![fused and one-by-one wall time against members]({relative})", ""]
        plot_path = args.plot.resolve()
        shown = plot_path.relative_to(ROOT) if plot_path.is_relative_to(ROOT) else plot_path
        words += ["--plot", str(shown)]
    words += ["--docs", "docs/performance.md"]
    lines.append(provenance(" ".join(words), _threads(args.threads) + " for every command"))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
