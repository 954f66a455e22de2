"""A run's ``metrics.csv``: every epoch's rows once, in order, whatever stopped the run."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.errors import RunWriteError
from zoo.runs.files import write_atomically


class MetricsHistory:
    """A run's ``metrics.csv``: the rows of every epoch, each once, in order.

    Rows are kept in memory and the file is rewritten atomically by :meth:`flush`, which the
    run calls with every checkpoint it saves and when training ends; a checkpoint records the
    number of rows flushed with it, so a resumed run :meth:`truncate`\\ s to that number and
    appends, whatever was written after the checkpoint.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.flushed = 0

    def load(self) -> None:
        """Read the rows already in the file (a resumed run appends to them)."""
        try:
            with open(self.path, newline="", encoding="utf-8") as file:
                self.rows = [dict(row) for row in csv.DictReader(file)]
        except FileNotFoundError:
            self.rows = []
        self.flushed = len(self.rows)

    def truncate(self, count: int) -> None:
        del self.rows[count:]

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))

    def flush(self) -> int:
        """Write every row; return how many there are."""
        keys = sorted({key for row in self.rows for key in row})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        try:
            write_atomically(self.path, buffer.getvalue())
        except OSError as error:
            raise RunWriteError(f"cannot write {self.path}", error) from None
        self.flushed = len(self.rows)
        return self.flushed
