"""The Trainer parts ``zoo.train`` uses in place of Lightning's defaults, none of which costs
anything on a step that it need not: the checkpoint callback (:class:`EpochCheckpoint`), the
progress bar (:class:`ThrottledProgressBar`) and the profiler (:class:`NullProfiler`).

What of this relies on Lightning's internals is applied through :mod:`zoo._compat.speedups` (and is
plain Lightning where that applies nothing). The run's safety callbacks are in
:mod:`zoo.training.guard`.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.profilers import PassThroughProfiler

from zoo._compat import speedups as speedups


class NullProfiler(PassThroughProfiler):
    """Lightning's default profiler (which profiles nothing), without its cost: the default
    builds a generator-based context manager around each of the dozens of hooks it calls per
    step. Pass ``profiler="simple"`` (or any other) to the Trainer to profile."""

    _context = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext[None]:  # type: ignore[override]
        return self._context


@speedups.apply_to_progress_bar
class ThrottledProgressBar(TQDMProgressBar):
    """Lightning's tqdm progress bar, redrawn at most ``per_second`` times a second (and at the end
    of every epoch), however many steps a second run: a redraw costs more than a small model's
    step, and Lightning's bar redraws every ``refresh_rate`` steps, whatever their speed.
    (Where :mod:`zoo._compat.speedups` does not apply ``throttled_redraws``, it is Lightning's
    bar.)"""

    def __init__(self, per_second: float = 10.0) -> None:
        super().__init__()
        self.interval = 1.0 / per_second

    # Lightning's bars write to sys.stdout, read when each bar is made; stdout holds only a
    # run's summary (or its --json), so each bar is made while sys.stdout is stderr.
    def init_sanity_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_sanity_tqdm()

    def init_train_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()

    def init_test_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_test_tqdm()

    def init_predict_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_predict_tqdm()


@speedups.apply_to_checkpoint
class EpochCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that saves after validation and at the end of epochs only (it takes no
    ``every_n_train_steps`` or ``train_time_interval``), so that it costs nothing per step; its
    state key is ``ModelCheckpoint``'s, so that checkpoints resume with either class."""

    def __init__(self, **kwargs: Any) -> None:
        for option in ("every_n_train_steps", "train_time_interval"):
            if kwargs.get(option):
                raise ValueError(f"EpochCheckpoint does not save by {option}; use ModelCheckpoint")
        super().__init__(**kwargs)

    @property
    def state_key(self) -> str:
        """``ModelCheckpoint``'s key for these settings (Lightning's names the class)."""
        key = super().state_key
        return ModelCheckpoint.__qualname__ + key.removeprefix(type(self).__qualname__)


def best_checkpoint(run: Any) -> EpochCheckpoint:
    """The checkpoint callback of a run (``run``: a :class:`zoo.runs.directory.Run`): its
    ``checkpoints/best.ckpt``, the best ``val_acc`` so far, saved after validation."""
    return EpochCheckpoint(
        dirpath=run.checkpoint_dir,
        filename="best",
        monitor="val_acc",
        mode="max",
        auto_insert_metric_name=False,
        enable_version_counter=False,  # best.ckpt is always the current best one
        save_on_train_epoch_end=False,  # after validation, before LastCheckpoint saves
    )
