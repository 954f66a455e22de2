"""One trial of a study: an ordinary run directory under ``OUTPUT/trials/trial-NNNN/``, trained
(or, for a trial asked again after its worker stopped, resumed) with the study's run options and
the trial's parameters, its metric reported to Optuna after each validation, and stopped at the
end of that epoch when the pruner says so.

A pruned run ends as a run stopped early does: tested on its best checkpoint and ``finished``;
its ``config.json`` says ``"trial": {"state": "pruned", ...}``. A run whose loss became NaN or
infinite is pruned too (its parameters diverge); a trial whose options the components refuse
fails, with the reason, and the study goes on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L

from zoo.errors import NonFiniteLossError, RunAlreadyFinished, ZooUsageError
from zoo.runs.config import RunConfig
from zoo.runs.directory import Run
from zoo.runs.files import CONFIG_FILE
from zoo.tuning.space import SearchSpace
from zoo.tuning.study import worker_id


class TrialFailed(Exception):
    """A trial that cannot train with its parameters (the study goes on without it)."""


class TrialReporter(L.Callback):
    """Reports ``metric`` to an Optuna trial after each validation of the fit (the step is the
    epoch) and stops the fit at the end of that epoch when the trial should be pruned. Written
    for zoo rather than taken from optuna-integration's ``PyTorchLightningPruningCallback``
    (another package to install): that one makes the caller raise after fit; this one lets a
    pruned run end as a run stopped early does (tested, ``finished``), skips the epochs an
    earlier run of the trial reported (``reported``), and keeps the best value."""

    def __init__(
        self, trial: Any, metric: str, direction: str, reported: dict[int, float] | None = None
    ) -> None:
        self.trial = trial
        self.metric = metric
        self.sign = 1.0 if direction == "maximize" else -1.0
        self.reported = dict(reported or {})
        self.best: float | None = None
        self.pruned_at: int | None = None
        for value in self.reported.values():
            self._seen(value)

    def _seen(self, value: float) -> None:
        if math.isfinite(value) and (self.best is None or self.sign * (value - self.best) > 0):
            self.best = value

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            return
        value, epoch = float(value), trainer.current_epoch
        self._seen(value)
        if epoch in self.reported:
            return  # reported by the run this one resumes
        self.trial.report(value, epoch)
        self.reported[epoch] = value
        if self.trial.should_prune():
            self.pruned_at = epoch
            trainer.should_stop = True


def run_trial(
    trial: Any,
    *,
    config: RunConfig,
    space: SearchSpace,
    output_dir: Path,
    metric: str,
    direction: str,
    earlier: Any = None,
) -> tuple[float, Any]:
    """Train ``trial``: its value (the best ``metric`` of its validations) and its
    :class:`zoo.TrainResult`. ``earlier`` is the failed trial this one repeats (its reports are
    carried over and its run resumed where it has a checkpoint). Raises ``optuna.TrialPruned``
    when pruned, :class:`TrialFailed` when the run cannot train these parameters."""
    import optuna

    from zoo.training.api import resume as resume_run

    values = space.suggest(trial)
    try:
        trial_config = space.apply(config, values)
    except ZooUsageError as error:
        raise TrialFailed(str(error)) from None
    trial.set_user_attr("worker", worker_id())
    trial.set_user_attr("config", trial_config.to_dict())
    resume = _resumable(trial.user_attrs.get("resume"))
    # A resumed run goes on from the earlier trial's epochs: their reports are this trial's.
    reported = dict(earlier.intermediate_values) if earlier and resume else {}
    for step, value in sorted(reported.items()):
        trial.report(value, step)
    reporter = TrialReporter(trial, metric, direction, reported)
    folder = output_dir / "trials" / f"trial-{trial.number:04d}"
    try:
        if resume is not None:
            trial.set_user_attr("run_dir", str(resume))
            try:
                result = resume_run(resume, progress=False, callbacks=[reporter])
            except RunAlreadyFinished as finished:
                result = finished.result
        else:
            result = _start(trial, trial_config, folder, reporter)
    except NonFiniteLossError as error:
        _mark(trial, "pruned", f"the loss became NaN or infinite: {error}")
        raise optuna.TrialPruned(f"the loss became NaN or infinite ({error})") from None
    except ZooUsageError as error:
        raise TrialFailed(str(error)) from None
    value = reporter.best
    if value is None and metric == "val_acc":
        value = result.best_val_acc  # a run too short to validate: its one checkpoint's
    if value is None:
        raise TrialFailed(f"the run never logged {metric} (it stopped before validating)")
    if reporter.pruned_at is not None:
        _mark(trial, "pruned", f"pruned after epoch {reporter.pruned_at}", result.run_dir)
        raise optuna.TrialPruned(f"pruned after epoch {reporter.pruned_at}")
    _mark(trial, "complete", None, result.run_dir)
    return value, result


def _start(trial: Any, config: RunConfig, folder: Path, reporter: TrialReporter) -> Any:
    """A new run of ``config`` in ``folder``; the trial records its directory once it exists."""
    from zoo.training.api import run

    class _Recorded(L.Callback):
        def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            runs = [p for p in folder.iterdir() if (p / CONFIG_FILE).is_file()]
            if runs:
                trial.set_user_attr("run_dir", str(max(runs)))

    return run(config, output_dir=folder, progress=False, callbacks=[_Recorded(), reporter])


def _resumable(run_dir: str | None) -> Path | None:
    """The run to resume: the earlier trial's run, where it saved a checkpoint."""
    if not run_dir:
        return None
    path = Path(run_dir)
    return path if (path / "checkpoints" / "last.ckpt").is_file() else None


def _mark(trial: Any, state: str, reason: str | None, run_dir: str | None = None) -> None:
    """Record the trial in its run's ``config.json`` (``"trial"``), and the reason in the trial."""
    if reason:
        trial.set_user_attr("reason", reason)
    run_dir = run_dir or trial.user_attrs.get("run_dir")
    if not run_dir:
        return
    note = {"number": trial.number, "state": state, "reason": reason, "params": trial.params}
    try:
        with Run.open(run_dir) as run:
            run.update(trial=note)
    except Exception:  # the trial's own record is in the study; the run's note is a courtesy
        return
