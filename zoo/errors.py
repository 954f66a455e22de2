"""The errors lightning-zoo raises. Each message says what went wrong and what to do about it."""

from __future__ import annotations

from typing import Any


class ZooError(Exception):
    """Base class of every error lightning-zoo raises on purpose."""


class ZooUsageError(ZooError, ValueError):
    """The user asked for something that does not exist or cannot be built (CLI exit code 2)."""


class UnknownComponentError(ZooUsageError):
    """A component name that no plugin registered."""

    def __init__(self, kind: str, name: str, suggestions: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.suggestions = suggestions
        hint = ""
        if suggestions:
            quoted = [repr(s) for s in suggestions]
            choices = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
            hint = f" Did you mean {choices}?"
        super().__init__(f"unknown {kind} {name!r}.{hint} Run 'zoo list {kind}s' to see them all.")


class ComponentSpecError(ZooUsageError):
    """A component spec that does not parse, or arguments the component does not accept."""

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        self.kind = kind
        super().__init__(message)


class ConfigError(ZooUsageError):
    """A configuration file that cannot be read or does not describe a run."""


class RunInUseError(ZooError):
    """Another process holds the run directory (it is training or resuming that run)."""


class RunWriteError(ZooError):
    """A run's file could not be written (disk full, read-only, no permission)."""

    def __init__(self, what: str, error: OSError | None) -> None:
        reason = f": {error.strerror or error}" if error is not None else ""
        super().__init__(f"{what}{reason}")


class CheckpointError(ZooError):
    """A checkpoint that cannot be read, is not plain data, or cannot be written."""


class RunAlreadyFinished(ZooError):
    """``--resume`` of a run that has nothing left to train; ``result`` is its
    :class:`zoo.TrainResult`."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


class RunDamagedError(ZooError):
    """A run directory whose own files cannot be read back (a damaged ``config.json``)."""


class DuplicateComponentError(ZooError):
    """Two plugins registered the same (normalised) name."""


class PluginError(ZooError):
    """A plugin could not be imported, validated or asked for its components."""


class DataNotFoundError(ZooError):
    """A dataset's files are missing and could not be downloaded."""


class CorruptDataError(ZooError):
    """A dataset's files are there but damaged (truncated, half extracted, wrong format)."""


class TrainingInterrupted(ZooError):
    """SIGINT or SIGTERM stopped a run at a step boundary, after it saved ``last.ckpt``."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class NonFiniteLossError(ZooError):
    """The loss became NaN or infinite; training stopped without writing a checkpoint after it."""
