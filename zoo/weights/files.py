"""Where a weights file lies: in a package, at a URL (downloaded once into the cache), on the
Hugging Face Hub, or at a local path; each file checked against its sha256 before use."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from zoo.paths import cache_dir
from zoo.weights.entry import MAX_FILE_SIZE, Weights
from zoo.weights.errors import WeightsError

URL_SCHEMES = ("https://", "http://", "file://")
HUB_PREFIX = "hf-hub:"
PACKAGE_PREFIX = "pkg:"
_CHUNK = 1 << 20


def weights_cache() -> Path:
    """Where downloaded weights are kept: ``<zoo cache>/weights``."""
    return cache_dir() / "weights"


def sha256_of(path: Path) -> str:
    """The sha256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, entry: Weights) -> None:
    """:class:`WeightsError` if the file's sha256 is not the one ``entry`` records."""
    if entry.sha256 is None:
        return
    found = sha256_of(path)
    if found != entry.sha256:
        raise WeightsError(
            f"weights {entry.name}: {path} has sha256 {found[:16]}…, but the entry records "
            f"{entry.sha256[:16]}…: the file is damaged or was replaced (nothing was cached)"
        )


def package_file(location: str) -> Path:
    """The file ``pkg:MODULE/PATH`` names, inside the installed package ``MODULE``."""
    module, _, relative = location.removeprefix(PACKAGE_PREFIX).partition("/")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations or not relative:
        raise WeightsError(f"weights location {location!r}: no package {module!r} to read it from")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = (root / relative).resolve()
    if root.resolve() not in path.parents:
        raise WeightsError(f"weights location {location!r} points outside package {module!r}")
    return path


@contextlib.contextmanager
def local_file(entry: Weights) -> Iterator[Path]:
    """The weights file of ``entry``, checked; a download is kept in the cache only if the
    ``with`` block (which builds the model from it) succeeds."""
    location = entry.location
    if location.startswith(HUB_PREFIX):
        from zoo.weights.hub import hub_file

        path = hub_file(location.removeprefix(HUB_PREFIX), "model.safetensors")
    elif location.startswith(URL_SCHEMES):
        with _downloaded(entry) as path:
            yield path
        return
    elif location.startswith(PACKAGE_PREFIX):
        path = package_file(location)
    else:
        path = Path(location).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights {entry.name}: its file {path} is missing")
    check_sha256(path, entry)
    yield path


@contextlib.contextmanager
def _downloaded(entry: Weights) -> Iterator[Path]:
    if entry.sha256 is None:
        raise WeightsError(
            f"weights {entry.name}: an entry with a URL must record the file's sha256"
        )
    cache = weights_cache()
    cached = cache / f"{entry.name}-{entry.sha256[:16]}.safetensors"
    if cached.is_file() and sha256_of(cached) == entry.sha256:
        yield cached
        return
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{cached.name}.{os.getpid()}.partial"
    try:
        _download(entry, partial)
        check_sha256(partial, entry)
        yield partial
        os.replace(partial, cached)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()


def _download(entry: Weights, target: Path) -> None:
    limit = entry.file_size or MAX_FILE_SIZE
    try:
        with (
            urllib.request.urlopen(entry.location, timeout=60) as response,
            open(target, "wb") as file,
        ):
            size = 0
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                size += len(chunk)
                if size > limit:
                    raise WeightsError(
                        f"weights {entry.name}: {entry.location} is larger than the "
                        f"{limit} bytes the entry records (nothing was cached)"
                    )
                file.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise WeightsError(
            f"cannot download weights {entry.name} from {entry.location}: {reason}"
        ) from error
