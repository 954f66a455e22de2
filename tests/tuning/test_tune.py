"""``zoo tune`` through the real ``zoo``: a tiny study end to end (its best.json retrained by
``zoo train --config`` gives the same val_acc), the same command on a finished study, an
interrupted study continued, two workers on one storage, and each bad input: one line, exit 2,
no study touched."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import run_zoo, start_zoo

optuna = pytest.importorskip("optuna", reason="zoo tune needs Optuna: pip install optuna")

TINY = "mnist:val_size=100"
SEARCH = ("--search", "lr=log(1e-3,1e-1)", "--search", "act=choice(relu,tanh)")
#: One parameter: no importances to compute (the import of scikit-learn, which Optuna's fANOVA
#: uses, costs a second or two).
LR = ("--search", "lr=log(1e-3,1e-1)")


def tune_args(
    data: Path, output: Path, *extra: str, trials: int = 4, search: tuple[str, ...] = SEARCH
) -> list[str]:
    options = ["--dataset", TINY, "--epochs", "1", "--batch-size", "32", "--data-dir", str(data)]
    return ["tune", *search, "--trials", str(trials), *options, "--output-dir", str(output), *extra]


def counted(storage: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of the study that count towards --trials: complete or pruned."""
    study = optuna.load_study(study_name="zoo", storage=storage)
    return [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]


def assert_distinct_runs(trials: list[optuna.trial.FrozenTrial]) -> None:
    """Every counted trial trained once, in a run of its own, with parameters of its own."""
    runs = [t.user_attrs["run_dir"] for t in trials]
    assert len(set(runs)) == len(runs)
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params)
    for run in runs:
        assert json.loads((Path(run) / "config.json").read_text())["status"] == "finished"


@pytest.fixture(scope="module")
def study(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("tune")
    result = run_zoo(*tune_args(tiny_mnist, output, "--json", trials=3))
    assert result.returncode == 0, result.stderr
    return output, json.loads(result.stdout)


def test_a_study_trains_its_trials_and_writes_its_result(study: tuple[Path, dict]) -> None:
    output, result = study
    assert len(result["trials"]) == 3 and result["trained"] == 3
    assert {t["state"] for t in result["trials"]} <= {"COMPLETE", "PRUNED"}
    for name in ("best.json", "trials.csv", "study.db"):
        assert (output / name).is_file()
    assert len(list((output / "trials").glob("trial-*/*/config.json"))) == 3
    best = json.loads((output / "best.json").read_text())
    assert best["trial"] == result["best"]["number"]
    assert best["val_acc"] == max(t["value"] for t in result["trials"] if t["state"] == "COMPLETE")
    assert best["config"]["seed"] == 0 and best["config"]["lr"] == best["params"]["lr"]
    assert_distinct_runs(counted(result["storage"]))


def test_best_json_retrains_to_the_same_val_acc(study: tuple[Path, dict], tmp_path: Path) -> None:
    output, result = study
    args = ["train", "--config", str(output / "best.json"), "--output-dir", str(tmp_path)]
    trained = run_zoo(*args, "--json")
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["best_val_acc"] == result["best"]["value"]


def test_the_same_command_on_a_finished_study_trains_nothing(
    study: tuple[Path, dict], tiny_mnist: Path
) -> None:
    output, result = study
    again = run_zoo(*tune_args(tiny_mnist, output, trials=3))
    assert again.returncode == 0, again.stderr
    assert "the study has its 3 trials; nothing to train" in again.stdout + again.stderr
    assert f"Best: trial {result['best']['number']}" in again.stdout
    assert len(list((output / "trials").iterdir())) == 3


#: An activation that sends its process SIGINT once, in the middle of the second trial's training
#: (16 steps a trial, two activations a step), the first time the study runs.
SIGINT_PLUGIN = """
import os, pathlib, signal
import torch.nn as nn
import zoo

MARK = pathlib.Path(__file__).with_name("interrupted")


class Interrupting(nn.ReLU):
    calls = 0

    def forward(self, x):
        if self.training:
            Interrupting.calls += 1
            if Interrupting.calls == 40 and not MARK.exists():
                MARK.write_text("")
                os.kill(os.getpid(), signal.SIGINT)
        return super().forward(x)


@zoo.hookimpl
def register_activations(register):
    register("interrupting", Interrupting, summary="ReLU that sends SIGINT once")
"""


def test_an_interrupted_then_killed_study_continues_to_its_trials_none_twice(
    tiny_mnist: Path, tmp_path: Path
) -> None:
    (tmp_path / "plug.py").write_text(SIGINT_PLUGIN)
    output = tmp_path / "study"
    options = ("--pruner", "none", "--act", "interrupting")
    args = ["-p", str(tmp_path / "plug.py"), *tune_args(tiny_mnist, output, *options, trials=3,
                                                        search=LR)]  # fmt: skip
    storage = f"sqlite:///{output / 'study.db'}"
    interrupted = run_zoo(*args)
    assert interrupted.returncode == 130, interrupted.stderr
    assert interrupted.stderr.strip() == (
        "Interrupted: zoo tune stopped: 1 trial(s) done are kept in the study; trial 1 "
        "continues when the same command runs again."
    )
    (stopped,) = [t for t in optuna.load_study(study_name="zoo", storage=storage).trials
                  if t.state.name == "FAIL"]  # fmt: skip
    process = start_zoo(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with process:
        for line in process.stdout:  # a line per trial, once the study recorded it
            if line.startswith("trial "):
                process.kill()  # its next trial, if it started one, is left RUNNING
                break
        process.communicate(timeout=60)

    again = run_zoo(*args)
    assert again.returncode == 0, again.stderr
    trials = counted(storage)
    assert len(trials) == 3
    assert_distinct_runs(trials)
    (resumed,) = [t for t in trials if t.user_attrs["run_dir"] == stopped.user_attrs["run_dir"]]
    assert resumed.params == stopped.params
    config = json.loads((Path(resumed.user_attrs["run_dir"]) / "config.json").read_text())
    assert len(config["resumed"]) == 1 and config["trial"]["number"] == resumed.number


def test_two_workers_on_one_storage_finish_one_study(tiny_mnist: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    workers = [
        start_zoo(*tune_args(tiny_mnist, tmp_path / name, "--storage", storage, search=LR), **pipes)
        for name in ("one", "two")
    ]
    for worker in workers:
        with worker:
            _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    trials = counted(storage)
    assert len(trials) == 4
    assert_distinct_runs(trials)
    trained_by = {Path(t.user_attrs["run_dir"]).parents[2].name for t in trials}
    assert trained_by == {"one", "two"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--search", "lr=log(1e-4"], "is not NAME=KIND(ARGS)"),
        (["--search", "seed=int(0,9)"], "'seed' cannot be searched"),
        (["--search", "lr=log(1e-4,1)", "--trials", "0"], "--trials must be at least 1"),
        (["--search", "lr=log(1e-4,1)", "--storage", "nosuch://x"], "cannot open the study"),
        (["--search", "lr=log(1e-4,1)", "--storage", "sqlite:////no/such/s.db"], "no folder"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_study(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = run_zoo("tune", *args, "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 or "Usage:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "study.db").exists()


def test_a_study_created_with_another_space_is_left_untouched(
    study: tuple[Path, dict], tiny_mnist: Path
) -> None:
    output, _ = study
    before = hashlib.sha256((output / "study.db").read_bytes()).hexdigest()
    args = tune_args(tiny_mnist, output, trials=3)
    args[args.index("act=choice(relu,tanh)")] = "act=choice(relu,gelu)"
    result = run_zoo(*args)
    assert result.returncode == 2
    assert "was created with other --search options" in result.stderr
    assert "'act=choice(relu,tanh)'" in result.stderr and "Traceback" not in result.stderr
    assert hashlib.sha256((output / "study.db").read_bytes()).hexdigest() == before


def test_without_optuna_one_line_names_the_pip_command(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "optuna").mkdir(parents=True)
    (site / "optuna" / "__init__.py").write_text("raise ImportError('no optuna here')\n")
    result = run_zoo("tune", "--search", "lr=log(1e-4,1)", site=site, fresh=True)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: zoo tune needs Optuna: pip install 'lightning-zoo[tune]' (or pip install optuna)"
    )
