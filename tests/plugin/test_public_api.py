"""zoo's public face: ``zoo.__all__`` is exactly the names docs/api.md lists, each resolves,
``import zoo`` stays cheap, and the README and docs name no private module."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import zoo

ROOT = Path(__file__).resolve().parents[2]

PUBLIC_NAMES = {
    # errors
    "ZooError", "ZooUsageError", "UnknownComponentError", "ComponentSpecError",
    "DuplicateComponentError", "PluginError", "PluginFailure", "ConfigError", "DataNotFoundError",
    "CorruptDataError", "CheckpointError", "NonFiniteLossError", "TrainingInterrupted",
    "RunAlreadyFinished", "RunInUseError", "RunDamagedError", "RunWriteError",
    # train, resume, read runs
    "train", "run", "resume", "RunConfig", "TrainResult", "load_model", "evaluate", "predict",
    "list_runs", "read_record",
    # trained weights
    "Weights", "DatasetInfo", "WeightsError", "load_weights", "export_model",
    "read_weights_manifest",
    # compare and plot
    "ComparisonPlan", "compare", "compare_datasets", "plot_run", "plot_activations",
    "activation_curve",
    # hyper-parameter search
    "tune", "TuneResult",
    # components
    "create_model", "create_activation", "create_datamodule", "activation_modules",
    "list_components", "list_activations", "list_architectures", "list_datasets", "Component",
    "ComponentSpec", "parse_spec",
    # writing plugins
    "hookimpl", "Register", "ClassificationDataModule", "VisionDataModule", "resolve_data_dir",
    "cache_dir", "register_plugin", "unregister_plugin", "configure_plugins", "list_plugins",
    "plugin_of", "PluginInfo",
    "__version__",
}  # fmt: skip


def test_the_public_names_are_pinned() -> None:
    assert set(zoo.__all__) == PUBLIC_NAMES
    assert len(zoo.__all__) == len(set(zoo.__all__))


def test_every_public_name_resolves_and_dir_shows_it() -> None:
    for name in zoo.__all__:
        assert getattr(zoo, name) is not None, name
    assert set(zoo.__all__) <= set(dir(zoo))


def test_docs_api_lists_exactly_the_public_names() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `zoo\.(\w+)` \|", text, flags=re.MULTILINE))
    documented |= {"__version__"} if "`zoo.__version__`" in text else set()
    assert documented == set(zoo.__all__)


def test_readme_and_docs_name_no_private_module() -> None:
    """``zoo.x.y`` in prose or code names a private module; ``zoo.NAME`` is the public way. Two
    references stay: ``zoo.plugin.hookspecs``, where the hooks are defined and documented, and
    ``zoo.cli.cli``, the command group a plugin's tests invoke its commands through."""
    allowed = ("zoo.plugin.hookspecs", "zoo.cli.cli")
    found = [
        f"{path.name}:{number}: {match.group(0)}"
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for match in re.finditer(r"\bzoo\.[a-z_]+\.[A-Za-z_]\w*", line)
        if not match.group(0).startswith(allowed)
    ]
    assert not found, "name the public zoo.NAME instead:\n" + "\n".join(found)


def test_import_zoo_loads_no_torch() -> None:
    code = "import sys, zoo; print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert completed.stdout.strip() == "[]"
