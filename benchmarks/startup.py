"""What a ``zoo`` process costs before and after its work: start-up and exit, side by side.

Times whole processes (wall time, best and median of ``--repeats``, the variants alternating and
in reverse order on every other repeat, so that a busy spell on a shared machine hits each):

* ``import torch`` and ``import lightning`` in a fresh ``python -c``: the floor of any run;
* ``zoo train --max-steps 1`` (one step, validation, the test on the test set) three ways:
  a fresh interpreter that exits as Python does (``ZOO_FAST_EXIT=0``: its teardown of every
  module included); a fresh interpreter as ``zoo`` runs by default (``zoo._compat.interpreter``:
  no teardown); and forked from zoo's fork server (``zoo.processes``, as a comparison starts its
  groups and separate runs: torch, torchvision and Lightning imported once, before).
  The server's own start is timed apart (it is paid once per comparison).

Prints a markdown table; ``--docs docs/performance.md`` rewrites its ``startup`` block::

    python benchmarks/startup.py --data-dir DIR --repeats 5 --docs docs/performance.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ("import torch", "import lightning", "teardown", "fresh", "forked")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    env.pop("ZOO_FAST_EXIT", None)
    timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-startup-") as runs:
        train = ["train", "--max-steps", "1", "--seed", "0", "--data-dir", args.data_dir,
                 "--output-dir", runs, "--json"]  # fmt: skip
        server_seconds = _start_server(env)
        for repeat in range(args.repeats):
            order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
            for name in order:
                timings[name].append(_time(name, train, env))
                print(f"{name}: {timings[name][-1]:.2f} s", file=sys.stderr, flush=True)
    table = _table(timings, server_seconds, args)
    print(table)
    if args.docs:
        from docblocks import provenance, write_block

        command = f"python benchmarks/startup.py --data-dir DIR --repeats {args.repeats}"
        note = f"{args.threads} torch thread(s); load average {os.getloadavg()[0]:.1f} after"
        write_block(Path(args.docs), "startup", f"{table}\n\n{provenance(command, note)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"), required=False)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--docs", help="rewrite the startup block of this file")
    return parser


def _start_server(env: dict[str, str]) -> float:
    """Start this process's fork server (timed), with a process that does nothing."""
    from zoo.processes import run_module

    started = time.perf_counter()
    run_module("json.tool", ["--help"], env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _time(name: str, train: list[str], env: dict[str, str]) -> float:
    from zoo.processes import run_module

    started = time.perf_counter()
    if name.startswith("import "):
        subprocess.run([sys.executable, "-c", name], check=True, env=env)
    elif name == "forked":
        code, _, err = run_module("zoo", train, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        if code:
            raise SystemExit(f"zoo train failed: {err}")
    else:
        fast = {"ZOO_FAST_EXIT": "0"} if name == "teardown" else {}
        subprocess.run([sys.executable, "-m", "zoo", *train], check=True, env={**env, **fast},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


DESCRIPTIONS = {
    "import torch": "`python -c 'import torch'`",
    "import lightning": "`python -c 'import lightning'`",
    "teardown": "`zoo train --max-steps 1`, a fresh interpreter exiting as Python does "
    "(`ZOO_FAST_EXIT=0`)",
    "fresh": "`zoo train --max-steps 1`, a fresh interpreter (the default)",
    "forked": "the same, forked from the fork server (as `zoo compare` starts its runs)",
}


def _table(timings: dict[str, list[float]], server: float, args: argparse.Namespace) -> str:
    lines = [
        f"Whole processes, wall time over {args.repeats} repeats, {args.threads} torch thread(s)",
        "",
        "| process | best s | median s |",
        "| --- | ---: | ---: |",
    ]
    for name in VARIANTS:
        values = timings[name]
        lines.append(f"| {DESCRIPTIONS[name]} | {min(values):.2f} | "
                     f"{statistics.median(values):.2f} |")  # fmt: skip
    lines += ["", f"Starting the fork server (once per comparison): {server:.2f} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
