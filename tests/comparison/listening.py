"""What processes listen on, read from the operating system's own tables (Linux's ``/proc``): the
listening TCP sockets of a process tree, mapped from ``/proc/net/tcp{,6}`` to each process's open
files, as ``ss -ltnp`` shows them."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


@dataclass(frozen=True)
class Listener:
    """One listening socket: the process that holds it, and its address."""

    pid: int
    command: str
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """Whether only this machine can connect (127.0.0.0/8, ::1, or IPv4-mapped 127.x)."""
        address = ipaddress.ip_address(self.host)
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback

    def __str__(self) -> str:
        return f"{self.host}:{self.port} (pid {self.pid}: {self.command})"


def supported() -> bool:
    """Whether this system has the tables (Linux)."""
    return Path("/proc/net/tcp").exists()


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # exited meanwhile
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def process_tree(root: int, also_mentioning: str | None = None) -> set[int]:
    """``root`` and its descendants, and (to catch one that left the tree) every process whose
    command line holds ``also_mentioning``."""
    parents = _parents()
    tree = {root}
    grew = True
    while grew:
        before = len(tree)
        tree |= {pid for pid, parent in parents.items() if parent in tree}
        grew = len(tree) > before
    if also_mentioning:
        tree |= {pid for pid in parents if also_mentioning in _command(pid)}
    return tree


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _decode(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6}: little-endian 32-bit words of hex."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _listening_inodes() -> dict[int, tuple[str, int]]:
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:  # no IPv6
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN:
                host, port = fields[1].split(":")
                found[int(fields[9])] = (_decode(host), int(port, 16))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def listeners(pids: set[int]) -> list[Listener]:
    """The listening TCP sockets that processes ``pids`` hold."""
    table = _listening_inodes()
    found = []
    for pid in sorted(pids):
        for inode in _socket_inodes(pid):
            if inode in table:
                found.append(Listener(pid, _command(pid)[:100], *table[inode]))
    return found
