"""Third-party plugins installed for real: the zoo-snake example, broken plugins, load control.

Plugins are installed into a temporary site directory (pip --target, or a hand-written
.dist-info for the broken ones) and used from the CLI in subprocesses with PYTHONPATH set, as a
user who ran `pip install` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo
from tests.cli_helpers import run_zoo

ROOT = Path(__file__).resolve().parents[2]
SNAKE = ROOT / "examples" / "zoo-snake"


def install_fake_distribution(site: Path, dist: str, module: str, code: str) -> None:
    """What `pip install` leaves behind: the module and a .dist-info with the entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[zoo]\n{module} = {module}\n")


@pytest.fixture(scope="module")
def snake_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zoo-snake installed with pip into a directory of its own."""
    site = tmp_path_factory.mktemp("snake-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--target",
            str(site),
            str(SNAKE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("broken-site")
    install_fake_distribution(
        site, "zoo-badimport", "zoo_badimport", "import a_module_that_does_not_exist\n"
    )
    install_fake_distribution(
        site,
        "zoo-typo",
        "zoo_typo",
        """
        import zoo

        @zoo.hookimpl
        def register_activation(register):  # misspelled: the hook is register_activations
            register("typo", "torch.nn:ReLU", summary="never registered")
        """,
    )
    install_fake_distribution(
        site,
        "zoo-badargs",
        "zoo_badargs",
        """
        import zoo

        @zoo.hookimpl
        def register_activations(register, device):  # the spec has no `device`
            register("badargs", "torch.nn:ReLU", summary="never registered")
        """,
    )
    install_fake_distribution(
        site,
        "zoo-halfway",
        "zoo_halfway",
        """
        import zoo

        @zoo.hookimpl
        def register_activations(register):
            register("halfway", "torch.nn:ReLU", summary="registered, then the hook fails")
            raise RuntimeError("boom")
        """,
    )
    install_fake_distribution(
        site,
        "zoo-clash",
        "zoo_clash",
        """
        import zoo

        @zoo.hookimpl
        def register_activations(register):
            register("ReLU", "torch.nn:ReLU6", summary="tries to take relu")
            register("clashfree", "torch.nn:Tanh", summary="a name nobody else has")
        """,
    )
    return site


# -- a real third-party package: examples/zoo-snake ------------------------------------------


def test_installed_plugin_is_listed_with_its_distribution(snake_site: Path) -> None:
    listed = run_zoo("list", "activations", "snake", site=snake_site)
    assert listed.returncode == 0, listed.stderr
    assert "snake" in listed.stdout and "zoo-snake 0.1.0" in listed.stdout

    plugins = json.loads(run_zoo("plugins", "--json", site=snake_site).stdout)
    snake = next(p for p in plugins if p["name"] == "snake")
    assert (snake["distribution"], snake["version"], snake["status"]) == (
        "zoo-snake",
        "0.1.0",
        "loaded",
    )
    assert snake["registered"]["activations"] == ["snake"]
    assert snake["registered"]["commands"] == ["snake"]


def test_installed_plugin_trains_and_its_command_runs(
    snake_site: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    trained = run_zoo(
        "train", "--act", "snake:a=0.5", "--dataset", "mnist:val_size=100", "--epochs", "1",
        "--data-dir", str(tiny_mnist), "--output-dir", str(tmp_path), "--json",
        site=snake_site,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["act"] == "snake:a=0.5"
    assert result["test_acc"] > 0.5
    config = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    assert config["components"]["act"]["distribution"] == "zoo-snake"
    assert config["components"]["act"]["version"] == "0.1.0"

    helped = run_zoo("--help", site=snake_site)
    assert "Commands from plugin snake" in helped.stdout
    curve = run_zoo("snake", "--range", "0", "1", "--points", "2", site=snake_site)
    assert curve.returncode == 0, curve.stderr
    assert curve.stdout.splitlines()[1].split() == ["0.000", "0.0000", "1.0000"]


def test_the_example_plugins_own_tests_pass(snake_site: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(snake_site)}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=SNAKE,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert " passed" in completed.stdout


# -- broken plugins are isolated ---------------------------------------------------------------


def test_broken_plugins_do_not_break_the_cli(broken_site: Path) -> None:
    helped = run_zoo("--help", site=broken_site)
    assert helped.returncode == 0
    warnings = [
        line
        for line in helped.stderr.splitlines()
        if line.startswith("zoo: warning") and " s to import;" not in line  # a slow machine
    ]
    for dist, error in (
        ("zoo-badimport 1.0", "ModuleNotFoundError"),
        ("zoo-typo 1.0", "register_activation"),
        ("zoo-badargs 1.0", "device"),
        ("zoo-halfway 1.0", "RuntimeError: boom"),
        ("zoo-clash 1.0", "registered twice"),
    ):
        assert any(dist in line and error in line for line in warnings), (dist, warnings)
    assert len(warnings) == 5


def test_zoo_plugins_shows_each_failure(broken_site: Path) -> None:
    listed = run_zoo("plugins", "--json", site=broken_site)
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    for name in ("zoo_badimport", "zoo_typo", "zoo_badargs", "zoo_halfway"):
        assert plugins[name]["status"] == "failed"
        assert plugins[name]["error"]
    assert "register_activation" in plugins["zoo_typo"]["error"]
    # The conflict rule: the first registration (the built-in) keeps the name.
    clash = plugins["zoo_clash"]
    assert clash["status"] == "loaded"
    assert clash["registered"]["activations"] == ["clashfree"]
    assert "'activations'" in clash["rejected"][0] and "'zoo_clash'" in clash["rejected"][0]


def test_failed_plugins_leave_nothing_registered(broken_site: Path) -> None:
    listed = run_zoo("list", "activations", "--json", site=broken_site)
    names = {row["name"]: row for row in json.loads(listed.stdout)}
    assert "halfway" not in names and "typo" not in names and "badargs" not in names
    assert names["relu"]["source"] == "built-in"
    assert names["clashfree"]["source"] == "zoo-clash 1.0"


def test_builtins_still_train_next_to_broken_plugins(
    broken_site: Path, tiny_mnist: Path, tmp_path: Path
) -> None:
    trained = run_zoo(
        "train", "--dataset", "mnist:val_size=100", "--max-steps", "3", "--data-dir",
        str(tiny_mnist), "--output-dir", str(tmp_path), "--json", site=broken_site,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["steps"] == 3


@pytest.mark.parametrize("strict", [["--strict-plugins"], []])
def test_strict_mode_turns_failures_into_an_exit(broken_site: Path, strict: list[str]) -> None:
    env = {} if strict else {"ZOO_STRICT_PLUGINS": "1"}
    completed = run_zoo(*strict, "list", site=broken_site, **env)
    assert completed.returncode == 1
    assert "zoo-" in completed.stderr and "Traceback" not in completed.stderr


# -- load control ----------------------------------------------------------------------------


def test_autoload_can_be_disabled(snake_site: Path) -> None:
    listed = run_zoo("list", "activations", "snake", site=snake_site,
                     ZOO_DISABLE_PLUGIN_AUTOLOAD="1")  # fmt: skip
    assert "none match" in listed.stdout


def test_allowlist_of_entry_points(broken_site: Path) -> None:
    listed = run_zoo("plugins", "--json", site=broken_site, ZOO_PLUGINS="zoo_clash")
    assert listed.stderr.count("zoo: warning") == 1  # only zoo_clash loaded (and its conflict)
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["zoo_clash"]["status"] == "loaded"
    assert plugins["zoo_badimport"]["status"] == "blocked"
    assert plugins["mnist"]["status"] == "loaded"  # the allowlist is for entry points


def test_block_a_builtin_and_load_a_file(tmp_path: Path) -> None:
    plugin_file = tmp_path / "my_acts.py"
    plugin_file.write_text(
        textwrap.dedent(
            """
            import zoo

            @zoo.hookimpl
            def register_activations(register):
                register("cube", "torch.nn:Identity", summary="from a file")
            """
        )
    )
    listed = run_zoo("-p", str(plugin_file), "-p", "no:mnist", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {(row["kind"], row["name"]): row for row in json.loads(listed.stdout)}
    assert ("activation", "cube") in names
    assert names[("activation", "cube")]["plugin"] == "my_acts"
    assert ("dataset", "mnist") not in names

    trained = run_zoo("-p", "no:mnist", "train", "--dataset", "mnist")
    assert trained.returncode == 2
    assert "unknown dataset 'mnist'" in trained.stderr


def test_load_a_module_by_import_name(tmp_path: Path) -> None:
    (tmp_path / "lab_plugin.py").write_text(
        "import zoo\n\n@zoo.hookimpl\ndef register_architectures(register):\n"
        "    register('lab-net', 'zoo.plugins.mlp:build_mlp', summary='an alias of mlp')\n"
    )
    listed = run_zoo("-p", "lab_plugin", "list", "architectures", site=tmp_path,
                     ZOO_DISABLE_PLUGIN_AUTOLOAD="1")  # fmt: skip
    assert "lab-net" in listed.stdout and "lab_plugin" in listed.stdout


def test_library_controls() -> None:
    try:
        zoo.configure_plugins(block=["mnist", "datasets"], autoload=False)
        assert zoo.list_datasets() == []
        statuses = {p.name: p.status for p in zoo.list_plugins()}
        assert statuses["mnist"] == statuses["datasets"] == "blocked"
        assert statuses["activations"] == statuses["mlp"] == "loaded"
        with pytest.raises(zoo.PluginError, match="missing_plugin_module"):
            zoo.configure_plugins(plugins=["missing_plugin_module"], strict=True)
    finally:
        zoo.configure_plugins()
    assert "mnist" in [d.name for d in zoo.list_datasets()]
