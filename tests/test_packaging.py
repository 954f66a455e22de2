"""The distribution: a wheel that installs zoo, zoo.plugins and zoo.cli and nothing top-level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("lightning_zoo-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_installs_everything_under_zoo(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    top_level = {name.split("/")[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"zoo"}
    for required in (
        "zoo/__init__.py",
        "zoo/py.typed",
        "zoo/plugin/hookspecs.py",
        "zoo/tools/templates/plugin/pyproject.toml.tmpl",
        "zoo/plugins/activations.py",
        "zoo/plugins/mlp.py",
        "zoo/plugins/mnist.py",
        "zoo/cli/__init__.py",
        "zoo/cli/app.py",
    ):
        assert required in names
    assert not any(name.startswith(("plugins/", "cli/", "tests/")) for name in names)


def test_wheel_metadata(wheel: zipfile.ZipFile) -> None:
    dist_info = next(n.split("/")[0] for n in wheel.namelist() if ".dist-info/" in n)
    metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert "Name: lightning-zoo" in metadata
    for requirement in ("torch>=2.4", "lightning>=2.4", "pluggy", "timm", "click"):
        assert requirement in metadata
    entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert "zoo = zoo.cli:main" in entry_points


def test_installed_package_has_no_top_level_plugins_or_cli(tmp_path: Path) -> None:
    code = (
        "import importlib.util, sys\n"
        "print(importlib.util.find_spec('plugins'), importlib.util.find_spec('cli'))\n"
        "import zoo.plugins.mlp, zoo.cli\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "None None"
