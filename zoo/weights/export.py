"""``zoo export``: a run or weights as a directory anyone can load: model.safetensors, a
config.json zoo rebuilds the model from, a model card (README.md), and on request model.onnx,
model.torchscript.pt (torch.jit.trace) and model.pt2 (torch.export), each checked.
The directory is written beside its place and renamed into it whole: never half-written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from zoo.weights.build import count_flops, count_params, load_model
from zoo.weights.card import model_card
from zoo.weights.checkpoint import checkpoint_of, read_run
from zoo.weights.entry import Weights
from zoo.weights.errors import WeightsError, WeightsUsageError
from zoo.weights.files import sha256_of
from zoo.weights.loading import CONFIG_FILE, WEIGHTS_FILE, load_weights

#: The formats ``zoo export --format`` takes; safetensors is always written.
FORMATS = ("safetensors", "onnx", "torchscript", "pt2")


def export_model(
    source: str | os.PathLike[str] | Weights,
    out_dir: str | os.PathLike[str],
    *,
    formats: tuple[str, ...] = ("safetensors",),
    overwrite: bool = False,
) -> Weights:
    """Export a run directory (its best checkpoint), a ``.ckpt`` file, a weights name, an
    exported directory or ``hf-hub:OWNER/REPO`` into ``out_dir``; the exported entry."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise WeightsUsageError(f"unknown export format {unknown[0]!r}: choose from {FORMATS}")
    out = Path(out_dir).expanduser()
    if out.exists() and not (overwrite and out.is_dir()) and (out.is_file() or any(out.iterdir())):
        raise WeightsUsageError(f"{out} exists and is not empty (pass --force to replace it)")
    run_dir = None
    if not isinstance(source, Weights) and checkpoint_of(Path(source).expanduser()) is not None:
        entry, tensors = read_run(Path(source).expanduser())
        run_dir = checkpoint_of(Path(source).expanduser()).parent.parent  # type: ignore[union-attr]
    else:
        model, entry = load_weights(source)
        tensors = model.state_dict()
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        entry = _write(entry, tensors, partial, formats, run_dir)
        if out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(partial)
    return replace(entry, location=str(out / WEIGHTS_FILE))


def _write(
    entry: Weights,
    tensors: dict[str, Any],
    directory: Path,
    formats: tuple[str, ...],
    run_dir: Path | None,
) -> Weights:
    """Write the files into ``directory``: the model is rebuilt from what was written and
    measured, so the config describes the file exactly."""
    from safetensors.torch import save_file

    weights = directory / WEIGHTS_FILE
    try:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(weights))
    except Exception as error:  # tensors sharing memory, a tensor subclass
        raise WeightsError(f"cannot save {entry.name} as safetensors: {error}") from error
    entry = replace(
        entry,
        location=WEIGHTS_FILE,
        sha256=sha256_of(weights),
        file_size=weights.stat().st_size,
    )
    model = load_model(entry, weights)
    entry = replace(
        entry,
        num_params=count_params(model),
        flops=count_flops(model, entry.dataset.input_shape) or None,
    )
    config = {**entry.to_dict(), "library": "lightning-zoo"}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (directory / "README.md").write_text(model_card(entry, run_dir), encoding="utf-8")
    if "onnx" in formats:
        from zoo.weights.onnx import export_onnx

        export_onnx(model, entry, directory / "model.onnx")
    for fmt in ("torchscript", "pt2"):
        if fmt in formats:
            from zoo.weights.traced import export_traced

            export_traced(model, entry, directory, fmt)
    return entry
