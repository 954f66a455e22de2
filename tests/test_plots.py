"""``zoo plot``: activations with their autograd derivatives (plugins included) and one run's
curves, checked as real pictures: size, not one colour, the curves' colours present."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import zoo
from zoo.cli import cli
from zoo.plots import PALETTE, activation_curve
from zoo.runs.curves import read_curves

TINY = "mnist:val_size=100"
needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed (pip install 'lightning-zoo[plot]')",
)


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def read_picture(path: Path) -> np.ndarray:
    """The PNG's pixels as an (H, W, 3) float array in [0, 1]."""
    image = pytest.importorskip("matplotlib.image")
    pixels = image.imread(path)
    return pixels[..., :3]


def colour_pixels(pixels: np.ndarray, colour: str | np.ndarray, tolerance: float = 0.03) -> int:
    """How many pixels have (nearly) exactly this colour."""
    target = _rgb(colour) if isinstance(colour, str) else np.asarray(colour)[:3]
    return int((np.abs(pixels - target) <= tolerance).all(axis=-1).sum())


def assert_real_picture(
    path: Path, colours: list[str] | list[np.ndarray], min_size: tuple[int, int] = (400, 250)
) -> np.ndarray:
    """A PNG at least ``min_size`` (width, height), not one colour, with lines in ``colours``."""
    assert path.is_file(), path
    pixels = read_picture(path)
    height, width = pixels.shape[:2]
    assert width >= min_size[0] and height >= min_size[1], (width, height)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # not a blank or single colour
    white = colour_pixels(pixels, "#ffffff")
    assert 0.3 * width * height < white < 0.98 * width * height
    for colour in colours:
        assert colour_pixels(pixels, colour) > 100, f"no curve drawn in {colour}"
    return pixels


@needs_matplotlib
def test_plot_the_four_activations(tmp_path: Path) -> None:
    output = tmp_path / "acts.png"
    result = CliRunner().invoke(
        cli, ["plot", "activations", "relu", "leakyrelu", "sigmoid", "tanh", "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert f"Wrote {output}" in result.output
    pixels = assert_real_picture(output, list(PALETTE[:4]), min_size=(1300, 280))
    assert pixels.shape[:2] == (300, 1360)  # four panels side by side


def test_derivatives_come_from_autograd() -> None:
    x, y, dy = activation_curve("sigmoid", -6, 6, 241)
    np.testing.assert_allclose(dy, y * (1 - y), atol=1e-6)
    x, y, dy = activation_curve("leakyrelu:negative_slope=0.2", -1, 1, 200)
    np.testing.assert_allclose(dy, np.where(x > 0, 1.0, 0.2))
    x, y, dy = activation_curve("tanh", -3, 3, 61)
    np.testing.assert_allclose(dy, 1 - np.tanh(x) ** 2, atol=1e-6)
    x, y, dy = activation_curve("relu:inplace=True", -1, 1, 201)
    np.testing.assert_allclose(y, np.maximum(x, 0))


class Cube(nn.Module):
    """scale·x³, a plugin activation with a parameter."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x**3


class CubePlugin:
    @zoo.hookimpl
    def register_activations(self, register: zoo.Register) -> None:
        register("cube", Cube, summary="scale·x³ (test plugin)")


@needs_matplotlib
def test_a_plugin_activation_with_parameters_can_be_plotted(tmp_path: Path) -> None:
    name = zoo.register_plugin(CubePlugin(), name="test-cube")
    try:
        x, _, dy = activation_curve("cube:scale=0.5", -2, 2, 101)
        np.testing.assert_allclose(dy, 1.5 * x**2, rtol=1e-5, atol=1e-6)
        output = tmp_path / "cube.png"
        result = CliRunner().invoke(
            cli,
            [
                "plot",
                "activations",
                "cube:scale=0.5",
                "relu",
                "--range",
                "-2",
                "2",
                "-o",
                str(output),
            ],
        )
        assert result.exit_code == 0, result.output
        assert_real_picture(output, list(PALETTE[:2]), min_size=(600, 280))
    finally:
        zoo.unregister_plugin(name)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["plot", "activations", "reluu"], "Did you mean 'relu'"),
        (["plot", "activations", "relu", "--range", "2", "1"], "increasing"),
        (["plot", "activations", "leakyrelu:slope=1"], "slope"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not (tmp_path / "x.png").exists()


def test_without_matplotlib_the_message_says_how_to_install_it(tmp_path: Path) -> None:
    output = tmp_path / "acts.png"
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if it were not installed\n"
        "from zoo.cli import main\n"
        f"sys.argv = ['zoo', 'plot', 'activations', 'relu', '-o', {str(output)!r}]\n"
        "main()\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 1
    assert "pip install 'lightning-zoo[plot]'" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not output.exists()


@needs_matplotlib
def test_plot_a_run(tiny_mnist: Path, tmp_path: Path) -> None:
    args = ["train", "--dataset", TINY, "--act", "tanh", "--epochs", "1", "--seed", "0"]
    args += ["--data-dir", str(tiny_mnist), "--output-dir", str(tmp_path)]
    train = CliRunner().invoke(cli, [*args, "--diagnostics", "--json"])
    assert train.exit_code == 0, train.output
    run_dir = Path(json.loads(train.stdout)["run_dir"])
    assert read_curves(run_dir).config["act"] == "tanh"  # the figure's title names it
    result = CliRunner().invoke(cli, ["plot", "run", str(run_dir)])
    assert result.exit_code == 0, result.output
    # loss, accuracy, dead, saturated and gradient panels; the validation curves in blue
    assert_real_picture(run_dir / "curves.png", [PALETTE[0], PALETTE[1]], min_size=(1300, 600))

    other = tmp_path / "elsewhere" / "run.png"
    result = CliRunner().invoke(cli, ["plot", "run", str(run_dir), "-o", str(other)])
    assert result.exit_code == 0, result.output
    assert other.is_file()

    not_a_run = CliRunner().invoke(cli, ["plot", "run", str(tmp_path / "elsewhere")])
    assert not_a_run.exit_code == 2
    assert "not a run directory" in not_a_run.output
