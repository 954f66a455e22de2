"""``zoo tune``: hyper-parameter search on Optuna, as ``zoo.tune`` does it."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import click

from zoo.cli.options import json_option, output_dir_option, run_config, run_options
from zoo.plugin.isolation import stdout_to_stderr

# zoo.tuning.tune imports no Optuna or torch at module level; they load when the command runs.
from zoo.tuning.tune import DEFAULT_OUTPUT_DIR, METRICS, PRUNERS, SAMPLERS


@click.command(
    "tune",
    epilog="""\b
Examples:
  zoo tune --search 'lr=log(1e-4,1e-1)' --search 'weight_decay=log(1e-6,1e-2)' --trials 24
  zoo tune --act relu --epochs 3 --search 'lr=log(1e-4,1e-1)' --pruner median
  zoo tune --search 'act=choice(relu,tanh,gelu)' --search 'hidden=choice((128,64),(256,128))'
  zoo tune --search 'batch_size=int(32,256)' --search 'dropout=float(0,0.5)' --sampler random
  zoo tune --search 'lr=log(1e-4,1e-1)' --storage sqlite:////shared/study.db --output-dir w1
  zoo train --config tune/best.json
""",
)
@click.option(
    "--search",
    "search",
    multiple=True,
    required=True,
    metavar="NAME=EXPR",
    help="A searched option: NAME=log(LOW,HIGH), float(LOW,HIGH[,STEP]), int(LOW,HIGH[,STEP]) "
    "or choice(A,B,...). NAME is a run option (lr, batch_size, act, ...) or an argument of a "
    "component (arch.hidden, optimizer.weight_decay, or just hidden). Repeatable.",
)
@click.option(
    "--trials",
    type=int,
    default=20,
    show_default=True,
    help="Trials in the study, complete or pruned (those of earlier calls count).",
)
@click.option(
    "--pruner",
    type=click.Choice(PRUNERS),
    default="median",
    show_default=True,
    help="Stop unpromising trials after an epoch: Optuna's MedianPruner, HyperbandPruner, or none.",
)
@click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    default="tpe",
    show_default=True,
    help="How trials are drawn: Optuna's TPESampler or RandomSampler.",
)
@click.option(
    "--metric",
    type=click.Choice(tuple(METRICS)),
    default="val_acc",
    show_default=True,
    help="The validation metric a trial is scored by (its best epoch's).",
)
@click.option(
    "--direction",
    type=click.Choice(["maximize", "minimize"]),
    default=None,
    help="Maximize or minimize the metric [default: maximize val_acc, minimize val_loss].",
)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="The study's Optuna RDB storage (sqlite:///FILE, postgresql://..., mysql://...): "
    "workers given the same URL share the study [default: sqlite:///OUTPUT_DIR/study.db].",
)
@click.option(
    "--study-name",
    default="zoo",
    show_default=True,
    help="The study's name in the storage.",
)
@output_dir_option(
    DEFAULT_OUTPUT_DIR,
    "Where study.db, the trials' runs (trials/), best.json, trials.csv and history.png go. "
    "The same command again continues the study.",
)
@run_options()
@json_option("Print only one JSON object with the study's result on stdout.")
def tune_command(
    search: tuple[str, ...],
    trials: int,
    pruner: str,
    sampler: str,
    metric: str,
    direction: str | None,
    storage: str | None,
    study_name: str,
    output_dir: Path,
    as_json: bool,
    **options: Any,
) -> None:
    """Search run options with Optuna: each trial an ordinary run in OUTPUT_DIR/trials/.

    Every trial trains the given run options with its own values of the --search
    options, and the same --seed (0 when none is given). Its validation metric is
    reported after every epoch, and the pruner stops trials that fall behind. The
    study is kept in OUTPUT_DIR/study.db: interrupted (Ctrl-C) or crashed, the same
    command continues it; on a finished study it prints the result. The best trial's
    configuration goes to OUTPUT_DIR/best.json, for zoo train --config.
    """
    import zoo

    def echo(line: str) -> None:
        click.echo(line, err=as_json)

    # With --json stdout carries the one JSON object: plugin code writing to file descriptor 1
    # while the trials train goes to stderr, as with zoo train --json.
    with stdout_to_stderr() if as_json else contextlib.nullcontext():
        result = zoo.tune(
            search, trials=trials, config=run_config(options), output_dir=output_dir,
            storage=storage, study_name=study_name, metric=metric, direction=direction,
            sampler=sampler, pruner=pruner, echo=echo,
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo("")
    click.echo(result.table())
    labels = {"best": "Best config", "trials": "Trials", "history": "History plot"}
    for name, path in result.files.items():
        click.echo(f"{labels.get(name, name) + ':':<14}{path}")
    if "best" in result.files:
        click.echo(f"{'Retrain:':<14}zoo train --config {result.files['best']}")
