"""Running the ``zoo`` command line from tests: in a process of its own (:func:`run_zoo`, and
:func:`zoo_command` for ``Popen``), where the process is what is tested (exit codes, signals,
what reaches stdout, plugins found on ``PYTHONPATH``), or in this process with click's runner
(:func:`invoke_zoo`), where only the command's behaviour is.

Both start from the caller's environment without the variables that change what zoo loads or
prints (:data:`CONTROLS`); a test names the ones it wants.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

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
    **extra_env: str,
) -> subprocess.CompletedProcess[str]:
    """``zoo ARGS`` in a subprocess, its output captured as text; ``env`` is the environment to
    start from (see :func:`zoo_env` for the rest)."""
    return subprocess.run(
        zoo_command(*args, prefix=prefix),
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=zoo_env(site, base=env, unset=unset, **extra_env),
        timeout=timeout,
    )


def invoke_zoo(*args: str, stdin: str | None = None, **env: str) -> Result:
    """``zoo ARGS`` in this process (click's runner): the same command, without the start-up of
    a new interpreter. ``env`` is set for the call; :data:`CONTROLS` not named there are unset."""
    from zoo.cli import cli

    environment: dict[str, str | None] = dict.fromkeys(CONTROLS)
    environment.update(env)
    return CliRunner(env=environment).invoke(cli, list(args), input=stdin)
