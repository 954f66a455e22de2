"""The real ``zoo`` on weights: list, export (ONNX checked), evaluate an export and a
third-party plugin's entry, push without a network, and each bad input a one-line error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli_helpers import run_zoo
from tests.weights.conftest import write_plugin


def _one_line_error(done, code: int, text: str) -> None:  # type: ignore[no-untyped-def]
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and text in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_list_weights_json_and_blocking() -> None:
    rows = json.loads(run_zoo("list", "weights", "--json").stdout)
    leaky = next(row for row in rows if row["name"] == "mlp-leakyrelu.mnist")
    assert leaky["num_params"] == 109386 and leaky["flops"] == 218368
    assert leaky["file_size"] == 437976 and 0.9 < leaky["accuracy"] < 1
    assert leaky["command"].startswith("zoo train --arch mlp --act leakyrelu")
    blocked = run_zoo("-p", "no:weights", "list", "weights", "--json")
    assert json.loads(blocked.stdout) == []


def test_export_a_run_to_onnx_and_evaluate_it(
    tiny_run: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "out"
    done = run_zoo("export", str(tiny_run), str(out), "--format", "onnx", "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "config.json", "model.onnx", "model.safetensors",
    ]  # fmt: skip
    card = (out / "README.md").read_text()
    assert "library_name: lightning-zoo" in card and "zoo train --arch mlp --act tanh" in card
    evaluated = run_zoo("evaluate", str(out), "--data-dir", str(tiny_mnist), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["samples"] == 200
    _one_line_error(run_zoo("export", str(tiny_run), str(out)), 2, "exists and is not empty")
    _one_line_error(run_zoo("export", str(tmp_path / "nowhere"), str(tmp_path / "o")), 2, "")


def test_a_third_party_entry_and_its_broken_files(
    exported: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    write_plugin(site, exported)
    listed = run_zoo("-p", "acme_weights", "list", "weights", "acme*", site=site)
    assert "third-party acme-tanh.mnist" in listed.stdout, listed.stderr
    done = run_zoo("-p", "acme_weights", "evaluate", "acme-tanh.mnist", "--data-dir",
                   str(tiny_mnist), site=site)  # fmt: skip
    assert done.returncode == 0 and "200 samples" in done.stdout, done.stderr
    package = site / "acme_weights"
    data = bytearray((package / "acme.safetensors").read_bytes())
    data[-1] ^= 1
    (package / "acme.safetensors").write_bytes(bytes(data))
    tampered = run_zoo("-p", "acme_weights", "evaluate", "acme-tanh.mnist", site=site)
    _one_line_error(tampered, 1, "the file is damaged or was replaced")
    write_plugin(site, exported, arch="mlp:hidden=(32, 64)")
    mismatched = run_zoo("-p", "acme_weights", "evaluate", "acme-tanh.mnist", site=site)
    _one_line_error(mismatched, 1, "do not fit the architecture: tensor '1.weight'")
    (package / "acme.safetensors").unlink()
    missing = run_zoo("-p", "acme_weights", "evaluate", "acme-tanh.mnist", site=site)
    _one_line_error(missing, 1, "is missing")
    write_plugin(site, exported, arch="nosuch")
    _one_line_error(
        run_zoo("-p", "acme_weights", "evaluate", "acme-tanh.mnist", site=site),
        1, "unknown architecture 'nosuch'",
    )  # fmt: skip


def test_bad_names_and_configs(exported: Path, tmp_path: Path) -> None:
    _one_line_error(run_zoo("evaluate", "mlp-nosuch.mnist"), 2, "is not a run directory")
    absurd = tmp_path / "absurd"
    shutil.copytree(exported, absurd)
    config = json.loads((absurd / "config.json").read_text())
    config["dataset"]["num_classes"] = 10**9
    (absurd / "config.json").write_text(json.dumps(config))
    _one_line_error(run_zoo("evaluate", str(absurd)), 1, "'num_classes' must be an integer")


def test_push_without_a_network(exported: Path, tmp_path: Path) -> None:
    offline = run_zoo("push", str(exported), "me/model", HF_HUB_OFFLINE="1", HF_TOKEN="x")
    _one_line_error(offline, 1, f"cannot push {exported} to me/model")
    refused = run_zoo("push", str(exported), "me/model", HF_ENDPOINT="http://127.0.0.1:9",
                      HF_TOKEN="x")  # fmt: skip
    _one_line_error(refused, 1, "cannot push")
    _one_line_error(run_zoo("push", str(exported), "not a repo"), 2, "is not a Hugging Face")
    _one_line_error(run_zoo("push", str(tmp_path), "me/model"), 2, "is not an exported model")
