"""A run that starts from trained weights (``zoo train --init-weights NAME_OR_DIR``): the
weights are checked against the run's architecture, activation and input when the run is
composed, and copied into its freshly built (seeded) model before training; a head sized by
another number of classes keeps its fresh initialisation. No Lightning here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo.errors import UnknownComponentError, ZooUsageError
from zoo.weights.build import file_shapes, mismatches
from zoo.weights.entry import Weights
from zoo.weights.errors import WeightsError
from zoo.weights.files import local_file
from zoo.weights.loading import _same_spec, resolve

if TYPE_CHECKING:
    from torch import nn

OPTION = "--init-weights"


def check_init_weights(source: str, arch: Any, act: Any) -> Weights:
    """The entry of ``source`` (a weights name, an exported directory or ``hf-hub:OWNER/REPO``)
    if it was trained with the run's ``arch`` and ``act`` specs; a :class:`ZooUsageError`
    otherwise (the file itself is read later, by :func:`init_from_weights`)."""
    try:
        entry = resolve(source)
    except UnknownComponentError as error:
        raise ZooUsageError(f"{OPTION}: {error}") from None
    for kind, flag, run_spec, own in (
        ("architecture", "--arch", arch, entry.arch),
        ("activation", "--act", act, entry.act),
    ):
        if not _same_spec(run_spec, own):
            raise ZooUsageError(
                f"{OPTION} {source}: these weights were trained with {kind} {own!r}, not "
                f"{str(run_spec)!r}; fine-tuning keeps both (give {flag} {own})"
            )
    return entry


def init_from_weights(
    model: nn.Module, entry: Weights, input_shape: tuple[int, ...], num_classes: int
) -> list[str]:
    """Copy ``entry``'s tensors into ``model`` (built for ``input_shape`` and ``num_classes``);
    the names of the tensors left as they were (the head, when the classes differ).

    A different input shape is a :class:`ZooUsageError`; a damaged file, or tensors that fit
    neither the model nor a model with a new head, a :class:`WeightsError`."""
    from safetensors.torch import load_file

    shape = tuple(int(n) for n in input_shape)
    if shape != entry.dataset.input_shape:
        raise ZooUsageError(
            f"{OPTION} {entry.name}: these weights take inputs of shape "
            f"{_dims(entry.dataset.input_shape)} ({entry.dataset.name}), this dataset's are "
            f"{_dims(shape)}"
        )
    own = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    with local_file(entry) as path:
        found = file_shapes(path, entry.name)
        differ = mismatches(own, found, entry.name)
        classes = entry.dataset.num_classes
        head = num_classes != classes and all(
            found[k] and found[k][0] == classes and own[k][1:] == found[k][1:] for k in differ
        )
        if differ and not head:
            key = differ[0]
            raise WeightsError(
                f"weights {entry.name} do not fit the architecture: tensor {key!r} has shape "
                f"{list(found[key])} in the file, the model {list(own[key])}"
            )
        state = load_file(str(path))
    kept = {key: value for key, value in state.items() if key not in differ}
    model.load_state_dict(kept, strict=False)
    return differ


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)
