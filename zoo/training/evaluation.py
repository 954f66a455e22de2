"""After training: evaluate a checkpoint on a split, predict the classes of image files."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from zoo.data.checks import check_datamodule, checked_batches, load_data
from zoo.errors import ZooError, ZooUsageError, component_label
from zoo.plugin.components import DEFAULT_BATCH_SIZE, resolve
from zoo.plugin.loading import plugin_of
from zoo.training.checkpoints import load_model, resolve_checkpoint
from zoo.weights.evaluable import open_weights

#: The datasets ``predict`` has warned about feeding unnormalised images (once each).
_WARNED_UNNORMALISED: set[str] = set()


@dataclass
class Evaluation:
    """Accuracy, loss and per-class accuracy of a checkpoint on one split of a dataset."""

    checkpoint: str
    dataset: str
    split: str
    samples: int
    accuracy: float
    loss: float
    per_class: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prediction:
    """The most likely classes of one image, best first, with probabilities."""

    image: str
    top: list[tuple[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "top": [{"class": c, "probability": p} for c, p in self.top]}


def evaluate(
    checkpoint: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
) -> Evaluation:
    """Evaluate a checkpoint (or a run directory's best checkpoint) on ``split`` (test or val)
    of its own dataset, or of ``dataset`` if given (same input shape and classes needed)."""
    if split not in ("test", "val"):
        raise ZooUsageError(f"split must be 'test' or 'val', not {split!r}")
    path, model = _open(checkpoint)
    spec = dataset or model.hparams.get("dataset")
    if not spec:
        raise ZooUsageError(f"{path} does not record its dataset; pass --dataset")
    component, datamodule = _datamodule(spec, data_dir=data_dir, batch_size=batch_size)
    _check_compatible(model, datamodule, spec)
    load_data(datamodule, component, "test" if split == "test" else "fit")

    num_classes = int(model.hparams["num_classes"])
    correct = torch.zeros(num_classes, dtype=torch.long)
    total = torch.zeros(num_classes, dtype=torch.long)
    loss_sum = 0.0
    with torch.inference_mode():
        for x, y in checked_batches(datamodule, component, split):
            output = model(x)
            loss_sum += float(F.cross_entropy(output, y, reduction="sum"))
            hits = output.argmax(dim=1) == y
            total += torch.bincount(y, minlength=num_classes)
            correct += torch.bincount(y[hits], minlength=num_classes)
    samples = int(total.sum())
    if samples == 0:
        raise ZooError(f"the {split} split of {spec} is empty")
    names = list(getattr(datamodule, "class_names", None) or range(num_classes))
    return Evaluation(
        checkpoint=str(path),
        dataset=str(spec),
        split=split,
        samples=samples,
        accuracy=float(correct.sum()) / samples,
        loss=loss_sum / samples,
        per_class={
            str(name): float(correct[i]) / int(total[i])
            for i, name in enumerate(names)
            if int(total[i]) > 0
        },
    )


def predict(
    checkpoint: str | os.PathLike[str],
    images: Sequence[str | os.PathLike[str]],
    *,
    top_k: int = 3,
) -> list[Prediction]:
    """The ``top_k`` classes of each image file (PNG, JPEG, … of any size and mode), converted to
    the checkpoint's input shape and normalised like its dataset."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    _, model = _open(checkpoint)
    channels, height, width = (int(n) for n in model.hparams["input_shape"])
    num_classes = int(model.hparams["num_classes"])
    names = model.hparams.get("class_names") or [str(i) for i in range(num_classes)]
    mean, std = _normalisation(model)
    batch = []
    for image_path in images:
        try:
            with Image.open(image_path) as image:
                image.load()
                converted = image.convert("L" if channels == 1 else "RGB")
        except (OSError, UnidentifiedImageError) as error:
            raise ZooError(f"cannot read image {image_path}: {error}") from error
        tensor = TF.to_tensor(converted.resize((width, height), Image.Resampling.BILINEAR))
        if mean is not None and std is not None:
            tensor = TF.normalize(tensor, mean, std)
        batch.append(tensor)
    if not batch:
        return []
    with torch.inference_mode():
        probabilities = F.softmax(model(torch.stack(batch)), dim=1)
    k = max(1, min(top_k, num_classes))
    values, indices = probabilities.topk(k, dim=1)
    return [
        Prediction(
            image=str(image_path),
            top=[(str(names[i]), float(p)) for p, i in zip(row_p, row_i, strict=True)],
        )
        for image_path, row_p, row_i in zip(images, values.tolist(), indices.tolist(), strict=True)
    ]


def _open(checkpoint: str | os.PathLike[str]) -> tuple[Any, Any]:
    """A checkpoint (or run directory) and its model; or weights: a name, an exported
    directory or ``hf-hub:OWNER/REPO`` (:func:`zoo.weights.evaluable.open_weights`)."""
    weights = open_weights(checkpoint)
    if weights is not None:
        return weights
    path = resolve_checkpoint(checkpoint)
    return path, load_model(path)


def _datamodule(
    spec: str, *, data_dir: str | os.PathLike[str] | None = None, batch_size: int
) -> tuple[Any, Any]:
    """The dataset's component and its datamodule, its declarations checked (no data read)."""
    component, parsed = resolve("dataset", spec)
    datamodule = component.build(parsed.kwargs, data_dir=data_dir, batch_size=batch_size)
    check_datamodule(datamodule, component)
    return component, datamodule


def _normalisation(model: Any) -> tuple[list[float] | None, list[float] | None]:
    """The mean and std the checkpoint's dataset normalises with; (None, None), with a warning
    on stderr (once per dataset), if it declares none or the checkpoint names no dataset."""
    if model.hparams.get("mean") is not None:  # weights record their normalisation
        return list(model.hparams["mean"]), list(model.hparams["std"])
    spec = model.hparams.get("dataset")
    mean = std = None
    why = "the checkpoint records no dataset"
    if spec:
        component, datamodule = _datamodule(spec, batch_size=DEFAULT_BATCH_SIZE)
        mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
        why = f"{component_label(component, plugin_of(component))} declares no normalisation"
    if mean is not None and std is not None:
        return list(mean), list(std)
    if why not in _WARNED_UNNORMALISED:
        _WARNED_UNNORMALISED.add(why)
        print(
            f"zoo: warning: {why} (mean and std): images are fed to the model unnormalised, "
            "scaled to 0..1",
            file=sys.stderr,
        )
    return None, None


def _check_compatible(model: Any, datamodule: Any, spec: str) -> None:
    expected = (tuple(model.hparams["input_shape"]), int(model.hparams["num_classes"]))
    found = (tuple(datamodule.input_shape), int(datamodule.num_classes))
    if expected != found:
        raise ZooUsageError(
            f"the checkpoint takes input {expected[0]} with {expected[1]} classes, but {spec} "
            f"has input {found[0]} with {found[1]} classes"
        )
