"""Failures inside a plugin's code, through the real ``zoo`` command: each is reported in one or
two lines naming the component, the plugin and its distribution, and the exception; exit 1, or 2
where the user's spec is at fault; ``ZOO_TRACEBACK=1`` or ``--traceback`` shows the traceback.

The plugin is installed as a distribution, ``zoo-failing 0.1``: its package and a hand-written
``.dist-info`` with the entry point, in a directory on ``PYTHONPATH``, as ``pip install`` leaves
them. Every case runs ``python -m zoo`` in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.cli_helpers import run_command
from zoo.errors import INTERRUPTED_MESSAGE

PLUGIN = "(plugin 'failing', zoo-failing 0.1)"
HINT = (
    "(an error in the plugin's code: rerun with --traceback or ZOO_TRACEBACK=1 for the traceback)"
)

HOOKS = '''
"""Hooks only: the components live in zoo_failing.parts, imported when one is built."""

import zoo

DATASETS = ["factory", "prepare", "setup", "train-split", "zoo-error", "spec", "exit",
            "interrupt", "ok"]


def _register(register, kind, names):
    for name in names:
        attribute = name.replace("-", "_")
        register(f"failing-{name}", f"zoo_failing.parts:{kind}_{attribute}", summary=name)


@zoo.hookimpl
def register_datasets(register):
    _register(register, "dataset", DATASETS)


@zoo.hookimpl
def register_architectures(register):
    _register(register, "architecture", ["factory", "forward"])


@zoo.hookimpl
def register_activations(register):
    _register(register, "activation", ["factory", "forward"])


@zoo.hookimpl
def register_optimizers(register):
    _register(register, "optimizer", ["factory"])


@zoo.hookimpl
def register_schedulers(register):
    _register(register, "scheduler", ["factory"])


@zoo.hookimpl
def register_augmentations(register):
    _register(register, "augmentation", ["factory"])


@zoo.hookimpl
def register_loggers(register):
    _register(register, "logger", ["factory"])
'''

PARTS = '''
import torch
from torch import nn
from torch.utils.data import TensorDataset

from zoo.data.vision import ClassificationDataModule
from zoo.errors import DataNotFoundError


class Random(ClassificationDataModule):
    """A working dataset: seeded random 1x4x4 images in two classes, made in setup()."""

    input_shape = (1, 4, 4)
    class_names = ("a", "b")
    mean, std = (0.5,), (0.3,)

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(64, 1, 4, 4, generator=generator)
        self.split = TensorDataset(images, (images.mean(dim=(1, 2, 3)) > 0.5).long())

    def train_dataset(self):
        return self.split

    val_dataset = test_dataset = train_dataset


def dataset_factory(data_dir=None, batch_size: int = 64):
    raise RuntimeError("dataset on fire")


class dataset_prepare(Random):
    def prepare_data(self):
        raise ConnectionError("the download server is on fire")


class dataset_setup(Random):
    def setup(self, stage=None):
        raise RuntimeError("disk on fire")


class dataset_train_split(Random):
    def train_dataset(self):
        return {}["train"]


class dataset_zoo_error(Random):
    def setup(self, stage=None):
        raise DataNotFoundError("random data not found in /nowhere. To fix: copy it there.")


def dataset_spec(data_dir=None, batch_size: int = 64, size: int = 3):
    raise ValueError(f"size must be even, got {size}")


def dataset_exit(data_dir=None, batch_size: int = 64):
    raise SystemExit(3)


def dataset_interrupt(data_dir=None, batch_size: int = 64):
    raise KeyboardInterrupt


dataset_ok = Random


def architecture_factory(act, input_shape, num_classes):
    raise RuntimeError("architecture on fire")


class Failing(nn.Module):
    def forward(self, x):
        raise RuntimeError("forward on fire")


def architecture_forward(act, input_shape, num_classes):
    return Failing()


def activation_factory():
    raise RuntimeError("activation on fire")


activation_forward = Failing


def optimizer_factory(model, lr: float = 1e-3):
    raise RuntimeError("optimizer on fire")


def scheduler_factory(optimizer, total_steps, steps_per_epoch):
    raise RuntimeError("scheduler on fire")


def augmentation_factory():
    raise RuntimeError("augmentation on fire")


def logger_factory(save_dir):
    raise RuntimeError("logger on fire")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zoo-failing 0.1, as ``pip install`` leaves it: the package and its .dist-info."""
    site = tmp_path_factory.mktemp("failing-site")
    package = site / "zoo_failing"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(HOOKS))
    (package / "parts.py").write_text(textwrap.dedent(PARTS))
    info = site / "zoo_failing-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-failing\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zoo]\nfailing = zoo_failing\n")
    return site


#: Cases run at a time (each pays for importing torch and Lightning in its subprocess).
JOBS = int(os.environ.get("ZOO_MATRIX_JOBS", "2"))


def train(
    site: Path, tmp_path: Path, *args: str, flags: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """``zoo train`` of a tiny run on ``failing-ok`` (or what ``args`` say) with the plugin."""
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    for key in (
        "ZOO_TRACEBACK",
        "ZOO_STRICT_PLUGINS",
        "ZOO_PLUGINS",
        "ZOO_DISABLE_PLUGIN_AUTOLOAD",
    ):
        environment.pop(key, None)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    environment.update(env)
    command = [
        sys.executable, "-m", "zoo", *flags, "train", "--dataset", "failing-ok", "--max-steps",
        "2", "--epochs", "1", "--seed", "0", "--output-dir", str(tmp_path / "runs"), *args,
    ]  # fmt: skip
    return run_command(
        command, capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=600
    )


class Outcome(NamedTuple):
    completed: subprocess.CompletedProcess[str]
    directory: Path  # the case's working directory (its runs/ under it)


def error_lines(completed: subprocess.CompletedProcess[str]) -> list[str]:
    """The error zoo printed: the lines from the last ``Error:`` on."""
    lines = completed.stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    assert starts, completed.stderr
    return lines[starts[-1] :]


#: (option and component, what failed) for a failure in a factory or a datamodule's method.
PLUGIN_FAILURES = [
    (["--dataset", "failing-factory"], "dataset 'failing-factory'",
     "failed to build: RuntimeError: dataset on fire"),
    (["--dataset", "failing-prepare"], "dataset 'failing-prepare'",
     "failed in prepare_data(): ConnectionError: the download server is on fire"),
    (["--dataset", "failing-setup"], "dataset 'failing-setup'",
     "failed in setup('fit'): RuntimeError: disk on fire"),
    (["--dataset", "failing-train-split"], "dataset 'failing-train-split'",
     "failed in train_dataset(): KeyError: 'train'"),
    (["--arch", "failing-factory"], "architecture 'failing-factory'",
     "failed to build: RuntimeError: architecture on fire"),
    (["--act", "failing-factory"], "activation 'failing-factory'",
     "failed to build: RuntimeError: activation on fire"),
    (["--optimizer", "failing-factory"], "optimizer 'failing-factory'",
     "failed to build: RuntimeError: optimizer on fire"),
    (["--scheduler", "failing-factory"], "scheduler 'failing-factory'",
     "failed to build: RuntimeError: scheduler on fire"),
    (["--augment", "failing-factory"], "augmentation 'failing-factory'",
     "failed to build: RuntimeError: augmentation on fire"),
    (["--logger", "failing-factory"], "logger 'failing-factory'",
     "failed to build: RuntimeError: logger on fire"),
]  # fmt: skip

#: (option and component, what stderr says) for a component that fails on the dummy batch: the
#: combination the user picked does not work, a usage error.
PREFLIGHT_FAILURES = [
    (["--act", "failing-forward"], "Error: Invalid value for '--act': activation "
     "'failing-forward' fails on a test input: RuntimeError: forward on fire (activation "
     "'failing-forward' from plugin 'failing', zoo-failing 0.1)"),
    (["--arch", "failing-forward"], "Error: Invalid value for '--arch': architecture "
     "'failing-forward' with activation 'relu' fails on a dummy batch of shape (2, 1, 4, 4): "
     "RuntimeError: forward on fire (architecture 'failing-forward' from plugin 'failing', "
     "zoo-failing 0.1; activation 'relu' from plugin 'activations', built-in)"),
]  # fmt: skip

TRACEBACK_REQUESTS = {
    "--traceback": (("--traceback",), {}),
    "ZOO_TRACEBACK=1": ((), {"ZOO_TRACEBACK": "1"}),
}

#: Every case: id -> (zoo train arguments, flags before ``train``, environment).
CASES: dict[str, tuple[list[str], tuple[str, ...], dict[str, str]]] = {
    **{" ".join(args): (args, (), {}) for args, *_ in PLUGIN_FAILURES + PREFLIGHT_FAILURES},
    "spec": (["--dataset", "failing-spec:size=5"], (), {}),
    "zoo-error": (["--dataset", "failing-zoo-error"], (), {}),
    "exit": (["--dataset", "failing-exit"], (), {}),
    "interrupt": (["--dataset", "failing-interrupt"], (), {}),
    **{
        name: (["--dataset", "failing-setup"], flags, env)
        for name, (flags, env) in TRACEBACK_REQUESTS.items()
    },
}


@pytest.fixture(scope="module")
def outcomes(site: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case of :data:`CASES`, run ``JOBS`` at a time, each in a directory of its own."""

    def run(case: str) -> Outcome:
        args, flags, env = CASES[case]
        directory = tmp_path_factory.mktemp("case")
        return Outcome(train(site, directory, *args, flags=flags, **env), directory)

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


@pytest.mark.parametrize(
    ("args", "component", "failure"), PLUGIN_FAILURES, ids=[" ".join(c[0]) for c in PLUGIN_FAILURES]
)
def test_a_failure_in_plugin_code_names_component_plugin_and_distribution(
    outcomes: dict[str, Outcome], args: list[str], component: str, failure: str
) -> None:
    completed = outcomes[" ".join(args)].completed
    assert completed.returncode == 1, completed.stderr
    assert error_lines(completed) == [f"Error: {component} {PLUGIN} {failure}", HINT]
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("args", "says"), PREFLIGHT_FAILURES, ids=[" ".join(c[0]) for c in PREFLIGHT_FAILURES]
)
def test_a_forward_that_fails_on_the_dummy_batch_names_the_plugin(
    outcomes: dict[str, Outcome], args: list[str], says: str
) -> None:
    completed, directory = outcomes[" ".join(args)]
    assert completed.returncode == 2, completed.stderr
    assert error_lines(completed) == [says]
    assert not (directory / "runs").exists()


def test_a_value_error_on_the_users_arguments_stays_a_usage_error(
    outcomes: dict[str, Outcome],
) -> None:
    completed = outcomes["spec"].completed
    assert completed.returncode == 2, completed.stderr
    assert error_lines(completed) == [
        "Error: Invalid value for '--dataset': dataset 'failing-spec' could not be built with "
        "{'size': 5}: size must be even, got 5"
    ]


def test_zoos_own_errors_from_plugin_code_pass_unchanged(outcomes: dict[str, Outcome]) -> None:
    completed = outcomes["zoo-error"].completed
    assert completed.returncode == 1, completed.stderr
    assert error_lines(completed) == [
        "Error: random data not found in /nowhere. To fix: copy it there."
    ]


def test_system_exit_and_keyboard_interrupt_are_not_wrapped(outcomes: dict[str, Outcome]) -> None:
    exited = outcomes["exit"].completed
    assert exited.returncode == 3, exited.stderr
    assert "Error" not in exited.stderr
    interrupted = outcomes["interrupt"].completed
    assert interrupted.returncode == 130, interrupted.stderr  # as for Ctrl+C anywhere
    assert interrupted.stderr.splitlines()[-1] == INTERRUPTED_MESSAGE
    assert "failed to build" not in interrupted.stderr


@pytest.mark.parametrize("request_", list(TRACEBACK_REQUESTS))
def test_the_traceback_on_request_reaches_into_the_plugin(
    outcomes: dict[str, Outcome], request_: str
) -> None:
    completed = outcomes[request_].completed
    assert completed.returncode == 1
    stderr = completed.stderr
    assert "Traceback (most recent call last)" in stderr
    assert f"zoo_failing{os.sep}parts.py" in stderr and "RuntimeError: disk on fire" in stderr
    assert stderr.rstrip().endswith(
        "zoo.errors.PluginFailure: dataset 'failing-setup' (plugin 'failing', zoo-failing 0.1) "
        "failed in setup('fit'): RuntimeError: disk on fire"
    )
    assert HINT not in stderr
