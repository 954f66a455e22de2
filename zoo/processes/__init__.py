"""Python processes that start after the heavy imports.

A zoo process spends seconds importing torch, torchvision and Lightning before it does anything.
The processes zoo starts itself (a comparison's fused groups and separate runs) are forked from a
*server* that imported those once, so a comparison pays the imports once, not once per process.

:func:`start_module` runs ``python -m MODULE ARGS`` as its own process, with its own arguments,
environment, working directory, standard streams, signals and exit status, and returns an object
with the methods of :class:`subprocess.Popen` that zoo uses. What a forked process does not get
is a fresh interpreter: the preloaded modules were imported with the server's environment. So a
fresh interpreter is started instead (a plain :class:`subprocess.Popen`) where that could
differ: an environment that changes how those modules import (:data:`IMPORT_TIME_VARIABLES`),
packages installed or removed since the server started, a platform without ``fork``, a server
that failed to import them, or ``ZOO_FORKSERVER=0``. The server talks to this process only,
through a socket pair (nothing listens), and ends when this process does and its children have.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

#: The modules the server imports once.
PRELOAD = ("torch", "torchvision", "lightning")
#: ``ZOO_FORKSERVER=0`` (in the environment of the process to start) starts a fresh interpreter.
SWITCH = "ZOO_FORKSERVER"
#: Variables read while the preloaded modules import (prefixes): where the environment of a
#: process differs from the server's in one of these, it starts a fresh interpreter.
IMPORT_TIME_VARIABLES = (
    "PYTHON", "LD_", "TORCH", "PYTORCH", "CUDA", "NVIDIA", "TRITON", "OMP_", "MKL", "KMP_",
    "GOMP_", "OPENBLAS", "NUMPY", "PL_", "LIGHTNING", "TQDM_", "MPL", "SCIPY",
)  # fmt: skip
#: At most this many servers (one per set of values of those variables) run at once.
MAX_SERVERS = 4
#: Variables of those that a forked process applies itself, or that are read when they are used
#: (``torch.load`` reads its two).
APPLIED_VARIABLES = frozenset(
    {"PYTHONPATH", "PYTHONUNBUFFERED", "OMP_NUM_THREADS", "TORCH_FORCE_WEIGHTS_ONLY_LOAD",
     "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
)  # fmt: skip


def start_module(
    module: str,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    text: bool = False,
    start_new_session: bool = False,
) -> Any:
    """``python -m MODULE ARGS`` in a process of its own, forked from the server where it can
    be; ``stdin``, ``stdout``, ``stderr``, ``text`` and ``start_new_session`` as for
    :class:`subprocess.Popen`. Returns a :class:`ForkedProcess` or a :class:`subprocess.Popen`."""
    environment = dict(os.environ if env is None else env)
    server = _server_for(environment)
    if server is not None:
        folder = os.path.abspath(cwd or os.getcwd())
        request = {"module": module, "args": list(args), "env": environment, "cwd": folder,
                   "new_session": start_new_session}  # fmt: skip
        try:
            return ForkedProcess(server, request, stdin, stdout, stderr, text)
        except OSError:  # the server was retired or ended meanwhile: start afresh
            pass
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], env=environment, cwd=cwd, stdin=stdin,
        stdout=stdout, stderr=stderr, text=text, start_new_session=start_new_session,
    )  # fmt: skip


def prepare(env: Mapping[str, str] | None = None) -> None:
    """Start the server for processes with environment ``env`` (default: this process's) now,
    without waiting for it: its imports then go on while this process works."""
    _server_for(dict(os.environ if env is None else env), wait=False)


def run_module(module: str, args: Sequence[str] = (), **options: Any) -> tuple[int, Any, Any]:
    """Run ``python -m MODULE ARGS`` to its end (as :func:`start_module`, ``input=`` for its
    standard input): its exit status, standard output and standard error."""
    data = options.pop("input", None)
    if data is not None:
        options["stdin"] = subprocess.PIPE
    with start_module(module, args, **options) as process:
        out, err = process.communicate(data)
    return process.returncode, out, err


# -- the server's side: see zoo/processes/server.py ------------------------------------------------

_lock = threading.Lock()
_servers: dict[tuple[str, ...], Any] = {}


def _server_for(env: Mapping[str, str], wait: bool = True) -> Any:
    """The running server whose environment ``env`` may fork from, started if need be; None
    where a fresh interpreter must start instead."""
    if env.get(SWITCH, "1") == "0" or not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
        return None
    from zoo.processes import server as forkserver
    from zoo.processes.server import Server

    with _lock:
        if forkserver.inherited is not None:  # forked: start processes from the same server
            control, given = forkserver.inherited
            forkserver.inherited = None
            adopted = Server.key_of(given, IMPORT_TIME_VARIABLES, APPLIED_VARIABLES)
            _servers[adopted] = Server.adopted(control, given, PRELOAD)
        key = Server.key_of(env, IMPORT_TIME_VARIABLES, APPLIED_VARIABLES)
        server = _servers.get(key)
        if server is not None and not server.current():  # packages installed since it started
            _servers.pop(key).retire()
            server = None
        if server is None:
            if len(_servers) >= MAX_SERVERS:
                return None
            server = _servers[key] = Server(env, PRELOAD)
    if not wait:
        return None
    return server if server.usable_for(env) else None


class ForkedProcess:
    """A process forked from the server: the parts of :class:`subprocess.Popen` zoo uses
    (``pid``, ``returncode``, ``stdin``/``stdout``/``stderr``, :meth:`poll`, :meth:`wait`,
    :meth:`communicate`, :meth:`send_signal`, :meth:`terminate`, :meth:`kill`, ``with``)."""

    def __init__(self, server: Any, request: dict[str, Any], *streams: Any) -> None:
        stdin, stdout, stderr, text = streams
        self.returncode: int | None = None
        self.stdin: IO[Any] | None = None
        self.stdout: IO[Any] | None = None
        self.stderr: IO[Any] | None = None
        child_fds, close_after = [], []
        for name, spec in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            fd, ours = self._child_end(name, spec, child_fds, close_after)
            child_fds.append(fd)
            if ours is not None:
                setattr(self, name, _wrap(ours, name == "stdin", text))
        try:
            self.pid, self._reply = server.fork(json.dumps(request).encode(), child_fds)
        except BaseException:
            for stream in (self.stdin, self.stdout, self.stderr):
                if stream is not None:
                    stream.close()
            raise
        finally:
            for fd in close_after:
                os.close(fd)

    @staticmethod
    def _child_end(name: str, spec: Any, fds: list[int], close: list[int]) -> tuple[int, Any]:
        """The descriptor the child gets for stream ``name``, and our end of a pipe (or None)."""
        if spec is None:
            return ("stdin", "stdout", "stderr").index(name), None
        if spec == subprocess.STDOUT and name == "stderr":
            return fds[1], None
        if spec == subprocess.DEVNULL:
            fd = os.open(os.devnull, os.O_RDWR)
            close.append(fd)
            return fd, None
        if spec == subprocess.PIPE:
            read, write = os.pipe()
            child, ours = (read, write) if name == "stdin" else (write, read)
            close.append(child)
            return child, ours
        return (spec if isinstance(spec, int) else spec.fileno()), None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reply.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                self._read_status()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._reply.setblocking(True)
            self._reply.settimeout(timeout)
            try:
                self._read_status()
            except TimeoutError:
                raise subprocess.TimeoutExpired(["python", "-m", "..."], timeout) from None
        return self.returncode  # type: ignore[return-value]

    def _read_status(self) -> None:
        data = self._reply.recv(64)
        self.returncode = int(data.decode()) if data else -1
        self._reply.close()

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        """As :meth:`subprocess.Popen.communicate` (the streams read side by side in threads)."""
        results: dict[str, Any] = {}
        readers = [threading.Thread(target=lambda n=n, s=s: results.__setitem__(n, s.read()),
                                    daemon=True)
                   for n, s in (("stdout", self.stdout), ("stderr", self.stderr)) if s]  # fmt: skip
        for reader in readers:
            reader.start()
        if self.stdin is not None:
            try:
                if input:
                    self.stdin.write(input)
                self.stdin.close()
            except BrokenPipeError:
                pass
        self.wait(timeout)
        for reader in readers:
            reader.join()
        return results.get("stdout"), results.get("stderr")

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        import signal

        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)

    def __enter__(self) -> ForkedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in (self.stdout, self.stderr, self.stdin):
            if stream is not None:
                stream.close()
        self.wait()


def _wrap(fd: int, writable: bool, text: bool) -> IO[Any]:
    """Our end of a pipe, as :class:`subprocess.Popen` makes it."""
    import io

    binary = open(fd, "wb" if writable else "rb")  # noqa: SIM115
    if not text:
        return binary
    return io.TextIOWrapper(binary, write_through=writable)
