"""lxvx voter (§3.3): the project's own volume-surge score and deviation from a rolling VWAP."""

from __future__ import annotations

import math

from ate.config.modules import LxvxConfig
from ate.data.candles import Candle
from ate.signals.base import HOLD_0, GapTracker, ModuleOutput, SafeModule, Side, Status, Vote, worst
from ate.signals.rolling import RollingSum


class Lxvx(SafeModule):
    name = "lxvx"
    __slots__ = ("cfg", "stale_after_ms", "_prev_vol", "_pv", "_v", "_last_vol", "_close", "_bars", "_gaps")

    def __init__(self, cfg: LxvxConfig, interval_ms: int, stale_grace_ms: int = 120_000,
                 max_gap_bars: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.stale_after_ms = interval_ms + stale_grace_ms
        self._prev_vol = RollingSum(cfg.volume_window)  # V_{t−20..t−1}
        self._pv = RollingSum(cfg.vwap_window)  # Σ TP·V over the last 100 bars incl. t
        self._v = RollingSum(cfg.vwap_window)
        self._last_vol: float | None = None
        self._close = math.nan
        self._bars = 0
        self._gaps = GapTracker(interval_ms, max_gap_bars, cfg.vwap_window)

    def update(self, c: Candle) -> None:
        if self._last_vol is not None:
            self._prev_vol.push(self._last_vol)
        self._last_vol = c.volume
        self._pv.push((c.high + c.low + c.close) / 3.0 * c.volume)
        self._v.push(c.volume)
        self._close = c.close
        self._bars += 1
        self._gaps.update(c.open_ms)
        self.last_ts = c.close_ms

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        cfg = self.cfg
        ts = self.last_ts
        stale = Status.STALE if now_ms - ts > self.stale_after_ms else Status.OK
        status = worst(stale, Status.DEGRADED if self._gaps.degraded else Status.OK)
        if self._bars < cfg.vwap_window:
            return ModuleOutput(self.name, ts, worst(stale, Status.WARMUP), HOLD_0,
                                cfg.multiplier_min, reason=f"{self._bars}/{cfg.vwap_window} bars")
        mean_vol = self._prev_vol.total / len(self._prev_vol)
        if mean_vol <= 0 or self._v.total <= 0 or not self._last_vol:
            return ModuleOutput(self.name, ts, worst(stale, Status.DEGRADED), HOLD_0,
                                cfg.multiplier_min, reason="zero volume")
        score = self._last_vol / mean_vol
        vwap = self._pv.total / self._v.total
        dev = (self._close - vwap) / vwap
        vote = Vote(Side.HOLD, cfg.hold_confidence)
        if score > cfg.score_threshold and abs(dev) < cfg.max_deviation and dev != 0.0:
            conf = (0.5 + 0.25 * min(1.0, (score - cfg.score_threshold) / cfg.score_threshold)
                    + 0.25 * (1.0 - abs(dev) / cfg.max_deviation))
            vote = Vote(Side.BUY if dev > 0 else Side.SELL, conf)
        mult = min(max(score, cfg.multiplier_min), cfg.multiplier_max)
        return ModuleOutput(self.name, ts, status, vote, mult,
                            values={"score": score, "vwap": vwap, "deviation": dev, "volume": self._last_vol,
                                    "mean_volume": mean_vol})

    def _neutral(self, ts: int) -> ModuleOutput:
        return ModuleOutput(self.name, ts, Status.ERROR, HOLD_0, self.cfg.multiplier_min)
