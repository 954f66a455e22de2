"""The composition of a fused run: several :class:`~zoo.runs.config.RunConfig` (one per member,
differing only in activation and seed) -> the members, built as ``zoo train`` builds a run
(:class:`zoo.training.composition._Composition`) -> one
:class:`~zoo.comparison.fused.FusedClassifier` -> one Trainer,
and each member's run directory in its own output directory."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch

from zoo.comparison.fused import FusedClassifier, Member, SeedBatches
from zoo.errors import FusionUnavailable, TrainingInterrupted, ZooError
from zoo.runs.config import RunConfig
from zoo.runs.directory import Run
from zoo.training.composition import TrainResult, _Composition, _quiet_lightning, _versions

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
    checkpoint file: if it holds these runs, stopped before the end, they go on from it.
    Returns one outcome per run: ``status`` (``finished`` or ``failed``),
    ``run_dir``, ``error`` and, when finished, ``result`` (``zoo train --json``'s object)."""
    echo = echo or (lambda message: None)
    members, datamodule = _members(configs, output_dirs)
    seeds = list(dict.fromkeys(int(m.config.seed) for m in members))
    train_loaders = []
    for seed in seeds:
        torch.manual_seed(seed)  # the loader's order is seeded from the global seed
        train_loaders.append(datamodule.train_dataloader())
    checkpoint = Path(checkpoint)
    saved = _resumable(checkpoint, members)
    with contextlib.ExitStack() as stack:
        started = datetime.now().isoformat(timespec="seconds")
        for m in members:
            if saved is None:
                m.run = stack.enter_context(_create_run(m, started, len(members)))
            else:
                m.run = stack.enter_context(_reopen_run(m, saved["members"][m.index]))
            m.checkpoint_callback = _checkpoint_callback(m.run)
        if saved is not None:
            echo(f"resuming the fused run from {checkpoint}")
        metadata = {"components": members[0].composition._components(), "versions": _versions()}
        module = FusedClassifier(members, seeds, metadata)
        for m in members:
            m.run.update(fused={**m.run.record["fused"], "engine": ENGINES[module.stack.fused]})
        resume = checkpoint if saved is not None else None
        return _fit(module, members, datamodule, train_loaders, checkpoint, resume, progress, echo)


def _resumable(checkpoint: Path, members: Sequence[Member]) -> dict[str, Any] | None:
    """What the fused checkpoint says of its members, if it is one of these members (in
    these output directories) that stopped before the end; else None (start anew)."""
    if not checkpoint.is_file():
        return None
    try:  # a fused checkpoint is not a model's: read it as Lightning will
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True).get("zoo_fused")
    except Exception:  # damaged or not ours: start anew
        return None
    if not isinstance(saved, dict):
        return None
    if saved.get("slots") != [str(m.slot) for m in members]:
        return None
    for record in saved["members"]:
        if not (Path(record["run_dir"]) / "config.json").is_file():
            return None
    return saved


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


def _members(
    configs: Sequence[RunConfig], output_dirs: Sequence[str | Path]
) -> tuple[list[Member], Any]:
    """The members, each built as ``zoo train`` builds its run, over one datamodule."""
    from zoo.data.vision import load_data

    compositions = [_Composition(config, progress=False) for config in configs]
    for composition in compositions:
        composition._check()
    first = compositions[0]
    first._build_datamodule()
    seeds = list(dict.fromkeys(int(c.seed) for c in configs))
    members = []
    for index, (composition, out) in enumerate(zip(compositions, output_dirs, strict=True)):
        composition.datamodule = first.datamodule
        composition._build_module(int(composition.config.seed))
        row = seeds.index(int(composition.config.seed))
        members.append(Member(index, composition.config, Path(out), composition, seed_row=row))
    load_data(first.datamodule, first.data_component, "fit")
    if not getattr(first.datamodule, "in_memory", False):
        raise FusionUnavailable(
            f"{first.data_spec.name} is not served from memory (the in-memory data path), so "
            "each member's data order cannot be drawn as its own run draws it"
        )
    for composition in compositions:
        composition._check_recipe()
    return members, first.datamodule


@contextlib.contextmanager
def _create_run(m: Member, started: str, count: int) -> Any:
    composition = m.composition
    record = composition._record(int(m.config.seed), started=started)
    record["fused"] = {"members": count, "index": m.index}
    specs = (composition.arch_spec, composition.act_spec, composition.data_spec)
    names = "-".join(re.sub(r"[^A-Za-z0-9]+", "_", s.name).strip("_") for s in specs)
    run = Run.create(m.slot, names, record)
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    with run:
        yield run


def _checkpoint_callback(run: Run) -> Any:
    """The checkpoint callback a separate run would have: its state goes into the member's
    checkpoints, so that ``zoo train --resume`` carries on its best score."""
    from zoo.training.callbacks import EpochCheckpoint

    return EpochCheckpoint(
        dirpath=run.checkpoint_dir, filename="best", monitor="val_acc", mode="max",
        auto_insert_metric_name=False, enable_version_counter=False,
        save_on_train_epoch_end=False,
    )  # fmt: skip


class MemberDiagnostics(L.Callback):
    """Each living member's diagnostics (:class:`zoo.training.diagnostics.ActivationDiagnostics`),
    probed
    on its own model when a separate run probes it: at the start, every ``interval`` steps, at
    each epoch's end and at the end of training."""

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
    xs, ys, count = [], [], 0
    with torch.random.fork_rng(devices=[]):
        for x, y in datamodule.val_dataloader():
            xs.append(x)
            ys.append(y)
            count += len(x)
            if count >= size:
                break
    return torch.cat(xs)[:size], torch.cat(ys)[:size]


def _trainer(config: RunConfig, checkpoint: Path, callbacks: list[Any], progress: bool) -> Any:
    from zoo.training.callbacks import NullProfiler, ThrottledProgressBar
    from zoo.training.checkpoints import AtomicCheckpointIO
    from zoo.training.guard import LastCheckpoint, RunGuard

    with _quiet_lightning(progress):
        return L.Trainer(
            max_epochs=config.epochs,
            max_steps=config.max_steps,
            accelerator=config.accelerator,
            devices=1,
            precision=config.precision,  # type: ignore[arg-type]
            logger=False,
            callbacks=[
                LastCheckpoint(checkpoint),
                *callbacks,
                *([ThrottledProgressBar()] if progress else []),
                RunGuard(checkpoint),
            ],
            default_root_dir=checkpoint.parent,
            plugins=[AtomicCheckpointIO()],
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            accumulate_grad_batches=config.accumulate_grad_batches,
            profiler=NullProfiler(),
        )


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
    from zoo.data.vision import load_data
    from zoo.training.diagnostics import DEFAULT_PROBE_SIZE

    config = members[0].config
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [MemberDiagnostics(members, _probe(datamodule, DEFAULT_PROBE_SIZE))]
    trainer = _trainer(config, checkpoint, callbacks, progress)
    batches = SeedBatches(train_loaders, lambda: trainer)
    started = time.perf_counter()
    try:
        with _quiet_lightning(progress):
            trainer.fit(
                module,
                train_dataloaders=batches,
                val_dataloaders=datamodule.val_dataloader(),
                ckpt_path=resume,
                weights_only=True,
            )
            seconds = time.perf_counter() - started
            guard = next(cb for cb in trainer.callbacks if type(cb).__name__ == "RunGuard")
            if guard.signum is not None:
                raise TrainingInterrupted("stopped after training, before testing", guard.signum)
            if any(m.alive and m.best_state is None for m in members):  # no validation yet
                for m in members:
                    if m.alive and m.best_state is None:
                        m.improved = True
                        m.best_state = {
                            k: v.detach().clone() for k, v in module.stack.state_of(m.index).items()
                        }
                trainer.save_checkpoint(checkpoint)
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
    c = m.composition
    result = TrainResult(
        test_acc=float(test["test_acc"]),
        test_loss=float(test["test_loss"]),
        train_seconds=round(seconds, 3),
        run_dir=str(m.run.path),
        checkpoint=str(m.run.best_checkpoint),
        arch=str(c.arch_spec),
        act=str(c.act_spec),
        dataset=str(c.data_spec),
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        seed=int(m.config.seed),
        best_val_acc=m.best_score,
        accelerator=type(trainer.accelerator).__name__.removesuffix("Accelerator").lower(),
    )
    m.run.metrics.flush()
    m.run.finish(result.to_dict())
    outcome.update(status="finished", error=None, result=result.to_dict())
    return outcome
