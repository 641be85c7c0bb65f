"""Delta-neutral funding carry (signals-and-strategies.md §8): long spot + short perp of one asset.

Positive funding means longs pay shorts, so the short perp receives |q|·mark·rate. The strategy
enters when the predicted rate, its persistence and the expected carry over the holding period beat
the round-trip costs; it follows its own two legs from their fills, books funding at each settlement
(`payment = −q_perp·mark·ρ` for `t_open < t_f ≤ t_close`), hands delta drift to gamma, and exits the
pair when funding turns, the basis loses too much, or the margin guard fires.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from ate.config.strategies import CarryMarket, FundingCarryConfig
from ate.data.candles import Candle
from ate.data.loaders import FundingRate
from ate.model import Fill, Order, OrderIntent, Purpose, Severity, Side, TradingState
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
_HISTORY = 64  # perp quantity changes kept to know the position held at a funding time


def funding_payment(q_perp: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """Funding received by a perp position of signed `q_perp` coins (negative = paid)."""
    return -q_perp * mark * rate


def settlements_between(rates: Iterable[FundingRate], t_open: int, t_close: int) -> list[FundingRate]:
    """The settlements a position held from `t_open` to `t_close` takes part in: `t_open < t_f ≤ t_close`."""
    return [r for r in rates if t_open < r.ts_ms <= t_close]


@dataclass(frozen=True, slots=True)
class CarryCheck:
    """The entry rule on one predicted rate (bps of notional over the holding period)."""

    interval_h: float
    min_rate: float  # per interval
    expected_bps: float  # E/N
    cost_bps: float  # C/N
    enter: bool
    reason: str


def entry_check(predicted: float, settled: Sequence[float], interval_h: float,
                cfg: FundingCarryConfig) -> CarryCheck:
    """`ρ̂ ≥ min_I`, the last `persistence` settled rates > 0, and `E = N·ρ̂·(24·hold/I) > C`."""
    min_rate = cfg.min_rate_bps_8h * 1e-4 * interval_h / 8
    expected = predicted * 1e4 * 24 * cfg.holding_days / interval_h
    cost = 2 * cfg.fee_spot_bps + 2 * cfg.fee_perp_bps + 4 * cfg.slippage_bps
    recent = settled[-cfg.persistence:]
    if predicted < min_rate:
        why = f"predicted {predicted:.6f} below {min_rate:.6f}"
    elif len(recent) < cfg.persistence or any(r <= 0 for r in recent):
        why = f"last {cfg.persistence} settled rates not all positive"
    elif expected <= cost:
        why = f"expected {expected:.1f} bps does not beat cost {cost:.1f} bps"
    else:
        return CarryCheck(interval_h, min_rate, expected, cost, True, "")
    return CarryCheck(interval_h, min_rate, expected, cost, False, why)


class FundingCarryStrategy(Strategy):
    name = "funding_carry"

    def __init__(self, cfg: FundingCarryConfig | None = None, pair: CarryMarket | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or FundingCarryConfig()
        pair = pair or cfg.markets[0]
        self.spot, self.perp = pair.spot, pair.perp
        self.traded = (self.spot, self.perp)  # markets whose orders are its own
        self.book_id = f"{self.name}:{self.perp}"
        self._scopes = ["hedged", self.name, *market_scopes(self.spot, self.perp)]
        self.phase = "flat"  # flat → opening → open → closing → flat
        self.spot_qty = ZERO  # coins the carry book holds (net of base-asset fees)
        self.perp_qty = ZERO  # signed; short < 0
        self.cash = ZERO  # quote spent (−) and received (+) by both legs
        self.fees = ZERO
        self.entry_notional = ZERO
        self.pair_funding = ZERO
        self.t_open: int | None = None
        self.changes: list[tuple[int, str]] = []  # (ts, perp qty after) — strings for JSON
        self.pending: set[str] = set()  # legs in flight ("spot", "perp", "hedge")
        self.funding_captured = ZERO
        self.payments = 0
        self.mark: Decimal | None = None
        self.status = "OK"
        self.reason = ""
        self.last_check: CarryCheck | None = None
        self.margin_breach_ms: int | None = None
        self.exit_reason: str | None = None
        self.winloss = WinLoss()
        self.pairs_closed = 0
        self.dust = ZERO  # spot coins below the venue's minimum, left over by closed pairs
        self._snapshot: tuple[tuple[Any, ...] | None, dict[str, BookSnapshot]] = (None, {})  # (inputs, snapshot)

    # ---- hooks -------------------------------------------------------------------------------------
    def on_funding(self, market: str, rate: Decimal, mark: Decimal | None, ts_ms: int,
                   ctx: StrategyContext) -> Sequence[OrderIntent]:
        if market != self.perp:
            return NO_INTENTS
        q = self.perp_qty_at(ts_ms)
        if q != 0:
            m = mark if mark is not None else self._mid(ctx, self.perp) or self._mid(ctx, self.spot)
            if m is None:
                self._event(ts_ms, "funding", "no mark price at a funding time: payment not booked",
                            Severity.WARNING)
            else:
                paid = funding_payment(q, m, rate)
                self.funding_captured += paid
                self.pair_funding += paid
                self.payments += 1
        if mark is not None:
            self.mark = mark
        return self.evaluate(ctx)

    def reads(self) -> tuple[str, ...]:
        return self.traded  # `on_candle` ignores every other market

    def on_candle(self, market: str, candle: Candle, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if market != self.spot and market != self.perp:
            return NO_INTENTS
        return self.evaluate(ctx)

    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        leg = order.meta.get("leg")
        if order.strategy != self.name or leg not in ("spot", "perp", "hedge"):
            return NO_INTENTS
        if fill is not None:
            signed = fill.qty * fill.side.sign
            self.cash -= signed * fill.price
            fee = fill.fee
            if fill.fee_asset == ctx.instrument(f"{order.venue}:{order.symbol}").base:
                if leg == "spot":
                    signed -= fee  # a base-asset fee shrinks the coins held
                fee = fee * fill.price
            self.fees += fee
            if leg == "spot":
                self.spot_qty += signed
            else:
                self.perp_qty += signed
                self._record_change(fill.ts_ms)
            if self.phase == "opening":
                if self.t_open is None:
                    self.t_open = fill.ts_ms
                self.entry_notional = max(abs(self.spot_qty), abs(self.perp_qty)) * fill.price
        if not order.is_open:
            self.pending.discard(leg)
            if leg == "hedge" and order.filled_qty > 0:
                self._event(ctx.now_ms, "hedged", f"hedge filled {order.filled_qty}", book=self.book_id,
                            price=str(order.avg_price))
            self._settle_phase(ctx)
        return NO_INTENTS

    def on_intent_rejected(self, intent: OrderIntent, reason: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        leg = intent.meta.get("leg")
        if intent.strategy == self.name and leg in self.pending:
            self.pending.discard(leg)
            self._settle_phase(ctx)
        return NO_INTENTS

    def on_hedge(self, book_id: str, qty: float, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if book_id != self.book_id or "hedge" in self.pending or self.phase != "open":
            return NO_INTENTS
        inst = ctx.instrument(self.perp)
        q = to_dec(qty)
        side = Side.BUY if q > 0 else Side.SELL
        reduce = self.perp_qty < 0 < q and q <= -self.perp_qty
        intent = self._leg(ctx, self.perp, side, abs(q), Purpose.HEDGE, "hedge", reduce_only=reduce)
        if intent is None:
            self._event(ctx.now_ms, "hedge_skipped", f"hedge {qty} not executable on {self.perp}",
                        Severity.WARNING, step=str(inst.step_size))
            return NO_INTENTS
        intent.meta["hedge_book"] = book_id
        return [intent]

    # ---- decisions ---------------------------------------------------------------------------------
    def evaluate(self, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """Entry when flat, guards and exits when open; repeated exits while closing."""
        self._refresh_mark(ctx)
        if self.pending or ctx.in_flight(self.name, self.traded):
            return NO_INTENTS
        if self.phase == "flat":
            return self._try_enter(ctx)
        if self.phase == "open":
            why = self._exit_reason(ctx)
            if why is not None:
                return self.close(why, ctx)
        elif self.phase == "closing":
            return self._exit_legs(ctx)
        return NO_INTENTS

    def _interval_and_rates(self, ctx: StrategyContext) -> tuple[float, float, list[float]] | None:
        fi = ctx.funding(self.perp)
        interval = fi.interval() if fi is not None else None
        if fi is None or interval is None or not fi.settled:
            self.status, self.reason = "DEGRADED", "funding interval unknown"
            return None
        self.status, self.reason = "OK", ""
        settled = [float(r) for _, r in fi.settled]
        predicted = float(fi.predicted) if fi.predicted is not None else settled[-1]
        return interval / HOUR_MS, predicted, settled

    def _try_enter(self, ctx: StrategyContext) -> Sequence[OrderIntent]:
        data = self._interval_and_rates(ctx)
        if data is None:
            return NO_INTENTS
        interval_h, predicted, settled = data
        chk = self.last_check = entry_check(predicted, settled, interval_h, self.cfg)
        if not chk.enter or ctx.trading_state is not TradingState.ACTIVE:
            return NO_INTENTS
        if blocked(ctx, self._scopes) is not None:
            return NO_INTENTS
        margin = ctx.margin(self.perp)
        if margin is not None and not margin.leverage_ok:
            self.status, self.reason = "DEGRADED", "leverage not confirmed by the venue"
            return NO_INTENTS
        spot_book, perp_book = ctx.book(self.spot), ctx.book(self.perp)
        if spot_book is None or perp_book is None:
            return NO_INTENTS
        si, pi = ctx.instrument(self.spot), ctx.instrument(self.perp)
        notional = to_dec(self.cfg.notional)
        # both legs within the risk headroom of their own market: risk sends the pair at one size or not at all
        room = [h for h in (ctx.headroom_usd(self.name, self.spot, Side.BUY),
                            ctx.headroom_usd(self.name, self.perp, Side.SELL)) if h is not None]
        if room:
            notional = min(notional, *room)
        q = pi.round_qty(si.round_qty(notional / spot_book.ask))
        spot = self._leg(ctx, self.spot, Side.BUY, self._gross_for_fee(q, si), Purpose.ENTRY, "spot")
        perp = self._leg(ctx, self.perp, Side.SELL, q, Purpose.ENTRY, "perp")
        if spot is None or perp is None:
            self.pending.clear()
            why = f"risk headroom {notional:.2f} USD" if room and notional < to_dec(self.cfg.notional) else "size"
            self._event(ctx.now_ms, "skip", f"carry entry of {q} {si.base} below venue minimums ({why})")
            return NO_INTENTS
        self.phase = "opening"
        self.exit_reason = None
        group = f"{self.name}-open-{ctx.now_ms}"
        for i in (spot, perp):
            i.group = group
            i.meta.update(predicted_rate=predicted, expected_bps=chk.expected_bps, cost_bps=chk.cost_bps)
        return [spot, perp]

    def _gross_for_fee(self, q: Decimal, si) -> Decimal:
        """The spot buy that nets `q` coins when the venue takes its fee from the coins bought (q/(1-fee),
        rounded up to the step): the pair's net delta is then zero, up to less than one spot step."""
        if not self.cfg.spot_fee_in_base:
            return q
        gross = q / (ONE - to_dec(self.cfg.fee_spot_bps) * BP)
        step = si.step_size
        return (gross / step).to_integral_value(rounding=ROUND_CEILING) * step if step > 0 else gross

    def _exit_reason(self, ctx: StrategyContext) -> str | None:
        data = self._interval_and_rates(ctx)
        cfg = self.cfg
        if data is not None:
            interval_h, _, settled = data
            thr = cfg.exit_threshold_bps_8h * 1e-4 * interval_h / 8
            last = settled[-cfg.exit_periods:]
            if len(last) == cfg.exit_periods and all(r < thr for r in last):
                return f"funding below {thr:.6f} for {cfg.exit_periods} periods"
        mtm = self.mtm(ctx)
        if mtm is not None and self.entry_notional > 0 and mtm < -to_dec(cfg.max_basis_loss_bps) * BP * self.entry_notional:
            return f"basis loss {mtm:.2f} beyond {cfg.max_basis_loss_bps} bps"
        return self._margin_guard(ctx)

    def _margin_guard(self, ctx: StrategyContext) -> str | None:
        cfg = self.cfg
        info = ctx.margin(self.perp)
        if info is None:
            return None
        ratio = info.ratio()
        mark = self.mark
        distance = (float(abs(info.liquidation_price - mark) / mark)
                    if info.liquidation_price is not None and mark else None)
        low_ratio = ratio is not None and ratio < cfg.margin_floor
        near = distance is not None and distance < cfg.liquidation_distance
        if not (low_ratio or near):
            self.margin_breach_ms = None
            return None
        now = ctx.now_ms
        if distance is not None and distance < cfg.liquidation_distance_hard:
            return f"liquidation {distance:.1%} away (hard limit {cfg.liquidation_distance_hard:.0%})"
        if self.margin_breach_ms is None:
            self.margin_breach_ms = now
            self._event(now, "add_collateral", f"add collateral on {self.perp}: margin ratio {ratio}, "
                        f"liquidation distance {distance}", Severity.WARNING)
            return None
        if now - self.margin_breach_ms >= cfg.grace_minutes * 60_000:
            return f"margin guard unresolved after {cfg.grace_minutes} min"
        return None

    def close(self, reason: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """Close the pair (exit rule, emergency or operator): both legs, reduce-only on the perp."""
        if self.phase not in ("open", "opening", "closing") or self.pending:
            return NO_INTENTS
        self.phase = "closing"
        if self.exit_reason is None:
            self.exit_reason = reason
            self._event(ctx.now_ms, "exit", f"closing carry pair: {reason}")
        return self._exit_legs(ctx)

    def _exit_legs(self, ctx: StrategyContext) -> Sequence[OrderIntent]:
        self._sweep_dust(ctx)
        out = []
        if self.spot_qty > 0:
            i = self._leg(ctx, self.spot, Side.SELL, self.spot_qty, Purpose.EXIT, "spot")
            if i is not None:
                out.append(i)
        if self.perp_qty != 0:
            side = Side.BUY if self.perp_qty < 0 else Side.SELL
            i = self._leg(ctx, self.perp, side, abs(self.perp_qty), Purpose.EXIT, "perp", reduce_only=True)
            if i is not None:
                out.append(i)
        if not out:
            self._settle_phase(ctx)
        elif len(out) == 2:  # both legs or neither: a half-closed pair is a naked position
            group = f"{self.name}-close-{ctx.now_ms}"
            for i in out:
                i.group = group
        return out

    def _sweep_dust(self, ctx: StrategyContext) -> None:
        """Spot coins the venue will not sell (below its minimum quantity or notional, e.g. what a fee taken
        in base leaves) are dust: tracked apart, valued by the portfolio, never holding the pair open."""
        if self.spot_qty <= 0:
            return
        si = ctx.instrument(self.spot)
        book = ctx.book(self.spot)
        sellable = si.round_qty(self.spot_qty)
        small = sellable < si.min_qty or sellable <= 0 or (
            book is not None and si.min_notional > 0 and sellable * book.bid < si.min_notional)
        if not small:
            return
        self.dust += self.spot_qty
        self._event(ctx.now_ms, "dust", f"{self.spot_qty} {si.base} on {self.spot} below the venue minimum: "
                    f"kept as dust ({self.dust} in all)", qty=str(self.spot_qty), dust=str(self.dust))
        self.spot_qty = ZERO

    def _leg(self, ctx: StrategyContext, market: str, side: Side, qty: Decimal, purpose: Purpose, leg: str,
             reduce_only: bool = False) -> OrderIntent | None:
        """An IOC limit at most `entry_max_from_touch_bps` through the touch, rounded and checked."""
        qp = touch_limit(ctx, market, side, qty, self.cfg.entry_max_from_touch_bps, reduce_only=reduce_only)
        if qp is None:
            return None
        q, p = qp
        venue, symbol = split_market(market)
        self.pending.add(leg)
        return OrderIntent(venue, symbol, side, q, p, self.name, purpose, reduce_only=reduce_only,
                           meta={"leg": leg, "book": self.book_id})

    def _settle_phase(self, ctx: StrategyContext) -> None:
        if self.pending:
            return
        if self.phase == "closing" and self.perp_qty == 0:
            self._sweep_dust(ctx)
        held = self.spot_qty != 0 or self.perp_qty != 0
        if self.phase == "opening":
            self.phase = "open" if held else "flat"
            if not held:
                self._reset()
        elif self.phase == "closing" and not held:
            pnl = self.cash - self.fees + self.pair_funding
            self.winloss.add(float(pnl))
            self.pairs_closed += 1
            if self.entry_notional > 0:
                self._trades.append(ClosedTrade(self.name, float(pnl), float(self.entry_notional), ctx.now_ms))
            self._event(ctx.now_ms, "closed", f"carry pair closed: P&L {pnl:.2f} ({self.exit_reason})",
                        pnl=str(pnl), funding=str(self.pair_funding))
            self._reset()

    def _reset(self) -> None:
        self.phase = "flat"
        self.spot_qty = self.perp_qty = self.cash = self.fees = self.entry_notional = self.pair_funding = ZERO
        self.t_open = None
        self.margin_breach_ms = None

    # ---- positions ---------------------------------------------------------------------------------
    def _record_change(self, ts_ms: int) -> None:
        self.changes.append((ts_ms, str(self.perp_qty)))
        del self.changes[:-_HISTORY]

    def perp_qty_at(self, ts_ms: int) -> Decimal:
        """The perp position held at a funding time: changes at exactly `ts_ms` are not yet applied, so a
        position opened at t_f is not paid and one closed at t_f is."""
        for ts, q in reversed(self.changes):
            if ts < ts_ms:
                return Decimal(q)
        return ZERO if self.changes else self.perp_qty

    def _mid(self, ctx: StrategyContext, market: str) -> Decimal | None:
        b = ctx.book(market)
        return (b.bid + b.ask) / 2 if b is not None else None

    def _refresh_mark(self, ctx: StrategyContext) -> None:
        m = self._mid(ctx, self.perp)
        if m is not None:
            self.mark = m

    def mtm(self, ctx: StrategyContext) -> Decimal | None:
        """Both legs marked at the touch they would close at, excluding funding and fees."""
        sb, pb = ctx.book(self.spot), ctx.book(self.perp)
        if sb is None or pb is None:
            return None
        perp_px = pb.ask if self.perp_qty < 0 else pb.bid
        return self.cash + self.spot_qty * sb.bid + self.perp_qty * perp_px

    # ---- gamma -------------------------------------------------------------------------------------
    def hedge_books(self, ctx: StrategyContext) -> dict[str, HedgeBook]:
        pi = ctx.instrument(self.perp)
        venue, symbol = split_market(self.perp)
        return {self.book_id: HedgeBook(pi.base, venue, symbol, self.cfg.hedge_ratio, float(pi.step_size),
                                        float(pi.min_qty), float(pi.min_notional))}

    def hedge_snapshot(self, ctx: StrategyContext) -> dict[str, BookSnapshot]:
        self._refresh_mark(ctx)
        key = (self.spot_qty, self.perp_qty, self.mark, "hedge" in self.pending)
        if key != self._snapshot[0]:  # asked every minute; it changes with a fill, a hedge or the perp's mark
            mark = float(self.mark) if self.mark is not None else float("nan")
            self._snapshot = key, {self.book_id: BookSnapshot(float(self.spot_qty), float(self.perp_qty), mark,
                                                              key[3])}
        return self._snapshot[1]

    def deltas(self) -> tuple[float | None, float | None]:
        """(current_delta, target_delta) = (Σd·mark, ΣT·mark) / ΣH·mark over the book (§9)."""
        h = self.cfg.hedge_ratio
        s, p = float(self.spot_qty), float(self.perp_qty)
        hedge = h * abs(s)
        if hedge == 0:
            return None, None
        target = (1 - h) * s
        return (s + p - target) / hedge, target / hedge

    # ---- reporting ---------------------------------------------------------------------------------
    def exposures(self) -> list[Exposure]:
        legs = [(self.spot, self.spot_qty), (self.perp, self.perp_qty)]
        return [Exposure(m, q, self.book_id) for m, q in legs if q]

    def metrics(self) -> dict[str, Any]:
        current, target = self.deltas()
        chk = self.last_check
        return {
            "status": self.status,
            "reason": self.reason,
            "phase": self.phase,
            "spot_qty": float(self.spot_qty),
            "perp_qty": float(self.perp_qty),
            "current_delta": current,
            "target_delta": target,
            "delta_by_asset": {split_market(self.spot)[1]: float(self.spot_qty + self.perp_qty)},
            "funding_captured_usd": float(self.funding_captured),
            "funding_payments": self.payments,
            "entry_check": None if chk is None else {"expected_bps": chk.expected_bps, "cost_bps": chk.cost_bps,
                                                     "min_rate": chk.min_rate, "enter": chk.enter,
                                                     "reason": chk.reason},
            "exit_reason": self.exit_reason,
            "margin_breach_ms": self.margin_breach_ms,
            "pairs_closed": self.pairs_closed,
            "dust": float(self.dust),
            "win_rate_pct": self.winloss.rate_pct,
            "wins": self.winloss.wins,
            "losses": self.winloss.losses,
        }

    def state(self) -> dict[str, Any]:
        return {
            "phase": self.phase, "spot_qty": str(self.spot_qty), "perp_qty": str(self.perp_qty),
            "cash": str(self.cash), "fees": str(self.fees), "entry_notional": str(self.entry_notional),
            "pair_funding": str(self.pair_funding), "t_open": self.t_open,
            "changes": [list(c) for c in self.changes], "pending": sorted(self.pending),
            "funding_captured": str(self.funding_captured), "payments": self.payments,
            "margin_breach_ms": self.margin_breach_ms, "exit_reason": self.exit_reason,
            "wins": self.winloss.wins, "losses": self.winloss.losses, "pairs_closed": self.pairs_closed,
            "dust": str(self.dust),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.phase = state["phase"]
        self.spot_qty, self.perp_qty = dec(state["spot_qty"]), dec(state["perp_qty"])
        self.cash, self.fees = dec(state["cash"]), dec(state["fees"])
        self.entry_notional, self.pair_funding = dec(state["entry_notional"]), dec(state["pair_funding"])
        self.t_open = state["t_open"]
        self.changes = [(int(t), str(q)) for t, q in state["changes"]]
        self.pending = set(state["pending"])
        self.funding_captured, self.payments = dec(state["funding_captured"]), int(state["payments"])
        self.margin_breach_ms, self.exit_reason = state["margin_breach_ms"], state["exit_reason"]
        self.winloss = WinLoss(int(state["wins"]), int(state["losses"]))
        self.pairs_closed = int(state["pairs_closed"])
        self.dust = dec(state.get("dust", "0"))
