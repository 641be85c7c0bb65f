"""Deribit DVOL history served on the simulated clock (`GET /api/v2/public/get_volatility_index_data`).

The shipped history has one close per UTC day, so a 1D candle is open = high = low = close. A day's
candle is served only once the simulated clock has passed its close: the response never holds a value
dated after the clock, nor a close that was not yet known at that time (no look-ahead).

Response shape is Deribit's JSON-RPC 2.0 envelope: ``{"jsonrpc","result":{"data":[[ts,o,h,l,c],...],
"continuation"},"usIn","usOut","usDiff","testnet"}``; errors use ``{"jsonrpc","error":{"code",
"message","data":{"reason","param"}}}`` with code -32602 "Invalid params", as Deribit does.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ate.data.loaders import DvolPoint, load_dvol

DAY_MS = 86_400_000
# Deribit's resolutions (seconds, or "1D"). The shipped history is daily, so only 1D can be served.
DERIBIT_RESOLUTIONS = ("1", "60", "3600", "43200", "1D")
MAX_CANDLES = 1000  # [ate choice] page size; older candles come through `continuation`


class DvolRequestError(ValueError):
    """A request Deribit answers with JSON-RPC error -32602; ``param`` names the offending parameter."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"{param}: {reason}")
        self.param = param
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DvolPage:
    data: list[list[float | int]]
    continuation: int | None


class DvolHistory:
    """Daily DVOL closes per currency, queried as Deribit candles without look-ahead."""

    def __init__(self, series: dict[str, list[DvolPoint]], page_size: int = MAX_CANDLES,
                 stamp: Callable[[int], int] | None = None) -> None:
        stamp = stamp or (lambda ms: ms)  # data time -> world time (the simulator's wall mode re-stamps)
        self._opens = {c: [stamp(p.day_open_ms) for p in pts] for c, pts in series.items()}
        self._ends = {c: [stamp(p.day_open_ms + DAY_MS) for p in pts] for c, pts in series.items()}
        self._closes = {c: [p.close for p in pts] for c, pts in series.items()}
        self.page_size = page_size

    @classmethod
    def from_files(cls, files: dict[str, str | Path], stamp: Callable[[int], int] | None = None) -> DvolHistory:
        return cls({currency.upper(): sorted(load_dvol(path), key=lambda p: p.day_open_ms)
                    for currency, path in files.items()}, stamp=stamp)

    def page(self, currency: str, start_ms: int, end_ms: int, resolution: str, now_ms: int) -> DvolPage:
        """Candles with start_ms <= ts <= end_ms whose day closed by now_ms; newest page first."""
        opens = self._opens.get(currency.upper())
        if opens is None:
            raise DvolRequestError("currency", f"no DVOL history for {currency!r}")
        if resolution not in DERIBIT_RESOLUTIONS:
            raise DvolRequestError("resolution", f"must be one of {', '.join(DERIBIT_RESOLUTIONS)}")
        if resolution != "1D":
            raise DvolRequestError("resolution", "the simulator holds daily DVOL only; use 1D")
        if start_ms > end_ms:
            raise DvolRequestError("start_timestamp", "must not be after end_timestamp")
        lo = bisect.bisect_left(opens, start_ms)
        # the candle must have closed on the sim clock
        hi = min(bisect.bisect_right(opens, end_ms), bisect.bisect_right(self._ends[currency.upper()], now_ms))
        continuation = None
        if hi - lo > self.page_size:
            lo = hi - self.page_size
            continuation = opens[lo] - 1  # next request's end_timestamp: strictly older candles
        closes = self._closes[currency.upper()]
        data = [[opens[i], closes[i], closes[i], closes[i], closes[i]] for i in range(lo, hi)]
        return DvolPage(data, continuation)


def _int_param(query: dict[str, str], name: str) -> int:
    raw = query.get(name)
    if raw is None:
        raise DvolRequestError(name, "missing")
    try:
        return int(raw)
    except ValueError:
        raise DvolRequestError(name, "must be an integer (ms)") from None


def dvol_response(history: DvolHistory, query: dict[str, str], now_ms: Callable[[], int]) -> dict:
    """The JSON-RPC body for one request; time fields come from the simulated clock."""
    us_in = now_ms() * 1000
    body: dict[str, object] = {"jsonrpc": "2.0"}
    if "id" in query:
        body["id"] = int(query["id"]) if query["id"].isdigit() else query["id"]
    try:
        page = history.page(query.get("currency", ""), _int_param(query, "start_timestamp"),
                            _int_param(query, "end_timestamp"), query.get("resolution", ""), us_in // 1000)
        body["result"] = {"data": page.data, "continuation": page.continuation}
    except DvolRequestError as exc:
        body["error"] = {"code": -32602, "message": "Invalid params",
                         "data": {"reason": exc.reason, "param": exc.param}}
    us_out = now_ms() * 1000
    body.update(usIn=us_in, usOut=us_out, usDiff=us_out - us_in, testnet=False)
    return body
