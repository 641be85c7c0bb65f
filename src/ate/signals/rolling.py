"""O(1) rolling windows shared by the modules (plain floats, deques, exact re-sums against drift)."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque


class RollingSum:
    """Sum of the last `n` values. Re-summed exactly every `n` updates so float drift cannot build up."""

    __slots__ = ("n", "values", "total", "_since_resum")

    def __init__(self, n: int) -> None:
        self.n = n
        self.values: deque[float] = deque(maxlen=n)
        self.total = 0.0
        self._since_resum = 0

    def push(self, x: float) -> None:
        values = self.values
        if len(values) == self.n:
            self.total -= values[0]
        values.append(x)
        self.total += x
        self._since_resum += 1
        if self._since_resum >= self.n:
            self.total = math.fsum(values)
            self._since_resum = 0

    @property
    def full(self) -> bool:
        return len(self.values) == self.n

    def __len__(self) -> int:
        return len(self.values)


class RealizedVol:
    """`std(ln returns of the last n closes' returns, ddof 1)·√8760·100` (§4.1 proxy) on 1h closes."""

    __slots__ = ("n", "_prev", "_sum", "_sumsq")

    def __init__(self, n: int = 720) -> None:
        self.n = n
        self._prev: float | None = None
        self._sum = RollingSum(n)
        self._sumsq = RollingSum(n)

    def update(self, close: float) -> None:
        if self._prev is not None:
            r = math.log(close / self._prev)
            self._sum.push(r)
            self._sumsq.push(r * r)
        self._prev = close

    @property
    def ready(self) -> bool:
        return self._sum.full

    def value(self) -> float:
        """Annualised % (NaN until n returns are available)."""
        if not self._sum.full:
            return math.nan
        n = self.n
        mean = self._sum.total / n
        var = (self._sumsq.total - n * mean * mean) / (n - 1)
        return math.sqrt(max(var, 0.0)) * math.sqrt(8760.0) * 100.0


class SortedWindow:
    """The last `n` values, also kept sorted, for O(log n) percentile ranks."""

    __slots__ = ("n", "order", "sorted")

    def __init__(self, n: int) -> None:
        self.n = n
        self.order: deque[float] = deque()
        self.sorted: list[float] = []

    def push(self, x: float) -> None:
        if len(self.order) == self.n:
            old = self.order.popleft()
            del self.sorted[bisect_left(self.sorted, old)]
        self.order.append(x)
        insort(self.sorted, x)

    def __len__(self) -> int:
        return len(self.order)
