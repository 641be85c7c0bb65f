"""Typed columns for a backtest's per-step series (a year of 1m steps is ~520,000 rows).

A list of small objects costs ~100 bytes a row (the object, its boxed float, the list slot); these hold
8 bytes per column per row in ``array`` columns and build a row only when one is read. Values round-trip
exactly (int64 times, float64 values), so statistics computed over them are bit-identical.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload


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
