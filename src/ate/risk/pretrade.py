"""Pre-trade checks: every order intent is approved, trimmed or rejected here before it is sent.

Pure and in-memory (no I/O): the engine feeds it trusted marks, positions, fills, the daily loss and
the trading state, and calls :meth:`PreTradeChecker.check` on the hot path. Time comes from the
injected clock (epoch ms).

Exposure accounting is worst-case: quantities of approved orders stay *pending* until the engine
reports them filled (:meth:`on_fill`) or finished unfilled (:meth:`on_order_closed`), so several
orders in flight together can never exceed a cap that each one alone respects.

Rules by purpose (``Purpose`` in ``ate.model.intent``):
- HALTED admits only CLOSE_ALL (cancels are always allowed and never pass through here).
- REDUCING rejects ENTRY, and every other order must shrink its market's position, so gross exposure
  (Σ|position| per asset, what the emergency ladder measures too) can only fall; HEDGE and UNWIND must in
  addition shrink the asset's net delta across markets (summed positions with the same base asset). A hedge
  that would open a new leg is refused in REDUCING: reduce the other leg instead.
- CLOSE_ALL is always reduce-only and bypasses the entry checks (order/trade/position caps, daily loss,
  trusted-price freshness); it still obeys reduce-only, the venue filters, the rate limit, and the price
  deviation check when a fresh mark exists.
- Any order flagged ``reduce_only`` may only shrink its market's position.
- Daily loss at or beyond the limit blocks ENTRY (new exposure); exits, hedges and unwinds pass.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from decimal import Decimal

import structlog

from ate.model import (
    FilterError,
    Instrument,
    MarketKind,
    OrderIntent,
    OrderType,
    Purpose,
    Side,
    TradingState,
)
from ate.risk.capital import Limits
from ate.risk.verdict import Decision, Reason, Verdict

log = structlog.get_logger("ate.risk")
ZERO = Decimal(0)
_DELTA_PURPOSES = (Purpose.HEDGE, Purpose.UNWIND)


class _RateWindow:
    """At most ``n`` approvals in any window of ``window_ms`` (exact sliding log, not a token bucket,
    so a burst can never double the rate across a bucket boundary)."""

    __slots__ = ("n", "window_ms", "times")

    def __init__(self, per_second: float) -> None:
        self.n = max(1, int(per_second))
        self.window_ms = self.n * 1000.0 / per_second
        self.times: deque[int] = deque()

    def full(self, now_ms: int) -> bool:
        times = self.times
        while times and now_ms - times[0] >= self.window_ms:
            times.popleft()
        return len(times) >= self.n


class PreTradeChecker:
    def __init__(self, limits: Limits, clock: Callable[[], int],
                 state: TradingState = TradingState.ACTIVE) -> None:
        self.clock = clock
        self.state = state
        self.daily_loss = ZERO
        self.counts: Counter[tuple[Decision, Reason]] = Counter()
        self._marks: dict[str, tuple[Decimal, int]] = {}
        self._pos: dict[str, Decimal] = {}
        self._base: dict[str, str] = {}
        self._pend: dict[tuple[str, Side], Decimal] = {}
        self._rates: dict[str, _RateWindow] = {}
        self.set_limits(limits)

    # -- inputs from the engine --

    def set_limits(self, limits: Limits) -> None:
        self.limits = limits
        self._rates = {venue: _RateWindow(limits.max_orders_per_second) for venue in self._rates}

    def set_state(self, state: TradingState) -> None:
        self.state = state

    def set_daily_loss(self, loss_usd: Decimal) -> None:
        self.daily_loss = loss_usd

    def update_mark(self, market: str, price: Decimal, ts_ms: int) -> None:
        """A trusted mark (the data manager has already quarantined poisoned input)."""
        self._marks[market] = (price, ts_ms)

    def set_position(self, instrument: Instrument, qty: Decimal) -> None:
        """The reconciled signed position (spot inventory or perp contracts) of one market."""
        self._pos[instrument.key] = qty
        self._base[instrument.key] = instrument.base

    def on_fill(self, instrument: Instrument, side: Side, qty: Decimal) -> None:
        """An approved order filled ``qty``: it moves from pending into the position."""
        key = instrument.key
        self._base[key] = instrument.base
        self._pos[key] = self._pos.get(key, ZERO) + side.sign * qty
        self._release(key, side, qty)

    def on_order_closed(self, market: str, side: Side, unfilled_qty: Decimal) -> None:
        """An approved order ended (canceled, rejected, expired) with ``unfilled_qty`` never filled."""
        self._release(market, side, unfilled_qty)

    def position(self, market: str) -> Decimal:
        return self._pos.get(market, ZERO)

    def pending(self, market: str, side: Side) -> Decimal:
        return self._pend.get((market, side), ZERO)

    def _release(self, market: str, side: Side, qty: Decimal) -> None:
        left = self._pend.get((market, side), ZERO) - qty
        self._pend[(market, side)] = left if left > 0 else ZERO

    # -- the check --

    def check(self, intent: OrderIntent, instrument: Instrument) -> Verdict:
        verdict = self._check(intent, instrument)
        self.counts[(verdict.decision, verdict.reason)] += 1
        if verdict.decision is not Decision.APPROVE:
            log.info("risk_" + verdict.decision.value, reason=verdict.reason.value, detail=verdict.detail,
                     market=intent.market, side=intent.side.value, qty=str(intent.qty),
                     purpose=intent.purpose.value, strategy=intent.strategy)
        return verdict

    def _check(self, intent: OrderIntent, inst: Instrument) -> Verdict:
        now = self.clock()
        lim = self.limits
        purpose = intent.purpose
        closing = purpose is Purpose.CLOSE_ALL
        side = intent.side
        key = inst.key
        state = self.state
        self._base[key] = inst.base

        if state is TradingState.HALTED and not closing:
            return _reject(Reason.HALTED, "trading is HALTED: only cancels and close-all")
        if state is TradingState.REDUCING and purpose is Purpose.ENTRY:
            return _reject(Reason.REDUCING, "trading is REDUCING: no new exposure")
        if intent.qty <= 0:
            return _reject(Reason.INVALID, "quantity must be positive")

        mark = self._marks.get(key)
        fresh = mark is not None and now - mark[1] <= lim.trusted_max_age_ms
        if not fresh and not closing:
            return _reject(Reason.NO_TRUSTED_PRICE, f"no trusted mark for {key} within {lim.trusted_max_age_ms} ms")

        price = None
        if intent.type is OrderType.LIMIT:
            if intent.price is None or intent.price <= 0:
                return _reject(Reason.INVALID, "limit order without a positive price")
            price = inst.round_price(intent.price, side)
            if fresh and abs(price - mark[0]) > lim.max_price_deviation * mark[0]:
                return _reject(Reason.PRICE_DEVIATION, f"price {price} deviates more than "
                               f"{lim.max_price_deviation:%} from mark {mark[0]}")
        ref = price if price is not None else (mark[0] if fresh else None)

        if purpose is Purpose.ENTRY and self.daily_loss >= lim.daily_loss_usd:
            return _reject(Reason.DAILY_LOSS, f"daily loss {self.daily_loss} reached limit {lim.daily_loss_usd}")

        pos = self._pos.get(key, ZERO)
        pend = self._pend.get((key, side), ZERO)
        bound = intent.qty
        reason = Reason.OK
        if not closing:
            # value at the worse of the order price and the mark: a low bid cannot buy a looser cap
            value = ref if mark is None or mark[0] <= ref else mark[0]
            for cap, why in self._caps(purpose, side, pos, pend, value):
                if cap < bound:
                    bound, reason = cap, why
        reduce_only = closing or intent.reduce_only
        reducing = state is TradingState.REDUCING
        if reduce_only or reducing:
            room = (-pos if side is Side.BUY else pos) - pend
            if room <= 0:
                return _reject(Reason.NOTHING_TO_REDUCE, f"{side.value} cannot reduce position {pos} on {key}")
            if room < bound:
                bound, reason = room, Reason.REDUCE_ONLY
        if reducing and purpose in _DELTA_PURPOSES:
            delta, pend_base = self._net_delta(inst.base, side)
            room = (-delta if side is Side.BUY else delta) - pend_base
            if room <= 0:
                return _reject(Reason.NOTHING_TO_REDUCE, f"{side.value} cannot reduce {inst.base} delta {delta}")
            if room < bound:
                bound, reason = room, Reason.DELTA

        qty = inst.round_qty(bound)
        if qty <= 0 and reason is not Reason.OK:
            return _reject(reason, f"{reason.value} leaves nothing to send")
        try:
            inst.check(qty, price, reduce_only=reduce_only)
            if price is None and ref is not None and inst.min_notional > 0 and qty * ref < inst.min_notional \
                    and not (reduce_only and inst.kind is MarketKind.PERP):
                raise FilterError("MIN_NOTIONAL", f"notional {qty * ref} below minimum {inst.min_notional}")
        except FilterError as exc:
            return _reject(Reason(exc.reason), str(exc))

        rate = self._rates.get(intent.venue)
        if rate is None:
            rate = self._rates[intent.venue] = _RateWindow(lim.max_orders_per_second)
        if rate.full(now):
            return _reject(Reason.RATE_LIMIT, f"more than {lim.max_orders_per_second}/s on {intent.venue}")
        rate.times.append(now)
        self._pend[(key, side)] = pend + qty
        out = OrderIntent(intent.venue, intent.symbol, side, qty, price, intent.strategy, purpose, intent.type,
                          intent.tif, reduce_only, intent.meta)
        return Verdict(Decision.TRIM if reason is not Reason.OK else Decision.APPROVE, reason, out)

    def _caps(self, purpose: Purpose, side: Side, pos: Decimal, pend: Decimal,
              ref: Decimal) -> tuple[tuple[Decimal, Reason], ...]:
        lim = self.limits
        pos_cap = lim.max_position_usd / ref
        # worst case after this order: every pending order on the same side fills too
        headroom = pos_cap - pos - pend if side is Side.BUY else pos_cap + pos - pend
        caps = ((lim.max_order_usd / ref, Reason.ORDER_CAP), (headroom, Reason.POSITION_CAP))
        if purpose is Purpose.ENTRY:
            caps += ((lim.max_single_trade_usd / ref, Reason.SINGLE_TRADE_CAP),)
        return caps

    def _net_delta(self, base: str, side: Side) -> tuple[Decimal, Decimal]:
        delta = pend = ZERO
        for key, b in self._base.items():
            if b == base:
                delta += self._pos.get(key, ZERO)
                pend += self._pend.get((key, side), ZERO)
        return delta, pend


def _reject(reason: Reason, detail: str) -> Verdict:
    return Verdict(Decision.REJECT, reason, None, detail)
