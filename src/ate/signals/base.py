"""The module contract (signals-and-strategies.md §2): output record, statuses, safe evaluation."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec


class Status(StrEnum):
    OK = "OK"
    DEGRADED = "DEGRADED"
    WARMUP = "WARMUP"
    STALE = "STALE"
    ERROR = "ERROR"


_RANK = {Status.OK: 0, Status.DEGRADED: 1, Status.WARMUP: 2, Status.STALE: 3, Status.ERROR: 4}


def worst(*statuses: Status) -> Status:
    """The status of highest precedence: ERROR > STALE > WARMUP > DEGRADED > OK."""
    return max(statuses, key=_RANK.__getitem__)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


@dataclass(frozen=True, slots=True)
class Vote:
    side: Side
    confidence: float


HOLD_0 = Vote(Side.HOLD, 0.0)


@dataclass(frozen=True, slots=True)
class Veto:
    """Blocks new entries in `scope` (directional | all | hedged | venue:<id> | market:<id>), never exits."""

    scope: str
    reason: str


@dataclass(frozen=True, slots=True)
class Action:
    """REDUCE (pct, target_fraction) | FLATTEN_AND_HALT | HEDGE (asset, venue, instrument, qty)."""

    kind: str
    pct: float | None = None
    target_fraction: float | None = None
    asset: str | None = None
    venue: str | None = None
    instrument: str | None = None
    qty: float | None = None


def _jsonable(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "__dataclass_fields__"):
        return {k: _jsonable(getattr(x, k)) for k in x.__dataclass_fields__ if getattr(x, k) is not None}
    return x


class ModuleOutput(msgspec.Struct, frozen=True):
    """One module's evaluation (§2). A frozen msgspec struct: built on every 1m close, so it must be cheap."""

    module: str
    ts: int  # close time (UTC ms) of the newest input
    status: Status
    vote: Vote | None = None  # None for modules that never vote (scalers, overrides)
    size_multiplier: float | None = None
    regime: str | None = None
    vetoes: tuple[Veto, ...] = ()
    actions: tuple[Action, ...] = ()
    values: Mapping[str, Any] = {}
    reason: str = ""

    @property
    def veto(self) -> Veto | None:
        return self.vetoes[0] if self.vetoes else None

    @property
    def action(self) -> Action | None:
        return self.actions[0] if self.actions else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (non-finite floats become null)."""
        return {
            "module": self.module,
            "ts": self.ts,
            "status": self.status.value,
            "vote": None if self.vote is None else {"side": self.vote.side.value,
                                                    "confidence": _jsonable(self.vote.confidence)},
            "size_multiplier": _jsonable(self.size_multiplier),
            "regime": self.regime,
            "veto": _jsonable(self.veto),
            "vetoes": _jsonable(self.vetoes),
            "actions": _jsonable(self.actions),
            "values": _jsonable(self.values),
            "reason": self.reason,
        }

    def finite(self) -> bool:
        isfinite = math.isfinite
        m = self.size_multiplier
        if m is not None and not isfinite(m):
            return False
        if self.vote is not None and not isfinite(self.vote.confidence):
            return False
        for a in self.actions:
            if (a.qty is not None and not isfinite(a.qty)) or (a.pct is not None and not isfinite(a.pct)):
                return False
        return True


def percentile_rank(sorted_values: list[float], a: float) -> float:
    """`100·(#{x<a} + ½#{x=a})/N` over an ascending list (the one percentile rule of §3.1)."""
    lo = bisect_left(sorted_values, a)
    hi = bisect_right(sorted_values, a)
    return 100.0 * (lo + 0.5 * (hi - lo)) / len(sorted_values)


class SafeModule:
    """Evaluation that never raises (§2): an exception or a non-finite output becomes ERROR + neutral.

    Subclasses implement `_evaluate(now_ms)` and `_neutral(ts)`; `consecutive_errors` counts ERRORs
    in a row so the caller can alert the operator at 3.
    """

    name = "module"
    __slots__ = ("consecutive_errors", "last_ts")

    def __init__(self) -> None:
        self.consecutive_errors = 0
        self.last_ts = 0

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        raise NotImplementedError

    def _neutral(self, ts: int) -> ModuleOutput:
        raise NotImplementedError

    def evaluate(self, now_ms: int) -> ModuleOutput:
        try:
            out = self._evaluate(now_ms)
            if not out.finite():
                raise FloatingPointError("non-finite output")
        except Exception as exc:  # the engine must never see a module exception (§2)
            self.consecutive_errors += 1
            n = self._neutral(self.last_ts)
            return msgspec.structs.replace(n, status=Status.ERROR, actions=(),
                                           reason=f"{type(exc).__name__}: {exc}")
        self.consecutive_errors = 0
        return out

    @property
    def alert(self) -> bool:
        return self.consecutive_errors >= 3


class GapTracker:
    """DEGRADED when a gap of more than `max_gap_bars` missing bars lies within the last `lookback` bars."""

    __slots__ = ("interval_ms", "max_gap_bars", "lookback", "_last_open", "_bars_since_gap")

    def __init__(self, interval_ms: int, max_gap_bars: int, lookback: int) -> None:
        self.interval_ms = interval_ms
        self.max_gap_bars = max_gap_bars
        self.lookback = lookback
        self._last_open: int | None = None
        self._bars_since_gap = lookback + 1

    def update(self, open_ms: int) -> None:
        if self._last_open is not None and (open_ms - self._last_open) // self.interval_ms - 1 > self.max_gap_bars:
            self._bars_since_gap = 0
        else:
            self._bars_since_gap += 1
        self._last_open = open_ms

    @property
    def degraded(self) -> bool:
        return self._bars_since_gap < self.lookback
