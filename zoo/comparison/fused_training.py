"""The composition of a fused run: several :class:`~zoo.runs.config.RunConfig` (one per member,
differing only in activation and seed) -> the members, each built as ``zoo train`` builds its run
(:class:`zoo.training.composition.Composition`) -> one
:class:`~zoo.comparison.fused.FusedClassifier` -> one Trainer
(:func:`zoo.training.trainer.build_trainer`), and each member's run directory in its own output
directory."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch

from zoo.comparison.fused import FusedClassifier, SeedBatches
from zoo.comparison.members import Member
from zoo.errors import FusionUnavailable, RunDamagedError, TrainingInterrupted, ZooError
from zoo.runs.config import RunConfig
from zoo.runs.directory import Run
from zoo.training.callbacks import best_checkpoint
from zoo.training.composition import Composition
from zoo.training.runner import stopped_by_signal, train_result
from zoo.training.trainer import build_trainer, quiet_lightning

#: What a fused run's members record of it in ``config.json`` (under ``"fused"``).
ENGINES = {True: "fused layers (one baddbmm per Linear for all members)",
           False: "torch.func.vmap over each structure's stacked parameters"}  # fmt: skip


def train_fused(
    configs: Sequence[RunConfig],
    output_dirs: Sequence[str | Path],
    *,
    checkpoint: str | Path,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Train the runs ``configs`` (the same but for ``act`` and ``seed``) together, run ``i``
    in a new run directory under ``output_dirs[i]``; ``checkpoint`` is the fused run's own
    checkpoint file: if it holds these runs, stopped before the end, they go on from it (if it
    cannot be read, :class:`~zoo.errors.RunDamagedError` says so, before anything is changed).
    Returns one outcome per run: ``status`` (``finished`` or ``failed``),
    ``run_dir``, ``error`` and, when finished, ``result`` (``zoo train --json``'s object)."""
    echo = echo or (lambda message: None)
    checkpoint = Path(checkpoint)
    saved = read_group_checkpoint(checkpoint)
    members, datamodule = build_members(configs, output_dirs)
    if saved is not None and not _holds(saved, members):
        saved = None  # another group's: start anew
    seeds = list(dict.fromkeys(int(m.config.seed) for m in members))
    train_loaders = []
    for seed in seeds:
        torch.manual_seed(seed)  # the loader's order is seeded from the global seed
        train_loaders.append(datamodule.train_dataloader())
    with contextlib.ExitStack() as stack:
        started = datetime.now().isoformat(timespec="seconds")
        for m in members:
            if saved is None:
                m.run = stack.enter_context(_create_run(m, started, len(members)))
            else:
                m.run = stack.enter_context(_reopen_run(m, saved["members"][m.index]))
            m.checkpoint_callback = best_checkpoint(m.run)
        if saved is not None:
            echo(f"resuming the fused run from {checkpoint}")
        module = FusedClassifier(members, seeds, members[0].composition.metadata())
        for m in members:
            m.run.update(fused={**m.run.record["fused"], "engine": ENGINES[module.stack.fused]})
        resume = checkpoint if saved is not None else None
        return _fit(module, members, datamodule, train_loaders, checkpoint, resume, progress, echo)


def read_group_checkpoint(checkpoint: Path) -> dict[str, Any] | None:
    """What a fused group's checkpoint says of its members (its ``zoo_fused`` entry), or None
    when there is no such file. A file there that cannot be read, or is not a fused group's
    checkpoint, raises :class:`~zoo.errors.RunDamagedError`, naming it and the remedy: the
    group's runs stopped at that checkpoint, and starting them anew is the user's call."""
    if not checkpoint.is_file():
        return None
    try:  # a fused checkpoint is not a model's: read it as Lightning will
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's own message may advise loading it unprotected
        reason = f"{type(error).__name__}: it is truncated, damaged, or asks to run code"
    else:
        entry = saved.get("zoo_fused") if isinstance(saved, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("members"), list):
            return entry
        reason = "it is not a fused group's checkpoint"
    raise RunDamagedError(
        f"cannot resume the fused group: its checkpoint {checkpoint} is damaged ({reason}); "
        "delete that file to restart the group's runs from the beginning"
    )


def _holds(saved: dict[str, Any], members: Sequence[Member]) -> bool:
    """Whether the saved group is these members (in these output directories), their run
    directories still there."""
    if saved.get("slots") != [str(m.slot) for m in members]:
        return False
    return all((Path(record["run_dir"]) / "config.json").is_file() for record in saved["members"])


@contextlib.contextmanager
def _reopen_run(m: Member, saved: dict[str, Any]) -> Any:
    """The member's run directory, as the fused checkpoint left it: its metrics cut to the
    rows saved with it, its best score and weights, alive or stopped."""
    from zoo.training.checkpoints import read_checkpoint

    run = Run.open(saved["run_dir"])
    with run:
        run.metrics.load()
        run.metrics.truncate(int(saved["metrics_rows"]))
        m.alive, m.error, m.best_score = saved["alive"], saved["error"], saved["best_score"]
        if m.alive:
            history = [*run.record.get("resumed", []), datetime.now().isoformat(timespec="seconds")]
            run.update(status="running", error=None, resumed=history)
            if m.best_score is not None and run.best_checkpoint.is_file():
                state = read_checkpoint(run.best_checkpoint)["state_dict"]
                m.best_state = {k.removeprefix("model."): v for k, v in state.items()}
        yield run


def build_members(
    configs: Sequence[RunConfig], output_dirs: Sequence[str | Path]
) -> tuple[list[Member], Any]:
    """The members, each built as ``zoo train`` builds its run, over one datamodule (loaded)."""
    from zoo.data.checks import load_data

    compositions = [Composition(config) for config in configs]
    for composition in compositions:
        composition.check()
    first = compositions[0]
    datamodule = first.build_datamodule()
    seeds = list(dict.fromkeys(int(c.seed) for c in configs))
    members = []
    for index, (composition, out) in enumerate(zip(compositions, output_dirs, strict=True)):
        composition.datamodule = datamodule
        composition.build_module(int(composition.config.seed))
        row = seeds.index(int(composition.config.seed))
        members.append(Member(index, composition.config, Path(out), composition, seed_row=row))
    load_data(datamodule, first.data_component, "fit")
    if not getattr(datamodule, "in_memory", False):
        raise FusionUnavailable(
            f"{first.data_spec.name} is not served from memory (the in-memory data path), so "
            "each member's data order cannot be drawn as its own run draws it"
        )
    for composition in compositions:
        composition.check_recipe()
    return members, datamodule


@contextlib.contextmanager
def _create_run(m: Member, started: str, count: int) -> Any:
    composition = m.composition
    record = composition.record(int(m.config.seed), started=started)
    record["fused"] = {"members": count, "index": m.index}
    run = Run.create(m.slot, composition.run_name(), record)
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    with run:
        yield run


class MemberDiagnostics(L.Callback):
    """Each living member's diagnostics (:class:`zoo.training.diagnostics.ActivationDiagnostics`),
    probed on its own model when a separate run probes it: at the start, every ``interval``
    steps, at each epoch's end and at the end of training."""

    def __init__(self, members: Sequence[Member], probe: tuple[torch.Tensor, torch.Tensor]):
        from zoo.training.diagnostics import ActivationDiagnostics

        self.members = members
        for m in members:
            m.diagnostics = ActivationDiagnostics(probe=probe)
        self.interval = members[0].diagnostics.interval
        self._last_step = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.global_step == 0:
            self._record(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        if trainer.global_step % self.interval == 0:
            self._record(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._record(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._record(trainer, pl_module)

    def _record(self, trainer: L.Trainer, fused: FusedClassifier) -> None:
        step = trainer.global_step
        if step == self._last_step:
            return
        self._last_step = step
        for m in self.members:
            if not m.alive:
                continue
            started = time.perf_counter()
            m.module.model.load_state_dict(fused.stack.state_of(m.index))
            m.module.to(fused.device)
            metrics = m.diagnostics.measure(m.module, m.diagnostics.probe)
            m.diagnostics.seconds += time.perf_counter() - started
            row = {"epoch": float(trainer.current_epoch), **metrics}
            m.diagnostics.history.append({"step": float(step), **row})
            m.run.metrics.append({**row, "step": step})


def _probe(datamodule: Any, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The diagnostics' probe batch: the first ``size`` validation samples, as a run takes it."""
    from zoo.training.probing import first_samples

    with torch.random.fork_rng(devices=[]):
        samples = first_samples(datamodule.val_dataloader(), size)
    assert samples is not None, "a fused group has validation data"
    return samples


def _fit(
    module: FusedClassifier,
    members: list[Member],
    datamodule: Any,
    train_loaders: list[Any],
    checkpoint: Path,
    resume: Path | None,
    progress: bool,
    echo: Callable[[str], None],
) -> list[dict[str, Any]]:
    from zoo.data.checks import load_data
    from zoo.training.diagnostics import DEFAULT_PROBE_SIZE
    from zoo.training.guard import LastCheckpoint

    config = members[0].config
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [MemberDiagnostics(members, _probe(datamodule, DEFAULT_PROBE_SIZE))]
    trainer = build_trainer(
        config, callbacks=[LastCheckpoint(checkpoint), *callbacks], progress=progress,
        root=checkpoint.parent, guard=checkpoint,
        devices=1, strategy="auto", enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    batches = SeedBatches(train_loaders, lambda: trainer)
    started = time.perf_counter()
    try:
        with quiet_lightning(progress):
            trainer.fit(
                module,
                train_dataloaders=batches,
                val_dataloaders=datamodule.val_dataloader(),
                ckpt_path=resume,
                weights_only=True,
            )
            seconds = time.perf_counter() - started
            signum = stopped_by_signal(trainer)
            if signum is not None:
                raise TrainingInterrupted("stopped after training, before testing", signum)
            if any(m.alive and m.best_state is None for m in members):  # no validation yet
                for m in members:
                    if m.alive and m.best_state is None:
                        m.improved = True
                        m.best_state = {
                            k: v.detach().clone() for k, v in module.stack.state_of(m.index).items()
                        }
                trainer.save_checkpoint(checkpoint, weights_only=False)
            load_data(datamodule, members[0].composition.data_component, "test")
            _load_best(module, members)
            trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False)
    except BaseException as error:
        interrupted = isinstance(error, (KeyboardInterrupt, SystemExit, TrainingInterrupted))
        for m in members:
            if m.alive:
                with contextlib.suppress(ZooError, OSError):
                    m.run.metrics.flush()
                m.run.fail("interrupted" if interrupted else "failed",
                           f"{type(error).__name__}: {error}")  # fmt: skip
        raise
    outcomes = [_finish(m, trainer, seconds, echo) for m in members]
    checkpoint.unlink(missing_ok=True)  # every member has its own checkpoints now
    with contextlib.suppress(OSError):  # and the group's folders, if nothing else is there
        checkpoint.parent.rmdir()
        checkpoint.parent.parent.rmdir()
    return outcomes


def _load_best(module: FusedClassifier, members: list[Member]) -> None:
    """Put each living member's best weights into the stack, for the test."""
    with torch.no_grad():
        for m in members:
            if m.alive and m.best_state is not None:
                for name, tensor in module.stack.state_of(m.index).items():
                    tensor.copy_(m.best_state[name])


def _finish(m: Member, trainer: Any, seconds: float, echo: Callable[[str], None]) -> dict:
    from zoo.training.diagnostics import SUMMARY_FILE

    outcome: dict[str, Any] = {"act": m.config.act, "seed": m.config.seed,
                               "run_dir": str(m.run.path)}  # fmt: skip
    if not m.alive or not m.rows:
        outcome.update(status="failed", error=m.error or "the run did not finish")
        return outcome
    test = m.rows[-1]
    m.run.metrics.append({**test, "epoch": trainer.current_epoch, "step": trainer.global_step})
    m.diagnostics.write_summary(m.run.path / SUMMARY_FILE)
    result = train_result(
        m.composition, trainer, m.run,
        test_acc=float(test["test_acc"]), test_loss=float(test["test_loss"]),
        train_seconds=round(seconds, 3), checkpoint=str(m.run.best_checkpoint),
        seed=int(m.config.seed), best_val_acc=m.best_score,
    )  # fmt: skip
    m.run.metrics.flush()
    m.run.finish(result.to_dict())
    outcome.update(status="finished", error=None, result=result.to_dict())
    return outcome
