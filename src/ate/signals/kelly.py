"""kelly scaler (§4.3): fractional Kelly equity fraction from the last closed round trips."""

from __future__ import annotations

from collections import deque
from typing import Any

from ate.config.modules import KellyConfig
from ate.signals.base import ModuleOutput, SafeModule, Status, Veto


def full_kelly(p: float, b: float) -> float:
    """`f* = p − (1−p)/b`."""
    return p - (1.0 - p) / b


def clipped_fraction(f_star: float, fraction: float = 0.25, cap: float = 0.05) -> float:
    return min(max(fraction * f_star, 0.0), cap)


class Kelly(SafeModule):
    name = "kelly"
    __slots__ = ("cfg", "_trades", "_hypothetical")

    def __init__(self, cfg: KellyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self._trades: deque[float] = deque(maxlen=cfg.lookback_trades)
        self._hypothetical = 0

    def record_trade(self, net_pnl: float, entry_notional: float, ts_ms: int, hypothetical: bool = False) -> None:
        """A closed round trip: net P&L after fees and funding, and its entry notional (quote).

        `hypothetical` trades (booked while kelly is 0) feed kelly so it can recover, nothing else.
        """
        if not entry_notional > 0:
            raise ValueError(f"entry notional {entry_notional!r} must be positive")
        self._trades.append(net_pnl / entry_notional)
        self._hypothetical += hypothetical
        self.last_ts = max(self.last_ts, ts_ms)

    def stats(self) -> tuple[int, int, float, float]:
        """(wins, losses, mean win, mean |loss|) over the window; |x| below `ignore_below` is ignored."""
        eps = self.cfg.ignore_below
        wins = [x for x in self._trades if x > eps]
        losses = [-x for x in self._trades if x < -eps]
        mw = sum(wins) / len(wins) if wins else 0.0
        ml = sum(losses) / len(losses) if losses else 0.0
        return len(wins), len(losses), mw, ml

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        cfg = self.cfg
        w, n_loss, mw, ml = self.stats()
        values: dict[str, Any] = {"wins": w, "losses": n_loss, "mean_win": mw, "mean_loss": ml,
                                  "hypothetical_trades": self._hypothetical}
        if w + n_loss < cfg.min_trades:
            return ModuleOutput(self.name, now_ms, Status.WARMUP, None, cfg.default_fraction, values=values,
                                reason=f"{w + n_loss}/{cfg.min_trades} trades")
        p = w / (w + n_loss)
        if n_loss == 0:
            f_star = 1.0
        elif w == 0:
            f_star = 0.0
        else:
            b = mw / ml
            f_star = full_kelly(p, b)
            values["b"] = b
        f = clipped_fraction(f_star, cfg.fraction, cfg.cap)
        values.update(p=p, f_star=f_star, f=f)
        vetoes = (Veto("directional", f"kelly fraction 0 (f* {f_star:.4f})"),) if f <= 0 else ()
        return ModuleOutput(self.name, now_ms, Status.OK, None, f, vetoes=vetoes, values=values)

    def _neutral(self, ts: int) -> ModuleOutput:
        return ModuleOutput(self.name, ts, Status.ERROR, None, self.cfg.default_fraction)

    def export_state(self) -> dict[str, Any]:
        return {"trades": list(self._trades), "hypothetical": self._hypothetical, "last_ts": self.last_ts}

    def import_state(self, state: dict[str, Any]) -> None:
        self._trades.clear()
        self._trades.extend(float(x) for x in state.get("trades", []))
        self._hypothetical = int(state.get("hypothetical", 0))
        self.last_ts = int(state.get("last_ts", 0))
