"""Fused groups: which runs can be trained fused (:func:`fusion_problem`), groups sized to the
device's memory (:func:`plan_groups`), the picklable task of a group (:class:`FusedGroupTask`,
see :mod:`zoo.comparison.fused_training`), and groups trained side by side here, each in a
``python -m zoo.comparison.groups TASK.json`` process of its own, forked from the fork server of
:mod:`zoo.processes` (:func:`run_in_processes`).
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
from typing import TYPE_CHECKING, Any

from zoo.comparison.tasks import configure_plugins, failed_outcomes, thread_environment
from zoo.errors import FusionUnavailable, RunDamagedError
from zoo.processes import start_module
from zoo.runs.config import RunConfig

if TYPE_CHECKING:
    from zoo.comparison.plan import PlannedRuns


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

        configure_plugins(self.plugins, self.strict_plugins)
        configs = [RunConfig.from_dict(c) for c in self.configs]
        return train_fused(configs, [Path(s) for s in self.slots], checkpoint=self.checkpoint,
                           progress=self.progress, echo=echo)  # fmt: skip


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
    plan: PlannedRuns, limit: int | None = None, at_least: int = 1
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


def fused_tasks(
    plan: PlannedRuns, groups: Sequence[Sequence[tuple[str, int]]]
) -> list[FusedGroupTask]:
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


# -- fused groups in processes of their own ------------------------------------------------------


def run_in_processes(
    tasks: Sequence[FusedGroupTask], jobs: int, echo: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Run the fused groups ``jobs`` at a time, each in a ``python -m zoo.comparison.groups``
    process of its own with ``OMP_NUM_THREADS`` = CPUs / jobs (unless set); their outcomes, in
    order. SIGINT or SIGTERM here is passed on to the groups, which stop as a run stops; the
    first :class:`TrainingInterrupted` (or usage error) of a group is raised once all have
    ended."""
    import signal
    import threading
    from concurrent.futures import ThreadPoolExecutor

    groups = _GroupProcesses(tasks, thread_environment(jobs), echo)
    signals = (signal.SIGINT, signal.SIGTERM)
    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, groups.forward) for s in signals} if main else {}
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            replies = list(pool.map(groups.run, range(1, len(tasks) + 1), tasks))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return _outcomes_of(tasks, replies)


class _GroupProcesses:
    """The processes of :func:`run_in_processes`' groups, and the signals passed on to them."""

    def __init__(
        self, tasks: Sequence[FusedGroupTask], env: dict[str, str], echo: Callable[[str], None]
    ) -> None:
        import threading

        self.tasks, self.env, self.echo = tasks, env, echo
        self.processes: list[Any] = []  # subprocess.Popen or zoo.processes.ForkedProcess
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.signum = 0

    def forward(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self.stopping.set()
        with self.lock:
            for process in self.processes:
                if process.poll() is None:
                    process.send_signal(signum)

    def run(self, number: int, task: FusedGroupTask) -> dict[str, Any]:
        """Train one group in a process of its own: its reply (outcomes, or what stopped it)."""
        import signal

        if self.stopping.is_set():
            return {"interrupted": "stopped before it started", "signum": signal.SIGINT}
        folder = Path(task.checkpoint).parent
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "task.json").write_text(json.dumps(dataclasses.asdict(task)))
        log = folder / "train.log"
        self.echo(f"group {number}/{len(self.tasks)}: {task.describe()} (log: {log}; kept as "
                  f"{GROUP_LOG} in each of its runs' directories when the group ends)")  # fmt: skip
        with log.open("w") as stderr:
            process = start_module(  # forked after the imports: see zoo.processes
                "zoo.comparison.groups", [str(folder / "task.json")],
                stdout=subprocess.PIPE, stderr=stderr, text=True, env=self.env,
                start_new_session=True,  # a Ctrl+C reaches it once: as this process passes it on
            )  # fmt: skip
            with self.lock:
                self.processes.append(process)
                if self.stopping.is_set():  # the signal came while it was starting
                    process.send_signal(self.signum)
            stdout, _ = process.communicate()
        try:
            reply = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            if self.stopping.is_set():  # stopped by the signal before it could say so
                return {"interrupted": "stopped while it started", "signum": self.signum}
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            return {"error": f"the group's process ended with exit {process.returncode}"
                             + (f": {tail[0]}" if tail else "")}  # fmt: skip
        outcomes = reply.get("outcomes", [{"status": ""}])
        if all(o["status"] == "finished" for o in outcomes):
            _keep_log(log, outcomes)
            shutil.rmtree(folder, ignore_errors=True)  # its runs hold everything now
            with contextlib.suppress(OSError):
                folder.parent.rmdir()
        return reply


#: The name of a fused group's log in each of its runs' directories.
GROUP_LOG = "group.log"


def _keep_log(log: Path, outcomes: Sequence[dict[str, Any]]) -> None:
    """Copy a finished group's log into each of its runs' directories."""
    for outcome in outcomes:
        if outcome.get("run_dir"):
            with contextlib.suppress(OSError):
                shutil.copyfile(log, Path(outcome["run_dir"]) / GROUP_LOG)


def _outcomes_of(
    tasks: Sequence[FusedGroupTask], replies: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    from zoo.errors import TrainingInterrupted, ZooUsageError

    for reply in replies:
        if "usage_error" in reply:
            raise ZooUsageError(reply["usage_error"])
        if "unavailable" in reply:
            raise FusionUnavailable(reply["unavailable"])
        if "damaged" in reply:
            raise RunDamagedError(reply["damaged"])
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
    except RunDamagedError as error:  # stops the comparison: rerunning cannot mend it
        reply, code = {"damaged": str(error)}, 1
    except Exception as error:  # the group failed as a whole: reported, not a traceback
        reply, code = {"error": f"{type(error).__name__}: {error}"}, 1
    print(json.dumps(reply))
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
