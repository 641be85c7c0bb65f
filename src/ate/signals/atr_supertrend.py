"""atr_supertrend voter (§3.1): Wilder ATR, Supertrend, SMA filter, ATR-percentile regime."""

from __future__ import annotations

import math
from collections import deque

from ate.config.modules import AtrSupertrendConfig
from ate.data.candles import Candle
from ate.signals.base import (
    HOLD_0,
    GapTracker,
    ModuleOutput,
    SafeModule,
    Side,
    Status,
    Veto,
    Vote,
    percentile_rank,
    worst,
)
from ate.signals.rolling import RollingSum, SortedWindow

UP, DOWN = 1, -1


class WilderATR:
    """ATR(n) with TA-Lib seeding: at bar index n the mean of TR_1..TR_n, then `(ATR·(n−1) + TR)/n`."""

    __slots__ = ("n", "value", "_prev_close", "_count", "_seed")

    def __init__(self, n: int) -> None:
        self.n = n
        self.value = math.nan
        self._prev_close: float | None = None
        self._count = 0
        self._seed = 0.0

    def update(self, high: float, low: float, close: float) -> float:
        pc = self._prev_close
        self._prev_close = close
        if pc is None:
            return self.value
        tr = max(high - low, abs(high - pc), abs(low - pc))
        n = self.n
        if self._count < n:
            self._count += 1
            self._seed += tr
            if self._count == n:
                self.value = self._seed / n
        else:
            self.value = (self.value * (n - 1) + tr) / n
        return self.value


class Supertrend:
    """Supertrend(n, m) on Wilder ATR(n); direction 0 until the first ATR value (bar index n)."""

    __slots__ = ("mult", "atr", "direction", "upper", "lower", "_prev_close")

    def __init__(self, n: int = 10, mult: float = 3.0) -> None:
        self.mult = mult
        self.atr = WilderATR(n)
        self.direction = 0
        self.upper = math.nan  # final upper band FU
        self.lower = math.nan  # final lower band FL
        self._prev_close = math.nan

    def update(self, high: float, low: float, close: float) -> int:
        atr = self.atr.update(high, low, close)
        pc = self._prev_close
        self._prev_close = close
        if atr != atr:  # NaN: still seeding
            return 0
        mid = (high + low) / 2.0
        bu = mid + self.mult * atr
        bl = mid - self.mult * atr
        if self.direction == 0:
            self.upper, self.lower, self.direction = bu, bl, UP
            return UP
        fu_prev, fl_prev = self.upper, self.lower
        self.upper = bu if (bu < fu_prev or pc > fu_prev) else fu_prev
        self.lower = bl if (bl > fl_prev or pc < fl_prev) else fl_prev
        if self.direction == UP and close < fl_prev:
            self.direction = DOWN
        elif self.direction == DOWN and close > fu_prev:
            self.direction = UP
        return self.direction

    @property
    def line(self) -> float:
        if self.direction == 0:
            return math.nan
        return self.lower if self.direction == UP else self.upper


class AtrSupertrend(SafeModule):
    name = "atr_supertrend"
    __slots__ = ("cfg", "interval_ms", "stale_after_ms", "atr", "st", "_fast", "_slow", "_dirs", "_atrs",
                 "_close", "_bars", "_gaps", "_warm_bars")

    def __init__(self, cfg: AtrSupertrendConfig, interval_ms: int, stale_grace_ms: int = 120_000,
                 max_gap_bars: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.interval_ms = interval_ms
        self.stale_after_ms = interval_ms + stale_grace_ms
        self.atr = WilderATR(cfg.atr_period)
        self.st = Supertrend(cfg.st_period, cfg.st_multiplier)
        self._fast = RollingSum(cfg.sma_fast)
        self._slow = RollingSum(cfg.sma_slow)
        self._dirs: deque[int] = deque(maxlen=cfg.strength_window)
        self._atrs = SortedWindow(cfg.regime_window)
        self._close = math.nan
        self._bars = 0
        self._warm_bars = cfg.atr_period + cfg.regime_window  # 114 with the defaults
        self._gaps = GapTracker(interval_ms, max_gap_bars, self._warm_bars)

    def update(self, c: Candle) -> None:
        self._bars += 1
        self._gaps.update(c.open_ms)
        atr = self.atr.update(c.high, c.low, c.close)
        d = self.st.update(c.high, c.low, c.close)
        if d:
            self._dirs.append(d)
        self._fast.push(c.close)
        self._slow.push(c.close)
        if atr == atr:
            self._atrs.push(atr)
        self._close = c.close
        self.last_ts = c.open_ms + self.interval_ms

    def _values(self, pct: float, regime: str, strength: float) -> dict[str, float | int | str]:
        return {
            "atr": self.atr.value, "atr_pct": pct, "atr_st": self.st.atr.value, "st_line": self.st.line,
            "st_dir": self.st.direction, "st_upper": self.st.upper, "st_lower": self.st.lower,
            "sma_fast": self._fast.total / len(self._fast) if len(self._fast) else math.nan,
            "sma_slow": self._slow.total / len(self._slow) if len(self._slow) else math.nan,
            "strength": strength, "regime": regime, "close": self._close,
        }

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        cfg = self.cfg
        ts = self.last_ts
        if self._bars < self._warm_bars:
            return ModuleOutput(self.name, ts, Status.WARMUP, HOLD_0, None, "unknown",
                                values=self._values(math.nan, "unknown", math.nan),
                                reason=f"{self._bars}/{self._warm_bars} bars")
        a = self.atr.value
        pct = percentile_rank(self._atrs.sorted, a)
        if pct >= 95.0:
            regime, factor = "extreme", 0.0
        elif pct >= 75.0:
            regime, factor = "high", cfg.regime_factor_high
        elif pct <= 25.0:
            regime, factor = "low", cfg.regime_factor_low
        else:
            regime, factor = "normal", cfg.regime_factor_normal
        d = self.st.direction
        strength = self._dirs.count(d) / len(self._dirs)
        fast = self._fast.total / cfg.sma_fast
        slow = self._slow.total / cfg.sma_slow
        close = self._close
        vetoes: tuple[Veto, ...] = ()
        if regime == "extreme":
            vote = Vote(Side.HOLD, 1.0)
            vetoes = (Veto("directional", f"ATR percentile {pct:.1f} is extreme"),)
        elif d == UP and fast > slow and close > fast:
            vote = Vote(Side.BUY, (0.4 + 0.6 * strength) * factor)
        elif d == DOWN and fast < slow and close < fast:
            vote = Vote(Side.SELL, (0.4 + 0.6 * strength) * factor)
        else:
            vote = Vote(Side.HOLD, cfg.hold_confidence)
        status = worst(Status.DEGRADED if self._gaps.degraded else Status.OK,
                       Status.STALE if now_ms - ts > self.stale_after_ms else Status.OK)
        return ModuleOutput(self.name, ts, status, vote, None, regime, vetoes,
                            values=self._values(pct, regime, strength))

    def _neutral(self, ts: int) -> ModuleOutput:
        return ModuleOutput(self.name, ts, Status.ERROR, HOLD_0, None, "unknown")
