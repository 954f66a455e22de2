"""The built-in optimizers: each one trains, weight decay stays off biases and norm layers, specs
reach the optimizer, the fast path keeps torch's fused kernels, every timm optimizer is reachable
as ``timm/<name>``, and mistakes are usage errors through the real ``zoo`` command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from tests.conftest import synthetic_digits
from zoo.plugins.optimizers import OPTIMIZERS, parameter_groups
from zoo.plugins.timm_optimizers import timm_optimizer_names
from zoo.training.recipe import create_optimizer, default_lr

BUILT_IN = [name for name, _, _ in OPTIMIZERS]
#: Built through timm's create_optimizer_v2; the rest are torch.optim's, built directly.
FROM_TIMM = {"lion", "lamb", "lars", "adan", "adabelief", "madgrad"}
FUSED = {"adam", "adamw", "sgd", "adagrad"}


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """64 learnable 28x28 digits, normalised as the MNIST datamodule does."""
    images, labels = synthetic_digits(64, seed=3)
    x = (torch.from_numpy(images).float().div(255).unsqueeze(1) - 0.1307) / 0.3081
    return x, torch.from_numpy(labels).long()


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return zoo.create_model("mlp", act="relu", input_shape=(1, 28, 28), num_classes=10)


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.nll_loss(model(x), y)  # the MLP ends in log_softmax


def _train_steps(optimizer: torch.optim.Optimizer, model: nn.Module, batch, steps: int) -> float:
    for _ in range(steps):
        optimizer.zero_grad()
        _loss(model, batch).backward()
        optimizer.step()
    with torch.no_grad():
        return float(_loss(model, batch))


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_optimizer_reduces_the_loss(name: str, batch) -> None:
    model = _mlp()
    with torch.no_grad():
        before = float(_loss(model, batch))
    optimizer = create_optimizer(name, model)
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert optimizer.param_groups[0]["lr"] == default_lr(name)
    after = _train_steps(optimizer, model, batch, steps=5)
    assert after < before - 1e-3, (name, before, after)


@pytest.mark.parametrize("name", sorted(FUSED))
def test_the_fast_path_keeps_torchs_fused_kernels_on_cpu(name: str) -> None:
    optimizer = create_optimizer(name, _mlp())
    assert optimizer.defaults["fused"] is True
    double = create_optimizer(name, _mlp().double())  # fused on CPU takes float64 too
    assert double.defaults["fused"] is True


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return zoo.create_model("cnn", act="relu", input_shape=(1, 28, 28), num_classes=10)


@pytest.mark.parametrize("name", ["adamw", "sgd", "lion", "lamb", "timm/adopt"])
def test_weight_decay_is_off_biases_and_norm_layers(name: str) -> None:
    model = _cnn()
    optimizer = create_optimizer(f"{name}:weight_decay=0.05", model)
    norm_parameters = {
        id(p)
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        for p in module.parameters()
    }
    assert norm_parameters
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] for p in g["params"]}
    free = {id(p) for g in optimizer.param_groups if not g["weight_decay"] for p in g["params"]}
    for parameter_name, parameter in model.named_parameters():
        is_exempt = parameter_name.endswith(".bias") or id(parameter) in norm_parameters
        assert (id(parameter) in free) is is_exempt, parameter_name
        assert (id(parameter) in decayed) is not is_exempt, parameter_name
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.0, 0.05}


def test_our_groups_are_timms_groups() -> None:
    from timm.optim import param_groups_weight_decay

    model = _cnn()
    ours = parameter_groups(model, 0.05)
    timms = param_groups_weight_decay(model, weight_decay=0.05)
    assert [(g["weight_decay"], [id(p) for p in g["params"]]) for g in ours] == [
        (g["weight_decay"], [id(p) for p in g["params"]]) for g in timms
    ]
    (single,) = parameter_groups(model, 0.0)  # no decay: one group, the parameters in order
    assert [id(p) for p in single["params"]] == [id(p) for p in model.parameters()]


def test_specs_reach_the_optimizer() -> None:
    model = _mlp()
    adamw = create_optimizer("adamw:weight_decay=0.05", model)
    assert isinstance(adamw, torch.optim.AdamW)
    assert sorted(g["weight_decay"] for g in adamw.param_groups) == [0.0, 0.05]
    (group,) = create_optimizer("adamw:weight_decay=0", model).param_groups
    assert group["weight_decay"] == 0.0
    (group,) = create_optimizer("sgd:momentum=0.8,nesterov=True", model, lr=0.05).param_groups
    assert (group["momentum"], group["nesterov"], group["lr"]) == (0.8, True, 0.05)
    (group,) = create_optimizer("sgd", model).param_groups
    assert (group["momentum"], group["nesterov"], group["lr"]) == (0.9, False, 1e-2)
    (group,) = create_optimizer("adam:betas=(0.8,0.9),eps=1e-6", model).param_groups
    assert (group["betas"], group["eps"]) == ((0.8, 0.9), 1e-6)
    lion = create_optimizer("lion:betas=(0.95,0.98)", model)
    assert type(lion).__name__ == "Lion" and lion.param_groups[0]["betas"] == (0.95, 0.98)
    assert lion.param_groups[0]["lr"] == 1e-4
    (group,) = create_optimizer("timm/nadamw:betas=(0.9,0.95)", model, lr=3e-4).param_groups
    assert (group["betas"], group["lr"]) == ((0.9, 0.95), 3e-4)


def test_the_default_lr_is_the_factorys_and_is_recorded() -> None:
    from zoo.training.module import ZooClassifier

    assert (default_lr("adam"), default_lr("sgd"), default_lr("lion")) == (1e-3, 1e-2, 1e-4)
    assert default_lr("timm/lion") == 1e-3
    module = ZooClassifier("mlp", "relu", (1, 28, 28), 10, optimizer="madgrad")
    assert module.hparams["lr"] == 1e-2


def test_summaries_say_what_each_is_and_its_defaults() -> None:
    components = {c.name: c for c in zoo.plugin.components.get_registry().components("optimizer")}
    assert set(BUILT_IN) | {"timm/*"} <= set(components)
    for name in BUILT_IN:
        summary = components[name].summary
        assert f"lr {default_lr(name):g}," in summary and "weight decay" in summary, summary
    assert "torch.optim.AdamW" in components["adamw"].summary
    assert "weight decay 0.01" in components["adamw"].summary
    assert "Lion" in components["lion"].summary


def test_timm_family_lists_every_usable_timm_optimizer() -> None:
    import timm.optim

    names = timm_optimizer_names()
    listed = set(timm.optim.list_optimizers())
    left_out = listed - set(names)
    # Left out: second-order ones (Lightning's backward keeps no graph), and those of packages
    # that are not installed (NVIDIA apex's fused*, bitsandbytes' bnb*).
    for name in left_out:
        info = timm.optim.get_optimizer_info(name)
        needs = info.opt_class if isinstance(info.opt_class, str) else ""
        assert info.second_order or needs.startswith(("apex.", "bitsandbytes.")), name
    assert set(names) <= listed
    assert {"lion", "lamb", "lars", "adan", "adabelief", "madgrad", "adopt", "nesterov"} <= set(
        names
    )
    family = zoo.plugin.components.get_registry().components("optimizer", "timm/*")
    assert sorted(c.name for c in family) == sorted(f"timm/{n}" for n in names)
    assert "Evolved Sign Momentum" in names["lion"]


#: timm's Kron compiles its preconditioner update; on the CPU, inductor's code for it asks for
#: tens of GB with the MLP's 784-wide layer.
CPU_UNFIT = {"kron", "kronc", "kronw"}


def test_every_timm_family_member_takes_a_step(batch) -> None:
    failures = {}
    for name in timm_optimizer_names():
        if name in CPU_UNFIT:
            continue
        model = _mlp()
        with torch.no_grad():
            before = float(_loss(model, batch))
        try:
            after = _train_steps(create_optimizer(f"timm/{name}", model), model, batch, steps=3)
        except Exception as error:  # collected, so that one message names them all
            failures[name] = f"{type(error).__name__}: {error}"
            continue
        if not after < before:
            failures[name] = f"loss {before:.4f} -> {after:.4f}"
    assert not failures, failures


def test_listing_imports_no_torch_and_torchs_optimizers_no_timm() -> None:
    code = (
        "import sys\n"
        "import zoo\n"
        "from zoo.plugin.components import get_registry\n"
        "registry = get_registry()\n"
        "names = [c.name for c in registry.components('optimizer', 'timm/*')]\n"
        "heavy = [m for m in ('torch', 'timm') if m in sys.modules]\n"
        "print(len(names), heavy)\n"
        "from zoo.training.recipe import create_optimizer\n"
        "model = zoo.create_model('mlp', act='relu', input_shape=(1, 28, 28), num_classes=10)\n"
        f"for name in {sorted(set(BUILT_IN) - FROM_TIMM)!r}:\n"
        "    create_optimizer(name, model)\n"
        "print('timm.optim' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    listed, built = completed.stdout.splitlines()
    count, heavy = listed.split(maxsplit=1)
    assert int(count) > 50 and heavy == "[]"
    assert built == "False"


def _zoo_train(*options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "zoo", "train", *options, "--max-steps", "1"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_an_unknown_optimizer_suggests_a_name() -> None:
    completed = _zoo_train("--optimizer", "adamm")
    assert completed.returncode == 2, completed.stderr
    assert "Did you mean 'adam'" in completed.stderr
    assert "Traceback" not in completed.stderr
    with pytest.raises(zoo.ZooUsageError, match="Did you mean 'timm/lion'"):
        zoo.plugin.components.resolve("optimizer", "timm/lionn")


def test_a_bad_optimizer_argument_is_a_usage_error() -> None:
    completed = _zoo_train("--optimizer", "adam:betas=1")
    assert completed.returncode == 2, completed.stderr
    assert "optimizer 'adam': argument 'betas' expects tuple" in completed.stderr
    assert "Traceback" not in completed.stderr
    with pytest.raises(zoo.ZooUsageError, match="takes no argument 'momentumm'"):
        zoo.plugin.components.resolve("optimizer", "sgd:momentumm=0.5")
    with pytest.raises(zoo.ZooUsageError, match="'lr' is set by zoo itself"):
        zoo.plugin.components.resolve("optimizer", "adamw:lr=0.1")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("adam:betas=(0.9,)", "betas must be 2 numbers"),
        ("adan:betas=(0.9,0.9)", "betas must be 3 numbers"),
        ("sgd:momentum=0.0,nesterov=True", "Nesterov momentum requires a momentum"),
        ("adam:eps=-1.0", "Invalid epsilon"),
    ],
)
def test_a_bad_optimizer_value_says_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(zoo.ZooUsageError, match=message) as raised:
        create_optimizer(spec, _mlp())
    assert spec.split(":")[0] in str(raised.value)
