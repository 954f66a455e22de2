"""Lightning's W&B logger internals, used only with the Lightning and W&B versions in
:data:`CHECKED_WITH` (major.minor); with any other, Lightning's logger is left as it is.

* :func:`drop_wandb_anonymous`: Lightning's ``WandbLogger`` keeps the arguments it will pass to
  ``wandb.init`` in its private ``_wandb_init``, with ``anonymous=None`` when it is not asked
  for; W&B (0.31) warns on stderr that the setting "has no effect" whenever ``anonymous`` is
  passed at all, even as ``None``, W&B's own default. Dropping the entry changes nothing else.
  Fallback: W&B prints its warning.

``tests/test_compat.py`` checks that the internal is there as assumed on the installed versions.
Importing this module imports neither Lightning nor W&B.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

#: The Lightning and W&B versions (major.minor) this was checked with.
CHECKED_WITH: dict[str, tuple[str, ...]] = {"lightning": ("2.6",), "wandb": ("0.31",)}


def installed_versions() -> dict[str, str]:
    """The installed Lightning's and W&B's versions (``""`` for one not installed)."""
    versions = {}
    for package in CHECKED_WITH:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = ""
    return versions


def checked(versions: Mapping[str, str] | None = None) -> bool:
    """Whether ``versions`` (default: the installed ones) are all in :data:`CHECKED_WITH`."""
    versions = installed_versions() if versions is None else versions
    return all(
        ".".join(versions.get(package, "").split("+")[0].split(".")[:2]) in allowed
        for package, allowed in CHECKED_WITH.items()
    )


def drop_wandb_anonymous(logger: Any) -> bool:
    """Remove ``anonymous=None`` from what ``logger`` (a Lightning ``WandbLogger``, before its
    run starts) will pass to ``wandb.init``; whether it did."""
    if not checked():
        return False
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict) and "anonymous" in init and init["anonymous"] is None:
        del init["anonymous"]
        return True
    return False
