"""The timm bridge: timm's activations, every timm model as ``timm/<name>`` with any
activation, and ``--act default``."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.training.module import ZooClassifier

ROOT = Path(__file__).resolve().parents[2]
TINY = "mnist:val_size=100"


class Sine(nn.Module):
    """A plugin activation with a parameter, for the timm bridge to carry."""

    def __init__(self, w0: float = 1.0) -> None:
        super().__init__()
        self.w0 = w0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * x)


# --- timm's activations ------------------------------------------------------------------------

TIMM_ACTIVATIONS = {
    "hard_mish": ("HardMish", lambda x: 0.5 * x * (x + 2).clamp(0, 2)),
    "gelu_tanh": ("GELUTanh", lambda x: F.gelu(x, approximate="tanh")),
    "quick_gelu": ("QuickGELU", lambda x: x * torch.sigmoid(1.702 * x)),
    "squared_relu": ("SquaredReLU", lambda x: F.relu(x) ** 2),
    "star_relu": ("StarReLU", lambda x: F.relu(x) ** 2),  # scale 1, bias 0 at init
}


def test_timm_activations_are_lazy_references() -> None:
    components = {c.name: c for c in zoo.list_activations()}
    for name, (class_name, _) in TIMM_ACTIVATIONS.items():
        component = components[name]
        assert component.plugin == "timm_activations"
        assert isinstance(component.target, str)
        assert component.target.startswith("timm.") and component.target.endswith(class_name)


@pytest.mark.parametrize("name", sorted(TIMM_ACTIVATIONS))
def test_timm_activation_values(name: str) -> None:
    class_name, reference = TIMM_ACTIVATIONS[name]
    module = zoo.create_activation(name.replace("_", "-"))
    assert type(module).__name__ == class_name
    x = torch.linspace(-4, 4, 81, requires_grad=True)
    torch.testing.assert_close(module(x), reference(x))
    module(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_timm_activation_parameters() -> None:
    module = zoo.create_activation("star_relu:scale_value=2.0,bias_value=0.5")
    torch.testing.assert_close(module(torch.tensor([-1.0, 2.0])), torch.tensor([0.5, 8.5]))


def test_default_activation_is_relu_for_zoo_architectures() -> None:
    module = zoo.create_activation("default")
    assert isinstance(module, nn.ReLU) and type(module).__name__ == "DefaultActivation"
    assert type(pickle.loads(pickle.dumps(module))) is type(module)
    model = zoo.create_model("mlp", act="default", input_shape=(1, 28, 28), num_classes=10)
    assert isinstance(model[2], nn.ReLU)


def test_default_activation_belongs_to_the_activations_plugin() -> None:
    (component,) = zoo.list_activations("default")
    assert component.plugin == "activations"
    try:
        zoo.configure_plugins(block=["timm_models"], autoload=False)
        assert type(zoo.create_activation("default")).__name__ == "DefaultActivation"
        assert "timm/*" not in [c.name for c in zoo.list_architectures()]
    finally:
        zoo.configure_plugins()


# --- the timm bridge ---------------------------------------------------------------------------


def test_timm_model_names_match_timm_list_models() -> None:
    import timm

    from zoo.plugins.timm_models import model_names

    names = model_names()
    assert list(names) == sorted(timm.list_models())
    assert names["resnet18"] == "timm model from timm.models.resnet"


def test_listing_timm_models_imports_neither_timm_nor_torch() -> None:
    code = (
        "import sys, time\n"
        "from zoo.cli import cli\n"
        "started = time.perf_counter()\n"
        "try:\n"
        "    cli.main(['list', 'architectures', 'timm/*resnet*'], prog_name='zoo',\n"
        "             standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'torchvision', 'lightning', 'timm') if m in sys.modules]\n"
        "print('HEAVY', heavy, time.perf_counter() - started, file=sys.stderr)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert "HEAVY []" in completed.stderr
    assert "timm/resnet18 " in completed.stdout and "timm/resnet50d " in completed.stdout
    assert "timm/vit_tiny_patch16_224" not in completed.stdout


def test_timm_family_in_the_plain_listing() -> None:
    (timm_family,) = zoo.list_architectures("timm")
    assert timm_family.name == "timm/*" and timm_family.is_family
    assert "timm/<model_name>" in timm_family.summary
    assert "timm/*" in [c.name for c in zoo.list_architectures()]
    assert len(zoo.list_architectures("timm/*")) > 1000


def test_timm_resnet18_with_mish_on_mnist_shapes() -> None:
    model = zoo.create_model("timm/resnet18", act="mish", input_shape=(1, 28, 28), num_classes=10)
    mish = [m for m in model.modules() if isinstance(m, nn.Mish)]
    assert len(mish) == 17  # the stem, two per basic block (8 blocks)
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert model.conv1.in_channels == 1 and model.fc.out_features == 10
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_timm_activation_parameters_and_plugin_activations() -> None:
    model = zoo.create_model(
        "timm/resnet18",
        act="leakyrelu:negative_slope=0.2",
        input_shape=(1, 28, 28),
        num_classes=10,
    )
    slopes = {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}

    class SinePlugin:
        @zoo.hookimpl
        def register_activations(self, register):
            register("zoo-test-sine", Sine, summary="sin(w0·x)")

    name = zoo.register_plugin(SinePlugin(), name="zoo-test-sine-plugin")
    try:
        model = zoo.create_model(
            "timm/mobilenetv3_small_050",
            act="zoo-test-sine:w0=3.0",
            input_shape=(3, 32, 32),
            num_classes=4,
        )
    finally:
        zoo.unregister_plugin(name)
    sines = [m for m in model.modules() if isinstance(m, Sine)]
    assert sines and {m.w0 for m in sines} == {3.0}
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_timm_resnet18_mish_trains_and_reloads(tiny_mnist: Path, tmp_path: Path) -> None:
    result = zoo.train(
        "timm/resnet18",
        act="mish",
        dataset=TINY,
        max_steps=4,
        seed=0,
        data_dir=tiny_mnist,
        output_dir=tmp_path,
        progress=False,
    )
    assert result.steps == 4 and result.arch == "timm/resnet18"
    restored = ZooClassifier.load_from_checkpoint(result.checkpoint, weights_only=True)
    assert sum(isinstance(m, nn.Mish) for m in restored.modules()) == 17


def test_timm_model_without_act_layer() -> None:
    # GhostNet fixes its own activations: --act would be silently ignored, so it is an error.
    with pytest.raises(zoo.ComponentSpecError) as caught:
        zoo.create_model("timm/ghostnet_050", act="mish", input_shape=(1, 28, 28), num_classes=10)
    assert caught.value.kind == "activation"
    assert "takes no act_layer" in str(caught.value) and "--act default" in str(caught.value)

    model = zoo.create_model(
        "timm/ghostnet_050", act="default", input_shape=(1, 28, 28), num_classes=10
    )
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert not any(type(m).__name__ == "DefaultActivation" for m in model.modules())


def test_timm_cli_errors_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from zoo.cli import cli

    runner = CliRunner()
    for args, expected in [
        (["--arch", "timm/ghostnet_050", "--act", "mish"], "--act default"),
        (["--arch", "timm/resnet181"], "Did you mean 'timm/resnet18'"),
        (["--arch", "timm"], "is a family"),
    ]:
        result = runner.invoke(cli, ["train", "--output-dir", str(tmp_path), *args])
        assert result.exit_code == 2, result.output
        assert expected in result.output
    assert list(tmp_path.iterdir()) == []


def test_timm_model_too_small_for_the_input_fails_clearly() -> None:
    with pytest.raises(zoo.ComponentSpecError, match="cannot take 1x28x28 inputs"):
        zoo.create_model("timm/convnext_atto", act="gelu", input_shape=(1, 28, 28), num_classes=10)


def test_timm_models_with_a_fixed_size_get_the_input_size() -> None:
    model = zoo.create_model(
        "timm/vit_tiny_patch16_224:patch_size=7,depth=2",
        act="gelu_tanh",
        input_shape=(1, 28, 28),
        num_classes=10,
    )
    assert tuple(model.patch_embed.img_size) == (28, 28)
    assert sum(type(m).__name__ == "GELUTanh" for m in model.modules()) == 2


def test_timm_spec_arguments() -> None:
    model = zoo.create_model("timm/resnet18:drop_rate=0.3", input_shape=(1, 28, 28), num_classes=10)
    assert model.drop_rate == 0.3
    with pytest.raises(zoo.ComponentSpecError, match="'pretrained' expects bool"):
        zoo.create_model("timm/resnet18:pretrained=1", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(zoo.ComponentSpecError, match="comes from the dataset"):
        zoo.create_model("timm/resnet18:in_chans=3", input_shape=(1, 28, 28), num_classes=10)


def test_timm_pretrained_fails_fast_and_clearly_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = "http://127.0.0.1:9"  # every request goes through a proxy that refuses
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(key, closed)
    for key in ("no_proxy", "NO_PROXY", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    started = time.monotonic()
    with pytest.raises(zoo.DataNotFoundError) as caught:
        zoo.create_model("timm/resnet18:pretrained=True", input_shape=(1, 28, 28), num_classes=10)
    assert time.monotonic() - started < 15
    assert "pretrained weights for timm/resnet18" in str(caught.value)
    assert "HF_HUB_OFFLINE=1" in str(caught.value)
