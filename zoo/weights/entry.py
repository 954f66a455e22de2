"""A weights entry: what a trained model is, what it was trained on, what it costs and where its
file lies. Plain data, read and written as JSON, checked on the way in (no torch here).

Names follow ``ARCH-ACT.DATASET[-TAG]`` (timm's ``model.tag``): ``mlp-leakyrelu.mnist``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.weights.errors import WeightsError

#: The version of the entry format that :meth:`Weights.to_dict` writes.
FORMAT_VERSION = 1
#: A weights name: letters, digits, ``-``, ``_`` and ``.``, starting with a letter or digit.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

# Bounds on what an entry or a config.json may ask for: a damaged or hostile file must not make
# zoo build a model of any size it names.
MAX_CHANNELS = 4096
MAX_INPUT_SIDE = 4096
MAX_INPUT_VALUES = 2**26
MAX_CLASSES = 100_000
#: The largest weights file zoo reads: 4 GiB.
MAX_FILE_SIZE = 2**32


@dataclass(frozen=True)
class DatasetInfo:
    """The dataset the weights were trained on: its spec, what an input looks like, the classes,
    and the per-channel normalisation (on the 0..1 scale; None: inputs are not normalised)."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Weights:
    """A trained model: its architecture and activation specs, its dataset, the command that
    trained it, its test metrics, its cost (parameters, FLOPs per image, file size), and its file:
    ``location`` is ``pkg:MODULE/PATH`` (shipped in a package), an ``https://``, ``http://`` or
    ``file://`` URL (downloaded once into the cache), ``hf-hub:OWNER/REPO``, or a local path.

    An entry is registered as its own factory: calling it returns it, as a function a plugin
    registers instead (to build the entry lazily) would."""

    name: str
    arch: str
    act: str
    dataset: DatasetInfo
    location: str
    sha256: str | None = None
    file_size: int | None = None
    num_params: int | None = None
    flops: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    command: str | None = None
    summary: str = ""

    def __call__(self) -> Weights:
        """This entry (the factory of a weights component returns its entry)."""
        return self

    def transforms(self) -> Any:
        """The callable that prepares an input for this model: resize, channels, normalise."""
        return transforms(self)

    @property
    def accuracy(self) -> float | None:
        """The test accuracy recorded for these weights, if any."""
        return self.metrics.get("test_acc")

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data (what config.json and manifests hold)."""
        data = asdict(self)
        data["dataset"]["input_shape"] = list(self.dataset.input_shape)
        data["dataset"]["class_names"] = list(self.dataset.class_names)
        for key in ("mean", "std"):
            value = getattr(self.dataset, key)
            data["dataset"][key] = None if value is None else list(value)
        return {"format": FORMAT_VERSION, **data}

    def describe(self) -> str:
        """One line: accuracy, parameters, FLOPs and file size."""
        parts = [self.summary] if self.summary else []
        if self.accuracy is not None:
            parts.append(f"test acc {self.accuracy:.2%}")
        if self.num_params is not None:
            parts.append(f"{human(self.num_params)} params")
        if self.flops is not None:
            parts.append(f"{human(self.flops)} FLOPs/image")
        if self.file_size is not None:
            parts.append(f"{human(self.file_size)}B")
        return ", ".join(parts)

    def listing(self) -> dict[str, Any]:
        """What ``zoo list weights --json`` adds to a row."""
        return {
            "arch": self.arch,
            "act": self.act,
            "dataset": self.dataset.name,
            "num_params": self.num_params,
            "flops": self.flops,
            "file_size": self.file_size,
            "accuracy": self.accuracy,
            "metrics": dict(self.metrics),
            "command": self.command,
            "location": self.location,
            "sha256": self.sha256,
        }


def human(value: float) -> str:
    """``109386`` as ``109.4k``, ``3e9`` as ``3.0G`` (SI prefixes)."""
    for unit in ("", "k", "M", "G", "T"):
        if abs(value) < 1000 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "" else f"{value:.1f}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def from_dict(data: Any, where: str) -> Weights:
    """A checked :class:`Weights` from JSON data; :class:`WeightsError` naming ``where`` for
    anything missing, of the wrong type or out of bounds."""
    check = _Checker(where)
    if not isinstance(data, Mapping):
        raise WeightsError(f"{where}: a weights entry must be a JSON object")
    if data.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise WeightsError(f"{where}: unknown weights format {data.get('format')!r}")
    name = check.text(data, "name")
    if not NAME_PATTERN.fullmatch(name):
        raise WeightsError(f"{where}: {name!r} is not a weights name (letters, digits, . - _)")
    sha = data.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise WeightsError(f"{where}: sha256 must be 64 lowercase hex digits")
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, Mapping) or not all(
        isinstance(k, str) and _is_number(v) for k, v in metrics.items()
    ):
        raise WeightsError(f"{where}: metrics must map names to numbers")
    return Weights(
        name=name,
        arch=check.text(data, "arch"),
        act=check.text(data, "act"),
        dataset=_dataset(data.get("dataset"), check),
        location=check.text(data, "location"),
        sha256=sha,
        file_size=check.count(data, "file_size", MAX_FILE_SIZE),
        num_params=check.count(data, "num_params", 2**40),
        flops=check.count(data, "flops", 2**60),
        metrics={k: float(v) for k, v in metrics.items()},
        command=check.text(data, "command", optional=True),
        summary=check.text(data, "summary", optional=True) or "",
    )


def _dataset(data: Any, check: _Checker) -> DatasetInfo:
    if not isinstance(data, Mapping):
        raise WeightsError(f"{check.where}: 'dataset' must be an object")
    shape = data.get("input_shape")
    if not (
        isinstance(shape, (list, tuple))
        and len(shape) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
        and shape[0] <= MAX_CHANNELS
        and max(shape[1:]) <= MAX_INPUT_SIDE
        and math.prod(shape) <= MAX_INPUT_VALUES
    ):
        raise WeightsError(
            f"{check.where}: input_shape must be [C, H, W] of positive integers, C at most "
            f"{MAX_CHANNELS}, H and W at most {MAX_INPUT_SIDE}, not {_short(shape)}"
        )
    num_classes = check.count(data, "num_classes", MAX_CLASSES, optional=False)
    names = data.get("class_names") or [str(i) for i in range(num_classes)]
    if not (isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)):
        raise WeightsError(f"{check.where}: class_names must be a list of strings")
    if len(names) != num_classes:
        raise WeightsError(f"{check.where}: {len(names)} class_names for {num_classes} classes")
    mean, std = (_channels(data.get(k), k, shape[0], check) for k in ("mean", "std"))
    if (mean is None) != (std is None) or (std is not None and any(s <= 0 for s in std)):
        raise WeightsError(f"{check.where}: mean and std go together, std above 0")
    return DatasetInfo(check.text(data, "name"), tuple(shape), num_classes, tuple(names), mean, std)


def _channels(value: Any, key: str, channels: int, check: _Checker) -> tuple[float, ...] | None:
    if value is None:
        return None
    if not (
        isinstance(value, (list, tuple))
        and len(value) == channels
        and all(_is_number(v) and math.isfinite(v) for v in value)
    ):
        raise WeightsError(f"{check.where}: {key} must be {channels} finite numbers")
    return tuple(float(v) for v in value)


@dataclass
class _Checker:
    where: str

    def text(self, data: Mapping[str, Any], key: str, optional: bool = False) -> Any:
        value = data.get(key)
        if value in (None, "") and optional:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > 4096:
            raise WeightsError(f"{self.where}: {key!r} must be a non-empty string")
        return value

    def count(
        self, data: Mapping[str, Any], key: str, limit: int, optional: bool = True
    ) -> int | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= limit:
            raise WeightsError(
                f"{self.where}: {key!r} must be an integer from 1 to {limit}, not {_short(value)}"
            )
        return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def read_json(path: Path, what: str) -> Any:
    """A JSON file's data; :class:`WeightsError` if it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise WeightsError(f"cannot read {what} {path}: {error}") from error


def read_weights_manifest(path: Path | Any) -> list[Weights]:
    """The entries of a manifest: a JSON list of entries (as :meth:`Weights.to_dict` writes).
    ``path`` may be a file of a package (``importlib.resources.files(...) / NAME``)."""
    data = read_json(Path(str(path)), "weights manifest")
    if not isinstance(data, list):
        raise WeightsError(f"weights manifest {path} must hold a JSON list of entries")
    return [from_dict(item, f"weights manifest {path}, entry {i}") for i, item in enumerate(data)]


def transforms(entry: Weights) -> Any:
    """The callable that prepares an input for ``entry``'s model (:class:`Preprocess`)."""
    from zoo.weights.preprocess import Preprocess

    return Preprocess(entry.dataset.input_shape, entry.dataset.mean, entry.dataset.std)
