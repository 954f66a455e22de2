"""lightning-zoo: compose an architecture, an activation and a dataset into a Lightning run.

>>> import zoo
>>> model = zoo.create_model("mlp", act="leakyrelu:negative_slope=0.2",
...                          input_shape=(1, 28, 28), num_classes=10)
>>> result = zoo.train("mlp", act="tanh", dataset="mnist", epochs=1)  # doctest: +SKIP

The names in ``__all__`` are zoo's public API (docs/api.md lists them): what research code and
plugin authors use. Everything else lives in private sub-packages (``zoo.plugin``, ``zoo.runs``,
``zoo.training``, ...) and may change. Importing ``zoo`` is cheap: each public name is imported
on first use (PEP 562), and torch and Lightning load only when something is built or trained.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zoo._version import __version__
from zoo.errors import (
    CheckpointError,
    ComponentSpecError,
    ConfigError,
    CorruptDataError,
    DataNotFoundError,
    DuplicateComponentError,
    NonFiniteLossError,
    PluginError,
    PluginFailure,
    RunAlreadyFinished,
    RunDamagedError,
    RunInUseError,
    RunWriteError,
    TrainingInterrupted,
    UnknownComponentError,
    ZooError,
    ZooUsageError,
)

if TYPE_CHECKING:
    from zoo.comparison.compare import compare, compare_datasets
    from zoo.comparison.plan import ComparisonPlan
    from zoo.data import ClassificationDataModule, VisionDataModule
    from zoo.paths import cache_dir, resolve_data_dir
    from zoo.plots import activation_curve, plot_activations, plot_run
    from zoo.plugin.components import (
        activation_modules,
        create_activation,
        create_datamodule,
        list_activations,
        list_architectures,
        list_components,
        list_datasets,
    )
    from zoo.plugin.hookspecs import Register, hookimpl
    from zoo.plugin.loading import (
        PluginInfo,
        configure_plugins,
        list_plugins,
        plugin_of,
        register_plugin,
        unregister_plugin,
    )
    from zoo.plugin.registry import Component
    from zoo.plugin.specs import ComponentSpec, parse_spec
    from zoo.runs.config import RunConfig
    from zoo.runs.reading import list_runs, read_record
    from zoo.training.api import TrainResult, resume, run, train
    from zoo.training.checkpoints import load_model
    from zoo.training.evaluation import evaluate, predict
    from zoo.tuning.result import TuneResult
    from zoo.tuning.tune import tune
    from zoo.weights.entry import DatasetInfo, Weights, read_weights_manifest
    from zoo.weights.errors import WeightsError
    from zoo.weights.export import export_model
    from zoo.weights.loading import create_model, load_weights

#: Each public name imported on first use -> the module that defines it.
_LAZY: dict[str, str] = {
    # components and plugins
    "Component": "zoo.plugin.registry",
    "ComponentSpec": "zoo.plugin.specs",
    "parse_spec": "zoo.plugin.specs",
    "Register": "zoo.plugin.hookspecs",
    "hookimpl": "zoo.plugin.hookspecs",
    "PluginInfo": "zoo.plugin.loading",
    "configure_plugins": "zoo.plugin.loading",
    "list_plugins": "zoo.plugin.loading",
    "plugin_of": "zoo.plugin.loading",
    "register_plugin": "zoo.plugin.loading",
    "unregister_plugin": "zoo.plugin.loading",
    "activation_modules": "zoo.plugin.components",
    "create_activation": "zoo.plugin.components",
    "create_datamodule": "zoo.plugin.components",
    "create_model": "zoo.weights.loading",
    "list_activations": "zoo.plugin.components",
    "list_architectures": "zoo.plugin.components",
    "list_components": "zoo.plugin.components",
    "list_datasets": "zoo.plugin.components",
    # data, for dataset plugins
    "ClassificationDataModule": "zoo.data",
    "VisionDataModule": "zoo.data",
    "cache_dir": "zoo.paths",
    "resolve_data_dir": "zoo.paths",
    # runs: train, resume, read, evaluate
    "RunConfig": "zoo.runs.config",
    "TrainResult": "zoo.training.api",
    "resume": "zoo.training.api",
    "run": "zoo.training.api",
    "train": "zoo.training.api",
    "list_runs": "zoo.runs.reading",
    "read_record": "zoo.runs.reading",
    "load_model": "zoo.training.checkpoints",
    "evaluate": "zoo.training.evaluation",
    "predict": "zoo.training.evaluation",
    # trained weights
    "DatasetInfo": "zoo.weights.entry",
    "Weights": "zoo.weights.entry",
    "WeightsError": "zoo.weights.errors",
    "export_model": "zoo.weights.export",
    "load_weights": "zoo.weights.loading",
    "read_weights_manifest": "zoo.weights.entry",
    # comparisons and plots
    "ComparisonPlan": "zoo.comparison.plan",
    "compare": "zoo.comparison.compare",
    "compare_datasets": "zoo.comparison.compare",
    # hyper-parameter search
    "TuneResult": "zoo.tuning.result",
    "tune": "zoo.tuning.tune",
    "activation_curve": "zoo.plots",
    "plot_activations": "zoo.plots",
    "plot_run": "zoo.plots",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next use finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CheckpointError",
    "ClassificationDataModule",
    "ComparisonPlan",
    "Component",
    "ComponentSpec",
    "ComponentSpecError",
    "ConfigError",
    "CorruptDataError",
    "DataNotFoundError",
    "DatasetInfo",
    "DuplicateComponentError",
    "NonFiniteLossError",
    "PluginError",
    "PluginFailure",
    "PluginInfo",
    "Register",
    "RunAlreadyFinished",
    "RunConfig",
    "RunDamagedError",
    "RunInUseError",
    "RunWriteError",
    "TrainResult",
    "TrainingInterrupted",
    "TuneResult",
    "UnknownComponentError",
    "VisionDataModule",
    "Weights",
    "WeightsError",
    "ZooError",
    "ZooUsageError",
    "__version__",
    "activation_curve",
    "activation_modules",
    "cache_dir",
    "compare",
    "compare_datasets",
    "configure_plugins",
    "create_activation",
    "create_datamodule",
    "create_model",
    "evaluate",
    "export_model",
    "hookimpl",
    "list_activations",
    "list_architectures",
    "list_components",
    "list_datasets",
    "list_plugins",
    "list_runs",
    "load_model",
    "load_weights",
    "parse_spec",
    "plot_activations",
    "plot_run",
    "plugin_of",
    "predict",
    "read_record",
    "read_weights_manifest",
    "register_plugin",
    "resolve_data_dir",
    "resume",
    "run",
    "train",
    "tune",
    "unregister_plugin",
]
