"""zoo.processes: a module started from the fork server runs as ``python -m MODULE`` would (its
arguments, environment, folder, streams, exit status and signals), with the heavy modules already
imported; where a fresh interpreter could differ, one is started instead."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from zoo.processes import ForkedProcess, run_module, start_module

PROBE = """
import json, os, sys
if sys.argv[1:2] == ["read"]:
    print(sys.stdin.readline().strip(), flush=True)
    sys.stdin.readline()  # waits: the test signals it
print(json.dumps({
    "argv": sys.argv[1:], "cwd": os.getcwd(), "env": os.environ.get("PROBE"),
    "path": sys.path[:2], "torch_preloaded": "torch" in sys.modules, "main": __name__,
    "warnoptions": sys.warnoptions, "parent": os.getppid(),
}))
print("to stderr", file=sys.stderr)
import torch
print(json.dumps({"threads": torch.get_num_threads()}))
if sys.argv[1:2] == ["exit"]:
    sys.exit(int(sys.argv[2]) if sys.argv[2].isdigit() else sys.argv[2])
if sys.argv[1:2] == ["raise"]:
    raise ValueError("probe failed")
if sys.argv[1:2] == ["nest"]:
    import subprocess
    from zoo.processes import run_module
    code, out, _ = run_module("zoo_probe", [], stdout=subprocess.PIPE, text=True)
    print(out.splitlines()[0])
if sys.argv[1:2] == ["atexit"]:
    import atexit
    atexit.register(lambda: open(sys.argv[2], "w").write("ran"))
"""


@pytest.fixture(scope="module", autouse=True)
def own_servers() -> None:
    """These tests start from no server: the test process's earlier tests may have left as many
    servers as zoo.processes keeps (``MAX_SERVERS``), for environments of their own."""
    from zoo import processes

    with processes._lock:
        for server in processes._servers.values():
            server.retire()
        processes._servers.clear()


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    (site / "zoo_probe.py").write_text(textwrap.dedent(PROBE))
    return site


def env_for(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ZOO_FORKSERVER"}
    return {**env, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", **extra}


def run_probe(site: Path, *args: str, **options) -> tuple[int, list[dict], str]:
    options.setdefault("env", env_for(site))
    code, out, err = run_module("zoo_probe", args, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **options)  # fmt: skip
    return code, [json.loads(line) for line in out.splitlines()], err


def test_a_forked_module_gets_its_arguments_folder_environment_and_path(
    probe_site: Path, tmp_path: Path
) -> None:
    env = env_for(probe_site, PROBE="value")
    code, (seen, threads), err = run_probe(probe_site, "a", "b c", cwd=tmp_path, env=env)
    assert code == 0 and err == "to stderr\n"
    assert seen["torch_preloaded"], "not forked from the server: torch was imported afresh"
    assert seen["argv"] == ["a", "b c"] and seen["main"] == "__main__"
    assert seen["cwd"] == str(tmp_path) and seen["env"] == "value"
    assert seen["path"] == [str(tmp_path), str(probe_site)]  # as ``python -m`` there has it
    assert threads == {"threads": 1}


def test_its_thread_count_follows_its_environment(probe_site: Path) -> None:
    assert run_probe(probe_site, env=env_for(probe_site, OMP_NUM_THREADS="2"))[1][1] == {
        "threads": 2
    }
    assert run_probe(probe_site)[1][1] == {"threads": 1}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [(("exit", "3"), 3, ""), (("exit", "a reason"), 1, "a reason"),
     (("raise",), 1, "ValueError: probe failed")],
)  # fmt: skip
def test_its_exit_status_is_the_interpreters(
    probe_site: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    status, _, err = run_probe(probe_site, *args)
    assert status == code and message in err


def test_a_forked_process_forks_its_own_processes_from_the_same_server(probe_site: Path) -> None:
    code, (seen, _, nested), err = run_probe(probe_site, "nest")
    assert code == 0, err
    assert nested["torch_preloaded"] and nested["parent"] == seen["parent"]  # siblings


def test_its_atexit_handlers_run(probe_site: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    assert run_probe(probe_site, "atexit", str(marker))[0] == 0
    assert marker.read_text() == "ran"


def test_its_stdin_is_a_pipe_and_sigint_interrupts_it(probe_site: Path) -> None:
    process = start_module("zoo_probe", ["read"], env=env_for(probe_site), text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)  # fmt: skip
    assert isinstance(process, ForkedProcess)
    with process:
        process.stdin.write("hello\n")
        process.stdin.flush()
        assert process.stdout.readline() == "hello\n"
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == -signal.SIGINT
        assert "KeyboardInterrupt" in process.stderr.read()


def test_sigkill_ends_it(probe_site: Path) -> None:
    with start_module("zoo_probe", ["read"], env=env_for(probe_site),
                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) as process:  # fmt: skip
        process.kill()
        assert process.wait(timeout=30) == -signal.SIGKILL


def test_zoo_forkserver_0_starts_a_fresh_interpreter(probe_site: Path) -> None:
    env = env_for(probe_site, ZOO_FORKSERVER="0")
    process = start_module("zoo_probe", [], env=env, stdout=subprocess.PIPE, text=True)
    assert isinstance(process, subprocess.Popen)
    with process:
        assert json.loads(process.stdout.readline())["torch_preloaded"] is False


def test_an_environment_the_imports_see_differently_forks_from_a_server_of_its_own(
    probe_site: Path,
) -> None:
    env = env_for(probe_site, PYTHONWARNINGS="default")
    code, (seen, _), _ = run_probe(probe_site, env=env)
    assert code == 0 and seen["torch_preloaded"] and seen["warnoptions"] == ["default"]
    assert run_probe(probe_site)[1][0]["warnoptions"] == []


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads /proc")
def test_the_server_ends_with_the_process_that_started_it(probe_site: Path) -> None:
    script = f"""
import json, subprocess, sys
from zoo.processes import _servers, run_module
run_module("zoo_probe", [], env={env_for(probe_site)!r}, stdout=subprocess.DEVNULL)
print(json.dumps([server.process.pid for server in _servers.values()]))
"""
    started = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=300, check=True)  # fmt: skip
    (pid,) = json.loads(started.stdout)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text()


def test_a_package_installed_after_the_server_started_is_found(
    probe_site: Path, tmp_path: Path
) -> None:
    import site

    assert run_probe(probe_site)[0] == 0  # the server runs
    folder = tmp_path / "installed"
    folder.mkdir()
    (folder / "zoo_probe_installed_later.py").write_text("print('found')\n")
    pth = Path(site.getsitepackages()[0]) / f"zoo-probe-{os.getpid()}.pth"
    try:
        pth.write_text(f"{folder}\n")
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        code, out, err = run_module("zoo_probe_installed_later", env=env_for(probe_site), **pipes)
    finally:
        pth.unlink()
    assert (code, out) == (0, "found\n"), err
    code, _, err = run_module("zoo_probe_installed_later", env=env_for(probe_site),
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert code == 1 and "No module named" in err  # and gone once removed


def test_a_server_prepared_ahead_serves_the_next_process(probe_site: Path) -> None:
    from zoo import processes

    env = env_for(probe_site, PROBE="prepared")
    processes.prepare(env)  # returns at once; the server imports meanwhile
    code, (seen, _), _ = run_probe(probe_site, env=env)
    assert code == 0 and seen["torch_preloaded"] and seen["env"] == "prepared"
