"""One strategy over a list of markets: a slot per market (directional) or per pair (carry).

Each slot is the single-market strategy, with its own position, phase and state; together they are one
strategy to the engine: one name on orders, in the ledger and in risk (position caps per market, one daily
loss for the account), one state entry saved in the unit of the orders that changed it. Market data goes
to the slots that read that market (`Strategy.reads`; each reads only its markets and its own market's signal
decisions); an order or a refused intent goes to the slot that trades its market. The slots report their
events and closed trades into the one strategy's lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from ate.data.candles import Candle
from ate.model import Fill, Order, OrderIntent, Severity
from ate.signals.gamma import HedgeBook
from ate.strategies.base import (
    NO_INTENTS,
    BookSnapshot,
    Exposure,
    Strategy,
    StrategyContext,
    fresh_state,
)

_SUMMED = ("wins", "losses", "round_trips", "realised_pnl_usd", "hypothetical_trades", "funding_captured_usd",
           "funding_payments", "pairs_closed", "dust")


class PerMarket(Strategy):
    """`slots`: {key: single-market strategy with `traded`, the markets whose orders are its own}."""

    def __init__(self, name: str, slots: dict[str, Strategy]) -> None:
        super().__init__()
        if not slots:
            raise ValueError(f"{name}: no markets")
        self.name = name
        self.slots = slots
        self._owner = {m: s for s in slots.values() for m in s.traded}  # type: ignore[attr-defined]
        self._fresh = {key: fresh_state(s) for key, s in slots.items()}
        self._only = next(iter(slots.values())) if len(slots) == 1 else None
        self._removed: dict[str, Any] = {}  # saved state of markets no longer configured, carried forward
        self._reacting: dict[str, dict[str, tuple[Callable[..., Sequence[OrderIntent]], ...]]] = {
            "on_book": {}, "on_candle": {}}
        for s in slots.values():  # one list each, so `has_reports` is a look at two lists, not a scan
            s._events, s._trades = self._events, self._trades

    def _all(self, call: Any) -> Sequence[OrderIntent]:
        out: list[OrderIntent] = []
        for s in self.slots.values():
            out.extend(call(s))
        return out or NO_INTENTS

    def _slots_reading(self, hook: str, market: str) -> tuple[Callable[..., Sequence[OrderIntent]], ...]:
        """The hooks of the slots that can act on `market` (the others would return nothing), found once."""
        table = self._reacting[hook]
        found = table.get(market)
        if found is None:
            found = table[market] = tuple(h for s in self.slots.values() if (h := s.handler(hook, market)))
        return found

    def handler(self, hook: str, market: str) -> Callable[..., Sequence[OrderIntent]] | None:
        """The one slot that reads `market` answers for the strategy directly."""
        found = self._slots_reading(hook, market)
        if not found:
            return None
        return found[0] if len(found) == 1 else getattr(self, hook)

    # ---- hooks -------------------------------------------------------------------------------------
    def on_book(self, market: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._reading("on_book", market, (market, ctx))

    def on_candle(self, market: str, candle: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._reading("on_candle", market, (market, candle, ctx))

    def _reading(self, hook: str, market: str, args: tuple[Any, ...]) -> Sequence[OrderIntent]:
        out: list[OrderIntent] = []
        for call in self._slots_reading(hook, market):
            out.extend(call(*args))
        return out or NO_INTENTS

    def on_decision(self, decision: Any, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._all(lambda s: s.on_decision(decision, ctx))

    def on_funding(self, market: str, rate: Decimal, mark: Decimal | None, ts_ms: int,
                   ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._all(lambda s: s.on_funding(market, rate, mark, ts_ms, ctx))

    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        slot = self._owner.get(f"{order.venue}:{order.symbol}")
        return NO_INTENTS if slot is None else slot.on_order_update(order, fill, ctx)

    def on_intent_rejected(self, intent: OrderIntent, reason: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        slot = self._owner.get(intent.market)
        return NO_INTENTS if slot is None else slot.on_intent_rejected(intent, reason, ctx)

    def on_hedge(self, book_id: str, qty: float, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._all(lambda s: s.on_hedge(book_id, qty, ctx))

    # ---- market data and gamma ---------------------------------------------------------------------
    def reads(self) -> frozenset[str] | None:
        each = [s.reads() for s in self.slots.values()]
        return None if any(m is None for m in each) else frozenset(m for ms in each for m in ms)  # type: ignore[union-attr]

    def implements(self, hook: str) -> bool:
        return any(s.implements(hook) for s in self.slots.values())

    def subscriptions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for s in self.slots.values() for m in s.subscriptions()))

    def quote_rates(self) -> dict[str, tuple[str, Decimal]]:
        return {k: v for s in self.slots.values() for k, v in s.quote_rates().items()}

    def hedge_books(self, ctx: StrategyContext) -> dict[str, HedgeBook]:
        return {k: v for s in self.slots.values() for k, v in s.hedge_books(ctx).items()}

    def hedge_snapshot(self, ctx: StrategyContext) -> dict[str, BookSnapshot]:
        return {k: v for s in self.slots.values() for k, v in s.hedge_snapshot(ctx).items()}

    def exposures(self) -> list[Exposure]:
        return [e for s in self.slots.values() for e in s.exposures()]

    def answering(self, hook: str) -> Callable[..., Any]:
        """One market's slot answers as it is (asked every minute: the common case)."""
        return getattr(self._only if self._only is not None else self, hook)

    # ---- reporting and persistence -----------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """One market: that slot's figures, as before lists; several: each market's under `markets`, with the
        counts and amounts that add up (wins, losses, P&L, funding, delta per asset) summed over them."""
        if len(self.slots) == 1:
            return next(iter(self.slots.values())).metrics()
        each = {key: s.metrics() for key, s in self.slots.items()}
        out: dict[str, Any] = {"markets": each}
        for k in _SUMMED:
            values = [m[k] for m in each.values() if isinstance(m.get(k), (int, float))]
            if values:
                out[k] = sum(values)
        deltas: dict[str, float] = {}
        for m in each.values():
            for asset, d in (m.get("delta_by_asset") or {}).items():
                deltas[asset] = deltas.get(asset, 0.0) + d
        if deltas:
            out["delta_by_asset"] = deltas
        return out

    def state(self) -> dict[str, Any]:
        return {"markets": {**self._removed, **{key: s.state() for key, s in self.slots.items()}}}

    def restore(self, state: dict[str, Any]) -> None:
        """Each market's saved state; a market without one (added since) is as a fresh slot. A state saved
        before lists of markets (one market's, at the top level) is the first market's. A market no longer
        configured keeps its saved state, so configuring it again resumes its slot; it is alerted once per
        start (a rolled-back unit's reload restores it again)."""
        saved = state.get("markets")
        if saved is None:
            saved = {next(iter(self.slots)): state}
        for key, s in self.slots.items():
            s.restore(saved.get(key) or self._fresh[key])
        removed = {key: saved[key] for key in sorted(saved.keys() - self.slots.keys())}
        for key in removed.keys() - self._removed.keys():
            self._event(0, "market_removed", f"{key} is no longer configured: its saved state (position "
                        f"included) is not traded; close it by hand or configure it again", Severity.CRITICAL,
                        market=key, state=saved[key])
        self._removed = removed
