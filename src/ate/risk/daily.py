"""Daily loss anchored at 00:00 UTC and the equity peak, persisted so a restart resets neither.

Equity is mark-to-market account equity in USD: capital + realised + unrealised P&L − fees + funding
(:func:`pnl_total` sums those parts over positions). External flows (deposits > 0, withdrawals < 0)
shift the day's anchor and the peak so they never count as profit or loss.

The anchor of a new day is the last equity seen before 00:00 UTC (the best estimate of equity at
midnight). After downtime across midnight that attributes the loss made while down to the new day:
conservative, never optimistic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from ate.model import EngineEvent, Position, Severity
from ate.risk.events import DAILY_KEY, RISK_BREACH
from ate.risk.store import StateStore

DAY_MS = 86_400_000
ZERO = Decimal(0)


def pnl_total(positions: Iterable[Position]) -> Decimal:
    return sum((p.realized_pnl + p.unrealized_pnl - p.fees + p.funding for p in positions), ZERO)


class DailyLossTracker:
    def __init__(self, store: StateStore, limit_usd: Decimal, clock: Callable[[], int],
                 persist_every_ms: int = 60_000) -> None:
        self.store = store
        self.limit = limit_usd
        self.clock = clock
        self.persist_every_ms = persist_every_ms
        rec = store.get_state(DAILY_KEY) or {}
        self.day_ms: int | None = rec.get("day_ms")
        self.e_day0 = Decimal(rec["e_day0"]) if "e_day0" in rec else None
        self.peak = Decimal(rec["peak"]) if "peak" in rec else None
        self.equity = Decimal(rec["last_equity"]) if "last_equity" in rec else None
        self.breached_day: int | None = rec.get("breached_day")
        self._saved_ms = rec.get("last_ms", 0)

    @property
    def loss(self) -> Decimal:
        """Today's loss in USD (0 when up on the day)."""
        if self.e_day0 is None or self.equity is None:
            return ZERO
        return max(ZERO, self.e_day0 - self.equity)

    @property
    def loss_fraction(self) -> float:
        return float(self.loss / self.e_day0) if self.e_day0 else 0.0

    @property
    def drawdown(self) -> float:
        return float(1 - self.equity / self.peak) if self.peak and self.equity is not None else 0.0

    def update(self, equity: Decimal, flow: Decimal = ZERO, now: int | None = None) -> Decimal:
        """Record the current equity (``flow`` = external transfer included in it) at `now` (default: the
        clock's); returns today's loss."""
        if now is None:
            now = self.clock()
        day = now - now % DAY_MS
        dirty = False
        if self.day_ms is None or self.e_day0 is None:
            self.day_ms, self.e_day0, dirty = day, equity - flow, True
        elif day > self.day_ms:
            self.day_ms, self.e_day0, dirty = day, (self.equity if self.equity is not None else equity - flow), True
        day = self.day_ms  # the tracked day from here on (a clock stepping back over midnight stays in it)
        if flow:
            self.e_day0 += flow
            if self.peak is not None:
                self.peak += flow
            dirty = True
        if self.peak is None or equity > self.peak:
            self.peak, dirty = equity, True
        self.equity = equity
        loss = max(ZERO, self.e_day0 - equity)  # `loss`, both now known
        if loss >= self.limit and self.breached_day != day:
            self.breached_day, dirty = day, True
            self.store.add_event(EngineEvent(now, RISK_BREACH, f"daily loss {loss} reached limit {self.limit}",
                                             Severity.CRITICAL,
                                             {"what": "daily_loss", "value": str(loss), "limit": str(self.limit)}))
        if dirty or now - self._saved_ms >= self.persist_every_ms:
            self._save(now)
        return loss

    def rebase(self) -> None:
        """Operator resume after an emergency halt: today's anchor and the peak restart from equity now."""
        if self.equity is not None:
            self.e_day0 = self.peak = self.equity
            self._save(self.clock())

    def unchanged(self, now: int) -> None:
        """What `update` does at `now` with the equity it last saw, no flow, on the same UTC day: nothing but
        the periodic save of the record (the anchor, the peak and the loss stay as they are)."""
        if now - self._saved_ms >= self.persist_every_ms:
            self._save(now)

    def _save(self, now: int) -> None:
        self._saved_ms = now
        self.store.set_state(DAILY_KEY, {
            "day_ms": self.day_ms, "e_day0": str(self.e_day0), "peak": str(self.peak),
            "last_equity": str(self.equity), "last_ms": now, "breached_day": self.breached_day}, now)
