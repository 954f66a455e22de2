"""What the core runs of a dataset plugin, each failure named with the dataset and its plugin:
its declarations checked (:func:`check_datamodule`), the arguments zoo adds
(:func:`dataset_arguments`), its data loaded (:func:`load_data`) and its batches read and checked
for zoo's own loops (:func:`checked_batches`)."""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L

from zoo.data.batches import CONTRACT, check_batch, describe_value
from zoo.data.datamodule import ClassificationDataModule
from zoo.errors import PluginError, PluginFailure, ZooError, ZooUsageError, component_label
from zoo.plugin.loading import plugin_of

#: The splits whose datasets each Lightning stage reads.
STAGE_SPLITS: dict[str, tuple[str, ...]] = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": (),
}


@contextlib.contextmanager
def plugin_code(component: Any, action: str) -> Iterator[None]:
    """Run code of ``component``'s plugin: an exception other than a :class:`ZooError` (which
    passes unchanged, as do KeyboardInterrupt and SystemExit) becomes a :class:`PluginFailure`
    naming the component, its plugin and distribution, ``action`` and the exception."""
    try:
        yield
    except ZooError:
        raise
    except Exception as error:
        raise PluginFailure(component, action, error, plugin_of(component)) from error


def dataset_arguments(component: Any, num_workers: int | None) -> dict[str, Any]:
    """The arguments zoo adds to a dataset's spec: ``num_workers`` when the user set
    ``--num-workers`` (None: not set, nothing added). A usage error if the factory takes none."""
    if num_workers is None:
        return {}
    parameters = component.parameters()
    if "num_workers" not in parameters and not any(
        p.kind is p.VAR_KEYWORD for p in parameters.values()
    ):
        try:
            inspect.signature(component.factory)
        except (TypeError, ValueError):
            return {"num_workers": num_workers}  # no signature to go by: the call will tell
        raise ZooUsageError(
            f"{component_label(component, plugin_of(component))} takes no --num-workers: its "
            f"factory has no num_workers argument. Leave --num-workers out."
        )
    return {"num_workers": num_workers}


def check_datamodule(datamodule: Any, component: Any) -> None:
    """Raise :class:`PluginError` naming the dataset and its plugin if what its factory returned
    does not declare what zoo reads before any data loads (input_shape, class_names, mean and
    std) or, for a :class:`ClassificationDataModule`, lacks a split."""
    label = component_label(component, plugin_of(component))
    problem = _declaration_problem(datamodule)
    if problem is None and isinstance(datamodule, ClassificationDataModule):
        datamodule.label = label
        missing = [
            split
            for split in ("train", "val", "test")
            if datamodule.uses_dataset_hook(split)
            and getattr(type(datamodule), f"{split}_dataset")
            is getattr(ClassificationDataModule, f"{split}_dataset")
        ]
        if missing:
            problem = f"it implements neither {missing[0]}_dataset() nor {missing[0]}_dataloader()"
    if problem is not None:
        raise PluginError(f"{label} breaks the dataset contract: {problem} (see {CONTRACT})")


def _declaration_problem(datamodule: Any) -> str | None:
    """What is wrong with a datamodule's declarations, or None."""
    if not isinstance(datamodule, L.LightningDataModule):
        found = describe_value(datamodule)
        return f"its factory returned {found}, not a lightning.LightningDataModule"
    try:
        shape, classes = datamodule.input_shape, datamodule.num_classes
        names = datamodule.class_names
    except AttributeError as error:
        return f"it does not declare {error.name or 'input_shape, class_names'}"
    if not _ints(shape, 3, 1):
        return f"input_shape must be (C, H, W), three positive ints, got {shape!r}"
    if not isinstance(names, Sequence) or not _ints((classes,), 1, 1) or len(names) != classes:
        return f"class_names must be a sequence of one name per class, got {names!r}"
    mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
    if (mean is None) != (std is None):
        return "declare both mean and std, or neither (None: no normalisation)"
    for what, values in (("mean", mean), ("std", std)):
        if values is None:
            continue
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) not in (1, shape[0]) or not all(map(math.isfinite, numbers)):
            return (
                f"{what} must be one finite number per channel ({shape[0]}), or one for all, "
                f"got {values!r}"
            )
    if std is not None and not all(float(s) > 0 for s in std):
        return f"std must be above 0 in every channel, got {std!r}"
    return None


def _ints(values: Any, count: int, low: int) -> bool:
    return (
        isinstance(values, Sequence)
        and len(values) == count
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values)
    )


def load_data(datamodule: Any, component: Any, stage: str) -> None:
    """What zoo runs of a datamodule before it trains (``stage`` "fit") or evaluates ("test",
    "fit" for the validation split): ``prepare_data()``, ``setup(stage)`` and, where the
    default dataloaders serve it, the stage's datasets. A failure names the dataset's plugin."""
    with plugin_code(component, "failed in prepare_data()"):
        datamodule.prepare_data()
    with plugin_code(component, f"failed in setup({stage!r})"):
        datamodule.setup(stage)
    if isinstance(datamodule, ClassificationDataModule):
        for split in STAGE_SPLITS.get(stage, ()):
            if datamodule.uses_dataset_hook(split):
                with plugin_code(component, f"failed in {split}_dataset()"):
                    datamodule.dataset(split)


def checked_batches(datamodule: Any, component: Any, split: str) -> Iterator[Any]:
    """The batches of ``split``'s dataloader (``test`` or ``val``), for zoo's own loops: the
    first checked against the batch format, a failure in the plugin's code named as such."""
    with plugin_code(component, f"failed in {split}_dataloader()"):
        iterator = iter(getattr(datamodule, f"{split}_dataloader")())
    label = component_label(component, plugin_of(component))
    first = True
    while True:
        with plugin_code(component, f"failed making a {split} batch"):
            batch = next(iterator, None)
        if batch is None:
            return
        if first:
            check_batch(batch, datamodule, label)
            first = False
        yield batch
