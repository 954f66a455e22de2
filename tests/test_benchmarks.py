"""The benchmark scripts' tables and the marked blocks they rewrite."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = "mnist:val_size=100"


# --- the accuracy benchmark's table ------------------------------------------------------------


@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks/accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_accuracy_table(accuracy) -> None:
    epochs = {"mlp": 10, "cnn": 3}
    results = {}
    for act, acc in zip(accuracy.ACTIVATIONS, (0.981, 0.9805, 0.975, 0.979, 0.982), strict=True):
        key = accuracy.run_key("mlp", act, "mnist", 10, 0)
        results[key] = {"test_acc": acc, "train_seconds": 30.4}
    table = accuracy.render_table(results, epochs, 0, "a test machine")
    assert "| mnist | mlp 256-128-100 | 10 | 98.10 % (30 s) | 98.05 % (30 s) |" in table
    assert "97.05 %" in table and "88.3 %" in table and "92.5 %" in table
    assert "| mnist | cnn" in table and "not run" in table
    assert "--mlp-epochs 10 --cnn-epochs 3 --seed 0" in table

    readme = f"intro\n{accuracy.START}\nold table\n{accuracy.END}\nrest\n"
    updated = accuracy.replace_between_markers(readme, "new table")
    assert updated == f"intro\n{accuracy.START}\nnew table\n{accuracy.END}\nrest\n"
    with pytest.raises(ValueError, match="markers"):
        accuracy.replace_between_markers("no markers", "x")


def test_readme_has_the_accuracy_table(accuracy) -> None:
    readme = (ROOT / "README.md").read_text()
    assert accuracy.START in readme and accuracy.END in readme
    assert "python benchmarks/accuracy.py" in readme


# --- compare_speed.py, scaling.py and gpu_check.sh, in a quick mode ----------------------------


def _benchmark(name: str):
    """Import benchmarks/NAME.py as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / f"benchmarks/{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _doc_with_block(path: Path, name: str) -> Path:
    path.write_text(f"intro\n<!-- {name}:start -->\nold\n<!-- {name}:end -->\nrest\n")
    return path


def test_compare_speed_runs_both_modes_and_writes_its_block(
    tiny_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compare_speed = _benchmark("compare_speed")
    docs = _doc_with_block(tmp_path / "performance.md", "compare-speed")
    output = tmp_path / "compare.json"
    args = ["--data-dir", str(tiny_mnist), "--dataset", TINY, "--acts", "relu", "--seeds", "2"]
    args += ["--epochs", "1", "--max-steps", "3", "--docs", str(docs), "--output", str(output)]
    assert compare_speed.main(args) == 0

    table = capsys.readouterr().out
    assert "| fused | `zoo compare --act relu --epochs 1 --seeds 2" in table
    assert "--max-steps 3 --separate --jobs 2` |" in table
    assert "OMP_NUM_THREADS=1" in table and "| relu |" in table
    report = json.loads(output.read_text())
    for mode in ("fused", "separate"):
        figures = report["modes"][mode]
        assert sorted(figures["test_acc"]) == ["relu/0", "relu/1"]
        assert figures["median_wall_s"] > 0 and figures["max_rss_mb"] > 50
        assert figures["peak_tree_mb"] is None or figures["peak_tree_mb"] > 50
    assert report["speed_up"]["fused"] > 0 and report["speed_up"]["separate"] == 1
    assert report["modes"]["fused"]["groups"].startswith("training 2 runs fused, in ")
    text = docs.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("\nrest\n")
    command = "python benchmarks/compare_speed.py --data-dir DIR --acts relu --epochs 1 --seeds 2"
    assert f"{command} --max-steps 3 --dataset {TINY} --docs docs/performance.md`" in text
    assert "Measured with" in text and "| separate |" in text


def test_compare_speed_summary() -> None:
    compare_speed = _benchmark("compare_speed")
    args = compare_speed._parser().parse_args(
        ["--acts", "relu", "tanh", "--repeats", "2", "--fused-threads", "default", "1"]
    )
    assert compare_speed.modes(args) == ["fused", "fused, 1 thread(s)", "separate"]
    assert compare_speed.mode_threads("fused, 1 thread(s)") == "1"
    assert compare_speed.mode_threads("fused") is None

    def measurement(mode: str, wall: float, accs: list[float]) -> dict:
        runs = [
            {"act": act, "seed": seed, "test_acc": acc}
            for (act, seed), acc in zip(
                [("relu", 0), ("relu", 1), ("tanh", 0), ("tanh", 1)], accs, strict=True
            )
        ]
        return {"mode": mode, "wall_s": wall, "max_rss_mb": 900.0, "peak_tree_mb": 1800.0,
                "load_before": 1.0, "load_after": 2.0, "runs": runs, "groups": None}  # fmt: skip

    measurements = [
        measurement("fused", 30.0, [0.97, 0.98, 0.96, 0.96]),
        measurement("fused, 1 thread(s)", 20.0, [0.97, 0.98, 0.96, 0.96]),
        measurement("separate", 90.0, [0.97, 0.98, 0.95, 0.95]),
        measurement("separate", 100.0, [0.97, 0.98, 0.95, 0.95]),
        measurement("fused, 1 thread(s)", 20.0, [0.97, 0.98, 0.96, 0.96]),
        measurement("fused", 40.0, [0.97, 0.98, 0.96, 0.96]),
    ]
    report = compare_speed.summarise(measurements, args)
    assert report["speed_up"]["fused"] == pytest.approx(95.0 / 35.0)
    assert report["speed_up"]["fused, 1 thread(s)"] == pytest.approx(95.0 / 20.0)
    assert report["largest_diff"]["act"] == "tanh"
    assert report["largest_diff"]["diff"] == pytest.approx(0.01)
    text = compare_speed.render(report)
    assert "| tanh | 96.00% ± 0.00% | 96.00% ± 0.00% | 95.00% ± 0.00% | +1.00 pts |" in text
    assert "| 35.0 (30.0 / 40.0) | 2.71x |" in text and "| 4.75x |" in text
    assert "`OMP_NUM_THREADS=1 zoo compare --act relu --act tanh" in text
    assert "the same in every repeat" in text


def test_process_tree_memory() -> None:
    compare_speed = _benchmark("compare_speed")
    assert os.getpid() in compare_speed._tree(os.getpid())
    assert compare_speed._rss(os.getpid()) > 0 or not Path("/proc").exists()


def test_scaling_runs_the_groups_and_draws_them(
    tiny_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    scaling = _benchmark("scaling")
    docs = _doc_with_block(tmp_path / "performance.md", "compare-scaling")
    plot = tmp_path / "scaling.png"
    args = ["--data-dir", str(tiny_mnist), "--dataset", TINY, "--seeds-list", "1", "2"]
    args += ["--max-steps", "3", "--plot", str(plot), "--docs", str(docs)]
    assert scaling.main(args) == 0

    table = capsys.readouterr().out
    assert "| members N | fused s | s per member | added member s | one by one s |" in table
    assert table.count("x |") == 2 and "A member costs least" in table
    assert plot.read_bytes().startswith(b"\x89PNG")
    text = docs.read_text()
    assert "old" not in text and "![fused and one-by-one wall time" in text
    assert "(scaling.png)" in text and "--seeds-list 1 2" in text


def test_scaling_rows() -> None:
    scaling = _benchmark("scaling")
    rows = scaling.table_rows([10.0, 12.0], {1: [12.0], 2: [14.0], 4: [20.0]})
    assert [r["one_by_one_s"] for r in rows] == [11.0, 22.0, 44.0]
    assert rows[0]["added_member_s"] is None
    assert rows[2]["added_member_s"] == pytest.approx(3.0)
    assert rows[2]["speed_up"] == pytest.approx(2.2)
    assert "group of 4 (5.00 s, 2.2x faster" in scaling.summary(rows, 11.0)


def test_gpu_check_script_parses() -> None:
    script = ROOT / "benchmarks/gpu_check.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", str(script)], check=True)


def test_performance_doc_has_the_fused_blocks() -> None:
    text = (ROOT / "docs/performance.md").read_text()
    for name in ("compare-speed", "compare-scaling"):
        assert f"<!-- {name}:start -->" in text and f"<!-- {name}:end -->" in text
    assert "benchmarks/compare_speed.py" in text and "benchmarks/scaling.py" in text


# --- handwritten.py: zoo against the hand-written loop, in its quick mode ----------------------


def test_handwritten_runs_both_sides_and_prints_their_accuracies(
    tiny_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handwritten = _benchmark("handwritten")
    output, plot = tmp_path / "handwritten.json", tmp_path / "scaling.png"
    args = ["--quick", "--no-doc", "--data-dir", str(tiny_mnist), "--val-size", "100"]
    assert handwritten.main([*args, "--output", str(output), "--plot", str(plot)]) == 0

    table = capsys.readouterr().out
    for row in (
        "| the study, 2 activations x 1 seeds x 1 epochs: 2 models stacked in one loop",
        "| the same study, the runs one after another / `zoo compare --separate --jobs 2` |",
        "| one run (relu, seed 0), whole process, 1 epoch / `zoo train --epochs 1` | 1 / 1 |",
        "| one run, `train_seconds` (data set-up, training, validation), 2 epochs /",
        "| the default `cnn` (468,010 parameters), one training step at batch 128",
        "| relu | ",
        "| tanh | ",
        "| 2 | ",
    ):
        assert row in table
    assert table.count("**") >= 12  # a ratio in each of the six timed rows
    assert "One run (relu, seed 0), test accuracy: 1 epoch(s): hand-written " in table
    assert plot.read_bytes().startswith(b"\x89PNG")

    # the same initial weights and data order: the two sides' test accuracies agree
    report = json.loads(output.read_text())
    accs = {name: handwritten.accuracies(report["study"][name]) for name in report["study"]}
    for act in ("relu", "tanh"):
        values = [accs[name][act][0] for name in accs]
        assert max(values) - min(values) <= 0.02, (act, values)
    run = report["run"]
    assert abs(run["hand 1"][0]["result"]["runs"][0]["test_acc"]
               - run["zoo 1"][0]["result"]["test_acc"]) <= 0.02  # fmt: skip

    # --from-json writes the two blocks (and the plot beside them) without measuring again
    docs = _doc_with_block(tmp_path / "performance.md", "handwritten")
    docs.write_text(docs.read_text() + "<!-- handwritten-scaling:start -->\n"
                    "<!-- handwritten-scaling:end -->\n")  # fmt: skip
    assert handwritten.main(["--from-json", str(output), "--docs", str(docs)]) == 0
    text = docs.read_text()
    assert "old" not in text and text.startswith("intro\n")
    assert text.count("`python benchmarks/handwritten.py --data-dir DIR") == 2
    assert "![wall time and peak memory" in text and "(handwritten-scaling.png)" in text
    assert (tmp_path / "handwritten-scaling.png").read_bytes().startswith(b"\x89PNG")


def test_performance_doc_has_the_handwritten_block() -> None:
    text = (ROOT / "docs/performance.md").read_text()
    for name in ("handwritten", "handwritten-scaling"):
        assert f"<!-- {name}:start -->" in text and f"<!-- {name}:end -->" in text
    assert "python benchmarks/handwritten.py --data-dir DIR" in text
