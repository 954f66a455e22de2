"""The ways in to training, as ``zoo`` exports them: :func:`train` (keywords), :func:`run` (a
:class:`~zoo.runs.config.RunConfig`), :func:`resume` (a run directory), and what each returns,
:class:`~zoo.training.runner.TrainResult`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError, RunDamagedError, ZooUsageError
from zoo.plugin.components import DEFAULT_BATCH_SIZE
from zoo.runs.config import RunConfig, field_names, flag
from zoo.runs.files import CONFIG_FILE, DEFAULT_OUTPUT_DIR
from zoo.runs.reading import read_config
from zoo.training.composition import Composition
from zoo.training.runner import RunTraining, TrainResult

__all__ = ["RESUMABLE_CHANGES", "TrainResult", "resume", "run", "train"]

#: Options a resumed run may change: they extend it or say where it runs, not what it computes.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "max_steps", "data_dir", "accelerator", "devices", "strategy", "num_nodes",
     "num_workers", "compile", "precision", "diagnostics", "logger"}
)  # fmt: skip


def train(
    arch: str = "mlp",
    act: str = "relu",
    dataset: str = "mnist",
    *,
    epochs: int = 5,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float | None = None,
    optimizer: str = "adam",
    scheduler: str | None = None,
    warmup_steps: int = 0,
    label_smoothing: float = 0.0,
    gradient_clip: float | None = None,
    accumulate_grad_batches: int = 1,
    early_stopping: int | None = None,
    augment: tuple[str, ...] = (),
    logger: tuple[str, ...] = (),
    seed: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    accelerator: str = "auto",
    devices: int | str = "auto",
    precision: str | None = None,
    max_steps: int = -1,
    compile: bool = False,
    num_workers: int | None = None,
    strategy: str = "auto",
    num_nodes: int = 1,
    diagnostics: bool = False,
    init_weights: str | None = None,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    progress: bool = True,
    trainer_options: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
    resume: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train ``arch`` with activation ``act`` on ``dataset`` and evaluate it on the test split.

    The options before ``output_dir`` are those of :class:`zoo.RunConfig` (see it, or
    ``zoo train --help``); ``zoo.run(config)`` does the same from a configuration. The others:
    ``output_dir`` gets the run directory; ``progress=False`` prints nothing;
    ``trainer_options`` go to ``lightning.Trainer`` as they are; ``callbacks`` are added to the
    Trainer's; ``resume`` continues that run (see :func:`resume`), with the options given here
    that differ from the defaults as changes.
    """
    given = locals()
    config = RunConfig(**{name: given[name] for name in field_names()})
    options = {"progress": progress, "callbacks": callbacks, "trainer_options": trainer_options}
    if resume is not None:
        defaults = RunConfig()
        changes = {k: v for k, v in config.to_dict().items() if getattr(defaults, k) != v}
        return _resume(resume, changes, **options)
    return run(config, output_dir=output_dir, **options)


def resume(
    run_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    trainer_options: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
    **changes: Any,
) -> TrainResult:
    """Continue the run in ``run_dir`` where it stopped, with its configuration, weights,
    optimizer state and position in the data; ``changes`` extend it (``epochs=10``) or move it
    (``accelerator="gpu"``). A finished run with nothing left to train raises
    :class:`RunAlreadyFinished`, which carries its result. ``progress``, ``trainer_options``
    and ``callbacks`` are as for :func:`train`."""
    options = {"progress": progress, "trainer_options": trainer_options, "callbacks": callbacks}
    return _resume(run_dir, changes, **options)


def run(
    config: RunConfig,
    *,
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    progress: bool = True,
    trainer_options: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Train the run ``config`` describes in a new directory under ``output_dir``."""
    training = RunTraining(Composition(config), progress, trainer_options, callbacks)
    return training.start(Path(output_dir))


def _resume(path: str | os.PathLike[str], changes: dict[str, Any], **options: Any) -> TrainResult:
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".ckpt":
        path = path.parent.parent  # a run's checkpoints/last.ckpt names its run
    config = _resumed_config(path, changes)
    return RunTraining(Composition(config, resuming=True), **options).resume(path)


def _resumed_config(path: Path, changes: dict[str, Any]) -> RunConfig:
    """The configuration of the run in ``path`` with ``changes``, each checked: a resumed run
    changes only :data:`RESUMABLE_CHANGES`, and a scheduled one keeps its length."""
    fixed = sorted(set(changes) - RESUMABLE_CHANGES)
    if fixed:
        raise ZooUsageError(
            f"a resumed run keeps its --{fixed[0].replace('_', '-')}; to train another one, "
            f"start a new run from its configuration: zoo train --config {path / 'config.json'}"
        )
    if not (path / CONFIG_FILE).is_file():
        raise ZooUsageError(
            f"cannot resume: {path} is not a run directory (it has no {CONFIG_FILE}); give a "
            "directory that zoo train created (zoo runs DIR lists them)"
        )
    try:
        config = read_config(path)
    except ConfigError as error:
        raise RunDamagedError(
            f"cannot resume {path}: {error}. Repair the file, or start the run again with "
            "zoo train and its options"
        ) from None
    lengthened = sorted({"epochs", "max_steps"} & set(changes))
    if config.scheduler and lengthened and changes[lengthened[0]] != getattr(config, lengthened[0]):
        raise ZooUsageError(
            f"a run with a learning-rate schedule keeps its {flag(lengthened[0])}: its schedule "
            f"({config.scheduler}) spans the steps it was started with; to train longer, start a "
            f"new run: zoo train --config {path / 'config.json'} {flag(lengthened[0])} N"
        )
    return config.replace(**changes)
