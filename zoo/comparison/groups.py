"""How a comparison's pending runs are trained: in fused groups (the default, see
:mod:`zoo.comparison.fused`) sized to the device's memory, or as separate ``zoo train`` processes;
each
group (or run) is a *task*, run in this process or by a launcher (:mod:`zoo.comparison.launchers`:
Ray,
SLURM through submitit).

A task is plain data (configurations, paths, plugin arguments) and a ``__call__`` that trains;
it returns one outcome per run (``act``, ``seed``, ``status``, ``run_dir``, ``error``), so that
a launcher can pickle it to another machine and the output directory is written the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zoo.errors import FusionUnavailable
from zoo.runs.config import RunConfig


class Plan(Protocol):
    """What a comparison's plan (:class:`zoo.comparison.compare.Plan`) gives the groups."""

    settings: Any  # zoo.comparison.compare.Settings: run_config(act, seed), base
    out: Path
    plugins: tuple[str, ...]
    strict_plugins: bool
    pending: list[tuple[str, int]]

    def slot(self, act: str, seed: int) -> Path: ...


#: Of the memory available, the share a fused group may plan to use.
MEMORY_SHARE = 0.5
#: Optimizers whose update of a parameter element depends on that element's gradient history
#: only: one of them over stacked parameters steps every member as its own would.
ELEMENTWISE_OPTIMIZERS = frozenset(
    {"adam", "adamw", "sgd", "rmsprop", "adagrad", "adamax", "nadam", "radam", "adadelta", "lion"}
)


def fusion_problem(config: RunConfig) -> str | None:
    """Why runs of ``config`` cannot be trained fused, or None if they can."""
    from zoo.plugin.components import resolve

    optimizer = str(resolve("optimizer", config.optimizer)[1].name)
    schedule = str(resolve("scheduler", config.scheduler)[1].name) if config.scheduler else None
    problems = {
        f"the optimizer {optimizer} is not element-wise": optimizer not in ELEMENTWISE_OPTIMIZERS,
        "a plateau schedule follows each run's own val_acc": schedule == "plateau",
        "--early-stopping stops each run on its own": config.early_stopping is not None,
        "--gradient-clip clips each run's own gradient norm": config.gradient_clip is not None,
        "--compile compiles each run's model": config.compile,
        "--logger writes each run's own logs": bool(config.logger),
        "fused runs train on one device": config.num_nodes != 1
        or config.strategy not in ("auto", "single_device")
        or str(config.devices) not in ("auto", "1"),
    }
    return next((problem for problem, found in problems.items() if found), None)


@dataclass(frozen=True)
class FusedGroupTask:
    """Train ``configs`` fused, run ``i`` in ``slots[i]``; ``checkpoint`` is the group's own."""

    configs: tuple[dict[str, Any], ...]
    slots: tuple[str, ...]
    checkpoint: str
    plugins: tuple[str, ...] = ()
    strict_plugins: bool = False
    progress: bool = False

    def describe(self) -> str:
        runs = [RunConfig.from_dict(c) for c in self.configs]
        acts = list(dict.fromkeys(c.act for c in runs))
        seeds = sorted({int(c.seed or 0) for c in runs})
        return f"{len(runs)} runs fused ({', '.join(acts)}; seeds {_span(seeds)})"

    def __call__(self) -> list[dict[str, Any]]:
        return self.train()

    def train(self, echo: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        """Train the group (in this process), saying what happens to ``echo``."""
        from zoo.comparison.fused_training import train_fused

        _configure_plugins(self.plugins, self.strict_plugins)
        configs = [RunConfig.from_dict(c) for c in self.configs]
        return train_fused(configs, [Path(s) for s in self.slots], checkpoint=self.checkpoint,
                           progress=self.progress, echo=echo)  # fmt: skip


@dataclass(frozen=True)
class SeparateRunTask:
    """Train one run as its own ``zoo train`` process, into ``slot``."""

    config: dict[str, Any]
    slot: str
    plugins: tuple[str, ...] = ()
    strict_plugins: bool = False

    def describe(self) -> str:
        config = RunConfig.from_dict(self.config)
        return f"{config.act} seed {config.seed}"

    def __call__(self) -> list[dict[str, Any]]:
        config = RunConfig.from_dict(self.config)
        slot = Path(self.slot)
        slot.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "zoo", *plugin_args(self.plugins, self.strict_plugins),
                "train", *config.to_args(), "--output-dir", str(slot), "--json"]  # fmt: skip
        log = slot / "train.log"
        with log.open("w") as stderr:
            completed = subprocess.run(args, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                       check=False)  # fmt: skip
        outcome: dict[str, Any] = {"act": config.act, "seed": config.seed, "log": str(log)}
        try:
            result = json.loads(completed.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result = None
        if completed.returncode == 0 and result is not None:
            return [{**outcome, "status": "finished", "run_dir": result["run_dir"],
                     "result": result, "error": None}]  # fmt: skip
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        return [{**outcome, "status": "failed", "run_dir": None, "exit": completed.returncode,
                 "error": tail[0] if tail else f"exit {completed.returncode}"}]  # fmt: skip


def plugin_args(plugins: Sequence[str], strict_plugins: bool) -> list[str]:
    """``zoo``'s ``-p`` arguments (and ``--strict-plugins``)."""
    args = [word for plugin in plugins for word in ("-p", plugin)]
    return [*args, "--strict-plugins"] if strict_plugins else args


def _configure_plugins(plugins: Sequence[str], strict_plugins: bool) -> None:
    """Load the ``-p`` plugins the comparison was given, unless this process has them (as
    ``zoo compare -p ...`` does): a launcher's worker starts without them."""
    from zoo.plugin.loading import configure_plugins, get_host

    settings = get_host().settings
    if set(plugins) <= set(settings.plugins) and settings.strict >= strict_plugins:
        return
    configure_plugins(plugins=[*settings.plugins, *plugins], strict=strict_plugins)


def _span(values: Sequence[int]) -> str:
    if values and list(values) == list(range(values[0], values[-1] + 1)) and len(values) > 2:
        return f"{values[0]}-{values[-1]}"
    return ", ".join(str(v) for v in values)


# -- planning the groups -------------------------------------------------------------------------


def member_bytes(config: RunConfig) -> int | None:
    """About how much memory one member of a fused group of ``config`` needs: its parameters
    with their gradients and two optimizer moments, and its activations on a batch."""
    from zoo.plugin.components import create_datamodule
    from zoo.training.preflight import count_parameters

    datamodule = create_datamodule(config.dataset, data_dir=config.data_dir)
    shape, classes = datamodule.input_shape, datamodule.num_classes
    parameters = count_parameters(config.arch, config.act, shape, classes)
    if parameters is None:
        return None
    pixels = 1
    for n in shape:
        pixels *= int(n)
    activations = config.batch_size * (pixels + parameters**0.5 * 8) * 4 * 4
    return int(parameters * 4 * 4 + activations)


def default_jobs(accelerator: str) -> int:
    """Fused groups trained at once by default: one per CPU core (a thread each), or one on a
    GPU."""
    import os

    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return 1
    return os.cpu_count() or 1


def available_bytes(accelerator: str) -> int | None:
    """The memory a fused group may use: a share of the GPU's free memory when training on a
    GPU, else of this machine's available memory."""
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return int(free * MEMORY_SHARE)
    from zoo.training.preflight import available_memory

    memory = available_memory()
    return None if memory is None else int(memory * MEMORY_SHARE)


def plan_groups(
    plan: Plan, limit: int | None = None, at_least: int = 1
) -> list[list[tuple[str, int]]]:
    """The plan's pending runs in fused groups that fit in memory (at most ``limit`` each), in
    at least ``at_least`` groups if there are as many runs."""
    pending = list(plan.pending)
    if not pending:
        return []
    size = -(-len(pending) // max(1, at_least))
    per_member = member_bytes(plan.settings.run_config(*pending[0]))
    budget = available_bytes(plan.settings.base.accelerator)
    if per_member and budget:
        size = max(1, min(size, budget // per_member))
    if limit:
        size = min(size, limit)
    return [pending[i : i + size] for i in range(0, len(pending), size)]


def fused_tasks(plan: Plan, groups: Sequence[Sequence[tuple[str, int]]]) -> list[FusedGroupTask]:
    """One task per group; a group's checkpoint lives in ``<output dir>/fused/``."""
    tasks = []
    for number, group in enumerate(groups):
        configs = tuple(plan.settings.run_config(act, seed).to_dict() for act, seed in group)
        slots = tuple(str(plan.slot(act, seed)) for act, seed in group)
        name = "-".join(Path(slot).name.rsplit("-", 1)[0] for slot in slots[:1])
        checkpoint = plan.out / "fused" / f"group{number}-{name}" / "last.ckpt"
        tasks.append(FusedGroupTask(configs, slots, str(checkpoint), plan.plugins,
                                    plan.strict_plugins))  # fmt: skip
    return tasks


def separate_tasks(plan: Plan) -> list[SeparateRunTask]:
    """One ``zoo train`` task per pending run."""
    return [
        SeparateRunTask(
            plan.settings.run_config(act, seed).to_dict(),
            str(plan.slot(act, seed)),
            plan.plugins,
            plan.strict_plugins,
        )
        for act, seed in plan.pending
    ]


def run_here(
    tasks: Sequence[Callable[[], list[dict[str, Any]]]], echo: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Run ``tasks`` one after another in this process; their outcomes, in order."""
    from zoo.errors import TrainingInterrupted, ZooUsageError

    outcomes = []
    for number, task in enumerate(tasks, 1):
        describe = getattr(task, "describe", lambda: "task")
        echo(f"group {number}/{len(tasks)}: {describe()}")
        try:
            outcomes += task.train(echo) if hasattr(task, "train") else task()
        except (ZooUsageError, FusionUnavailable, TrainingInterrupted):
            raise
        except Exception as error:  # the group failed as a whole: each of its runs failed
            outcomes += failed_outcomes(task, f"{type(error).__name__}: {error}")
    return outcomes


def failed_outcomes(task: Any, error: str) -> list[dict[str, Any]]:
    """The outcome of every run of ``task`` when the task failed as a whole."""
    configs = getattr(task, "configs", None) or (getattr(task, "config", {}),)
    slots = getattr(task, "slots", None) or (getattr(task, "slot", None),)
    return [
        {
            "act": config["act"],
            "seed": config["seed"],
            "status": "failed",
            "run_dir": None,
            "log": slot,
            "error": error,
        }
        for config, slot in zip(configs, slots, strict=True)
    ]


# -- fused groups in processes of their own ------------------------------------------------------


def run_in_processes(
    tasks: Sequence[FusedGroupTask], jobs: int, echo: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Run the fused groups ``jobs`` at a time, each in a ``python -m zoo.comparison.groups``
    process of
    its own with ``OMP_NUM_THREADS`` = CPUs / jobs (unless set); their outcomes, in order.
    SIGINT or SIGTERM here is passed on to the groups, which stop as a run stops; the first
    :class:`TrainingInterrupted` (or usage error) of a group is raised once all have ended."""
    import os
    import signal
    import threading
    from concurrent.futures import ThreadPoolExecutor

    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    processes: list[subprocess.Popen[str]] = []
    lock, stopping = threading.Lock(), threading.Event()

    def forward(signum: int, frame: Any) -> None:
        stopping.set()
        with lock:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signum)

    def run(number: int, task: FusedGroupTask) -> dict[str, Any]:
        if stopping.is_set():
            return {"interrupted": "stopped before it started", "signum": signal.SIGINT}
        folder = Path(task.checkpoint).parent
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "task.json").write_text(json.dumps(dataclasses.asdict(task)))
        echo(f"group {number}/{len(tasks)}: {task.describe()} (log: {folder / 'train.log'})")
        with (folder / "train.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "zoo.comparison.groups", str(folder / "task.json")],
                stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                start_new_session=True,  # a Ctrl+C reaches it once: as this process passes it on
            )  # fmt: skip
            with lock:
                processes.append(process)
            stdout, _ = process.communicate()
        try:
            reply = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            reply = None
        if reply is not None:
            if all(o["status"] == "finished" for o in reply.get("outcomes", [{"status": ""}])):
                shutil.rmtree(folder, ignore_errors=True)  # its runs hold everything now
                with contextlib.suppress(OSError):
                    folder.parent.rmdir()
            return reply
        else:
            tail = (folder / "train.log").read_text(errors="replace").strip().splitlines()[-1:]
            return {"error": f"the group's process ended with exit {process.returncode}"
                             + (f": {tail[0]}" if tail else "")}  # fmt: skip

    signals = (signal.SIGINT, signal.SIGTERM)
    main = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, forward) for signum in signals} if main else {}
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            replies = list(pool.map(run, range(1, len(tasks) + 1), tasks))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return _outcomes_of(tasks, replies)


def _outcomes_of(
    tasks: Sequence[FusedGroupTask], replies: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    from zoo.errors import TrainingInterrupted, ZooUsageError

    for reply in replies:
        if "usage_error" in reply:
            raise ZooUsageError(reply["usage_error"])
        if "unavailable" in reply:
            raise FusionUnavailable(reply["unavailable"])
    for reply in replies:
        if "interrupted" in reply:
            raise TrainingInterrupted(reply["interrupted"], int(reply["signum"]))
    outcomes = []
    for task, reply in zip(tasks, replies, strict=True):
        outcomes += reply["outcomes"] if "outcomes" in reply else failed_outcomes(
            task, reply["error"])  # fmt: skip
    return outcomes


def main(argv: Sequence[str]) -> int:
    """``python -m zoo.comparison.groups TASK.json``: train one fused group (the JSON of a
    :class:`FusedGroupTask`) and print its outcomes as one JSON line."""
    from zoo.errors import TrainingInterrupted, ZooUsageError

    data = json.loads(Path(argv[0]).read_text())
    task = FusedGroupTask(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    try:
        reply: dict[str, Any] = {"outcomes": task()}
        code = 0
    except TrainingInterrupted as error:
        reply, code = {"interrupted": str(error), "signum": error.signum}, 128 + error.signum
    except ZooUsageError as error:
        reply, code = {"usage_error": str(error)}, 2
    except FusionUnavailable as error:
        reply, code = {"unavailable": str(error)}, 1
    except Exception as error:  # the group failed as a whole: reported, not a traceback
        reply, code = {"error": f"{type(error).__name__}: {error}"}, 1
    print(json.dumps(reply))
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
