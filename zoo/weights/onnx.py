"""ONNX export, checked: the exported graph run by onnxruntime must match PyTorch within
:data:`TOLERANCE` on a random batch, or the file is not written."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.weights.entry import Weights
from zoo.weights.errors import WeightsError, WeightsUsageError

if TYPE_CHECKING:
    from torch import nn

#: The largest difference allowed between onnxruntime's outputs and PyTorch's.
TOLERANCE = 1e-5


def export_onnx(model: nn.Module, entry: Weights, path: Path) -> float:
    """Write ``model`` as ONNX (input ``input``, output ``logits``, batch size free) and check
    it with onnxruntime; the largest difference from PyTorch's output."""
    try:
        import onnxruntime
        import torch
    except ImportError as error:
        raise WeightsUsageError(
            "--format onnx needs onnx and onnxruntime: pip install 'lightning-zoo[export]'"
        ) from error
    sample = torch.rand(4, *entry.dataset.input_shape, generator=torch.Generator().manual_seed(0))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
            torch.onnx.export(
                model,
                (sample,),
                str(path),
                dynamo=False,
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            )
    except Exception as error:  # an operator ONNX lacks, a model that is not traceable
        reason = " ".join(str(error).split())[:300]
        raise WeightsError(
            f"cannot export {entry.arch} with {entry.act} to ONNX: {type(error).__name__}: {reason}"
        ) from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(sample).numpy()
    found = session.run(None, {"input": sample.numpy()})[0]
    difference = float(abs(found - expected).max())
    if not difference <= TOLERANCE:
        raise WeightsError(
            f"the ONNX export of {entry.name} differs from PyTorch by {difference:.2e} "
            f"(more than {TOLERANCE:g}); model.onnx was not written"
        )
    return difference
