"""Cross-exchange spot arbitrage (signals-and-strategies.md §7): market_a (Binance BTCUSDT) ↔ market_b
(Backpack BTC_USDC), both directions.

On every top-of-book update the net edge after fees, slippage buffer and quote conversion is computed
for both directions; an edge ≥ threshold on fresh, uncrossed books opens an attempt: two IOC limit legs
at the observed prices, returned together and tagged with one attempt id. A one-legged fill is first
completed on the other venue, then reverted on its own, each at most `max_unwind_slippage_bps` worse
than that venue's original price. What is still unmatched (an unwind refused for lack of a trusted price,
an IOC that found a thin book) is retried with exponential backoff on the next book of either market after
the delay, on that market (its price is fresh) or, if the last retry went there, on the other one; a
quantity only one venue's filters take waits for that venue's book. Below both venues' minimum it is dust. After `STUCK_AFTER` retries the
attempt is reported stuck (CRITICAL, `metrics()["blocked"]`) and keeps being retried at the longest delay
until it is matched or an operator calls `resolve()`; new attempts wait meanwhile.

When the two markets settle in different quotes, the basis between them is a live market
(`ate.strategies.basis`): its conversion markets are subscribed, and a basis that is missing, stale,
invalid or outside the band vetoes new attempts (reason in `metrics()["basis"]`, a CRITICAL event) until
it has been back inside the band for the configured time. Realised P&L is in market_a's quote, each leg
converted at the basis live when the attempt opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ate.config.strategies import ArbitrageConfig
from ate.model import Fill, FilterError, Order, OrderIntent, Purpose, Severity, Side, TradingState
from ate.model.market import BookTicker
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
from ate.strategies.basis import BasisGuard, spec_for

ONE = Decimal(1)
CENT = Decimal("0.01")
# read once: an enum member read through its class costs ~100 ns on Python 3.11, on the entry's hot path
_BUY, _SELL, _ENTRY, _ACTIVE = Side.BUY, Side.SELL, Purpose.ENTRY, TradingState.ACTIVE
RETRY_FIRST_MS = 1_000  # an unwind refused or left unfilled is retried after this, doubling ...
RETRY_MAX_MS = 60_000  # ... up to this
DAY_MS = 86_400_000
STUCK_AFTER = 5  # retries before the one-legged position is reported stuck (CRITICAL)


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
    # Σ fill qty·price and fees in market_a's quote, each fill converted at the basis live when it was booked
    value: Decimal = ZERO
    fee_value: Decimal = ZERO


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
    phase: str = "entry"  # entry → complete → revert → retry… → done
    legs: dict[str, Leg] = field(default_factory=dict)
    retries: int = 0  # unwinds retried after the revert left an excess
    retry_at_ms: int | None = None  # when the next retry goes out (None: nothing scheduled)

    def base_excess(self) -> Decimal:
        """Bought − sold base coins over every leg."""
        return sum((leg.filled * leg.side.sign for leg in self.legs.values()), ZERO)

    def to_dict(self) -> dict[str, Any]:
        # field by field, not dataclasses.asdict: it deep-copies every Decimal and sat on every order's unit
        d = {name: getattr(self, name) for name in _ATTEMPT_FIELDS}
        d["legs"] = {k: {**{name: getattr(leg, name) for name in _LEG_FIELDS}, "side": leg.side.value}
                     for k, leg in self.legs.items()}
        return _strs(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attempt:
        legs = {k: Leg(v["market"], Side(v["side"]), dec(v["price"]), dec(v["qty"]), dec(v["filled"]),
                       dec(v["quote"]), dec(v["fee_quote"]), v["done"], list(v["trade_ids"]),
                       dec(v.get("value", "0")), dec(v.get("fee_value", "0")))
                for k, v in d["legs"].items()}
        return cls(d["id"], d["buy_market"], d["sell_market"], dec(d["buy_price"]), dec(d["sell_price"]),
                   {k: dec(v) for k, v in d["conv"].items()}, float(d["expected_net_bps"]), int(d["opened_ms"]),
                   d["phase"], legs, int(d.get("retries", 0)),
                   None if d.get("retry_at_ms") is None else int(d["retry_at_ms"]))


_LEG_FIELDS = tuple(f.name for f in fields(Leg))
_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))


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
        # the config is frozen: its Decimals are made once, not on every attempt
        self._fee_rate = {self.a: to_dec(cfg.fee_a_bps) * BP, self.b: to_dec(cfg.fee_b_bps) * BP}
        self._venue = {self.a: self.venue_a, self.b: self.venue_b}
        self._split = {self.a: split_market(self.a), self.b: split_market(self.b)}
        self._max_notional = to_dec(cfg.max_notional)
        self._depth_fraction = to_dec(cfg.depth_fraction)
        self._unwind_cap = to_dec(cfg.max_unwind_slippage_bps) * BP
        self._floats: dict[str, tuple[BookTicker, float, float]] = {}  # market → (book, bid, ask) as floats
        self._scopes = ["arbitrage", *market_scopes(self.a, self.b)]
        self._same_quote: bool | None = None  # learnt from the instruments on the first book
        self.in_episode = [False, False]  # direction 0: buy a / sell b; 1: buy b / sell a
        self.opportunities_detected = 0
        self.opportunities_by_day: dict[str, int] = {}
        self._edges: tuple[float, ...] | None = None  # (g0, n0, raw0, g1, n1, raw1) of the last book with an edge
        self.basis_source = "none"
        self.basis: BasisGuard | None = None  # built on the first book, once the quotes are known to differ
        self._basis_saved: dict[str, Any] | None = None
        self._conv_markets = frozenset(self.subscriptions())
        self._reads = frozenset({self.a, self.b, *self._conv_markets})
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

    def subscriptions(self) -> tuple[str, ...]:
        """The conversion markets (none under a fixed-rate override)."""
        cfg = self.cfg
        if cfg.conversion_rate is not None:
            return ()
        if cfg.conversion_cross:
            return tuple(cfg.conversion_cross)
        return (cfg.conversion_market,) if cfg.conversion_market else ()

    def reads(self) -> frozenset[str]:
        return self._reads  # `on_book` ignores every other market

    # ---- the hot path ------------------------------------------------------------------------------
    def on_book(self, market: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        if market != self.a and market != self.b and market not in self._conv_markets:
            return NO_INTENTS
        now = ctx.now_ms
        att = self.attempt
        if att is not None and att.retry_at_ms is not None and now >= att.retry_at_ms and market in (self.a, self.b):
            return self._retry(att, market, ctx)
        r = self._conversion(ctx, now)  # every conversion book keeps the guard (veto, resume) current
        ba = ctx.book(self.a)
        bb = ctx.book(self.b)
        shown = r if r is not None else (self.basis.rate if self.basis is not None else None)
        if ba is None or bb is None or shown is None:
            return NO_INTENTS
        max_age = self.cfg.book_max_age_ms
        fresh = (now - ba.ts_ms < max_age and now - bb.ts_ms < max_age
                 and ba.bid <= ba.ask and bb.bid <= bb.ask)
        fr = float(shown)
        bid_a, ask_a = self._float_book(self.a, ba)
        bid_b, ask_b = self._float_book(self.b, bb)
        cfg = self.cfg
        fee_a, fee_b, slip = cfg.fee_a_bps, cfg.fee_b_bps, cfg.slippage_buffer_bps
        g0, n0, raw0 = edge(ask_a, bid_b, 1.0, fr, fee_a, fee_b, slip)
        g1, n1, raw1 = edge(ask_b, bid_a, fr, 1.0, fee_b, fee_a, slip)
        threshold = cfg.net_threshold_bps
        hit0 = fresh and n0 >= threshold
        hit1 = fresh and n1 >= threshold
        if not (hit0 or hit1 or self.in_episode[0] or self.in_episode[1]):
            return NO_INTENTS
        self._edges = (g0, n0, raw0, g1, n1, raw1)
        self._episodes(hit0, hit1, now)
        if not (hit0 or hit1):
            return NO_INTENTS
        if r is None:
            return self._skip("basis")
        direction = 0 if hit0 else 1
        return self._try_enter(direction, r, ctx)

    def _float_book(self, market: str, book: BookTicker) -> tuple[float, float]:
        """(bid, ask) as floats, converted once per book (the other market's book is usually unchanged)."""
        cached = self._floats.get(market)
        if cached is not None and cached[0] is book:
            return cached[1], cached[2]
        bid, ask = float(book.bid), float(book.ask)
        self._floats[market] = (book, bid, ask)
        return bid, ask

    @property
    def last_edges(self) -> tuple[Edge, Edge] | None:
        """Both directions' edges at the last book that had one (or ended an episode)."""
        e = self._edges
        if e is None:
            return None
        g0, n0, raw0, g1, n1, raw1 = e
        return Edge(self.a, self.b, g0, n0, raw0, raw0 - g0), Edge(self.b, self.a, g1, n1, raw1, raw1 - g1)

    def _episodes(self, hit0: bool, hit1: bool, now: int) -> None:
        for i, hit in enumerate((hit0, hit1)):
            if hit and not self.in_episode[i]:
                self.opportunities_detected += 1
                day = _utc_day(now)
                self.opportunities_by_day[day] = self.opportunities_by_day.get(day, 0) + 1
            self.in_episode[i] = hit

    def _conversion(self, ctx: StrategyContext, now: int) -> Decimal | None:
        """market_a's quote per market_b's quote: 1 when they are the same, else the basis guard's rate,
        None while the basis vetoes trading across the two quotes."""
        if self._same_quote is None:
            qa, qb = ctx.instrument(self.a).quote, ctx.instrument(self.b).quote
            self._same_quote = qa == qb
            if not self._same_quote:
                cfg = self.cfg
                self.basis = BasisGuard(spec_for(qa, qb, fixed=cfg.conversion_rate, market=cfg.conversion_market,
                                                 cross=cfg.conversion_cross, max_age_s=cfg.conversion_max_age_s,
                                                 band_bps=cfg.basis_band_bps, resume_s=cfg.basis_resume_s),
                                        self._basis_event)
                if self._basis_saved is not None:
                    self.basis.restore(self._basis_saved)
        if self.basis is None:
            self.basis_source = "same_quote"
            return ONE
        r = self.basis.update(ctx.book, now, lambda m: (ctx.instrument(m).base, ctx.instrument(m).quote))
        self.basis_source = self.basis.source
        return r

    def _basis_now(self, market: str, att: Attempt, ctx: StrategyContext) -> Decimal:
        """market's quote in market_a's quote as the basis reads now (a fill is valued when it happens); the
        last known rate while vetoed, the attempt's opening one if there has never been any."""
        if market == self.a or self.basis is None:
            return att.conv[market]
        self.basis.update(ctx.book, ctx.now_ms)
        return self.basis.rate if self.basis.rate is not None else att.conv[market]

    def _basis_event(self, ts: int, kind: str, message: str, severity: Any, data: dict[str, Any]) -> None:
        self._event(ts, kind, message, severity, **data)

    def quote_rates(self) -> dict[str, tuple[str, Decimal]]:
        """The live basis as {market_b's quote: (market_a's quote, value in it)} (empty without one)."""
        g = self.basis
        if g is None or g.rate is None or g.spec.fixed is not None:
            return {}
        return {g.spec.quote_b: (g.spec.quote_a, g.rate)}

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
        if ctx.trading_state is not _ACTIVE:
            return self._skip("state")
        if self.stuck is not None or blocked(ctx, self._scopes) is not None:
            return self._skip("veto")
        buy_m, sell_m = (self.a, self.b) if direction == 0 else (self.b, self.a)
        conv = {self.a: ONE, self.b: r}
        bb, bs = ctx.book(buy_m), ctx.book(sell_m)
        assert bb is not None and bs is not None
        ib, is_ = ctx.instrument(buy_m), ctx.instrument(sell_m)
        fee_b = self._fee_rate[buy_m]
        ask_conv = bb.ask * conv[buy_m]
        caps = [
            self._max_notional / ask_conv,
            self._depth_fraction * min(bb.ask_qty, bs.bid_qty),
            ctx.balance(self._venue[buy_m], ib.quote).free / (bb.ask * (ONE + fee_b)),
            ctx.balance(self._venue[sell_m], is_.base).free,
        ]
        # both legs within the risk headroom of their own market: risk sends the pair at one size or not at all
        h_buy, h_sell = ctx.headroom_usd(self.name, buy_m, _BUY), ctx.headroom_usd(self.name, sell_m, _SELL)
        headroom = h_sell if h_buy is None else h_buy if h_sell is None else min(h_buy, h_sell)
        m = ctx.size_multiplier("lxvx")
        q = min(caps) * (to_dec(m) if m is not None else ONE)  # lxvx scales what the strategy wants ...
        capped = headroom is not None and headroom / ask_conv < q
        if capped:
            q = headroom / ask_conv  # ... and the risk headroom bounds the result
        q = is_.round_qty(ib.round_qty(q))
        try:
            q_b, p_b = ib.prepare(_BUY, q, bb.ask)
            q_s, p_s = is_.prepare(_SELL, q, bs.bid)
        except FilterError as exc:
            if capped:
                return self._headroom_short(headroom, exc, now)
            return self._skip(exc.reason)
        self._short_of_headroom = False
        assert p_b is not None and p_s is not None
        net = self._edges[1 + 3 * direction] if self._edges else 0.0
        self.seq += 1
        aid = f"arb-{now}-{self.seq}"
        att = Attempt(aid, buy_m, sell_m, bb.ask, bs.bid, conv, net, now)
        att.legs["buy"] = Leg(buy_m, _BUY, p_b, q_b)
        att.legs["sell"] = Leg(sell_m, _SELL, p_s, q_s)
        self.attempt = att
        self.attempts += 1
        self.last_attempt_ms = now
        expected = q * ask_conv * to_dec(net) * BP
        meta = {"attempt": aid, "expected_net_bps": net, "expected_profit": str(expected.quantize(CENT))}
        return [self._intent(buy_m, _BUY, q_b, p_b, _ENTRY, {**meta, "leg": "buy"}, group=aid),
                self._intent(sell_m, _SELL, q_s, p_s, _ENTRY, {**meta, "leg": "sell"}, group=aid)]

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
        venue, symbol = self._split[market]
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
            fee = self._fee_in_quote(leg.market, fill, ctx)
            c = self._basis_now(leg.market, att, ctx)
            leg.quote += fill.qty * fill.price
            leg.fee_quote += fee
            leg.value += fill.qty * fill.price * c
            leg.fee_value += fee * c
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
        return fill.qty * fill.price * self._fee_rate[market]

    def _advance(self, ctx: StrategyContext) -> Sequence[OrderIntent]:
        att = self.attempt
        assert att is not None
        if not all(leg.done for leg in att.legs.values()):
            return NO_INTENTS
        while True:
            e = att.base_excess()
            if e == 0:
                break
            if self._is_dust(e, att, ctx):
                self.dust += e
                self._event(ctx.now_ms, "dust", f"attempt {att.id}: {e} base below both venues' minimum, kept "
                            f"as dust ({self.dust} in all)", attempt=att.id, qty=str(e))
                break
            if att.phase not in ("entry", "complete"):
                return self._schedule_retry(att, e, ctx)
            # complete: trade the excess on the venue that did not fill it; revert: on the one that did.
            att.phase = "complete" if att.phase == "entry" else "revert"
            on_sell_venue = (e > 0) == (att.phase == "complete")
            intent = self._unwind(att, e, att.phase, [on_sell_venue], ctx)
            if intent is not None:
                self.one_legged += att.phase == "complete"
                return [intent]
        att.phase = "done"
        self._finish(att, ctx)
        return NO_INTENTS

    def _unwind(self, att: Attempt, e: Decimal, leg_name: str, venues: list[bool],
                ctx: StrategyContext) -> OrderIntent | None:
        """An IOC trading the excess `e` away on the first venue (True: the sell venue) whose filters take it,
        at most the unwind cap worse than that venue's price at entry; None when none does."""
        cap = self._unwind_cap
        side = Side.SELL if e > 0 else Side.BUY
        for on_sell_venue in venues:
            market, ref = (att.sell_market, att.sell_price) if on_sell_venue else (att.buy_market, att.buy_price)
            price = ref * (ONE - cap) if side is Side.SELL else ref * (ONE + cap)
            try:
                q, p = ctx.instrument(market).prepare(side, abs(e), price)
            except FilterError:
                continue  # not executable on this venue
            assert p is not None
            att.legs[leg_name] = Leg(market, side, p, q)
            return self._intent(market, side, q, p, Purpose.UNWIND,
                                {"attempt": att.id, "leg": leg_name, "unwind_of": str(e)})
        return None

    def _schedule_retry(self, att: Attempt, e: Decimal, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """The excess is still there after the revert: try again after a growing delay (a trusted price or
        depth may come back); past STUCK_AFTER retries say so, loudly, once."""
        delay = min(RETRY_FIRST_MS << min(att.retries, 16), RETRY_MAX_MS)
        att.retry_at_ms = ctx.now_ms + delay
        if att.retries == STUCK_AFTER and self.stuck is None:
            self.stuck = f"attempt {att.id}: {e} base unmatched after {att.retries} unwind retries"
            self._event(ctx.now_ms, "stuck", self.stuck + f"; retrying every {delay // 1000} s, new attempts "
                        "blocked until matched or resolved", Severity.CRITICAL, attempt=att.id, residual=str(e))
        elif att.retries < STUCK_AFTER:
            self._event(ctx.now_ms, "unwind_retry", f"attempt {att.id}: {e} base unmatched, unwind retry "
                        f"{att.retries + 1} in {delay} ms", Severity.WARNING, attempt=att.id, residual=str(e))
        return NO_INTENTS

    def _retry(self, att: Attempt, market: str, ctx: StrategyContext) -> Sequence[OrderIntent]:
        """Sent on a book of one of the two markets, to that one: its price has just arrived, so risk trusts
        it. If the last retry went there, to the other one first, so that a venue halted, down or thin does
        not hold the position. A quantity only the other venue takes waits for that venue's book (or the
        longest delay, so a silent venue still counts towards stuck)."""
        assert att.retry_at_ms is not None
        other = self.b if market == self.a else self.a
        last = att.legs.get(f"retry{att.retries}")
        if last is not None and last.market == market:
            order = [other, market]
        elif ctx.now_ms - att.retry_at_ms >= RETRY_MAX_MS:
            order = [market, other]
        else:
            order = [market]
        e = att.base_excess()
        intent = self._unwind(att, e, f"retry{att.retries + 1}", [m == att.sell_market for m in order], ctx)
        if intent is None and len(order) == 1:
            return NO_INTENTS  # still due: the other market's book will send it
        att.retry_at_ms = None
        att.retries += 1
        att.phase = "retry"
        if intent is None:
            return self._advance(ctx)  # dust now, or schedule the next retry
        return [intent]

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
            cash -= leg.value * leg.side.sign
            fees += leg.fee_value
            if leg.side is Side.BUY:
                buy_notional += leg.value
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
        if self.stuck is not None and self.stuck.startswith(f"attempt {att.id}:"):
            self.stuck = None
            self._event(ctx.now_ms, "unstuck", f"attempt {att.id} matched after {att.retries} unwind retries",
                        Severity.WARNING, attempt=att.id)
        if len(att.legs) > 2:
            self._event(ctx.now_ms, "unwind", f"attempt {att.id} unwound, P&L {pnl:.2f}", Severity.WARNING,
                        attempt=att.id, pnl=str(pnl))
        self.attempt = None
        self.update_skew(ctx)

    def resolve(self) -> None:
        """Operator: the unmatched inventory of a stuck attempt has been dealt with (its retries stop; its
        P&L is not booked, the operator's trades are outside the strategy)."""
        if self.attempt is not None and self.attempt.retry_at_ms is not None:
            self.attempt = None
        self.stuck = None

    # ---- inventory ---------------------------------------------------------------------------------
    def update_skew(self, ctx: StrategyContext) -> None:
        """skew = base_a/(base_a+base_b) − 0.5 (and the same for quote, converted); alert above the limit."""
        ia, ib = ctx.instrument(self.a), ctx.instrument(self.b)
        base_a = ctx.balance(self.venue_a, ia.base).total
        base_b = ctx.balance(self.venue_b, ib.base).total
        r = self.basis.rate if self.basis is not None and self.basis.rate is not None else ONE
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
            "basis": None if self.basis is None else self.basis.status(),
            "edges": None if e is None else [asdict(x) for x in e],
            "skipped": dict(self.skipped),
            "dust": float(self.dust),
            "in_flight": self.attempt.id if self.attempt else None,
            "unwind_retries": self.attempt.retries if self.attempt else 0,
            "unwind_retry_at_ms": self.attempt.retry_at_ms if self.attempt else None,
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
            "basis": self.basis.state() if self.basis is not None else self._basis_saved,
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
        self._basis_saved = state.get("basis")
        if self.basis is not None and self._basis_saved is not None:
            self.basis.restore(self._basis_saved)


@lru_cache(maxsize=4)
def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_MS // 1000, UTC).strftime("%Y-%m-%d")


def _utc_day(ms: int) -> str:
    """The UTC date of `ms` (formatted once per day: an opportunity opens on a book, on the hot path)."""
    return _day_name(ms // DAY_MS)
