"""timm's activation functions that ``torch.nn`` lacks, registered like any other activation.

The factories are ``"module:Class"`` references into timm, imported only when one is built, so
listing them imports neither timm nor torch.
"""

from __future__ import annotations

import zoo

# (name, "module:Class", summary); timm's own names, which normalise to e.g. "hardmish".
TIMM_ACTIVATIONS: tuple[tuple[str, str, str], ...] = (
    (
        "hard_mish",
        "timm.layers.activations:HardMish",
        "Hard Mish, x·clamp(x + 2, 0, 2)/2: a piecewise Mish (timm)",
    ),
    (
        "gelu_tanh",
        "timm.layers.activations:GELUTanh",
        "GELU with the tanh approximation, as in BERT and GPT-2 (timm)",
    ),
    (
        "quick_gelu",
        "timm.layers.activations:QuickGELU",
        "x·sigmoid(1.702·x), CLIP's fast GELU approximation (timm)",
    ),
    (
        "squared_relu",
        "timm.models.metaformer:SquaredReLU",
        "relu(x)², from Primer (So et al. 2021) (timm)",
    ),
    (
        "star_relu",
        "timm.models.metaformer:StarReLU",
        "s·relu(x)² + b with learnable s and b, from MetaFormer (Yu et al. 2022) (timm)",
    ),
)


@zoo.hookimpl
def register_activations(register: zoo.Register) -> None:
    for name, reference, summary in TIMM_ACTIVATIONS:
        register(name, reference, summary=summary)
