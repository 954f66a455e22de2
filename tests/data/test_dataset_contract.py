"""The dataset contract of :class:`zoo.data.ClassificationDataModule`, through the real ``zoo``
command: a plugin dataset that is no torchvision class (tensors saved in a file) trains,
evaluates and predicts with its declared normalisation; what it declares and the batches it gives
are checked, with messages naming the dataset and its plugin; ``--num-workers`` reaches only a
factory that takes it; ``zoo predict`` warns about a dataset that declares no normalisation.

Each test writes its plugin file and data into ``tmp_path`` and runs ``python -m zoo -p FILE``
in a subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from tests.cli_helpers import run_zoo
from zoo.data import ClassificationDataModule
from zoo.data.batches import BatchCollator, batch_problem
from zoo.data.checks import check_datamodule, checked_batches, load_data
from zoo.plugin.components import resolve

#: A dataset of 8x8 grey images in three classes, each a bright band at its own rows; the
#: tensors are read from ``data_dir/bands.pt``. MEAN and STD are filled in per test.
PLUGIN = """
import torch
from torch.utils.data import TensorDataset, random_split

import zoo
from zoo.data.vision import ClassificationDataModule


class Bands(ClassificationDataModule):
    input_shape = (1, 8, 8)
    class_names = ("top", "middle", "bottom")
    mean = MEAN
    std = STD

    def __init__(self, data_dir=None, batch_size: int = 64, num_workers: int = 0,
                 val_size: int = 40) -> None:
        super().__init__(data_dir, batch_size, num_workers)
        self.val_size = val_size

    def setup(self, stage=None) -> None:
        data = torch.load(self.data_dir / "bands.pt", weights_only=True)
        train = TensorDataset(data["train_x"], data["train_y"])
        sizes = [len(train) - self.val_size, self.val_size]
        generator = torch.Generator().manual_seed(0)
        self.splits = {
            "train_val": random_split(train, sizes, generator=generator),
            "test": TensorDataset(data["test_x"], data["test_y"]),
        }

    def train_dataset(self):
        return self.splits["train_val"][0]

    def val_dataset(self):
        return self.splits["train_val"][1]

    def test_dataset(self):
        return self.splits["test"]


def bands_without_workers(data_dir=None, batch_size: int = 64):
    return Bands(data_dir, batch_size)


@zoo.hookimpl
def register_datasets(register):
    register("bands", Bands, summary="three bands, 1x8x8, from bands.pt")
    register("bands-no-workers", bands_without_workers, summary="the same, no num_workers")
"""


def write_plugin(directory: Path, mean: object = (0.3,), std: object = (0.4,)) -> Path:
    path = directory / "bands_plugin.py"
    code = PLUGIN.replace("MEAN", repr(mean)).replace("STD", repr(std))
    path.write_text(textwrap.dedent(code))
    return path


def write_bands(directory: Path, n_train: int = 240, n_test: int = 60) -> Path:
    """``bands.pt``: uint8 images (N, 1, 8, 8), class k bright in rows 2k..2k+2, with noise."""
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 3, (n,), generator=generator)
        images = torch.randint(0, 80, (n, 1, 8, 8), generator=generator, dtype=torch.uint8)
        for i, label in enumerate(labels.tolist()):
            images[i, 0, 2 * label + 1 : 2 * label + 3, 1:7] = 250
        return images, labels

    (train_x, train_y), (test_x, test_y) = split(n_train), split(n_test)
    data = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
    torch.save(data, directory / "bands.pt")
    return directory


def zoo_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_zoo(*args, cwd=cwd, timeout=600, OMP_NUM_THREADS="1")


def train(plugin: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return zoo_cli(
        "-p", str(plugin), "train", "--data-dir", str(data), "--output-dir",
        str(plugin.parent / "runs"), "--seed", "0", "--json", *args, cwd=plugin.parent,
    )  # fmt: skip


def error_lines(completed: subprocess.CompletedProcess[str]) -> list[str]:
    """The error zoo printed: the lines from ``Error:`` on."""
    lines = completed.stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    assert starts, completed.stderr
    return lines[starts[-1] :]


def write_image(path: Path, seed: int) -> np.ndarray:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)
    pixels[3:5, 1:7] = 255
    Image.fromarray(pixels, mode="L").save(path)
    return pixels


# -- a non-torchvision dataset, end to end ------------------------------------------------------


@pytest.fixture(scope="module")
def bands_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A run trained on the bands dataset: (plugin file, data directory, zoo train's JSON)."""
    directory = tmp_path_factory.mktemp("bands")
    plugin, data = write_plugin(directory), write_bands(directory / "data")
    completed = train(
        plugin,
        data,
        "--dataset",
        "bands",
        "--max-steps",
        "20",
        "--lr",
        "0.01",
        "--num-workers",
        "1",
    )
    assert completed.returncode == 0, completed.stderr
    return plugin, data, json.loads(completed.stdout.strip().splitlines()[-1])


def test_a_tensor_dataset_trains_with_its_own_splits_and_workers(
    bands_run: tuple[Path, Path, dict],
) -> None:
    _, _, result = bands_run
    assert result["dataset"] == "bands" and result["steps"] == 20
    assert result["test_acc"] > 0.9  # the bands are easy to tell apart
    config = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    assert config["components"]["dataset"]["plugin"] == "bands_plugin"
    assert config["data_path"] == "dataloader"
    assert config["config"]["num_workers"] == 1  # --num-workers reached the class that takes it


def test_zoo_evaluate_reads_it_again(bands_run: tuple[Path, Path, dict]) -> None:
    plugin, data, result = bands_run
    completed = zoo_cli(
        "-p", str(plugin), "evaluate", result["run_dir"], "--data-dir", str(data), "--json",
        cwd=plugin.parent,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    evaluation = json.loads(completed.stdout)
    assert evaluation["samples"] == 60
    assert evaluation["accuracy"] == pytest.approx(result["test_acc"], abs=1e-9)
    assert set(evaluation["per_class"]) == {"top", "middle", "bottom"}


def test_zoo_predict_normalises_as_the_dataset_declares(
    bands_run: tuple[Path, Path, dict],
) -> None:
    from zoo.training.checkpoints import load_model

    plugin, _, result = bands_run
    images = [plugin.parent / "a.png", plugin.parent / "b.png"]
    pixels = [write_image(path, seed) for seed, path in enumerate(images)]
    completed = zoo_cli(
        "-p", str(plugin), "predict", result["run_dir"], *map(str, images), "--top-k", "3",
        "--json", cwd=plugin.parent,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "unnormalised" not in completed.stderr
    predictions = json.loads(completed.stdout)

    batch = torch.tensor(np.stack(pixels), dtype=torch.float32).div(255).unsqueeze(1)
    normalised = (batch - 0.3) / 0.4
    zoo.configure_plugins(plugins=[str(plugin)])
    try:
        model = load_model(result["run_dir"])
        with torch.inference_mode():
            expected = torch.softmax(model(normalised), dim=1)
    finally:
        zoo.configure_plugins()
    names = ("top", "middle", "bottom")
    for prediction, row in zip(predictions, expected, strict=True):
        got = {entry["class"]: entry["probability"] for entry in prediction["top"]}
        assert got == pytest.approx({names[i]: float(p) for i, p in enumerate(row)}, abs=1e-6)
    # Unnormalised, the model's answer differs: the normalisation was really applied.
    with torch.inference_mode():
        assert not torch.allclose(torch.softmax(model(batch), dim=1), expected, atol=1e-3)


def test_zoo_predict_warns_once_about_a_dataset_without_normalisation(tmp_path: Path) -> None:
    plugin, data = write_plugin(tmp_path, mean=None, std=None), write_bands(tmp_path / "data")
    # A factory without num_workers: without --num-workers, zoo never passes it.
    completed = train(
        plugin, data, "--dataset", "bands-no-workers", "--max-steps", "2", "--epochs", "1"
    )
    assert completed.returncode == 0, completed.stderr
    run_dir = json.loads(completed.stdout.strip().splitlines()[-1])["run_dir"]
    images = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    for seed, path in enumerate(images):
        write_image(Path(path), seed)
    predicted = zoo_cli("-p", str(plugin), "predict", run_dir, *images, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    warnings = [line for line in predicted.stderr.splitlines() if "unnormalised" in line]
    assert warnings == [
        "zoo: warning: dataset 'bands-no-workers' (plugin 'bands_plugin', "
        f"{plugin}) declares no normalisation (mean and std): images are fed to the model "
        "unnormalised, scaled to 0..1"
    ]
    assert len(predicted.stdout.splitlines()) == 2


# -- --num-workers ------------------------------------------------------------------------------


def test_num_workers_is_refused_by_a_factory_without_it(tmp_path: Path) -> None:
    plugin, data = write_plugin(tmp_path), write_bands(tmp_path / "data")
    refused = train(plugin, data, "--dataset", "bands-no-workers", "--num-workers", "2")
    assert refused.returncode == 2, refused.stderr
    assert error_lines(refused) == [
        f"Error: dataset 'bands-no-workers' (plugin 'bands_plugin', {plugin}) takes no "
        "--num-workers: its factory has no num_workers argument. Leave --num-workers out."
    ]
    assert not (tmp_path / "runs").exists()


# -- what a dataset declares, and the batches it gives ------------------------------------------

BROKEN = """
import torch
from torch.utils.data import TensorDataset

import zoo
from zoo.data.vision import ClassificationDataModule


def images(n, shape=(1, 8, 8)):
    return torch.rand(n, *shape)


class Declared(ClassificationDataModule):
    input_shape = (1, 8, 8)
    class_names = ("a", "b")

    def train_dataset(self):
        return TensorDataset(images(32), torch.randint(0, 2, (32,)))

    def val_dataset(self):
        return self.train_dataset()

    def test_dataset(self):
        return self.train_dataset()


class NoShape(Declared):
    input_shape = (8, 8)


class HalfNormalised(Declared):
    mean = (0.5,)


class NoTestSplit(ClassificationDataModule):
    input_shape = (1, 8, 8)
    class_names = ("a", "b")
    train_dataset = val_dataset = Declared.train_dataset


class FlatImages(Declared):
    def train_dataset(self):
        return TensorDataset(torch.rand(32, 64), torch.randint(0, 2, (32,)))


class LabelsOutOfRange(Declared):
    def train_dataset(self):
        return TensorDataset(images(32), torch.full((32,), 5))


class NotADataModule:
    input_shape = (1, 8, 8)


def not_a_datamodule(data_dir=None, batch_size: int = 64):
    return NotADataModule()


@zoo.hookimpl
def register_datasets(register):
    for name, factory in [("no-shape", NoShape), ("half-normalised", HalfNormalised),
                          ("no-test-split", NoTestSplit), ("flat-images", FlatImages),
                          ("labels-out-of-range", LabelsOutOfRange),
                          ("not-a-datamodule", not_a_datamodule)]:
        register(name, factory, summary="breaks the dataset contract")
"""

BROKEN_CASES = [
    ("no-shape", "breaks the dataset contract: input_shape must be (C, H, W), three positive "
     "ints, got (8, 8)"),
    ("half-normalised", "breaks the dataset contract: declare both mean and std, or neither "
     "(None: no normalisation)"),
    ("no-test-split", "breaks the dataset contract: it implements neither test_dataset() nor "
     "test_dataloader()"),
    ("not-a-datamodule", "breaks the dataset contract: its factory returned NotADataModule, not "
     "a lightning.LightningDataModule"),
    ("flat-images", "gives batches zoo cannot use: images must be of shape (N, *input_shape) = "
     "(N, *(1, 8, 8)), got float32 of shape (32, 64)"),
    ("labels-out-of-range", "gives batches zoo cannot use: labels must be class indices in 0..1, "
     "got labels from 5 to 5"),
]  # fmt: skip


@pytest.mark.parametrize("name", ["no-shape", "flat-images"])
def test_a_dataset_that_breaks_the_contract_is_named(tmp_path: Path, name: str) -> None:
    plugin = tmp_path / "broken_data.py"
    plugin.write_text(textwrap.dedent(BROKEN))
    completed = train(plugin, tmp_path, "--dataset", name, "--max-steps", "2")
    assert completed.returncode == 1, completed.stderr
    (line,) = error_lines(completed)
    says = dict(BROKEN_CASES)[name]
    assert line == (
        f"Error: dataset {name!r} (plugin 'broken_data', {plugin}) {says} "
        "(see docs/plugins.md#datasets)"
    )
    assert "Traceback" not in completed.stderr


@pytest.fixture
def broken_plugin(tmp_path: Path) -> Iterator[str]:
    """BROKEN registered in this process, as the plugin ``broken_data``."""
    path = tmp_path / "broken_data.py"
    path.write_text(textwrap.dedent(BROKEN))
    spec = importlib.util.spec_from_file_location("broken_data_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    name = zoo.register_plugin(module, name="broken_data")
    try:
        yield name
    finally:
        zoo.unregister_plugin(name)


@pytest.mark.parametrize(("name", "says"), BROKEN_CASES, ids=[c[0] for c in BROKEN_CASES])
def test_each_breach_is_named_with_what_to_fix(
    broken_plugin: str, tmp_path: Path, name: str, says: str
) -> None:
    component, parsed = resolve("dataset", name)
    datamodule = component.build(parsed.kwargs, data_dir=tmp_path, batch_size=64)
    with pytest.raises(zoo.PluginError) as caught:
        check_datamodule(datamodule, component)
        load_data(datamodule, component, "test")
        next(checked_batches(datamodule, component, "test"))
    assert str(caught.value) == (
        f"dataset {name!r} (plugin 'broken_data', broken_data_module) {says} "
        "(see docs/plugins.md#datasets)"
    )


# -- the pieces, in this process ------------------------------------------------------------------


def test_the_collator_makes_zoo_batches_from_uint8_and_float_images() -> None:
    images = torch.randint(0, 256, (4, 3, 2, 2), dtype=torch.uint8)
    samples = [(images[i], i % 2) for i in range(4)]
    x, y = BatchCollator((0.5, 0.4, 0.3), (0.2, 0.2, 0.1))(samples)
    mean = torch.tensor([0.5, 0.4, 0.3]).view(-1, 1, 1)
    std = torch.tensor([0.2, 0.2, 0.1]).view(-1, 1, 1)
    assert torch.allclose(x, (images.float() / 255 - mean) / std)
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 0, 1]
    plain, _ = BatchCollator(None, None)([(images[i].float() / 255, 0) for i in range(4)])
    assert torch.equal(plain, images.float() / 255)
    assert batch_problem((x, y), (3, 2, 2), 2) is None
    assert "int64" in str(batch_problem((x, y.int()), (3, 2, 2), 2))
    assert "a pair" in str(batch_problem(x, (3, 2, 2), 2))


def test_declarations_are_readable_before_any_data_loads(tmp_path: Path) -> None:
    class Tiny(ClassificationDataModule):
        input_shape = (1, 2, 2)
        class_names = ("no", "yes")

    datamodule = Tiny(tmp_path, batch_size=8)
    assert (datamodule.num_classes, datamodule.mean, datamodule.std) == (2, None, None)
    assert datamodule.data_dir == tmp_path and datamodule.num_workers == 0
    with pytest.raises(NotImplementedError, match="Tiny implements no train_dataset"):
        datamodule.train_dataloader()
