"""Where data and caches live. Light on imports: no torch here."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the default data directory (a torchvision-style root).
DATA_DIR_ENV = "ZOO_DATA_DIR"


def cache_dir() -> Path:
    """The per-user cache directory of lightning-zoo (``$XDG_CACHE_HOME/lightning-zoo``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lightning-zoo"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir`` if given, else ``$ZOO_DATA_DIR``, else ``<cache_dir>/data``."""
    if data_dir:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return cache_dir() / "data"
