"""Compact storage for a backtest's long series and records (a year of 1m steps is ~520,000 rows).

A list of small objects costs ~100 bytes a row (the object, its boxed float, the list slot); `PairSeries`
holds 8 bytes per column per row in ``array`` columns and builds a row only when one is read. A decision
record (``Decision.to_dict``, ~10 KB of dicts) is kept pickled (~1.4 KB) by `RecordLog`. Everything
round-trips exactly (int64 times, float64 values, pickle), so what is computed from them is bit-identical.
"""

from __future__ import annotations

import pickle
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload


class PairSeries(Sequence[tuple[int, float]]):
    """(time ms, value) rows: closes per step, period returns."""

    __slots__ = ("ts", "values")

    def __init__(self, rows: Iterable[tuple[int, float]] = ()) -> None:
        self.ts = array("q")
        self.values = array("d")
        for t, v in rows:
            self.append((t, v))

    def append(self, row: tuple[int, float]) -> None:
        self.ts.append(row[0])
        self.values.append(row[1])

    def __len__(self) -> int:
        return len(self.ts)

    @overload
    def __getitem__(self, i: int) -> tuple[int, float]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[int, float]]: ...

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, slice):
            return list(zip(self.ts[i], self.values[i], strict=True))
        return self.ts[i], self.values[i]

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return zip(self.ts, self.values, strict=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class RecordLog(Sequence[dict[str, Any]]):
    """Plain-data records (dicts of JSON types) held pickled; each read returns a fresh copy. Pickled in
    this process for this process only: nothing here is ever read from outside."""

    __slots__ = ("_blobs",)

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        self._blobs: list[bytes] = []
        for r in records:
            self.append(r)

    def append(self, record: dict[str, Any]) -> None:
        self._blobs.append(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))

    def __len__(self) -> int:
        return len(self._blobs)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if isinstance(i, slice):
            return [pickle.loads(b) for b in self._blobs[i]]  # noqa: S301 - our own bytes, see the class doc
        return pickle.loads(self._blobs[i])  # noqa: S301

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (pickle.loads(b) for b in self._blobs)  # noqa: S301

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]
