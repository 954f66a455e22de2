"""The built-in trained weights: the seed study's MLP with relu, leakyrelu, sigmoid and tanh on
MNIST, trained by benchmarks/train_weights.py; the files ship in the wheel (zoo/weights/files)."""

from __future__ import annotations

from importlib.resources import files

import zoo

#: The manifest benchmarks/train_weights.py writes beside the safetensors files.
MANIFEST = files("zoo.weights") / "files" / "manifest.json"


@zoo.hookimpl
def register_weights(register: zoo.Register) -> None:
    for entry in zoo.read_weights_manifest(MANIFEST):
        register(entry.name, entry, summary=entry.describe())
