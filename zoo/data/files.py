"""What is wrong with a dataset's files on disk, in words a user can act on: files missing or
unreadable (:func:`missing_data_error`), IDX files whose size does not fit their header
(:func:`idx_problem`), labels out of range or not one per image (:func:`label_problem`,
:func:`describe_label_problem`)."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from zoo.errors import CorruptDataError, DataNotFoundError


class DataFiles(Protocol):
    """What the messages need to know of a dataset's files (a ``VisionDataModule`` has it)."""

    name: str
    data_dir: Path
    expected_files: tuple[str, ...]
    source: str
    download: bool


def missing_data_error(files: DataFiles, error: Exception) -> DataNotFoundError | CorruptDataError:
    """The error to raise when reading ``files`` failed with ``error``: a directory that cannot
    be listed, damaged files, or files that are missing; each with how to fix it."""
    data_dir = files.data_dir
    if (locked := unreadable_directory(data_dir, files.expected_files)) is not None:
        directory, reason = locked
        return DataNotFoundError(
            f"{files.name} data in {data_dir} cannot be read: the directory "
            f"{directory} cannot be listed ({reason}).\n"
            f"To fix: make it readable (chmod u+rx {directory}), or point --data-dir or "
            f"ZOO_DATA_DIR at a directory you can read."
        )
    present = [data_dir / f for f in files.expected_files if _exists(data_dir / f)]
    if files.expected_files and len(present) == len(files.expected_files):
        damaged = [f"  {path}: {why}" for path in present if (why := idx_problem(path))]
        found = "\n".join(damaged) or f"  ({type(error).__name__}: {_last_line(error)})"
        return CorruptDataError(
            f"{files.name} data in {data_dir} cannot be read:\n{found}\n"
            f"To fix: delete the damaged files so they are downloaded again, or copy good "
            f"ones there (from {files.source})."
        )
    expected = "\n".join(f"  {data_dir / f}" for f in files.expected_files)
    how = "downloading them failed" if files.download else "downloads are off"
    return DataNotFoundError(
        f"{files.name} data not found in {data_dir}, and {how} "
        f"({type(error).__name__}: {_last_line(error)})."
        f"\nExpected files:\n{expected}\n"
        f"To fix: copy these files there (from {files.source}), or point --data-dir or "
        f"ZOO_DATA_DIR at a directory that has them, or rerun with network access."
    )


def unreadable_directory(
    data_dir: Path, expected_files: tuple[str, ...]
) -> tuple[Path, str] | None:
    """The first directory on the way to an expected file that cannot be listed, and why."""
    directories = {data_dir}
    for name in expected_files:
        directories.update(parent for parent in (data_dir / name).parents)
    for directory in sorted(d for d in directories if d.is_relative_to(data_dir)):
        try:
            os.listdir(directory)
        except FileNotFoundError:
            continue
        except OSError as error:
            return directory, error.strerror or type(error).__name__
    return None


def describe_label_problem(
    files: DataFiles, split: str, problem: LabelProblem, num_classes: int
) -> str:
    """``problem`` in words, naming the split's label (and image) files where known."""
    labels = split_file(files, split, "labels")
    images = split_file(files, split, "images")
    where = f"{labels}: " if labels else f"the {split} split: "
    if problem.index is None:
        image_file = f"{images} holds " if images else ""
        label_file = f"{labels} holds " if labels else ""
        return (
            f"{image_file}{problem.images} images but {label_file}{problem.labels} labels "
            f"(the {split} split needs one label per image)"
        )
    return (
        f"{where}label {problem.label} at index {problem.index} is outside "
        f"0..{num_classes - 1} ({files.name} has {num_classes} classes; "
        f"{problem.count} label{'s are' if problem.count != 1 else ' is'} out of range)"
    )


def split_file(files: DataFiles, split: str, kind: str) -> Path | None:
    """The expected IDX-style file of ``split`` ("train"/"test") holding ``kind``
    ("labels"/"images"), e.g. ``MNIST/raw/t10k-labels-idx1-ubyte``; None if unclear."""
    split_tokens = {"train"} if split == "train" else {"t10k", "test"}
    matches = [
        name
        for name in files.expected_files
        if kind in (tokens := set(re.split(r"[-_.]", Path(name).name))) and tokens & split_tokens
    ]
    return files.data_dir / matches[0] if len(matches) == 1 else None


@dataclass(frozen=True)
class LabelProblem:
    """What is wrong with a split's labels: a label out of range (its ``index``, ``label`` and
    the ``count`` of such labels), or ``images`` and ``labels`` counts that differ
    (``index`` None)."""

    images: int
    labels: int
    index: int | None = None
    label: int | None = None
    count: int = 0


def label_problem(dataset: Any, num_classes: int) -> LabelProblem | None:
    """What is wrong with the decoded labels of a torchvision dataset (its ``targets`` or
    ``labels``, checked against ``data``), or None if each image has one label in
    ``[0, num_classes)`` or the dataset keeps no such arrays. One pass over the label tensor."""
    data = getattr(dataset, "data", None)
    targets = getattr(dataset, "targets", getattr(dataset, "labels", None))
    if targets is None:
        return None
    try:
        labels = torch.as_tensor(targets).to(torch.int64)
        images = len(data) if data is not None else len(labels)
    except (TypeError, ValueError, RuntimeError):
        return None
    if labels.ndim != 1:  # not one class index per image: not a dataset this module serves
        return None
    if images != len(labels):
        return LabelProblem(images=images, labels=len(labels))
    bad = ((labels < 0) | (labels >= num_classes)).nonzero().reshape(-1)
    if len(bad):
        index = int(bad[0])
        label = int(labels[index])
        return LabelProblem(images, len(labels), index=index, label=label, count=len(bad))
    return None


def _exists(path: Path) -> bool:
    """``path.exists()``, False where it cannot be looked at (an unreadable directory)."""
    try:
        return path.exists()
    except OSError:
        return False


def _last_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else ""


def idx_problem(path: os.PathLike[str] | str) -> str | None:
    """What is wrong with an IDX file (MNIST's format), or None if its size fits its header.

    Only files named like IDX files (``*-ubyte``) are checked."""
    path = Path(path)
    if not path.name.endswith("-ubyte"):
        return None
    try:
        with open(path, "rb") as file:
            header = file.read(4)
            if len(header) < 4 or header[:2] != b"\0\0" or header[2] != 0x08:
                return "not an IDX file of unsigned bytes (bad magic number)"
            dims = file.read(4 * header[3])
        size = path.stat().st_size
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if len(dims) < 4 * header[3]:
        return f"truncated inside its header ({size} bytes)"
    shape = [int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4)]
    expected = 4 + len(dims) + math.prod(shape)
    if size != expected:
        return f"{size} bytes, but its header ({'x'.join(map(str, shape))}) needs {expected}"
    return None
