"""What models cost, through the real ``zoo``: ``zoo list architectures -l`` (parameters, FLOPs,
weights size on the meta device), ``zoo runs`` (parameters from results.json, checkpoint size),
and the fine-tuning benchmark's table."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli_helpers import run_zoo
from tests.weights.test_cli import _one_line_error

ROOT = Path(__file__).resolve().parents[2]


def test_list_architectures_details() -> None:
    done = run_zoo("list", "architectures", "-l", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    mlp = rows["mlp"]["cost"]
    assert mlp == {
        "dataset": "mnist", "input_shape": [1, 28, 28], "num_classes": 10, "num_params": 109386,
        "flops": 218368, "weights_size": 109386 * 4, "error": None,
    }  # fmt: skip
    weights = json.loads(run_zoo("list", "weights", "mlp-relu.mnist", "--json").stdout)[0]
    assert (weights["num_params"], weights["flops"]) == (mlp["num_params"], mlp["flops"])
    assert rows["cnn"]["cost"]["num_params"] > mlp["num_params"]
    assert "cost" not in rows["timm/*"]  # a family is no one model
    table = run_zoo("list", "architectures", "mlp", "-l", "--dataset", "cifar10").stdout
    assert "402.2k params, 804.1k FLOPs/image, 1.6MB on cifar10 3x32x32/10" in table
    plain = run_zoo("list", "architectures", "--json")
    assert all("cost" not in row for row in json.loads(plain.stdout))
    bad = run_zoo("list", "architectures", "-l", "--dataset", "nosuch")
    _one_line_error(bad, 2, "unknown dataset 'nosuch'")


def test_listing_without_details_imports_no_torch() -> None:
    code = (
        "import sys\nfrom zoo.cli import cli\n"
        "for args in (['list', 'architectures'], ['list', 'architectures', '--json']):\n"
        "    try:\n        cli.main(args, prog_name='zoo', standalone_mode=False)\n"
        "    except SystemExit:\n        pass\n"
        "print('HEAVY', [m for m in ('torch', 'lightning') if m in sys.modules], file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in done.stderr, done.stderr


def test_runs_show_parameters_and_checkpoint_size(tiny_run: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / tiny_run.name)
    older = shutil.copytree(tiny_run, runs / "older")  # a run from before num_params
    results = json.loads((older / "results.json").read_text())
    del results["num_params"]
    (older / "results.json").write_text(json.dumps(results))
    listed = {
        Path(r["run_dir"]).name: r for r in json.loads(run_zoo("runs", str(runs), "--json").stdout)
    }
    size = (tiny_run / "checkpoints" / "best.ckpt").stat().st_size
    assert listed[tiny_run.name]["num_params"] == 109386
    assert listed[tiny_run.name]["checkpoint_size"] == size
    assert listed["older"]["num_params"] is None and listed["older"]["checkpoint_size"] == size
    table = run_zoo("runs", str(runs)).stdout.splitlines()
    assert table[0].split()[-2:] == ["PARAMS", "CKPT"]
    row = next(line for line in table if line.startswith(tiny_run.name))
    assert row.split()[-2:] == ["109.4k", f"{size / 1e6:.1f}MB"]
    assert next(line for line in table if line.startswith("older")).split()[-2] == "-"


def test_finetune_table() -> None:
    spec = importlib.util.spec_from_file_location("finetune", ROOT / "benchmarks/finetune.py")
    assert spec is not None and spec.loader is not None
    finetune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(finetune)
    results = {0: {"scratch": 0.8523, "weights": 0.8542}, 1: {"scratch": 0.8462, "weights": 0.85}}
    table = finetune.render_table(results, "mlp-relu.mnist")
    assert "| 0 | 85.23 % | 85.42 % | +0.19 points |" in table
    assert "| **mean** | 84.92 % | 85.21 % | +0.29 points |" in table
    docs = (ROOT / "docs" / "weights.md").read_text()
    assert "<!-- finetune:start -->\n| seed | from scratch | from `mlp-relu.mnist` |" in docs
