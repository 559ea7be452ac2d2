"""Column tables: the simulator's working form of a batch of rows, before it becomes a Polars frame.

A `Table` is a dict of equal-length numpy arrays. String-valued fields that vary (users, prompt
versions, tags) are stored as codes into one append-only `VOCAB`; only `frames.py` turns codes
back into strings, once per batch. Code -1 means null.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import numpy as np
import polars as pl


class Vocab:
    """An append-only table of strings; `code(s)` is stable for the life of the process."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._strings: list[str] = []
        self._series: pl.Series | None = None
        self._lock = threading.Lock()  # simulations may run in several threads at once

    def code(self, value: str) -> int:
        """The code of a string, added on first use."""
        found = self._codes.get(value)
        if found is not None:
            return found
        with self._lock:
            found = self._codes.get(value)
            if found is None:
                self._strings.append(value)
                found = self._codes[value] = len(self._strings) - 1
                self._series = None
            return found

    def strings(self, codes: np.ndarray) -> pl.Series:
        """Strings for an array of codes (-1 → null)."""
        with self._lock:
            if self._series is None:
                self._series = pl.Series([*self._strings, None], dtype=pl.String)
            series = self._series
        index = np.where(codes < 0, len(series) - 1, codes).astype(np.int64)
        return series.gather(index)


VOCAB = Vocab()


class Table:
    """Equal-length numpy columns."""

    def __init__(self, columns: dict[str, np.ndarray] | None = None) -> None:
        self.columns: dict[str, np.ndarray] = dict(columns or {})

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        self.columns[name] = values

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def take(self, index: np.ndarray) -> Table:
        """Rows by integer index or boolean mask."""
        return Table({name: values[index] for name, values in self.columns.items()})

    def copy(self) -> Table:
        """A deep copy."""
        return Table({name: values.copy() for name, values in self.columns.items()})

    @staticmethod
    def concat(tables: Iterable[Table]) -> Table:
        """Rows of several tables with the same columns, in order (empty tables are skipped)."""
        parts = [t for t in tables if len(t)]
        if not parts:
            return Table()
        names = list(parts[0].columns)
        return Table({name: np.concatenate([t.columns[name] for t in parts]) for name in names})
