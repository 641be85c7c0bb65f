"""The boundary between the engine and a plug-in strategy's code.

The trading core calls built-in strategies directly; a user's strategy is wrapped in `Guarded`, so an
exception in any of its hooks becomes a `<name>.error` event and "no intents" instead of ending a stream
handler or a backtest, and an intent the strategy returns under another strategy's name (which would route
that order's fills to someone else) or that is not an `OrderIntent` is dropped with an event. State that
cannot be saved keeps the last good copy; state that cannot be restored stops the start with a clear error
(trading on without it could enter twice).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from typing import Any

from ate.data.candles import Candle
from ate.model import EngineEvent, Fill, Order, OrderIntent, Severity
from ate.signals.gamma import HedgeBook
from ate.strategies.base import NO_INTENTS, BookSnapshot, ClosedTrade, Exposure, Strategy, StrategyContext

log = logging.getLogger(__name__)


class StrategyRestoreError(RuntimeError):
    """A plug-in strategy's saved state could not be given back to it at start."""


class Guarded(Strategy):
    """Delegates every hook to `inner`, catching its exceptions and checking what it returns."""

    def __init__(self, inner: Strategy) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.errors = 0
        self._last_state: dict[str, Any] = {}

    # ---- intent hooks --------------------------------------------------------------------------------
    def on_book(self, market: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._intents("on_book", ctx, lambda: self.inner.on_book(market, ctx))

    def on_candle(self, market: str, candle: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._intents("on_candle", ctx, lambda: self.inner.on_candle(market, candle, ctx))

    def on_decision(self, decision: Any, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._intents("on_decision", ctx, lambda: self.inner.on_decision(decision, ctx))

    def on_funding(self, market: str, rate: Decimal, mark: Decimal | None, ts_ms: int,
                   ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._intents("on_funding", ctx, lambda: self.inner.on_funding(market, rate, mark, ts_ms, ctx))

    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._intents("on_order_update", ctx, lambda: self.inner.on_order_update(order, fill, ctx))

    def on_intent_rejected(self, intent: OrderIntent, reason: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._intents("on_intent_rejected", ctx, lambda: self.inner.on_intent_rejected(intent, reason, ctx))

    def on_hedge(self, book_id: str, qty: float, ctx: StrategyContext) -> Sequence[OrderIntent]:
        return self._intents("on_hedge", ctx, lambda: self.inner.on_hedge(book_id, qty, ctx))

    # ---- other hooks ---------------------------------------------------------------------------------
    def reads(self) -> Collection[str] | None:
        return self._call("reads", None, self.inner.reads, None)

    def implements(self, hook: str) -> bool:
        return self._call("implements", None, lambda: self.inner.implements(hook), True)

    def hedge_books(self, ctx: StrategyContext) -> dict[str, HedgeBook]:
        return self._call("hedge_books", ctx.now_ms, lambda: self.inner.hedge_books(ctx), {})

    def hedge_snapshot(self, ctx: StrategyContext) -> dict[str, BookSnapshot]:
        return self._call("hedge_snapshot", ctx.now_ms, lambda: self.inner.hedge_snapshot(ctx), {})

    def exposures(self) -> list[Exposure]:
        return self._call("exposures", None, self.inner.exposures, [])

    def metrics(self) -> dict[str, Any]:
        return {**self._call("metrics", None, self.inner.metrics, {}), "errors": self.errors}

    def state(self) -> dict[str, Any]:
        self._last_state = self._call("state", None, self.inner.state, self._last_state)
        return self._last_state

    def restore(self, state: dict[str, Any]) -> None:
        try:
            self.inner.restore(state)
        except Exception as exc:
            raise StrategyRestoreError(f"strategy {self.name}: cannot restore its saved state: "
                                       f"{type(exc).__name__}: {exc}") from exc
        self._last_state = state

    @property
    def has_reports(self) -> bool:
        return bool(self._events or self.inner.has_reports)

    def drain_events(self) -> list[EngineEvent]:
        own, self._events = self._events, []
        return [*self._call("drain_events", None, self.inner.drain_events, []), *own]

    def drain_trades(self) -> list[ClosedTrade]:
        return self._call("drain_trades", None, self.inner.drain_trades, [])

    # ---- internals -----------------------------------------------------------------------------------
    def _intents(self, hook: str, ctx: StrategyContext,
                 call: Callable[[], Sequence[OrderIntent]]) -> Sequence[OrderIntent]:
        out = self._call(hook, ctx.now_ms, call, NO_INTENTS)
        if not out:
            return NO_INTENTS
        try:
            items = list(out)
        except TypeError:
            self._fail(hook, ctx.now_ms, f"returned {type(out).__name__}, not a sequence of intents")
            return NO_INTENTS
        kept = []
        for intent in items:
            if not isinstance(intent, OrderIntent):
                self._fail(hook, ctx.now_ms, f"returned {type(intent).__name__}, not an OrderIntent")
            elif intent.strategy != self.name:
                self._fail(hook, ctx.now_ms, f"returned an intent of strategy {intent.strategy!r}; "
                                             f"only {self.name!r} is allowed")
            else:
                kept.append(intent)
        return kept

    def _call(self, hook: str, now_ms: int | None, call: Callable[[], Any], fallback: Any) -> Any:
        try:
            return call()
        except Exception as exc:
            detail = traceback.format_exception_only(exc)[-1].strip()
            log.exception("strategy %s: %s raised", self.name, hook)
            self._fail(hook, now_ms, f"raised {detail}")
            return fallback

    def _fail(self, hook: str, now_ms: int | None, what: str) -> None:
        self.errors += 1
        self._events.append(EngineEvent(now_ms or 0, f"{self.name}.error", f"{hook} {what}", Severity.WARNING,
                                        {"hook": hook}))
