"""lightning-zoo: compose an architecture, an activation and a dataset into a Lightning run.

>>> import zoo
>>> model = zoo.create_model("mlp", act="leakyrelu:negative_slope=0.2",
...                          input_shape=(1, 28, 28), num_classes=10)
>>> result = zoo.train("mlp", act="leakyrelu", dataset="mnist", epochs=1)  # doctest: +SKIP

Importing ``zoo`` is cheap: torch and Lightning load only when something is built or trained.
"""

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
from zoo.plugin.components import (
    create_activation,
    create_datamodule,
    create_model,
    list_activations,
    list_architectures,
    list_components,
    list_datasets,
)
from zoo.plugin.hookspecs import Register, hookimpl, hookspec
from zoo.plugin.loading import (
    PluginInfo,
    configure_plugins,
    get_plugin_manager,
    list_plugins,
    register_plugin,
    unregister_plugin,
)
from zoo.plugin.registry import Component
from zoo.plugin.specs import ComponentSpec, parse_spec
from zoo.runs.config import RunConfig
from zoo.training.api import TrainResult, resume, run, train

__all__ = [
    "CheckpointError",
    "Component",
    "ComponentSpec",
    "ComponentSpecError",
    "ConfigError",
    "CorruptDataError",
    "DataNotFoundError",
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
    "UnknownComponentError",
    "ZooError",
    "ZooUsageError",
    "__version__",
    "configure_plugins",
    "create_activation",
    "create_datamodule",
    "create_model",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "list_activations",
    "list_architectures",
    "list_components",
    "list_datasets",
    "list_plugins",
    "parse_spec",
    "register_plugin",
    "resume",
    "run",
    "train",
    "unregister_plugin",
]
