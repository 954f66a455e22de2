"""What a comparison is asked to do (:class:`ComparisonPlan`), and that plan resolved in its
output directory (:class:`PlannedRuns`): the settings by canonical names, a slot per activation
and seed, the runs finished there already (skipped) and those still to train; the bound on run
counts, and the command line that reproduces the comparison."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.comparison.tasks import plugin_args
from zoo.errors import ZooError, ZooUsageError
from zoo.plugin.components import resolve
from zoo.runs.config import RunConfig
from zoo.runs.reading import read_run
from zoo.text import slug

if TYPE_CHECKING:
    from zoo.comparison.launchers import LaunchOptions

DEFAULT_OUTPUT_DIR = "comparison"
#: The most runs a comparison trains unless its plan raises the bound (``--max-runs``).
DEFAULT_MAX_RUNS = 200
#: Options that say where a run trains, not what it computes: not part of a run's slot.
_PLACE_OPTIONS = ("data_dir", "accelerator", "devices", "strategy", "num_nodes", "num_workers")


@dataclass(frozen=True)
class ComparisonPlan:
    """What to compare: every activation in ``acts`` with seeds ``0 .. seeds-1``, each run
    ``config`` with that activation and seed, on each of ``datasets`` (none: ``config``'s).

    How: fused in groups of at most ``group_size`` runs, ``jobs`` groups at once (default: one
    per CPU core, one on a GPU), or with ``separate`` each run its own ``zoo train`` process
    (``jobs`` at a time, default 1); ``launch`` (:class:`zoo.comparison.launchers.LaunchOptions`)
    runs them on Ray or SLURM. Where: ``output_dir``. ``plugins`` (and ``strict_plugins``) are
    passed on to the runs as ``-p``; ``max_runs`` bounds the number of runs."""

    acts: tuple[str, ...]
    config: RunConfig = field(default_factory=RunConfig)
    seeds: int = 3
    datasets: tuple[str, ...] = ()
    output_dir: Path = Path(DEFAULT_OUTPUT_DIR)
    jobs: int | None = None
    separate: bool = False
    group_size: int | None = None
    launch: LaunchOptions | None = None
    plugins: tuple[str, ...] = ()
    strict_plugins: bool = False
    plots: bool = True
    max_runs: int = DEFAULT_MAX_RUNS

    def __post_init__(self) -> None:
        for name in ("acts", "datasets", "plugins"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        object.__setattr__(self, "output_dir", Path(self.output_dir))

    def replace(self, **changes: Any) -> ComparisonPlan:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    @property
    def remote(self) -> bool:
        """Whether a launcher other than ``local`` trains the runs."""
        return self.launch is not None and getattr(self.launch, "launcher", "local") != "local"


@dataclass
class Settings:
    """What a comparison trains: every activation in ``acts`` with seeds ``0 .. seeds-1``,
    each run ``base`` with that activation and seed (and diagnostics on)."""

    acts: list[str]
    seeds: int
    base: RunConfig

    def run_config(self, act: str, seed: int) -> RunConfig:
        return self.base.replace(act=act, seed=seed, diagnostics=True)

    def slot(self, act: str, seed: int) -> str:
        """The directory (under ``runs/``) that holds the run of ``act`` with ``seed``."""
        key = self.run_config(act, seed).to_dict()
        for name in _PLACE_OPTIONS:
            key.pop(name)
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
        return f"{slug(act, 'act')}-seed{seed}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        options = {k: v for k, v in self.base.to_dict().items() if k not in ("act", "seed")}
        return {"acts": self.acts, "seeds": self.seeds, **options}


@dataclass
class PlannedRuns:
    """A comparison's runs in its output directory ``out``: of those ``todo`` (activation,
    seed), the ``finished`` ones (their run directories) are there already, the ``pending``
    ones are to train; ``training`` says how they were trained (``comparison.json``)."""

    settings: Settings
    out: Path
    plugins: tuple[str, ...]
    strict_plugins: bool
    command: str
    todo: list[tuple[str, int]]
    finished: dict[tuple[str, int], str] = field(default_factory=dict)
    pending: list[tuple[str, int]] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=lambda: {"mode": "none"})

    def slot(self, act: str, seed: int) -> Path:
        """The directory that holds the runs of ``act`` with ``seed``."""
        return self.out / "runs" / self.settings.slot(act, seed)


def resolve_settings(plan: ComparisonPlan, dataset: str | None = None) -> Settings:
    """The plan's settings on ``dataset`` (default: the config's) with the activations,
    architecture and dataset by their canonical names; a :class:`ZooUsageError` for a bad
    one."""
    if not plan.acts:
        raise ZooUsageError("give at least one activation to compare (--act NAME)")
    if plan.seeds < 1 or (plan.jobs is not None and plan.jobs < 1):
        raise ZooUsageError("--seeds and --jobs must be at least 1")
    base = plan.config if dataset is None else plan.config.replace(dataset=dataset)
    canonical: list[str] = []
    for act in plan.acts:
        name = str(resolve("activation", act)[1])
        if name not in canonical:
            canonical.append(name)
    base = base.replace(
        arch=str(resolve("architecture", base.arch)[1]),
        dataset=str(resolve("dataset", base.dataset)[1]),
    )
    return Settings(acts=canonical, seeds=plan.seeds, base=base)


def check_run_count(plan: ComparisonPlan, acts: int, datasets: int = 1) -> None:
    """A :class:`ZooUsageError` if the comparison would train more runs than the plan's bound,
    saying how many and how to raise the bound."""
    runs = acts * plan.seeds * datasets
    if runs <= plan.max_runs:
        return
    where = f" x {datasets} datasets" if datasets > 1 else ""
    raise ZooUsageError(
        f"this comparison would train {runs} runs ({acts} activation(s) x {plan.seeds} "
        f"seed(s){where}), more than the {plan.max_runs} that --max-runs allows; if you mean "
        f"it, raise the bound: --max-runs {runs}"
    )


def make_output_dir(out: Path, *inside: str) -> None:
    """Create ``out`` (and ``out/inside``); a :class:`ZooError` naming it if it cannot be
    written."""
    try:
        out.joinpath(*inside).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable(out, error) from None


def unwritable(out: Path, error: OSError) -> ZooError:
    """The error of an output directory that cannot be written."""
    return ZooError(f"cannot write the comparison to {out}: {error.strerror or error}")


def plan_runs(plan: ComparisonPlan, settings: Settings, command: str) -> PlannedRuns:
    """The runs of ``settings`` in the plan's output directory: finished or pending."""
    runs = PlannedRuns(
        settings=settings,
        out=plan.output_dir,
        plugins=plan.plugins,
        strict_plugins=plan.strict_plugins,
        command=command,
        todo=[(act, seed) for act in settings.acts for seed in range(settings.seeds)],
    )
    for act, seed in runs.todo:
        existing = finished_run(runs.slot(act, seed))
        if existing is not None:
            runs.finished[(act, seed)] = str(existing)
        else:
            runs.pending.append((act, seed))
    return runs


def finished_run(slot: Path) -> Path | None:
    """The newest finished run directory in ``slot`` (one with a test accuracy), if any."""
    if not slot.is_dir():
        return None
    found = None
    for run_dir in sorted(p for p in slot.iterdir() if p.is_dir()):
        info = read_run(run_dir)
        if info.status == "finished" and info.test_acc is not None:
            found = run_dir
    return found


def reproduce_command(
    plan: ComparisonPlan, settings: Settings, datasets: Sequence[str] = ()
) -> str:
    """The ``zoo compare`` command line that reproduces (or resumes) this comparison: the
    runs' settings and every option that shaped how they were trained; ``datasets`` for a
    comparison on several."""
    words = ["zoo", *plugin_args(plan.plugins, plan.strict_plugins), "compare"]
    words += [word for act in settings.acts for word in ("--act", act)]
    words += settings.base.replace(act=RunConfig.act, seed=None).to_args()
    words += [word for name in datasets for word in ("--dataset", name)]
    words += ["--seeds", str(settings.seeds)]
    if plan.jobs not in (None, 1):
        words += ["--jobs", str(plan.jobs)]
    if plan.separate:
        words.append("--separate")
    if plan.group_size is not None:
        words += ["--group-size", str(plan.group_size)]
    words += _launcher_args(plan.launch)
    if plan.max_runs != DEFAULT_MAX_RUNS:
        words += ["--max-runs", str(plan.max_runs)]
    words += ["--output-dir", str(plan.output_dir)]
    return shlex.join(words)


def _launcher_args(launch: Any) -> list[str]:
    """The ``zoo compare`` options of a launcher's settings (none for training here)."""
    launcher = getattr(launch, "launcher", "local")
    if launch is None or launcher == "local":
        return []
    words = ["--launcher", launcher]
    prefix = "ray" if launcher == "ray" else "slurm"
    cpus = getattr(launch, f"{prefix}_cpus_per_task")
    gpus = getattr(launch, f"{prefix}_gpus_per_task")
    if launcher == "ray" and launch.ray_address:
        words += ["--ray-address", str(launch.ray_address)]
    if launcher == "slurm":
        if launch.slurm_partition:
            words += ["--slurm-partition", str(launch.slurm_partition)]
        if launch.slurm_time_minutes != 240:
            words += ["--slurm-time", str(launch.slurm_time_minutes)]
        if launch.slurm_cluster:
            words += ["--slurm-cluster", str(launch.slurm_cluster)]
    if cpus != 1:
        words += ["--task-cpus", f"{cpus:g}"]
    if gpus:
        words += ["--task-gpus", f"{gpus:g}"]
    return words
