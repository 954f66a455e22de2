"""Fused training: :class:`zoo.comparison.stacking.ModelStack` (fused Linear layers, or vmap), one
optimizer over the stacked parameters, :func:`zoo.comparison.fused_training.train_fused` and
``zoo compare``'s fused default, each member being exactly the run ``zoo train --seed K`` makes.

Real runs on the small MNIST-format data of ``tiny_mnist`` (500 training images: 8 steps an
epoch at batch size 64). The comparisons are real ``zoo`` processes; the commands that only read
a run (``zoo runs``, ``zoo evaluate``, ``zoo predict``) or go on with it (``zoo train --resume``,
a rerun) are the same command line invoked in this process (click's CliRunner), which spares
importing torch and Lightning again (about 10 s of CPU each on a busy two-core machine).

Everything runs on one thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``): on a shared
two-core machine two threads contending make each step tens of times slower, and one thread is
also the same arithmetic in the fused and in the separate runs.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from click.testing import Result

import zoo
import zoo.comparison.fused_training as fused_training
from tests.cli_helpers import invoke_zoo, run_zoo
from tests.conftest import synthetic_digits
from zoo.comparison.compare import COLUMNS, ComparisonPlan, compare
from zoo.comparison.fused import FusedClassifier
from zoo.comparison.groups import FusionUnavailable, fusion_problem
from zoo.comparison.stacking import ModelStack
from zoo.runs.config import RunConfig
from zoo.training.recipe import create_optimizer

TINY = "mnist:val_size=100"
SHAPE = (1, 28, 28)
SMALL_CNN = "cnn:channels=(4,8),hidden=16,dropout=0"  # no dropout: vmap draws its own masks
TEST_IMAGES = 200  # tiny_mnist's test split


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")  # and the processes started from this one
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the ``zoo`` processes: one thread, the tests' own cache."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    return {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(cache)}


def _zoo(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_zoo(*args, env=env, timeout=timeout)


def _invoke(*args: str) -> Result:
    """The ``zoo`` command line, in this process."""
    return invoke_zoo(*args)


def _compare_args(tiny_mnist: Path, output: Path, *extra: str) -> list[str]:
    """``zoo compare`` of relu and tanh, seeds 0 and 1, one epoch, on tiny_mnist."""
    return ["compare", "--act", "relu", "--act", "tanh", "--seeds", "2", "--epochs", "1",
            "--dataset", TINY, "--data-dir", str(tiny_mnist), "--output-dir", str(output),
            "--json", *extra]  # fmt: skip


def _metrics(run_dir: str | Path) -> list[dict[str, str]]:
    with open(Path(run_dir) / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def _step_losses(run_dir: str | Path) -> dict[int, float]:
    """``train_loss_step`` by step."""
    return {
        int(row["step"]): float(row["train_loss_step"])
        for row in _metrics(run_dir)
        if row.get("train_loss_step")
    }


def _by_epoch(run_dir: str | Path, key: str) -> dict[int, float]:
    """The epoch rows' ``key`` (``val_loss``, ``train_loss`` ...) by epoch."""
    return {int(float(row["epoch"])): float(row[key]) for row in _metrics(run_dir) if row.get(key)}


def _config(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "config.json").read_text())


def _results(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "results.json").read_text())


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _runs_in(root: Path, prefix: str) -> list[Path]:
    """The run directories in the slots of ``root/runs`` (or ``root``) named ``prefix*``."""
    base = root / "runs" if (root / "runs").is_dir() else root
    return sorted(run for slot in base.glob(f"{prefix}*") if slot.is_dir()
                  for run in slot.iterdir() if (run / "config.json").is_file())  # fmt: skip


def _models(arch: str, acts: list[str], seed: int = 0) -> list[torch.nn.Module]:
    torch.manual_seed(seed)
    return [zoo.create_model(arch, act=act, input_shape=SHAPE, num_classes=10) for act in acts]


def _separately(models: list[torch.nn.Module], x: torch.Tensor) -> torch.Tensor:
    return torch.stack([model(x[m]) for m, model in enumerate(models)])


def _assert_state_of_is_state_dict(stack: ModelStack, models: list[torch.nn.Module]) -> None:
    for m, model in enumerate(models):
        state, own = stack.state_of(m), model.state_dict()
        assert sorted(state) == sorted(own), m
        for name, tensor in own.items():
            assert torch.equal(state[name], tensor), (m, name)


# -- ModelStack ----------------------------------------------------------------------------------

ACTS = ["relu", "tanh", "gelu", "sigmoid", "relu", "leakyrelu:negative_slope=0.2"]


def test_fused_layers_give_exactly_the_outputs_and_gradients_of_the_models() -> None:
    """Linear layers fused into one baddbmm for all models, each activation applied to the
    models that share it: the outputs are bit for bit those of the models called one by one,
    per-model batches and a shared batch alike; the gradients of the summed losses are each
    model's own (within 1e-6)."""
    models = _models("mlp", ACTS)
    stack = ModelStack(models)
    assert stack.fused
    _assert_state_of_is_state_dict(stack, models)
    x = torch.randn(len(models), 32, *SHAPE)
    with torch.no_grad():
        assert torch.equal(stack(x), _separately(models, x))
        shared = torch.randn(17, *SHAPE)
        assert torch.equal(stack(shared, shared=True), torch.stack([m(shared) for m in models]))

    y = torch.randint(0, 10, (len(models), 32))
    F.nll_loss(stack(x).flatten(0, 1), y.flatten(), reduction="sum").backward()
    for m, model in enumerate(models):
        F.nll_loss(model(x[m]), y[m], reduction="sum").backward()
        for name, parameter, index in stack.parameters_of(m):
            own = dict(model.named_parameters())[name].grad
            assert (parameter.grad[index] - own).abs().max() < 1e-6 * own.abs().max(), name


def test_fused_layers_refuse_models_that_are_not_linear_stacks() -> None:
    with pytest.raises(ValueError, match=r"not nn\.Linear"):
        ModelStack(_models(SMALL_CNN, ["relu", "relu"]), fused=True)
    wide = zoo.create_model("mlp:hidden=(32,)", act="relu", input_shape=SHAPE, num_classes=10)
    with pytest.raises(ValueError, match="differ"):
        ModelStack([*_models("mlp", ["relu"]), wide], fused=True)
    assert not ModelStack(_models(SMALL_CNN, ["relu", "tanh"])).fused  # vmap, by itself


def test_vmap_gives_the_outputs_of_the_models_mlp() -> None:
    """vmap over each structure's stacked parameters (here forced on an MLP of several
    activations: one group per activation, members out of order): within 1e-6."""
    models = _models("mlp", ACTS)
    stack = ModelStack(models, fused=False)
    assert not stack.fused and len(stack.groups) == 5  # the two relu models share a group
    _assert_state_of_is_state_dict(stack, models)
    x = torch.randn(len(models), 32, *SHAPE)
    with torch.no_grad():
        assert (stack(x) - _separately(models, x)).abs().max() < 1e-6
        shared = torch.randn(9, *SHAPE)
        expected = torch.stack([m(shared) for m in models])
        assert (stack(shared, shared=True) - expected).abs().max() < 1e-6


def _trained_cnns(acts: list[str]) -> list[torch.nn.Module]:
    """Small CNNs whose BatchNorm running statistics are not the initial ones."""
    models = _models(SMALL_CNN, acts)
    with torch.no_grad():
        for model in models:
            model.train()(torch.randn(16, *SHAPE) * 2 + 0.5)
    return models


def test_vmap_gives_the_outputs_of_the_models_cnn_eval() -> None:
    """A CNN (Conv2d, BatchNorm2d with running statistics) stacked in eval mode: within 1e-6."""
    models = [m.eval() for m in _trained_cnns(["relu", "tanh", "relu"])]
    stack = ModelStack(models).eval()
    assert not stack.fused
    _assert_state_of_is_state_dict(stack, models)
    x = torch.randn(3, 8, *SHAPE)
    with torch.no_grad():
        assert (stack(x) - _separately(models, x)).abs().max() < 1e-6


def test_vmap_batchnorm_in_train_mode_updates_each_models_buffers() -> None:
    """In train mode BatchNorm normalises with each model's batch statistics and updates each
    model's running statistics (and num_batches_tracked) as the model alone does."""
    models = _trained_cnns(["relu", "tanh", "relu"])
    stack = ModelStack(models).train()
    x = torch.randn(3, 8, *SHAPE)
    out, expected = stack(x), _separately([m.train() for m in models], x)
    assert (out - expected).abs().max() < 1e-6
    for m, model in enumerate(models):
        state = stack.state_of(m)
        for name, tensor in model.named_buffers():
            assert (state[name].double() - tensor.double()).abs().max() < 1e-6, (m, name)
        assert int(state["1.num_batches_tracked"]) == int(model[1].num_batches_tracked) == 2


def test_stack_eval_puts_the_vmap_models_in_eval_mode() -> None:
    """The stack's train()/eval() reaches the vmap path's models (meta copies, not submodules):
    BatchNorm and Dropout follow training and evaluation, as in the models alone."""
    models = _trained_cnns(["relu", "tanh", "relu"])  # in train mode, as a member's model is
    stack = ModelStack(models)
    stack.eval()
    for model in models:
        model.eval()
    before = {m: {k: v.clone() for k, v in stack.state_of(m).items()} for m in range(3)}
    x = torch.randn(3, 8, *SHAPE)
    with torch.no_grad():
        difference = (stack(x) - _separately(models, x)).abs().max()
    assert difference < 1e-6, f"stack.eval() outputs differ from the models' by {difference}"
    for m in range(3):
        for name, tensor in stack.state_of(m).items():
            assert torch.equal(tensor, before[m][name]), f"eval forward changed {name}"


# -- one optimizer over the stacked parameters ----------------------------------------------------


def _fused_members(
    tiny_mnist: Path, tmp_path: Path, arch: str, optimizer: str, acts: list[str], seeds: list[int]
) -> list[Any]:
    """The members :func:`train_fused` builds (each built as ``zoo train`` builds its run)."""
    common = {"arch": arch, "optimizer": optimizer, "dataset": TINY, "epochs": 1}
    configs = [
        RunConfig(act=act, seed=seed, data_dir=str(tiny_mnist), **common)
        for act in acts
        for seed in seeds
    ]
    slots = [tmp_path / str(i) for i in range(len(configs))]
    members, _ = fused_training.build_members(configs, slots)
    return members


@pytest.mark.parametrize(
    ("arch", "optimizer"),
    [
        ("mlp", "adam"),
        ("mlp", "adamw:weight_decay=0.05"),
        ("mlp", "sgd"),  # momentum 0.9
        (SMALL_CNN, "adamw:weight_decay=0.05"),  # vmap: a stack group per activation
    ],
)
def test_one_optimizer_over_the_stack_steps_each_member_as_its_own(
    tiny_mnist: Path, tmp_path: Path, arch: str, optimizer: str
) -> None:
    """FusedClassifier's optimizer (its configure_optimizers, with each member's parameter
    groups: no weight decay on biases and norms) against one ``create_optimizer`` per member,
    five steps of the same losses: parameters and buffers within 1e-6, and each member's slice
    of the optimizer state (what its checkpoint holds) is its own optimizer's state."""
    members = _fused_members(tiny_mnist, tmp_path, arch, optimizer, ["relu", "tanh"], [0, 1])
    models = [copy.deepcopy(m.module.model).train() for m in members]
    fused = FusedClassifier(members, [0, 1], metadata={})
    stacked_optimizer = fused.configure_optimizers()
    lr = members[0].module.hparams["lr"]
    own_optimizers = [create_optimizer(optimizer, model, lr=lr) for model in models]
    if "weight_decay" in optimizer:
        assert [g["weight_decay"] for g in stacked_optimizer.param_groups] == [0.0, 0.05] * len(
            fused.stack.groups
        )
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.randn(len(members), 16, *SHAPE, generator=generator)
        y = torch.randint(0, 10, (len(members), 16), generator=generator)
        stacked_optimizer.zero_grad()
        fused.losses(fused.stack(x), y, train=True).sum().backward()
        stacked_optimizer.step()
        for m, (member, model, own) in enumerate(zip(members, models, own_optimizers, strict=True)):
            own.zero_grad()
            member.module.loss(model(x[m]), y[m]).backward()
            own.step()

    state = stacked_optimizer.state_dict()
    for m, (member, model, own) in enumerate(zip(members, models, own_optimizers, strict=True)):
        stacked = fused.stack.state_of(m)
        for name, tensor in model.state_dict().items():
            difference = (stacked[name].double() - tensor.double()).abs().max()
            assert difference < 1e-6, (member.describe(), name, float(difference))
        slice_ = fused.member_optimizer_state(member, state)
        expected = own.state_dict()
        assert sorted(slice_["state"]) == sorted(expected["state"])
        for index, values in expected["state"].items():
            for key, value in values.items():
                got = slice_["state"][index][key]
                if torch.is_tensor(value) and value.ndim > 0:
                    assert (got - value).abs().max() < 1e-6, (member.describe(), index, key)
                else:
                    assert float(got) == float(value), (index, key)
        assert [g["params"] for g in slice_["param_groups"]] == [
            g["params"] for g in expected["param_groups"]
        ]
        for got, want in zip(slice_["param_groups"], expected["param_groups"], strict=True):
            assert {k: v for k, v in got.items() if k != "params"} == {
                k: v for k, v in want.items() if k != "params"
            }


def test_fusion_problem_names_what_cannot_be_fused() -> None:
    assert fusion_problem(RunConfig()) is None
    assert fusion_problem(RunConfig(optimizer="adamw:weight_decay=0.1")) is None
    assert fusion_problem(RunConfig(scheduler="cosine", warmup_steps=10)) is None
    lamb = fusion_problem(RunConfig(optimizer="lamb"))
    assert lamb is not None and "lamb" in lamb and "element-wise" in lamb
    early = fusion_problem(RunConfig(early_stopping=2))
    assert early is not None and "--early-stopping" in early
    clip = fusion_problem(RunConfig(gradient_clip=1.0))
    assert clip is not None and "--gradient-clip" in clip
    assert "plateau" in (fusion_problem(RunConfig(scheduler="plateau")) or "")
    assert "--compile" in (fusion_problem(RunConfig(compile=True)) or "")
    assert "--logger" in (fusion_problem(RunConfig(logger=("csv",))) or "")
    assert "one device" in (fusion_problem(RunConfig(devices="2")) or "")


def test_data_not_served_from_memory_cannot_be_fused(tiny_mnist: Path, tmp_path: Path) -> None:
    """``--num-workers 1`` selects the standard data path: train_fused refuses (compare then
    trains separately) before any run directory exists."""
    configs = [RunConfig(act=act, seed=0, dataset=TINY, data_dir=str(tiny_mnist), epochs=1,
                         num_workers=1) for act in ("relu", "tanh")]  # fmt: skip
    slots = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(FusionUnavailable, match="memory"):
        fused_training.train_fused(configs, slots, checkpoint=tmp_path / "fused" / "last.ckpt")
    assert not any(slot.exists() and any(slot.iterdir()) for slot in slots)


# -- a member is its separate run ----------------------------------------------------------------


class EveryStep(FusedClassifier):
    """FusedClassifier logging train_loss_step every step, as ``log_every_n_steps=1`` makes a
    separate run log it (train_fused builds its FusedClassifier with log_every = 50, and no
    option changes that)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_every = 1


class Trained(NamedTuple):
    separate: Path  # zoo.train, tanh seed 1, two epochs
    members: dict[tuple[str, int], Path]  # train_fused, relu and tanh x seeds 0 and 1
    separate_initial: dict[str, torch.Tensor]
    member_initial: dict[tuple[str, int], dict[str, torch.Tensor]]


@pytest.fixture(scope="module")
def trained(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One separate run (``zoo.train``, a train_loss_step row every step) and a fused group of
    2 activations x 2 seeds (FusedClassifier logging every step too), two epochs: 16 steps.
    Both record their model's weights as training starts."""
    root = tmp_path_factory.mktemp("fused-vs-separate")
    initial: dict[str, Any] = {}

    class Initial(L.Callback):
        def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
            initial["separate"] = {k: v.clone() for k, v in pl_module.model.state_dict().items()}

    result = zoo.train(
        "mlp", "tanh", TINY, epochs=2, seed=1, data_dir=tiny_mnist, diagnostics=True,
        output_dir=root / "separate", progress=False, callbacks=[Initial()],
        trainer_options={"log_every_n_steps": 1},
    )  # fmt: skip

    class Recording(EveryStep):
        def on_train_start(self) -> None:
            initial["members"] = {
                (m.config.act, int(m.config.seed)): {
                    k: v.detach().clone() for k, v in self.stack.state_of(m.index).items()
                }
                for m in self.members
            }

    keys = [(act, seed) for act in ("relu", "tanh") for seed in (0, 1)]
    configs = [RunConfig(act=act, seed=seed, dataset=TINY, epochs=2, data_dir=str(tiny_mnist),
                         diagnostics=True) for act, seed in keys]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fused_training, "FusedClassifier", Recording)
        outcomes = fused_training.train_fused(
            configs, [root / "slots" / f"{a}-{s}" for a, s in keys],
            checkpoint=root / "fused" / "last.ckpt",
        )  # fmt: skip
    assert [o["status"] for o in outcomes] == ["finished"] * 4, outcomes
    members = {key: Path(o["run_dir"]) for key, o in zip(keys, outcomes, strict=True)}
    return Trained(Path(result.run_dir), members, initial["separate"], initial["members"])


def test_a_member_starts_from_the_weights_of_its_separate_run(trained: Trained) -> None:
    """Bit for bit, as training starts; a member of another seed starts elsewhere, and the
    activation does not change the initial weights of a seed."""
    own = trained.member_initial[("tanh", 1)]
    assert list(own) == list(trained.separate_initial)
    for name, tensor in trained.separate_initial.items():
        assert torch.equal(own[name], tensor), name
        assert torch.equal(trained.member_initial[("relu", 1)][name], tensor), name
    assert not torch.equal(trained.member_initial[("tanh", 0)]["1.weight"], own["1.weight"])


def test_a_members_loss_curve_is_its_separate_runs(trained: Trained) -> None:
    """train_loss_step of the first 16 steps (two epochs: the data order of both epochs) of
    the fused tanh seed-1 member against ``zoo train --seed 1``: relative difference below
    1e-5 at every step (measured: about 1e-7, float rounding of the batched matmuls). The
    members of seed 0 follow another curve."""
    separate = _step_losses(trained.separate)
    member = _step_losses(trained.members[("tanh", 1)])
    assert sorted(separate)[:16] == sorted(member)[:16] == list(range(16))
    for step in range(16):
        assert _relative(member[step], separate[step]) < 1e-5, (step, member[step], separate[step])
    other = _step_losses(trained.members[("tanh", 0)])
    assert max(_relative(other[s], separate[s]) for s in range(1, 16)) > 1e-3


def test_a_members_epochs_and_test_are_its_separate_runs(trained: Trained) -> None:
    """train_loss, val_loss and val_acc of both epochs within 1e-5 (relative), the same
    test accuracy (at most one of the 200 test images apart) and the same result fields."""
    separate, member = trained.separate, trained.members[("tanh", 1)]
    for key in ("train_loss", "val_loss", "val_acc", "train_acc"):
        want, got = _by_epoch(separate, key), _by_epoch(member, key)
        assert sorted(want) == sorted(got) == [0, 1], key
        for epoch in want:
            assert _relative(got[epoch], want[epoch]) < 1e-5, (key, epoch, got[epoch], want[epoch])
    want, got = _results(separate), _results(member)
    assert abs(got["test_acc"] - want["test_acc"]) <= 1 / TEST_IMAGES + 1e-9
    assert _relative(got["test_loss"], want["test_loss"]) < 1e-4
    for key in ("epochs", "steps", "seed", "arch", "act", "dataset"):
        assert got[key] == want[key], key
    assert got["best_val_acc"] == pytest.approx(want["best_val_acc"], rel=1e-5)
    assert _config(member)["fused"]["members"] == 4


def _fused_against_separate(
    root: Path, tiny_mnist: Path, arch: str = "mlp", epochs: int = 2, **options: Any
) -> tuple[Path, Path]:
    """``zoo.train(arch, "tanh", seed=1, **options)`` and the tanh seed-1 member of a fused
    group of relu and tanh x seeds 0 and 1 with the same options: their run directories."""
    common = {"dataset": TINY, "epochs": epochs, "data_dir": str(tiny_mnist), "diagnostics": True}
    separate = zoo.train(
        arch, "tanh", seed=1, output_dir=root / "separate", progress=False,
        trainer_options={"log_every_n_steps": 1}, **common, **options,
    )  # fmt: skip
    keys = [(act, seed) for act in ("relu", "tanh") for seed in (0, 1)]
    configs = [RunConfig(arch=arch, act=a, seed=s, **common, **options) for a, s in keys]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fused_training, "FusedClassifier", EveryStep)
        outcomes = fused_training.train_fused(
            configs, [root / f"{a}-{s}" for a, s in keys], checkpoint=root / "fused" / "last.ckpt"
        )
    assert [o["status"] for o in outcomes] == ["finished"] * 4, outcomes
    return Path(separate.run_dir), Path(outcomes[3]["run_dir"])


@pytest.mark.parametrize(
    "options",
    [
        {"augment": ("affine:degrees=10",)},  # each seed's augmentation draws
        {"scheduler": "cosine", "warmup_steps": 3},  # the schedule steps every member
        {"label_smoothing": 0.1},
        {"accumulate_grad_batches": 2},
        {"optimizer": "sgd:nesterov=True", "batch_size": 100},
    ],
    ids=["augment", "cosine-warmup", "label-smoothing", "accumulate", "sgd-nesterov-batch100"],
)
def test_a_member_is_its_separate_run_with_recipe_options(
    tiny_mnist: Path, tmp_path: Path, options: dict[str, Any]
) -> None:
    """With recipe options the member still follows its separate run: every logged
    train_loss_step, and val_loss of both epochs, within 1e-5 (relative; measured about 2e-7),
    and the same test accuracy and steps."""
    separate, member = _fused_against_separate(tmp_path, tiny_mnist, **options)
    want, got = _step_losses(separate), _step_losses(member)
    assert sorted(got) == sorted(want) and len(want) >= 8
    for step, loss in want.items():
        assert _relative(got[step], loss) < 1e-5, (step, got[step], loss)
    want, got = _by_epoch(separate, "val_loss"), _by_epoch(member, "val_loss")
    assert sorted(got) == sorted(want) == [0, 1]
    for epoch, loss in want.items():
        assert _relative(got[epoch], loss) < 1e-5, (epoch, got[epoch], loss)
    assert _results(member)["steps"] == _results(separate)["steps"]
    assert abs(_results(member)["test_acc"] - _results(separate)["test_acc"]) < 1e-6


def test_a_vmap_member_validates_and_tests_as_its_separate_run(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    """A CNN member (BatchNorm: the vmap path) trains, validates and tests as its separate
    run: train and val loss within 1e-5 (measured: 1e-7)."""
    separate, member = _fused_against_separate(tmp_path, tiny_mnist, arch=SMALL_CNN, epochs=1)
    assert _config(member)["fused"]["engine"].startswith("torch.func.vmap")
    want, got = _by_epoch(separate, "train_loss")[0], _by_epoch(member, "train_loss")[0]
    assert _relative(got, want) < 1e-5, (got, want)
    want, got = _by_epoch(separate, "val_loss")[0], _by_epoch(member, "val_loss")[0]
    assert _relative(got, want) < 1e-5, f"val_loss {got} fused, {want} separate"
    assert abs(_results(member)["test_acc"] - _results(separate)["test_acc"]) < 1e-6


# -- zoo compare, fused (the default) ------------------------------------------------------------


class Compared(NamedTuple):
    output: Path
    payload: dict[str, Any]
    stderr: str

    def run_dirs(self) -> dict[tuple[str, int], Path]:
        return {(r["activation"], r["seed"]): self.output / r["run_dir"]
                for r in self.payload["runs"]}  # fmt: skip


@pytest.fixture(scope="module")
def fused_comparison(
    tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]
) -> Compared:
    output = tmp_path_factory.mktemp("fused-compare") / "cmp"
    completed = _zoo(env, *_compare_args(tiny_mnist, output), "--jobs", "1")  # one group of 4
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert payload == json.loads((output / "comparison.json").read_text())
    return Compared(output, payload, completed.stderr)


def test_fused_comparison_writes_an_ordinary_run_directory_per_member(
    fused_comparison: Compared,
) -> None:
    from zoo.training.checkpoints import load_model, read_checkpoint

    assert "training 4 runs fused, in 1 group(s) of 4" in fused_comparison.stderr
    assert fused_comparison.payload["training"] == {
        "mode": "fused", "groups": [[["relu", 0], ["relu", 1], ["tanh", 0], ["tanh", 1]]]
    }  # fmt: skip
    runs = fused_comparison.run_dirs()
    assert sorted(runs) == [("relu", 0), ("relu", 1), ("tanh", 0), ("tanh", 1)]
    indices = set()
    for (act, seed), run_dir in runs.items():
        config = _config(run_dir)
        assert config["status"] == "finished" and config["seed"] == seed
        assert config["config"]["act"] == act and config["config"]["diagnostics"] is True
        assert config["fused"]["members"] == 4 and config["fused"]["engine"].startswith("fused")
        indices.add(config["fused"]["index"])
        results = _results(run_dir)
        assert (results["epochs"], results["steps"], results["seed"]) == (1, 8, seed)
        assert (run_dir / "diagnostics.json").is_file()
        assert _by_epoch(run_dir, "val_acc") == {0: pytest.approx(results["best_val_acc"])}
        for name in ("best.ckpt", "last.ckpt"):
            checkpoint = read_checkpoint(run_dir / "checkpoints" / name)
            assert checkpoint["hyper_parameters"]["act"] == act
            assert checkpoint["hyper_parameters"]["seed"] == seed
            assert checkpoint["global_step"] == 8 and checkpoint["epoch"] == 0
            (optimizer,) = checkpoint["optimizer_states"]
            assert len(optimizer["state"]) == 6  # three Linear layers: weight and bias
            model = load_model(run_dir / "checkpoints" / name)  # an ordinary ZooClassifier
            assert list(model.state_dict()) == list(checkpoint["state_dict"])
    assert indices == {0, 1, 2, 3}
    assert fused_comparison.output.joinpath("report.md").is_file()


def test_zoo_runs_reads_every_member(fused_comparison: Compared) -> None:
    for (act, seed), run_dir in fused_comparison.run_dirs().items():
        invoked = _invoke("runs", str(run_dir.parent), "--json")
        assert invoked.exit_code == 0, invoked.output
        (listed,) = json.loads(invoked.stdout)
        assert Path(listed["run_dir"]) == run_dir
        assert (listed["act"], listed["seed"], listed["status"]) == (act, seed, "finished")
        assert listed["test_acc"] == pytest.approx(_results(run_dir)["test_acc"], abs=1e-6)


def test_zoo_evaluate_gives_a_members_test_accuracy(
    fused_comparison: Compared, tiny_mnist: Path
) -> None:
    """``zoo evaluate RUN_DIR`` (its best checkpoint) on the test split: the accuracy and loss
    in results.json (within 1e-6); the other members are evaluated in this process."""
    from zoo.training.evaluation import evaluate

    runs = fused_comparison.run_dirs()
    run_dir = runs[("tanh", 1)]  # the last member: the last slice of the stack
    invoked = _invoke("evaluate", str(run_dir), "--data-dir", str(tiny_mnist), "--json")
    assert invoked.exit_code == 0, invoked.output
    evaluation = json.loads(invoked.stdout)
    assert evaluation["samples"] == TEST_IMAGES
    assert evaluation["accuracy"] == pytest.approx(_results(run_dir)["test_acc"], abs=1e-6)
    assert evaluation["loss"] == pytest.approx(_results(run_dir)["test_loss"], rel=1e-5)
    for run_dir in runs.values():
        result = evaluate(run_dir, data_dir=tiny_mnist)
        assert result.accuracy == pytest.approx(_results(run_dir)["test_acc"], abs=1e-6)


def test_zoo_predict_takes_a_members_checkpoint(fused_comparison: Compared, tmp_path: Path) -> None:
    """The member's model (rebuilt from its checkpoint here) on test digits written as PNG
    files: ``zoo predict`` says the same classes and probabilities (within 1e-5)."""
    from PIL import Image

    from zoo.training.checkpoints import load_model

    images, _ = synthetic_digits(TEST_IMAGES, seed=2)  # tiny_mnist's test images
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(images[i]).save(paths[-1])
    checkpoint = fused_comparison.run_dirs()[("relu", 1)] / "checkpoints" / "best.ckpt"
    invoked = _invoke("predict", str(checkpoint), *map(str, paths), "--top-k", "1", "--json")
    assert invoked.exit_code == 0, invoked.output
    predictions = json.loads(invoked.stdout)

    model = load_model(checkpoint)
    datamodule = zoo.create_datamodule(TINY)  # the normalisation predict applies
    (mean,), (std,) = datamodule.mean, datamodule.std
    batch = (torch.tensor(images[:6], dtype=torch.float32).unsqueeze(1) / 255 - mean) / std
    with torch.no_grad():
        probabilities = F.softmax(model(batch), dim=1)
    assert [p["image"] for p in predictions] == [str(p) for p in paths]
    for prediction, expected in zip(predictions, probabilities, strict=True):
        (top,) = prediction["top"]
        assert top["class"] == str(int(expected.argmax()))
        assert top["probability"] == pytest.approx(float(expected.max()), abs=1e-5)


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # the copy's checkpoints
def test_zoo_train_resume_continues_a_member(
    fused_comparison: Compared, trained: Trained, tmp_path: Path
) -> None:
    """``zoo train --resume MEMBER_DIR --epochs 2`` (on a copy of the comparison) continues the
    one-epoch member: its second epoch is the second epoch of ``zoo train --seed 1 --epochs 2``
    (the separate run of the ``trained`` fixture): val_loss, val_acc and train_loss within
    1e-5, relative."""
    copy_dir = tmp_path / "cmp"
    shutil.copytree(fused_comparison.output, copy_dir)
    run_dir = copy_dir / fused_comparison.run_dirs()[("tanh", 1)].relative_to(
        fused_comparison.output
    )
    invoked = _invoke("train", "--resume", str(run_dir), "--epochs", "2", "--json")
    assert invoked.exit_code == 0, invoked.output
    result = json.loads(invoked.stdout.strip().splitlines()[-1])
    assert Path(result["run_dir"]) == run_dir
    results = _results(run_dir)
    assert (results["epochs"], results["steps"]) == (2, 16)
    config = _config(run_dir)
    assert config["status"] == "finished" and len(config["resumed"]) == 1
    for key in ("val_loss", "val_acc", "train_loss"):
        got, want = _by_epoch(run_dir, key), _by_epoch(trained.separate, key)
        assert sorted(got) == [0, 1], key  # the member's epoch-0 row, and epoch 1's
        assert _relative(got[1], want[1]) < 1e-5, (key, got[1], want[1])


# -- fused against --separate --------------------------------------------------------------------


@pytest.fixture(scope="module")
def separate_comparison(
    tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]
) -> Compared:
    """The fused comparison's runs as four ``zoo train`` processes (``--separate``), all four
    at once: on a busy machine, twice as fast as two at a time."""
    output = tmp_path_factory.mktemp("separate-compare") / "cmp"
    completed = _zoo(env, *_compare_args(tiny_mnist, output, "--separate", "--jobs", "4"))
    assert completed.returncode == 0, completed.stderr
    return Compared(output, json.loads(completed.stdout), completed.stderr)


def test_fused_and_separate_comparisons_agree(
    fused_comparison: Compared, separate_comparison: Compared
) -> None:
    """Per run, the test accuracy at most 2 of the 200 test images apart and the best val acc
    at most 2 of the 100 validation images, the same fields in results.json and the same
    parameter count; the same activations, rows and columns."""
    assert "fused" not in separate_comparison.stderr
    fused, separate = fused_comparison.run_dirs(), separate_comparison.run_dirs()
    assert sorted(fused) == sorted(separate)
    for key, run_dir in separate.items():
        assert "fused" not in _config(run_dir)  # a zoo train process
        want, got = _results(run_dir), _results(fused[key])
        assert abs(got["test_acc"] - want["test_acc"]) <= 2 / TEST_IMAGES + 1e-9, key
        assert abs(got["best_val_acc"] - want["best_val_acc"]) <= 2 / 100 + 1e-9, key
        assert sorted(got) == sorted(want), key  # results.json holds the same fields
        assert got["num_params"] == want["num_params"] > 0, key
    a, b = fused_comparison.payload, separate_comparison.payload
    assert [r["activation"] for r in a["summary"]] == [r["activation"] for r in b["summary"]]
    assert [sorted(r) for r in a["summary"]] == [sorted(r) for r in b["summary"]]
    assert [sorted(r) for r in a["runs"]] == [sorted(r) for r in b["runs"]]
    for row_a, row_b in zip(a["summary"], b["summary"], strict=True):
        assert abs(row_a["test_acc"] - row_b["test_acc"]) <= 2 / TEST_IMAGES + 1e-9
    with (
        open(fused_comparison.output / "comparison.csv") as f1,
        open(separate_comparison.output / "comparison.csv") as f2,
    ):
        header = next(csv.reader(f1))
        assert header == next(csv.reader(f2))
    assert "activation" in header and "test_acc" in header
    headings = [
        [line for line in (c.output / "report.md").read_text().splitlines()
         if line.startswith("| activation |")]
        for c in (fused_comparison, separate_comparison)
    ]  # fmt: skip
    assert headings[0] == headings[1]
    assert headings[0][0] == "| " + " | ".join(title for _, title in COLUMNS) + " |"


def test_group_size_one_trains_a_group_per_run_with_the_same_results(
    fused_comparison: Compared, tiny_mnist: Path, tmp_path: Path
) -> None:
    """``group_size=1``: four groups of one; each run's test accuracy and best val acc equal
    those of the four-member group (exactly: the members do not mix)."""
    messages: list[str] = []
    config = RunConfig(epochs=1, dataset=TINY, data_dir=str(tiny_mnist))
    plan = ComparisonPlan(("relu", "tanh"), config, seeds=2, output_dir=tmp_path, group_size=1,
                          plots=False)  # fmt: skip
    result = compare(plan, echo=messages.append)
    assert any(
        m.startswith("training 4 runs fused, in 4 group(s) of 1, 1, 1, 1,") for m in messages
    )
    assert len([m for m in messages if m.startswith("group ")]) == 4
    grouped = fused_comparison.run_dirs()
    for row in result.runs:
        run_dir = tmp_path / row["run_dir"]
        assert _config(run_dir)["fused"]["members"] == 1
        want = _results(grouped[(row["activation"], row["seed"])])
        got = _results(run_dir)
        assert got["test_acc"] == want["test_acc"], row
        assert got["best_val_acc"] == pytest.approx(want["best_val_acc"], abs=1e-9), row


# -- failures and fallbacks ----------------------------------------------------------------------

BOOM_PLUGIN = '''
import torch
from torch import nn

import zoo


class Boom(nn.Module):
    """x * 1e30: finite on the preflight's inputs (|x| <= 3, and zeros), but two such layers
    overflow float32 on the first training batch, so the loss is NaN from step 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1e30


@zoo.hookimpl
def register_activations(register):
    register("boom", Boom, summary="x * 1e30")
'''


def test_a_member_that_diverges_stops_alone(
    fused_comparison: Compared, tiny_mnist: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """relu and a diverging activation in one fused group: the boom runs fail as NaN runs
    (no checkpoint), the relu runs finish with the results they have beside tanh (at most one
    test image apart), the comparison exits 1 naming the failed runs and writes the rest."""
    plugin = tmp_path / "boom.py"
    plugin.write_text(BOOM_PLUGIN)
    output = tmp_path / "cmp"
    args = _compare_args(tiny_mnist, output)
    args[args.index("tanh")] = "boom"
    completed = _zoo(env, "-p", str(plugin), *args)
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "training 4 runs fused, in " in completed.stderr
    assert "2 run(s) failed: boom seed 0, boom seed 1" in completed.stderr

    data = json.loads((output / "comparison.json").read_text())
    assert [(r["activation"], r["seed"]) for r in data["runs"]] == [("relu", 0), ("relu", 1)]
    assert [s["activation"] for s in data["summary"]] == ["relu"]
    assert [(f["act"], f["seed"]) for f in data["failed"]] == [("boom", 0), ("boom", 1)]
    beside_tanh = fused_comparison.run_dirs()
    for row in data["runs"]:
        run_dir = output / row["run_dir"]
        assert _config(run_dir)["status"] == "finished"
        want = _results(beside_tanh[(row["activation"], row["seed"])])["test_acc"]
        assert abs(_results(run_dir)["test_acc"] - want) <= 1 / TEST_IMAGES + 1e-9
    boom_runs = _runs_in(output, "boom")
    assert len(boom_runs) == 2
    for run_dir in boom_runs:
        config = _config(run_dir)
        assert config["status"] == "failed"
        assert "NonFiniteLossError" in config["error"] and "NaN or infinite" in config["error"]
        assert not list((run_dir / "checkpoints").glob("*.ckpt"))
        assert not (run_dir / "results.json").exists()


def test_settings_that_cannot_be_fused_train_separately(
    tiny_mnist: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """``--early-stopping 1``: a message on stderr, then one ``zoo train`` process per run.
    (Not with ``--max-steps`` below an epoch: ``zoo train --early-stopping`` itself fails then,
    with no val_acc to check at the epoch's end; reported.)"""
    output = tmp_path / "cmp"
    completed = _zoo(
        env, "compare", "--act", "relu", "--seeds", "1", "--epochs", "1", "--early-stopping", "1",
        "--dataset", TINY, "--data-dir", str(tiny_mnist), "--output-dir", str(output), "--json",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert (
        "training the runs separately: --early-stopping stops each run on its own"
        in completed.stderr
    )
    assert "runs fused" not in completed.stderr
    (row,) = json.loads(completed.stdout)["runs"]
    config = _config(output / row["run_dir"])
    assert config["status"] == "finished" and "fused" not in config
    assert config["config"]["early_stopping"] == 1
    assert (output / row["run_dir"]).parent.joinpath("train.log").is_file()  # a zoo train


# -- interrupted, then rerun ---------------------------------------------------------------------


class Interrupted(NamedTuple):
    output: Path
    args: list[str]
    returncode: int
    stderr: str


INTERRUPT_BATCH = 2  # 250 steps an epoch
INTERRUPT_EPOCHS = 3  # SIGINT after the first: two epochs left, about a second on one thread


@pytest.fixture(scope="module")
def interrupted(
    tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]
) -> Interrupted:
    """``zoo compare`` of relu and tanh (one seed, three epochs) in two groups of one, trained
    one after the other in this process (``--jobs 1``), sent
    SIGINT once the first group's member has its first checkpoint (the end of epoch 0)."""
    output = tmp_path_factory.mktemp("interrupt") / "cmp"
    args = ["compare", "--act", "relu", "--act", "tanh", "--seeds", "1",
            "--epochs", str(INTERRUPT_EPOCHS), "--batch-size", str(INTERRUPT_BATCH),
            "--group-size", "1", "--jobs", "1", "--dataset", TINY, "--data-dir", str(tiny_mnist),
            "--output-dir", str(output), "--json"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not list(output.glob("runs/relu-*/*/checkpoints/last.ckpt")):
        if process.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=240)
    return Interrupted(output, args, process.returncode, stderr)


def test_sigint_stops_a_fused_comparison(interrupted: Interrupted) -> None:
    """Exit 130 (128 + SIGINT, as ``zoo train``) with a message and no traceback, the member
    marked interrupted; and the comparison stops there: the second group does not start (as a
    Ctrl-C stops --separate runs)."""
    assert interrupted.returncode == 128 + signal.SIGINT, interrupted.stderr
    assert "Traceback" not in interrupted.stderr
    assert "Interrupted: SIGINT stopped the run" in interrupted.stderr
    assert "Rerun the same command" in interrupted.stderr
    (run_dir,) = _runs_in(interrupted.output, "relu")
    config = _config(run_dir)
    assert config["status"] == "interrupted", config
    assert "SIGINT" in config["error"]
    assert not (run_dir / "results.json").exists()
    started = list(interrupted.output.glob("runs/tanh-*/*/config.json"))
    assert not started, f"the second group trained after the SIGINT:\n{interrupted.stderr}"


def test_a_damaged_group_checkpoint_stops_the_rerun_naming_it(
    interrupted: Interrupted, env: dict[str, str], tmp_path: Path
) -> None:
    """The interrupted comparison (a copy), its group's ``fused/<group>/last.ckpt`` truncated,
    rerun with the real ``zoo compare``: exit 1 with one line naming the file and the remedy
    (delete it to restart the group), no traceback, and nothing changed: the member's run is
    still the one interrupted run of its slot, no new run is started. Deleting the file, as
    the message says, restarts the group and the comparison finishes."""
    output = tmp_path / "cmp"
    shutil.copytree(interrupted.output, output)
    (checkpoint,) = output.glob("fused/*/last.ckpt")
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    args = [*interrupted.args[: interrupted.args.index("--output-dir") + 1], str(output), "--json"]
    (before,) = _runs_in(output, "relu")

    damaged = _zoo(env, *args)
    assert damaged.returncode == 1, damaged.stderr
    assert "Traceback" not in damaged.stderr
    (line,) = [line for line in damaged.stderr.splitlines() if str(checkpoint) in line]
    assert "damaged" in line and "delete that file to restart the group" in line, line
    assert "weights_only" not in damaged.stderr
    assert _runs_in(output, "relu") == [before]
    assert _config(before)["status"] == "interrupted"
    assert not list(output.glob("runs/tanh-*/*/config.json"))

    checkpoint.unlink()
    invoked = _invoke(*args)
    assert invoked.exit_code == 0, invoked.output
    finished = [r for r in _runs_in(output, "relu") if _config(r)["status"] == "finished"]
    assert len(finished) == 1 and _results(finished[0])["steps"] == INTERRUPT_EPOCHS * 250


def test_rerun_after_sigint_finishes_every_run(
    interrupted: Interrupted, tiny_mnist: Path, tmp_path: Path
) -> None:
    """The same command again: exit 0, each slot ends with one finished run (the interrupted
    member goes on in its own run directory), whose results are those of a fused run that was
    never stopped: val_loss and train_loss of every epoch (the interrupted one included) and
    the logged train_loss_step rows within 1e-5 (relative), the same test accuracy."""
    invoked = _invoke(*interrupted.args)
    assert invoked.exit_code == 0, invoked.output
    assert f"resuming the fused run from {interrupted.output}" in invoked.stderr
    slots = sorted(p for p in (interrupted.output / "runs").iterdir() if p.is_dir())
    assert [s.name.split("-")[0] for s in slots] == ["relu", "tanh"]
    for slot in slots:
        (run_dir,) = _runs_in(slot.parent, slot.name)
        assert _config(run_dir)["status"] == "finished", run_dir
        assert _results(run_dir)["steps"] == INTERRUPT_EPOCHS * 250
    data = json.loads(invoked.stdout)
    assert [(r["activation"], r["seed"]) for r in data["runs"]] == [("relu", 0), ("tanh", 0)]

    (resumed,) = _runs_in(interrupted.output, "relu")
    config = RunConfig(act="relu", seed=0, epochs=INTERRUPT_EPOCHS, batch_size=INTERRUPT_BATCH,
                       dataset=TINY, data_dir=str(tiny_mnist), diagnostics=True)  # fmt: skip
    (outcome,) = fused_training.train_fused(
        [config], [tmp_path / "slot"], checkpoint=tmp_path / "fused" / "last.ckpt"
    )
    never_stopped = Path(outcome["run_dir"])
    for key in ("val_loss", "train_loss"):
        got, want = _by_epoch(resumed, key), _by_epoch(never_stopped, key)
        assert sorted(got) == sorted(want) == list(range(INTERRUPT_EPOCHS)), key
        for epoch in want:
            assert _relative(got[epoch], want[epoch]) < 1e-5, (key, epoch, got, want)
    got, want = _step_losses(resumed), _step_losses(never_stopped)
    assert sorted(got) == sorted(want) and len(want) == 15  # a row every 50 steps
    for step, loss in want.items():
        assert _relative(got[step], loss) < 1e-5, (step, got[step], loss)
    assert _results(resumed)["test_acc"] == _results(never_stopped)["test_acc"]
