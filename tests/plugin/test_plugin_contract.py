"""The plugin author's contract, through the real `zoo` command: validation of hooks, aliases,
stdout, import time, debugging a hang, hints for missing components, --requirements.

Each test writes its plugins into tmp_path: `.py` files loaded with `-p`, or modules with a
hand-written `.dist-info` (what `pip install` leaves) on PYTHONPATH, so that importlib.metadata
finds a distribution. Component and plugin names are ones no real plugin uses, and assertions
are about those plugins only, so the tests pass whatever else is installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import zoo
from tests.cli_helpers import popen_command, run_zoo, zoo_env
from zoo.plugin import hookspecs

#: The hooks zoo has: what an "unknown hook" message must list, and nothing else.
REAL_HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("register_"))

WIGGLE = """
    import zoo

    def wiggle(amount: float = 1.0):
        from torch import nn

        return nn.Tanh()

    @zoo.hookimpl
    def register_activations(register):
        register("wiggle", wiggle, summary="a test activation")
    """


def write_plugin(directory: Path, name: str, code: str) -> Path:
    """A plugin file ``name.py`` for ``zoo -p``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(code))
    return path


def install_distribution(
    site: Path,
    dist: str,
    module: str,
    code: str,
    *,
    version: str = "1.0",
    entry_point: str | None = None,
    direct_url: dict | None = None,
) -> None:
    """What `pip install` leaves in ``site``: the module, and a .dist-info with the entry point
    (and ``direct_url.json`` for a distribution installed from a path or URL)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[zoo]\n{entry_point or module} = {module}\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))


def warnings_of(completed: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in completed.stderr.splitlines() if line.startswith("zoo: warning:")]


def plugins_json(*args: str, site: Path | None = None, **env: str) -> dict[str, dict]:
    completed = run_zoo(*args, "plugins", "--json", site=site, **env)
    assert completed.returncode == 0, completed.stderr
    return {p["name"]: p for p in json.loads(completed.stdout)}


def assert_strict_failure(args: list[str], expected: str, site: Path | None = None) -> None:
    """With --strict-plugins and with ZOO_STRICT_PLUGINS=1: exit 1, the message, no traceback."""
    for flag, env in ((["--strict-plugins"], {}), ([], {"ZOO_STRICT_PLUGINS": "1"})):
        completed = run_zoo(*flag, *args, site=site, **env)
        assert completed.returncode == 1, (flag, completed.stderr)
        assert expected in completed.stderr, (flag, completed.stderr)
        assert "Traceback" not in completed.stderr


# -- validation ------------------------------------------------------------------------------


def test_misspelled_hook_lists_only_the_real_hooks_and_suggests_the_closest(
    tmp_path: Path,
) -> None:
    typo = write_plugin(tmp_path, "typo", """
        import zoo

        @zoo.hookimpl
        def register_activation(register):
            register("typo", "torch.nn:ReLU", summary="never registered")
        """)  # fmt: skip
    other = write_plugin(tmp_path, "othertypo", """
        import zoo

        @zoo.hookimpl
        def register_datasts(register):
            pass
        """)  # fmt: skip
    completed = run_zoo("-p", str(typo), "-p", str(other), "list", "activations", "typo")
    assert completed.returncode == 0, completed.stderr
    first, second = warnings_of(completed)
    assert first.startswith(
        f"zoo: warning: plugin 'typo' ({typo}) is invalid: unknown hook 'register_activation'; "
        "did you mean 'register_activations'? (the hooks are: "
    )
    assert "did you mean 'register_datasets'?" in second
    for warning in (first, second):
        listed = re.search(r"\(the hooks are: ([^)]*)\)", warning).group(1).split(", ")
        assert listed == REAL_HOOKS  # not the misspelled names pluggy made callers for
        assert warning.endswith("; skipped (see `zoo plugins`)")
    assert "none match" in completed.stdout

    plugins = plugins_json("-p", str(typo))
    assert plugins["typo"]["status"] == "failed"
    assert "did you mean 'register_activations'?" in plugins["typo"]["error"]
    assert_strict_failure(
        ["-p", str(typo), "list"],
        f"Error: plugin 'typo' ({typo}) is invalid: unknown hook 'register_activation'; "
        "did you mean 'register_activations'?",
    )


def test_hook_argument_zoo_does_not_pass(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path, "badargs", """
        import zoo

        @zoo.hookimpl
        def register_activations(register, device):
            pass
        """)  # fmt: skip
    completed = run_zoo("-p", str(plugin), "list", "activations", "relu")
    assert completed.returncode == 0
    (warning,) = warnings_of(completed)
    assert (
        "is invalid: hook 'register_activations' takes 'device', which zoo does not pass "
        "(it passes 'register')"
    ) in warning
    assert_strict_failure(["-p", str(plugin), "list"], "takes 'device', which zoo does not pass")


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        (
            "def register_activations(register):\n"
            "    register('unmarked', 'torch.nn:ReLU', summary='not marked')\n",
            " (register_activations is not)",
        ),
        ("VALUE = 1\n", ""),
    ],
    ids=["unmarked-function", "empty-module"],
)
def test_plugin_that_implements_no_hook(tmp_path: Path, code: str, detail: str) -> None:
    plugin = write_plugin(tmp_path, "hookless", code)
    expected = (
        f"plugin 'hookless' ({plugin}) registered nothing: are its functions marked "
        f"@zoo.hookimpl?{detail}"
    )
    completed = run_zoo("-p", str(plugin), "list", "activations", "unmarked")
    assert completed.returncode == 0, completed.stderr
    assert warnings_of(completed) == [f"zoo: warning: {expected}"]
    hookless = plugins_json("-p", str(plugin))["hookless"]
    assert hookless["status"] == "loaded"
    assert hookless["warnings"] == [expected.split(") ", 1)[1]]
    table = run_zoo("-p", str(plugin), "plugins").stdout
    (line,) = [line for line in table.splitlines() if line.startswith("hookless ")]
    assert line.endswith("registered nothing: are its functions marked @zoo.hookimpl?" + detail)
    assert_strict_failure(["-p", str(plugin), "list"], f"Error: {expected}")


def test_installed_plugin_with_no_hooks_is_named_with_its_distribution(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_distribution(site, "zoo-hookless", "zoo_hookless", "X = 1\n")
    completed = run_zoo("list", "activations", "relu", site=site)
    assert completed.returncode == 0
    assert (
        "zoo: warning: plugin 'zoo_hookless' (zoo-hookless 1.0) registered nothing: are its "
        "functions marked @zoo.hookimpl?"
    ) in warnings_of(completed)


def test_register_plugin_with_no_hooks_raises() -> None:
    class Nothing:
        pass

    with pytest.raises(zoo.PluginError, match="registered nothing: are its functions marked"):
        zoo.register_plugin(Nothing(), name="zoo-test-nothing")
    assert "zoo-test-nothing" not in {p.name for p in zoo.list_plugins()}


# -- conflicts -------------------------------------------------------------------------------


def test_alias_conflict_names_the_alias_and_keeps_the_component(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path, "mysilu", """
        import zoo

        @zoo.hookimpl
        def register_activations(register):
            register("mysilu", "torch.nn:SiLU", summary="silu again", aliases=("swish", "my-swish"))
        """)  # fmt: skip
    message = (
        "alias 'swish' of activation 'mysilu' is taken by plugin 'activations' (as 'silu'); "
        "activation 'mysilu' is registered without it."
    )
    completed = run_zoo("-p", str(plugin), "list", "activations", "--json")
    assert completed.returncode == 0, completed.stderr
    assert warnings_of(completed) == [f"zoo: warning: plugin 'mysilu' ({plugin}): {message}"]
    rows = {row["name"]: row for row in json.loads(completed.stdout)}
    assert rows["mysilu"]["aliases"] == ["my-swish"]
    assert rows["mysilu"]["plugin"] == "mysilu"
    assert rows["silu"]["aliases"] == ["swish"] and rows["silu"]["plugin"] == "activations"

    mysilu = plugins_json("-p", str(plugin))["mysilu"]
    assert (mysilu["status"], mysilu["registered"]["activations"]) == ("loaded", ["mysilu"])
    assert mysilu["rejected"] == [message]
    assert_strict_failure(
        ["-p", str(plugin), "list"],
        f"Error: plugin 'mysilu' ({plugin}): alias 'swish' of activation 'mysilu' is taken by "
        "plugin 'activations' (as 'silu'). Block one of the plugins with `zoo -p no:PLUGIN`, or "
        "drop --strict-plugins to register activation 'mysilu' without that alias.",
    )


def test_registry_alias_rule() -> None:
    """Registry.add itself: a taken alias raises unless ``alias_taken`` is given; then the
    component is added without it."""
    from zoo.plugin.registry import Registry

    registry = Registry()
    registry.registrar("activation", "first")(
        "silu", "torch.nn:SiLU", summary="x", aliases=["swish"]
    )
    with pytest.raises(zoo.DuplicateComponentError, match="alias 'swish' of activation 'mine'"):
        registry.registrar("activation", "second")(
            "mine", "torch.nn:SiLU", summary="x", aliases=["swish"]
        )
    assert [c.name for c in registry.components("activation")] == ["silu"]
    taken: list[str] = []
    register = registry.registrar(
        "activation", "second", alias_taken=lambda e: taken.append(str(e))
    )
    register("mine", "torch.nn:SiLU", summary="x", aliases=["swish", "mine2"])
    assert taken == ["alias 'swish' of activation 'mine' is taken by plugin 'first' (as 'silu')"]
    assert registry.get("activation", "mine2").aliases == ("mine2",)
    assert registry.get("activation", "swish").plugin == "first"


def test_main_name_conflict_rejects_only_that_component(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path, "clash", """
        import zoo

        @zoo.hookimpl
        def register_activations(register):
            register("ReLU", "torch.nn:ReLU6", summary="takes relu", aliases=("clash-relu",))
            register("clashfree", "torch.nn:Tanh", summary="a free name")
        """)  # fmt: skip
    completed = run_zoo("-p", str(plugin), "list", "activations", "--json")
    (warning,) = warnings_of(completed)
    assert (
        f"plugin 'clash' ({plugin}): activation 'ReLU' is registered twice: by plugin "
        "'activations' (as 'relu') and by plugin 'clash'."
    ) in warning
    assert warning.endswith("The first registration is kept.")
    rows = {row["name"]: row for row in json.loads(completed.stdout)}
    assert rows["relu"]["plugin"] == "activations" and rows["clashfree"]["plugin"] == "clash"
    assert not any("clash-relu" in row["aliases"] for row in rows.values())
    assert_strict_failure(["-p", str(plugin), "list"], "activation 'ReLU' is registered twice")


# -- stdout belongs to zoo -------------------------------------------------------------------

CHATTY = """
    import zoo

    print("chatty: hello at import")

    @zoo.hookimpl
    def register_activations(register):
        print("chatty: hello from the hook")
        register("chatty", "torch.nn:Tanh", summary="prints")

    @zoo.hookimpl
    def register_commands(cli):
        print("chatty: hello from register_commands")
    """


def test_what_a_plugin_prints_goes_to_stderr(tmp_path: Path, tiny_mnist: Path) -> None:
    site = tmp_path / "site"
    install_distribution(site, "zoo-chatty", "zoo_chatty", CHATTY)
    plugin = write_plugin(tmp_path, "chatty_file", CHATTY.replace('"chatty"', '"chatty2"'))
    listed = run_zoo("-p", str(plugin), "list", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    names = {row["name"] for row in json.loads(listed.stdout)}  # stdout is JSON and only that
    assert {"chatty", "chatty2"} <= names
    for text in ("hello at import", "hello from the hook", "hello from register_commands"):
        assert listed.stderr.count(f"chatty: {text}") == 2, listed.stderr

    plugins = run_zoo("plugins", "--json", site=site)
    assert json.loads(plugins.stdout)
    trained = run_zoo(
        "train", "--act", "chatty", "--dataset", "mnist:val_size=100", "--max-steps", "2",
        "--data-dir", str(tiny_mnist), "--output-dir", str(tmp_path / "runs"), "--json",
        site=site,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["act"] == "chatty"
    assert "chatty: hello at import" in trained.stderr


# -- import time and debugging -----------------------------------------------------------------


def test_load_time_is_recorded_and_shown(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path, "quick", WIGGLE)
    plugins = plugins_json("-p", str(plugin), "-p", "no:cnn")
    for info in plugins.values():
        if info["status"] == "blocked":
            assert info["load_seconds"] is None
        else:
            assert isinstance(info["load_seconds"], float) and info["load_seconds"] >= 0
    assert plugins["cnn"]["load_seconds"] is None
    table = run_zoo("-p", str(plugin), "plugins").stdout
    line = next(line for line in table.splitlines() if line.startswith("quick "))
    assert re.search(r" loaded\S*\s+\d+\.\d\d s  activations: wiggle$", line), line


def test_slow_plugin_is_named_by_help_and_list(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_distribution(
        site, "slow-dist", "zoo_slow", "import time\ntime.sleep(1.3)\n" + textwrap.dedent(WIGGLE),
        version="0.1", entry_point="slow",
    )  # fmt: skip
    pattern = re.compile(
        r"^zoo: warning: plugin 'slow' \(slow-dist 0\.1\) took (\d+\.\d) s to import; "
        r"every zoo command waits for it\. Block it with `zoo -p no:slow`"
    )
    for args in (["--help"], ["list", "activations", "wiggle"]):
        completed = run_zoo(*args, site=site)
        assert completed.returncode == 0, completed.stderr
        found = [m for m in map(pattern.match, warnings_of(completed)) if m]
        assert len(found) == 1, (args, completed.stderr)
        assert float(found[0].group(1)) >= 1.2
    assert plugins_json(site=site)["slow"]["load_seconds"] >= 1.3
    assert not warnings_of(run_zoo("plugins", site=site))  # the table shows the time instead


def test_debug_names_each_plugin_as_it_loads() -> None:
    completed = run_zoo("list", "activations", "relu", ZOO_DEBUG_PLUGINS="1")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.splitlines()
    start = lines.index("zoo: debug: loading plugin 'mnist' (built-in) ...")
    assert re.fullmatch(r"zoo: debug: plugin 'mnist' loaded after \d+\.\d\d s", lines[start + 1])
    blocked = run_zoo("-p", "no:cnn", "list", "activations", "relu", ZOO_DEBUG_PLUGINS="1")
    assert "zoo: debug: plugin 'cnn' (built-in): blocked with -p no:NAME" in blocked.stderr


def test_debug_names_the_plugin_that_hangs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_distribution(site, "zoo-hang", "zoo_hang", "import time\ntime.sleep(600)\n")
    process = popen_command(
        [sys.executable, "-m", "zoo", "list"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=zoo_env(site, ZOO_DEBUG_PLUGINS="1"),
    )
    watchdog = threading.Timer(120, process.kill)  # what a CI timeout would do
    watchdog.start()
    seen: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line.rstrip("\n"))
            if "zoo_hang" in line:
                break
    finally:
        process.kill()
        process.wait()
        watchdog.cancel()
    assert seen[-1] == "zoo: debug: loading plugin 'zoo_hang' (zoo-hang 1.0) ...", seen
    assert any(re.fullmatch(r"zoo: debug: plugin 'loggers' loaded after .* s", s) for s in seen)


# -- hints for missing components ------------------------------------------------------------


def test_unknown_component_of_a_plugin_that_failed_to_load(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_distribution(
        site, "zoo-wiggle", "zoo_wiggle", "import zoo_test_module_that_is_not_there\n",
        entry_point="wiggle",
    )  # fmt: skip
    completed = run_zoo("train", "--act", "wiggle", site=site)
    assert completed.returncode == 2
    assert (
        "Error: Invalid value for '--act': unknown activation 'wiggle'. It may come from plugin "
        "'wiggle' (zoo-wiggle 1.0), which is installed but failed to load: ModuleNotFoundError: "
        "No module named 'zoo_test_module_that_is_not_there'. Run 'zoo list activations'"
    ) in completed.stderr
    assert "pip install" not in completed.stderr and "Traceback" not in completed.stderr

    other = run_zoo("train", "--act", "zoo-test-nothing-has-this", site=site)
    assert other.returncode == 2
    assert "Plugins that failed to load may provide it: 'wiggle' (zoo-wiggle 1.0)" in other.stderr


def test_unknown_component_of_a_blocked_plugin() -> None:
    completed = run_zoo("-p", "no:mnist", "train", "--dataset", "mnist")
    assert completed.returncode == 2
    assert (
        "unknown dataset 'mnist'. Did you mean 'kmnist', 'fashion-mnist' or 'emnist'? It may "
        "come from plugin 'mnist' (built-in), which is not loaded: blocked with -p no:NAME."
    ) in completed.stderr


@pytest.fixture(scope="module")
def wiggle_run(tmp_path_factory: pytest.TempPathFactory, tiny_mnist: Path) -> tuple[Path, Path]:
    """A run trained with activation 'wiggle' of zoo-wiggle, installed from a local path: the
    run directory and that path."""
    tmp_path = tmp_path_factory.mktemp("wiggle-run")
    source = tmp_path / "src" / "zoo-wiggle"
    source.mkdir(parents=True)
    site = tmp_path / "site"
    install_distribution(
        site, "zoo-wiggle", "zoo_wiggle", WIGGLE, entry_point="wiggle",
        direct_url={"url": source.as_uri(), "dir_info": {}},
    )  # fmt: skip
    trained = run_zoo(
        "train", "--act", "wiggle", "--dataset", "mnist:val_size=100", "--max-steps", "1",
        "--data-dir", str(tiny_mnist), "--output-dir", str(tmp_path / "runs"), "--json",
        site=site,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return Path(json.loads(trained.stdout)["run_dir"]), source


def _evaluate_fails(target: Path, site: Path | None = None) -> str:
    completed = run_zoo("evaluate", str(target), site=site)
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "needs activation 'wiggle', which no loaded plugin provides." in completed.stderr
    return completed.stderr


def _with_origin(run_dir: Path, tmp_path: Path, origin: dict) -> Path:
    """A copy of the run's checkpoint that records another origin for its activation."""
    import torch

    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["zoo"]["components"]["act"] = origin
    path = tmp_path / "other-origin.ckpt"
    torch.save(checkpoint, path)
    return path


def test_run_of_a_distribution_installed_from_a_path(
    wiggle_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, source = wiggle_run
    recorded = json.loads((run_dir / "config.json").read_text())["components"]["act"]
    assert (recorded["plugin"], recorded["distribution"], recorded["version"]) == (
        "wiggle",
        "zoo-wiggle",
        "1.0",
    )
    assert (recorded["path"], recorded["url"]) == (str(source), source.as_uri())

    missing = _evaluate_fails(run_dir)  # not installed here
    assert (
        "It came from plugin 'wiggle' of the distribution zoo-wiggle 1.0, which is not "
        f"installed: pip install {source}."
    ) in missing

    broken = tmp_path / "broken-site"
    install_distribution(
        broken, "zoo-wiggle", "zoo_wiggle", "raise ImportError('wiggle needs numpy 3')\n",
        entry_point="wiggle",
    )  # fmt: skip
    failed = _evaluate_fails(run_dir, site=broken)
    assert (
        "It came from plugin 'wiggle' of the distribution zoo-wiggle 1.0, which is installed "
        "but failed to load: ImportError: wiggle needs numpy 3."
    ) in failed
    assert "pip install" not in failed


def test_run_of_a_distribution_from_an_index(wiggle_run: tuple[Path, Path], tmp_path: Path) -> None:
    origin = {"name": "wiggle", "plugin": "wiggle", "distribution": "zoo-wiggle", "version": "1.0"}
    message = _evaluate_fails(_with_origin(wiggle_run[0], tmp_path, origin))
    assert (
        "It came from plugin 'wiggle' of the distribution zoo-wiggle 1.0, which is not "
        "installed: pip install zoo-wiggle."
    ) in message


def test_run_of_a_file_plugin_names_the_file(wiggle_run: tuple[Path, Path], tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "lab", "wiggle_acts", WIGGLE)
    info = plugins_json("-p", str(plugin))["wiggle_acts"]
    assert (info["path"], info["distribution"]) == (str(plugin), None)
    origin = {"name": "wiggle", "plugin": "wiggle_acts", "distribution": None, "version": None}
    origin |= {"module": str(plugin), "path": info["path"], "url": None}
    message = _evaluate_fails(_with_origin(wiggle_run[0], tmp_path, origin))
    assert (
        f"It came from plugin 'wiggle_acts', loaded with `zoo -p {plugin}`; load it again: "
        f"zoo -p {plugin} ..."
    ) in message
    assert "pip install" not in message


# -- zoo plugins --requirements ----------------------------------------------------------------


def test_requirements_of_the_installed_plugins(tmp_path: Path) -> None:
    site = tmp_path / "site"
    local = tmp_path / "projects" / "zoo-local"
    install_distribution(site, "zoo-plain", "zoo_plain", WIGGLE, version="2.1")
    install_distribution(
        site, "zoo-local", "zoo_local", "X = 1\n",
        direct_url={"url": local.as_uri(), "dir_info": {"editable": True}},
    )  # fmt: skip
    install_distribution(
        site, "zoo-vcs", "zoo_vcs", "import zoo_test_module_that_is_not_there\n",
        direct_url={
            "url": "https://example.org/zoo-vcs.git",
            "vcs_info": {"vcs": "git", "commit_id": "0123abc"},
        },
    )  # fmt: skip
    for env in ({}, {"ZOO_DISABLE_PLUGIN_AUTOLOAD": "1"}):
        completed = run_zoo("plugins", "--requirements", site=site, **env)
        assert completed.returncode == 0, completed.stderr
        lines = completed.stdout.splitlines()
        assert "zoo-plain==2.1" in lines
        assert f"zoo-local @ {local.as_uri()}" in lines
        assert "zoo-vcs @ git+https://example.org/zoo-vcs.git@0123abc" in lines  # failed, installed
        assert not any(line.startswith(("lightning-zoo", "mnist")) for line in lines)

    plugins = plugins_json(site=site)
    assert plugins["zoo_local"]["url"] == local.as_uri()
    assert plugins["zoo_local"]["path"] == str(local)
    assert plugins["zoo_plain"]["url"] is None

    both = run_zoo("plugins", "--requirements", "--json", site=site)
    assert both.returncode == 2 and "drop --json" in both.stderr
