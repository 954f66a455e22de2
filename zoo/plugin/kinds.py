"""The kinds of component, the arguments the core passes to each kind's factories, and the
rule that makes two spellings one name."""

from __future__ import annotations

from typing import Literal

Kind = Literal[
    "activation",
    "architecture",
    "dataset",
    "optimizer",
    "scheduler",
    "augmentation",
    "logger",
    "weight",
]
#: Every kind of component, in the order ``zoo list`` shows them; kind ``k`` is registered by
#: the hook ``register_<k>s``.
KINDS: tuple[Kind, ...] = (
    "activation", "architecture", "dataset", "optimizer", "scheduler", "augmentation", "logger",
    "weight",
)  # fmt: skip

#: Separates a family's prefix from a member's name: ``timm/resnet18``.
FAMILY_SEPARATOR = "/"
#: A family is registered as ``PREFIX/*``.
FAMILY_SUFFIX = FAMILY_SEPARATOR + "*"

#: Arguments the core passes to each kind of factory; a spec may not set them.
RESERVED_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "activation": (),
    "architecture": ("act", "input_shape", "num_classes"),
    "dataset": ("data_dir", "batch_size"),
    "optimizer": ("model", "lr"),
    "scheduler": ("optimizer", "total_steps", "steps_per_epoch"),
    "augmentation": (),
    "logger": ("save_dir",),
    "weight": (),
}


def normalise(name: str) -> str:
    """The lookup key of a name: ``LeakyReLU``, ``leaky_relu`` and ``leaky-relu`` are one name."""
    return name.lower().replace("-", "").replace("_", "")
