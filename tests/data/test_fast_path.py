"""The in-memory fast path (same tensors, splits and accuracy as the standard DataLoader path),
its seeded sharded shuffling, the overhead-free LightningModule, and a DDP run on two CPU
processes. Speed itself is measured by benchmarks/train_speed.py, not asserted here."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler
from torchvision import transforms
from torchvision.datasets import MNIST, VisionDataset

import zoo
from zoo.data.loaders import EpochSampler, InMemoryLoader
from zoo.data.vision import VisionDataModule
from zoo.training.callbacks import EpochCheckpoint
from zoo.training.module import ZooClassifier
from zoo.training.recipe import create_optimizer

TINY = "mnist:val_size=100"


def _datamodule(root: Path, spec: str = TINY, batch_size: int = 64) -> VisionDataModule:
    datamodule = zoo.create_datamodule(spec, data_dir=root, batch_size=batch_size)
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    return datamodule


def _assert_same_batches(fast: object, standard: object) -> int:
    count = 0
    for (x_fast, y_fast), (x_std, y_std) in zip(fast, standard, strict=True):  # type: ignore
        assert x_fast.dtype == x_std.dtype == torch.float32
        assert x_fast.shape == x_std.shape
        torch.testing.assert_close(x_fast, x_std, rtol=0, atol=1e-6)
        assert torch.equal(y_fast, y_std)
        count += len(y_fast)
    return count


def test_fast_path_is_the_default_and_equals_the_standard_path(tiny_mnist: Path) -> None:
    fast = _datamodule(tiny_mnist)
    standard = _datamodule(tiny_mnist, TINY + ",fast=False")
    assert fast.in_memory and not standard.in_memory
    assert isinstance(fast.val_dataloader(), InMemoryLoader)
    assert isinstance(standard.val_dataloader(), DataLoader)

    # The same seeded split, and batch for batch the same tensors where nothing is shuffled.
    assert list(fast.train_set.indices) == list(standard.train_set.indices)
    assert list(fast.val_set.indices) == list(standard.val_set.indices)
    assert _assert_same_batches(fast.val_dataloader(), standard.val_dataloader()) == 100
    assert _assert_same_batches(fast.test_dataloader(), standard.test_dataloader()) == 200

    # Shuffled: every training image once per epoch, equal to ToTensor + Normalize of that image.
    loader = fast.train_dataloader()
    order = EpochSampler(loader.sampler.positions, shuffle=True, seed=loader.sampler.seed).indices()
    assert sorted(order.tolist()) == sorted(fast.train_set.indices)
    reference = [fast.train_set.dataset[int(i)] for i in order]
    expected_x = torch.stack([x for x, _ in reference])
    expected_y = torch.tensor([y for _, y in reference])
    x, y = (torch.cat(parts) for parts in zip(*loader, strict=True))
    torch.testing.assert_close(x, expected_x, rtol=0, atol=1e-6)
    assert torch.equal(y, expected_y)


def test_standard_path_where_the_fast_path_does_not_apply(tiny_mnist: Path) -> None:
    assert not _datamodule(tiny_mnist, TINY + ",num_workers=1").in_memory
    with pytest.raises(zoo.ZooUsageError, match="num_workers"):
        zoo.create_datamodule(TINY + ",fast=True,num_workers=1", data_dir=tiny_mnist)

    augmented = VisionDataModule(
        MNIST,
        name="mnist",
        data_dir=tiny_mnist,
        batch_size=64,
        input_shape=(1, 28, 28),
        class_names=[str(d) for d in range(10)],
        mean=(0.1307,),
        std=(0.3081,),
        expected_files=(),
        source="test",
        val_size=100,
        train_transforms=[transforms.RandomCrop(28, padding=2)],
    )
    augmented.setup("fit")
    assert not augmented.in_memory
    assert isinstance(augmented.train_dataloader(), DataLoader)
    x, _ = next(iter(augmented.train_dataloader()))
    assert x.shape == (64, 1, 28, 28)


class TransposedMNIST(MNIST):
    """A dataset whose __getitem__ does more than its decoded array says (like EMNIST's
    transposed images in some loaders): the fast path must notice and not be used."""

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, "MNIST", "raw")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = super().__getitem__(index)
        return image.transpose(-1, -2), label


def test_fast_path_checks_itself_against_the_dataset(tiny_mnist: Path) -> None:
    options = {
        "name": "transposed",
        "data_dir": tiny_mnist,
        "batch_size": 64,
        "input_shape": (1, 28, 28),
        "class_names": [str(d) for d in range(10)],
        "mean": (0.1307,),
        "std": (0.3081,),
        "expected_files": (),
        "source": "test",
        "val_size": 100,
    }
    datamodule = VisionDataModule(TransposedMNIST, **options)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="fast path is off"):
        datamodule.setup("fit")
    assert not datamodule.in_memory
    with pytest.raises(zoo.ZooUsageError, match="does not match"):
        VisionDataModule(TransposedMNIST, fast=True, **options).setup("fit")  # type: ignore[arg-type]


class TinyRGB(VisionDataset):
    """A CIFAR-style dataset: ``data`` is a (N, H, W, 3) uint8 array, ``targets`` a list, and
    ``__getitem__`` goes through a PIL RGB image, as torchvision's CIFAR10 does."""

    def __init__(self, root: str, train: bool, transform: Any = None, download: bool = False):
        super().__init__(root, transform=transform)
        rng = np.random.default_rng(0 if train else 1)
        n = 300 if train else 50
        self.data = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
        self.targets = [int(t) for t in rng.integers(0, 10, size=n)]

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.data[index])
        return self.transform(image) if self.transform else image, self.targets[index]


def test_fast_path_for_colour_images_in_channels_last_arrays(tmp_path: Path) -> None:
    options: dict[str, Any] = {
        "name": "tiny-rgb",
        "data_dir": tmp_path,
        "batch_size": 32,
        "input_shape": (3, 8, 8),
        "class_names": [str(d) for d in range(10)],
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
        "expected_files": (),
        "source": "test",
        "val_size": 60,
    }
    fast = VisionDataModule(TinyRGB, **options)
    standard = VisionDataModule(TinyRGB, fast=False, **options)
    for datamodule in (fast, standard):
        datamodule.setup("fit")
        datamodule.setup("test")
    assert fast.in_memory and not standard.in_memory
    assert fast.decoded["train"][0].shape == (300, 3, 8, 8)
    assert _assert_same_batches(fast.val_dataloader(), standard.val_dataloader()) == 60
    assert _assert_same_batches(fast.test_dataloader(), standard.test_dataloader()) == 50


def test_shuffling_follows_the_global_seed(tiny_mnist: Path) -> None:
    def first_epochs(seed: int) -> list[torch.Tensor]:
        L.seed_everything(seed, verbose=False)
        loader = _datamodule(tiny_mnist).train_dataloader()
        return [torch.cat([y for _, y in loader]) for _ in range(2)]

    first, second = first_epochs(3)
    again = first_epochs(3)
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    assert not torch.equal(first, second)  # a new order every epoch
    assert not torch.equal(first, first_epochs(4)[0])


def test_each_epoch_of_a_run_trains_on_its_own_order(tiny_mnist: Path, tmp_path: Path) -> None:
    """Epoch e of a run with seed s trains on the permutation drawn from seed s + e, however
    often Lightning starts iterating the loader (it makes one iterator to check it first)."""
    seen: list[list[int]] = []

    class FirstBatches(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, index: int) -> None:
            if index == 0:
                seen.append(batch[1].tolist())

    zoo.train(act="relu", dataset=TINY, data_dir=tiny_mnist, epochs=3, seed=5, progress=False,
              output_dir=tmp_path, callbacks=[FirstBatches()])  # fmt: skip
    datamodule = _datamodule(tiny_mnist)
    positions = torch.as_tensor(datamodule.train_set.indices)
    labels = datamodule.decoded["train"][1]
    for epoch, first in enumerate(seen):
        order = torch.randperm(len(positions), generator=torch.Generator().manual_seed(5 + epoch))
        assert first == labels[positions[order[:64]]].tolist(), epoch
    assert len(seen) == 3 and seen[0] != seen[1] != seen[2]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=300),
    world_size=st.integers(min_value=1, max_value=5),
    shuffle=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**40),
    epoch=st.integers(min_value=0, max_value=10),
)
def test_epoch_sampler_shards_like_distributed_sampler(
    n: int, world_size: int, shuffle: bool, seed: int, epoch: int
) -> None:
    positions = torch.arange(1000, 1000 + n)
    shards = []
    for rank in range(world_size):
        sampler = EpochSampler(
            positions, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size
        )
        sampler.set_epoch(epoch)
        shards.append(sampler.indices().tolist())
        assert len(shards[-1]) == len(sampler)
        # The positions torch's DistributedSampler would give this rank.
        reference = DistributedSampler(
            range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
        )
        reference.set_epoch(epoch)
        assert shards[-1] == [1000 + i for i in reference]
    # Equal shards that together cover every position and overlap only by the padding.
    assert len({len(shard) for shard in shards}) == 1
    everything = [i for shard in shards for i in shard]
    assert set(everything) == set(positions.tolist())
    assert len(everything) - n == -n % world_size


def test_real_mnist_fast_path_equals_standard_path(real_mnist: Path) -> None:
    fast = _datamodule(real_mnist, "mnist", batch_size=1000)
    standard = _datamodule(real_mnist, "mnist:fast=False", batch_size=1000)
    assert fast.in_memory
    assert list(fast.val_set.indices) == list(standard.val_set.indices)
    assert _assert_same_batches(fast.val_dataloader(), standard.val_dataloader()) == 5_000
    assert _assert_same_batches(fast.test_dataloader(), standard.test_dataloader()) == 10_000


def test_metrics_are_logged_per_epoch_and_every_n_steps(tiny_mnist: Path, tmp_path: Path) -> None:
    result = zoo.train(
        "mlp",
        dataset=TINY,
        epochs=2,
        seed=0,
        data_dir=tiny_mnist,
        output_dir=tmp_path,
        progress=False,
        trainer_options={"log_every_n_steps": 5},
    )
    with open(Path(result.run_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))

    def steps(column: str) -> list[int]:
        return [int(row["step"]) for row in rows if row.get(column)]

    # 8 steps an epoch: per-step values on the steps Lightning logs (every 5th), epoch values
    # once per epoch, under the names the checkpoint and the tests use.
    assert steps("train_loss_step") == [4, 9, 14]
    assert steps("train_acc_step") == [4, 9, 14]
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert len(steps(name)) == 2, name
    assert len(steps("test_acc")) == 1
    config = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert config["data_path"] == "in-memory"
    # The epoch's training accuracy is the mean over its samples.
    last = [row for row in rows if row.get("train_acc")][-1]
    assert 0.5 < float(last["train_acc"]) <= 1.0


def test_trainer_features_still_apply(tiny_mnist: Path, tmp_path: Path) -> None:
    # Gradient clipping from the Trainer's options (zoo skips the per-step hook without it).
    plain, clipped = (
        zoo.train(
            "mlp",
            dataset=TINY,
            epochs=1,
            seed=0,
            data_dir=tiny_mnist,
            output_dir=tmp_path,
            progress=False,
            trainer_options=options,
        )
        for options in ({}, {"gradient_clip_val": 1e-4})
    )
    assert clipped.test_loss != plain.test_loss
    assert clipped.test_loss > plain.test_loss  # tiny steps: it has barely moved
    with pytest.raises(ValueError, match="every_n_train_steps"):
        EpochCheckpoint(every_n_train_steps=10)
    # Checkpoints keep ModelCheckpoint's state key, so either class resumes them.
    options = {"dirpath": tmp_path, "monitor": "val_acc", "mode": "max"}
    assert EpochCheckpoint(**options).state_key == ModelCheckpoint(**options).state_key


def test_compile_is_applied_in_the_training_process_and_keeps_parameter_names() -> None:
    module = ZooClassifier("mlp", "relu", (1, 28, 28), 10, compile=True)
    names = list(module.state_dict())
    assert "compile" not in module.hparams  # a restored checkpoint runs eagerly
    module.configure_model()  # Lightning calls it in each training process
    assert module.model._compiled_call_impl is not None
    assert list(module.state_dict()) == names


def test_optimizers_use_fused_kernels_where_available() -> None:
    model = torch.nn.Linear(4, 2)
    for name in ("adam", "adamw", "sgd"):
        optimizer = create_optimizer(name, model)
        assert optimizer.defaults["fused"] is True, name
        model(torch.randn(3, 4)).sum().backward()
        optimizer.step()  # and it steps


def test_fast_and_standard_paths_train_to_the_same_accuracy(
    real_mnist: Path, tmp_path: Path
) -> None:
    # 200 steps (12,800 images) keep the standard path's PIL decoding short; the whole test split.
    results = {
        spec: zoo.train(
            "mlp",
            act="relu",
            dataset=spec,
            epochs=1,
            seed=0,
            data_dir=real_mnist,
            output_dir=tmp_path,
            progress=False,
            trainer_options={"limit_train_batches": 200, "limit_val_batches": 20},
        )
        for spec in ("mnist", "mnist:fast=False")
    }
    fast, standard = results["mnist"], results["mnist:fast=False"]
    assert fast.steps == standard.steps == 200
    assert fast.test_acc > 0.9
    # Different shuffles of the same data: equal within run-to-run noise (about 0.5 % here).
    assert abs(fast.test_acc - standard.test_acc) < 0.02, (fast.test_acc, standard.test_acc)


DDP_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import zoo
from zoo.training.composition import is_main_process


class RecordImages(L.Callback):
    '''Writes a fingerprint of every training image this rank saw in the first epoch.'''

    def __init__(self) -> None:
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 0:
            self.seen += [hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in batch[0]]

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            path = Path(sys.argv[2]) / f"rank{trainer.global_rank}.json"
            path.write_text(json.dumps({"world_size": trainer.world_size, "seen": self.seen}))


result = zoo.train(
    "mlp", act="relu", dataset="mnist:val_size=100", epochs=2, seed=0, data_dir=sys.argv[1],
    output_dir=sys.argv[3], progress=False, accelerator="cpu", devices=2, strategy="ddp",
    callbacks=[RecordImages()],
)
if is_main_process():
    print("RESULT " + json.dumps(result.to_dict()))
"""


def test_ddp_on_two_cpu_processes_shards_the_data_and_saves_once(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    records, runs = tmp_path / "records", tmp_path / "runs"
    records.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    completed = subprocess.run(
        [sys.executable, str(script), str(tiny_mnist), str(records), str(runs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    # Each rank saw half of the 500 training images, and no image was seen by both.
    ranks = [json.loads((records / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    seen = [set(r["seen"]) for r in ranks]
    assert [len(r["seen"]) for r in ranks] == [250, 250]
    assert not seen[0] & seen[1]
    datamodule = _datamodule(tiny_mnist)
    expected = {
        hashlib.sha1(datamodule.train_set[i][0].numpy().tobytes()).hexdigest()
        for i in range(len(datamodule.train_set))
    }
    assert seen[0] | seen[1] == expected

    # One run directory, one result: printed once, written once, by rank 0.
    printed = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(printed) == 1
    result = json.loads(printed[0].removeprefix("RESULT "))
    (run_dir,) = runs.iterdir()
    assert result["run_dir"] == str(run_dir)
    recorded = {**result, "run_dir": ".", "checkpoint": "checkpoints/best.ckpt"}
    assert json.loads((run_dir / "results.json").read_text()) == recorded  # paths: the run's
    assert json.loads((run_dir / "config.json").read_text())["status"] == "finished"
    assert result["steps"] == 2 * 4  # 250 images per rank in batches of 64, two epochs
    assert result["test_acc"] > 0.5
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
