"""``zoo compare`` with the paired t-test across seeds, and with several ``--dataset``: one
comparison per dataset and a ranking across them. Real (tiny) runs on small MNIST-format data."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli_helpers import run_command
from zoo.cli import cli
from zoo.comparison.ranking import rank_activations
from zoo.comparison.table import format_table

ACTS = ["--act", "relu", "--act", "sigmoid"]
QUICK = ["--epochs", "1", "--max-steps", "5"]
DATASETS = ["mnist:val_size=100", "mnist:val_size=200"]


@pytest.fixture(scope="module")
def two_datasets(tiny_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("compare-datasets") / "out"
    args = [*ACTS, *QUICK, "--seeds", "2", "--jobs", "2"]
    args += [word for name in DATASETS for word in ("--dataset", name)]
    args += ["--data-dir", str(tiny_mnist), "--output-dir", str(output)]
    completed = run_command(
        [sys.executable, "-m", "zoo", "compare", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    (output / "stdout.txt").write_text(completed.stdout)
    return output


def test_each_dataset_gets_its_own_comparison(two_datasets: Path) -> None:
    for folder in ("mnist_val_size_100", "mnist_val_size_200"):
        data = json.loads((two_datasets / folder / "comparison.json").read_text())
        assert data["settings"]["dataset"] == folder.replace("mnist_val_size_", "mnist:val_size=")
        assert [(r["activation"], r["seed"]) for r in data["runs"]] == [
            ("relu", 0),
            ("relu", 1),
            ("sigmoid", 0),
            ("sigmoid", 1),
        ]
        summary = {row["activation"]: row for row in data["summary"]}
        (best,) = [act for act, row in summary.items() if row["verdict"] == "best"]
        (other,) = set(summary) - {best}
        assert summary[best]["diff_from_best"] == 0.0
        assert summary[best]["ci95"] is None and summary[best]["p_value"] is None
        low, high = summary[other]["ci95"]
        assert low <= summary[other]["diff_from_best"] <= high
        assert summary[other]["diff_from_best"] <= 0
        assert 0.0 <= summary[other]["p_value"] <= 1.0
        assert best in summary[other]["verdict"] and "at 5 %" in summary[other]["verdict"]
        with open(two_datasets / folder / "comparison.csv") as file:
            rows = {row["activation"]: row for row in csv.DictReader(file)}
        assert float(rows[other]["ci95_low"]) == pytest.approx(low)
        assert float(rows[other]["p_value"]) == pytest.approx(summary[other]["p_value"])
        assert rows[best]["ci95_low"] == "" and rows[best]["p_value"] == ""
        assert "paired t-test" in (two_datasets / folder / "report.md").read_text()
    assert not (two_datasets / "comparison.json").exists()  # only the ranking at the top


def test_ranking_json_ranks_the_activations_across_datasets(two_datasets: Path) -> None:
    data = json.loads((two_datasets / "ranking.json").read_text())
    assert data["settings"]["datasets"] == DATASETS
    assert [d["dataset"] for d in data["datasets"]] == DATASETS
    assert data["failed"] == {}
    for entry in data["datasets"]:
        assert Path(entry["output_dir"]).name == entry["dataset"].replace(":", "_").replace(
            "=", "_"
        )
        assert {row["activation"] for row in entry["summary"]} == {"relu", "sigmoid"}
        assert all("layers" not in row and "p_value" in row for row in entry["summary"])
    ranking = {row["activation"]: row for row in data["ranking"]}
    assert set(ranking) == {"relu", "sigmoid"}
    for row in data["ranking"]:
        assert set(row["ranks"]) == set(DATASETS)
        assert row["mean_rank"] == pytest.approx(sum(row["ranks"].values()) / 2)
        assert row["datasets"] == 2
        assert row["best"] <= row["best_or_indistinguishable"] <= 2
    for entry in data["datasets"]:  # each dataset's rank follows its mean test accuracy
        acc = {row["activation"]: row["test_acc"] for row in entry["summary"]}
        ranks = {act: ranking[act]["ranks"][entry["dataset"]] for act in acc}
        if acc["relu"] != acc["sigmoid"]:
            winner = max(acc, key=lambda act: acc[act])
            assert ranks[winner] == 1 and sorted(ranks.values()) == [1, 2]
        else:
            assert ranks == {"relu": 1.5, "sigmoid": 1.5}
    assert sum(row["best"] for row in data["ranking"]) == 2  # one best per dataset
    means = [row["mean_rank"] for row in data["ranking"]]
    assert means == sorted(means)
    assert "--dataset mnist:val_size=100 --dataset mnist:val_size=200" in data["command"]


def test_ranking_md_and_the_printed_tables(two_datasets: Path) -> None:
    report = (two_datasets / "ranking.md").read_text()
    assert "## Ranking" in report and "| activation | rank: mnist:val_size=100 |" in report
    for name in DATASETS:
        assert f"## `{name}`" in report
    assert "(mnist_val_size_100/report.md)" in report
    assert report.count("| activation | test acc (mean ± std) | vs best (95 % CI) | p |") == 2
    printed = (two_datasets / "stdout.txt").read_text()
    assert "mnist:val_size=100:\n" in printed and "mnist:val_size=200:\n" in printed
    assert printed.count("vs best (95 % CI)") == 2
    assert "Ranking across datasets:" in printed
    assert f"Report: {two_datasets / 'ranking.md'}" in printed


def test_one_seed_says_no_test_is_possible(tiny_mnist: Path, tmp_path: Path) -> None:
    args = ["compare", *ACTS, *QUICK, "--seeds", "1", "--jobs", "2", "--dataset", DATASETS[0]]
    args += ["--data-dir", str(tiny_mnist), "--output-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("activation") :]
    assert "no test possible" in table.lower()
    assert "± 0.00" not in table
    assert "vs best (95 % CI)" in table
    data = json.loads((tmp_path / "comparison.json").read_text())
    verdicts = sorted(row["verdict"] for row in data["summary"])
    assert verdicts[0] == "best" and "no test possible" in verdicts[1]
    assert all(row["ci95"] is None and row["p_value"] is None for row in data["summary"])
    report = (tmp_path / "report.md").read_text()
    assert "With one seed no test is possible" in report and "± 0.00" not in report
    assert not (tmp_path / "ranking.json").exists()  # one dataset: today's layout


def test_a_bad_second_dataset_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    args = ["compare", *ACTS, "--dataset", "mnist", "--dataset", "mnits"]
    result = CliRunner().invoke(cli, [*args, "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "Did you mean 'mnist'" in result.output
    assert not (tmp_path / "out").exists()


def _row(act: str, acc: float, verdict: str, diff: float, p: float | None) -> dict[str, object]:
    return {
        "activation": act,
        "runs": 3,
        "test_acc": acc,
        "diff_from_best": diff,
        "p_value": p,
        "ci95": None,
        "verdict": verdict,
    }


def test_rank_activations_counts_ties_and_indistinguishable() -> None:
    summaries = {
        "a": [
            _row("relu", 0.90, "best", 0.0, None),
            _row("tanh", 0.85, "worse than relu at 5 % (p = 0.01)", -0.05, 0.01),
            _row("gelu", 0.89, "not distinguishable from relu at 5 % (p = 0.3)", -0.01, 0.3),
        ],
        "b": [
            _row("relu", 0.80, "not distinguishable from gelu at 5 % (p = 1)", 0.0, 1.0),
            _row("tanh", 0.70, "worse than gelu at 5 % (p = 0.001)", -0.1, 0.001),
            _row("gelu", 0.80, "best", 0.0, None),
        ],
    }
    ranking = rank_activations(summaries)
    assert [row["activation"] for row in ranking] == ["relu", "gelu", "tanh"]
    by_act = {row["activation"]: row for row in ranking}
    assert by_act["relu"]["ranks"] == {"a": 1, "b": 1.5}
    assert by_act["gelu"]["ranks"] == {"a": 2, "b": 1.5}
    assert by_act["tanh"]["ranks"] == {"a": 3, "b": 3}
    assert by_act["relu"]["mean_rank"] == 1.25 and by_act["tanh"]["mean_rank"] == 3
    assert [by_act[a]["best"] for a in ("relu", "gelu", "tanh")] == [1, 1, 0]
    counts = [by_act[a]["best_or_indistinguishable"] for a in ("relu", "gelu", "tanh")]
    assert counts == [2, 2, 0]


def test_the_table_shows_differences_in_percentage_points() -> None:
    rows = [
        {**_row("relu", 0.9, "best", 0.0, None), "test_acc_std": 0.01},
        {
            **_row("tanh", 0.895, "worse than relu at 5 % (p = 0.003)", -0.0042, 0.003),
            "ci95": [-0.008, -0.0004],
            "test_acc_std": 0.02,
        },
    ]
    table = format_table(rows)
    assert "-0.42 [-0.80, -0.04]" in table and "0.003" in table
    assert "90.00 ± 1.00 %" in table
    assert "paired t-test across seeds" in table
