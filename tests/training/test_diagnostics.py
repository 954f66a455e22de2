"""The activation diagnostics: dead and saturated units, gradient and weight norms, found
generically through the activation factory, logged to metrics.csv without changing training."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import zoo
from zoo.cli import cli
from zoo.plugin.components import activation_modules
from zoo.training.diagnostics import DEFAULT_INTERVAL, DEFAULT_PROBE_SIZE, ActivationDiagnostics

TINY = "mnist:val_size=100"


def _probe(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=generator), torch.randint(
        0, 10, (n,), generator=generator
    )


def _mlp(act: str, hidden: tuple[int, ...] = (64, 32)) -> nn.Module:
    torch.manual_seed(0)
    return zoo.create_model(
        f"mlp:hidden={hidden!r}", act=act, input_shape=(1, 28, 28), num_classes=10
    )


def _hidden_linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][:-1]


def test_activation_modules_are_the_ones_the_factory_built() -> None:
    model = _mlp("leakyrelu:negative_slope=0.2", hidden=(8, 8, 8))
    found = activation_modules(model)
    assert [name for name, _ in found] == ["2", "4", "6"]
    assert all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for _, m in found)
    assert found[0][1].zoo_activation == "leakyrelu:negative_slope=0.2"
    # a hand-made activation the architecture did not get from the factory is not one of them
    assert activation_modules(nn.Sequential(nn.Linear(2, 2), nn.ReLU())) == []


def test_healthy_relu_network_has_few_dead_units() -> None:
    values = ActivationDiagnostics().measure(_mlp("relu"), _probe())
    assert values["diag/dead/all"] < 0.1
    assert set(values) >= {"diag/dead/2", "diag/dead/4", "diag/grad_norm/1", "diag/weight_norm/5"}
    assert "diag/saturated/2" not in values  # ReLU is unbounded above: no saturation metric
    assert values["diag/grad_norm/1"] > 0


def test_relu_units_forced_dead_by_a_large_negative_bias_are_reported_dead() -> None:
    model = _mlp("relu")
    with torch.no_grad():
        for linear in _hidden_linears(model):
            linear.bias.fill_(-100.0)
    values = ActivationDiagnostics().measure(model, _probe())
    assert values["diag/dead/2"] == 1.0
    assert values["diag/dead/4"] == 1.0
    assert values["diag/dead/all"] == 1.0
    # no gradient reaches the weights in front of dead units
    assert values["diag/grad_norm/1"] == 0.0
    assert values["diag/grad_norm/3"] == 0.0


def test_half_the_units_dead() -> None:
    model = _mlp("relu", hidden=(64,))
    with torch.no_grad():
        model[1].bias[:32] = -100.0
        model[1].bias[32:] = 100.0
    values = ActivationDiagnostics().measure(model, _probe())
    assert values["diag/dead/2"] == pytest.approx(0.5)


def test_inplace_activation_measures_the_same() -> None:
    probe = _probe()
    plain = ActivationDiagnostics().measure(_mlp("relu"), probe)
    inplace = ActivationDiagnostics().measure(_mlp("relu:inplace=True"), probe)
    assert inplace == pytest.approx(plain)


def test_a_compiled_model_is_probed_too() -> None:
    probe = _probe(64)
    model = _mlp("relu")
    eager = ActivationDiagnostics().measure(model, probe)
    model.compile(backend="eager")  # torch.compile would otherwise skip the probe's hooks
    model(probe[0])
    assert ActivationDiagnostics().measure(model, probe) == pytest.approx(eager)


def test_leakyrelu_units_do_not_die_under_the_same_bias() -> None:
    model = _mlp("leakyrelu")
    with torch.no_grad():
        for linear in _hidden_linears(model):
            linear.bias.fill_(-100.0)
    values = ActivationDiagnostics().measure(model, _probe())
    assert values["diag/dead/all"] == 0.0
    assert values["diag/grad_norm/1"] > 0


def test_saturation_detected_in_a_sigmoid_network_with_large_weights() -> None:
    model = _mlp("sigmoid")
    diagnostics = ActivationDiagnostics()
    before = diagnostics.measure(model, _probe())
    assert before["diag/saturated/all"] < 0.05
    with torch.no_grad():
        for linear in _hidden_linears(model):
            linear.weight.mul_(50.0)
    after = diagnostics.measure(model, _probe())
    assert after["diag/saturated/2"] > 0.8
    assert after["diag/saturated/all"] > 0.8
    assert after["diag/dead/all"] < 0.05  # saturated is not dead: a tiny gradient still flows
    assert diagnostics.bounds["2"] == (0.0, 1.0)  # measured asymptotes of the sigmoid


def test_tanh_and_hardsigmoid_asymptotes_are_measured() -> None:
    probe = _probe(64)
    tanh = ActivationDiagnostics()
    tanh.measure(_mlp("tanh"), probe)
    assert tanh.bounds["2"] == pytest.approx((-1.0, 1.0))
    hard = ActivationDiagnostics()
    hard.measure(_mlp("hardsigmoid"), probe)
    assert hard.bounds["2"] == (0.0, 1.0)


class _TwoBranchNet(nn.Module):
    """Not an MLP: convolutions, a shared activation called twice, an activation per branch."""

    def __init__(
        self,
        act: Callable[[], nn.Module],
        input_shape: Sequence[int],
        num_classes: int,
        width: int = 4,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(input_shape[0], width, 3, padding=1)
        self.shared = act()
        self.branches = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1) for _ in range(2)])
        self.branch_acts = nn.ModuleList([act() for _ in range(2)])
        self.head = nn.Linear(width * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.shared(self.conv(x))
        outs = [
            a(b(h)).mean(dim=(2, 3)) for a, b in zip(self.branch_acts, self.branches, strict=True)
        ]
        return self.head(self.shared(torch.cat(outs, dim=1)))


class _ArchPlugin:
    @zoo.hookimpl
    def register_architectures(self, register: zoo.Register) -> None:
        register("twobranch", _TwoBranchNet, summary="test architecture")


def test_any_architecture_conv_channels_and_a_reused_activation() -> None:
    name = zoo.register_plugin(_ArchPlugin(), name="test-twobranch")
    try:
        model = zoo.create_model("twobranch", act="relu", input_shape=(1, 8, 8), num_classes=3)
        diagnostics = ActivationDiagnostics()
        values = diagnostics.measure(model, (torch.randn(32, 1, 8, 8), torch.randint(0, 3, (32,))))
    finally:
        zoo.unregister_plugin(name)
    assert diagnostics.activation_layers == [
        "shared#1",
        "branch_acts.0",
        "branch_acts.1",
        "shared#2",
    ]
    assert diagnostics.parameter_layers == ["conv", "branches.0", "branches.1", "head"]
    for layer in diagnostics.activation_layers:
        assert 0.0 <= values[f"diag/dead/{layer}"] <= 1.0
    assert values["diag/grad_norm/conv"] > 0


def test_probe_does_not_touch_gradients_or_mode() -> None:
    model = _mlp("relu")
    model.train()
    ActivationDiagnostics().measure(model, _probe())
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def _rows(run_dir: str) -> list[dict[str, str]]:
    with open(Path(run_dir) / "metrics.csv") as file:
        return list(csv.DictReader(file))


def test_training_logs_diagnostics_and_trains_exactly_as_without(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    options = {"dataset": TINY, "epochs": 2, "seed": 0, "data_dir": tiny_mnist, "progress": False}
    options["max_steps"] = 10  # into the second epoch
    plain = zoo.train("mlp", act="relu", output_dir=tmp_path / "plain", **options)
    diagnostics = ActivationDiagnostics(interval=3)
    probed = zoo.train(
        "mlp", act="relu", output_dir=tmp_path / "diag", callbacks=[diagnostics], **options
    )
    assert probed.test_loss == plain.test_loss
    assert probed.best_val_acc == plain.best_val_acc

    # 8 steps per epoch: probes at the start, every 3 steps, at the epoch's end and at the end
    assert [row["step"] for row in diagnostics.history] == [0, 3, 6, 8, 9, 10]
    rows = [row for row in _rows(probed.run_dir) if row.get("diag/dead/all")]
    assert [int(row["step"]) for row in rows] == [0, 3, 6, 8, 9, 10]
    assert {float(row["epoch"]) for row in rows} == {0.0, 1.0}
    for row in rows:
        for key in ("diag/dead/model.2", "diag/dead/model.4", "diag/dead/all"):
            assert 0.0 <= float(row[key]) <= 1.0
        assert float(row["diag/weight_norm/model.1"]) > 0

    summary = json.loads((Path(probed.run_dir) / "diagnostics.json").read_text())
    assert summary["activation_layers"] == ["model.2", "model.4"]
    assert summary["parameter_layers"] == ["model.1", "model.3", "model.5"]
    assert summary["probes"] == 6 and summary["interval"] == 3
    assert summary["probe_size"] == 100  # the whole validation split of the tiny data
    assert 0 < summary["seconds"] < probed.train_seconds


def test_zoo_train_diagnostics_flag(tiny_mnist: Path, tmp_path: Path) -> None:
    args = ["train", "--dataset", TINY, "--act", "sigmoid", "--epochs", "1", "--seed", "0"]
    args += ["--data-dir", str(tiny_mnist), "--output-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--diagnostics", "--json"])
    assert result.exit_code == 0, result.output
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    header = _rows(str(run_dir))[0].keys()
    assert {"diag/dead/model.2", "diag/saturated/model.2", "diag/saturated/all"} <= set(header)
    assert (run_dir / "diagnostics.json").is_file()

    plain = CliRunner().invoke(cli, [*args, "--json"])
    assert plain.exit_code == 0, plain.output
    plain_dir = Path(json.loads(plain.stdout)["run_dir"])
    assert not any(key.startswith("diag/") for key in _rows(str(plain_dir))[0])
    assert not (plain_dir / "diagnostics.json").exists()


def test_a_probe_costs_under_10_percent_of_the_steps_between_probes() -> None:
    """The default interval's cost on the default MLP, against bare training steps (a Lightning
    step costs more, so the share in a real epoch is smaller still)."""
    model = _mlp("relu", hidden=(128, 64))
    optimizer = torch.optim.Adam(model.parameters())
    x, y = _probe(64)
    probe = _probe(DEFAULT_PROBE_SIZE)
    diagnostics = ActivationDiagnostics()

    def train_steps() -> float:
        started = time.perf_counter()
        for _ in range(DEFAULT_INTERVAL):
            optimizer.zero_grad()
            F.nll_loss(model(x), y).backward()
            optimizer.step()
        return time.perf_counter() - started

    def one_probe() -> float:
        started = time.perf_counter()
        diagnostics.measure(model, probe)
        return time.perf_counter() - started

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier timings on a busy machine, the same for both sides
    try:
        train_steps(), one_probe()  # warm up
        steps = min(train_steps() for _ in range(2))
        probe_seconds = min(one_probe() for _ in range(3))
    finally:
        torch.set_num_threads(threads)
    assert probe_seconds < 0.10 * steps
