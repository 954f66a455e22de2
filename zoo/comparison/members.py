"""A member of a fused group (:class:`Member`: its configuration, run directory and state) and the
ordinary Lightning checkpoints it gets of its own from each fused checkpoint
(:func:`save_member`): its weights, its slice of the fused optimizer's state, its best score,
what ``zoo train --resume``, ``zoo evaluate`` and ``zoo predict`` read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zoo.runs.config import RunConfig
from zoo.runs.directory import Run
from zoo.training.composition import Composition
from zoo.training.runner import TrainResult

#: What of a fused checkpoint is the group's, not the member's: rebuilt for each member.
GROUP_ENTRIES = ("state_dict", "optimizer_states", "callbacks", "hyper_parameters")


@dataclass
class Member:
    """One run of a fused group: its configuration, run directory and state."""

    index: int
    config: RunConfig
    slot: Path
    composition: Composition
    run: Run | None = None
    seed_row: int = 0
    alive: bool = True
    error: str | None = None
    best_score: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    improved: bool = False
    checkpoint_callback: Any = None
    diagnostics: Any = None
    result: TrainResult | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def module(self) -> Any:
        return self.composition.module

    def describe(self) -> str:
        return f"{self.config.act} seed {self.config.seed}"


def save_member(
    m: Member,
    fused: dict[str, Any],
    *,
    state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    totals: list[torch.Tensor] | None,
    metadata: dict[str, Any],
) -> None:
    """Write member ``m``'s ``last.ckpt`` (and ``best.ckpt`` when it improved) from the fused
    checkpoint ``fused`` being saved, with its own weights ``state`` (its model's state dict),
    ``optimizer_state`` (:func:`slice_optimizer_state`), the group's epoch ``totals`` and the
    checkpoints' ``metadata``: the checkpoint its separate run would have written."""
    from zoo.training.checkpoints import save_atomically

    own = {k: v for k, v in fused.items() if k not in GROUP_ENTRIES}
    own["state_dict"] = {f"model.{k}": v.detach().clone() for k, v in state.items()}
    own["optimizer_states"] = [optimizer_state]
    own["hparams_name"] = "kwargs"
    own["hyper_parameters"] = dict(m.module.hparams)
    own["zoo"] = metadata
    own["zoo_rng"] = {"torch": torch.get_rng_state()}
    own["zoo_epoch_totals"] = {}
    if totals is not None:
        loss_sum, correct, count = (t[m.index].item() for t in totals)
        own["zoo_epoch_totals"] = {"train": {"loss_sum": loss_sum, "correct": int(correct),
                                             "count": int(count)}}  # fmt: skip
    own["callbacks"] = {m.checkpoint_callback.state_key: _callback_state(m)}
    own["zoo_run"] = {"metrics_rows": m.run.metrics.flush()}
    if m.improved:
        save_atomically(own, m.run.best_checkpoint)
        m.improved = False
    save_atomically(own, m.run.last_checkpoint)


def _callback_state(m: Member) -> dict[str, Any]:
    """The member's checkpoint callback's state, its best score and path brought up to date."""
    callback = m.checkpoint_callback
    if m.improved and m.best_score is not None:
        callback.best_model_score = torch.tensor(m.best_score)
        callback.best_model_path = str(m.run.best_checkpoint)
        callback.best_k_models = {callback.best_model_path: callback.best_model_score}
        callback.kth_best_model_path = callback.best_model_path
        callback.kth_value = callback.best_model_score
    if m.best_score is not None:
        callback.current_score = torch.tensor(_last_val_acc(m))
    return callback.state_dict()


def _last_val_acc(m: Member) -> float:
    rows = [r for r in m.run.metrics.rows if "val_acc" in r]
    return float(rows[-1]["val_acc"]) if rows else float(m.best_score or 0.0)


def slice_optimizer_state(
    fused: dict[str, Any], slot: int, positions: list[int], groups: tuple[int, int]
) -> dict[str, Any]:
    """A member's slice of the fused optimizer's state ``fused``, indexed as its own optimizer's:
    its parameters are the fused ones at ``positions`` (in its own optimizer's order), its
    entries row ``slot`` of theirs, its groups the fused ones in range ``groups`` (those made
    for its stack group, with their current settings: a schedule changes ``lr``)."""
    state = {}
    for own_index, fused_index in enumerate(positions):
        entry = fused["state"].get(fused_index)
        if entry is not None:
            state[own_index] = {
                key: value[slot].clone() if torch.is_tensor(value) and value.ndim > 0 else value
                for key, value in entry.items()
            }
    start, end = groups
    param_groups, first = [], 0
    for settings in fused["param_groups"][start:end]:
        count = len(settings["params"])
        param_groups.append({**settings, "params": list(range(first, first + count))})
        first += count
    return {"state": state, "param_groups": param_groups}
