"""A training run as weights: its best checkpoint read as plain data (``torch.load`` with
``weights_only=True``, no Lightning), its config and results as the entry's command and metrics."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.weights.entry import Weights, from_dict
from zoo.weights.errors import WeightsError, WeightsUsageError

#: The options of ``zoo train`` a command line leaves out when they have these values.
_DEFAULTS: dict[str, Any] = {
    "data_dir": None,
    "logger": [],
    "accelerator": "auto",
    "devices": "auto",
    "strategy": "auto",
    "num_nodes": 1,
    "num_workers": None,
    "diagnostics": False,
    "compile": False,
    "precision": None,
    "max_steps": -1,
    "warmup_steps": 0,
    "label_smoothing": 0.0,
    "accumulate_grad_batches": 1,
}


def checkpoint_of(path: Path) -> Path | None:
    """The checkpoint file a run directory or a ``.ckpt`` path names; None if it names none."""
    if path.is_file() and path.suffix == ".ckpt":
        return path
    for name in ("best.ckpt", "last.ckpt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    return None


def read_run(path: Path) -> tuple[Weights, dict[str, Any]]:
    """The entry (no location yet) and the model's tensors of a run directory or checkpoint."""
    checkpoint = checkpoint_of(path)
    if checkpoint is None:
        raise WeightsUsageError(f"{path} is not a run directory or checkpoint")
    data = _load(checkpoint)
    hparams = data.get("hyper_parameters")
    state = data.get("state_dict")
    if not isinstance(hparams, Mapping) or not isinstance(state, Mapping):
        raise WeightsError(f"{checkpoint} is not a lightning-zoo checkpoint")
    tensors = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    run_dir = checkpoint.parent.parent
    config = _json(run_dir / "config.json").get("config") or {}
    results = _json(run_dir / "results.json")
    metrics = {
        key: float(results[key])
        for key in ("test_acc", "test_loss")
        if checkpoint.name == "best.ckpt" and isinstance(results.get(key), (int, float))
    }
    entry = from_dict(
        {
            "name": _name(hparams),
            "arch": hparams.get("arch"),
            "act": hparams.get("act"),
            "dataset": _dataset(hparams),
            "location": "model.safetensors",
            "metrics": metrics,
            "command": train_command(config) if config else None,
            "summary": f"trained by lightning-zoo in run {run_dir.name}",
        },
        str(checkpoint),
    )
    return entry, tensors


def _load(checkpoint: Path) -> dict[str, Any]:
    import torch

    try:
        data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, garbage, or a pickle asking for code
        reason = " ".join(str(error).split())[:200]
        raise WeightsError(
            f"cannot read checkpoint {checkpoint} as plain data: {reason}"
        ) from error
    if not isinstance(data, dict):
        raise WeightsError(f"{checkpoint} is not a lightning-zoo checkpoint")
    return data


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _name(hparams: Mapping[str, Any]) -> str:
    parts = [str(hparams.get(key) or "model").split(":")[0] for key in ("arch", "act", "dataset")]
    cleaned = ["".join(c if c.isalnum() else "-" for c in part).strip("-") for part in parts]
    return f"{cleaned[0]}-{cleaned[1]}.{cleaned[2]}"


def _dataset(hparams: Mapping[str, Any]) -> dict[str, Any]:
    spec = hparams.get("dataset")
    info: dict[str, Any] = {
        "name": spec,
        "input_shape": hparams.get("input_shape"),
        "num_classes": hparams.get("num_classes"),
        "class_names": hparams.get("class_names"),
    }
    if isinstance(spec, str):
        info.update(normalisation(spec))
    return info


def normalisation(spec: str) -> dict[str, Any]:
    """The mean and std the dataset ``spec`` declares (its datamodule is made, no data read);
    empty if it cannot be made here (its plugin is missing)."""
    from zoo.plugin.components import create_datamodule

    try:
        datamodule = create_datamodule(spec)
    except Exception:  # the dataset's plugin is not installed here: export without it
        return {}
    mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
    if mean is None or std is None:
        return {}
    return {"mean": [float(m) for m in mean], "std": [float(s) for s in std]}


def train_command(config: Mapping[str, Any]) -> str:
    """The ``zoo train`` command line that a run's config describes."""
    words = ["zoo", "train"]
    for key, value in config.items():
        if key == "data_dir" or value in (None, False) or _DEFAULTS.get(key, object()) == value:
            continue
        option = "--" + key.replace("_", "-")
        if value is True:
            words.append(option)
        elif isinstance(value, list):
            for item in value:
                words += [option, str(item)]
        else:
            words += [option, str(value)]
    return shlex.join(words)
