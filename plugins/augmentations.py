"""The built-in augmentations: batched tensor operations on the batch's device.

Each factory checks its arguments and returns a small (picklable) augmentation object; calling
it as ``augment(images, generator)`` transforms a training batch ``N x C x H x W`` on the
``ToTensor`` scale (0 to 1), drawing every random parameter per sample from ``generator``, all
samples at once: no Python loop over the samples. ``torchvision.transforms.v2`` applied to a
batched tensor draws one set of parameters for the whole batch, and its functionals take one
set of parameters per call, hence these tensor operations. torch is imported only when a batch
is augmented, so ``zoo list`` stays cheap.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import zoo

if TYPE_CHECKING:
    import torch

Range = tuple[float, float]
Interpolation = Literal["bilinear", "nearest"]

#: Tries per sample to find an erasing rectangle that fits, as torchvision's RandomErasing.
ERASING_TRIES = 10


# --- argument checks ---------------------------------------------------------------------------


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _integer(name: str, value: object, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number of pixels, not {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, not {value!r}")
    return value


def _within(name: str, value: object, low: float, high: float) -> float:
    number = _real(name, value)
    if not low <= number <= high:
        raise ValueError(f"{name} must be from {low:g} to {high:g}, not {value!r}")
    return number


def _pair(name: str, value: object, low: float, high: float) -> Range:
    """A ``(min, max)`` range inside ``[low, high]``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (min, max), not {value!r}")
    first, second = (_within(name, v, low, high) for v in value)
    if first > second:
        raise ValueError(f"{name} must be (min, max) with min <= max, not {tuple(value)!r}")
    return first, second


def _symmetric(name: str, value: object, high: float) -> Range:
    """A number ``x`` as the range ``(-x, x)`` (``x`` from 0 to ``high``), or a pair as is."""
    if isinstance(value, (tuple, list)):
        return _pair(name, value, -high, high)
    number = _real(name, value)
    if not 0 <= number <= high:
        raise ValueError(
            f"{name} must be from 0 to {high:g} (a range -{name} to +{name}), or a pair "
            f"(min, max); not {value!r}"
        )
    return -number, number


def _check_batch(images: torch.Tensor) -> None:
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(
            f"an augmentation takes a float batch N x C x H x W, not a {images.dtype} tensor "
            f"of shape {tuple(images.shape)}"
        )


# --- the augmentations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Translate:
    """Moves each image by a random whole number of pixels, from ``-pixels`` to ``pixels`` on
    each axis, filling with zeros: torchvision's ``RandomCrop(size, padding=pixels)`` per sample
    (pad with zeros, crop a random window of the original size)."""

    pixels: int

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        _check_batch(images)
        n, c, h, w = images.shape
        p, device = self.pixels, images.device
        if p == 0:
            return images
        # The window's corner in the padded image: top (row 0) and left (row 1), per sample.
        corner = torch.randint(0, 2 * p + 1, (2, n), generator=generator, device=device)
        padded = F.pad(images, (p, p, p, p)).flatten(2)  # N x C x (H+2p)(W+2p)
        rows = corner[0, :, None] + torch.arange(h, device=device)  # N x H
        cols = corner[1, :, None] + torch.arange(w, device=device)  # N x W
        index = rows[:, :, None] * (w + 2 * p) + cols[:, None, :]
        index = index.view(n, 1, h * w).expand(n, c, h * w)
        return padded.gather(2, index).view(n, c, h, w)


@dataclass(frozen=True)
class Flip:
    """Flips each image with probability ``p`` along ``dim`` (-1: left-right, -2: up-down)."""

    p: float
    dim: int

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        _check_batch(images)
        n = images.shape[0]
        chosen = torch.rand(n, generator=generator, device=images.device) < self.p
        return torch.where(chosen.view(n, 1, 1, 1), images.flip(self.dim), images)


@dataclass(frozen=True)
class Affine:
    """A random affine map per image about its centre, as torchvision's ``RandomAffine`` (and
    with its ``affine`` functional's conventions): rotation by an angle in ``degrees``,
    translation by up to ``translate`` times the width and height (not rounded to whole
    pixels), scaling by a factor in ``scale`` and shear parallel to the x axis by an angle in
    ``shear``; zero fill. One sampling grid and one ``grid_sample`` for the whole batch."""

    degrees: Range
    translate: Range
    scale: Range
    shear: Range
    interpolation: Interpolation

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        _check_batch(images)
        n, _, h, w = images.shape
        theta = self.theta(n, images.shape[-2:], generator, images.device).to(images.dtype)
        # F.affine_grid(theta, images.shape, align_corners=False), as one matrix product over
        # the whole batch (affine_grid's batched product of 3-vectors is several times slower
        # on a CPU).
        centres = _pixel_centres(h, w, images.device, images.dtype)  # HW x 2
        grid = torch.einsum("pk,njk->npj", centres, theta[:, :, :2]) + theta[:, None, :, 2]
        return F.grid_sample(
            images,
            grid.view(n, h, w, 2),
            mode=self.interpolation,
            padding_mode="zeros",
            align_corners=False,
        )

    def theta(
        self, n: int, size: torch.Size, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        """``affine_grid``'s ``N x 2 x 3`` matrices: each maps an output position to the input
        position it samples, in coordinates normalised to -1..1 across the image."""
        import torch

        h, w = size
        u = torch.rand(n, 5, generator=generator, device=device, dtype=torch.float32)

        def between(bounds: Range, column: int) -> torch.Tensor:
            return bounds[0] + (bounds[1] - bounds[0]) * u[:, column]

        # torchvision's conventions (its affine's): a positive angle turns clockwise on the
        # screen, a positive shear moves the top of the image to the right.
        angle = torch.deg2rad(between(self.degrees, 0))
        shear = torch.tan(torch.deg2rad(between(self.shear, 1)))
        scale = between(self.scale, 2)
        # In pixels, x to the right and y down: x sheared by y, then rotated and scaled.
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        a, b, c, d = cos, -cos * shear - sin, sin, cos - sin * shear
        det = a * d - b * c
        inverse = torch.stack([d, -b, -c, a], dim=1).view(n, 2, 2) / det.view(n, 1, 1)
        # From pixels (about the centre) to normalised coordinates: x / (w/2), y / (h/2).
        inverse[:, 0, 1] *= h / w
        inverse[:, 1, 0] *= w / h
        shift = torch.stack(
            [
                (2 * u[:, 3] - 1) * (2 * self.translate[0]),  # tx / (w/2), tx up to translate·w
                (2 * u[:, 4] - 1) * (2 * self.translate[1]),
            ],
            dim=1,
        )
        offset = -(inverse @ shift.unsqueeze(2))  # output p samples inverse · (p - shift)
        return torch.cat([inverse, offset], dim=2)


@functools.lru_cache(maxsize=16)
def _pixel_centres(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The ``(x, y)`` of every pixel's centre, row by row, normalised to -1..1 across the image
    (``affine_grid``'s with ``align_corners=False``): ``H*W x 2``."""
    import torch

    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    return torch.stack([xs.expand(h, w), ys[:, None].expand(h, w)], dim=-1).view(h * w, 2)


@dataclass(frozen=True)
class Erasing:
    """torchvision's ``RandomErasing`` per sample: with probability ``p``, one rectangle of
    ``scale`` times the image's area (a random fraction) and aspect ratio in ``ratio`` (drawn
    on a log scale) set to ``value`` in every channel; a sample whose ``ERASING_TRIES`` draws
    give no rectangle that fits is left as it is."""

    p: float
    scale: Range
    ratio: Range
    value: float

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        _check_batch(images)
        n, _, h, w = images.shape
        device, tries = images.device, ERASING_TRIES
        u = torch.rand(n, 3 + 2 * tries, generator=generator, device=device, dtype=torch.float32)
        area = h * w * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[:, 3 : 3 + tries])
        low, high = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(low + (high - low) * u[:, 3 + tries :])
        heights = torch.round(torch.sqrt(area * aspect)).long()
        widths = torch.round(torch.sqrt(area / aspect)).long()
        fits = (heights < h) & (widths < w)
        first = fits.int().argmax(dim=1, keepdim=True)  # the first try that fits (0 if none)
        height, width = heights.gather(1, first)[:, 0], widths.gather(1, first)[:, 0]
        erase = (u[:, 0] < self.p) & fits.any(dim=1)
        top = (u[:, 1] * (h - height + 1)).long().clamp(max=h - height)
        left = (u[:, 2] * (w - width + 1)).long().clamp(max=w - width)
        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None]) & erase[:, None]
        in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])  # N x W
        box = in_rows[:, None, :, None] & in_cols[:, None, None, :]  # N x 1 x H x W
        return images.masked_fill(box, self.value)


@dataclass(frozen=True)
class Noise:
    """Adds Gaussian noise of standard deviation ``std`` to every pixel, then clips to 0..1."""

    std: float

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        import torch

        _check_batch(images)
        noise = torch.randn(
            images.shape, generator=generator, device=images.device, dtype=images.dtype
        )
        return (images + self.std * noise).clamp(0.0, 1.0)


# --- the factories -----------------------------------------------------------------------------


def shift(pixels: int = 2) -> Translate:
    """Random translation by up to ``pixels`` whole pixels on each axis, zero fill."""
    return Translate(_integer("pixels", pixels))


def crop(padding: int = 4) -> Translate:
    """torchvision's ``RandomCrop(size, padding)`` per sample: zero padding by ``padding``,
    then a random crop back to the image's size."""
    return Translate(_integer("padding", padding))


def affine(
    degrees: float | Range | None = None,
    translate: float | Range | None = None,
    scale: Range | None = None,
    shear: float | Range | None = None,
    interpolation: Interpolation = "bilinear",
) -> Affine:
    """A random affine map per sample, as torchvision's ``RandomAffine``: ``degrees=10``
    rotates by -10° to 10° (or a pair ``(min, max)``), ``translate=0.1`` moves by up to a tenth
    of the width and height (or a pair: of the width, of the height), ``scale=(0.9, 1.1)``
    scales, ``shear=10`` shears parallel to the x axis by -10° to 10° (or a pair)."""
    if degrees is None and translate is None and scale is None and shear is None:
        raise ValueError(
            "affine needs at least one of degrees, translate, scale or shear, "
            "e.g. affine:degrees=10,translate=0.1"
        )
    if translate is None:
        translate_range: Range = (0.0, 0.0)
    elif isinstance(translate, (tuple, list)):
        if len(translate) != 2:
            raise TypeError(f"translate must be a number or a pair (x, y), not {translate!r}")
        translate_range = (
            _within("translate", translate[0], 0, 1),
            _within("translate", translate[1], 0, 1),
        )
    else:
        translate_range = (_within("translate", translate, 0, 1),) * 2
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', not {interpolation!r}")
    scale_range = (1.0, 1.0) if scale is None else _pair("scale", scale, 0, math.inf)
    if scale_range[0] <= 0:
        raise ValueError(f"scale must be a pair (min, max) of factors above 0, not {scale!r}")
    return Affine(
        degrees=(0.0, 0.0) if degrees is None else _symmetric("degrees", degrees, 180),
        translate=translate_range,
        scale=scale_range,
        shear=(0.0, 0.0) if shear is None else _symmetric("shear", shear, 80),
        interpolation=interpolation,
    )


def hflip(p: float = 0.5) -> Flip:
    """Flips left-right with probability ``p`` per sample."""
    return Flip(_within("p", p, 0, 1), dim=-1)


def vflip(p: float = 0.5) -> Flip:
    """Flips upside down with probability ``p`` per sample."""
    return Flip(_within("p", p, 0, 1), dim=-2)


def erasing(
    p: float = 0.5,
    scale: Range = (0.02, 0.33),
    ratio: Range = (0.3, 3.3),
    value: float = 0.0,
) -> Erasing:
    """torchvision's ``RandomErasing`` per sample (its defaults): with probability ``p``, a
    rectangle of ``scale`` times the area and aspect ratio in ``ratio`` set to ``value`` (0 is
    black, on the 0 to 1 scale)."""
    scale_range = _pair("scale", scale, 0, 1)
    ratio_range = _pair("ratio", ratio, 0, math.inf)
    if scale_range[1] <= 0 or ratio_range[0] <= 0:
        raise ValueError(
            f"scale and ratio must be ranges of values above 0, not scale={scale!r}, "
            f"ratio={ratio!r}"
        )
    return Erasing(_within("p", p, 0, 1), scale_range, ratio_range, _within("value", value, 0, 1))


def noise(std: float = 0.05) -> Noise:
    """Gaussian pixel noise of standard deviation ``std``, clipped to 0..1."""
    return Noise(_within("std", std, 0, 1))


#: The built-in augmentations: name, factory, the summary ``zoo list augmentations`` shows.
BUILT_IN = (
    ("shift", shift, "random translation by up to pixels (2) whole pixels per axis, zero fill"),
    ("crop", crop, "RandomCrop per sample: zero padding by padding (4), random crop back to size"),
    (
        "affine",
        affine,
        "RandomAffine per sample: degrees, translate (fraction), scale (min, max), shear; zero "
        "fill",
    ),
    ("hflip", hflip, "left-right flip with probability p (0.5) per sample"),
    ("vflip", vflip, "upside-down flip with probability p (0.5) per sample"),
    (
        "erasing",
        erasing,
        "RandomErasing per sample: p (0.5), scale (0.02, 0.33), ratio (0.3, 3.3), value (0)",
    ),
    ("noise", noise, "Gaussian pixel noise of standard deviation std (0.05), clipped to 0..1"),
)


@zoo.hookimpl
def register_augmentations(register: zoo.Register) -> None:
    for name, factory, summary in BUILT_IN:
        register(name, factory, summary=summary)
