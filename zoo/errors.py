"""The errors lightning-zoo raises. Each message says what went wrong and what to do about it."""

from __future__ import annotations

from typing import Any


class ZooError(Exception):
    """Base class of every error lightning-zoo raises on purpose."""


class ZooUsageError(ZooError, ValueError):
    """The user asked for something that does not exist or cannot be built (CLI exit code 2)."""


class UnknownComponentError(ZooUsageError):
    """A component name that no plugin registered."""

    def __init__(self, kind: str, name: str, suggestions: list[str], hint: str = "") -> None:
        """``hint``: sentences on where the component may come from (a plugin that did not
        load, the distribution that provided it to a run)."""
        self.kind = kind
        self.name = name
        self.suggestions = suggestions
        self.hint = hint
        text = ""
        if suggestions:
            quoted = [repr(s) for s in suggestions]
            choices = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
            text = f" Did you mean {choices}?"
        if hint:
            text += f" {hint}"
        super().__init__(f"unknown {kind} {name!r}.{text} Run 'zoo list {kind}s' to see them all.")


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


def component_label(component: Any, plugin: Any = None) -> str:
    """A component as messages name it: ``dataset 'mine' (plugin 'mine', mine-dist 0.1)``.

    ``component`` is a registry component (its ``kind``, ``name``, ``plugin``); ``plugin`` its
    plugin's :class:`zoo.plugin.loading.PluginInfo` (``zoo.plugin.loading.plugin_of(component)``),
    or None to
    name the plugin alone."""
    where = f"plugin {component.plugin!r}"
    if plugin is not None:
        where = f"plugin {plugin.name!r}, {plugin.source}"
    return f"{component.kind} {component.name!r} ({where})"


class PluginFailure(PluginError):
    """Code of a plugin raised an exception that is not a :class:`ZooError`: a factory, a
    datamodule's ``prepare_data()`` or ``setup()``. ``component`` is what failed, ``action``
    what it was doing (``"failed in setup('fit')"``), ``error`` the exception (also the
    ``__cause__``); ``plugin`` is the plugin's ``PluginInfo`` where the raiser knew it."""

    def __init__(
        self, component: Any, action: str, error: BaseException, plugin: Any = None
    ) -> None:
        self.component = component
        self.action = action
        self.error = error
        self.plugin = plugin
        super().__init__(self.message(plugin))

    def message(self, plugin: Any = None) -> str:
        """One line: the component (with ``plugin``'s source, if given), action, exception."""
        text = " ".join(str(self.error).split())
        detail = f"{type(self.error).__name__}{': ' if text else ''}{text}"
        return f"{component_label(self.component, plugin)} {self.action}: {detail}"


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


class FusionUnavailable(ZooError):
    """These runs cannot be trained fused (the reason says why); ``zoo compare`` trains them
    separately."""


#: What ``zoo`` prints (on stderr) when Ctrl-C stops a command outside a run's training loop,
#: before it exits with 130: nothing half-written is left, what was written before stays.
INTERRUPTED_MESSAGE = (
    "zoo: interrupted (SIGINT) before the command finished; what it had written before is "
    "kept, nothing more was written."
)
