"""The one Trainer builder: a run's configuration -> ``lightning.Trainer``, with the callbacks,
logger and settings each caller adds (``zoo train``, the fused groups of ``zoo compare``, and the
check of the device settings before anything loads); and the quieting of what Lightning prints
on every run."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from zoo.errors import ZooUsageError
from zoo.runs.config import RunConfig, flag

#: The device settings a Trainer is checked with before the data loads.
DEVICE_SETTINGS = ("accelerator", "devices", "strategy", "num_nodes", "precision")


def build_trainer(
    config: RunConfig,
    *,
    callbacks: Sequence[Any] = (),
    logger: Any = False,
    progress: bool = False,
    root: str | Path | None = None,
    guard: str | Path | None = None,
    **options: Any,
) -> Any:
    """The ``lightning.Trainer`` of the run ``config``: its epochs, steps, devices, precision and
    recipe settings, zoo's checkpoint IO and profiler, ``callbacks`` then the progress bar (with
    ``progress``) then, with ``guard`` (the checkpoint a signal saves), the run's signal guard,
    last, so that a step's hooks have all run when a signal stops the run there. ``options``
    go to the Trainer as they are, over these."""
    import lightning as L

    from zoo.training.callbacks import NullProfiler, ThrottledProgressBar
    from zoo.training.checkpoints import AtomicCheckpointIO
    from zoo.training.guard import RunGuard

    last = [ThrottledProgressBar()] if progress else []
    if guard is not None:
        last.append(RunGuard(Path(guard)))
    settings: dict[str, Any] = {
        "max_epochs": config.epochs,
        "max_steps": config.max_steps,
        **{name: getattr(config, name) for name in DEVICE_SETTINGS},
        "logger": logger,
        "callbacks": [*callbacks, *last],
        "default_root_dir": root,
        "plugins": [AtomicCheckpointIO()],
        "enable_progress_bar": progress,
        "enable_model_summary": progress,
        "profiler": NullProfiler(),
        "gradient_clip_val": config.gradient_clip,
        "accumulate_grad_batches": config.accumulate_grad_batches,
        **options,
    }
    with quiet_lightning(progress):
        return L.Trainer(**settings)


def check_trainer_settings(config: RunConfig) -> None:
    """Build the run's Trainer once, without callbacks or checkpoints, so that a bad device
    setting fails before the data loads: a :class:`ZooUsageError` naming the settings given."""
    try:
        build_trainer(config, enable_checkpointing=False)
    except Exception as error:  # Lightning says what is wrong: a misconfiguration, a
        # missing package (torch_xla), a bad device index
        given = [
            f"{flag(name)} {getattr(config, name)}"
            for name in DEVICE_SETTINGS
            if getattr(config, name) != getattr(RunConfig, name)
        ]
        where = f" ({' '.join(given)})" if given else ""
        raise ZooUsageError(f"invalid trainer setting{where}: {error}") from None


class _DropNoise(logging.Filter):
    """Lightning's tips (lines starting with 💡), and its note on each checkpoint saved without
    ``weights_only``: zoo's checkpoints are full on purpose (they resume), and they are always
    read with ``weights_only=True``, which the note's wording seems to deny."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("💡") or message.startswith("`weights_only` was not set"))


@contextlib.contextmanager
def quiet_lightning(progress: bool) -> Iterator[None]:
    """Drop the hints Lightning prints on every run; with ``progress=False``, its info too."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    handlers = [handler for logger in loggers for handler in logger.handlers]
    noise = _DropNoise()
    with warnings.catch_warnings():
        # Our loaders are in-process on purpose; Lightning's hint to add workers is noise here.
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated.*")
        # A resumed run's checkpoint directory holds its checkpoints, which it replaces.
        warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")
        # With --max-steps inside the first epoch there is no val_acc yet; we handle that.
        warnings.filterwarnings("ignore", message=r".*could not find the monitored key.*")
        # Batches are augmented by the module's hook, whatever the datamodule does.
        warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer`.*")
        # Epoch metrics are always logged, so short epochs lose nothing.
        warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
        for handler in handlers:
            handler.addFilter(noise)
        if not progress:
            for logger in loggers:
                logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(noise)
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
