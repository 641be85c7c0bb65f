"""Directional strategy (signals-and-strategies.md §6): combiner decisions → entries and exits.

Each decision-bar close brings a `ate.signals.engine.Decision`; steps 2–4 of §6 (exits first, no
pyramiding, long-only spot, entry vetoes, size fraction kelly·bitvol·garch) are the combiner's
`decide()` applied to this strategy's own position. The entry notional `N = equity·f·bitvol.m·garch.m`
(capped by the risk headroom) is floored to the step and checked against the venue minimums. Stop and
take-profit come from the decision bar's ATR(14) and are fixed at the entry fill; every closed 1m
candle that opened at or after the entry checks them (never the decision bar, whose prices precede the
fill), stop first when one candle spans both (exit at the stop, or at the open if it gapped through), and a
72 h time stop. While kelly is 0 the strategy books hypothetical trades for kelly only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ate.config.strategies import DirectionalConfig
from ate.data.candles import Candle
from ate.model import Fill, FilterError, MarketKind, Order, OrderIntent, Purpose, Severity, Side, TradingState
from ate.signals.base import Side as VoteSide
from ate.signals.combiner import decide
from ate.signals.engine import Decision
from ate.signals.gamma import HedgeBook
from ate.strategies.base import (
    BP,
    NO_INTENTS,
    ZERO,
    BookSnapshot,
    ClosedTrade,
    Exposure,
    Strategy,
    StrategyContext,
    WinLoss,
    blocked,
    dec,
    market_scopes,
    split_market,
    to_dec,
    touch_limit,
)

HOUR_MS = 3_600_000
ONE = Decimal(1)


def exit_trigger(long: bool, stop: float, target: float, expiry_ms: int, c: Candle) -> tuple[str, float] | None:
    """(reason, exit price) if this closed candle ends the trade: stop first when the candle spans both
    levels, at the stop or at the open if it gapped through; then target; then the time stop at the close."""
    if long:
        if c.open <= stop:
            return "stop", c.open
        if c.low <= stop:
            return "stop", stop
        if c.open >= target:
            return "target", c.open
        if c.high >= target:
            return "target", target
    else:
        if c.open >= stop:
            return "stop", c.open
        if c.high >= stop:
            return "stop", stop
        if c.open <= target:
            return "target", c.open
        if c.low <= target:
            return "target", target
    if c.close_ms >= expiry_ms:
        return "time", c.close
    return None


@dataclass(slots=True)
class Trade:
    """One directional round trip, real or hypothetical (hypothetical ones never place orders)."""

    long: bool
    atr: float
    opened_ms: int
    expiry_ms: int
    hypothetical: bool = False
    qty: Decimal = ZERO  # coins held (spot: net of base-asset fees)
    hedge_qty: Decimal = ZERO  # signed perp hedge coins
    cash: Decimal = ZERO
    fees: Decimal = ZERO
    entry: float = math.nan
    stop: float = math.nan
    target: float = math.nan
    entry_notional: Decimal = ZERO
    exit_reason: str | None = None
    trigger: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def fix_levels(self, entry: float, stop_atr: float, target_atr: float) -> None:
        sign = 1.0 if self.long else -1.0
        self.entry = entry
        self.stop = entry - sign * stop_atr * self.atr
        self.target = entry + sign * target_atr * self.atr

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in
                ((f, getattr(self, f)) for f in self.__dataclass_fields__)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trade:
        t = cls(d["long"], d["atr"], d["opened_ms"], d["expiry_ms"], d["hypothetical"])
        for k in ("qty", "hedge_qty", "cash", "fees", "entry_notional"):
            setattr(t, k, dec(d[k]))
        for k in ("entry", "stop", "target", "exit_reason", "trigger", "meta"):
            setattr(t, k, d[k])
        return t


class DirectionalStrategy(Strategy):
    name = "directional"

    def __init__(self, cfg: DirectionalConfig | None = None, market: str | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DirectionalConfig()
        self.market = market or cfg.markets[0]
        self.venue = split_market(self.market)[0]
        self.hedge = cfg.hedge_market if cfg.hedge_ratio > 0 else None
        self.traded = (self.market, *([self.hedge] if self.hedge else []))  # markets whose orders are its own
        self.book_id = f"{self.name}:{self.hedge}"
        self._scopes = [self.name, *market_scopes(self.market), *(["hedged", *market_scopes(self.hedge)]
                                                                  if self.hedge else [])]
        self.trade: Trade | None = None
        self.phase = "flat"  # flat → entering → open → exiting → flat
        self.paper: Trade | None = None
        self.pending: set[str] = set()
        self.winloss = WinLoss()
        self.realized = ZERO
        self.round_trips = 0
        self.hypothetical_trades = 0
        self.exits: dict[str, int] = {}
        self.last_decision: dict[str, Any] | None = None
        self.last_skip: str | None = None

    def _event(self, ts_ms: int, kind: str, message: str, severity: Severity = Severity.INFO, **data: Any) -> None:
        super()._event(ts_ms, kind, message, severity, market=self.market, **data)

    # ---- decisions ---------------------------------------------------------------------------------
    def on_decision(self, decision: Decision, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if decision.market != self.market:  # another market's signal engine
            return NO_INTENTS
        inst = ctx.instrument(self.market)
        signed = 0.0
        if self.trade is not None and self.phase in ("open", "exiting"):
            signed = float(self.trade.qty) if self.trade.long else -float(self.trade.qty)
        intent = decide(decision.combined, decision.outputs, signed, allow_short=inst.kind is MarketKind.PERP,
                        market=self.market, venue=self.venue)
        c = decision.combined
        self.last_decision = {"ts": decision.ts, "kind": intent.kind, "side": c.side.value if c.side else None,
                              "confidence": c.confidence, "reason": intent.reason}
        self._paper_decision(decision, inst.kind is MarketKind.PERP)
        if intent.kind in ("EXIT", "FLATTEN"):
            if self.phase != "open":
                return NO_INTENTS
            return self._exit(ctx, "opposite decision" if intent.kind == "EXIT" else "emergency",
                              decision.bar.close)
        if intent.kind != "ENTER" or self.phase != "flat":
            return NO_INTENTS
        return self._enter(decision, intent.side is VoteSide.BUY, intent.size_fraction, ctx)

    def _skip(self, ctx: StrategyContext, why: str) -> Sequence[OrderIntent]:
        self.last_skip = why
        self._event(ctx.now_ms, "skip", f"directional entry skipped: {why}")
        return NO_INTENTS

    def _enter(self, decision: Decision, long: bool, fraction: float, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if ctx.trading_state is not TradingState.ACTIVE:
            return self._skip(ctx, f"trading state {ctx.trading_state}")
        veto = blocked(ctx, self._scopes, ctx.signal_vetoes(self.market))
        if veto is not None:
            return self._skip(ctx, f"veto {veto}")
        if self.pending or ctx.in_flight(self.name, self.traded):
            return self._skip(ctx, "orders in flight")
        atr = _atr(decision)
        if atr is None:
            return self._skip(ctx, "no ATR(14) on the decision bar")
        inst = ctx.instrument(self.market)
        book = ctx.book(self.market)
        ref = (book.ask if long else book.bid) if book is not None else to_dec(decision.bar.close)
        notional = ctx.equity_usd * to_dec(fraction)
        headroom = ctx.headroom_usd(self.name)
        if headroom is not None:
            notional = min(notional, headroom)
        side = Side.BUY if long else Side.SELL
        cap = to_dec(self.cfg.entry_cap_bps) * BP
        limit = ref * (ONE + cap) if long else ref * (ONE - cap)
        try:
            qty, price = inst.prepare(side, notional / ref, limit)
        except FilterError as exc:
            return self._skip(ctx, f"{exc} (notional {notional:.2f})")
        t = Trade(long, atr, ctx.now_ms, ctx.now_ms + int(self.cfg.time_stop_hours * HOUR_MS))
        t.fix_levels(float(ref), self.cfg.stop_atr, self.cfg.target_atr)  # planned; re-fixed at the fill
        outs = decision.outputs
        t.meta = {
            "votes": {k: {"side": o.vote.side.value, "confidence": o.vote.confidence}
                      for k in ("atr_supertrend", "lxvx", "multi_timeframe")
                      if (o := outs.get(k)) is not None and o.vote is not None},
            "confidence": decision.combined.confidence,
            "multipliers": {k: outs[k].size_multiplier for k in ("kelly", "bitvol", "garch") if k in outs},
            "notional": str(notional.quantize(Decimal("0.01"))),
            "atr": atr, "stop": t.stop, "target": t.target, "expiry_ms": t.expiry_ms,
        }
        self.trade, self.phase = t, "entering"
        self.last_skip = None
        out = [self._intent(self.market, side, qty, price, Purpose.ENTRY, "entry", dict(t.meta))]
        if self.hedge and long:  # h > 0 adds a perp short of h·qty
            h = self._hedge_intent(ctx, Side.SELL, qty * to_dec(self.cfg.hedge_ratio), reduce_only=False,
                                   cap_bps=self.cfg.entry_cap_bps)
            if h is not None:
                out.append(h)
        self.pending.update(i.meta["leg"] for i in out)
        return out

    def _hedge_intent(self, ctx: StrategyContext, side: Side, qty: Decimal, *, reduce_only: bool,
                      cap_bps: float) -> OrderIntent | None:
        """An IOC limit on the hedge perp at most `cap_bps` through the touch, rounded and checked."""
        qp = touch_limit(ctx, self.hedge, side, qty, cap_bps, reduce_only=reduce_only) if self.hedge else None
        if qp is None or self.hedge is None:
            return None
        q, p = qp
        return self._intent(self.hedge, side, q, p, Purpose.HEDGE, "hedge", {"hedge_book": self.book_id},
                            reduce_only=reduce_only)

    def _intent(self, market: str, side: Side, qty: Decimal, price: Decimal | None, purpose: Purpose, leg: str,
                meta: dict[str, Any], reduce_only: bool = False) -> OrderIntent:
        venue, symbol = split_market(market)
        return OrderIntent(venue, symbol, side, qty, price, self.name, purpose, reduce_only=reduce_only,
                           meta={**meta, "leg": leg})

    # ---- exits -------------------------------------------------------------------------------------
    def reads(self) -> tuple[str, ...]:
        return (self.market,)  # its candles only: `on_candle` ignores every other market

    def on_candle(self, market: str, candle: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if market != self.market:
            return NO_INTENTS
        # A candle that opened before the trade did holds prices from before the entry: it never triggers
        # an exit (the decision bar itself closes at the entry time; its low is not a stop hit).
        if self.paper is not None and candle.open_ms >= self.paper.opened_ms:
            hit = exit_trigger(self.paper.long, self.paper.stop, self.paper.target, self.paper.expiry_ms, candle)
            if hit is not None:
                self._close_paper(hit[0], hit[1], candle.close_ms)
        t = self.trade
        if t is None or self.pending or ctx.in_flight(self.name, self.traded):
            return NO_INTENTS
        if self.phase == "exiting":  # repeated until filled, capped from the latest close
            return self._exit(ctx, t.exit_reason or "retry", candle.close)
        if self.phase != "open" or candle.open_ms < t.opened_ms:
            return NO_INTENTS
        hit = exit_trigger(t.long, t.stop, t.target, t.expiry_ms, candle)
        if hit is None:
            return NO_INTENTS
        return self._exit(ctx, hit[0], hit[1])

    def _exit(self, ctx: StrategyContext, reason: str, trigger: float) -> Sequence[OrderIntent]:
        t = self.trade
        assert t is not None
        if t.exit_reason is None:
            t.exit_reason, t.trigger = reason, trigger
            self.exits[reason] = self.exits.get(reason, 0) + 1
        self.phase = "exiting"
        out: list[OrderIntent] = []
        side = Side.SELL if t.long else Side.BUY
        cap = to_dec(self.cfg.exit_cap_bps) * BP
        ref = to_dec(trigger)
        price = ref * (ONE - cap) if side is Side.SELL else ref * (ONE + cap)
        inst = ctx.instrument(self.market)
        try:
            q, p = inst.prepare(side, t.qty, price, reduce_only=True)
            out.append(self._intent(self.market, side, q, p, Purpose.EXIT, "exit",
                                    {"reason": reason, "trigger": trigger}, reduce_only=inst.kind is MarketKind.PERP))
        except FilterError:
            pass  # dust below the venue minimum stays as inventory
        if t.hedge_qty != 0:
            h = self._hedge_intent(ctx, Side.BUY if t.hedge_qty < 0 else Side.SELL, abs(t.hedge_qty),
                                   reduce_only=True, cap_bps=self.cfg.exit_cap_bps)
            if h is not None:
                out.append(h)
        self.pending.update(i.meta["leg"] for i in out)
        if not out:
            self._settle(ctx)
        return out

    # ---- fills -------------------------------------------------------------------------------------
    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        t = self.trade
        leg = order.meta.get("leg")
        if t is None or order.strategy != self.name or leg not in ("entry", "exit", "hedge"):
            return NO_INTENTS
        if fill is not None:
            signed = fill.qty * fill.side.sign
            t.cash -= signed * fill.price
            fee = fill.fee
            if fill.fee_asset == ctx.instrument(f"{order.venue}:{order.symbol}").base:
                if leg != "hedge":
                    signed -= fee
                fee *= fill.price
            t.fees += fee
            if leg == "hedge":
                t.hedge_qty += signed
            else:
                t.qty += signed if t.long else -signed
            if leg == "entry":
                t.entry_notional += fill.qty * fill.price
        if not order.is_open:
            self.pending.discard(leg)
            if leg == "entry" and order.avg_price is not None:
                t.fix_levels(float(order.avg_price), self.cfg.stop_atr, self.cfg.target_atr)
                self._event(ctx.now_ms, "entry", f"{'long' if t.long else 'short'} {t.qty} at {order.avg_price}: "
                            f"stop {t.stop:.2f}, target {t.target:.2f}", stop=t.stop, target=t.target,
                            expiry_ms=t.expiry_ms)
            self._settle(ctx)
        return NO_INTENTS

    def on_intent_rejected(self, intent: OrderIntent, reason: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        leg = intent.meta.get("leg")
        if self.trade is not None and leg in self.pending:
            self.pending.discard(leg)
            self._settle(ctx)
        return NO_INTENTS

    def _settle(self, ctx: StrategyContext) -> None:
        t = self.trade
        if t is None or self.pending:
            return
        inst = ctx.instrument(self.market)
        dust = inst.round_qty(t.qty) < max(inst.min_qty, inst.step_size)
        if self.phase == "entering":
            if t.qty > 0:
                self.phase = "open"
            elif t.hedge_qty == 0:
                self.trade, self.phase = None, "flat"  # nothing filled
            else:
                self.phase = "open"  # a hedge without its spot: the exit closes it
                t.exit_reason = "entry not filled"
        elif self.phase == "exiting" and dust and t.hedge_qty == 0:
            # Leftover dust below the venue minimum stays as inventory, valued at the exit trigger.
            pnl = t.cash + t.qty * to_dec(t.trigger or 0) * (1 if t.long else -1) - t.fees
            self.realized += pnl
            self.round_trips += 1
            self.winloss.add(float(pnl))
            if t.entry_notional > 0:
                self._trades.append(ClosedTrade(self.name, float(pnl), float(t.entry_notional), ctx.now_ms,
                                                market=self.market))
            self._event(ctx.now_ms, "closed", f"directional trade closed ({t.exit_reason}): P&L {pnl:.2f}",
                        pnl=str(pnl))
            self.trade, self.phase = None, "flat"

    # ---- hypothetical trades while kelly is 0 (§4.3) -------------------------------------------------
    def _paper_decision(self, decision: Decision, allow_short: bool) -> None:
        c = decision.combined
        kelly = decision.outputs.get("kelly")
        if self.paper is not None:
            if c.side is not None and (c.side is VoteSide.SELL) == self.paper.long:
                self._close_paper("opposite decision", decision.bar.close, decision.ts)
            return
        if kelly is None or kelly.size_multiplier != 0 or c.side is None or self.phase != "flat":
            return
        long = c.side is VoteSide.BUY
        atr = _atr(decision)
        if (not long and not allow_short) or atr is None:
            return
        off = self.cfg.hypothetical_offset_bps * 1e-4
        price = decision.bar.close * (1 + off if long else 1 - off)
        p = Trade(long, atr, decision.ts, decision.ts + int(self.cfg.time_stop_hours * HOUR_MS), True)
        p.fix_levels(price, self.cfg.stop_atr, self.cfg.target_atr)
        self.paper = p

    def _close_paper(self, reason: str, price: float, ts_ms: int) -> None:
        p = self.paper
        assert p is not None
        off = self.cfg.hypothetical_offset_bps * 1e-4
        exit_price = price * (1 - off if p.long else 1 + off)
        gross = (exit_price - p.entry) * (1 if p.long else -1)
        fees = (p.entry + exit_price) * self.cfg.taker_fee_bps * 1e-4
        self._trades.append(ClosedTrade(self.name, gross - fees, p.entry, ts_ms, hypothetical=True, market=self.market))
        self.hypothetical_trades += 1
        self.paper = None

    # ---- gamma -------------------------------------------------------------------------------------
    def hedge_books(self, ctx: StrategyContext) -> dict[str, HedgeBook]:
        if not self.hedge:
            return {}
        pi = ctx.instrument(self.hedge)
        venue, symbol = split_market(self.hedge)
        return {self.book_id: HedgeBook(pi.base, venue, symbol, self.cfg.hedge_ratio, float(pi.step_size),
                                        float(pi.min_qty), float(pi.min_notional))}

    def hedge_snapshot(self, ctx: StrategyContext) -> dict[str, BookSnapshot]:
        if not self.hedge:
            return {}
        t = self.trade
        book = ctx.book(self.hedge)
        mark = float((book.bid + book.ask) / 2) if book is not None else math.nan
        spot = float(t.qty) if t is not None and t.long else 0.0
        return {self.book_id: BookSnapshot(spot, float(t.hedge_qty) if t else 0.0, mark, "hedge" in self.pending)}

    def on_hedge(self, book_id: str, qty: float, ctx: StrategyContext) -> Sequence[OrderIntent]:
        t = self.trade
        if book_id != self.book_id or t is None or "hedge" in self.pending or self.phase != "open":
            return NO_INTENTS
        q = to_dec(qty)
        side = Side.BUY if q > 0 else Side.SELL
        intent = self._hedge_intent(ctx, side, abs(q), reduce_only=t.hedge_qty < 0 < q <= -t.hedge_qty,
                                    cap_bps=self.cfg.entry_cap_bps)
        if intent is None:
            return NO_INTENTS
        self.pending.add("hedge")
        return [intent]

    # ---- reporting ---------------------------------------------------------------------------------
    def exposures(self) -> list[Exposure]:
        t = self.trade
        if t is None or t.hypothetical or self.phase not in ("open", "exiting"):
            return []
        out = [Exposure(self.market, t.qty if t.long else -t.qty, self.book_id if self.hedge else "")]
        if self.hedge and t.hedge_qty:
            out.append(Exposure(self.hedge, t.hedge_qty, self.book_id))
        return out

    def metrics(self) -> dict[str, Any]:
        t = self.trade
        return {
            "phase": self.phase,
            "position": None if t is None else {
                "side": "long" if t.long else "short", "qty": float(t.qty), "hedge_qty": float(t.hedge_qty),
                "entry": t.entry, "stop": t.stop, "target": t.target, "expiry_ms": t.expiry_ms,
                "exit_reason": t.exit_reason},
            "round_trips": self.round_trips,
            "realised_pnl_usd": float(self.realized),
            "win_rate_pct": self.winloss.rate_pct,
            "wins": self.winloss.wins,
            "losses": self.winloss.losses,
            "exits_by_reason": dict(self.exits),
            "hypothetical_open": self.paper is not None,
            "hypothetical_trades": self.hypothetical_trades,
            "last_decision": self.last_decision,
            "last_skip_reason": self.last_skip,
        }

    def state(self) -> dict[str, Any]:
        return {
            "phase": self.phase, "trade": self.trade.to_dict() if self.trade else None,
            "paper": self.paper.to_dict() if self.paper else None, "pending": sorted(self.pending),
            "realized": str(self.realized), "round_trips": self.round_trips,
            "hypothetical_trades": self.hypothetical_trades, "exits": dict(self.exits),
            "wins": self.winloss.wins, "losses": self.winloss.losses,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.phase = state["phase"]
        self.trade = Trade.from_dict(state["trade"]) if state["trade"] else None
        self.paper = Trade.from_dict(state["paper"]) if state["paper"] else None
        self.pending = set(state["pending"])
        self.realized = dec(state["realized"])
        self.round_trips = int(state["round_trips"])
        self.hypothetical_trades = int(state["hypothetical_trades"])
        self.exits = dict(state["exits"])
        self.winloss = WinLoss(int(state["wins"]), int(state["losses"]))


def _atr(decision: Decision) -> float | None:
    out = decision.outputs.get("atr_supertrend")
    atr = out.values.get("atr") if out is not None else None
    return float(atr) if isinstance(atr, (int, float)) and math.isfinite(atr) and atr > 0 else None
