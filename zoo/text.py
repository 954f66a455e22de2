"""Text from files and plugins made safe to print: no terminal control sequences get through."""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` with control and other non-printable characters backslash-escaped (``\\x1b``,
    ``\\r``, ``\\u202e``, ...), so that a class name, spec or message read from a checkpoint,
    run file or plugin cannot move the cursor, recolour or rewrite the terminal. Printable
    non-ASCII stays as it is; ``newlines=True`` keeps ``\\n`` (for multi-line messages)."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() or (newlines and char == "\n") else _escape(char)
        for char in text
    )


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def slug(text: str, fallback: str = "run") -> str:
    """``text`` as a file name part: runs of other characters than letters, digits, ``.`` and
    ``-`` become one ``_``; at most 80 characters; ``fallback`` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")[:80] or fallback
