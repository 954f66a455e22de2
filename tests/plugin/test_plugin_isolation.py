"""Plugin code cannot break zoo: what it writes to file descriptor 1 goes to stderr (``--json``
stays valid), and an installed or ``-p`` plugin whose import or hook hangs is named and skipped
after ``ZOO_PLUGIN_TIMEOUT`` seconds. Real ``zoo`` processes, real plugins on PYTHONPATH."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.plugin.test_plugin_contract import install_distribution, run_zoo, write_plugin

FD_WRITER = """
import os
import zoo
from torch import nn

os.write(1, b"fdwriter: at import\\n")


class LoudTanh(nn.Tanh):
    def forward(self, x):
        os.write(1, b"fdwriter: in forward\\n")
        return super().forward(x)


@zoo.hookimpl
def register_activations(register):
    os.write(1, b"fdwriter: in register_activations\\n")
    register("fdwriter", LoudTanh, summary="tanh, from a plugin that writes to fd 1")


@zoo.hookimpl
def register_commands(cli):
    os.write(1, b"fdwriter: in register_commands\\n")
"""

SLEEPY_HOOK = """
import time
import zoo


def drowsy():
    from torch import nn

    return nn.Tanh()


@zoo.hookimpl
def register_activations(register):
    register("drowsy", drowsy, summary="registered before the plugin falls asleep")
    time.sleep(120)
"""


def test_a_plugin_writing_to_fd_1_leaves_json_valid(tmp_path: Path, tiny_mnist: Path) -> None:
    site = tmp_path / "site"
    install_distribution(site, "zoo-fdwriter", "zoo_fdwriter", FD_WRITER)
    listed = run_zoo("list", "activations", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    assert "fdwriter" in {row["name"] for row in json.loads(listed.stdout)}
    for where in ("at import", "in register_activations", "in register_commands"):
        assert f"fdwriter: {where}" in listed.stderr
    trained = run_zoo(
        "train", "--act", "fdwriter", "--dataset", "mnist:val_size=100", "--max-steps", "2",
        "--data-dir", str(tiny_mnist), "--output-dir", str(tmp_path / "runs"), "--json",
        site=site,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["act"] == "fdwriter"
    assert "fdwriter: at import" in trained.stderr
    assert "fdwriter: in forward" in trained.stderr  # while training, too


def test_a_hook_that_hangs_is_named_and_skipped(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install_distribution(site, "zoo-sleepy", "zoo_sleepy", SLEEPY_HOOK)
    started = time.monotonic()
    listed = run_zoo("list", "activations", "--json", site=site, ZOO_PLUGIN_TIMEOUT="1")
    assert time.monotonic() - started < 60
    assert listed.returncode == 0, listed.stderr
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert "relu" in names and "drowsy" not in names  # nothing of it stays registered
    assert (
        "zoo: warning: plugin 'zoo_sleepy' (zoo-sleepy 1.0) timed out: register_activations took "
        "longer than 1 s (ZOO_PLUGIN_TIMEOUT=SECONDS raises the limit); skipped"
    ) in listed.stderr
    plugins = {p["name"]: p for p in json.loads(run_zoo(
        "plugins", "--json", site=site, ZOO_PLUGIN_TIMEOUT="1").stdout)}  # fmt: skip
    assert plugins["zoo_sleepy"]["status"] == "failed"
    assert plugins["zoo_sleepy"]["error"].startswith("timed out: register_activations")

    strict = run_zoo("--strict-plugins", "list", site=site, ZOO_PLUGIN_TIMEOUT="1")
    assert strict.returncode == 1 and "'zoo_sleepy' (zoo-sleepy 1.0) timed out" in strict.stderr
    assert "Traceback" not in strict.stderr


def test_a_plugin_whose_import_hangs_is_named_and_skipped(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path, "stuck", "import time\ntime.sleep(120)\n")
    listed = run_zoo("-p", str(plugin), "list", "activations", "relu", ZOO_PLUGIN_TIMEOUT="1")
    assert listed.returncode == 0, listed.stderr
    assert "plugin 'stuck'" in listed.stderr
    assert "timed out: its import took longer than 1 s" in listed.stderr
    assert "relu" in listed.stdout


def test_a_bad_plugin_timeout_is_a_usage_error() -> None:
    for value in ("soon", "-1", "nan"):
        completed = run_zoo("list", ZOO_PLUGIN_TIMEOUT=value)
        assert completed.returncode == 2, (value, completed.stderr)
        assert f"ZOO_PLUGIN_TIMEOUT={value!r}: expected a number of seconds" in completed.stderr
        assert "Traceback" not in completed.stderr
