"""Bad inputs from outside, through the real command line: damaged label files, unreadable data,
checkpoints with hyperparameters out of range, control characters in names and messages, and
unexpected exceptions (one line by default, the traceback with --traceback or ZOO_TRACEBACK=1).

Every test runs ``python -m zoo`` in a subprocess and checks the exit code, the message and that
no traceback reaches the user unless asked for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import zoo
from tests.cli_helpers import run_zoo
from tests.conftest import make_mnist_root, synthetic_digits, write_idx_labels
from zoo.data.files import label_problem
from zoo.text import printable
from zoo.training.checkpoints import CheckpointError, read_checkpoint

TINY = "mnist:val_size=100"
N_TRAIN, N_TEST = 300, 100
HINT = "(rerun with --traceback or ZOO_TRACEBACK=1 for the traceback)"
#: Drops root's permission to ignore file modes, so that chmod 000 stops it too.
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def train(data: Path, output: Path, *extra: str, **kwargs: object) -> subprocess.CompletedProcess:
    return run_zoo(
        *extra, "train", "--dataset", TINY, "--data-dir", str(data), "--output-dir", str(output),
        "--epochs", "1", "--seed", "0", **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def assert_clean_failure(completed: subprocess.CompletedProcess[str], code: int = 1) -> None:
    assert completed.returncode == code, completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr


@pytest.fixture
def small_mnist(tmp_path: Path) -> Path:
    return make_mnist_root(tmp_path / "data", n_train=N_TRAIN, n_test=N_TEST)


# -- damaged data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "n", "split"), [("train", N_TRAIN, "train"), ("t10k", N_TEST, "test")]
)
def test_a_label_outside_the_classes_names_its_file(
    small_mnist: Path, tmp_path: Path, prefix: str, n: int, split: str
) -> None:
    labels_file = small_mnist / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte"
    _, labels = synthetic_digits(n, seed=1 if split == "train" else 2)
    labels[5] = 12
    labels[7] = 255
    write_idx_labels(labels_file, labels)
    completed = train(small_mnist, tmp_path / "runs")
    assert_clean_failure(completed)
    assert f"{labels_file}: label 12 at index 5 is outside 0..9" in completed.stderr
    assert "2 labels are out of range" in completed.stderr
    assert "replace the damaged file with a good copy" in completed.stderr


def test_fewer_labels_than_images_names_both_files(small_mnist: Path, tmp_path: Path) -> None:
    raw = small_mnist / "MNIST" / "raw"
    _, labels = synthetic_digits(N_TRAIN, seed=1)
    write_idx_labels(raw / "train-labels-idx1-ubyte", labels[:-1])
    completed = train(small_mnist, tmp_path / "runs")
    assert_clean_failure(completed)
    assert (
        f"{raw / 'train-images-idx3-ubyte'} holds {N_TRAIN} images but "
        f"{raw / 'train-labels-idx1-ubyte'} holds {N_TRAIN - 1} labels"
    ) in completed.stderr


def test_label_problem_passes_good_labels_and_names_bad_ones() -> None:
    class Split:
        def __init__(self, n_images: int, targets: list[int]) -> None:
            self.data = torch.zeros(n_images, 2, 2, dtype=torch.uint8)
            self.targets = torch.tensor(targets)

    assert label_problem(Split(3, [0, 9, 4]), 10) is None
    assert label_problem(object(), 10) is None  # no arrays: nothing to check
    bad = label_problem(Split(3, [0, -1, 10]), 10)
    assert bad is not None and (bad.index, bad.label, bad.count) == (1, -1, 2)
    short = label_problem(Split(3, [0, 1]), 10)
    assert short is not None and (short.images, short.labels, short.index) == (3, 2, None)


def _can_drop_root_read_access(probe: Path) -> bool:
    if shutil.which("setpriv") is None:
        return False
    check = [*DROP_DAC, sys.executable, "-c", f"import os; os.listdir({str(probe)!r})"]
    return subprocess.run(check, capture_output=True, timeout=60).returncode != 0


def test_an_unreadable_data_directory_is_named(small_mnist: Path, tmp_path: Path) -> None:
    raw = small_mnist / "MNIST" / "raw"
    raw.chmod(0)
    try:
        prefix: list[str] = []
        if os.geteuid() == 0:
            if not _can_drop_root_read_access(raw):
                pytest.skip(
                    "running as root, where chmod 000 does not stop reads, and setpriv cannot "
                    "drop root's CAP_DAC_OVERRIDE here"
                )
            prefix = DROP_DAC
        completed = run_zoo(
            "train", "--dataset", f"{TINY},download=False", "--data-dir", str(small_mnist),
            "--output-dir", str(tmp_path / "runs"), "--epochs", "1", prefix=prefix,
        )  # fmt: skip
    finally:
        raw.chmod(0o755)
    assert_clean_failure(completed)
    assert f"the directory {raw} cannot be listed (Permission denied)" in completed.stderr
    assert "chmod u+rx" in completed.stderr


# -- checkpoint hyperparameters ------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = zoo.train(
        "mlp:hidden=(8,)",
        act="relu",
        dataset=TINY,
        data_dir=tiny_mnist,
        epochs=1,
        max_steps=5,
        seed=0,
        output_dir=tmp_path_factory.mktemp("runs"),
        progress=False,
    )
    return Path(result.checkpoint)


def doctored(checkpoint: Path, tmp_path: Path, **changes: object) -> Path:
    """A copy of ``checkpoint`` with changed hyperparameters (a value of ``...`` deletes one)."""
    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        if value is ...:
            del data["hyper_parameters"][key]
        else:
            data["hyper_parameters"][key] = value
    path = tmp_path / "doctored.ckpt"
    torch.save(data, path)
    return path


OUT_OF_RANGE = [
    ("input_shape", [1, 28]),
    ("input_shape", [1, 28, -28]),
    ("input_shape", [1, 28, 100_000]),
    ("input_shape", [100_000, 28, 28]),
    ("input_shape", [4096, 4096, 4096]),
    ("input_shape", [1, 28.0, 28]),
    ("input_shape", "1x28x28"),
    ("num_classes", 0),
    ("num_classes", 10**9),
    ("num_classes", "10"),
    ("num_classes", True),
    ("num_classes", ...),
    ("input_shape", ...),
    ("class_names", ["0", "1"]),
    ("class_names", list(range(10))),
    ("class_names", "0123456789"),
    ("lr", -0.001),
    ("lr", 0.0),
    ("lr", "fast"),
    ("optimizer", 3),
    ("dataset", 7),
]


@pytest.mark.parametrize(("key", "value"), OUT_OF_RANGE)
def test_hyperparameters_out_of_range_are_refused(
    checkpoint: Path, tmp_path: Path, key: str, value: object
) -> None:
    path = doctored(checkpoint, tmp_path, **{key: value})
    with pytest.raises(CheckpointError, match=f"hyperparameter {key!r}") as raised:
        read_checkpoint(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("input_shape", [1, 28, 100_000], "sides at most 4096"),
        ("num_classes", 10**9, "an integer from 1 to 100000"),
        ("class_names", ["0", "1"], "a list of 10 strings"),
        ("lr", -0.001, "a finite positive number"),
        ("num_classes", ..., "is missing"),
    ],
)
def test_zoo_evaluate_refuses_them_before_building_a_model(
    checkpoint: Path, tmp_path: Path, key: str, value: object, says: str
) -> None:
    path = doctored(checkpoint, tmp_path, **{key: value})
    completed = run_zoo("evaluate", str(path))
    assert_clean_failure(completed)
    assert f"{path}: hyperparameter {key!r}" in completed.stderr and says in completed.stderr


def test_a_sound_checkpoint_still_evaluates(checkpoint: Path, tiny_mnist: Path) -> None:
    completed = run_zoo("evaluate", str(checkpoint), "--data-dir", str(tiny_mnist))
    assert completed.returncode == 0, completed.stderr
    assert "accuracy" in completed.stdout


# -- control characters --------------------------------------------------------------------


def test_printable_escapes_control_characters() -> None:
    assert printable("relu") == "relu" and printable("Übergröße 日本") == "Übergröße 日本"
    assert printable("\x1b[31mred\r\x00\u202e") == "\\x1b[31mred\\r\\x00\\u202e"
    assert printable("a\nb\rc", newlines=True) == "a\nb\\rc"
    assert printable("a\nb") == "a\\nb"


def test_class_names_from_a_checkpoint_are_printed_escaped(
    checkpoint: Path, tmp_path: Path
) -> None:
    from PIL import Image

    names = ["\x1b[31mred", *(f"digit{i}" for i in range(1, 10))]
    path = doctored(checkpoint, tmp_path, class_names=names)
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), color=0).save(image)
    completed = run_zoo("predict", str(path), str(image), "--top-k", "10")
    assert completed.returncode == 0, completed.stderr
    assert "\\x1b[31mred" in completed.stdout
    assert "\x1b" not in completed.stdout


EVIL_PLUGIN = """
import zoo

RED = "\\x1b[31mred"


def evil(data_dir=None, batch_size=64):
    from torchvision.datasets import MNIST

    from zoo.data.vision import VisionDataModule

    return VisionDataModule(
        MNIST, name="evil", data_dir=data_dir, batch_size=batch_size, input_shape=(1, 28, 28),
        class_names=[RED, *(str(i) for i in range(1, 10))], mean=(0.1307,), std=(0.3081,),
        expected_files=(), source="the tests", val_size=100,
    )


@zoo.hookimpl
def register_datasets(register):
    register("evil", evil, summary="summary in " + RED + "\\r\\x1b[2K")
"""


def test_evaluate_prints_dataset_class_names_escaped(
    checkpoint: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    (tmp_path / "evil.py").write_text(textwrap.dedent(EVIL_PLUGIN))
    completed = run_zoo(
        "-p", "./evil.py", "evaluate", str(checkpoint), "--dataset", "evil",
        "--data-dir", str(tiny_mnist), cwd=tmp_path,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "  \\x1b[31mred  " in completed.stdout and "\x1b" not in completed.stdout


def test_zoo_list_and_zoo_plugins_escape_what_plugins_say(tmp_path: Path) -> None:
    (tmp_path / "evil.py").write_text(textwrap.dedent(EVIL_PLUGIN))
    (tmp_path / "broken.py").write_text('raise ImportError("cannot \\x1b[2J load")\n')
    listed = run_zoo("-p", "./evil.py", "list", "datasets", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "summary in \\x1b[31mred\\r\\x1b[2K" in listed.stdout
    plugins = run_zoo("-p", "./broken.py", "plugins", cwd=tmp_path)
    assert plugins.returncode == 0, plugins.stderr
    assert "cannot \\x1b[2J load" in plugins.stdout
    assert "\x1b" not in listed.stdout + plugins.stdout + plugins.stderr


def test_error_messages_are_printed_escaped(tmp_path: Path) -> None:
    path = tmp_path / "bad\x1b[2J.ckpt"
    path.write_bytes(b"")
    completed = run_zoo("evaluate", str(path))
    assert_clean_failure(completed)
    assert "bad\\x1b[2J.ckpt" in completed.stderr and "\x1b" not in completed.stderr


# -- unexpected exceptions and --traceback -------------------------------------------------

BOOM_PLUGIN = """
import torch.nn as nn

import zoo


class Boom(nn.Module):
    def __init__(self) -> None:
        raise RuntimeError("boom at build time")


@zoo.hookimpl
def register_activations(register):
    register("boom", Boom, summary="raises when it is built")
"""


@pytest.fixture
def boom(tmp_path: Path) -> Path:
    (tmp_path / "plug.py").write_text(textwrap.dedent(BOOM_PLUGIN))
    return tmp_path


def _train_boom(boom: Path, data: Path, *flags: str, **env: str) -> subprocess.CompletedProcess:
    return run_zoo(
        *flags, "-p", "./plug.py", "train", "--act", "boom", "--dataset", TINY,
        "--data-dir", str(data), "--output-dir", str(boom / "runs"), "--epochs", "1",
        "--seed", "0", cwd=boom, **env,
    )  # fmt: skip


def test_an_unexpected_exception_is_one_line_with_a_hint(boom: Path, tiny_mnist: Path) -> None:
    completed = _train_boom(boom, tiny_mnist)
    assert_clean_failure(completed)
    assert (
        "Error: activation 'boom' (plugin 'plug', ./plug.py) failed to build: RuntimeError: "
        "boom at build time"
    ) in completed.stderr.splitlines()
    assert HINT.replace("(rerun", "(an error in the plugin's code: rerun") in completed.stderr


@pytest.mark.parametrize(("flags", "env"), [(("--traceback",), {}), ((), {"ZOO_TRACEBACK": "1"})])
def test_traceback_on_request(
    boom: Path, tiny_mnist: Path, flags: tuple[str, ...], env: dict[str, str]
) -> None:
    completed = _train_boom(boom, tiny_mnist, *flags, **env)
    assert completed.returncode == 1
    assert "Traceback (most recent call last)" in completed.stderr
    assert completed.stderr.rstrip().endswith("RuntimeError: boom at build time")
    assert HINT not in completed.stderr


def test_traceback_on_request_for_a_zoo_error_too(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    plain = run_zoo("evaluate", str(empty))
    assert_clean_failure(plain)
    assert f"Error: checkpoint {empty} is empty" in plain.stderr
    traced = run_zoo("--traceback", "evaluate", str(empty))
    assert traced.returncode == 1 and "Traceback" in traced.stderr
    assert "CheckpointError" in traced.stderr


def test_usage_errors_still_exit_2(tmp_path: Path) -> None:
    completed = run_zoo("train", "--act", "no-such-activation", "--output-dir", str(tmp_path))
    assert_clean_failure(completed, code=2)
    assert "Invalid value for '--act': unknown activation 'no-such-activation'" in (
        completed.stderr
    )
