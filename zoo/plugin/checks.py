"""A plugin's hooks checked before it is registered: each names a real hook (else the closest
one is suggested) and asks only for arguments zoo passes."""

from __future__ import annotations

import difflib
import inspect
from types import ModuleType
from typing import Any

import pluggy


def hook_specs(pm: pluggy.PluginManager) -> dict[str, tuple[str, ...]]:
    """The real hooks and their arguments (``pm.hook`` also holds callers pluggy made for
    unknown names some plugin used)."""
    return {
        name: caller.spec.argnames
        for name, caller in sorted(vars(pm.hook).items())
        if getattr(caller, "spec", None) is not None
    }


def check_hooks(
    pm: pluggy.PluginManager, plugin: ModuleType | object
) -> tuple[list[str], list[str]]:
    """The names of the plugin's hook implementations, and what is wrong with them: an
    unknown hook (with the closest real one), an argument zoo does not pass."""
    specs = hook_specs(pm)
    hooks: list[str] = []
    problems: list[str] = []
    for attribute in dir(plugin):
        try:
            options = pm.parse_hookimpl_opts(plugin, attribute)
        except Exception:
            continue  # pluggy's own register reports what is wrong with it
        if options is None:
            continue
        hook = options.get("specname") or attribute
        hooks.append(hook)
        if hook not in specs:
            close = difflib.get_close_matches(hook, specs, n=1)
            problems.append(
                f"unknown hook {hook!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (the hooks are: {', '.join(specs)})"
            )
            continue
        extra = [
            a for a in _required_arguments(attribute_of(plugin, attribute)) if a not in specs[hook]
        ]
        if extra:
            problems.append(
                f"hook {hook!r} takes {', '.join(repr(a) for a in extra)}, which zoo does "
                f"not pass (it passes {', '.join(repr(a) for a in specs[hook])})"
            )
    return hooks, problems


def unmarked_hooks(pm: pluggy.PluginManager, plugin: ModuleType | object) -> str:
    """Why a plugin with no hook implementations registered nothing: the functions named like
    hooks that are not marked ``@zoo.hookimpl``, if any."""
    unmarked = [name for name in hook_specs(pm) if callable(attribute_of(plugin, name))]
    message = "registered nothing: are its functions marked @zoo.hookimpl?"
    if unmarked:
        message += f" ({', '.join(unmarked)} {'is' if len(unmarked) == 1 else 'are'} not)"
    return message


def attribute_of(plugin: object, name: str) -> Any:
    """``plugin.name``, or None if it has none or getting it raises."""
    try:
        return getattr(plugin, name, None)
    except Exception:
        return None


def _required_arguments(function: Any) -> list[str]:
    """The positional arguments without a default: those pluggy passes from the hook."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
