"""``zoo compare``: train several activations x seeds and compare them: the options made into
a :class:`zoo.comparison.plan.ComparisonPlan`, run by ``zoo.comparison.compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from zoo.cli.options import json_option, output_dir_option, run_config, run_options
from zoo.comparison.plan import DEFAULT_MAX_RUNS, DEFAULT_OUTPUT_DIR, ComparisonPlan
from zoo.runs.config import RunConfig


@click.command(
    "compare",
    epilog="""\b
Examples:
  zoo compare --act relu --act leakyrelu --act sigmoid --act tanh --epochs 3 --seeds 3
  zoo compare --act leakyrelu:negative_slope=0.01 --act leakyrelu:negative_slope=0.2
  zoo compare --arch 'mlp:hidden=(256,256,256,256,256)' --act relu --act tanh --jobs 2
  zoo compare --act relu --act sigmoid --epochs 1 --seeds 2 --output-dir /tmp/cmp --json
""",
)
@click.option(
    "--act",
    "acts",
    multiple=True,
    required=True,
    help="Activation spec, NAME[:k=v,...]. Repeat for each activation to compare.",
)
@click.option(
    "--seeds",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seeds per activation: 0, 1, ..., SEEDS-1.",
)
@click.option(
    "--jobs",
    default=None,
    type=click.IntRange(min=1),
    help="Processes at once: fused groups (each with CPUs/JOBS threads) [default: one per CPU "
    "core, one on a GPU], or with --separate `zoo train` runs [default: 1].",
)
@click.option(
    "--separate",
    is_flag=True,
    help="Train every run as its own `zoo train` process instead of fused in one.",
)
@click.option(
    "--launcher",
    type=click.Choice(["local", "ray", "slurm"]),
    default="local",
    show_default=True,
    help="Where the fused groups (or, with --separate, the runs) train: here, as Ray tasks, "
    "or as a SLURM job array (submitit). The output directory must be on a filesystem every "
    "node sees.",
)
@click.option(
    "--ray-address",
    envvar="RAY_ADDRESS",
    default=None,
    help="The Ray cluster to use (ray.init(address=...)) [default: $RAY_ADDRESS, else a local "
    "Ray].",
)
@click.option("--slurm-partition", default=None, help="The SLURM partition to submit to.")
@click.option(
    "--slurm-time",
    type=click.IntRange(min=1),
    default=240,
    show_default=True,
    help="Each SLURM job's time limit, in minutes.",
)
@click.option(
    "--slurm-cluster",
    type=click.Choice(["slurm", "local", "debug"]),
    default=None,
    hidden=True,  # submitit's local executors, for trying a SLURM comparison without SLURM
)
@click.option(
    "--task-cpus",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPUs for each Ray task or SLURM job.",
)
@click.option(
    "--task-gpus",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="GPUs for each Ray task or SLURM job.",
)
@click.option(
    "--group-size",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many runs in one fused group [default: as many as fit in memory].",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_RUNS,
    show_default=True,
    help="Stop before anything is created if the comparison would train more runs than this "
    "(activations x seeds x datasets); raise it knowingly for a larger one.",
)
@output_dir_option(
    DEFAULT_OUTPUT_DIR,
    "Where the runs, comparison.csv/json, the plots and report.md go. "
    "Rerunning with the same directory skips finished runs.",
)
@click.option(
    "--dataset",
    "dataset",
    multiple=True,
    default=(RunConfig.dataset,),
    show_default=True,
    metavar="SPEC",
    help="Dataset spec, NAME[:k=v,...]. Repeat it to compare on several datasets: one "
    "comparison each in OUTPUT_DIR/<dataset>/, and ranking.json/md across them in OUTPUT_DIR.",
)
@run_options(exclude=("act", "seed", "diagnostics", "dataset"))
@json_option("Print only comparison.json's object (several --dataset: ranking.json's) on stdout.")
@click.pass_context
def compare_command(
    ctx: click.Context,
    acts: tuple[str, ...],
    seeds: int,
    jobs: int | None,
    separate: bool,
    group_size: int | None,
    launcher: str,
    ray_address: str | None,
    slurm_partition: str | None,
    slurm_time: int,
    slurm_cluster: str | None,
    task_cpus: int,
    task_gpus: int,
    max_runs: int,
    output_dir: Path,
    dataset: tuple[str, ...],
    as_json: bool,
    **options: Any,
) -> None:
    """Train each --act with --seeds seeds and compare them.

    The runs train fused: the runs of a group in one process, stepped together,
    each exactly the run `zoo train --seed K` makes (--separate: one `zoo train`
    process per run). Every run is an ordinary `zoo train --diagnostics` run
    directory under OUTPUT_DIR/runs/. Prints a table (test accuracy mean ± std over seeds, best
    validation accuracy, final train loss, seconds per epoch, dead-unit and saturated
    fractions at the end, first layer's mean gradient norm) and writes comparison.csv,
    comparison.json, PNG plots and report.md to OUTPUT_DIR.
    """
    if launcher == "local":  # the runs' fork server imports torch while this process plans
        from zoo.processes import prepare

        prepare()
    from zoo.comparison.compare import compare, compare_datasets

    root = ctx.find_root()
    launch = launch_options(
        launcher,
        output_dir,
        ray_address=ray_address,
        slurm_partition=slurm_partition,
        slurm_time=slurm_time,
        slurm_cluster=slurm_cluster,
        cpus=task_cpus,
        gpus=task_gpus,
    )
    plan = ComparisonPlan(
        acts=acts,
        config=run_config(options),
        seeds=seeds,
        datasets=dataset,
        output_dir=output_dir,
        jobs=jobs,
        separate=separate,
        group_size=group_size,
        launch=launch,
        plugins=tuple(root.meta.get("zoo.plugins") or ()),
        strict_plugins=bool(root.meta.get("zoo.strict_plugins")),
        max_runs=max_runs,
    )

    def echo(message: str) -> None:
        click.echo(message, err=as_json)

    # several datasets: one table per dataset, and the ranking across them
    run = compare_datasets if len(dataset) > 1 else compare
    comparison: Any = run(plan, echo=echo)
    if as_json:
        click.echo(json.dumps(comparison.to_dict()))
        return
    click.echo("")
    click.echo(comparison.table())
    click.echo("")
    click.echo(f"Report: {comparison.files['report']}")


def launch_options(launcher: str, output_dir: Path, **values: Any) -> Any:
    """The :class:`zoo.comparison.launchers.LaunchOptions` of the launcher options (None: train
    here)."""
    if launcher == "local":
        return None
    from zoo.comparison.launchers import LaunchOptions

    return LaunchOptions(
        launcher=launcher,
        ray_address=values["ray_address"],
        ray_cpus_per_task=values["cpus"],
        ray_gpus_per_task=values["gpus"],
        slurm_partition=values["slurm_partition"],
        slurm_time_minutes=values["slurm_time"],
        slurm_cpus_per_task=values["cpus"],
        slurm_gpus_per_task=values["gpus"],
        slurm_log_folder=str(output_dir / "slurm-logs" / "%j"),
        slurm_cluster=values["slurm_cluster"],
    )
