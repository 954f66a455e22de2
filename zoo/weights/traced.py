"""TorchScript (``torch.jit.trace``) and ``torch.export`` exports, each checked: the file is
loaded back and run on a batch of another size than the one it was made from, and must match
PyTorch within :data:`TOLERANCE`, or it is not written. A model that cannot be exported is an
error naming the component at fault: the activation if it fails alone, else the architecture."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.weights.entry import Weights
from zoo.weights.errors import WeightsError

if TYPE_CHECKING:
    from torch import nn

#: The largest difference allowed between a reloaded export's outputs and PyTorch's.
TOLERANCE = 1e-5
#: The file each format writes, and its name in messages.
FILES = {"torchscript": "model.torchscript.pt", "pt2": "model.pt2"}
TITLES = {"torchscript": "TorchScript (torch.jit.trace)", "pt2": "torch.export"}


def _sample(shape: tuple[int, ...], batch: int, seed: int) -> Any:
    import torch

    return torch.rand(batch, *shape, generator=torch.Generator().manual_seed(seed))


def _write_torchscript(model: nn.Module, sample: Any, path: Path) -> Callable[[Any], Any]:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings: the check below is what counts
        traced = torch.jit.trace(model, (sample,), check_trace=False)
    torch.jit.save(traced, str(path))
    return torch.jit.load(str(path))


def _write_pt2(model: nn.Module, sample: Any, path: Path) -> Callable[[Any], Any]:
    import torch

    batch = torch.export.Dim("batch", min=1, max=2**16)
    program = torch.export.export(model, (sample,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return torch.export.load(str(path)).module()


_WRITERS = {"torchscript": _write_torchscript, "pt2": _write_pt2}


def export_traced(model: nn.Module, entry: Weights, directory: Path, fmt: str) -> float:
    """Write ``model`` in ``fmt`` (``torchscript`` or ``pt2``) into ``directory`` and check the
    file reloaded; the largest difference from PyTorch's output."""
    path = directory / FILES[fmt]
    try:
        return _attempt(model, entry.dataset.input_shape, path, fmt)
    except Exception as error:  # an operator or Python construct the exporter cannot take
        path.unlink(missing_ok=True)
        raise WeightsError(_blame(entry, fmt, error)) from error


def _attempt(model: nn.Module, shape: tuple[int, ...], path: Path, fmt: str) -> float:
    """Export ``model`` to ``path``, reload it, run it on a batch of another size (a size or a
    value baked in shows here); the largest difference, or an exception saying what differs."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' notices: the check below is what counts
        reloaded = _WRITERS[fmt](model, _sample(shape, 4, 0), path)
        check = _sample(shape, 3, 1)
        with torch.no_grad():
            expected, found = model(check), reloaded(check)
    if found.shape != expected.shape:
        raise ValueError(
            f"reloaded, it returns shape {list(found.shape)} for a batch of 3, "
            f"not {list(expected.shape)}"
        )
    difference = float((found - expected).abs().max())
    if not difference <= TOLERANCE:
        raise ValueError(
            f"reloaded, it differs from PyTorch by {difference:.2e} (more than {TOLERANCE:g})"
        )
    return difference


def _blame(entry: Weights, fmt: str, error: Exception) -> str:
    """The one-line error: which component cannot be exported, and the exporter's reason."""
    import tempfile

    from zoo.plugin.components import create_activation

    component = f"architecture {entry.arch!r}"
    try:
        activation = create_activation(entry.act).eval()
        with tempfile.TemporaryDirectory() as work:
            _attempt(activation, (2, 4, 4), Path(work) / FILES[fmt], fmt)
    except Exception:  # the activation alone fails: it is the one at fault
        component = f"activation {entry.act!r}"
    reason = " ".join(str(error).split())[:300] or type(error).__name__
    return (
        f"cannot export {entry.name} with {TITLES[fmt]}: its {component} cannot be exported "
        f"({type(error).__name__}: {reason})"
    )
