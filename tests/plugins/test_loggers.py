"""The built-in ``--logger`` loggers: real short runs, read back with each tool's own reader
(TensorBoard's EventAccumulator, MLflow's client, W&B's record format), the CLI's stdout, a
missing library and an unknown name."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.plugin.components import resolve

TINY = "mnist:val_size=100"  # 500 training images: 8 steps per epoch
#: Lightning writes step metrics every 5 steps here (every 50 by default), so that a short
#: run has some: steps 4, 9 and 14 of two epochs.
OPTIONS: dict[str, Any] = {"trainer_options": {"log_every_n_steps": 5}}
#: Run options in the hyperparameters every logger records.
CONFIG = {"arch": "mlp", "act": "tanh", "dataset": TINY, "epochs": 2, "batch_size": 64}

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # mlflow's use of SQLAlchemy
    pytest.mark.filterwarnings("ignore:.*is deprecated.*:FutureWarning"),
]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_tensorboard = pytest.mark.skipif(not installed("tensorboard"), reason="no tensorboard")
needs_mlflow = pytest.mark.skipif(not installed("mlflow"), reason="no mlflow")
INSTALLED = [name for name in ("tensorboard", "mlflow", "wandb") if installed(name)]


def _train(tiny_mnist: Path, output_dir: Path, loggers: tuple[str, ...], **kwargs: Any):
    options = {"epochs": CONFIG["epochs"], **OPTIONS, **kwargs}
    return zoo.train(
        "mlp", act="tanh", dataset=TINY, logger=loggers, seed=0, progress=False,
        data_dir=tiny_mnist, output_dir=output_dir, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run with csv and every installed logger."""
    result = _train(tiny_mnist, tmp_path_factory.mktemp("runs"), ("csv", *INSTALLED))
    return Path(result.run_dir)


def zoo_metrics(run: Path) -> dict[str, dict[int, float]]:
    """zoo's own metrics.csv: metric -> step -> value."""
    found: dict[str, dict[int, float]] = {}
    with (run / "metrics.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            for key, value in row.items():
                if key not in ("step", "epoch") and value not in ("", None):
                    found.setdefault(key, {})[int(row["step"])] = float(value)
    return found


def assert_run_config(params: dict[str, Any], run: Path) -> None:
    """``params`` (as each tool gives them back, often strings) are the run's configuration."""
    for key, value in {**CONFIG, "seed": 0, "lr": 0.001}.items():
        assert str(params[key]).strip('"') == str(value), key
    assert "class_names" not in params  # the LightningModule's hyperparameters are not logged
    assert (
        str(params["data_dir"]).strip('"')
        == json.loads((run / "config.json").read_text())["config"]["data_dir"]
    )


# -- csv ---------------------------------------------------------------------------------------


def test_csv_logger_writes_lightning_csv_files(run_dir: Path) -> None:
    import yaml

    version = run_dir / "csv" / "version_0"
    assert_run_config(yaml.safe_load((version / "hparams.yaml").read_text()), run_dir)
    ours = zoo_metrics(run_dir)
    theirs: dict[str, dict[int, float]] = {}
    with (version / "metrics.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            for key in ("val_acc", "train_loss_step", "test_acc"):
                if row.get(key):
                    theirs.setdefault(key, {})[int(row["step"])] = float(row[key])
    assert set(theirs["train_loss_step"]) == {4, 9, 14}
    for key, values in theirs.items():
        assert values == pytest.approx(ours[key]), key


# -- tensorboard -------------------------------------------------------------------------------


@needs_tensorboard
def test_tensorboard_event_files_hold_the_run_metrics_and_config(run_dir: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = EventAccumulator(str(run_dir / "tensorboard"))
    accumulator.Reload()
    ours = zoo_metrics(run_dir)
    tags = set(accumulator.Tags()["scalars"])
    assert {"train_loss_step", "val_acc", "val_loss", "test_acc"} <= tags
    assert tags - {"epoch"} <= set(ours)  # nothing zoo does not log (no hp_metric)
    for tag in ("train_loss_step", "val_acc", "train_loss", "test_acc"):
        logged = {event.step: event.value for event in accumulator.Scalars(tag)}
        assert logged == pytest.approx(ours[tag], rel=1e-6), tag
    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    session = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    params = {}
    for key, value in session.hparams.items():
        params[key] = value.string_value or value.number_value
    params["epochs"], params["batch_size"] = int(params["epochs"]), int(params["batch_size"])
    params["seed"] = int(params["seed"])
    assert_run_config(params, run_dir)


# -- mlflow ------------------------------------------------------------------------------------


def mlflow_runs(run: Path, experiment: str = "lightning-zoo") -> tuple[Any, list[Any]]:
    """MLflow's client on the run's own store, and the runs of ``experiment`` there."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{run.resolve() / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    assert found.artifact_location == (run.resolve() / "mlartifacts").as_uri()
    return client, client.search_runs([found.experiment_id])


@needs_mlflow
def test_mlflow_store_in_the_run_directory_holds_the_run(run_dir: Path) -> None:
    client, runs = mlflow_runs(run_dir)
    (run,) = runs
    assert run.info.run_name == run_dir.name
    assert run.info.status == "FINISHED"
    assert run.data.tags["zoo.run_dir"] == str(run_dir.resolve())
    assert_run_config(run.data.params, run_dir)
    ours = zoo_metrics(run_dir)
    for key in ("val_acc", "val_loss", "train_loss_step", "test_acc", "test_loss"):
        history = client.get_metric_history(run.info.run_id, key)
        assert {m.step: m.value for m in history} == pytest.approx(ours[key]), key
    results = json.loads((run_dir / "results.json").read_text())
    assert run.data.metrics["test_acc"] == pytest.approx(results["test_acc"])
    assert client.list_artifacts(run.info.run_id) == []  # no checkpoints uploaded
    assert not (run_dir / "mlruns").exists()


# -- wandb -------------------------------------------------------------------------------------


def wandb_records(run_dir: Path) -> list[Any]:
    """The records of an offline W&B run: its ``.wandb`` file, read with W&B's own protobuf
    schema from the LevelDB-log framing that W&B writes (32 KiB blocks, 7-byte headers)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, position, pending, records = 32768, 7, b"", []
    while position + 7 <= len(data):
        left = block - position % block
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if left < 7 or (kind == 0 and length == 0):  # the block's zero padding
            position += left
            continue
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or its last part
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


def test_wandb_offline_run_in_the_run_directory(run_dir: Path) -> None:
    pytest.importorskip("wandb")
    records = wandb_records(run_dir)
    kinds = [record.WhichOneof("record_type") for record in records]
    assert kinds[-1] == "exit" and records[-1].exit.exit_code == 0  # finished after testing
    (run_record,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run_record.display_name == run_dir.name and run_record.run_id.startswith("zoo-")
    config = {}
    for record in records:
        if record.WhichOneof("record_type") == "config":
            config.update({u.key: json.loads(u.value_json) for u in record.config.update})
    assert_run_config(config, run_dir)
    logged: dict[str, dict[int, float]] = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            row = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            for key in ("val_acc", "train_loss_step", "test_acc"):
                if key in row:
                    logged.setdefault(key, {})[row["trainer/global_step"]] = row[key]
    ours = zoo_metrics(run_dir)
    for key, values in logged.items():
        assert values == pytest.approx(ours[key]), key
    assert set(logged) == {"val_acc", "train_loss_step", "test_acc"}


# -- resuming, pickling ------------------------------------------------------------------------


@needs_tensorboard
@needs_mlflow
def test_a_resumed_run_continues_its_logs(tiny_mnist: Path, tmp_path: Path) -> None:
    first = _train(tiny_mnist, tmp_path, ("csv", "tensorboard", "mlflow"), epochs=1)
    run_dir = Path(first.run_dir)
    zoo.resume(run_dir, epochs=2, progress=False, **OPTIONS)
    ours = zoo_metrics(run_dir)
    assert set(ours["val_acc"]) == {7, 15}
    client, runs = mlflow_runs(run_dir)
    (run,) = runs  # the same MLflow run, continued
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert {m.step: m.value for m in history} == pytest.approx(ours["val_acc"])
    assert run.data.params["epochs"] == "1"  # MLflow's params cannot change
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "tensorboard"))
    accumulator.Reload()
    logged = {event.step: event.value for event in accumulator.Scalars("val_acc")}
    assert logged == pytest.approx(ours["val_acc"])
    assert sorted(p.name for p in (run_dir / "csv").iterdir()) == ["version_0", "version_1"]


@needs_tensorboard
def test_loggers_pickle_into_a_fresh_process(tmp_path: Path) -> None:
    """As ddp_spawn sends them to the processes it starts: zoo's logger classes are made on
    first use, and unpickling makes them there."""
    from zoo.plugins.loggers import csv_logger, tensorboard_logger

    factories = (csv_logger, tensorboard_logger)
    loggers = [factory(save_dir=str(tmp_path / factory.__name__)) for factory in factories]
    code = (
        "import pickle, sys\n"
        "for logger in pickle.loads(sys.stdin.buffer.read()):\n"
        "    print(type(logger).__module__, type(logger).__name__, logger._zoo_run_dir)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(loggers), capture_output=True,
        timeout=300, check=True,
    )  # fmt: skip
    expected = [
        f"zoo.plugins.loggers {type(logger).__name__} {tmp_path / factory.__name__}"
        for logger, factory in zip(loggers, factories, strict=True)
    ]
    assert completed.stdout.decode().splitlines() == expected


# -- the command line --------------------------------------------------------------------------


def _zoo(args: list[str], code: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """``zoo ARGS`` in a fresh process, after ``code``."""
    program = f"import sys\n{code}\nfrom zoo.cli import main\nsys.argv = ['zoo', *{args!r}]\n"
    program += "main()\n"
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )  # fmt: skip


def _train_args(tiny_mnist: Path, output_dir: Path, *loggers: str) -> list[str]:
    args = ["train", "--dataset", TINY, "--data-dir", str(tiny_mnist), "--seed", "0"]
    args += ["--output-dir", str(output_dir)]
    return args + [part for name in loggers for part in ("--logger", name)]


@needs_tensorboard
@needs_mlflow
def test_json_stdout_stays_json_with_loggers(tiny_mnist: Path, tmp_path: Path) -> None:
    loggers = ("tensorboard", "mlflow", *(["wandb"] if installed("wandb") else []))
    args = [*_train_args(tiny_mnist, tmp_path, *loggers), "--json", "--max-steps", "30"]
    completed = _zoo(args)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)  # nothing else on stdout
    assert result["steps"] == 30
    run_dir = Path(result["run_dir"])
    assert (run_dir / "mlflow.db").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert "Traceback" not in completed.stderr
    assert "database tables" not in completed.stderr  # MLflow's store creation is quiet
    if "wandb" in loggers:
        assert "anonymous" not in completed.stderr
        assert list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


def test_a_missing_library_names_the_extra(tiny_mnist: Path, tmp_path: Path) -> None:
    hide = "sys.modules['tensorboard'] = None  # as if it were not installed"
    completed = _zoo(_train_args(tiny_mnist, tmp_path, "tensorboard"), code=hide)
    assert completed.returncode == 1, completed.stderr
    assert completed.stderr.strip() == (
        "Error: logger 'tensorboard' needs tensorboard, which cannot be imported (import of "
        "tensorboard halted; None in sys.modules): pip install 'lightning-zoo[tensorboard]'"
    )
    assert completed.stdout == ""
    assert not list(tmp_path.iterdir())  # the run directory was removed again


@pytest.mark.parametrize("library", ["tensorboard", "mlflow", "wandb"])
def test_each_factory_names_its_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    monkeypatch.setitem(sys.modules, library, None)  # a real ImportError on import
    component, spec = resolve("logger", library)
    with pytest.raises(zoo.ZooError, match=rf"pip install 'lightning-zoo\[{library}\]'$"):
        component.build(spec.kwargs, save_dir=str(tmp_path))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tensorbord", "Did you mean 'tensorboard'?"),
        ("mlfow", "Did you mean 'mlflow'?"),
        ("mlflow:experiment=3", "argument 'experiment' expects str"),
        ("csv:colour=1", "takes no argument 'colour'"),
    ],
)
def test_a_bad_logger_is_a_usage_error(tmp_path: Path, spec: str, expected: str) -> None:
    result = CliRunner().invoke(cli, ["train", "--logger", spec, "--output-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not list(tmp_path.iterdir())
