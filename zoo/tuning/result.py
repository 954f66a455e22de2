"""The result of a study, written to its output directory: ``best.json`` (the best trial's run
configuration, which ``zoo train --config OUTPUT/best.json`` trains again), ``trials.csv`` (a
row per trial), the parameters' importances (Optuna's fANOVA) and ``history.png`` (Optuna's
optimisation-history plot, where matplotlib is installed)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.runs.files import write_atomically

BEST_FILE = "best.json"
TRIALS_FILE = "trials.csv"
HISTORY_FILE = "history.png"


@dataclass
class TuneResult:
    """A study's trials and its best one; ``to_dict()`` is what ``zoo tune --json`` prints."""

    study: str
    storage: str
    metric: str
    direction: str
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    importances: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    trained: int = 0  # trials this call trained

    def count(self, *states: str) -> int:
        return sum(1 for t in self.trials if t["state"] in states)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The trials, one line each, the best marked, then the importances and the files."""
        names = sorted({name for t in self.trials for name in t["params"]})
        header = ["trial", "state", self.metric, "epochs", *names]
        rows = [header]
        best = self.best["number"] if self.best else None
        again = {t["retry_of"]: t["number"] for t in self.trials if t["retry_of"] is not None}
        for t in self.trials:
            value = "" if t["value"] is None else f"{t['value']:.4f}"
            mark = " *" if t["number"] == best else ""
            state = t["state"].lower()
            if t["number"] in again:  # stopped, and asked again
                state += f" (again as {again[t['number']]})"
            cells = [f"{t['number']}{mark}", state, value, str(t["epochs"])]
            rows.append(cells + [_short(t["params"].get(name)) for name in names])
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.append(
            f"{self.count('COMPLETE')} complete, {self.count('PRUNED')} pruned, "
            f"{self.count('FAIL')} failed · {self.direction} {self.metric}"
        )
        if self.best:
            lines.append(f"Best: trial {best}, {self.metric} {self.best['value']:.4f}")
        if self.importances:
            shares = ", ".join(f"{k} {v:.2f}" for k, v in self.importances.items())
            lines.append(f"Importance: {shares}")
        return "\n".join(lines)


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """A row per trial: number, state, value, parameters, epochs reported, run directory."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        rows.append({
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value if trial.state.name == "COMPLETE" else _last(trial),
            "params": dict(trial.params),
            "epochs": len(trial.intermediate_values),
            "run_dir": trial.user_attrs.get("run_dir"),
            "reason": trial.user_attrs.get("reason"),
            "retry_of": trial.user_attrs.get("retry_of"),
        })  # fmt: skip
    return rows


def _last(trial: Any) -> float | None:
    values = trial.intermediate_values
    return values[max(values)] if values else None


def best_trial(study: Any) -> dict[str, Any] | None:
    """The best complete trial: its number, value, parameters, run configuration and run."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return None
    trial = study.best_trial
    return {
        "number": trial.number,
        "value": trial.value,
        "params": dict(trial.params),
        "config": trial.user_attrs.get("config"),
        "run_dir": trial.user_attrs.get("run_dir"),
    }


def importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances (empty with fewer than two complete trials, where the
    trials do not vary, or with one parameter: its share would be all)."""
    import optuna

    if len({name for t in study.get_trials(deepcopy=False) for name in t.params}) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
    return {name: round(float(share), 4) for name, share in found.items()}


def write_result(result: TuneResult, study: Any, output_dir: Path) -> None:
    """Write ``best.json``, ``trials.csv`` and ``history.png`` (where matplotlib is installed)
    into ``output_dir``, naming them in ``result.files``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if result.best and result.best["config"]:
        best = {
            "config": result.best["config"],
            "study": result.study,
            "trial": result.best["number"],
            result.metric: result.best["value"],
            "params": result.best["params"],
            "run_dir": result.best["run_dir"],
        }
        write_atomically(output_dir / BEST_FILE, json.dumps(best, indent=2) + "\n")
        result.files["best"] = str(output_dir / BEST_FILE)
    write_atomically(output_dir / TRIALS_FILE, _csv(result.trials))
    result.files["trials"] = str(output_dir / TRIALS_FILE)
    if _plot_history(study, output_dir / HISTORY_FILE):
        result.files["history"] = str(output_dir / HISTORY_FILE)


def _csv(trials: list[dict[str, Any]]) -> str:
    names = sorted({name for t in trials for name in t["params"]})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "state", "value", "epochs", *names, "run_dir", "reason"])
    for t in trials:
        params = [t["params"].get(name, "") for name in names]
        writer.writerow([t["number"], t["state"], t["value"], t["epochs"], *params,
                         t["run_dir"] or "", t["reason"] or ""])  # fmt: skip
    return out.getvalue()


def _plot_history(study: Any, path: Path) -> bool:
    """Optuna's optimisation history, as a PNG; False without matplotlib or trials."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
        from optuna.visualization.matplotlib import plot_optimization_history
    except ImportError:
        return False
    if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
        return False
    axes = plot_optimization_history(study)
    figure = axes.figure
    try:
        partial = path.with_name(f".{path.name}.partial")
        figure.savefig(partial, dpi=100, bbox_inches="tight", format="png")
        partial.replace(path)
    finally:
        plt.close(figure)
    return True
