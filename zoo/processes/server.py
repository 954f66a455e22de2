"""The fork server of :mod:`zoo.processes`: a Python process that imported the heavy modules once
and forks a child for each request, which then runs ``python -m MODULE ARGS`` as a fresh
interpreter would (see :func:`_become`).

The protocol, over a socket pair (nothing listens): a request is its length (4 bytes) and its
JSON, sent with four descriptors: the child's stdin, stdout and stderr, and the request's own
reply socket, on which the server writes the child's pid, then its exit status (as
:attr:`subprocess.Popen.returncode` has it) when it ends. The server ends when this socket closes
(the process that started it ended) and its children have ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any, NoReturn

#: In a process forked from a server: the socket to that server and the environment the process
#: was given, for :mod:`zoo.processes` to adopt it (set by :func:`_become`).
inherited: tuple[socket.socket, dict[str, str]] | None = None


class Server:
    """The handle of one server process, started with an environment (:meth:`key_of`), or
    (:meth:`adopted`) the server this process was forked from."""

    def __init__(self, env: Mapping[str, str], preload: Sequence[str]) -> None:
        self._set(env, preload)
        ours, theirs = socket.socketpair()
        self.socket = ours
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import serve; serve({theirs.fileno()})",
             *preload],
            env=self.env, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
        )  # fmt: skip
        theirs.close()
        self._ready: bool | None = None  # known once it has said so: its imports take seconds

    @property
    def ready(self) -> bool:
        """Whether the server imported the preloaded modules (waits until it has)."""
        with self.lock:
            if self._ready is None:
                self._ready = _receive_exactly(self.socket, 2) == b"ok"
        return self._ready

    def _set(self, env: Mapping[str, str], preload: Sequence[str]) -> None:
        self.env = {k: v for k, v in env.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        self.preload = tuple(preload)
        self.preloaded = _files_of(preload)
        self.lock = threading.Lock()

    @classmethod
    def adopted(
        cls, control: socket.socket, env: Mapping[str, str], preload: Sequence[str]
    ) -> Server:
        """The server this forked process came from, through the socket it was given."""
        server = cls.__new__(cls)
        server._set(env, preload)
        server.socket, server.process, server._ready = control, None, True
        return server

    @staticmethod
    def key_of(
        env: Mapping[str, str], watched: tuple[str, ...], applied: Container[str]
    ) -> tuple[tuple[str, str], ...]:
        """What must agree between an environment and the server's for it to fork from it: the
        variables read while the preloaded modules import, less those a child applies."""
        return tuple(sorted((k, v) for k, v in env.items()
                            if k.startswith(watched) and k not in applied))  # fmt: skip

    def current(self) -> bool:
        """Whether the server runs, with the preloaded packages as they are installed now (a
        package installed since it started is found by the children: see :func:`_set_path`)."""
        running = self.process is None or self.process.poll() is None  # adopted: see fork()
        return running and _files_of(self.preload) == self.preloaded

    def usable_for(self, env: Mapping[str, str]) -> bool:
        """Whether a process with environment ``env`` (of this server's key) may fork from it."""
        if not self.ready:
            return False
        threads = env.get("OMP_NUM_THREADS")
        return threads is None or (threads.isdigit() and int(threads) > 0)

    def fork(self, request: bytes, fds: Sequence[int]) -> tuple[int, socket.socket]:
        """Ask for a child: its pid, and the socket its exit status will come on. Raises
        :class:`OSError` where the server takes no more requests (retired, or ended)."""
        reply, theirs = socket.socketpair()
        try:
            with self.lock:  # one request at a time: the server reads them one by one
                if self.socket.fileno() == -1:
                    raise ConnectionAbortedError("the fork server is retired")
                socket.send_fds(self.socket, [struct.pack("!I", len(request)) + request],
                                [*fds, theirs.fileno()])  # fmt: skip
                theirs.close()
                return int(_receive_line(reply)), reply
        except BaseException:
            theirs.close()
            reply.close()
            raise

    def retire(self) -> None:
        """Stop taking requests (the server ends once its children have); a request on its
        way is answered first."""
        with self.lock:
            self.socket.close()


def _files_of(packages: Sequence[str]) -> list[tuple[str, int]]:
    """Where each package is installed, and when its ``__init__`` was written (without
    importing it)."""
    import importlib.util

    files = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec and spec.origin else ""
        files.append((origin, os.stat(origin).st_mtime_ns if os.path.exists(origin) else 0))
    return files


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _receive_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise OSError("the fork server ended")
        data += chunk
    return data


# -- the server process ----------------------------------------------------------------------


def serve(fd: int) -> None:
    """The server's main loop (``python -c``): import the modules named on the command line,
    say ``ok``, then fork a child for each request, until the socket of the process that started
    it and those of its children (each child gets one, to start processes of its own) close."""
    import importlib

    control = socket.socket(fileno=fd)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # it ends with its clients
        signal.signal(signum, signal.SIG_IGN)
    try:
        for name in sys.argv[1:]:
            importlib.import_module(name)
        default_threads = _default_threads()
    except BaseException:
        control.sendall(b"no")
        return
    control.sendall(b"ok")
    controls, children = [control], {}
    while controls:
        _reap(children, block=False)
        readable, _, _ = select.select(controls, [], [], 0.05)
        for client in readable:
            message, fds, _, _ = socket.recv_fds(client, 1 << 20, 4)
            if not message:
                controls.remove(client)
                client.close()
                continue
            size = struct.unpack("!I", message[:4])[0]
            body = message[4:] + _receive_exactly(client, size - len(message) + 4)
            reply = socket.socket(fileno=fds[3])
            inherited, kept = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                _become(json.loads(body), fds[:3], inherited,
                        [*controls, kept, reply, *children.values()], default_threads)  # fmt: skip
                raise AssertionError("unreachable: the child ends in _become")
            for child_fd in fds[:3]:
                os.close(child_fd)
            inherited.close()
            controls.append(kept)
            reply.sendall(f"{pid}\n".encode())
            children[pid] = reply
    while children:
        _reap(children, block=True)


def _reap(children: dict[int, socket.socket], block: bool) -> None:
    """Tell the clients of the children that ended how they ended."""
    for pid in list(children):
        ended, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        if ended:
            reply = children.pop(pid)
            with contextlib.suppress(OSError):
                reply.sendall(str(os.waitstatus_to_exitcode(status)).encode())
            reply.close()


def _default_threads() -> int:
    import torch

    return torch.get_num_threads() if "torch" in sys.modules else 0


def _become(request: dict[str, Any], fds: Sequence[int], control: socket.socket,
            sockets: Iterable[socket.socket], default_threads: int) -> NoReturn:  # fmt: skip
    """Turn this forked child into ``python -m MODULE ARGS`` started by the request, run it,
    and end the process as that would have ended."""
    for sock in sockets:
        sock.close()
    if request["new_session"]:
        os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    env: dict[str, str] = request["env"]
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(env)
    _set_path(request["cwd"], env.get("PYTHONPATH", ""))
    _set_streams(bool(env.get("PYTHONUNBUFFERED")))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if default_threads:
        import torch

        torch.set_num_threads(int(env.get("OMP_NUM_THREADS") or default_threads))
    for name in [name for name in sys.modules if name == "zoo" or name.startswith("zoo.")]:
        del sys.modules[name]  # zoo itself imports afresh, with this environment
    import importlib

    importlib.import_module(__name__).inherited = (control, env)  # this module, imported afresh
    sys.argv = [sys.argv[0], *request["args"]]
    _run_as_main(request["module"])


def _run_as_main(module: str) -> NoReturn:
    """Run ``module`` as ``__main__``, then end the process as the interpreter would."""
    import runpy

    from zoo._compat.interpreter import exit_code, exit_now

    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as error:
        exit_now(exit_code(error))
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        exit_now(1, signal.SIGINT)
    except BaseException:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        exit_now(1)
    exit_now(0)


def _set_path(cwd: str, pythonpath: str) -> None:
    """``sys.path`` as ``python -m`` in ``cwd`` with ``PYTHONPATH`` has it: the standard library's
    folders, then the site folders with their ``.pth`` files read again (packages installed or
    removed since the server started)."""
    import importlib
    import site

    sites = [*([site.getusersitepackages()] if site.ENABLE_USER_SITE else []),
             *site.getsitepackages()]  # fmt: skip
    tail = f"python{sys.version_info[0]}{sys.version_info[1]}.zip"
    start = next((i for i, p in enumerate(sys.path) if p.endswith(tail)), 1)
    core = []
    for folder in sys.path[start:]:
        if folder in sites:
            break
        core.append(folder)
    head = [cwd, *(os.path.abspath(p) for p in pythonpath.split(os.pathsep) if p)]
    sys.path[:] = [*dict.fromkeys(head), *core]
    for folder in sites:
        if os.path.isdir(folder):
            site.addsitedir(folder)
    importlib.invalidate_caches()


def _set_streams(unbuffered: bool) -> None:
    """New ``sys.stdin``/``stdout``/``stderr`` on descriptors 0, 1, 2, buffered as Python's."""
    import io

    encoding = sys.stdout.encoding if sys.stdout else "utf-8"
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding)
    for name, fd, errors in (("stdout", 1, "strict"), ("stderr", 2, "backslashreplace")):
        raw = io.FileIO(fd, "w", closefd=False)
        buffered = raw if unbuffered else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(buffered, encoding, errors, write_through=unbuffered,  # type: ignore[arg-type]
                                  line_buffering=os.isatty(fd) or name == "stderr")  # fmt: skip
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
