"""One loader for trained weights (a registered name, an exported directory, ``hf-hub:OWNER/REPO``)
and ``create_model(..., weights=NAME)``; neither imports Lightning."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ComponentSpecError, UnknownComponentError
from zoo.plugin.components import create_model as create_architecture
from zoo.plugin.kinds import normalise
from zoo.plugin.loading import get_registry
from zoo.plugin.specs import ComponentSpec, parse_spec
from zoo.weights.build import load_model
from zoo.weights.entry import Weights, from_dict, read_json
from zoo.weights.errors import WeightsError, WeightsUsageError
from zoo.weights.files import HUB_PREFIX, local_file

if TYPE_CHECKING:
    from torch import nn

#: The files of an exported directory that the loader reads.
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

Source = str | os.PathLike[str] | Weights


def find_weights(name: str) -> Weights:
    """The entry a plugin registered under ``name`` (``zoo list weights``)."""
    component = get_registry().get("weight", name)
    entry = component.factory()
    if not isinstance(entry, Weights):
        raise WeightsError(
            f"plugin {component.plugin!r} registered weights {component.name!r} whose factory "
            f"returned {type(entry).__name__}, not a zoo.Weights entry"
        )
    return entry


def read_directory(directory: Path) -> Weights:
    """The entry an exported directory's config.json describes, its file that directory's
    model.safetensors."""
    config = directory / CONFIG_FILE
    if not config.is_file():
        raise WeightsUsageError(f"{directory} is not an exported model: it has no {CONFIG_FILE}")
    entry = from_dict(read_json(config, "weights config"), str(config))
    return replace(entry, location=str(directory / WEIGHTS_FILE))


def resolve(source: Source) -> Weights:
    """The entry of a weights name, an exported directory or ``hf-hub:OWNER/REPO``."""
    if isinstance(source, Weights):
        return source
    text = os.fspath(source)
    if text.startswith(HUB_PREFIX):
        from zoo.weights.hub import hub_directory

        return read_directory(hub_directory(text.removeprefix(HUB_PREFIX)))
    path = Path(text).expanduser()
    if path.is_dir():
        return read_directory(path)
    try:
        return find_weights(text)
    except UnknownComponentError as error:
        if isinstance(source, Path) or os.sep in text or path.exists():
            raise WeightsUsageError(
                f"{text} is neither an exported model directory nor a weights name"
            ) from error
        raise


def load_weights(source: Source, *, num_classes: int | None = None) -> tuple[nn.Module, Weights]:
    """The model of ``source`` (a weights name, an exported directory or ``hf-hub:OWNER/REPO``)
    in eval mode, and its :class:`Weights` entry: ``entry.transforms()`` prepares an input.

    Safetensors only; a checksum, tensor name or shape that differs is a :class:`WeightsError`
    and leaves nothing in the cache. With ``num_classes`` other than the entry's, the head
    starts fresh (for fine-tuning on another dataset)."""
    entry = resolve(source)
    with local_file(entry) as path:
        model = load_model(entry, path, num_classes)
    return model, entry


def create_model(
    arch: str | ComponentSpec,
    *,
    act: str | ComponentSpec | None = None,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    dataset: Any = None,
    weights: Source | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build an architecture around an activation (``act`` defaults to ``relu``).

    ``input_shape`` (C, H, W) and ``num_classes`` are given directly or read from ``dataset``
    (a spec or a datamodule); ``kwargs`` go to the architecture, over its spec's arguments.
    With ``weights`` (a name, an exported directory or ``hf-hub:OWNER/REPO``), the model has
    those trained weights and is in eval mode; ``arch`` and ``act`` must be the weights' own,
    and a different ``num_classes`` gives a fresh head."""
    if weights is None:
        return create_architecture(
            arch,
            act=act or "relu",
            input_shape=input_shape,
            num_classes=num_classes,
            dataset=dataset,
            **kwargs,
        )
    entry = resolve(weights)
    wanted = parse_spec(arch).with_kwargs(**kwargs)
    for kind, asked, own in (("architecture", wanted, entry.arch), ("activation", act, entry.act)):
        if asked is not None and not _same_spec(asked, own):
            raise ComponentSpecError(
                f"weights {entry.name} were trained with {kind} {own!r}, not {str(asked)!r}",
                kind=kind,
            )
    if input_shape is not None and tuple(input_shape) != entry.dataset.input_shape:
        raise ComponentSpecError(
            f"weights {entry.name} take input {entry.dataset.input_shape}, not {tuple(input_shape)}"
        )
    with local_file(entry) as path:
        return load_model(entry, path, num_classes)


def _same_spec(asked: str | ComponentSpec, own: str) -> bool:
    a, b = parse_spec(asked), parse_spec(own)
    return normalise(a.name) == normalise(b.name) and a.kwargs == b.kwargs
