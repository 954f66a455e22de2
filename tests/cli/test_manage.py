"""``zoo new-plugin``, ``zoo install`` and ``zoo uninstall``, run as the real ``zoo`` command.

The generated plugin is installed with ``zoo install`` itself, but into a private directory:
pip reads ``PIP_TARGET`` (``--target``), ``PIP_NO_DEPS``, ``PIP_NO_INDEX`` and
``PIP_NO_BUILD_ISOLATION=0`` (which, as pip documents, turns build isolation *off*) from the
environment, so nothing is downloaded and nothing goes into the environment the tests run in.
``zoo`` then sees that directory through ``PYTHONPATH``, as it would see site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import cli_helpers
from tests.conftest import MNIST_FILES

ROOT = Path(__file__).resolve().parents[2]
#: A name no real plugin has, so the tests pass whatever plugins are installed.
NAME = "manage-test-acts"
DISTRIBUTION = "zoo-manage-test-acts"
MODULE = "zoo_manage_test_acts"
KINDS = ("activation", "architecture", "dataset", "optimizer", "scheduler", "augmentation")


#: Settings of the caller's that would change what the tests see or where pip installs.
_UNSET = ("ZOO_DISABLE_PLUGIN_AUTOLOAD", "ZOO_PLUGINS", "ZOO_STRICT_PLUGINS", "PIP_TARGET",
          "PIP_PREFIX", "PIP_USER", "PIP_REQUIRE_VIRTUALENV")  # fmt: skip


def run_zoo(
    *args: str, site: Path | None = None, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``zoo ARGS`` in a subprocess, with ``site`` on PYTHONPATH and pip kept offline."""
    env = {"PIP_NO_INDEX": "1", **env}
    return cli_helpers.run_zoo(*args, site=site, stdin=stdin, unset=_UNSET, **env)


def pip_into(site: Path) -> dict[str, str]:
    """The environment that makes pip install into ``site``, offline, without build isolation."""
    return {"PIP_TARGET": str(site), "PIP_NO_DEPS": "1", "PIP_NO_BUILD_ISOLATION": "0"}


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package ``zoo new-plugin`` writes."""
    parent = tmp_path_factory.mktemp("new-plugin")
    made = run_zoo("new-plugin", NAME, "--dir", str(parent))
    assert made.returncode == 0, made.stderr
    return parent / NAME


@pytest.fixture(scope="module")
def site(plugin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated plugin, installed by ``zoo install`` into a directory of its own."""
    site = tmp_path_factory.mktemp("site")
    installed = run_zoo("install", "--no-cache-dir", str(plugin_dir), site=site, **pip_into(site))
    assert installed.returncode == 0, installed.stderr
    assert f"Installed plugin {NAME} ({DISTRIBUTION} 0.1.0)." in installed.stdout
    assert "Successfully installed" in installed.stderr  # pip's own output, on stderr
    return site


# -- zoo new-plugin ------------------------------------------------------------------------------


def test_new_plugin_writes_a_package_with_every_hook(plugin_dir: Path) -> None:
    files = sorted(p.relative_to(plugin_dir).as_posix() for p in plugin_dir.rglob("*"))
    for expected in (
        "pyproject.toml",
        "README.md",
        f"src/{MODULE}/__init__.py",
        f"src/{MODULE}/py.typed",
        "tests/test_plugin.py",
    ):
        assert expected in files
    pyproject = (plugin_dir / "pyproject.toml").read_text()
    assert f'name = "{DISTRIBUTION}"' in pyproject
    assert f'[project.entry-points.zoo]\n{NAME} = "{MODULE}"' in pyproject
    hooks = (plugin_dir / "src" / MODULE / "__init__.py").read_text()
    for hook in ("commands", *(f"{kind}s" for kind in (*KINDS, "logger"))):
        assert f"def register_{hook}(" in hooks
    assert not any(name.endswith(".tmpl") for name in files)


def test_new_plugin_says_what_it_wrote_and_what_next(tmp_path: Path) -> None:
    made = run_zoo("new-plugin", "zoo-other-acts", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    assert "Wrote the plugin zoo-other-acts (module zoo_other_acts)" in made.stdout
    assert "activation    other-acts-swish" in made.stdout
    assert "command       zoo other-acts" in made.stdout
    assert "zoo train --act other-acts-swish --max-steps 20" in made.stdout
    assert (tmp_path / "zoo-other-acts" / "src" / "zoo_other_acts" / "data.py").is_file()


@pytest.mark.parametrize("name", ["myacts", "a-plugin-name-of-30-characters"])
def test_the_generated_code_is_ruff_clean(name: str, tmp_path: Path) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    assert run_zoo("new-plugin", name, "--dir", str(tmp_path)).returncode == 0
    for command in (["check", "."], ["format", "--check", "."]):
        checked = subprocess.run(
            [ruff, *command], cwd=tmp_path / name, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("name", ["MyActs", "my.acts", "2acts", "my--acts", "acts-", "x" * 31])
def test_new_plugin_refuses_a_name_that_cannot_be_a_module(name: str, tmp_path: Path) -> None:
    refused = run_zoo("new-plugin", name, "--dir", str(tmp_path))
    assert refused.returncode == 2
    assert "lower-case letters and digits, starting with a letter" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_new_plugin_refuses_a_command_name_zoo_has(tmp_path: Path) -> None:
    refused = run_zoo("new-plugin", "train", "--dir", str(tmp_path))
    assert refused.returncode == 2
    assert "'zoo train', which exists already" in refused.stderr


def test_new_plugin_refuses_an_existing_target(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    (tmp_path / "afile").write_text("mine")
    for name, problem in (("full", "is not empty"), ("afile", "is not a directory")):
        refused = run_zoo("new-plugin", name, "--dir", str(tmp_path))
        assert refused.returncode == 2
        assert problem in refused.stderr and "Traceback" not in refused.stderr
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert run_zoo("new-plugin", "empty", "--dir", str(tmp_path)).returncode == 0


# -- the generated plugin, installed ---------------------------------------------------------------


def test_zoo_plugins_lists_the_installed_plugin(site: Path) -> None:
    listed = run_zoo("plugins", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    plugin = next(p for p in json.loads(listed.stdout) if p["name"] == NAME)
    assert (plugin["distribution"], plugin["version"], plugin["status"]) == (
        DISTRIBUTION,
        "0.1.0",
        "loaded",
    )
    for kind in KINDS:
        assert plugin["registered"][f"{kind}s"], kind
    assert plugin["registered"]["commands"] == [NAME]


def test_new_plugin_refuses_the_name_of_an_installed_distribution(
    site: Path, tmp_path: Path
) -> None:
    """Installing the new package would silently replace the installed plugin of that name."""
    refused = run_zoo("new-plugin", NAME, "--dir", str(tmp_path), site=site)
    assert refused.returncode == 2, refused.stderr
    assert f"the distribution {DISTRIBUTION} 0.1.0 is installed already" in refused.stderr
    assert f"zoo uninstall {DISTRIBUTION}" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / NAME).exists()


def test_install_of_the_same_distribution_from_elsewhere_says_what_it_replaced(
    site: Path, plugin_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere" / NAME
    shutil.copytree(plugin_dir, other, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    installed = run_zoo("install", "-U", "--no-cache-dir", str(other), site=copy, **pip_into(copy))
    assert installed.returncode == 0, installed.stderr
    assert (
        f"Replaced plugin {NAME} ({DISTRIBUTION} 0.1.0) from {plugin_dir} with "
        f"{NAME} ({DISTRIBUTION} 0.1.0) from {other}." in installed.stdout
    ), installed.stdout
    assert "No zoo plugin was added or updated" not in installed.stdout


def test_zoo_trains_with_the_plugins_activation(
    site: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    """On the real MNIST where ``ZOO_DATA_DIR`` has it, else on the small one."""
    data_dir, dataset = os.environ.get("ZOO_DATA_DIR", ""), []
    raw = Path(data_dir) / "MNIST" / "raw"
    if not data_dir or not all((raw / name).is_file() for name in MNIST_FILES):
        data_dir, dataset = str(tiny_mnist), ["--dataset", "mnist:val_size=100"]
    trained = run_zoo(
        "train", "--act", f"{NAME}-swish", *dataset, "--max-steps", "20",
        "--output-dir", str(tmp_path), "--json",
        site=site, ZOO_DATA_DIR=data_dir, OMP_NUM_THREADS="1",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["act"] == f"{NAME}-swish"
    config = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    assert config["components"]["act"]["distribution"] == DISTRIBUTION


def test_the_plugins_command_runs(site: Path) -> None:
    curve = run_zoo(NAME, "--range", "0", "1", "--points", "2", site=site)
    assert curve.returncode == 0, curve.stderr
    assert curve.stdout.splitlines()[1].split() == ["0.000", "0.0000", "0.5000"]


def test_the_generated_plugins_own_tests_pass(site: Path, plugin_dir: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=plugin_dir,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert " passed" in completed.stdout and "skipped" not in completed.stdout


#: Whether the tests run in a virtual environment, where pip uninstalls only what lies inside it.
IN_VENV = sys.prefix != sys.base_prefix


@pytest.fixture
def removable_site(site: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of ``site`` that pip may uninstall from: in a virtual environment it must lie
    inside the environment (pip leaves anything outside it), so the copy goes there, and is
    removed after; in the machine's own Python anywhere will do."""
    copy = Path(sys.prefix) / f"zoo-test-site-{os.getpid()}" if IN_VENV else tmp_path / "site"
    shutil.copytree(site, copy)
    try:
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)


@pytest.mark.skipif(not IN_VENV, reason="outside a virtual environment pip uninstalls anywhere")
def test_uninstall_names_the_plugin_pip_leaves_outside_the_venv(site: Path, tmp_path: Path) -> None:
    outside = tmp_path / "site"
    shutil.copytree(site, outside)
    completed = run_zoo("uninstall", "-y", DISTRIBUTION, site=outside)
    assert completed.returncode == 1, completed.stderr
    assert f"Not removed: plugin {NAME} ({DISTRIBUTION} 0.1.0) in {outside}" in completed.stderr
    assert (outside / MODULE).is_dir()


def test_uninstall_asks_then_removes_the_plugin(removable_site: Path) -> None:
    copy = removable_site
    declined = run_zoo("uninstall", DISTRIBUTION, site=copy, stdin="n\n")
    assert declined.returncode == 1
    assert f"removing the zoo plugin {NAME} ({DISTRIBUTION} 0.1.0)?" in declined.stderr
    assert (copy / MODULE).is_dir()

    removed = run_zoo("uninstall", "-y", DISTRIBUTION, site=copy)
    assert removed.returncode == 0, removed.stderr
    assert f"Removed plugin {NAME} ({DISTRIBUTION} 0.1.0)." in removed.stdout
    assert not (copy / MODULE).exists()
    listed = json.loads(run_zoo("plugins", "--json", site=copy).stdout)
    assert NAME not in [p["name"] for p in listed]


# -- refusals and failures -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lightning-zoo", "Lightning_Zoo", "lightning.zoo==0.1.0"])
def test_uninstall_refuses_lightning_zoo_itself(name: str) -> None:
    for args in (["uninstall", name], ["uninstall", "-y", "zoo-snake", name]):
        refused = run_zoo(*args)
        assert refused.returncode == 2
        assert "does not remove lightning-zoo itself" in refused.stderr
        assert "pip uninstall lightning-zoo" in refused.stderr


def test_install_of_a_missing_path_fails_with_pips_exit(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-plugin"
    failed = run_zoo("install", str(missing), **pip_into(tmp_path / "site"))
    assert failed.returncode == 1
    assert "no-such-plugin" in failed.stderr  # pip's own message, passed through
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: pip failed (exit ") and "Traceback" not in failed.stderr
    assert failed.stdout == ""


def test_install_without_packages_is_a_usage_error() -> None:
    refused = run_zoo("install")
    assert refused.returncode == 2
    assert "nothing to install" in refused.stderr


def test_the_template_ships_in_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("lightning_zoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    from zoo.tools.scaffold import TEMPLATE_FILES

    for template in TEMPLATE_FILES.values():
        assert f"zoo/tools/templates/plugin/{template}" in names, template
