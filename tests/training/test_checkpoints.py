"""Safe loading, atomic saving, and the commands that read checkpoints, with real faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo
from tests.cli_helpers import run_command, start_python
from zoo.cli import cli
from zoo.training.checkpoints import CheckpointError, load_model, read_checkpoint, save_atomically
from zoo.training.evaluation import evaluate, predict
from zoo.training.module import ZooClassifier

TINY = "mnist:val_size=100"


@pytest.fixture(scope="module")
def run(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> zoo.TrainResult:
    return zoo.train(
        "mlp",
        act="leakyrelu:negative_slope=0.1",
        dataset=TINY,
        epochs=1,
        seed=0,
        data_dir=tiny_mnist,
        output_dir=tmp_path_factory.mktemp("runs"),
        progress=False,
    )


def _doctored(run: zoo.TrainResult, tmp_path: Path, **changes: object) -> Path:
    """A copy of the run's checkpoint with changed hyperparameters (or top-level keys)."""
    checkpoint = torch.load(run.checkpoint, weights_only=True)
    for key, value in changes.items():
        if key.startswith("top_"):
            checkpoint[key.removeprefix("top_")] = value
        else:
            checkpoint["hyper_parameters"][key] = value
    path = tmp_path / "doctored.ckpt"
    torch.save(checkpoint, path)
    return path


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c CODE``, forked from the fork server (torch and Lightning imported already)."""
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with start_python(code, env={**os.environ, **env}, **pipes) as process:
        out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(["python", "-c", code], process.returncode, out, err)


# -- reading -------------------------------------------------------------------------------


def test_a_run_directory_loads_its_best_checkpoint(run: zoo.TrainResult) -> None:
    model = load_model(run.run_dir)
    assert isinstance(model, ZooClassifier) and not model.training
    assert model.model[2].negative_slope == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"_instantiator": "webbrowser.Browser"}, "'_instantiator'"),
        ({"_class_path": "webbrowser.Browser"}, "'_class_path'"),
        ({"class_path": "webbrowser.Browser"}, "'class_path'"),
        ({"extra": 1}, "unexpected hyperparameter 'extra'"),
        ({"act": ["relu"]}, "'act' must be a component spec"),
    ],
)
def test_hyperparameters_that_ask_for_objects_are_refused(
    run: zoo.TrainResult, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = _doctored(run, tmp_path, **changes)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value)


def test_names_in_a_checkpoint_are_never_imported(run: zoo.TrainResult, tmp_path: Path) -> None:
    for index, changes in enumerate(
        ({"act": "webbrowser.open"}, {"arch": "webbrowser:open"}, {"_instantiator": "webbrowser"})
    ):
        (tmp_path / str(index)).mkdir()
        _doctored(run, tmp_path / str(index), **changes)
    completed = _run_python(
        f"""
        import sys
        from zoo.training.checkpoints import CheckpointError, load_model
        for index in range(3):
            try:
                load_model({str(tmp_path)!r} + f"/{{index}}/doctored.ckpt")
            except CheckpointError as error:
                print("refused:", error)
        print("webbrowser imported:", "webbrowser" in sys.modules)
        """
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("refused:") == 3
    assert "needs activation 'webbrowser.open'" in completed.stdout
    assert "webbrowser imported: False" in completed.stdout


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # what a malicious checkpoint does when unpickled
        return (Path.touch, (self.marker,))


def test_a_malicious_pickle_is_refused_even_when_torch_is_told_to_trust_it(
    run: zoo.TrainResult, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    checkpoint = torch.load(run.checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["lr"] = _Evil(marker)
    path = tmp_path / "evil.ckpt"
    torch.save(checkpoint, path)
    assert not marker.exists()

    runner = CliRunner(env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    for args in (["evaluate", str(path)], ["predict", str(path), __file__]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert "refused to load" in result.output and str(path) in result.output
    completed = run_command(
        [sys.executable, "-m", "zoo", "evaluate", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
        timeout=120,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert not marker.exists()


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # os.system: a module torch blocks outright
        return (os.system, (f"touch {self.marker}",))


class _Instantiated:
    """A class a checkpoint names: loading it would import this module and build one."""


@pytest.mark.parametrize("payload", ["blocked module", "function", "class"])
def test_a_checkpoint_that_asks_to_run_code_is_refused_and_said_so(
    run: zoo.TrainResult, tmp_path: Path, payload: str
) -> None:
    marker = tmp_path / "pwned"
    checkpoint = torch.load(run.checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["lr"] = {
        "blocked module": _System(marker), "function": _Evil(marker), "class": _Instantiated
    }[payload]  # fmt: skip
    path = tmp_path / "hostile.ckpt"
    torch.save(checkpoint, path)
    completed = run_command(
        [sys.executable, "-m", "zoo", "evaluate", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
        timeout=120,
    )
    assert completed.returncode == 1, completed.stderr
    (line,) = [line for line in completed.stderr.splitlines() if line.startswith("Error:")]
    assert f"refused to load {path}: it asks to run code when it is loaded" in line
    assert "nothing in it was run" in line and "truncated" not in line
    assert "weights_only" not in completed.stderr + completed.stdout  # never: turn it off
    assert "Traceback" not in completed.stderr
    assert not marker.exists()


def test_missing_plugin_component_names_the_distribution(
    run: zoo.TrainResult, tmp_path: Path
) -> None:
    # A name no installed plugin provides (zoo-snake may be installed: CI installs it).
    origin = {"name": "serpent", "plugin": "serpent", "distribution": "zoo-test-serpent"}
    origin["version"] = "0.1.0"
    path = _doctored(run, tmp_path, act="serpent:a=0.5", top_zoo={"components": {"act": origin}})
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "activation 'serpent'" in message and "pip install zoo-test-serpent" in message


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04" + b"\0" * 64])
def test_empty_and_garbage_files_are_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path)):
        read_checkpoint(path)


def test_truncated_checkpoint_is_named_by_evaluate_and_predict(
    run: zoo.TrainResult, tmp_path: Path
) -> None:
    data = Path(run.checkpoint).read_bytes()
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(data[: len(data) // 2])
    runner = CliRunner()
    for args in (["evaluate", str(path)], ["predict", str(path), __file__]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1
        assert f"cannot read checkpoint {path}" in result.output


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes_give_only_checkpoint_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.ckpt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_mutated_checkpoints_give_only_checkpoint_errors(
    run: zoo.TrainResult, tmp_path: Path, data: st.DataObject
) -> None:
    original = bytearray(Path(run.checkpoint).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        original = original[: data.draw(st.integers(0, len(original)))]
    path = tmp_path / "mutated.ckpt"
    path.write_bytes(bytes(original))
    try:
        model = load_model(path)
    except CheckpointError:
        return
    assert isinstance(model, ZooClassifier)  # a harmless mutation (e.g. inside padding)


@pytest.mark.parametrize("act", ["relu", "leakyrelu:negative_slope=0.2", "prelu", "gelu"])
def test_every_architecture_round_trips(tmp_path: Path, act: str) -> None:
    for component in zoo.list_architectures():
        if "*" in component.name or "/" in component.name:
            continue  # families such as timm/<model> are covered by their own tests
        module = ZooClassifier(component.name, act, (1, 28, 28), 10, dataset="mnist")
        with torch.no_grad():
            for parameter in module.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.01)
        module.eval()
        path = tmp_path / f"{component.name}.ckpt"
        save_atomically(
            {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path
        )
        restored = load_model(path)
        x = torch.randn(5, 1, 28, 28)
        with torch.no_grad():
            assert torch.equal(restored(x), module(x)), component.name


# -- writing -------------------------------------------------------------------------------

_WRITER = """
import sys, torch
from zoo.training.checkpoints import save_atomically
path = sys.argv[1]
step = 0
print("ready", flush=True)
while True:
    step += 1
    save_atomically({"step": step, "weights": torch.full((2_000_000,), float(step))}, path)
"""


def test_sigkill_while_saving_never_leaves_a_partial_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    save_atomically({"step": 0, "weights": torch.zeros(2_000_000)}, path)
    for delay in (0.05, 0.13, 0.31, 0.57, 0.9):
        writer = start_python(_WRITER, str(path), stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        checkpoint = torch.load(path, weights_only=True)  # the old or a new one, never partial
        assert torch.all(checkpoint["weights"] == float(checkpoint["step"]))
        assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["last.ckpt"]


def test_a_failed_write_names_the_path_and_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    save_atomically({"step": 1, "weights": torch.ones(10)}, path)
    completed = _run_python(
        f"""
        import resource, signal, torch
        from zoo.training.checkpoints import CheckpointError, save_atomically
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            save_atomically({{"step": 2, "weights": torch.ones(1_000_000)}}, {str(path)!r})
        except CheckpointError as error:
            print("error:", error)
            raise SystemExit(1)
        """
    )
    assert completed.returncode == 1
    assert f"could not write checkpoint {path}" in completed.stdout
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


# -- evaluate, predict, runs ---------------------------------------------------------------


def test_evaluate_matches_the_training_result(run: zoo.TrainResult, tiny_mnist: Path) -> None:
    result = evaluate(run.run_dir, data_dir=tiny_mnist)
    assert result.samples == 200
    assert result.accuracy == pytest.approx(run.test_acc, abs=1e-6)
    assert result.loss == pytest.approx(run.test_loss, rel=1e-4)
    assert set(result.per_class) <= {str(d) for d in range(10)}
    val = evaluate(run.checkpoint, data_dir=tiny_mnist, split="val")
    assert val.samples == 100
    assert val.accuracy == pytest.approx(run.best_val_acc, abs=1e-6)


def test_evaluate_cli_json(run: zoo.TrainResult, tiny_mnist: Path) -> None:
    result = CliRunner().invoke(
        cli, ["evaluate", run.run_dir, "--data-dir", str(tiny_mnist), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["accuracy"] == pytest.approx(run.test_acc, abs=1e-6)
    assert payload["split"] == "test" and payload["dataset"] == TINY


def test_predict_images_of_any_size_and_mode(run: zoo.TrainResult, tmp_path: Path) -> None:
    from PIL import Image

    from tests.conftest import synthetic_digits

    images, labels = synthetic_digits(4, seed=2)
    paths = []
    for i, (image, mode, size) in enumerate(
        zip(images, ["L", "RGB", "RGBA", "L"], [28, 56, 100, 20], strict=True)
    ):
        path = tmp_path / f"digit{i}.{'png' if i % 2 else 'jpg'}"
        picture = Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST)
        picture.convert(mode if path.suffix == ".png" else "L").save(path)
        paths.append(str(path))
    predictions = predict(run.checkpoint, paths, top_k=3)
    assert [len(p.top) for p in predictions] == [3, 3, 3, 3]
    for prediction in predictions:
        probabilities = [p for _, p in prediction.top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-6
    assert predictions[0].top[0][0] == str(labels[0])  # a clean 28x28 image is recognised

    result = CliRunner().invoke(cli, ["predict", run.checkpoint, *paths, "--top-k", "1"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 4


def test_predict_names_an_unreadable_image(run: zoo.TrainResult, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    result = CliRunner().invoke(cli, ["predict", run.checkpoint, str(bad)])
    assert result.exit_code == 1
    assert f"cannot read image {bad}" in result.output


def test_runs_lists_the_run(run: zoo.TrainResult) -> None:
    result = CliRunner().invoke(cli, ["runs", str(Path(run.run_dir).parent), "--json"])
    (row,) = json.loads(result.stdout)
    assert row["status"] == "finished"
    assert row["act"] == "leakyrelu:negative_slope=0.1"
    assert row["test_acc"] == pytest.approx(run.test_acc)
    table = CliRunner().invoke(cli, ["runs", str(Path(run.run_dir).parent)]).stdout
    assert "finished" in table and "mlp + leakyrelu" in table
