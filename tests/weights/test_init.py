"""``zoo train --init-weights``: a run starts from trained weights (a fresh head when the classes
differ), records them, resumes without them; each bad input is a one-line error of the real
``zoo``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import zoo
from tests.cli_helpers import run_zoo
from tests.weights.test_cli import _one_line_error
from zoo.runs.config import RunConfig
from zoo.training.composition import Composition

TINY = "mnist:val_size=100"


def _module(config: RunConfig, seed: int = 3) -> torch.nn.Module:
    """The model a run of ``config`` starts training from (built as ``zoo train`` builds it)."""
    parts = Composition(config)
    parts.check()
    parts.build_datamodule()
    return parts.build_module(seed).model


def _five_classes(exported: Path, out: Path, **dataset: object) -> Path:
    """An exported directory of a 5-class tanh MLP (``dataset`` edits its config's dataset)."""
    shutil.copytree(exported, out)
    torch.manual_seed(1)
    model = zoo.create_model("mlp", act="tanh", input_shape=dataset.get("input_shape", (1, 28, 28)),
                             num_classes=5)  # fmt: skip
    save_file(model.state_dict(), str(out / "model.safetensors"))
    config = json.loads((out / "config.json").read_text())
    config["dataset"].update(num_classes=5, class_names=list("abcde"), **dataset)
    config.update(sha256=None, file_size=None, name="mlp-tanh.five")
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_a_run_starts_from_the_weights(exported: Path, tiny_mnist: Path) -> None:
    base = RunConfig(act="tanh", dataset=TINY, data_dir=str(tiny_mnist))
    model = _module(base.replace(init_weights=str(exported)))
    trained = load_file(str(exported / "model.safetensors"))
    assert trained.keys() == model.state_dict().keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in trained.items())
    fresh = _module(base).state_dict()  # same seed, no weights: another start
    assert not any(torch.equal(fresh[k], v) for k, v in trained.items())


def test_another_number_of_classes_gets_a_fresh_head(
    exported: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    five = _five_classes(exported, tmp_path / "five")
    base = RunConfig(act="tanh", dataset=TINY, data_dir=str(tiny_mnist))
    model = _module(base.replace(init_weights=str(five))).state_dict()
    fresh = _module(base).state_dict()  # same seed, no weights
    trained = load_file(str(five / "model.safetensors"))
    head = [k for k in trained if trained[k].shape != model[k].shape]
    assert head and all(trained[k].shape[0] == 5 for k in head)
    for key, value in model.items():
        expected = fresh[key] if key in head else trained[key]
        assert torch.equal(value, expected), key


def test_the_cli_records_it_and_resume_needs_it_no_more(
    exported: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    weights = shutil.copytree(exported, tmp_path / "weights")
    runs = tmp_path / "runs"
    done = run_zoo("train", "--init-weights", str(weights), "--act", "tanh", "--dataset", TINY,
                   "--data-dir", str(tiny_mnist), "--max-steps", "5", "--seed", "0",
                   "--output-dir", str(runs), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["init_weights"] == str(weights)
    assert record["init_weights"]["name"] == "mlp-tanh.mnist"
    shutil.rmtree(weights)  # the start is over: resuming reads the run's own checkpoint
    resumed = run_zoo("train", "--resume", str(run_dir), "--max-steps", "8", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"] == 8
    assert json.loads((run_dir / "config.json").read_text())["config"]["init_weights"]
    changed = run_zoo("train", "--resume", str(run_dir), "--init-weights", "mlp-tanh.mnist")
    _one_line_error(changed, 2, "a resumed run keeps its --init-weights")


def test_bad_init_weights(exported: Path, tiny_mnist: Path, tmp_path: Path) -> None:
    common = ("--dataset", TINY, "--data-dir", str(tiny_mnist), "--max-steps", "2",
              "--output-dir", str(tmp_path / "runs"))  # fmt: skip

    def train(*args: str):  # type: ignore[no-untyped-def]
        return run_zoo("train", *common, *args)

    _one_line_error(train("--init-weights", "mlp-nosuch.mnist"), 2,
                    "--init-weights: unknown weight 'mlp-nosuch.mnist'")  # fmt: skip
    _one_line_error(train("--init-weights", "mlp-relu.mnist", "--act", "tanh"), 2,
                    "activation 'relu', not 'tanh'; fine-tuning keeps both")  # fmt: skip
    _one_line_error(train("--init-weights", "mlp-relu.mnist", "--arch", "cnn"), 2,
                    "trained with architecture 'mlp', not 'cnn'")  # fmt: skip
    _one_line_error(train("--init-weights", str(tmp_path / "nowhere/")), 2,
                    "is neither an exported model directory nor a weights name")  # fmt: skip
    small = _five_classes(exported, tmp_path / "small", input_shape=[1, 14, 14])
    _one_line_error(train("--init-weights", str(small), "--act", "tanh"), 2,
                    "take inputs of shape 1x14x14 (mnist:val_size=100), this dataset's "
                    "are 1x28x28")  # fmt: skip
    damaged = shutil.copytree(exported, tmp_path / "damaged")
    data = bytearray((damaged / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (damaged / "model.safetensors").write_bytes(bytes(data))
    _one_line_error(train("--init-weights", str(damaged), "--act", "tanh"), 1,
                    "the file is damaged or was replaced")  # fmt: skip
    assert not (tmp_path / "runs").exists()  # no run directory for any of them
