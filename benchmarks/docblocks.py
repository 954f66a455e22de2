"""Marked blocks in README.md and docs/*.md that the benchmark scripts rewrite.

A block is everything between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``. Each script
that measures something writes its figures into its own block, with :func:`provenance`: the date,
the machine and the thread count, so that every figure in the docs says where it came from and
how to measure it again. Standard library only: importing this needs no torch.
"""

from __future__ import annotations

import os
import platform
import re
from datetime import date
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of block ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with what lies between block ``name``'s markers replaced by ``content``."""
    start, end = markers(name)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"no {start} ... {end} markers")
    return pattern.sub(lambda _: f"{start}\n{content.strip()}\n{end}", text, count=1)


def write_block(path: Path, name: str, content: str) -> None:
    """Rewrite block ``name`` of the file ``path`` with ``content``."""
    try:
        text = path.read_text(encoding="utf-8")
        path.write_text(replace_block(text, name, content), encoding="utf-8")
    except ValueError as error:
        raise SystemExit(f"{path}: {error}") from None


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo, where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def library_versions() -> str:
    """Python's and the libraries' versions that decide the figures, read from the installed
    distributions (no import of torch)."""
    words = [f"Python {platform.python_version()}"]
    for name in ("torch", "torchvision", "lightning", "lightning-zoo"):
        try:
            words.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            words.append(f"{name} not installed")
    return ", ".join(words)


def machine(gpu: str | None = None) -> str:
    """The machine in words: ``platform.platform()``, the CPU count and model, the GPU if any,
    and the versions of Python and the libraries."""
    cpu = cpu_model()
    words = f"`{platform.platform()}`, {os.cpu_count()} CPUs" + (f" ({cpu})" if cpu else "")
    words += f", {gpu}" if gpu else ", no GPU used"
    return f"{words}; {library_versions()}"


def provenance(
    command: str, threads: str, *, gpu: str | None = None, when: str | None = None
) -> str:
    """The sentence under a block's figures: the command that measured them, when, on what."""
    when = when or date.today().isoformat()
    return f"Measured with `{command}` on {when}: {machine(gpu)}; {threads}."


def threads_note(threads: int | None) -> str:
    """How many threads torch used, in words."""
    if threads is None:
        return "torch's default number of threads"
    return f"`OMP_NUM_THREADS={threads}` ({threads} torch thread{'s' if threads != 1 else ''})"
