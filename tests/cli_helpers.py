"""Running the ``zoo`` command line from tests: in a process of its own (:func:`run_zoo`, and
:func:`start_zoo` for a ``Popen``), where the process is what is tested (exit codes, signals,
what reaches stdout, plugins found on ``PYTHONPATH``), or in this process with click's runner
(:func:`invoke_zoo`), where only the command's behaviour is.

A process of its own is forked from zoo's fork server (:mod:`zoo.processes`, as a comparison's
runs are): ``python -m zoo`` without paying the imports of torch and Lightning again. Where a test
is about the start of a fresh interpreter (what ``zoo`` imports, the installed entry point), it
runs :func:`zoo_command` with :mod:`subprocess`, or passes ``fresh=True``.

Both start from the caller's environment without the variables that change what zoo loads or
prints (:data:`CONTROLS`); a test names the ones it wants.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

#: zoo's own switches for plugins and error output: a test that wants one sets it itself.
CONTROLS = (
    "ZOO_DISABLE_PLUGIN_AUTOLOAD",
    "ZOO_PLUGINS",
    "ZOO_STRICT_PLUGINS",
    "ZOO_DEBUG_PLUGINS",
    "ZOO_TRACEBACK",
)


def zoo_command(*args: str, prefix: Iterable[str] = ()) -> list[str]:
    """The command line of ``zoo ARGS`` run by this interpreter (after ``prefix``, e.g. a
    ``setpriv`` that drops permissions)."""
    return [*prefix, sys.executable, "-m", "zoo", *args]


def zoo_env(
    site: Path | None = None,
    *,
    base: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    **env: str,
) -> dict[str, str]:
    """The environment of a ``zoo`` process: ``base`` (default: this process's) without
    :data:`CONTROLS` and ``unset``, with ``site`` first on ``PYTHONPATH``, then ``env``."""
    drop = {*CONTROLS, *unset}
    environment = {
        key: value for key, value in (os.environ if base is None else base).items()
        if key not in drop
    }  # fmt: skip
    if site is not None:
        path = [str(site), *filter(None, [environment.get("PYTHONPATH")])]
        environment["PYTHONPATH"] = os.pathsep.join(path)
    environment.update(env)
    return environment


def run_zoo(
    *args: str,
    site: Path | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
    prefix: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    timeout: float = 300,
    fresh: bool = False,
    **extra_env: str,
) -> subprocess.CompletedProcess[str]:
    """``zoo ARGS`` in a process of its own, its output captured as text; ``env`` is the
    environment to start from (see :func:`zoo_env` for the rest). ``fresh`` (or a ``prefix``)
    starts a new interpreter instead of forking one from the fork server."""
    environment = zoo_env(site, base=env, unset=unset, **extra_env)
    if fresh or prefix:
        return subprocess.run(
            zoo_command(*args, prefix=prefix), input=stdin, capture_output=True, text=True,
            cwd=cwd, env=environment, timeout=timeout,
        )  # fmt: skip
    process = start_zoo(
        *args, env=environment, cwd=cwd, stdin=None if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with process:
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    return subprocess.CompletedProcess(zoo_command(*args), process.returncode, out, err)


def start_zoo(*args: str, env: Mapping[str, str] | None = None, **popen: Any) -> Any:
    """``zoo ARGS`` started as by :class:`subprocess.Popen` (``popen``: its keyword arguments:
    ``stdin``, ``stdout``, ``stderr``, ``cwd``, ``text``, ``start_new_session``), forked from
    the fork server; ``env`` is its whole environment (default: :func:`zoo_env`)."""
    from zoo.processes import start_module

    return start_module("zoo", args, env=zoo_env() if env is None else env, **popen)


def popen_command(command: Sequence[str], **popen: Any) -> Any:
    """``subprocess.Popen(command, **popen)``, forked from the fork server where ``command`` is a
    :func:`zoo_command` line (``python -m zoo ARGS``)."""
    if list(command[:3]) != [sys.executable, "-m", "zoo"]:
        return subprocess.Popen(command, **popen)
    from zoo.processes import start_module

    env = popen.pop("env", None)
    return start_module("zoo", command[3:], env=dict(os.environ if env is None else env), **popen)


def run_command(
    command: Sequence[str],
    *,
    input: str | None = None,
    capture_output: bool = False,
    timeout: float | None = None,
    check: bool = False,
    **popen: Any,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(command, ...)``, forked from the fork server where ``command`` is a
    :func:`zoo_command` line."""
    if capture_output:
        popen.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        popen["stdin"] = subprocess.PIPE
    with popen_command(command, **popen) as process:
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    completed = subprocess.CompletedProcess(list(command), process.returncode, out, err)
    if check:
        completed.check_returncode()
    return completed


def start_python(code: str, *args: str, env: Mapping[str, str] | None = None, **popen: Any) -> Any:
    """``python -c CODE ARGS`` as by :class:`subprocess.Popen`, forked from the fork server: the
    code runs as the ``__main__`` module of a file of its own (``env``: the whole environment,
    default this process's)."""
    import atexit
    import tempfile
    import textwrap
    import uuid

    from zoo.processes import start_module

    global _code_folder
    if _code_folder is None:
        _code_folder = tempfile.TemporaryDirectory(prefix="zoo-test-code-")
        atexit.register(_code_folder.cleanup)
    name = f"zoo_test_code_{uuid.uuid4().hex}"
    (Path(_code_folder.name) / f"{name}.py").write_text(textwrap.dedent(code))
    environment = dict(os.environ if env is None else env)
    path = [_code_folder.name, *filter(None, [environment.get("PYTHONPATH")])]
    environment["PYTHONPATH"] = os.pathsep.join(path)
    return start_module(name, args, env=environment, **popen)


_code_folder: Any = None


def invoke_zoo(*args: str, stdin: str | None = None, **env: str) -> Result:
    """``zoo ARGS`` in this process (click's runner): the same command, without the start-up of
    a new interpreter. ``env`` is set for the call; :data:`CONTROLS` not named there are unset."""
    from zoo.cli import cli

    environment: dict[str, str | None] = dict.fromkeys(CONTROLS)
    environment.update(env)
    return CliRunner(env=environment).invoke(cli, list(args), input=stdin)
