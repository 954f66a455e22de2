"""What a loaded model needs done to an input: the size, channels and normalisation of the
dataset its weights were trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preprocess:
    """Turns a PIL image (any size or mode) or a float tensor ``C x H x W`` on the 0..1 scale
    into the normalised tensor the model takes; ``preprocess(image).unsqueeze(0)`` is a batch."""

    input_shape: tuple[int, int, int]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __call__(self, image: Any) -> Any:
        import torch
        from torchvision.transforms import functional as TF

        channels, height, width = self.input_shape
        if not isinstance(image, torch.Tensor):
            from PIL import Image

            converted = image.convert("L" if channels == 1 else "RGB")
            image = TF.to_tensor(converted.resize((width, height), Image.Resampling.BILINEAR))
        elif tuple(image.shape[-2:]) != (height, width):
            image = TF.resize(image, [height, width], antialias=True)
        image = image.float()
        if self.mean is not None and self.std is not None:
            image = TF.normalize(image, list(self.mean), list(self.std))
        return image
