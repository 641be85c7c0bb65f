"""The stable API for strategies written outside ate: subclass `UserStrategy` (docs/strategies.md).

A user strategy is an ordinary `Strategy` (same hooks, same trading core, same risk layer, in every mode)
with the chores done for it:

- its parameters arrive validated by its own pydantic `Params` model (errors name the config field);
- closed candles arrive per timeframe it declares (`on_bar`), folded from the feed's base candles;
- it keeps its own holdings per market from its own fills, reports them to the emergency ladder, and
  sees each of its orders and fills (`on_order`);
- `memory` is a JSON-able dict saved with the engine's state and given back after a restart;
- helpers build intents that already pass the venue's filters, and tag a multi-leg group as one unit.

The engine calls it through a guard (`ate.strategies.guard`): an exception in a hook is recorded as an
event and treated as "no intents"; intents carrying another strategy's name are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ate.data.candles import INTERVAL_MS, Aggregator, Candle
from ate.model import Fill, MarketKind, Order, OrderIntent, Purpose, Severity, Side, TimeInForce
from ate.strategies.base import (
    NO_INTENTS,
    Exposure,
    Strategy,
    StrategyContext,
    dec,
    split_market,
    touch_limit,
)

ZERO = Decimal(0)


class NoParams(BaseModel):
    """The parameters of a strategy that takes none: any key given is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class UserStrategy(Strategy):
    """Base class of plug-in strategies. Override `on_bar` (and any other hook); return intents.

    Class attributes a subclass sets:
      name:       default name in orders, the ledger and saved state (the config's `name` overrides it)
      Params:     a pydantic model of the `params` the config passes; use extra="forbid" so typos fail
      timeframes: the closed-candle timeframes `on_bar` receives ("1m", "5m", "15m", "1h", "4h", "1d")
    """

    @classmethod
    def unknown_timeframes(cls, timeframes: Sequence[str]) -> list[str]:
        return [tf for tf in timeframes if tf not in INTERVAL_MS]

    name: str = "user_strategy"
    Params: ClassVar[type[BaseModel]] = NoParams
    timeframes: tuple[str, ...] = ("1m",)  # an instance may set its own in __init__ (e.g. from params)

    def __init__(self, params: BaseModel | None = None, *, name: str | None = None) -> None:
        super().__init__()
        self.params: Any = params if params is not None else self.Params()
        if name is not None:
            self.name = name
        self.memory: dict[str, Any] = {}
        self.holdings: dict[str, Decimal] = {}
        self.last_decision: Any = None
        self._aggregators: dict[tuple[str, str], Aggregator] = {}
        self._unservable: set[tuple[str, str]] = set()
        self._groups = itertools.count(1)

    # ---- hooks a subclass overrides ------------------------------------------------------------------
    def on_bar(self, market: str, timeframe: str, bar: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """A closed candle of `market` in one of `timeframes` (`bar.complete` is False if minutes were missing)."""
        return NO_INTENTS

    def on_signals(self, decision: Any, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """A decision of ate's signal engine (`ate.signals.engine.Decision`): every module's output and the
        combined vote. Also kept in `self.last_decision`."""
        return NO_INTENTS

    def on_order(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """One of this strategy's orders changed; `fill` is set once per new fill (holdings already updated)."""
        return NO_INTENTS

    # ---- Strategy hooks, adapted ---------------------------------------------------------------------
    def on_candle(self, market: str, candle: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        out: list[OrderIntent] = []
        for tf in self.timeframes:
            for bar in self._bars(market, tf, candle, ctx):
                out += self.on_bar(market, tf, bar, ctx)
        return out

    def on_decision(self, decision: Any, ctx: StrategyContext) -> Sequence[OrderIntent]:
        self.last_decision = decision
        return self.on_signals(decision, ctx)

    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if fill is not None:
            market = f"{fill.venue}:{fill.symbol}"
            qty = self.holdings.get(market, ZERO) + fill.side.sign * fill.qty
            inst = ctx.instrument(market)
            if inst.kind is MarketKind.SPOT and fill.fee_asset == inst.base:
                qty -= fill.fee  # a spot fee taken in the base coin leaves fewer coins than were bought
            if qty:
                self.holdings[market] = qty
            else:
                self.holdings.pop(market, None)
        return self.on_order(order, fill, ctx)

    def exposures(self) -> list[Exposure]:
        return [Exposure(m, q) for m, q in self.holdings.items() if q]

    def state(self) -> dict[str, Any]:
        return {"memory": self.memory, "holdings": {m: str(q) for m, q in self.holdings.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.memory = dict(state.get("memory") or {})
        self.holdings = {m: dec(q) for m, q in (state.get("holdings") or {}).items() if dec(q)}

    # ---- helpers -------------------------------------------------------------------------------------
    def position(self, ctx: StrategyContext, market: str) -> Decimal:
        """Signed coins this strategy holds on `market` (from its own fills, net of base-coin fees) that an
        order could close: rounded down to the venue's step, zero if below its minimum quantity or
        notional. Dust left by fees therefore never blocks the next entry (see `holdings` for the raw
        amount)."""
        held = self.holdings.get(market, ZERO)
        if not held:
            return ZERO
        inst = ctx.instrument(market)
        qty = inst.round_qty(abs(held))
        book = ctx.book(market)
        if qty < inst.min_qty or qty <= 0 or (book is not None and qty * book.bid < inst.min_notional):
            return ZERO
        return qty if held > 0 else -qty

    def limit(self, ctx: StrategyContext, market: str, side: Side, qty: Decimal, *,
              purpose: Purpose = Purpose.ENTRY, cap_bps: float = 10.0, reduce_only: bool = False,
              tif: TimeInForce = TimeInForce.IOC, **meta: Any) -> OrderIntent | None:
        """A limit at most `cap_bps` through the touch, rounded and checked by the venue's filters;
        None without a book or when the venue would refuse it (too small, …)."""
        priced = touch_limit(ctx, market, side, qty, cap_bps, reduce_only=reduce_only)
        if priced is None:
            return None
        q, p = priced
        venue, symbol = split_market(market)
        return OrderIntent(venue, symbol, side, q, p, self.name, purpose, tif=tif, reduce_only=reduce_only,
                           meta=dict(meta))

    def buy_usd(self, ctx: StrategyContext, market: str, usd: Decimal | float, *, cap_bps: float = 10.0,
                **meta: Any) -> OrderIntent | None:
        """An entry buying about `usd` of quote's worth at the ask (None without a book)."""
        book = ctx.book(market)
        if book is None or book.ask <= 0:
            return None
        usd = usd if isinstance(usd, Decimal) else Decimal(repr(usd))
        return self.limit(ctx, market, Side.BUY, usd / book.ask, cap_bps=cap_bps, **meta)

    def close(self, ctx: StrategyContext, market: str, *, cap_bps: float = 50.0, **meta: Any) -> OrderIntent | None:
        """An exit flattening this strategy's holding on `market` (reduce-only on perps); None if flat."""
        held = self.position(ctx, market)
        if not held:
            return None
        perp = ctx.instrument(market).kind is MarketKind.PERP
        side = Side.SELL if held > 0 else Side.BUY
        return self.limit(ctx, market, side, abs(held), purpose=Purpose.EXIT, cap_bps=cap_bps, reduce_only=perp,
                          **meta)

    def group(self, *legs: OrderIntent | None) -> tuple[OrderIntent, ...]:
        """The legs of one multi-leg decision, tagged `meta["group"]` / `meta["legs"]`; nothing if any leg
        could not be built (never half a pair)."""
        if not legs or any(leg is None for leg in legs):
            return NO_INTENTS
        gid = f"{self.name}-{next(self._groups)}"
        for leg in legs:
            assert leg is not None
            leg.meta.update(group=gid, legs=len(legs))
        return tuple(leg for leg in legs if leg is not None)

    # ---- internals -----------------------------------------------------------------------------------
    def _bars(self, market: str, tf: str, candle: Candle, ctx: StrategyContext) -> tuple[Candle, ...]:
        want = INTERVAL_MS[tf]
        if want == candle.interval_ms:
            return (candle,)
        if want < candle.interval_ms or want % candle.interval_ms:
            if (market, tf) not in self._unservable:
                self._unservable.add((market, tf))
                self._event(ctx.now_ms, "timeframe_unavailable",
                            f"{tf} bars cannot be built from {candle.interval_ms // 60_000}m candles of {market}",
                            Severity.WARNING, market=market, timeframe=tf)
            return ()
        agg = self._aggregators.get((market, tf))
        if agg is None or agg.base_ms != candle.interval_ms:
            agg = self._aggregators[(market, tf)] = Aggregator(want, candle.interval_ms)
        return agg.update(candle)
