"""The composition of a run: a :class:`~zoo.runs.config.RunConfig` -> its components, every name
and argument checked -> the DataModule and the LightningModule, built as ``zoo train`` builds
them. ``zoo train`` (:mod:`zoo.training.runner`) and the fused groups of ``zoo compare``
(:mod:`zoo.comparison.fused_training`) both build their runs through :class:`Composition`."""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from typing import Any

from zoo.plugin.components import resolve
from zoo.plugin.loading import component_origin
from zoo.runs.config import RunConfig

#: Variables that give a process's rank when torchrun, SLURM or Lightning's launcher started it.
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")


class Composition:
    """One run's parts, built in steps: :meth:`check` (every name and argument, before anything
    slow), :meth:`build_datamodule`, :meth:`build_module` and :meth:`check_recipe`, or
    :meth:`build` for all three with the data loaded.

    After :meth:`check`: ``arch_spec``, ``act_spec``, ``data_spec`` and their
    ``*_component``, and ``recipe`` (the resolved optimizer, scheduler, augmentations and
    loggers); after :meth:`build_datamodule`: ``datamodule`` (runs built over one datamodule
    share it by setting this attribute); after :meth:`build_module`: ``module``."""

    def __init__(self, config: RunConfig, resuming: bool = False) -> None:
        self.config = config
        self.datamodule: Any = None
        self.module: Any = None
        # A resumed run's weights come from its checkpoint: --init-weights acts at the start only.
        self.resuming = resuming
        self.init_entry: Any = None

    def check(self) -> None:
        """Resolve every component (a :class:`~zoo.errors.ZooUsageError` for a bad name or
        argument), then check the Trainer's device settings, before the data loads."""
        from zoo.training.trainer import check_trainer_settings

        c = self.config
        self.arch_component, self.arch_spec = resolve("architecture", c.arch)
        self.act_component, self.act_spec = resolve("activation", c.act)
        self.data_component, self.data_spec = resolve("dataset", c.dataset)
        self.recipe = {
            "optimizer": [resolve("optimizer", c.optimizer)],
            "scheduler": [resolve("scheduler", c.scheduler)] if c.scheduler else [],
            "augment": [resolve("augmentation", spec) for spec in c.augment],
            "logger": [resolve("logger", spec) for spec in c.logger],
        }
        if c.init_weights and not self.resuming:
            from zoo.weights.init import check_init_weights

            self.init_entry = check_init_weights(c.init_weights, self.arch_spec, self.act_spec)
        check_trainer_settings(c)

    def build(self, seed: int) -> None:
        """The datamodule and the model seeded with ``seed``, the components checked on a dummy
        batch, the training data loaded and the recipe checked on the model."""
        from zoo.data.checks import load_data

        self.build_datamodule()
        self.build_module(seed)
        # Missing or unusable data fails here, before a new run directory exists.
        load_data(self.datamodule, self.data_component, "fit")
        self.check_recipe()

    def build_datamodule(self) -> Any:
        """The dataset's datamodule, its declarations checked (no data loaded yet)."""
        from zoo.data.checks import check_datamodule, dataset_arguments

        c = self.config
        data_args = dataset_arguments(self.data_component, c.num_workers)  # only if set
        self.datamodule = self.data_component.build(
            {**self.data_spec.kwargs, **data_args}, data_dir=c.data_dir, batch_size=c.batch_size
        )
        check_datamodule(self.datamodule, self.data_component)
        return self.datamodule

    def build_module(self, seed: int) -> Any:
        """The components checked on a dummy batch, then the model, seeded with ``seed`` (its
        initial weights depend on nothing else)."""
        import lightning as L

        from zoo.training.module import ZooClassifier
        from zoo.training.preflight import check_components

        c = self.config
        shape, classes = self.datamodule.input_shape, self.datamodule.num_classes
        check_components(str(self.arch_spec), str(self.act_spec), shape, classes)
        L.seed_everything(seed, workers=True, verbose=False)
        self.module = ZooClassifier(
            arch=str(self.arch_spec),
            act=str(self.act_spec),
            input_shape=shape,
            num_classes=classes,
            optimizer=str(self.recipe["optimizer"][0][1]),
            lr=c.lr,
            dataset=str(self.data_spec),
            class_names=self.datamodule.class_names,
            compile=c.compile,
            scheduler=c.scheduler and str(self.recipe["scheduler"][0][1]),
            warmup_steps=c.warmup_steps,
            label_smoothing=c.label_smoothing,
            augment=[str(spec) for _, spec in self.recipe["augment"]],
            seed=seed,
        )
        if c.augment:
            from zoo.training.recipe import BatchAugmenter

            mean, std = _normalisation(self.datamodule)
            self.module.augmenter = BatchAugmenter(c.augment, mean, std, seed)
        if self.init_entry is not None:
            from zoo.weights.init import init_from_weights

            init_from_weights(self.module.model, self.init_entry, shape, classes)
        return self.module

    def check_recipe(self) -> None:
        """Build the optimizer and schedule once, on the model: a bad argument that only their
        own checks see (``adam:betas=(0.9,)``) fails here, before a run directory exists."""
        from zoo.training.recipe import create_optimizer, create_schedule

        c, hparams = self.config, self.module.hparams
        optimizer = create_optimizer(hparams["optimizer"], self.module.model, lr=c.lr)
        batches = len(self.datamodule.train_dataloader())
        per_epoch = max(1, -(-batches // c.accumulate_grad_batches))
        total = per_epoch * c.epochs
        if c.max_steps != -1:
            total = min(total, c.max_steps)
        create_schedule(hparams["scheduler"], optimizer, total_steps=total,
                        steps_per_epoch=per_epoch, warmup_steps=c.warmup_steps)  # fmt: skip
        self.module.schedule_length = (total, per_epoch)

    def run_name(self) -> str:
        """The name part of the run's directory: ``<arch>-<act>-<dataset>``."""
        specs = (self.arch_spec, self.act_spec, self.data_spec)
        return "-".join(re.sub(r"[^A-Za-z0-9]+", "_", s.name).strip("_") for s in specs)

    def record(self, seed: int, started: str) -> dict[str, Any]:
        """What ``config.json`` says of the run besides its status."""
        return {
            "config": self.config.to_dict(),
            "seed": seed,
            "lr": self.module.hparams["lr"],
            "data_path": "in-memory" if getattr(self.datamodule, "in_memory", False)
            else "dataloader",
            "components": self.components(),
            "versions": versions(),
            "started": started,
            "pid": os.getpid(),
            **({"init_weights": _init_record(self.init_entry)} if self.init_entry else {}),
        }  # fmt: skip

    def metadata(self) -> dict[str, Any]:
        """What the run's checkpoints record of it: its components and the library versions."""
        return {"components": self.components(), "versions": versions()}

    def components(self) -> dict[str, Any]:
        """Where each component comes from (name, plugin, distribution, version; module, path,
        url: what a missing-plugin hint needs), by option."""
        components = {
            "arch": component_origin(self.arch_component),
            "act": component_origin(self.act_component),
            "dataset": component_origin(self.data_component),
        }
        for option, resolved in self.recipe.items():
            for index, (component, _) in enumerate(resolved):
                single = len(resolved) == 1 and option in ("optimizer", "scheduler")
                components[option if single else f"{option}[{index}]"] = component_origin(component)
        return components


def _normalisation(datamodule: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel mean and std a dataset normalises with (0 and 1 if it declares none)."""
    channels = int(datamodule.input_shape[0])
    mean = getattr(datamodule, "mean", None) or (0.0,) * channels
    std = getattr(datamodule, "std", None) or (1.0,) * channels
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _init_record(entry: Any) -> dict[str, Any]:
    """What config.json records of the weights a run started from."""
    return {"name": entry.name, "location": entry.location, "sha256": entry.sha256}


def is_main_process() -> bool:
    """Whether this process is global rank 0 or not part of a distributed run; false in the
    processes that torchrun, SLURM or Lightning's DDP launcher start for the other ranks."""
    return all(os.environ.get(name, "0") in ("", "0") for name in RANK_VARIABLES)


def versions() -> dict[str, str | None]:
    """The versions of lightning-zoo, torch, torchvision, Lightning, pluggy and Python."""
    found: dict[str, str | None] = {}
    for dist in ("lightning-zoo", "torch", "torchvision", "lightning", "pluggy"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    found["python"] = sys.version.split()[0]
    return found
