"""Fixtures of the weights tests: a real run trained on small MNIST-format data, its export, and
a third-party plugin package that ships a weights entry, written by the tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import zoo


@pytest.fixture(scope="package")
def tiny_run(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of the MLP with tanh, 30 steps on the small data: its directory."""
    result = zoo.train(
        "mlp", act="tanh", dataset="mnist:val_size=100", epochs=1, max_steps=30, seed=0,
        data_dir=tiny_mnist, output_dir=tmp_path_factory.mktemp("runs"), progress=False,
    )  # fmt: skip
    return Path(result.run_dir)


@pytest.fixture(scope="package")
def exported(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_run`` exported (safetensors only) into a directory of its own."""
    out = tmp_path_factory.mktemp("exported") / "model"
    zoo.export_model(tiny_run, out)
    return out


PLUGIN = '''\
"""A third-party plugin that ships trained weights."""
from pathlib import Path

import zoo

HERE = Path(__file__).parent
ENTRIES = zoo.read_weights_manifest(HERE / "manifest.json")


@zoo.hookimpl
def register_weights(register):
    for entry in ENTRIES:
        register(entry.name, entry, summary="third-party " + entry.name)
'''


def write_plugin(site: Path, exported: Path, **changes: object) -> dict:
    """A package ``acme_weights`` in ``site`` shipping ``exported``'s file as weights
    ``acme-tanh.mnist`` (location ``pkg:acme_weights/...``); ``changes`` edit the entry."""
    package = site / "acme_weights"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    (package / "acme.safetensors").write_bytes((exported / "model.safetensors").read_bytes())
    entry = json.loads((exported / "config.json").read_text(encoding="utf-8"))
    entry.update(name="acme-tanh.mnist", location="pkg:acme_weights/acme.safetensors")
    entry.update(changes)
    (package / "manifest.json").write_text(json.dumps([entry]), encoding="utf-8")
    return entry
