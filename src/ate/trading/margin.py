"""Live margin: leverage and margin type set and checked at start, margin and accounts re-read while running.

At start every perp market the engine trades gets the configured leverage and margin type; the venue's
answer is checked (a venue that confirms another leverage, or refuses, is a CRITICAL event, and the margin
reported for that market says so: the carry opens no pair on it). Then, every ``risk_limits.account_poll_s``:

- each perp's margin (equity, maintenance, liquidation price) fills ``core.margins``, which the carry's
  margin and liquidation-distance guard reads;
- balances and perp positions are re-read; a difference from the engine's own books that lasts two polls
  in a row with no order of ours open on that venue (so not a fill still on its way) is an event, and the
  venue is handed to reconciliation (``on_drift``), which books what the engine missed (a liquidation, a
  manual trade, a transfer).

A venue error is an event, never an exception: the next poll tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from ate.model import EngineEvent, MarketKind, Severity
from ate.strategies.base import MarginInfo

log = logging.getLogger(__name__)
ZERO = Decimal(0)
PPM = Decimal("1e-6")


class MarginWatch:
    def __init__(self, core: Any, clients: dict[str, Any], *, leverage: int, margin_type: str,
                 clock: Callable[[], int], on_event: Callable[[EngineEvent], None],
                 on_drift: Callable[[str], None], sleep: Callable[[float], Awaitable[None]],
                 poll_s: float, tolerance: Decimal = Decimal("1e-8")) -> None:
        self.core = core
        self.clients = clients
        self.leverage = leverage
        self.margin_type = margin_type
        self.clock = clock
        self.on_event = on_event
        self.on_drift = on_drift
        self.sleep = sleep
        self.poll_s = poll_s
        self.tolerance = tolerance
        self.perps = {k: i for k, i in core.portfolio.instruments.items()
                      if i.kind is MarketKind.PERP and i.venue in clients}
        self.verified: dict[str, bool] = {}  # market → leverage and margin type confirmed at start
        self._suspect: set[str] = set()  # venues whose books differed at the last poll

    async def setup(self) -> None:
        for key, inst in self.perps.items():
            client = self.clients[inst.venue]
            try:
                await client.set_margin_type(inst.symbol, self.margin_type)
                confirmed = await client.set_leverage(inst.symbol, self.leverage)
            except Exception as exc:  # the venue refused or did not answer: say so, keep running
                self.verified[key] = False
                self._event("leverage_unverified", f"{key}: leverage {self.leverage} / {self.margin_type} not set: "
                            f"{type(exc).__name__}: {exc}", Severity.CRITICAL, market=key)
                continue
            self.verified[key] = confirmed == self.leverage
            if confirmed != self.leverage:
                self._event("leverage_unverified", f"{key}: asked leverage {self.leverage}, venue holds {confirmed}",
                            Severity.CRITICAL, market=key, leverage=confirmed)
            else:
                self._event("leverage_set", f"{key}: leverage {confirmed}, margin {self.margin_type}", market=key)

    async def poll(self) -> None:
        """One round: every perp's margin, then every venue's balances and positions."""
        for key, inst in self.perps.items():
            try:
                m = await self.clients[inst.venue].margin(inst.symbol)
            except Exception as exc:
                self._event("margin_read_failed", f"{key}: {type(exc).__name__}: {exc}", Severity.WARNING, market=key)
                continue
            self.core.margins[key] = MarginInfo(m.equity, m.maintenance, m.liquidation_price,
                                                self.verified.get(key, True))
        for venue, client in self.clients.items():
            try:
                balances = await client.balances()
                positions = {f"{venue}:{p.symbol}": p.qty for p in await client.positions()}
            except Exception as exc:
                self._event("account_read_failed", f"{venue}: {type(exc).__name__}: {exc}", Severity.WARNING,
                            venue=venue)
                continue
            self._compare(venue, {a: b.total for a, b in balances.items()}, positions)

    def _compare(self, venue: str, balances: dict[str, Decimal], positions: dict[str, Decimal]) -> None:
        ours = self.core.portfolio.balances.get(venue, {})
        diffs = {a: balances.get(a, ZERO) - ours.get(a, ZERO) for a in set(balances) | set(ours)}
        for key, inst in self.core.portfolio.instruments.items():
            if inst.venue == venue and inst.kind is MarketKind.PERP:
                held = self.core.portfolio.positions.get(key)
                diffs[key] = positions.get(key, ZERO) - (held.qty if held is not None else ZERO)
        # venues round payments (funding, realized P&L) their own way: a part per million is not a drift
        diffs = {k: v for k, v in diffs.items()
                 if abs(v) > max(self.tolerance, PPM * abs(balances.get(k, positions.get(k, ZERO))))}
        busy = any(o.venue == venue for o in self.core.orders.open_orders())
        if not diffs or busy:
            self._suspect.discard(venue)
            return
        if venue not in self._suspect:
            self._suspect.add(venue)  # a fill may still be on its way: look again at the next poll
            return
        self._suspect.discard(venue)
        self._event("account_drift", f"{venue}: venue and engine differ: "
                    + ", ".join(f"{k} {v:+}" for k, v in sorted(diffs.items())), Severity.WARNING, venue=venue,
                    diffs={k: str(v) for k, v in diffs.items()})
        self.on_drift(venue)

    async def run(self) -> None:
        """Poll every ``poll_s`` (the first poll is the caller's, at start)."""
        while True:
            await self.sleep(self.poll_s)
            try:
                await self.poll()
            except Exception:  # the poll must survive anything; each venue error is already an event
                log.exception("margin poll failed")

    def _event(self, kind: str, message: str, severity: Severity = Severity.INFO, **data: Any) -> None:
        self.on_event(EngineEvent(self.clock(), kind, message, severity, data))
