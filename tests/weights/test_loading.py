"""Loading weights: an exported directory, a file:// URL cached once, an hf-hub: name offline;
every bad file a one-line WeightsError that leaves nothing in the cache."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from zoo.weights.errors import WeightsError
from zoo.weights.files import weights_cache
from zoo.weights.loading import read_directory


def _run_logits(run_dir: Path, x: torch.Tensor) -> torch.Tensor:
    """The run's best checkpoint, rebuilt by hand from its plain data."""
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    model = zoo.create_model("mlp", act="tanh", input_shape=(1, 28, 28), num_classes=10)
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
    model.load_state_dict(state)
    with torch.no_grad():
        return model.eval()(x)


def test_exported_directory_loads_without_lightning_and_equals_the_run(
    tiny_run: Path, exported: Path, tmp_path: Path
) -> None:
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    torch.save(x, tmp_path / "x.pt")
    script = (
        "import sys, torch, zoo\n"
        f"model, weights = zoo.load_weights({str(exported)!r})\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r})\n"
        "assert not model.training\n"
        "with torch.no_grad():\n"
        f"    torch.save(model(x), {str(tmp_path / 'y.pt')!r})\n"
        "print('lightning' in sys.modules, weights.dataset.mean)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "(0.1307,)"]
    assert torch.equal(torch.load(tmp_path / "y.pt"), _run_logits(tiny_run, x))


def test_create_model_with_weights(exported: Path) -> None:
    model = zoo.create_model("mlp", act="tanh", weights=exported)
    assert not model.training
    with pytest.raises(zoo.ComponentSpecError, match="trained with activation 'tanh'"):
        zoo.create_model("mlp", act="relu", weights=exported)
    fresh_head = zoo.create_model("mlp", weights=exported, num_classes=5)
    assert fresh_head[-2].out_features == 5
    assert torch.equal(fresh_head[1].weight, model[1].weight)  # the body is the trained one


def test_a_url_is_downloaded_once_into_the_cache(exported: Path, tmp_path: Path) -> None:
    source = tmp_path / "served.safetensors"
    source.write_bytes((exported / "model.safetensors").read_bytes())
    entry = dataclasses.replace(read_directory(exported), location=source.as_uri())
    model, _ = zoo.load_weights(entry)
    source.unlink()  # from now on only the cache has it
    again, _ = zoo.load_weights(entry)
    assert torch.equal(model[1].weight, again[1].weight)
    assert [p.name for p in weights_cache().iterdir()] == [
        f"{entry.name}-{entry.sha256[:16]}.safetensors"
    ]


def _errors(entry: zoo.Weights) -> str:
    with pytest.raises(WeightsError) as caught:
        zoo.load_weights(entry)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_files_are_one_line_errors_and_nothing_is_cached(
    exported: Path, tmp_path: Path
) -> None:
    good = read_directory(exported)
    tampered = tmp_path / "tampered.safetensors"
    data = bytearray((exported / "model.safetensors").read_bytes())
    data[-1] ^= 1
    tampered.write_bytes(bytes(data))
    cache_before = set(weights_cache().glob("*")) if weights_cache().exists() else set()
    url = dataclasses.replace(good, name="tampered.mnist", location=tampered.as_uri())
    assert "the file is damaged or was replaced" in _errors(url)
    assert "the file is damaged" in _errors(dataclasses.replace(good, location=str(tampered)))
    narrow = dataclasses.replace(good, arch="mlp:hidden=(32, 64)")
    assert "tensor '1.weight' has shape [128, 784] in the file, the model [32, 784]" in _errors(
        narrow
    )
    assert "unknown architecture 'nosuch'" in _errors(dataclasses.replace(good, arch="nosuch"))
    assert "is missing" in _errors(dataclasses.replace(good, location=str(tmp_path / "gone")))
    pickle = tmp_path / "model.pt"
    torch.save({"1.weight": torch.zeros(1)}, pickle)
    not_safetensors = dataclasses.replace(good, location=str(pickle), sha256=None)
    assert "is not a safetensors file" in _errors(not_safetensors)
    unreachable = dataclasses.replace(good, name="away.mnist", location="http://127.0.0.1:9/x")
    assert "cannot download weights away.mnist" in _errors(unreachable)
    after = set(weights_cache().glob("*")) if weights_cache().exists() else set()
    assert after == cache_before  # nothing cached, no partial file left


def test_an_absurd_config_is_refused_before_anything_is_built(
    exported: Path, tmp_path: Path
) -> None:
    absurd = tmp_path / "absurd"
    absurd.mkdir()
    (absurd / "model.safetensors").write_bytes((exported / "model.safetensors").read_bytes())
    config = json.loads((exported / "config.json").read_text())
    config["dataset"]["input_shape"] = [3, 100000, 100000]
    (absurd / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="input_shape must be"):
        zoo.load_weights(absurd)
    config = json.loads((exported / "config.json").read_text())
    config["arch"] = "mlp:hidden=(1000000000000,)"  # built on the meta device only
    (absurd / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="do not fit the architecture"):
        zoo.load_weights(absurd)


def test_hf_hub_names_load_from_the_cache_offline(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layout huggingface_hub keeps: refs/main names a snapshot holding the files."""
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--acme--mlp-tanh" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        (snapshot / name).write_bytes((exported / name).read_bytes())
    (cache / "models--acme--mlp-tanh" / "refs").mkdir()
    (cache / "models--acme--mlp-tanh" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model, weights = zoo.load_weights("hf-hub:acme/mlp-tanh")
    assert weights.name == "mlp-tanh.mnist" and not model.training
    with pytest.raises(WeightsError, match=r"cannot get config\.json of hf-hub:acme/nothing"):
        zoo.load_weights("hf-hub:acme/nothing")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
