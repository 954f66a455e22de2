"""The built-in augmentations on real MNIST batches: shapes and ranges, per-sample randomness
from the generator, exact geometry (whole-pixel shifts, flips, torchvision's affine, erasing
rectangles), argument errors, and real runs that stay on the in-memory path and reproduce."""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

import zoo
from zoo.plugin.components import resolve
from zoo.plugins import augmentations

N = 64
BUILT_IN = ("shift", "crop", "affine", "hflip", "vflip", "erasing", "noise")
# One spec of each that changes every batch (p=1 where there is a p, so that every sample of
# the batch is transformed).
SPECS = (
    "shift:pixels=3",
    "crop:padding=4",
    "affine:degrees=15,translate=0.1,scale=(0.9,1.1),shear=5",
    "hflip",
    "vflip",
    "erasing:p=1",
    "noise:std=0.1",
)
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def digits(real_mnist: Path) -> torch.Tensor:
    """The first N real MNIST training images, N x 1 x 28 x 28 on the 0..1 scale."""
    path = real_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw = np.fromfile(path, dtype=np.uint8, count=N * 28 * 28, offset=16)
    return torch.from_numpy(raw.reshape(N, 1, 28, 28).astype(np.float32) / 255)


def build(spec: str) -> Any:
    """The built-in augmentation ``spec`` names, through the registry as a run builds it."""
    component, parsed = resolve("augmentation", spec)
    assert component.plugin == "augmentations", f"{spec} is not the built-in one"
    return component.build(parsed.kwargs)


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` (C x H x W) moved down by ``dy`` and right by ``dx`` pixels, zero fill."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


# --- every augmentation ------------------------------------------------------------------------


def test_the_built_ins_are_registered_with_summaries() -> None:
    components = {c.name: c for c in zoo.list_components("augmentation")}
    for name in BUILT_IN:
        assert components[name].plugin == "augmentations"
        assert components[name].summary


def test_registering_them_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from zoo.plugins import augmentations\n"
        "names = []\n"
        "augmentations.register_augmentations(lambda name, factory, **_: names.append(name))\n"
        f"assert sorted(names) == {sorted(BUILT_IN)!r}, names\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("spec", SPECS)
def test_shape_dtype_device_and_range_are_kept(
    digits: torch.Tensor, spec: str, dtype: torch.dtype, device: str
) -> None:
    images = digits.to(device, dtype)
    out = build(spec)(images, generator(0, device))
    assert (out.shape, out.dtype, out.device) == (images.shape, dtype, images.device)
    assert out.min() >= 0 and out.max() <= 1 + 1e-6
    assert not torch.equal(out, images)


@pytest.mark.parametrize("spec", SPECS)
def test_each_sample_gets_its_own_transform(digits: torch.Tensor, spec: str) -> None:
    # One digit, N times, with no zeros of its own (erasing a black patch would change nothing).
    same = (0.02 + 0.96 * digits[:1]).expand(N, -1, -1, -1).contiguous()
    out = build(spec)(same, generator(0))
    distinct = {out[i].numpy().tobytes() for i in range(N)}
    # A flip has two outcomes; the others a different one for (nearly) every sample.
    assert len(distinct) == 2 if "flip" in spec else len(distinct) > N // 2


@pytest.mark.parametrize("spec", SPECS)
def test_the_generator_decides_everything(digits: torch.Tensor, spec: str) -> None:
    augment = build(spec)
    global_state = torch.get_rng_state()
    first = augment(digits, generator(7))
    assert torch.equal(torch.get_rng_state(), global_state)  # torch's global RNG is not used
    assert torch.equal(first, build(spec)(digits, generator(7)))
    assert not torch.equal(first, augment(digits, generator(8)))


@pytest.mark.parametrize("spec", SPECS)
def test_they_pickle_as_a_spawned_process_needs(digits: torch.Tensor, spec: str) -> None:
    augment = build(spec)
    again = pickle.loads(pickle.dumps(augment))
    assert torch.equal(augment(digits, generator(1)), again(digits, generator(1)))


# --- the geometry, exactly ---------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "pixels"), [("shift:pixels=2", 2), ("crop:padding=4", 4)])
def test_shift_and_crop_move_by_whole_pixels_with_zero_fill(
    digits: torch.Tensor, spec: str, pixels: int
) -> None:
    out = build(spec)(digits, generator(0))
    moves = set()
    for i in range(N):
        found = [
            (dy, dx)
            for dy in range(-pixels, pixels + 1)
            for dx in range(-pixels, pixels + 1)
            if torch.equal(out[i], shifted(digits[i], dy, dx))
        ]
        assert found, f"sample {i} is not its digit moved by whole pixels"
        moves.add(found[0])
    assert len(moves) > (2 * pixels + 1) ** 2 // 3  # spread over the moves, per sample


def test_crop_is_torchvision_random_crop_per_sample(digits: torch.Tensor) -> None:
    """Some window of the zero-padded digit, of the digit's size, for every sample."""
    out = build("crop:padding=3")(digits, generator(5))
    padded = TF.pad(digits, [3])
    for i in range(N):
        windows = padded[i].unfold(1, 28, 1).unfold(2, 28, 1)  # C x 7 x 7 x 28 x 28
        assert (windows == out[i][:, None, None]).flatten(3).all(3).any(), i


@pytest.mark.parametrize(("name", "dim"), [("hflip", -1), ("vflip", -2)])
def test_flips_flip_exactly_the_chosen_samples(digits: torch.Tensor, name: str, dim: int) -> None:
    out = build(name)(digits, generator(3))
    flipped = [torch.equal(out[i], digits[i].flip(dim)) for i in range(N)]
    kept = [torch.equal(out[i], digits[i]) for i in range(N)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))  # one or the other
    assert 0 < sum(flipped) < N
    assert torch.equal(build(f"{name}:p=0")(digits, generator(3)), digits)
    assert torch.equal(build(f"{name}:p=1")(digits, generator(3)), digits.flip(dim))


def test_affine_with_nothing_to_do_is_the_identity(digits: torch.Tensor) -> None:
    out = build("affine:degrees=0,translate=0,scale=(1,1),shear=0")(digits, generator(0))
    torch.testing.assert_close(out, digits, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("spec", "angle", "scale", "shear"),
    [
        ("affine:degrees=(30,30)", 30.0, 1.0, 0.0),
        ("affine:degrees=(-90,-90)", -90.0, 1.0, 0.0),
        ("affine:scale=(1.3,1.3)", 0.0, 1.3, 0.0),
        ("affine:shear=(12,12)", 0.0, 1.0, 12.0),
        ("affine:degrees=(-40,-40),scale=(0.8,0.8),shear=(-20,-20)", -40.0, 0.8, -20.0),
    ],
)
def test_affine_is_torchvision_affine(
    digits: torch.Tensor, spec: str, angle: float, scale: float, shear: float
) -> None:
    """With one value per range, every sample is torchvision's affine of it; on an RGB image
    that is not square too."""
    bilinear = TF.InterpolationMode.BILINEAR
    for images in (digits, torch.rand(8, 3, 20, 36, generator=generator(0))):
        out = build(spec)(images, generator(0))
        expected = TF.affine(
            images, angle=angle, translate=[0, 0], scale=scale, shear=[shear, 0],
            interpolation=bilinear,
        )  # fmt: skip
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_affine_translates_each_sample_by_its_own_fraction(digits: torch.Tensor) -> None:
    """``translate=(0.1, 0)`` on the digits widened to 40 pixels: rows keep their mass (the
    digits stay inside the frame), and each digit's centre of mass moves sideways by up to 4
    pixels, by its own amount."""
    wide = TF.pad(digits, [6, 0])  # N x 1 x 28 x 40
    out = build("affine:translate=(0.1,0)")(wide, generator(0))
    torch.testing.assert_close(out.sum(dim=3), wide.sum(dim=3), atol=1e-4, rtol=1e-5)
    columns = torch.arange(40.0)

    def centre(images: torch.Tensor) -> torch.Tensor:
        mass = images.sum(dim=(1, 2))  # N x W
        return (mass * columns).sum(dim=1) / mass.sum(dim=1)

    moves = centre(out) - centre(wide)
    assert moves.abs().max() <= 0.1 * 40 + 1e-3
    assert moves.std() > 1 and len(set(moves.round(decimals=3).tolist())) == N


def test_erasing_with_p_0_is_the_identity(digits: torch.Tensor) -> None:
    assert torch.equal(build("erasing:p=0")(digits, generator(0)), digits)


def erased_boxes(images: torch.Tensor, out: torch.Tensor) -> list[tuple[int, int] | None]:
    """Per sample, the (height, width) of the rectangle ``out`` zeroes in ``images`` (which has
    no zeros), or None if nothing is; asserts that what is zeroed is one filled rectangle."""
    boxes: list[tuple[int, int] | None] = []
    for before, after in zip(images, out, strict=True):
        zero = after == 0
        assert torch.equal(after[~zero], before[~zero])  # the rest is untouched
        assert torch.equal(zero, zero[:1].expand_as(zero))  # every channel alike
        rows, cols = zero[0].any(dim=1).nonzero(), zero[0].any(dim=0).nonzero()
        if not len(rows):
            boxes.append(None)
            continue
        height, width = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        assert int(zero[0].sum()) == height * width, "the erased pixels are not a rectangle"
        boxes.append((height, width))
    return boxes


def test_erasing_zeroes_a_rectangle_of_the_given_area(digits: torch.Tensor) -> None:
    images = 0.02 + 0.96 * digits  # no zeros of its own: what is zero was erased
    # Squares of a tenth to a fifth of 784 pixels: sides round(8.9...12.5), 9 to 13.
    out = build("erasing:p=1,scale=(0.1,0.2),ratio=(1,1)")(images, generator(0))
    boxes = erased_boxes(images, out)
    assert all(box is not None and box[0] == box[1] and 9 <= box[0] <= 13 for box in boxes)
    assert len(set(boxes)) > 2
    # The defaults: a rectangle of 2 % to 33 % of the image (up to the rounding of its sides)
    # with sides in ratio 0.3 to 3.3, for (nearly) every sample at p=1.
    boxes = erased_boxes(images, build("erasing:p=1")(images, generator(1)))
    found = [box for box in boxes if box is not None]
    assert len(found) >= N - 2
    for height, width in found:
        assert 0.02 * 784 * 0.6 <= height * width <= 0.33 * 784 * 1.2, (height, width)
        assert 0.3 * 0.6 <= height / width <= 3.3 / 0.6, (height, width)
    some = erased_boxes(images, build("erasing:p=0.5")(images, generator(2)))
    assert N // 4 < sum(box is not None for box in some) < 3 * N // 4


# --- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "kwargs", "error", "message"),
    [
        ("shift", {"pixels": -1}, ValueError, "pixels must be at least 0"),
        ("shift", {"pixels": 1.5}, TypeError, "pixels must be a whole number"),
        ("crop", {"padding": True}, TypeError, "padding must be a whole number"),
        ("affine", {}, ValueError, "at least one of degrees"),
        ("affine", {"degrees": -5}, ValueError, "degrees must be from 0 to 180"),
        ("affine", {"degrees": (10, -10)}, ValueError, "min <= max"),
        ("affine", {"degrees": float("nan")}, ValueError, "finite"),
        ("affine", {"translate": 1.5}, ValueError, "translate must be from 0 to 1"),
        ("affine", {"translate": (0.1, 0.1, 0.1)}, TypeError, "pair (x, y)"),
        ("affine", {"scale": 1.1}, TypeError, "scale must be a pair"),
        ("affine", {"scale": (0, 1)}, ValueError, "above 0"),
        ("affine", {"shear": 90}, ValueError, "shear must be from 0 to 80"),
        ("affine", {"degrees": 5, "interpolation": "bicubic"}, ValueError, "'bilinear'"),
        ("hflip", {"p": 1.5}, ValueError, "p must be from 0 to 1"),
        ("vflip", {"p": "half"}, TypeError, "p must be a number"),
        ("erasing", {"scale": (0.5, 0.1)}, ValueError, "min <= max"),
        ("erasing", {"ratio": (0, 1)}, ValueError, "above 0"),
        ("erasing", {"value": 2}, ValueError, "value must be from 0 to 1"),
        ("noise", {"std": -0.1}, ValueError, "std must be from 0 to 1"),
    ],
)
def test_bad_arguments_say_what_is_wrong(
    factory: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        getattr(augmentations, factory)(**kwargs)


def test_a_bad_spec_is_a_usage_error_naming_the_argument() -> None:
    with pytest.raises(zoo.ZooUsageError, match="degrees must be from 0 to 180"):
        build("affine:degrees=-5")


def test_a_batch_that_is_not_images_is_refused(digits: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="N x C x H x W"):
        build("shift")(digits[0], generator(0))


# --- in a run ----------------------------------------------------------------------------------

AUGMENT = ("crop:padding=2", "affine:degrees=10")
STEPS = 30
TRAINER = {"log_every_n_steps": 1, "limit_test_batches": 2}  # a loss row every step


def train(data: Path, out: Path, **options: Any) -> zoo.TrainResult:
    settings = {"augment": AUGMENT, "seed": 0, "max_steps": STEPS, **options}
    return zoo.train(
        "mlp",
        act="relu",
        dataset="mnist",
        data_dir=data,
        progress=False,
        output_dir=out,
        trainer_options=TRAINER,
        **settings,
    )


def losses(result: zoo.TrainResult) -> list[str]:
    with open(Path(result.run_dir) / "metrics.csv", newline="") as file:
        return [row["train_loss_step"] for row in csv.DictReader(file) if row["train_loss_step"]]


def weights(result: zoo.TrainResult) -> dict[str, torch.Tensor]:
    path = Path(result.run_dir) / "checkpoints" / "last.ckpt"
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def same_weights(a: zoo.TrainResult, b: zoo.TrainResult) -> bool:
    first, second = weights(a), weights(b)
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.fixture(scope="module")
def augmented_run(real_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> zoo.TrainResult:
    return train(real_mnist, tmp_path_factory.mktemp("augmented"))


def test_a_run_with_augmentation_stays_on_the_fast_path_and_reproduces(
    real_mnist: Path, tmp_path: Path, augmented_run: zoo.TrainResult
) -> None:
    record = json.loads((Path(augmented_run.run_dir) / "config.json").read_text())
    assert record["data_path"] == "in-memory"
    assert record["config"]["augment"] == list(AUGMENT)
    assert record["components"]["augment[1]"]["plugin"] == "augmentations"
    assert len(losses(augmented_run)) == STEPS
    again = train(real_mnist, tmp_path / "again")
    assert losses(again) == losses(augmented_run)
    assert same_weights(again, augmented_run)
    other_seed = train(real_mnist, tmp_path / "seed1", seed=1)
    assert losses(other_seed) != losses(augmented_run)
    plain = train(real_mnist, tmp_path / "plain", augment=())  # the same seed, not augmented
    assert losses(plain)[0] != losses(augmented_run)[0]
    assert not same_weights(plain, augmented_run)


class SignalAt(L.Callback):
    """Sends this process SIGTERM as step ``step`` starts."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_resumed_run_continues_the_augmentation_exactly(
    real_mnist: Path, tmp_path: Path, augmented_run: zoo.TrainResult
) -> None:
    with pytest.raises(zoo.TrainingInterrupted):
        train(real_mnist, tmp_path, callbacks=[SignalAt(12)])
    (run_dir,) = tmp_path.iterdir()
    resumed = zoo.resume(run_dir, progress=False, trainer_options=TRAINER)
    assert resumed.steps == STEPS
    assert losses(resumed) == losses(augmented_run)
    assert same_weights(resumed, augmented_run)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("affine:degrees=-5", "degrees must be from 0 to 180"),
        ("shfit", "Did you mean 'shift'"),
    ],
)
def test_a_bad_augment_is_a_usage_error_before_anything_runs(
    real_mnist: Path, tmp_path: Path, spec: str, message: str
) -> None:
    command = [sys.executable, "-m", "zoo", "train", "--augment", spec, "--max-steps", "5"]
    command += ["--output-dir", str(tmp_path / "runs")]
    env = {**os.environ, "ZOO_DATA_DIR": str(real_mnist)}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert message in completed.stderr and "'--augment'" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "runs").exists()
