"""``zoo.tune``: search a space of run options with Optuna, each trial an ordinary run, the
study in ``OUTPUT/study.db`` (or ``storage``) so that the same call continues it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import TrainingInterrupted, ZooUsageError
from zoo.runs.config import RunConfig
from zoo.tuning.result import TuneResult, best_trial, importances, trial_rows, write_result
from zoo.tuning.space import SearchSpace, parse_space
from zoo.tuning.study import (
    PLACEMENT,
    default_storage,
    done,
    import_optuna,
    open_storage,
    open_study,
    quiet,
    recover,
    retry,
)

__all__ = ["DEFAULT_OUTPUT_DIR", "METRICS", "PRUNERS", "SAMPLERS", "TuneResult", "tune"]

DEFAULT_OUTPUT_DIR = "tune"
#: The metrics a study can optimise, each with its usual direction.
METRICS = {"val_acc": "maximize", "val_loss": "minimize"}
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random")
#: The seed of every trial when the options give none: trials then differ by their parameters.
DEFAULT_SEED = 0
#: Trials failing one after another: the run options are at fault, not the parameters.
MAX_FAILURES_IN_A_ROW = 3


def tune(
    search: Sequence[str],
    *,
    trials: int = 20,
    config: RunConfig | None = None,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    storage: str | None = None,
    study_name: str = "zoo",
    metric: str = "val_acc",
    direction: str | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    echo: Callable[[str], None] | None = None,
) -> TuneResult:
    """Search ``search`` (``NAME=EXPR`` expressions, see :mod:`zoo.tuning.space`) for the run
    options ``config`` until the study has ``trials`` complete or pruned trials, and return the
    result (also written to ``output_dir``: ``best.json``, ``trials.csv``, ``history.png``).

    Every trial trains with ``config``'s seed (0 when it has none). The study lives in
    ``storage`` (an Optuna RDB URL; default ``sqlite:///OUTPUT/study.db``): the same call
    again continues it, counting the trials already complete or pruned, and a call on a
    finished study trains nothing. Workers given one ``storage`` share the study. ``echo``
    gets a line per trial."""
    say = echo or (lambda line: None)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ZooUsageError(f"--trials must be at least 1, got {trials!r}")
    _check_choices(metric, direction, sampler, pruner)
    direction = direction or METRICS[metric]
    optuna = import_optuna()
    config = config or RunConfig()
    if config.seed is None:
        config = config.replace(seed=DEFAULT_SEED)
    space = parse_space(search, config)
    output = Path(output_dir).expanduser()
    url = storage or default_storage(output)
    if storage is None:
        _make_folder(output)
    settings = {
        "space": space.describe(),
        "metric": metric,
        "direction": direction,
        "config": {k: v for k, v in config.to_dict().items() if k not in PLACEMENT},
    }
    with quiet():
        study = open_study(open_storage(url), study_name, settings,
                           _sampler(optuna, sampler), _pruner(optuna, pruner))  # fmt: skip
        for number in recover(study):
            say(f"trial {number}: its worker died; its parameters are asked again")
        search_run = _Search(study, space, config, output, metric, direction, trials, say)
        trained = search_run.run()
        result = TuneResult(
            study=study_name, storage=url, metric=metric, direction=direction,
            trials=trial_rows(study), best=best_trial(study), importances=importances(study),
            trained=trained,
        )  # fmt: skip
        write_result(result, study, output)
    return result


def _check_choices(metric: str, direction: str | None, sampler: str, pruner: str) -> None:
    for option, value, allowed in (
        ("metric", metric, tuple(METRICS)),
        ("direction", direction, ("maximize", "minimize", None)),
        ("sampler", sampler, SAMPLERS),
        ("pruner", pruner, PRUNERS),
    ):
        if value not in allowed:
            names = ", ".join(a for a in allowed if a)
            raise ZooUsageError(f"--{option} must be one of {names}, got {value!r}")


def _make_folder(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ZooUsageError(f"cannot create {output}: {error.strerror or error}") from None


def _sampler(optuna: Any, name: str) -> Any:
    return optuna.samplers.TPESampler() if name == "tpe" else optuna.samplers.RandomSampler()


def _pruner(optuna: Any, name: str) -> Any:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


class _Search:
    """The trials this worker trains, with Optuna's ``optimize`` loop (heartbeats, pruning,
    failures): until the study has its trials, counting other workers' running ones."""

    def __init__(self, study: Any, space: SearchSpace, config: RunConfig, output: Path,
                 metric: str, direction: str, trials: int, say: Callable[[str], None],
                 ) -> None:  # fmt: skip
        self.study, self.space, self.config, self.output = study, space, config, output
        self.metric, self.direction, self.trials, self.say = metric, direction, trials, say
        self.current: Any = None
        self.trained = 0
        self.failures: list[str] = []  # in a row
        self.lines: dict[int, str] = {}  # how each trial ended, said once it is recorded
        self.failed = 0  # trials of this worker that failed
        self.surplus = False  # asked for a trial the study did not need

    def run(self) -> int:
        """Train until the study has its trials; the number this worker trained."""
        import optuna

        if done(self.study) >= self.trials:
            self.say(f"the study has its {self.trials} trials; nothing to train")
            return 0
        from zoo.tuning.trial import TrialFailed  # Lightning: only to train

        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                  optuna.trial.TrialState.RUNNING)  # fmt: skip
        stop = optuna.study.MaxTrialsCallback(self.trials, states=states)
        # A failed trial does not count: ask again for those, while the study has room for them
        # (trials neither done nor running elsewhere).
        while (room := self.trials - self._taken()) > 0 and not self.surplus:
            failed_before = self.failed
            with self._interrupts():
                self.study.optimize(
                    self._objective, n_trials=room, catch=(TrialFailed,),
                    callbacks=[stop, self._told], gc_after_trial=False,
                )  # fmt: skip
            if self.failed == failed_before:
                break
        if done(self.study) < self.trials and not self.surplus:
            self.say("the study's other trials are running in other workers")
        return self.trained

    def _taken(self) -> int:
        """The trials that are done or running (those waiting are asked first, by anyone)."""
        taken = {"COMPLETE", "PRUNED", "RUNNING"}
        return sum(t.state.name in taken for t in self.study.get_trials(deepcopy=False))

    def _told(self, study: Any, trial: Any) -> None:
        """The trial's line, once the study has recorded how it ended."""
        line = self.lines.pop(trial.number, None)
        if line is not None:
            self.say(f"trial {trial.number}: {self._params(trial)} · {line}")

    def _objective(self, trial: Any) -> float:
        from zoo.tuning.trial import TrialFailed, run_trial

        self.current = trial
        earlier = self._earlier(trial)
        if earlier is None and self._surplus(trial):
            trial.set_user_attr("reason", "not trained: the study had its trials (two workers)")
            self.surplus = True
            self.study.stop()
            raise TrialFailed("surplus")
        import optuna

        try:
            value, result = run_trial(
                trial, config=self.config, space=self.space, output_dir=self.output,
                metric=self.metric, direction=self.direction, earlier=earlier,
            )  # fmt: skip
        except optuna.TrialPruned as pruned:
            self.trained += 1
            self.lines[trial.number] = f"pruned ({pruned})"
            raise
        except TrialFailed as failed:
            trial.set_user_attr("reason", str(failed))
            self.lines[trial.number] = f"failed: {failed}"
            self.failed += 1
            self.failures.append(str(failed))
            if len(self.failures) >= MAX_FAILURES_IN_A_ROW:  # the options, not the parameters
                raise ZooUsageError(
                    f"{len(self.failures)} trials in a row failed, the last: {failed}"
                ) from None
            raise
        self.failures.clear()
        self.trained += 1
        self.lines[trial.number] = (
            f"{self.metric} {value:.4f} ({result.epochs} epoch(s), {result.train_seconds:.1f} s)"
        )
        return value

    def _params(self, trial: Any) -> str:
        return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in trial.params.items())  # fmt: skip

    def _earlier(self, trial: Any) -> Any:
        """The failed trial that ``trial`` repeats, if it is one."""
        number = trial.user_attrs.get("retry_of")
        if number is None:
            return None
        return self.study.get_trials(deepcopy=False)[number]

    def _surplus(self, trial: Any) -> bool:
        """Whether the study had its trials before this one was asked (two workers asking for
        the last one at once): those before it that are done, running or waiting."""
        live = {"COMPLETE", "PRUNED", "RUNNING", "WAITING"}
        before = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]
        return sum(t.state.name in live for t in before) >= self.trials

    def _fail(self, number: int) -> bool:
        """Fail this worker's trial ``number`` if it is not done (Optuna fails it when the
        signal stops the objective; not when it lands in Optuna's own code) and ask it again."""
        import optuna

        frozen = self.study.get_trials(deepcopy=False)[number]
        if frozen.state.name == "RUNNING":
            with contextlib.suppress(ValueError, RuntimeError, optuna.exceptions.OptunaError):
                self.study.tell(number, state=optuna.trial.TrialState.FAIL)
            frozen = self.study.get_trials(deepcopy=False)[number]
        if frozen.state.name != "FAIL":
            return False
        retry(self.study, frozen)
        return True

    @contextlib.contextmanager
    def _interrupts(self) -> Iterator[None]:
        """SIGINT or SIGTERM: the trial in progress is failed (Optuna does that) and asked
        again, to resume its run; a one-line TrainingInterrupted says what is kept."""
        try:
            yield
        except (TrainingInterrupted, KeyboardInterrupt) as error:
            signum = getattr(error, "signum", signal.SIGINT)
            kept = f"{done(self.study)} trial(s) done are kept in the study"
            if self.current is not None and self._fail(self.current.number):
                number = self.current.number
                kept += f"; trial {number} continues when the same command runs again"
            raise TrainingInterrupted(f"zoo tune stopped: {kept}.", signum) from None
