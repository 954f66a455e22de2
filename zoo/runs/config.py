"""The run configuration: everything that decides what a training run computes.

:class:`RunConfig` is the one place each option is defined: ``zoo.train``'s keywords, the
options of ``zoo train`` and ``zoo compare``, the ``config`` object of a run's ``config.json``,
``--config FILE``, ``--resume`` and the reproduce commands are all derived from its fields.
Values stay as they were given (``None`` stays ``None``; specs are not filled in with defaults).
Light on imports: no torch here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ConfigError, ZooUsageError

#: The largest seed: numpy, which Lightning seeds too, takes seeds below 2**32.
MAX_SEED = 2**32 - 1
#: Bounds that keep a mistyped number a usage error instead of an allocator failure.
MAX_BATCH_SIZE = 2**20
MAX_EPOCHS = 1_000_000


def _option(help: str, *, low: int | None = None, high: int | None = None) -> dict[str, Any]:
    return {"help": help, "low": low, "high": high}


@dataclass(frozen=True)
class RunConfig:
    """What a run trains and how. Construct it with keywords; invalid values raise
    :class:`zoo.ZooUsageError` naming the option, before anything slow happens."""

    arch: str = field(default="mlp", metadata=_option("Architecture spec, NAME[:k=v,...]."))
    act: str = field(default="relu", metadata=_option("Activation spec, NAME[:k=v,...]."))
    dataset: str = field(default="mnist", metadata=_option("Dataset spec, NAME[:k=v,...]."))
    epochs: int = field(default=5, metadata=_option("Epochs to train.", low=1, high=MAX_EPOCHS))
    batch_size: int = field(
        default=64, metadata=_option("Samples per batch.", low=1, high=MAX_BATCH_SIZE)
    )
    lr: float | None = field(
        default=None,
        metadata=_option("Learning rate [default: the optimizer's, 1e-3 for adam, 1e-2 for sgd]."),
    )
    optimizer: str = field(
        default="adam",
        metadata=_option("Optimizer spec, NAME[:k=v,...], e.g. adamw:weight_decay=0.05."),
    )
    scheduler: str | None = field(
        default=None,
        metadata=_option("Learning-rate schedule spec, e.g. cosine [default: constant]."),
    )
    warmup_steps: int = field(
        default=0, metadata=_option("Linear learning-rate warm-up over this many steps.", low=0)
    )
    label_smoothing: float = field(
        default=0.0, metadata=_option("Label smoothing of the cross-entropy, 0 to below 1.")
    )
    gradient_clip: float | None = field(
        default=None, metadata=_option("Clip the gradients' global norm to this value.")
    )
    accumulate_grad_batches: int = field(
        default=1,
        metadata=_option("Accumulate gradients over N batches per step.", low=1, high=2**16),
    )
    early_stopping: int | None = field(
        default=None,
        metadata=_option("Stop after N epochs without a better val_acc.", low=1, high=MAX_EPOCHS),
    )
    augment: tuple[str, ...] = field(
        default=(),
        metadata=_option("Training augmentation spec, repeatable, e.g. affine:degrees=10."),
    )
    logger: tuple[str, ...] = field(
        default=(),
        metadata=_option("Also log to csv, tensorboard, mlflow or wandb; repeatable."),
    )
    seed: int | None = field(
        default=None,
        metadata=_option("Seed everything [default: random, recorded].", low=0, high=MAX_SEED),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_option(
            "Dataset root [default: $ZOO_DATA_DIR, else ~/.cache/lightning-zoo/data]."
        ),
    )
    accelerator: str = field(default="auto", metadata=_option("cpu, gpu, cuda, mps, tpu or auto."))
    devices: int | str = field(
        default="auto", metadata=_option("auto, a number of devices, or device indices like 0,1.")
    )
    precision: str | None = field(
        default=None,
        metadata=_option("32-true, 16-mixed, bf16-mixed, 64-true ... [default: 32-true]."),
    )
    max_steps: int = field(
        default=-1,
        metadata=_option("Stop after this many optimizer steps (-1: no limit).", low=-1),
    )
    compile: bool = field(
        default=False, metadata=_option("Compile the model with torch.compile (takes seconds).")
    )
    num_workers: int | None = field(
        default=None,
        metadata=_option(
            "DataLoader worker processes; more than 0 selects the standard data path "
            "[default: the dataset's, 0].",
            low=0,
            high=1024,
        ),
    )
    strategy: str = field(
        default="auto", metadata=_option("Lightning strategy: auto, ddp, ddp_spawn, fsdp ...")
    )
    num_nodes: int = field(
        default=1, metadata=_option("Number of machines (with torchrun or SLURM).", low=1)
    )
    diagnostics: bool = field(
        default=False,
        metadata=_option("Log dead/saturated units and gradient/weight norms per layer."),
    )
    init_weights: str | None = field(
        default=None,
        metadata=_option(
            "Start from trained weights: a weights name (zoo list weights), an exported "
            "directory or hf-hub:OWNER/REPO; same --arch and --act; a fresh head when the "
            "number of classes differs."
        ),
    )

    def __post_init__(self) -> None:
        if isinstance(self.data_dir, os.PathLike):  # a path, kept as the string it spells
            object.__setattr__(self, "data_dir", os.fspath(self.data_dir))
        for spec in fields():
            value = getattr(self, spec.name)
            if isinstance(value, list) and tuple in types_of(spec):  # as JSON gives it
                object.__setattr__(self, spec.name, value := tuple(value))
            _check_value(spec, value)
        for name in ("label_smoothing", "gradient_clip"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ZooUsageError(f"{flag(name)} must be a finite number, got {value!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ZooUsageError(
                f"{flag('label_smoothing')} must be at least 0 and below 1, "
                f"got {self.label_smoothing!r}"
            )
        if self.gradient_clip is not None and self.gradient_clip <= 0:
            raise ZooUsageError(
                f"{flag('gradient_clip')} must be above 0, got {self.gradient_clip!r}"
            )
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ZooUsageError(f"{flag('lr')} must be a finite number above 0, got {self.lr!r}")
        if self.max_steps == 0:
            raise ZooUsageError(f"{flag('max_steps')} must be -1 (no limit) or at least 1, got 0")

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (checked like the constructor)."""
        unknown = set(changes) - set(field_names())
        if unknown:
            raise ZooUsageError(f"unknown run option {sorted(unknown)[0]!r}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON data, exactly as given."""
        return {name: getattr(self, name) for name in field_names()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> RunConfig:
        """The configuration ``data`` describes; unknown keys and wrong types are a
        :class:`ConfigError` naming ``source`` and the key."""
        unknown = [key for key in data if key not in field_names()]
        if unknown:
            raise ConfigError(f"{source}: unknown option {unknown[0]!r}")
        try:
            return cls(**data)
        except ZooUsageError as error:
            raise ConfigError(f"{source}: {error}") from None

    def to_args(self) -> list[str]:
        """The ``zoo train`` options that give this configuration (those that differ from the
        defaults)."""
        args: list[str] = []
        for spec in fields():
            value = getattr(self, spec.name)
            if value == spec.default and type(value) is type(spec.default):
                continue
            if isinstance(value, bool):
                args.append(flag(spec.name))
            elif isinstance(value, tuple):
                args += [part for item in value for part in (flag(spec.name), item)]
            else:
                args += [flag(spec.name), repr(value) if isinstance(value, float) else str(value)]
        return args

    def command(self, prefix: Sequence[str] = ("zoo", "train")) -> str:
        """The shell command line that trains this configuration."""
        return shlex.join([*prefix, *self.to_args()])


def fields() -> tuple[dataclasses.Field[Any], ...]:
    """The options, in order."""
    return dataclasses.fields(RunConfig)


def field_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in fields())


def flag(name: str) -> str:
    """The command-line flag of an option: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def types_of(spec: dataclasses.Field[Any]) -> tuple[type, ...]:
    """The Python types an option takes, from its annotation (``"int | None"``)."""
    if str(spec.type) == "tuple[str, ...]":  # a repeatable option
        return (tuple,)
    names = {"str": str, "int": int, "float": float, "bool": bool, "None": type(None)}
    return tuple(names[part.strip()] for part in str(spec.type).split("|"))


def _check_value(spec: dataclasses.Field[Any], value: Any) -> None:
    allowed = types_of(spec)
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if not ok and float in allowed and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        expected = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise ZooUsageError(
            f"{flag(spec.name)} expects {expected}, got {type(value).__name__} {value!r}"
        )
    if isinstance(value, tuple) and not all(isinstance(item, str) and item for item in value):
        raise ZooUsageError(f"{flag(spec.name)} expects specs (non-empty strings), got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = spec.metadata.get("low"), spec.metadata.get("high")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ZooUsageError(f"{flag(spec.name)} must be {bounds}, got {value}")


#: The deepest nesting a configuration file may have (a run's config.json has 3 levels).
MAX_JSON_DEPTH = 20


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """The configuration in ``path``: a run's ``config.json`` (its ``config`` object) or a JSON
    object of options. Anything else is a :class:`ConfigError` naming the file."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config {path}: {error}") from None
    data = parse_json(text, f"config {path}")
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a JSON object, like a run's config.json")
    options = data.get("config", data)
    if not isinstance(options, dict):
        raise ConfigError(f"config {path}: 'config' must be an object of options")
    return RunConfig.from_dict(options, source=f"config {path}")


def parse_json(text: str, source: str) -> Any:
    """``json.loads`` whose every failure, nesting too deep included, is a ConfigError."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:  # json's recursion limit would surface as a RecursionError
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ConfigError(f"{source} is nested {deepest} levels deep; at most {MAX_JSON_DEPTH}")
    try:
        return json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{source} is not valid JSON: {error}") from None
