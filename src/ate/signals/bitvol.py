"""bitvol scaler (§4.1): DVOL (or a realized-vol proxy) percentile regime → size multiplier."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from ate.config.modules import BitvolConfig
from ate.data.candles import Candle
from ate.data.loaders import DvolPoint
from ate.signals.base import ModuleOutput, SafeModule, Status, Veto, percentile_rank
from ate.signals.rolling import RealizedVol

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
REGIMES = ("low", "normal", "elevated", "high", "extreme")


class _DailySeries:
    """Daily values of one source keyed by UTC day open; caches the sorted window of the last query."""

    __slots__ = ("values", "days", "_version", "_cache_key", "_cache")

    def __init__(self) -> None:
        self.values: dict[int, float] = {}
        self.days: list[int] = []
        self._version = 0
        self._cache_key: tuple[int, int, int] | None = None
        self._cache: list[float] = []

    def set(self, day: int, value: float) -> None:
        if day not in self.values:
            i = bisect_left(self.days, day)
            self.days.insert(i, day)
        self.values[day] = value
        self._version += 1

    def latest_at_or_before(self, day: int) -> int | None:
        i = bisect_right(self.days, day)
        return self.days[i - 1] if i else None

    def window_without(self, day: int, lookback_days: int) -> list[float]:
        """Sorted values dated in (day − lookback, day), i.e. the window minus day D's own entry."""
        key = (day, lookback_days, self._version)
        if key != self._cache_key:
            lo = bisect_left(self.days, day - (lookback_days - 1) * DAY_MS)
            hi = bisect_left(self.days, day)
            self._cache = sorted(self.values[d] for d in self.days[lo:hi])
            self._cache_key = key
        return self._cache


class Bitvol(SafeModule):
    name = "bitvol"
    __slots__ = ("cfg", "_dvol", "_proxy_daily", "rv", "_live", "_garch_sigma")

    def __init__(self, cfg: BitvolConfig, dvol_history: Iterable[DvolPoint] = ()) -> None:
        super().__init__()
        self.cfg = cfg
        self._dvol = _DailySeries()
        self._proxy_daily = _DailySeries()
        self.rv = RealizedVol(cfg.proxy_window)
        self._live: tuple[int, float] | None = None
        self._garch_sigma: float | None = None
        for p in dvol_history:
            self._dvol.set(p.day_open_ms, p.close)

    def push_dvol(self, value: float, ts_ms: int) -> None:
        """A live DVOL value (Deribit `get_volatility_index_data` close) observed at `ts_ms`.

        Once any live value has arrived the module is in live mode: values older than
        `live_max_age_s` fall back to the proxy. The last value pushed on a day stands as its daily value.
        """
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"DVOL value {value!r} is not a positive number")
        if self._live is None or ts_ms >= self._live[0]:
            self._live = (ts_ms, value)
        self._dvol.set(ts_ms - ts_ms % DAY_MS, value)

    def update(self, c: Candle) -> None:
        """A closed 1h candle: feeds the proxy, sampled for the percentile at 00:00 UTC."""
        self.rv.update(c.close)
        close_ms = c.close_ms
        if close_ms % DAY_MS == 0 and self.rv.ready:
            self._proxy_daily.set(close_ms, self.rv.value())
        self.last_ts = close_ms

    def current(self, now_ms: int) -> tuple[str, float, int] | None:
        """(source, value, day D of the value) of the DVOL in force at `now_ms`, or None."""
        if self._live is not None:
            ts, value = self._live
            if 0 <= now_ms - ts <= self.cfg.live_max_age_s * 1000:
                return "dvol", value, ts - ts % DAY_MS
            return None
        today = now_ms - now_ms % DAY_MS
        day = self._dvol.latest_at_or_before(today - DAY_MS)  # completed days only: no look-ahead
        if day is None or today - day > self.cfg.history_max_age_days * DAY_MS:
            return None
        return "dvol", self._dvol.values[day], day

    def evaluate(self, now_ms: int, garch_sigma: float | None = None) -> ModuleOutput:  # type: ignore[override]
        self._garch_sigma = garch_sigma
        return super().evaluate(now_ms)

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        cfg = self.cfg
        cur = self.current(now_ms)
        if cur is not None:
            source, value, day = cur
            series = self._dvol
            status = Status.OK
        elif self.rv.ready:
            source, value, day = "proxy", self.rv.value(), now_ms - now_ms % DAY_MS
            series = self._proxy_daily
            status = Status.DEGRADED
        else:
            return ModuleOutput(self.name, self.last_ts, Status.WARMUP, None, cfg.warmup_multiplier, "unknown",
                                values={"source": "none"}, reason="no DVOL and too little history for the proxy")
        window = series.window_without(day, cfg.lookback_days)
        n = len(window) + 1
        values: dict[str, object] = {"source": source, "value": value, "day": day, "n": n}
        gs = self._garch_sigma
        values["vrp"] = value - gs if (source == "dvol" and gs is not None) else None
        ts = self.last_ts
        if source == "dvol":
            ts = self._live[0] if self._live is not None else day + DAY_MS
        if n < cfg.min_history:
            return ModuleOutput(self.name, ts, Status.WARMUP, None, cfg.warmup_multiplier, "unknown",
                                values=values, reason=f"{n}/{cfg.min_history} daily values ({source})")
        sorted_all = window.copy()
        sorted_all.insert(bisect_left(sorted_all, value), value)
        pct = percentile_rank(sorted_all, value)
        k = sum(1 for b in cfg.regime_bounds if pct >= b)
        regime = REGIMES[k]
        values["percentile"] = pct
        vetoes = (Veto("directional", f"bitvol {source} percentile {pct:.2f} is extreme"),) if k == 4 else ()
        return ModuleOutput(self.name, ts, status, None, cfg.multipliers[k], regime, vetoes, values=values,
                            reason="" if source == "dvol" else "DVOL unavailable: realized-vol proxy")

    def _neutral(self, ts: int) -> ModuleOutput:
        return ModuleOutput(self.name, ts, Status.ERROR, None, 1.0, "unknown")
