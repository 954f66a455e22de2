"""The Lightning and torch internals zoo relies on, checked on the installed versions: what each
speed-up of ``zoo._compat.speedups`` assumes (and its gate), and the loop progress that exact resume
reads (``zoo._compat.lightning``); and training with the gate closed gives the same results."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

import zoo
from zoo._compat import speedups as speedups
from zoo._compat.lightning import batches_trained_in_epoch, epoch_in_progress
from zoo.plugins.optimizers import OPTIMIZERS
from zoo.training.callbacks import EpochCheckpoint, ThrottledProgressBar
from zoo.training.module import ZooClassifier
from zoo.training.recipe import create_optimizer

TINY = "mnist:val_size=100"  # 500 training images: 8 steps an epoch at batch 64
STEPS_PER_EPOCH = 8


# -- a real tiny fit, watched ----------------------------------------------------------------


class Probe(L.Callback):
    """Records, during a real fit, what the speed-ups and the resume reads assume."""

    def __init__(self) -> None:
        self.forward_hook_names: set[str] = set()
        self.progress: list[tuple[str, int, int, int, int]] = []
        self.health_checks = 0
        self.checkpoint_step_saves = 0
        self.checkpoint_step_changes: list[str] = []
        self.state_keys: tuple[str, str] = ("", "")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        def record(*args: Any) -> None:
            self.forward_hook_names.add(str(pl_module._current_fx_name))

        pl_module.model.register_forward_hook(record)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        (optimizer,) = trainer.optimizers
        check = optimizer._accelerator_graph_capture_health_check

        def counted() -> None:
            self.health_checks += 1
            check()

        optimizer._accelerator_graph_capture_health_check = counted  # type: ignore[method-assign]

    def _record(self, when: str, trainer: L.Trainer, batch_idx: int) -> None:
        epoch, trained = epoch_in_progress(trainer), batches_trained_in_epoch(trainer)
        self.progress.append((when, trainer.current_epoch, batch_idx, epoch, trained))

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._record("start", trainer, args[-1])

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        self._record("end", trainer, i)
        # Lightning's own per-step check, on zoo's checkpoint callback: it must do nothing.
        callback = trainer.checkpoint_callback
        before = {name: id(value) for name, value in vars(callback).items()}

        def counted_save(*args: Any, **kwargs: Any) -> None:
            self.checkpoint_step_saves += 1

        trainer.save_checkpoint = counted_save  # type: ignore[method-assign]
        try:
            ModelCheckpoint.on_train_batch_end(callback, trainer, pl_module, outputs, batch, i)  # type: ignore[arg-type]
        finally:
            del trainer.save_checkpoint
        after = {name: id(value) for name, value in vars(callback).items()}
        self.checkpoint_step_changes += [name for name in after if after[name] != before.get(name)]

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        callback = trainer.checkpoint_callback
        lightning_key = inspect.getattr_static(ModelCheckpoint, "state_key").fget(callback)
        self.state_keys = (callback.state_key, lightning_key)


def _counting(counts: Counter[str], key: str, function: Any) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return function(*args, **kwargs)

    return counted


@pytest.fixture(scope="module")
def watched_fit(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two epochs (16 steps, progress bar on), with Lightning's calls into what the speed-ups
    replace counted."""
    loop_module = importlib.import_module("lightning.pytorch.loops.training_epoch_loop")
    counts: Counter[str] = Counter()
    module_setattr = ZooClassifier.__setattr__

    def setattr_counted(self: Any, name: str, value: Any) -> None:
        counts["_current_fx_name"] += name == "_current_fx_name"
        module_setattr(self, name, value)

    def signature_counted(hook: Any, *args: Any, **kwargs: Any) -> bool:
        counts["training_step signature"] += getattr(hook, "__name__", "") == "training_step"
        return inspected(hook, *args, **kwargs)

    inspected = loop_module.is_param_in_hook_signature
    probe = Probe()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ZooClassifier, "__setattr__", setattr_counted)
        patch.setattr(loop_module, "is_param_in_hook_signature", signature_counted)
        redraw = _counting(counts, "_should_update", ThrottledProgressBar._should_update)
        patch.setattr(ThrottledProgressBar, "_should_update", redraw)
        result = zoo.train(
            "mlp:hidden=(8,)",
            dataset=TINY,
            data_dir=tiny_mnist,
            epochs=2,
            seed=0,
            output_dir=tmp_path_factory.mktemp("watched"),
            progress=True,
            callbacks=[probe],
        )
    return {"result": result, "probe": probe, "counts": counts}


# -- each speed-up's assumption --------------------------------------------------------------


def test_lightning_sets_the_hook_name_around_every_hook(watched_fit: dict[str, Any]) -> None:
    # Set dozens of times a step (what hook_name saves on), around the module's steps too.
    steps = watched_fit["result"].steps
    assert watched_fit["counts"]["_current_fx_name"] > 20 * steps
    assert {"training_step", "validation_step", "test_step"} <= watched_fit[
        "probe"
    ].forward_hook_names
    assert speedups.lightning_sets_hook_name()
    module = ZooClassifier("mlp:hidden=(8,)", "relu", (1, 28, 28), 10)
    assert module._current_fx_name is None  # a LightningModule starts with it, as a plain value
    module._current_fx_name = "training_step"
    assert vars(module)["_current_fx_name"] == "training_step"
    assert "_current_fx_name" not in module._modules and "_current_fx_name" not in module._buffers


def test_lightning_inspects_training_step_on_every_step(watched_fit: dict[str, Any]) -> None:
    assert watched_fit["counts"]["training_step signature"] == watched_fit["result"].steps
    assert speedups.lightning_inspects_step()

    # inspect (getfullargspec, as Lightning calls it) returns a stored signature as it is.
    def step(self: Any, batch: Any) -> None:
        return None

    step.__signature__ = inspect.signature(lambda self, batch, batch_idx: None)  # type: ignore[attr-defined]
    assert inspect.getfullargspec(step).args == ["self", "batch", "batch_idx"]
    signature_utils = importlib.import_module("lightning.pytorch.utilities.signature_utils")
    module = ZooClassifier("mlp:hidden=(8,)", "relu", (1, 28, 28), 10)
    assert signature_utils.is_param_in_hook_signature(module.training_step, "batch_idx", min_args=2)
    if "step_signature" in speedups.applied():
        stored = ZooClassifier.training_step.__signature__  # type: ignore[attr-defined]
        assert inspect.signature(ZooClassifier.training_step) is stored


def test_adam_checks_graph_capture_on_every_step(watched_fit: dict[str, Any]) -> None:
    assert watched_fit["probe"].health_checks == watched_fit["result"].steps
    model = torch.nn.Linear(4, 2)
    parameters = list(model.parameters())
    for name, factory, _ in OPTIMIZERS:  # the built-in ones, without the speed-up
        plain = factory(model)
        assert callable(plain._accelerator_graph_capture_health_check), name
        plain._accelerator_graph_capture_health_check()  # on CPU parameters it finds nothing
    # Adam and AdamW call it in step(), fused or not.
    for fused in (False, True):
        optimizer = torch.optim.Adam(parameters, fused=fused)
        calls = Counter[str]()
        check = optimizer._accelerator_graph_capture_health_check
        optimizer._accelerator_graph_capture_health_check = _counting(calls, "check", check)  # type: ignore[method-assign]
        torch.nn.functional.mse_loss(parameters[0], torch.zeros(2, 4)).backward()
        optimizer.step()
        assert calls["check"] == 1, fused
    if "graph_capture_check" in speedups.applied():
        patched = create_optimizer("adam", model)
        assert patched._accelerator_graph_capture_health_check is speedups.no_check


def test_checkpoint_state_key_is_modelcheckpoints_and_fixed(
    watched_fit: dict[str, Any], tmp_path: Path
) -> None:
    # Lightning's key: the class name and a repr of settings that stay as they were made.
    options = {"dirpath": tmp_path, "monitor": "val_acc", "mode": "max"}
    settings = {
        "monitor": "val_acc",
        "mode": "max",
        "every_n_train_steps": 0,
        "every_n_epochs": 1,
        "train_time_interval": None,
    }
    assert isinstance(inspect.getattr_static(ModelCheckpoint, "state_key"), property)
    assert ModelCheckpoint(**options).state_key == f"ModelCheckpoint{settings!r}"
    assert EpochCheckpoint(**options).state_key == f"ModelCheckpoint{settings!r}"
    zoo_key, lightning_key = watched_fit["probe"].state_keys
    assert lightning_key == "Epoch" + zoo_key.removeprefix("Model")  # after a whole fit
    assert zoo_key.startswith("ModelCheckpoint{'monitor': 'val_acc'")
    # Lightning formats it around every callback hook it calls (what state_key saves on).
    call = importlib.import_module("lightning.pytorch.trainer.call")
    assert "state_key" in speedups.code_names(call, "_call_callback_hooks")
    checkpoint = torch.load(watched_fit["result"].checkpoint, weights_only=True)
    assert zoo_key in checkpoint["callbacks"]


def test_checkpoints_step_check_does_nothing_for_epoch_checkpoints(
    watched_fit: dict[str, Any],
) -> None:
    probe = watched_fit["probe"]
    assert probe.checkpoint_step_saves == 0
    assert probe.checkpoint_step_changes == []
    names = speedups.code_names(ModelCheckpoint, "on_train_batch_end")
    assert "_every_n_train_steps" in names and "_train_time_interval" in names
    with pytest.raises(ValueError, match="every_n_train_steps"):
        EpochCheckpoint(every_n_train_steps=10)


def test_progress_bar_asks_should_update_for_every_batch(watched_fit: dict[str, Any]) -> None:
    parameters = inspect.signature(TQDMProgressBar._should_update).parameters
    assert list(parameters) == ["self", "current", "total"]
    for hook in ("on_train_batch_end", "on_validation_batch_end", "on_test_batch_end"):
        assert "_should_update" in speedups.code_names(TQDMProgressBar, hook), hook
    # 16 training batches, 2 x 2 sanity-check and validation batches, 4 test batches, at least.
    assert watched_fit["counts"]["_should_update"] >= watched_fit["result"].steps + 4


def test_throttled_redraws(monkeypatch: pytest.MonkeyPatch) -> None:
    if "throttled_redraws" not in speedups.applied():
        pytest.skip("throttled_redraws is not applied here")
    clock = iter([100.0, 100.05, 100.2, 100.21])
    monkeypatch.setattr(speedups.time, "monotonic", lambda: next(clock))
    bar = ThrottledProgressBar(per_second=10)
    assert bar._should_update(1, 50)  # the first
    assert not bar._should_update(2, 50)  # 50 ms later
    assert bar._should_update(3, 50)  # 150 ms after the last redraw
    assert bar._should_update(50, 50)  # the last batch, whenever
    bar.disable()
    assert not bar._should_update(50, 50)


def test_loop_progress_counts_as_resume_reads_it(watched_fit: dict[str, Any]) -> None:
    # (when, epoch, batch_idx, epoch_in_progress, batches_trained_in_epoch) for every batch.
    expected = [
        (when, epoch, i, epoch, i + (when == "end"))
        for epoch in range(2)
        for i in range(STEPS_PER_EPOCH)
        for when in ("start", "end")
    ]
    assert watched_fit["probe"].progress == expected


# -- the gate --------------------------------------------------------------------------------


def test_versions_match_by_major_minor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speedups, "MEASURED_WITH", {"lightning": ("2.6",), "torch": ("2.1",)})
    assert speedups.measured({"lightning": "2.6.6", "torch": "2.1.0+cu121"})
    assert not speedups.measured({"lightning": "2.6.6", "torch": "2.14.1"})  # not a prefix
    assert not speedups.measured({"lightning": "2.7.0", "torch": "2.1.2"})
    assert not speedups.measured({"lightning": "2.6.6"})


def test_the_switch_selects_speedups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(speedups.SWITCH, raising=False)
    assert speedups.selected() == set(speedups.NAMES)
    monkeypatch.setenv(speedups.SWITCH, "none")
    assert speedups.selected() == set()
    monkeypatch.setenv(speedups.SWITCH, "hook_name, state_key")
    assert speedups.selected() == {"hook_name", "state_key"}
    monkeypatch.setenv(speedups.SWITCH, "hook_name,turbo")
    with pytest.warns(UserWarning, match="unknown speed-ups turbo"):
        assert speedups.selected() == {"hook_name"}


def test_all_apply_on_the_installed_versions() -> None:
    if os.environ.get(speedups.SWITCH, "all") != "all":
        pytest.skip(f"{speedups.SWITCH} is set")
    if not speedups.measured():
        pytest.skip(
            f"not measured with {speedups.installed_versions()}: run benchmarks/speedups.py "
            "and this file, then add the versions to zoo._compat.speedups.MEASURED_WITH"
        )
    create_optimizer("adam", torch.nn.Linear(4, 2))
    assert set(speedups.applied()) == set(speedups.NAMES)


def _fresh_classes() -> Iterator[type]:
    class Module(L.LightningModule):
        def training_step(self, batch: Any, batch_idx: int) -> None:
            return None

    class Checkpoint(ModelCheckpoint):
        @property
        def state_key(self) -> str:
            return super().state_key

    class Bar(TQDMProgressBar):
        interval = 0.1

    yield speedups.apply_to_module(Module)
    yield speedups.apply_to_checkpoint(Checkpoint)
    yield speedups.apply_to_progress_bar(Bar)


def _assert_plain(module: type, checkpoint: type, bar: type) -> None:
    assert "__setattr__" not in vars(module)
    assert not hasattr(module.training_step, "__signature__")
    assert isinstance(vars(checkpoint)["state_key"], property)
    assert "on_train_batch_end" not in vars(checkpoint)
    assert bar._should_update is TQDMProgressBar._should_update
    optimizer = create_optimizer("adam", torch.nn.Linear(4, 2))
    assert "_accelerator_graph_capture_health_check" not in vars(optimizer)


def test_nothing_is_applied_with_the_gate_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speedups, "_applied", {})
    monkeypatch.setattr(
        speedups, "installed_versions", lambda: {"lightning": "9.9", "torch": "9.9"}
    )
    _assert_plain(*_fresh_classes())
    monkeypatch.undo()
    monkeypatch.setattr(speedups, "_applied", {})
    monkeypatch.setenv(speedups.SWITCH, "none")
    _assert_plain(*_fresh_classes())
    assert speedups.applied() == {}


def test_a_missing_internal_leaves_plain_behaviour(monkeypatch: pytest.MonkeyPatch) -> None:
    measured = {library: versions[0] for library, versions in speedups.MEASURED_WITH.items()}
    monkeypatch.setattr(speedups, "installed_versions", lambda: measured)
    monkeypatch.delenv(speedups.SWITCH, raising=False)
    monkeypatch.setattr(speedups, "_applied", {})
    call = importlib.import_module("lightning.pytorch.trainer.call")
    loop = importlib.import_module("lightning.pytorch.loops.training_epoch_loop")
    monkeypatch.delattr(call, "_call_lightning_module_hook")
    monkeypatch.delattr(loop, "_TrainingEpochLoop")
    monkeypatch.delattr(ModelCheckpoint, "on_train_batch_end")
    monkeypatch.setattr(ModelCheckpoint, "state_key", "not a property")
    monkeypatch.setattr(TQDMProgressBar, "_should_update", None)  # inspect raises: plain too
    monkeypatch.delattr(torch.optim.Optimizer, "_accelerator_graph_capture_health_check")
    module, checkpoint, bar = _fresh_classes()
    assert "__setattr__" not in vars(module)
    assert not hasattr(module.training_step, "__signature__")
    assert isinstance(vars(checkpoint)["state_key"], property)
    assert "on_train_batch_end" not in vars(checkpoint)
    assert "_should_update" not in vars(bar)
    optimizer = create_optimizer("adam", torch.nn.Linear(4, 2))
    assert "_accelerator_graph_capture_health_check" not in vars(optimizer)
    assert speedups.applied() == {}


GATE_CLOSED = """
import json, sys

from zoo._compat import speedups as speedups
speedups.installed_versions = lambda: {"lightning": "0.1.0", "torch": "0.1.0"}  # unknown ones

from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

import zoo
from zoo.training.callbacks import EpochCheckpoint, ThrottledProgressBar
from zoo.training.module import ZooClassifier

plain = {
    "module": "__setattr__" not in vars(ZooClassifier),
    "signature": not hasattr(ZooClassifier.training_step, "__signature__"),
    "checkpoint": EpochCheckpoint.on_train_batch_end is ModelCheckpoint.on_train_batch_end,
    "state_key": isinstance(vars(EpochCheckpoint)["state_key"], property),
    "bar": ThrottledProgressBar._should_update is TQDMProgressBar._should_update,
}
result = zoo.train(
    "mlp:hidden=(8,)", dataset="mnist:val_size=100", data_dir=sys.argv[1], epochs=2, seed=0,
    output_dir=sys.argv[2], progress=True,
)
print("RESULT " + json.dumps(
    {"result": result.to_dict(), "applied": speedups.applied(), "plain": plain}
))
"""


def test_training_with_the_gate_closed_gives_the_same_results(
    tiny_mnist: Path, tmp_path: Path, watched_fit: dict[str, Any]
) -> None:
    script = tmp_path / "gate_closed.py"
    script.write_text(textwrap.dedent(GATE_CLOSED))
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env.pop(speedups.SWITCH, None)
    completed = subprocess.run(
        [sys.executable, str(script), str(tiny_mnist), str(tmp_path / "plain")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    closed = json.loads(line.removeprefix("RESULT "))
    assert closed["applied"] == {}
    assert all(closed["plain"].values()), closed["plain"]

    # The same run as the watched one (which had them all), to the bit.
    runs = [watched_fit["result"].to_dict(), closed["result"]]
    varying = ("run_dir", "checkpoint", "train_seconds")
    assert [{k: v for k, v in run.items() if k not in varying} for run in runs] == [
        {k: v for k, v in runs[0].items() if k not in varying}
    ] * 2
    metrics = [(Path(run["run_dir"]) / "metrics.csv").read_text() for run in runs]
    assert metrics[0] == metrics[1]
    fast, plain = (torch.load(run["checkpoint"], weights_only=True) for run in runs)
    assert fast["callbacks"].keys() == plain["callbacks"].keys()  # resumable either way
    assert fast["state_dict"].keys() == plain["state_dict"].keys()
    for name, tensor in fast["state_dict"].items():
        assert torch.equal(tensor, plain["state_dict"][name]), name
