"""multi_timeframe voter (§3.2): Supertrend direction on 15m/1h/4h/1d, weighted."""

from __future__ import annotations

from collections.abc import Mapping

from ate.config.modules import MultiTimeframeConfig
from ate.data.candles import INTERVAL_MS, Candle
from ate.signals.atr_supertrend import DOWN, UP, Supertrend
from ate.signals.base import HOLD_0, ModuleOutput, SafeModule, Side, Status, Vote


def weigh_directions(directions: Mapping[str, int], weights: Mapping[str, float]) -> Vote:
    """Over the available weight W: BUY U/W if U > D, SELL D/W if D > U, tie HOLD 0.5."""
    w_up = sum(weights[tf] for tf, d in directions.items() if d == UP)
    w_down = sum(weights[tf] for tf, d in directions.items() if d == DOWN)
    total = w_up + w_down
    if total <= 0:
        return HOLD_0
    if w_up > w_down:
        return Vote(Side.BUY, w_up / total)
    if w_down > w_up:
        return Vote(Side.SELL, w_down / total)
    return Vote(Side.HOLD, 0.5)


class MultiTimeframe(SafeModule):
    name = "multi_timeframe"
    __slots__ = ("cfg", "base_ms", "_st", "_counts", "_need")

    def __init__(self, cfg: MultiTimeframeConfig, base_ms: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.base_ms = base_ms
        self._st = {tf: Supertrend(cfg.st_period, cfg.st_multiplier) for tf in cfg.weights}
        self._counts = dict.fromkeys(cfg.weights, 0)
        self._need = cfg.st_period + 1  # a direction exists from bucket index n

    def update(self, tf: str, c: Candle) -> None:
        st = self._st.get(tf)
        if st is None:
            return
        st.update(c.high, c.low, c.close)
        self._counts[tf] += 1
        if c.close_ms > self.last_ts:
            self.last_ts = c.close_ms

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        available: dict[str, int] = {}
        below_base, short = [], []
        for tf, st in self._st.items():
            if INTERVAL_MS[tf] < self.base_ms:
                below_base.append(tf)
            elif self._counts[tf] < self._need:
                short.append(tf)
            else:
                available[tf] = st.direction
        values: dict[str, object] = {f"dir_{tf}": self._st[tf].direction or None for tf in self._st}
        values["available"] = sorted(available)
        ts = self.last_ts
        if len(available) < self.cfg.min_available:
            return ModuleOutput(self.name, ts, Status.WARMUP, HOLD_0, values=values,
                                reason=f"{len(available)} timeframes available")
        weights = self.cfg.weights
        vote = weigh_directions(available, weights)
        status, reason = Status.OK, ""
        if short:
            status, reason = Status.WARMUP, f"short history on {','.join(short)}"
        elif below_base:
            status, reason = Status.DEGRADED, f"{','.join(below_base)} below the base timeframe"
        return ModuleOutput(self.name, ts, status, vote, values=values, reason=reason)

    def _neutral(self, ts: int) -> ModuleOutput:
        return ModuleOutput(self.name, ts, Status.ERROR, HOLD_0)
