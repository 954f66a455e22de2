"""Run the activation study with ``zoo compare`` and write its figures into docs/study.md.

    python benchmarks/study.py [--data-dir DIR] [--jobs 1] [--threads 1] [--output-dir DIR]

Three comparisons on MNIST, each ReLU, LeakyReLU, Sigmoid and Tanh x seeds 0, 1, 2 x 3 epochs,
with the defaults otherwise (batch 64, Adam at lr 1e-3): the MLP 784-128-64-10, a deeper MLP with
five hidden layers of 256, and that deeper MLP with SGD (lr 1e-2, momentum 0.9). Each is the
``zoo compare`` command a user would type, run with ``OMP_NUM_THREADS`` set; rerunning with the
same ``--output-dir`` reuses the finished runs, so an interrupted study resumes.

From the comparisons' ``comparison.json`` and run directories it rewrites two blocks of
docs/study.md: ``study-tables`` (the three tables, as ``zoo compare`` prints them) and
``study-figures`` (the per-layer figures the claims are checked against), each with the date,
the machine and the thread count. It also copies the comparisons' plots into docs/study/ and
draws docs/study/activations.png with ``zoo plot activations`` (``--no-plots`` skips both).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docblocks import ROOT, provenance, threads_note, write_block

ACTS = ("relu", "leakyrelu", "sigmoid", "tanh")
DEEP = "mlp:hidden=(256,256,256,256,256)"
#: (name, title, the options besides the activations).
STUDIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mlp", "MLP (128, 64), Adam", ()),
    ("deep", "Deep MLP (5 hidden layers of 256), Adam", ("--arch", DEEP)),
    ("deep-sgd", "Deep MLP (5 hidden layers of 256), SGD", ("--arch", DEEP, "--optimizer", "sgd")),
)
COMMON = ("--epochs", "3", "--seeds", "3")
#: docs/study/<name>.png <- <study>/<plot>.png
PLOTS = {
    "mlp-val_curves": ("mlp", "val_curves"),
    "deep-val_curves": ("deep", "val_curves"),
    "deep-dead_units": ("deep", "dead_units"),
    "deep-saturation": ("deep", "saturation"),
    "deep-grad_norms": ("deep", "grad_norms"),
    "deep-sgd-grad_norms": ("deep-sgd", "grad_norms"),
    "deep-sgd-val_curves": ("deep-sgd", "val_curves"),
}


def zoo_command() -> list[str]:
    """``zoo`` as a user runs it: the console script, else ``python -m zoo``."""
    script = shutil.which("zoo")
    return [script] if script else [sys.executable, "-m", "zoo"]


def compare_options(extra: Sequence[str], jobs: int, output: Path) -> list[str]:
    acts = [word for act in ACTS for word in ("--act", act)]
    parallel = ["--jobs", str(jobs)] if jobs != 1 else []
    return [*acts, *COMMON, *parallel, "--output-dir", str(output), *extra]


def run_study(args: argparse.Namespace) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for name, _, extra in STUDIES:
        command = [*zoo_command(), "compare", *compare_options(extra, args.jobs, args.out / name)]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        print(f"[study] {shlex.join(command)}", file=sys.stderr, flush=True)
        completed = subprocess.run(command, env=env, check=False)
        if completed.returncode != 0:
            sys.exit(f"zoo compare failed (exit {completed.returncode}); rerun to resume")


# -- reading the comparisons ---------------------------------------------------------------


class Study:
    """One comparison's summary rows and run curves, by activation."""

    def __init__(self, directory: Path) -> None:
        try:
            from zoo.runs.curves import read_curves
        except ImportError:  # lightning-zoo before read_curves moved to zoo.runs.curves
            from zoo.comparison.compare import read_run as read_curves

        data = json.loads((directory / "comparison.json").read_text())
        self.summary = data["summary"]
        self.rows = {row["activation"]: row for row in self.summary}
        self.curves: dict[str, list[Any]] = {}
        for run in data["runs"]:
            run_dir = Path(run["run_dir"])
            path = run_dir if run_dir.is_absolute() else directory / run_dir
            self.curves.setdefault(run["activation"], []).append(read_curves(path))

    def layers(self, act: str, stat: str) -> dict[str, dict[str, float | None]]:
        """Per layer, in forward order: start, end and mean over training (means over seeds)."""
        return self.rows[act]["layers"][stat]

    def per_layer(self, act: str, stat: str, when: str) -> list[float]:
        return [values[when] for values in self.layers(act, stat).values()]

    def highest(self, act: str, stat: str) -> float:
        """The highest ``diag/<stat>/<layer>`` at any probe, in any layer and seed."""
        values = [
            value
            for curves in self.curves[act]
            for row in curves.diag
            for key, value in row.items()
            if key.startswith(f"diag/{stat}/")
        ]
        return max(values) if values else math.nan

    def first_val_acc(self, act: str) -> float:
        """Validation accuracy after the first epoch, mean over seeds."""
        return statistics.fmean(c.val_acc[0] for c in self.curves[act] if c.val_acc)

    def test(self, act: str) -> str:
        row = self.rows[act]
        return f"{100 * row['test_acc']:.2f} ± {100 * row['test_acc_std']:.2f} %"


def _fractions(values: Sequence[float | None]) -> str:
    return ", ".join("-" if v is None else f"{100 * v:.1f} %" for v in values)


def _norms(values: Sequence[float | None]) -> str:
    return ", ".join("-" if v is None else f"{v:.2g}" for v in values)


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f} %"


def _ratio(value: float) -> str:
    return f"about {value:,.0f}" if value >= 10 else f"{value:.2g}"


# -- the blocks ----------------------------------------------------------------------------


def render_tables(studies: dict[str, Study], note: str) -> str:
    from zoo.comparison.compare import markdown_table

    lines = []
    for name, title, extra in STUDIES:
        command = shlex.join(["zoo", "compare", *compare_options(extra, 1, Path(f"study/{name}"))])
        lines += [f"**{title}**: `{command}`", "", markdown_table(studies[name].summary), ""]
    lines.append(note)
    return "\n".join(lines)


def render_figures(studies: dict[str, Study], note: str) -> str:
    mlp, deep, sgd = studies["mlp"], studies["deep"], studies["deep-sgd"]
    lines = [
        "Means over the three seeds; layers from the first hidden layer to the last (gradient "
        "norms: to the output layer); fractions of units (dead) or of outputs (saturated) on "
        "the probe batch.",
        "",
        "Dead units (claims 1 and 2):",
        "",
    ]
    for study, label in ((mlp, "MLP"), (deep, "deep MLP, Adam"), (sgd, "deep MLP, SGD")):
        lines.append(
            f"- ReLU, {label}: {_pct(study.rows['relu']['dead_end'])} dead at the end "
            f"(per layer {_fractions(study.per_layer('relu', 'dead', 'end'))}); at "
            f"initialisation per layer {_fractions(study.per_layer('relu', 'dead', 'start'))}."
        )
    leaky = max(study.highest("leakyrelu", "dead") for study in studies.values())
    lines += [
        f"- LeakyReLU: the highest dead fraction at any probe, in any layer, seed or setting: "
        f"{_pct(leaky, 2)}.",
        "- Test accuracy, ReLU against LeakyReLU: "
        + "; ".join(
            f"{label} {study.test('relu')} against {study.test('leakyrelu')}"
            for study, label in ((mlp, "MLP"), (deep, "deep MLP, Adam"), (sgd, "deep MLP, SGD"))
        )
        + ".",
        "",
        "Saturation (claim 3):",
        "",
    ]
    start = max(
        max(study.per_layer(act, "saturated", "start"), default=0.0)
        for study in studies.values()
        for act in ("sigmoid", "tanh")
    )
    lines.append(
        f"- At initialisation: at most {_pct(start, 2)} of outputs in any layer (sigmoid and tanh, "
        f"every setting)."
    )
    for study, label in ((mlp, "MLP"), (deep, "deep MLP, Adam"), (sgd, "deep MLP, SGD")):
        lines.append(
            f"- At the end, {label}: sigmoid {_pct(study.rows['sigmoid']['saturated_end'])} "
            f"(per layer {_fractions(study.per_layer('sigmoid', 'saturated', 'end'))}), tanh "
            f"{_pct(study.rows['tanh']['saturated_end'])} (per layer "
            f"{_fractions(study.per_layer('tanh', 'saturated', 'end'))})."
        )
    lines.append(
        f"- Deep MLP with SGD, the highest saturated fraction at any probe, in any layer or seed: "
        f"sigmoid {_pct(sgd.highest('sigmoid', 'saturated'), 2)}, tanh "
        f"{_pct(sgd.highest('tanh', 'saturated'), 2)}."
    )
    weight = next(iter(mlp.layers("sigmoid", "weight_norm").values()))
    lines += [
        f"- First-layer weight norm of the sigmoid MLP: {weight['start']:.3g} at initialisation, "
        f"{weight['end']:.3g} at the end.",
        "",
        "Vanishing gradients (claim 3):",
        "",
    ]
    for act in ("sigmoid", "relu", "tanh"):
        norms = deep.per_layer(act, "grad_norm", "start")
        ratio = norms[-1] / norms[0] if norms and norms[0] else math.nan
        lines.append(
            f"- Gradient norm per layer at initialisation, deep MLP, {act}: {_norms(norms)} "
            f"(output layer / first layer: {_ratio(ratio)})."
        )
    sgd_sigmoid = sgd.rows["sigmoid"]
    lines += [
        f"- Deep MLP with SGD, sigmoid: test accuracy {sgd.test('sigmoid')}, final training loss "
        f"{sgd_sigmoid['final_train_loss']:.4g} (ln 10 = {math.log(10):.4g}), first-layer "
        f"gradient norm {sgd_sigmoid['grad_norm_first']:.2g} averaged over training; ReLU, "
        f"LeakyReLU and tanh: {', '.join(sgd.test(act) for act in ('relu', 'leakyrelu', 'tanh'))}.",
        f"- Deep MLP with Adam, validation accuracy after the first epoch: sigmoid "
        f"{_pct(deep.first_val_acc('sigmoid'))}, ReLU {_pct(deep.first_val_acc('relu'))}; test "
        f"accuracy at the end: sigmoid {deep.test('sigmoid')}, ReLU {deep.test('relu')}.",
        "",
        note,
    ]
    return "\n".join(lines)


def copy_plots(out: Path, docs: Path, threads: int) -> None:
    for target, (study, plot) in PLOTS.items():
        source = out / study / f"{plot}.png"
        if source.is_file():
            shutil.copyfile(source, docs / f"{target}.png")
        else:
            print(f"[study] no {source}; docs/study/{target}.png left as it was", file=sys.stderr)
    command = [*zoo_command(), "plot", "activations", *ACTS, "-o", str(docs / "activations.png")]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(command, env=env, check=True, capture_output=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ZOO_DATA_DIR"))
    parser.add_argument("--output-dir", dest="out", type=Path, default=Path("/tmp/zoo-study"))
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (zoo compare)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for every run")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "study.md")
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    run_study(args)
    studies = {name: Study(args.out / name) for name, _, _ in STUDIES}
    threads = threads_note(args.threads)
    if args.jobs > 1:
        threads += f", {args.jobs} runs at a time"
    note = (
        provenance("python benchmarks/study.py", threads)
        + f" Load average {load:.1f} when it started."
    )
    write_block(args.doc, "study-tables", render_tables(studies, note))
    write_block(args.doc, "study-figures", render_figures(studies, note))
    if args.plots:
        copy_plots(args.out, args.doc.parent / "study", args.threads)
    print(f"[study] wrote {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
