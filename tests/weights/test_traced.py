"""``zoo export --format torchscript|pt2`` through the real ``zoo``: the files reload in a plain
process and match PyTorch on another batch size; a component that cannot be exported is named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli_helpers import run_zoo
from tests.weights.test_cli import _one_line_error

RELOAD = """
import sys, torch, zoo
out = sys.argv[1]
x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(3))
with torch.no_grad():
    expected = zoo.load_weights(out)[0](x)
    scripted = torch.jit.load(out + "/model.torchscript.pt")(x)
    program = torch.export.load(out + "/model.pt2").module()(x)
print(float((scripted - expected).abs().max()), float((program - expected).abs().max()))
"""

PLUGIN = """
import numpy as np
import torch
import zoo


class NumpyTanh(torch.nn.Module):
    def forward(self, x):
        return torch.from_numpy(np.tanh(x.detach().cpu().numpy()))


@zoo.hookimpl
def register_activations(register):
    register("nptanh", NumpyTanh, summary="tanh through numpy: no exporter can follow it")
"""


def test_torchscript_and_torch_export(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_zoo("export", str(tiny_run), str(out), "--format", "torchscript",
                   "--format", "pt2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "model.torchscript.pt, model.pt2" in done.stdout
    reloaded = subprocess.run([sys.executable, "-c", RELOAD, str(out)], capture_output=True,
                              text=True)  # fmt: skip
    assert reloaded.returncode == 0, reloaded.stderr
    assert [float(d) for d in reloaded.stdout.split()] == [0.0, 0.0]


def test_an_activation_no_exporter_can_follow_is_named(exported: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "nptanh_plugin.py"
    plugin.write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    weights = shutil.copytree(exported, tmp_path / "weights")
    config = json.loads((weights / "config.json").read_text())
    config.update(act="nptanh", name="mlp-nptanh.mnist")
    (weights / "config.json").write_text(json.dumps(config))
    for fmt, title in (("pt2", "torch.export"), ("torchscript", "TorchScript (torch.jit.trace)")):
        out = tmp_path / f"out-{fmt}"
        done = run_zoo("-p", str(plugin), "export", str(weights), str(out), "--format", fmt)
        _one_line_error(
            done, 1, f"cannot export mlp-nptanh.mnist with {title}: its activation 'nptanh' "
            "cannot be exported ("
        )  # fmt: skip
        assert not out.exists()  # nothing half-written
