"""Lightning's internals that exact resume reads, each read checked with the versions in
:data:`CHECKED_WITH` (``tests/training/test_lightning_internals.py`` checks that each still holds
in a real fit). Unlike the internals patched for speed in :mod:`zoo._compat.speedups`, which are
optional, these reads have no plain fallback: exact resume needs them.

A resumed run must continue its epoch exactly where it stopped: the data order of the epoch
and how many of its batches were trained. Lightning keeps both in its loop progress counters,
which it saves in every checkpoint and restores before it asks for the training DataLoader.
"""

from __future__ import annotations

from typing import Any

#: Lightning versions these reads were written against.
CHECKED_WITH = ("2.5", "2.6")


def epoch_in_progress(trainer: Any) -> int:
    """The epoch the fit loop runs next (or is in): what it passes to ``set_epoch``."""
    return int(trainer.fit_loop.epoch_progress.current.processed)


def batches_trained_in_epoch(trainer: Any) -> int:
    """The training batches of the current epoch whose optimizer step has been taken."""
    return int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
