"""Cross-exchange spot arbitrage (signals-and-strategies.md §7): market_a (Binance BTCUSDT) ↔ market_b
(Backpack BTC_USDC), both directions.

On every top-of-book update the net edge after fees, slippage buffer and quote conversion is computed
for both directions; an edge ≥ threshold on fresh, uncrossed books opens an attempt: two IOC limit legs
at the observed prices, returned together and tagged with one attempt id. A one-legged fill is first
completed on the other venue, then reverted on its own, each at most `max_unwind_slippage_bps` worse
than that venue's original price; anything still unmatched blocks new attempts until an operator
calls `resolve()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ate.config.strategies import ArbitrageConfig
from ate.model import Fill, FilterError, Order, OrderIntent, Purpose, Severity, Side, TradingState
from ate.strategies.base import (
    BP,
    NO_INTENTS,
    ZERO,
    ClosedTrade,
    Strategy,
    StrategyContext,
    WinLoss,
    blocked,
    dec,
    market_scopes,
    split_market,
    to_dec,
)

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Edge:
    """One direction's edge at one instant (bps; prices of market_b converted into market_a's quote)."""

    buy_market: str
    sell_market: str
    gross_bps: float
    net_bps: float
    raw_bps: float  # unconverted
    basis_bps: float  # raw − gross


def edge(ask_buy: float, bid_sell: float, conv_buy: float, conv_sell: float, fee_buy_bps: float,
         fee_sell_bps: float, slippage_bps: float) -> tuple[float, float, float]:
    """(gross, net, raw) bps of buying at `ask_buy` and selling at `bid_sell`; conv_* = quote conversion."""
    a = ask_buy * conv_buy
    gross = (bid_sell * conv_sell - a) / a * 1e4
    raw = (bid_sell - ask_buy) / ask_buy * 1e4
    return gross, gross - fee_buy_bps - fee_sell_bps - slippage_bps, raw


@dataclass(slots=True)
class Leg:
    market: str
    side: Side
    price: Decimal  # the limit sent
    qty: Decimal
    filled: Decimal = ZERO
    quote: Decimal = ZERO  # Σ fill qty·price, in the market's own quote
    fee_quote: Decimal = ZERO  # fees in the market's own quote
    done: bool = False
    trade_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Attempt:
    id: str
    buy_market: str
    sell_market: str
    buy_price: Decimal  # observed ask of the buy venue (own quote)
    sell_price: Decimal  # observed bid of the sell venue (own quote)
    conv: dict[str, Decimal]  # market → its quote in market_a's quote
    expected_net_bps: float
    opened_ms: int
    phase: str = "entry"  # entry → complete → revert → done | stuck
    legs: dict[str, Leg] = field(default_factory=dict)

    def base_excess(self) -> Decimal:
        """Bought − sold base coins over every leg."""
        return sum((leg.filled * leg.side.sign for leg in self.legs.values()), ZERO)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for leg in d["legs"].values():
            leg["side"] = leg["side"].value
        return _strs(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attempt:
        legs = {k: Leg(v["market"], Side(v["side"]), dec(v["price"]), dec(v["qty"]), dec(v["filled"]),
                       dec(v["quote"]), dec(v["fee_quote"]), v["done"], list(v["trade_ids"]))
                for k, v in d["legs"].items()}
        return cls(d["id"], d["buy_market"], d["sell_market"], dec(d["buy_price"]), dec(d["sell_price"]),
                   {k: dec(v) for k, v in d["conv"].items()}, float(d["expected_net_bps"]), int(d["opened_ms"]),
                   d["phase"], legs)


def _strs(x: Any) -> Any:
    """Decimals as strings, recursively (plain JSON, exact)."""
    if isinstance(x, Decimal):
        return str(x)
    if isinstance(x, dict):
        return {k: _strs(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_strs(v) for v in x]
    return x


class ArbitrageStrategy(Strategy):
    name = "arbitrage"

    def __init__(self, cfg: ArbitrageConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ArbitrageConfig()
        self.a, self.b = cfg.market_a, cfg.market_b
        self.venue_a, self.venue_b = split_market(self.a)[0], split_market(self.b)[0]
        self._fee = {self.a: cfg.fee_a_bps, self.b: cfg.fee_b_bps}
        self._scopes = ["arbitrage", *market_scopes(self.a, self.b)]
        self._same_quote: bool | None = None  # learnt from the instruments on the first book
        self.in_episode = [False, False]  # direction 0: buy a / sell b; 1: buy b / sell a
        self.opportunities_detected = 0
        self.opportunities_by_day: dict[str, int] = {}
        self.last_edges: tuple[Edge, Edge] | None = None
        self.basis_source = "none"
        self.attempt: Attempt | None = None
        self.last_attempt_ms: int | None = None
        self.seq = 0
        self.attempts = 0
        self.trades_executed = 0
        self.attempts_zero_fill = 0
        self.one_legged = 0
        self.pnl = ZERO  # realised net, market_a quote
        self.buy_notional = ZERO
        self.slippage_weighted = 0.0  # Σ (expected − realised bps)·buy notional
        self.unwind_loss = ZERO
        self.winloss = WinLoss()
        self.stuck: str | None = None  # reason new attempts are blocked until resolve()
        self.skew: float | None = None
        self.quote_skew: float | None = None
        self._skew_alerted = False
        self.skipped: dict[str, int] = {}
        self.dust = ZERO  # base coins below both venues' minimum, left by attempts (bought − sold)
        self._short_of_headroom = False  # warned that the risk headroom is below the venues' minimum

    # ---- the hot path ------------------------------------------------------------------------------
    def on_book(self, market: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if market != self.a and market != self.b:
            return NO_INTENTS
        ba = ctx.book(self.a)
        bb = ctx.book(self.b)
        if ba is None or bb is None:
            return NO_INTENTS
        now = ctx.now_ms
        max_age = self.cfg.book_max_age_ms
        fresh = (now - ba.ts_ms < max_age and now - bb.ts_ms < max_age
                 and ba.bid <= ba.ask and bb.bid <= bb.ask)
        r = self._conversion(ctx, now)
        fr = float(r)
        ask_a, bid_a, ask_b, bid_b = float(ba.ask), float(ba.bid), float(bb.ask), float(bb.bid)
        fee_a, fee_b, slip = self.cfg.fee_a_bps, self.cfg.fee_b_bps, self.cfg.slippage_buffer_bps
        g0, n0, raw0 = edge(ask_a, bid_b, 1.0, fr, fee_a, fee_b, slip)
        g1, n1, raw1 = edge(ask_b, bid_a, fr, 1.0, fee_b, fee_a, slip)
        threshold = self.cfg.net_threshold_bps
        hit0 = fresh and n0 >= threshold
        hit1 = fresh and n1 >= threshold
        if not (hit0 or hit1 or self.in_episode[0] or self.in_episode[1]):
            return NO_INTENTS
        self.last_edges = (Edge(self.a, self.b, g0, n0, raw0, raw0 - g0), Edge(self.b, self.a, g1, n1, raw1, raw1 - g1))
        self._episodes(hit0, hit1, now)
        if not (hit0 or hit1):
            return NO_INTENTS
        direction = 0 if hit0 else 1
        return self._try_enter(direction, r, ctx)

    def _episodes(self, hit0: bool, hit1: bool, now: int) -> None:
        for i, hit in enumerate((hit0, hit1)):
            if hit and not self.in_episode[i]:
                self.opportunities_detected += 1
                day = _utc_day(now)
                self.opportunities_by_day[day] = self.opportunities_by_day.get(day, 0) + 1
            self.in_episode[i] = hit

    def _conversion(self, ctx: StrategyContext, now: int) -> Decimal:
        """USDT per USDC: 1 when both markets share a quote, else the fixed rate or a fresh mid."""
        if self._same_quote is None:
            self._same_quote = ctx.instrument(self.a).quote == ctx.instrument(self.b).quote
        if self._same_quote:
            self.basis_source = "same_quote"
            return ONE
        cfg = self.cfg
        if cfg.conversion_rate is not None:
            self.basis_source = "fixed"
            return to_dec(cfg.conversion_rate)
        book = ctx.book(cfg.conversion_market) if cfg.conversion_market else None
        if book is not None and now - book.ts_ms <= cfg.conversion_max_age_s * 1000 and book.bid > 0:
            self.basis_source = "mid"
            return (book.bid + book.ask) / 2
        if self.basis_source != "none":
            self._event(now, "conversion", "no fresh USDC/USDT rate: converting at 1", Severity.WARNING)
            self.basis_source = "none"
        return ONE

    # ---- entries -----------------------------------------------------------------------------------
    def _skip(self, why: str) -> Sequence[OrderIntent]:
        self.skipped[why] = self.skipped.get(why, 0) + 1
        return NO_INTENTS

    def _try_enter(self, direction: int, r: Decimal, ctx: StrategyContext) -> Sequence[OrderIntent]:
        now = ctx.now_ms
        if self.attempt is not None or ctx.in_flight(self.name):
            return self._skip("in_flight")
        if self.last_attempt_ms is not None and now - self.last_attempt_ms < self.cfg.min_attempt_interval_ms:
            return self._skip("interval")
        if ctx.trading_state is not TradingState.ACTIVE:
            return self._skip("state")
        if self.stuck is not None or blocked(ctx, self._scopes) is not None:
            return self._skip("veto")
        buy_m, sell_m = (self.a, self.b) if direction == 0 else (self.b, self.a)
        conv = {self.a: ONE, self.b: r}
        bb, bs = ctx.book(buy_m), ctx.book(sell_m)
        assert bb is not None and bs is not None
        ib, is_ = ctx.instrument(buy_m), ctx.instrument(sell_m)
        fee_b = to_dec(self._fee[buy_m]) * BP
        ask_conv = bb.ask * conv[buy_m]
        caps = [
            to_dec(self.cfg.max_notional) / ask_conv,
            to_dec(self.cfg.depth_fraction) * min(bb.ask_qty, bs.bid_qty),
            ctx.balance(split_market(buy_m)[0], ib.quote).free / (bb.ask * (ONE + fee_b)),
            ctx.balance(split_market(sell_m)[0], is_.base).free,
        ]
        # both legs within the risk headroom of their own market: risk sends the pair at one size or not at all
        room = [h for h in (ctx.headroom_usd(self.name, buy_m, Side.BUY), ctx.headroom_usd(self.name, sell_m, Side.SELL))
                if h is not None]
        headroom = min(room) if room else None
        m = ctx.size_multiplier("lxvx")
        q = min(caps) * (to_dec(m) if m is not None else ONE)  # lxvx scales what the strategy wants ...
        capped = headroom is not None and headroom / ask_conv < q
        if capped:
            q = headroom / ask_conv  # ... and the risk headroom bounds the result
        q = is_.round_qty(ib.round_qty(q))
        try:
            q_b, p_b = ib.prepare(Side.BUY, q, bb.ask)
            q_s, p_s = is_.prepare(Side.SELL, q, bs.bid)
        except FilterError as exc:
            if capped:
                return self._headroom_short(headroom, exc, now)
            return self._skip(exc.reason)
        self._short_of_headroom = False
        assert p_b is not None and p_s is not None
        net = self.last_edges[direction].net_bps if self.last_edges else 0.0
        self.seq += 1
        aid = f"arb-{now}-{self.seq}"
        att = Attempt(aid, buy_m, sell_m, bb.ask, bs.bid, conv, net, now)
        att.legs["buy"] = Leg(buy_m, Side.BUY, p_b, q_b)
        att.legs["sell"] = Leg(sell_m, Side.SELL, p_s, q_s)
        self.attempt = att
        self.attempts += 1
        self.last_attempt_ms = now
        expected = q * ask_conv * to_dec(net) * BP
        meta = {"attempt": aid, "expected_net_bps": net, "expected_profit": str(expected.quantize(Decimal("0.01")))}
        return [self._intent(buy_m, Side.BUY, q_b, p_b, Purpose.ENTRY, {**meta, "leg": "buy"}, group=aid),
                self._intent(sell_m, Side.SELL, q_s, p_s, Purpose.ENTRY, {**meta, "leg": "sell"}, group=aid)]

    def _headroom_short(self, headroom: Decimal, exc: FilterError, now: int) -> Sequence[OrderIntent]:
        """The risk headroom (e.g. the canary position cap) is below a venue's minimum: no pair is sent, and
        the operator is told once per episode why the arbitrage does not trade."""
        if not self._short_of_headroom:
            self._short_of_headroom = True
            self._event(now, "headroom", f"risk headroom {headroom:.2f} USD is below the venues' minimum order "
                        f"({exc}): no attempt until it grows", Severity.WARNING, headroom=str(headroom))
        return self._skip("headroom")

    def _intent(self, market: str, side: Side, qty: Decimal, price: Decimal, purpose: Purpose,
                meta: dict[str, Any], group: str = "") -> OrderIntent:
        venue, symbol = split_market(market)
        return OrderIntent(venue, symbol, side, qty, price, self.name, purpose, meta=meta, group=group)

    # ---- following the legs ------------------------------------------------------------------------
    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> Sequence[OrderIntent]:
        att = self.attempt
        if att is None or order.meta.get("attempt") != att.id:
            return NO_INTENTS
        leg = att.legs.get(order.meta.get("leg", ""))
        if leg is None:
            return NO_INTENTS
        if fill is not None and fill.trade_id not in leg.trade_ids:
            leg.trade_ids.append(fill.trade_id)
            leg.filled += fill.qty
            leg.quote += fill.qty * fill.price
            leg.fee_quote += self._fee_in_quote(leg.market, fill, ctx)
        if not order.is_open:
            leg.done = True
        return self._advance(ctx)

    def on_intent_rejected(self, intent: OrderIntent, reason: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        att = self.attempt
        if att is None or intent.meta.get("attempt") != att.id:
            return NO_INTENTS
        leg = att.legs.get(intent.meta.get("leg", ""))
        if leg is not None:
            leg.done = True
        return self._advance(ctx)

    def _fee_in_quote(self, market: str, fill: Fill, ctx: StrategyContext) -> Decimal:
        inst = ctx.instrument(market)
        if fill.fee_asset == inst.quote:
            return fill.fee
        if fill.fee_asset == inst.base:
            return fill.fee * fill.price
        # Fees in a third asset (BNB): book the configured taker rate instead.
        return fill.qty * fill.price * to_dec(self._fee[market]) * BP

    def _advance(self, ctx: StrategyContext) -> Sequence[OrderIntent]:
        att = self.attempt
        assert att is not None
        if not all(leg.done for leg in att.legs.values()):
            return NO_INTENTS
        cap = to_dec(self.cfg.max_unwind_slippage_bps) * BP
        while True:
            e = att.base_excess()
            if e == 0:
                att.phase = "done"
                break
            if self._is_dust(e, att, ctx):
                self.dust += e
                self._event(ctx.now_ms, "dust", f"attempt {att.id}: {e} base below both venues' minimum, kept "
                            f"as dust ({self.dust} in all)", attempt=att.id, qty=str(e))
                att.phase = "done"
                break
            if att.phase == "revert":
                att.phase = "stuck"
                break
            # complete: trade the excess on the venue that did not fill it; revert: on the one that did.
            att.phase = "complete" if att.phase == "entry" else "revert"
            on_sell_venue = (e > 0) == (att.phase == "complete")
            market, ref = (att.sell_market, att.sell_price) if on_sell_venue else (att.buy_market, att.buy_price)
            side = Side.SELL if e > 0 else Side.BUY
            price = ref * (ONE - cap) if side is Side.SELL else ref * (ONE + cap)
            try:
                q, p = ctx.instrument(market).prepare(side, abs(e), price)
            except FilterError:
                continue  # not executable on this venue: fall through to the next step
            assert p is not None
            att.legs[att.phase] = Leg(market, side, p, q)
            self.one_legged += att.phase == "complete"
            return [self._intent(market, side, q, p, Purpose.UNWIND,
                                 {"attempt": att.id, "leg": att.phase, "unwind_of": str(e)})]
        self._finish(att, ctx)
        return NO_INTENTS

    @staticmethod
    def _is_dust(e: Decimal, att: Attempt, ctx: StrategyContext) -> bool:
        """An excess neither venue would take (below its minimum quantity or notional): trading it is
        impossible, so it never blocks the arbitrage."""
        for market, ref in ((att.buy_market, att.buy_price), (att.sell_market, att.sell_price)):
            inst = ctx.instrument(market)
            q = inst.round_qty(abs(e))
            if q >= inst.min_qty and q > 0 and q * ref >= inst.min_notional:
                return False
        return True

    def _finish(self, att: Attempt, ctx: StrategyContext) -> None:
        cash = fees = buy_notional = ZERO
        for leg in att.legs.values():
            c = att.conv[leg.market]
            cash -= leg.quote * c * leg.side.sign
            fees += leg.fee_quote * c
            if leg.side is Side.BUY:
                buy_notional += leg.quote * c
        residual = att.base_excess()
        # Coins left over are valued at the buy price observed at entry, so the P&L reflects costs only.
        pnl = cash - fees + residual * att.buy_price * att.conv[att.buy_market]
        if any(leg.filled for leg in att.legs.values()):
            self.trades_executed += 1
            self.pnl += pnl
            self.buy_notional += buy_notional
            if buy_notional > 0:
                realised = float(pnl / buy_notional) * 1e4
                self.slippage_weighted += (att.expected_net_bps - realised) * float(buy_notional)
            if len(att.legs) > 2 and pnl < 0:
                self.unwind_loss -= pnl
            self.winloss.add(float(pnl))
            self._trades.append(ClosedTrade(self.name, float(pnl), float(buy_notional), ctx.now_ms))
        else:
            self.attempts_zero_fill += 1
        if att.phase == "stuck":
            self.stuck = f"attempt {att.id}: {residual} base unmatched after unwind"
            self._event(ctx.now_ms, "stuck", self.stuck + "; arbitrage blocked until resolved", Severity.CRITICAL,
                        attempt=att.id, residual=str(residual))
        elif len(att.legs) > 2:
            self._event(ctx.now_ms, "unwind", f"attempt {att.id} unwound, P&L {pnl:.2f}", Severity.WARNING,
                        attempt=att.id, pnl=str(pnl))
        self.attempt = None
        self.update_skew(ctx)

    def resolve(self) -> None:
        """Operator: the unmatched inventory of a stuck attempt has been dealt with."""
        self.stuck = None

    # ---- inventory ---------------------------------------------------------------------------------
    def update_skew(self, ctx: StrategyContext) -> None:
        """skew = base_a/(base_a+base_b) − 0.5 (and the same for quote, converted); alert above the limit."""
        ia, ib = ctx.instrument(self.a), ctx.instrument(self.b)
        base_a = ctx.balance(self.venue_a, ia.base).total
        base_b = ctx.balance(self.venue_b, ib.base).total
        r = self._conversion(ctx, ctx.now_ms)
        quote_a = ctx.balance(self.venue_a, ia.quote).total
        quote_b = ctx.balance(self.venue_b, ib.quote).total * r
        self.skew = float(base_a / (base_a + base_b)) - 0.5 if base_a + base_b > 0 else None
        self.quote_skew = float(quote_a / (quote_a + quote_b)) - 0.5 if quote_a + quote_b > 0 else None
        worst = max(abs(self.skew or 0.0), abs(self.quote_skew or 0.0))
        if worst > self.cfg.skew_alert and not self._skew_alerted:
            self._event(ctx.now_ms, "skew", f"inventory skew {worst:.3f} above {self.cfg.skew_alert}",
                        Severity.WARNING, skew=self.skew, quote_skew=self.quote_skew)
        self._skew_alerted = worst > self.cfg.skew_alert

    # ---- reporting ---------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        e = self.last_edges
        return {
            "opportunities_detected": self.opportunities_detected,
            "opportunities_by_day": dict(self.opportunities_by_day),
            "attempts": self.attempts,
            "trades_executed": self.trades_executed,
            "attempts_zero_fill": self.attempts_zero_fill,
            "one_legged": self.one_legged,
            "realised_pnl_usd": float(self.pnl),
            "buy_notional_usd": float(self.buy_notional),
            "average_profit_bps": float(self.pnl / self.buy_notional) * 1e4 if self.buy_notional else None,
            "slippage_bps": self.slippage_weighted / float(self.buy_notional) if self.buy_notional else None,
            "unwind_loss_usd": float(self.unwind_loss),
            "win_rate_pct": self.winloss.rate_pct,
            "wins": self.winloss.wins,
            "losses": self.winloss.losses,
            "skew": self.skew,
            "quote_skew": self.quote_skew,
            "blocked": self.stuck,
            "basis_source": self.basis_source,
            "edges": None if e is None else [asdict(x) for x in e],
            "skipped": dict(self.skipped),
            "dust": float(self.dust),
            "in_flight": self.attempt.id if self.attempt else None,
        }

    def state(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "last_attempt_ms": self.last_attempt_ms, "attempts": self.attempts,
            "opportunities_detected": self.opportunities_detected,
            "opportunities_by_day": dict(self.opportunities_by_day),
            "trades_executed": self.trades_executed, "attempts_zero_fill": self.attempts_zero_fill,
            "one_legged": self.one_legged, "pnl": str(self.pnl), "buy_notional": str(self.buy_notional),
            "slippage_weighted": self.slippage_weighted, "unwind_loss": str(self.unwind_loss),
            "wins": self.winloss.wins, "losses": self.winloss.losses, "stuck": self.stuck,
            "attempt": self.attempt.to_dict() if self.attempt else None, "dust": str(self.dust),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.seq = int(state["seq"])
        self.last_attempt_ms = state["last_attempt_ms"]
        self.attempts = int(state["attempts"])
        self.opportunities_detected = int(state["opportunities_detected"])
        self.opportunities_by_day = dict(state["opportunities_by_day"])
        self.trades_executed = int(state["trades_executed"])
        self.attempts_zero_fill = int(state["attempts_zero_fill"])
        self.one_legged = int(state["one_legged"])
        self.pnl = dec(state["pnl"])
        self.buy_notional = dec(state["buy_notional"])
        self.slippage_weighted = float(state["slippage_weighted"])
        self.unwind_loss = dec(state["unwind_loss"])
        self.winloss = WinLoss(int(state["wins"]), int(state["losses"]))
        self.stuck = state["stuck"]
        self.attempt = Attempt.from_dict(state["attempt"]) if state["attempt"] else None
        self.dust = dec(state.get("dust", "0"))


def _utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%d")
