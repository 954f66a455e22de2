"""Build a model from a weights entry and its safetensors file: the tensors' names and shapes are
checked against a model built on the meta device before anything is allocated or read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ComponentSpecError, UnknownComponentError
from zoo.plugin.components import create_model as create_architecture
from zoo.weights.entry import Weights
from zoo.weights.errors import WeightsError

if TYPE_CHECKING:
    from torch import nn


def file_shapes(path: Path, name: str) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in a safetensors file, read from its header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            return {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}  # noqa: SIM118
    except Exception as error:  # SafetensorError, a truncated header, not a file
        raise WeightsError(
            f"weights {name}: {path} is not a safetensors file ({' '.join(str(error).split())})"
        ) from error


def architecture(entry: Weights, num_classes: int | None = None, meta: bool = False) -> nn.Module:
    """The entry's architecture with its activation, fresh (on the meta device if ``meta``);
    an architecture or activation no plugin provides is a :class:`WeightsError`."""
    import torch

    classes = num_classes or entry.dataset.num_classes
    try:
        with torch.device("meta") if meta else torch.device("cpu"):
            return create_architecture(
                entry.arch,
                act=entry.act,
                input_shape=entry.dataset.input_shape,
                num_classes=classes,
            )
    except (UnknownComponentError, ComponentSpecError) as error:
        raise WeightsError(f"weights {entry.name} cannot be built: {error}") from error


def mismatches(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], name: str
) -> list[str]:
    """The keys whose shapes differ; :class:`WeightsError` for tensors missing or extra."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        what = (
            f"lacks {_some(missing)}" if missing else f"has tensors the model lacks: {_some(extra)}"
        )
        raise WeightsError(f"weights {name} do not fit the architecture: the file {what}")
    return [key for key in expected if expected[key] != found[key]]


def load_model(entry: Weights, path: Path, num_classes: int | None = None) -> nn.Module:
    """The entry's model with the file's tensors, in eval mode. With ``num_classes`` other than
    the entry's, the head (the tensors sized by the number of classes) starts fresh."""
    from safetensors.torch import load_file

    found = file_shapes(path, entry.name)
    new_head = num_classes is not None and num_classes != entry.dataset.num_classes
    try:
        skeleton = architecture(entry, num_classes, meta=True)
        expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    except WeightsError:
        raise
    except Exception:  # an architecture that cannot be built on the meta device
        expected = None
    if expected is not None:
        differ = mismatches(expected, found, entry.name)
        if differ and not (new_head and _is_head(differ, expected, found, entry)):
            key = differ[0]
            raise WeightsError(
                f"weights {entry.name} do not fit the architecture: tensor {key!r} has shape "
                f"{list(found[key])} in the file, the model {list(expected[key])}"
                + (f" ({len(differ) - 1} more differ)" if len(differ) > 1 else "")
            )
    model = architecture(entry, num_classes)
    state = load_file(str(path))
    _load_state(model, state, entry, skip_head=new_head)
    return model.eval()


def _is_head(differ: list[str], expected: dict, found: dict, entry: Weights) -> bool:
    classes = entry.dataset.num_classes
    return all(
        found[k] and found[k][0] == classes and expected[k][1:] == found[k][1:] for k in differ
    )


def _load_state(model: Any, state: dict[str, Any], entry: Weights, skip_head: bool) -> None:
    if skip_head:
        own = model.state_dict()
        state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    try:
        model.load_state_dict(state, strict=not skip_head)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:2]) or first[0]
        raise WeightsError(f"weights {entry.name} do not fit the architecture: {detail}") from error


def _some(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def count_params(model: nn.Module) -> int:
    """The number of parameters (buffers not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations for one image, as :class:`torch.utils.flop_counter.
    FlopCounterMode` counts them (a multiply-add is two; elementwise activations are not
    counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *input_shape))
    return int(counter.get_total_flops())
