"""Checkpoints: written atomically, read only as plain data, models rebuilt from the registry.

Nothing named in a checkpoint is ever imported or called: ``torch.load`` runs with
``weights_only=True`` (passed explicitly, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn it
off), the hyperparameters must be plain data with known keys, and the model is rebuilt by looking
its components up by name in the registry. Saving goes through :class:`AtomicCheckpointIO`.

This module imports torch and Lightning; import it where they are needed anyway.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from zoo.errors import CheckpointError, UnknownComponentError, ZooUsageError
from zoo.plugin.loading import missing_component_hint
from zoo.runs.files import replace_atomically
from zoo.training.module import ZooClassifier

#: The hyperparameters a lightning-zoo checkpoint may carry; any other key is refused.
HPARAM_KEYS = frozenset(
    {"arch", "act", "input_shape", "num_classes", "optimizer", "lr", "dataset", "class_names",
     "scheduler", "warmup_steps", "label_smoothing", "augment", "seed"}
)  # fmt: skip
#: Keys that make Lightning or jsonargparse import and call things; refused by name.
_INSTANTIATION_KEYS = frozenset({"class_path", "init_args", "_target_"})

# Bounds on the hyperparameters a model is built from: a damaged or hostile checkpoint must not
# make lightning-zoo allocate a model of any size it names.
#: At most this many input channels.
MAX_CHANNELS = 4096
#: Input height and width at most this.
MAX_INPUT_SIDE = 4096
#: At most this many values per input (channels x height x width): 4 x 4096 x 4096.
MAX_INPUT_VALUES = 2**26
#: At most this many classes.
MAX_CLASSES = 100_000


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file, or the best (else last) checkpoint of a run directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            candidate = path / "checkpoints" / name
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"run directory {path} has no checkpoints/best.ckpt or last.ckpt")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def resolve_resume(path: str | os.PathLike[str]) -> Path:
    """The checkpoint to resume from: a file, or a run directory's ``checkpoints/last.ckpt``."""
    path = Path(path).expanduser()
    if path.is_dir():
        last = path / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise CheckpointError(
                f"cannot resume {path}: it has no checkpoints/last.ckpt (nothing was saved yet); "
                "start it again instead"
            )
        return last
    if not path.is_file():
        raise CheckpointError(f"cannot resume: no checkpoint or run directory at {path}")
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint file as plain data and check its hyperparameters.

    Raises :class:`CheckpointError`, naming the file, for anything else: an empty, truncated or
    garbage file, a pickle that wants to import or call something, unknown hyperparameters.
    """
    path = resolve_checkpoint(path)
    checkpoint = _load_file(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no state_dict)")
    check_hyperparameters(checkpoint.get("hyper_parameters"), path)
    return checkpoint


def read_resume_checkpoints(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint a run resumes from (``checkpoints/last.ckpt``), read as plain data once
    ``checkpoints/best.ckpt``, if there is one, is known to read too: training on would
    replace a damaged best checkpoint with the next epoch's model, better or not. A
    :class:`CheckpointError` names a damaged one and what to do."""
    checkpoints = Path(run_dir) / "checkpoints"
    last = read_checkpoint(checkpoints / "last.ckpt")
    best = checkpoints / "best.ckpt"
    if best.is_file():
        try:
            read_checkpoint(best)
        except CheckpointError as error:
            raise CheckpointError(
                f"{error}; resuming would replace it with the next epoch's model, better or "
                "not, so nothing was changed: restore it from a copy, or start the run again "
                f"with zoo train --config {Path(run_dir) / 'config.json'}"
            ) from error
    return last


def _load_file(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; every failure is a CheckpointError."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was never written")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle and storage errors from a damaged file
        # torch's advice to load the file without its protection is never passed on.
        refused = _refused_code(str(error)) if isinstance(error, pickle.UnpicklingError) else None
        if refused is not None:
            raise CheckpointError(
                f"refused to load {path}: it asks to run code when it is loaded ({refused}), and "
                "lightning-zoo loads checkpoints as plain data only, so nothing in it was run; "
                "use a checkpoint from a source you trust, or train the model again"
            ) from error
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is truncated, corrupt or not a checkpoint "
            f"({type(error).__name__}: {_torch_reason(error)})"
        ) from error
    return checkpoint


#: How torch's weights-only unpickler words a refusal to import or call something, from torch
#: 2.4 to 2.14 ("Unsupported global: GLOBAL x.y", "Trying to load unsupported GLOBAL x.y whose
#: module x is blocked", "... unrecognized function f", "... allowlisted ..., but got C").
_REFUSALS = (
    r"unsupported (?:global:? )?GLOBAL ([^\s]+)",
    r"unrecognized function ([^\n]+?)(?: which belongs|\.?$)",
    r"allowlisted via `add_safe_globals`,? but got ([^\n]+)",
)


def _refused_code(message: str) -> str | None:
    """What torch refused to import or call, if ``message`` is such a refusal."""
    for pattern in _REFUSALS:
        found = re.search(pattern, message, re.IGNORECASE | re.MULTILINE)
        if found:
            return found.group(1).strip().rstrip(".")
    return None


def _torch_reason(error: BaseException) -> str:
    """torch's reason for a failed load, without its advice on loading the file unprotected."""
    lines = [line.strip() for line in str(error).splitlines()]
    advice = ("weights_only", "weights only load failed", "trusted source", "add_safe_globals",
              "check the documentation", "do those steps only")  # fmt: skip
    useful = [line for line in lines if line and not any(a in line.lower() for a in advice)]
    detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(error))
    if detail and "weights_only" not in detail.group(1):
        return detail.group(1).strip()
    return useful[0].removeprefix("WeightsUnpickler error:").strip() if useful else "unreadable"


def check_hyperparameters(hparams: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Hyperparameters must be a dict of known keys with plain-data values, each in its range
    (:data:`MAX_CHANNELS`, :data:`MAX_INPUT_SIDE`, :data:`MAX_INPUT_VALUES`, :data:`MAX_CLASSES`).
    """
    if not isinstance(hparams, Mapping):
        raise CheckpointError(f"{path} has no lightning-zoo hyperparameters")
    for key, value in hparams.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: hyperparameter key {key!r} is not a string")
        if key.startswith("_") or key in _INSTANTIATION_KEYS:
            raise CheckpointError(
                f"refused to load {path}: hyperparameter {key!r} asks for an object to be "
                "instantiated; lightning-zoo rebuilds models from registered names only"
            )
        if key not in HPARAM_KEYS:
            raise CheckpointError(f"{path}: unexpected hyperparameter {key!r}")
        if not _is_plain(value):
            raise CheckpointError(f"{path}: hyperparameter {key!r} is not plain data")
    for key in ("arch", "act"):
        if not isinstance(hparams.get(key), str):
            raise CheckpointError(f"{path}: hyperparameter {key!r} must be a component spec")
    for key, problem in _range_problems(hparams):
        if key not in hparams:
            raise CheckpointError(f"{path}: hyperparameter {key!r} is missing; it {problem}")
        value = _short_repr(hparams[key])
        raise CheckpointError(f"{path}: hyperparameter {key!r} {problem}, not {value}")
    return dict(hparams)


def _range_problems(hparams: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, what it must be)`` for each hyperparameter outside its range, in key order."""
    problems = []
    shape = hparams.get("input_shape")
    if not (
        isinstance(shape, (list, tuple))
        and len(shape) == 3
        and all(_is_int(n) and n >= 1 for n in shape)
        and shape[0] <= MAX_CHANNELS
        and max(shape[1:]) <= MAX_INPUT_SIDE
        and math.prod(shape) <= MAX_INPUT_VALUES
    ):
        problems.append(
            (
                "input_shape",
                f"must be [channels, height, width]: positive integers, at most {MAX_CHANNELS} "
                f"channels, sides at most {MAX_INPUT_SIDE}, at most {MAX_INPUT_VALUES} values",
            )
        )
    classes = hparams.get("num_classes")
    if not (_is_int(classes) and 1 <= classes <= MAX_CLASSES):
        problems.append(("num_classes", f"must be an integer from 1 to {MAX_CLASSES}"))
    names = hparams.get("class_names")
    if names is not None and not (
        isinstance(names, (list, tuple))
        and all(isinstance(name, str) for name in names)
        and len(names) == classes
    ):
        problems.append(("class_names", f"must be absent or a list of {classes} strings"))
    lr = hparams.get("lr")
    if lr is not None and not (
        isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0
    ):
        problems.append(("lr", "must be absent or a finite positive number"))
    if not isinstance(hparams.get("optimizer", "adam"), str):
        problems.append(("optimizer", "must be an optimizer name"))
    if not isinstance(hparams.get("dataset"), (str, type(None))):
        problems.append(("dataset", "must be absent or a dataset spec"))
    return problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _is_plain(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def load_model(path: str | os.PathLike[str]) -> ZooClassifier:
    """Rebuild the model of a checkpoint (or run directory) from the registry, in eval mode."""
    checkpoint = read_checkpoint(path)
    source = resolve_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    try:
        module = ZooClassifier(**hparams)
    except UnknownComponentError as error:
        raise CheckpointError(_missing_component(error, checkpoint, source)) from error
    except ZooUsageError as error:
        raise CheckpointError(f"{source}: cannot rebuild its model: {error}") from error
    try:
        module.load_state_dict(checkpoint["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"{source}: its weights do not fit the model {hparams['arch']!r} ({_first_line(error)})"
        ) from error
    return module.eval()


def _missing_component(
    error: UnknownComponentError, checkpoint: Mapping[str, Any], source: Path
) -> str:
    origins = (checkpoint.get("zoo") or {}).get("components") or {}
    key = {"activation": "act", "architecture": "arch"}.get(error.kind, error.kind)
    origin = origins.get(key)
    if not isinstance(origin, Mapping):  # a recipe component: optimizer, augmentation[0], ...
        named = [o for o in origins.values() if isinstance(o, Mapping)]
        origin = next((o for o in named if o.get("name") == error.name), None)
    hint = missing_component_hint(error.kind, error.name, origin)
    where = f" {hint}" if hint else ""
    return f"{source} needs {error.kind} {error.name!r}, which no loaded plugin provides.{where}"


def save_atomically(data: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one at ``path``, never a partial
    one; the temporary name does not end in ``.ckpt``, so no loader picks it up. A failed write
    (disk full, file too large) raises :class:`CheckpointError` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace_atomically(path, lambda file: torch.save(data, file))
    except (OSError, RuntimeError) as error:  # torch's zip writer reports a failed write so
        reason = getattr(error, "strerror", None) or _first_line(error)
        raise CheckpointError(
            f"could not write checkpoint {path}: {reason}; "
            "the previous checkpoint there, if any, is unchanged"
        ) from error


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, writing atomically and reading with ``weights_only=True``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        save_atomically(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        # Lightning also loads plain weight files this way (ddp_spawn hands weights back in
        # one), so only a full checkpoint must carry lightning-zoo's hyperparameters.
        checkpoint = _load_file(Path(path))
        if isinstance(checkpoint, dict) and "hyper_parameters" in checkpoint:
            check_hyperparameters(checkpoint["hyper_parameters"], path)
        return checkpoint
