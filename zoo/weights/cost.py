"""What an architecture costs with its defaults on a dataset's input: parameters, FLOPs per image
and the bytes of its weights, measured on the meta device (nothing allocated, no data read)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from zoo.plugin.components import create_datamodule
from zoo.plugin.components import create_model as create_architecture
from zoo.plugin.registry import Component
from zoo.weights.entry import human

#: The dataset whose input shape and classes ``zoo list architectures -l`` measures on.
DEFAULT_DATASET = "mnist"


@dataclass(frozen=True)
class Cost:
    """An architecture's cost on one input shape; ``error`` says why it could not be measured."""

    dataset: str
    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    num_params: int | None = None
    flops: int | None = None
    weights_size: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = None if self.input_shape is None else list(self.input_shape)
        return data

    def describe(self) -> str:
        """One line: ``109.4k params, 218.4k FLOPs/image, 437.5kB on mnist 1x28x28/10``."""
        if self.error is not None:
            return f"cost unknown: {self.error}"
        shape = "x".join(str(n) for n in self.input_shape or ())
        return (
            f"{human(self.num_params or 0)} params, {human(self.flops or 0)} FLOPs/image, "
            f"{human(self.weights_size or 0)}B on {self.dataset} {shape}/{self.num_classes}"
        )


def dataset_shape(dataset: str) -> tuple[tuple[int, ...], int]:
    """The input shape and number of classes ``dataset`` (a spec) declares; no data is read."""
    datamodule = create_datamodule(dataset)
    return tuple(int(n) for n in datamodule.input_shape), int(datamodule.num_classes)


def architecture_cost(
    arch: str, shape: tuple[int, ...], num_classes: int, dataset: str, act: str = "relu"
) -> Cost:
    """``arch`` with its defaults and ``act``, built on the meta device and run on one image
    there under :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add is two
    FLOPs); ``weights_size`` is the bytes of its state_dict as stored (float32 for most)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    found = Cost(dataset, shape, num_classes)
    try:
        with torch.device("meta"):
            model = create_architecture(arch, act=act, input_shape=shape, num_classes=num_classes)
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                model.eval()(torch.zeros(1, *shape))
    except Exception as error:  # a plugin's model that cannot be built or run on meta tensors
        text = " ".join(str(error).split()) or type(error).__name__
        return Cost(dataset, shape, num_classes, error=text[:200])
    state = model.state_dict().values()
    return Cost(
        found.dataset,
        shape,
        num_classes,
        num_params=sum(p.numel() for p in model.parameters()),
        flops=int(counter.get_total_flops()),
        weights_size=sum(t.numel() * t.element_size() for t in state),
    )


def costs(components: list[Component], dataset: str = DEFAULT_DATASET) -> dict[str, Cost]:
    """The cost of each architecture by name; a family (``timm/*``) is no one model: left out."""
    shape, classes = dataset_shape(dataset)
    return {
        c.name: architecture_cost(c.name, shape, classes, dataset)
        for c in components
        if c.kind == "architecture" and not c.is_family
    }
