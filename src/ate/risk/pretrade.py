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

Multi-leg intents (``OrderIntent.group``) are one unit: :meth:`PreTradeChecker.check_group` applies the
same rules to every leg and approves all legs at one size or none, so a pair is never sent one-legged by
the risk layer. :meth:`PreTradeChecker.headroom_usd` tells strategies what an entry may still be, so they
size pairs within it instead of being trimmed.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from math import lcm
from typing import NamedTuple

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
from ate.risk.verdict import Decision, GroupVerdict, Reason, Verdict

log = structlog.get_logger("ate.risk")
ZERO = Decimal(0)
ONE = Decimal(1)
_DELTA_PURPOSES = (Purpose.HEDGE, Purpose.UNWIND)
# Enum members the hot path compares against, read once: a member read through its class costs ~100 ns on
# Python 3.11, and a pair's check reads a dozen.
_OK, _APPROVE, _ENTRY, _CLOSE_ALL = Reason.OK, Decision.APPROVE, Purpose.ENTRY, Purpose.CLOSE_ALL
_ACTIVE, _HALTED, _REDUCING = TradingState.ACTIVE, TradingState.HALTED, TradingState.REDUCING
_BUY, _LIMIT = Side.BUY, OrderType.LIMIT


class _RateWindow:
    """At most ``n`` approvals in any window of ``window_ms`` (exact sliding log, not a token bucket,
    so a burst can never double the rate across a bucket boundary)."""

    __slots__ = ("n", "window_ms", "times")

    def __init__(self, per_second: float) -> None:
        self.n = max(1, int(per_second))
        self.window_ms = self.n * 1000.0 / per_second
        self.times: deque[int] = deque()

    def full(self, now_ms: int, more: int = 1) -> bool:
        """Whether ``more`` approvals now would exceed the rate."""
        times = self.times
        while times and now_ms - times[0] >= self.window_ms:
            times.popleft()
        return len(times) + more > self.n


class _Leg(NamedTuple):
    """One order assessed against every rule but the venue filters and the rate limit."""

    bound: Decimal  # the most the caps allow (not yet rounded)
    reason: Reason  # the limit that bound, OK if none did
    price: Decimal | None  # the limit price rounded by the venue's tick
    ref: Decimal | None  # the price its notional is valued at
    reduce_only: bool


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
        if verdict.decision is not _APPROVE:
            log.info("risk_" + verdict.decision.value, reason=verdict.reason.value, detail=verdict.detail,
                     market=intent.market, side=intent.side.value, qty=str(intent.qty),
                     purpose=intent.purpose.value, strategy=intent.strategy)
        return verdict

    def _check(self, intent: OrderIntent, inst: Instrument) -> Verdict:
        now = self.clock()
        leg = self._assess(intent, inst, now)
        if isinstance(leg, Verdict):
            return leg
        qty = inst.round_qty(leg.bound)
        if qty <= 0 and leg.reason is not _OK:
            return _reject(leg.reason, f"{leg.reason.value} leaves nothing to send")
        bad = self._filters(inst, qty, leg)
        if bad is not None:
            return bad
        if not self._rate_room({intent.venue: 1}, now):
            return _reject(Reason.RATE_LIMIT, f"more than {self.limits.max_orders_per_second}/s on {intent.venue}")
        out = self._commit(intent, inst, qty, leg, now)
        return Verdict(Decision.TRIM if leg.reason is not _OK else _APPROVE, leg.reason, out)

    def check_group(self, intents: Sequence[OrderIntent], instruments: Sequence[Instrument]) -> GroupVerdict:
        """All legs of one multi-leg intent at one size, or none (a pair is never trimmed leg by leg).

        Every leg passes the same rules as :meth:`check`. The legs are scaled by one factor, the largest
        every leg's caps allow, so their ratios hold: legs asking the smallest quantity (the hedge
        quantity) land on a grid common to their venues' steps; a leg asking more (a spot buy grossed up
        for a fee taken in base) is scaled by its ratio and rounded up, so the pair never ends short of
        its hedge. A leg rejected by a rule, by a venue filter at the common size, or a rate limit that
        cannot take every leg rejects the group; nothing is reserved for a rejected group."""
        verdict = self._check_group(intents, instruments)
        legs = verdict.intents or intents
        if legs:
            self.counts[(verdict.decision, verdict.reason)] += len(legs)
        if verdict.decision is not _APPROVE:
            for i in legs:
                log.info("risk_group_" + verdict.decision.value, reason=verdict.reason.value, detail=verdict.detail,
                         market=i.market, side=i.side.value, qty=str(i.qty), purpose=i.purpose.value,
                         strategy=i.strategy, group=i.group)
        return verdict

    def _check_group(self, intents: Sequence[OrderIntent], insts: Sequence[Instrument]) -> GroupVerdict:
        if not intents or len(intents) != len(insts):
            return GroupVerdict(Decision.REJECT, Reason.INVALID, (), "a group needs one instrument per leg")
        now = self.clock()
        legs: list[_Leg] = []
        # one factor for every leg: the tightest leg's bound over what it asked (a leg whose bound covers what
        # it asked cannot be the tightest: no division for it)
        scale, why, at = ONE, _OK, None
        on_step = True
        per_venue: dict[str, int] = {}
        for n, (intent, inst) in enumerate(zip(intents, insts, strict=True)):
            leg = self._assess(intent, inst, now)
            if isinstance(leg, Verdict):
                return GroupVerdict(Decision.REJECT, leg.reason, (), f"leg {n} {intent.market}: {leg.detail}", n)
            legs.append(leg)
            qty = intent.qty
            if leg.bound < qty and leg.bound / qty < scale:
                scale, why, at = leg.bound / qty, leg.reason, n
            on_step = on_step and inst.round_qty(qty) == qty
            per_venue[intent.venue] = per_venue.get(intent.venue, 0) + 1
        qtys = [i.qty for i in intents]
        scaled = scale < ONE or not on_step
        if scaled:  # else every leg keeps what it asked, which _assess found positive
            qtys, x, why, at = self._scaled(intents, insts, legs, min(qtys) * scale, why, at)
            if x <= 0 or any(q <= 0 for q in qtys):
                reason = why if why is not _OK else Reason.LOT_SIZE
                return GroupVerdict(Decision.REJECT, reason, (), f"{reason.value} leaves nothing to send for every "
                                    "leg", at)
        for n, (intent, inst, q, leg) in enumerate(zip(intents, insts, qtys, legs, strict=True)):
            bad = self._filters(inst, q, leg)
            if bad is not None:
                return GroupVerdict(Decision.REJECT, bad.reason, (), f"leg {n} {intent.market}: {bad.detail}", n)
        if not self._rate_room(per_venue, now):
            return GroupVerdict(Decision.REJECT, Reason.RATE_LIMIT, (),
                                f"no room for {len(intents)} legs within {self.limits.max_orders_per_second}/s")
        out = tuple(self._commit(i, inst, q, leg, now) for i, inst, q, leg in zip(intents, insts, qtys, legs, strict=True))
        if not scaled or qtys == [i.qty for i in intents]:
            return GroupVerdict(_APPROVE, _OK, out)
        return GroupVerdict(Decision.TRIM, why if why is not _OK else Reason.LOT_SIZE, out,
                            "legs scaled together", at)

    @staticmethod
    def _scaled(intents: Sequence[OrderIntent], insts: Sequence[Instrument], legs: list[_Leg], x: Decimal,
                why: Reason, at: int | None) -> tuple[list[Decimal], Decimal, Reason, int | None]:
        """Leg quantities for hedge quantity ``x``: on the hedge legs' common step, ratio legs rounded up
        within their own bound. Returns (quantities, hedge quantity, binding limit, its leg)."""
        base = min(i.qty for i in intents)
        grid = _common_step(tuple(inst.step_size for i, inst in zip(intents, insts, strict=True) if i.qty == base))
        for n, (intent, inst, leg) in enumerate(zip(intents, insts, legs, strict=True)):
            if intent.qty != base:  # rounded up below, so its bound must hold after rounding
                fits = _floor(leg.bound, inst.step_size) * base / intent.qty
                if fits < x:
                    x, why, at = fits, leg.reason, n
        x = _floor(x, grid)
        qtys = [inst.round_qty(x if i.qty == base else _ceil(x * i.qty / base, inst.step_size))
                for i, inst in zip(intents, insts, strict=True)]
        return qtys, x, why, at

    def headroom_usd(self, market: str | None = None, side: Side | None = None) -> Decimal:
        """Notional (USD at the trusted mark) a new entry may still have: the single-trade and order caps,
        and with ``market`` and ``side`` the position cap left after the position and pending orders.
        Zero when entries are refused (not ACTIVE, daily loss reached, no trusted mark)."""
        lim = self.limits
        if self.state is not _ACTIVE or self.daily_loss >= lim.daily_loss_usd:
            return ZERO
        room = min(lim.max_order_usd, lim.max_single_trade_usd)
        if market is None or side is None:
            return room
        mark = self._marks.get(market)
        if mark is None or self.clock() - mark[1] > lim.trusted_max_age_ms:
            return ZERO
        price = mark[0]
        pos, pend = self._pos.get(market, ZERO), self._pend.get((market, side), ZERO)
        cap = lim.max_position_usd / price
        left = cap - pos - pend if side is _BUY else cap + pos - pend
        return max(ZERO, min(room, left * price))

    def unreachable(self, instruments: Sequence[Instrument]) -> list[str]:
        """Markets where no entry can ever be sent under the limits in force (e.g. the canary's position cap
        below a venue's minimum notional), one sentence each: a strategy there never trades, and says so
        rather than sending one leg or an order the venue refuses."""
        lim = self.limits
        room = min(lim.max_position_usd, lim.max_single_trade_usd, lim.max_order_usd)
        return [f"{i.key}: the {lim.source} limits allow {room:.2f} USD per entry, below the venue's minimum "
                f"notional {i.min_notional} USD" for i in instruments if i.min_notional > room]

    def _assess(self, intent: OrderIntent, inst: Instrument, now: int) -> _Leg | Verdict:
        """Every rule of one order except the venue filters and the rate limit, without reserving anything:
        the most it may send (unrounded) and the limit that bound, or a rejection."""
        lim = self.limits
        purpose = intent.purpose
        closing = purpose is _CLOSE_ALL
        side = intent.side
        key = inst.key
        state = self.state
        self._base[key] = inst.base

        if state is _HALTED and not closing:
            return _reject(Reason.HALTED, "trading is HALTED: only cancels and close-all")
        if state is _REDUCING and purpose is _ENTRY:
            return _reject(Reason.REDUCING, "trading is REDUCING: no new exposure")
        if intent.qty <= 0:
            return _reject(Reason.INVALID, "quantity must be positive")

        mark = self._marks.get(key)
        fresh = mark is not None and now - mark[1] <= lim.trusted_max_age_ms
        if not fresh and not closing:
            return _reject(Reason.NO_TRUSTED_PRICE, f"no trusted mark for {key} within {lim.trusted_max_age_ms} ms")

        price = None
        if intent.type is _LIMIT:
            if intent.price is None or intent.price <= 0:
                return _reject(Reason.INVALID, "limit order without a positive price")
            price = inst.round_price(intent.price, side)
            if fresh and abs(price - mark[0]) > lim.max_price_deviation * mark[0]:
                return _reject(Reason.PRICE_DEVIATION, f"price {price} deviates more than "
                               f"{lim.max_price_deviation:%} from mark {mark[0]}")
        ref = price if price is not None else (mark[0] if fresh else None)

        if purpose is _ENTRY and self.daily_loss >= lim.daily_loss_usd:
            return _reject(Reason.DAILY_LOSS, f"daily loss {self.daily_loss} reached limit {lim.daily_loss_usd}")

        pos = self._pos.get(key, ZERO)
        pend = self._pend.get((key, side), ZERO)
        bound = intent.qty
        reason = _OK
        if not closing:
            # value at the worse of the order price and the mark: a low bid cannot buy a looser cap
            value = ref if mark is None or mark[0] <= ref else mark[0]
            # the caps in order (order, position, single trade); the first strictly below the bound binds
            cap = lim.max_order_usd / value
            if cap < bound:
                bound, reason = cap, Reason.ORDER_CAP
            # worst case after this order: every pending order on the same side fills too
            cap = lim.max_position_usd / value
            cap = cap - pos - pend if side is _BUY else cap + pos - pend
            if cap < bound:
                bound, reason = cap, Reason.POSITION_CAP
            # a single-trade limit not below the order limit divides to a cap not below the order cap (rounded
            # division is monotonic), which has bound already: its division is skipped
            if purpose is _ENTRY and lim.max_single_trade_usd < lim.max_order_usd:
                cap = lim.max_single_trade_usd / value
                if cap < bound:
                    bound, reason = cap, Reason.SINGLE_TRADE_CAP
        reduce_only = closing or intent.reduce_only
        reducing = state is _REDUCING
        if reduce_only or reducing:
            room = (-pos if side is _BUY else pos) - pend
            if room <= 0:
                return _reject(Reason.NOTHING_TO_REDUCE, f"{side.value} cannot reduce position {pos} on {key}")
            if room < bound:
                bound, reason = room, Reason.REDUCE_ONLY
        if reducing and purpose in _DELTA_PURPOSES:
            delta, pend_base = self._net_delta(inst.base, side)
            room = (-delta if side is _BUY else delta) - pend_base
            if room <= 0:
                return _reject(Reason.NOTHING_TO_REDUCE, f"{side.value} cannot reduce {inst.base} delta {delta}")
            if room < bound:
                bound, reason = room, Reason.DELTA
        return _Leg(max(bound, ZERO), reason, price, ref, reduce_only)

    @staticmethod
    def _filters(inst: Instrument, qty: Decimal, leg: _Leg) -> Verdict | None:
        try:
            inst.check(qty, leg.price, reduce_only=leg.reduce_only)
            if leg.price is None and leg.ref is not None and inst.min_notional > 0 \
                    and qty * leg.ref < inst.min_notional and not (leg.reduce_only and inst.kind is MarketKind.PERP):
                raise FilterError("MIN_NOTIONAL", f"notional {qty * leg.ref} below minimum {inst.min_notional}")
        except FilterError as exc:
            return _reject(Reason(exc.reason), str(exc))
        return None

    def _rate_room(self, per_venue: dict[str, int], now: int) -> bool:
        for venue, n in per_venue.items():
            rate = self._rates.get(venue)
            if rate is None:
                rate = self._rates[venue] = _RateWindow(self.limits.max_orders_per_second)
            if rate.full(now, n):
                return False
        return True

    def _commit(self, intent: OrderIntent, inst: Instrument, qty: Decimal, leg: _Leg, now: int) -> OrderIntent:
        self._rates[intent.venue].times.append(now)
        pend = (inst.key, intent.side)
        self._pend[pend] = self._pend.get(pend, ZERO) + qty
        return OrderIntent(intent.venue, intent.symbol, intent.side, qty, leg.price, intent.strategy, intent.purpose,
                           intent.type, intent.tif, leg.reduce_only, intent.meta, intent.group)

    def _net_delta(self, base: str, side: Side) -> tuple[Decimal, Decimal]:
        delta = pend = ZERO
        for key, b in self._base.items():
            if b == base:
                delta += self._pos.get(key, ZERO)
                pend += self._pend.get((key, side), ZERO)
        return delta, pend


def _reject(reason: Reason, detail: str) -> Verdict:
    return Verdict(Decision.REJECT, reason, None, detail)


@lru_cache(maxsize=64)
def _common_step(steps: tuple[Decimal, ...]) -> Decimal:
    """The smallest quantity step every venue accepts: the least common multiple of their steps."""
    steps = tuple(s for s in steps if s > 0)
    if not steps:
        return ZERO
    first = steps[0]
    if all(s == first for s in steps):
        return first
    exp = min(s.as_tuple().exponent for s in steps)
    unit = Decimal(1).scaleb(exp)
    return lcm(*(int(s / unit) for s in steps)) * unit


def _floor(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step if step > 0 else qty


def _ceil(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(rounding=ROUND_CEILING) * step if step > 0 else qty
