"""Property tests over random order streams: whatever the stream, no approved order breaches a limit."""

from __future__ import annotations

from collections import defaultdict, deque
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from risk_support import BP_SPOT, PERP, SPOT, FakeClock

from ate.config.risk import CanaryConfig, CapitalStagesConfig, RiskLimits
from ate.model import Mode, OrderIntent, OrderType, Purpose, Side, TradingState
from ate.risk import PreTradeChecker, limits_in_force

D = Decimal
INSTRUMENTS = (SPOT, PERP, BP_SPOT)

qtys = st.one_of(st.decimals(min_value=D("0.00001"), max_value=D("0.02"), places=5),
                 st.decimals(min_value=D("0.02"), max_value=D("2"), places=5))
order = st.tuples(st.just("order"), st.integers(0, 2), st.sampled_from(list(Side)), qtys,
                  st.one_of(st.none(), st.decimals(D("0.88"), D("1.12"), places=4)), st.sampled_from(list(Purpose)),
                  st.sampled_from([False, False, False, True]))
fill = st.tuples(st.just("fill"), st.integers(0, 50), st.decimals(D("0.1"), D(1), places=2))
_BRANCHES = (
    st.tuples(st.just("mark"), st.integers(0, 2), st.decimals(D("20000"), D("120000"), places=2),
              st.sampled_from([0, 0, 0, 200, 4000, 6000])),
    st.tuples(st.just("tick"), st.integers(0, 1500)),
    st.tuples(st.just("state"), st.sampled_from(list(TradingState))),
    st.tuples(st.just("loss"), st.decimals(D(0), D(600), places=2)),
    order, order, order, order, fill, fill,
    st.tuples(st.just("close"), st.integers(0, 50)),
)
# weighted: orders and fills dominate the stream
ops = st.integers(0, len(_BRANCHES) - 1).flatmap(lambda i: _BRANCHES[i])
modes = st.sampled_from([(Mode.PAPER, None), (Mode.CANARY, None), (Mode.LIVE, 0), (Mode.LIVE, 4)])


class Model:
    """The test's own bookkeeping of marks, positions and open orders (independent of the checker)."""

    def __init__(self, mode, stage):
        self.clock = FakeClock()
        self.lim = limits_in_force(mode, RiskLimits(max_single_trade_pct=0.1), CanaryConfig(),
                                   CapitalStagesConfig(), stage)
        self.checker = PreTradeChecker(self.lim, self.clock)
        self.marks: dict[str, tuple[Decimal, int]] = {}
        self.pos: dict[str, Decimal] = defaultdict(Decimal)
        self.open: list[list] = []  # [instrument, side, remaining, purpose, reduce_only]
        self.fills: list[tuple] = []  # (purpose, |pos| before, |pos| after)
        self.sent: dict[str, deque] = defaultdict(deque)
        self.state = TradingState.ACTIVE
        for inst in INSTRUMENTS:
            self.run(("mark", INSTRUMENTS.index(inst), D(50000), 0))
        self.loss = D(0)

    def pending(self, key, side):
        return sum((o[2] for o in self.open if o[0].key == key and o[1] is side), D(0))

    def run(self, op):
        kind = op[0]
        c = self.checker
        if kind == "mark":
            inst = INSTRUMENTS[op[1]]
            self.marks[inst.key] = (op[2], self.clock.now - op[3])
            c.update_mark(inst.key, op[2], self.clock.now - op[3])
        elif kind == "tick":
            self.clock.advance(op[1])
        elif kind == "state":
            self.state = op[1]
            c.set_state(op[1])
        elif kind == "loss":
            self.loss = op[1]
            c.set_daily_loss(op[1])
        elif kind == "fill" and self.open:
            o = self.open[op[1] % len(self.open)]
            qty = o[0].round_qty(o[2] * op[2]) or o[2]
            o[2] -= qty
            before = self.pos[o[0].key]
            self.pos[o[0].key] += o[1].sign * qty
            self.fills.append((o[3], abs(before), abs(self.pos[o[0].key])))
            c.on_fill(o[0], o[1], qty)
            if o[2] == 0:
                self.open.remove(o)
        elif kind == "close" and self.open:
            o = self.open.pop(op[1] % len(self.open))
            c.on_order_closed(o[0].key, o[1], o[2])
        elif kind == "order":
            self.order(*op[1:])

    def order(self, idx, side, qty, factor, purpose, reduce_only):
        inst = INSTRUMENTS[idx]
        mark = self.marks.get(inst.key)
        price = None if factor is None or mark is None else mark[0] * factor
        typ = OrderType.MARKET if price is None else OrderType.LIMIT
        intent = OrderIntent(inst.venue, inst.symbol, side, qty, price, "p", purpose, typ, reduce_only=reduce_only)
        pos, pend = self.pos[inst.key], self.pending(inst.key, side)
        # hedge/unwind delta uses every BTC market (all instruments here are BTC)
        delta = sum(self.pos.values(), D(0))
        pend_base = sum((self.pending(i.key, side) for i in INSTRUMENTS), D(0))
        v = self.checker.check(intent, inst)
        if not v.approved:
            return
        out = v.intent
        q, p, now, lim = out.qty, out.price, self.clock.now, self.lim
        closing = purpose is Purpose.CLOSE_ALL
        fresh = mark is not None and now - mark[1] <= lim.trusted_max_age_ms
        assert 0 < q <= qty
        inst.check(q, p, reduce_only=out.reduce_only)  # venue filters hold on what is sent
        if self.state is TradingState.HALTED:
            assert closing
        if closing:
            assert out.reduce_only
        if closing or reduce_only or self.state is TradingState.REDUCING:
            room = -pos - pend if side is Side.BUY else pos - pend
            assert q <= room  # only shrinks, even if every pending order on that side fills
        if self.state is TradingState.REDUCING:
            assert purpose is not Purpose.ENTRY
            if purpose in (Purpose.HEDGE, Purpose.UNWIND) and not reduce_only:
                after = delta + side.sign * (pend_base + q)
                assert abs(after) <= abs(delta) and after * delta >= 0  # net delta only shrinks
        if not closing:
            assert fresh
            ref = p if p is not None else mark[0]
            assert q * ref <= lim.max_order_usd
            if purpose is Purpose.ENTRY:
                assert q * ref <= lim.max_single_trade_usd
                assert self.loss < lim.daily_loss_usd
            worst = pos + pend + q if side is Side.BUY else -(pos - pend - q)
            assert worst * ref <= lim.max_position_usd
        if p is not None and fresh:
            assert abs(p - mark[0]) <= lim.max_price_deviation * mark[0]
        window = self.sent[inst.venue]
        while window and now - window[0] >= 1000:
            window.popleft()
        window.append(now)
        assert len(window) <= lim.max_orders_per_second
        self.open.append([inst, side, q, purpose, out.reduce_only])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modes, st.lists(ops, min_size=10, max_size=100))
def test_no_approved_order_breaches_a_limit(mode, stream):
    model = Model(*mode)
    for op in stream:
        model.run(op)


@settings(max_examples=120, deadline=None)
@given(st.lists(ops, min_size=5, max_size=60), st.lists(ops, min_size=5, max_size=60))
def test_halted_approves_only_close_all(warmup, stream):
    model = Model(Mode.PAPER, None)
    for op in warmup:
        model.run(op)
    model.run(("state", TradingState.HALTED))
    approved = []
    original = model.checker.check

    def spy(intent, inst):
        v = original(intent, inst)
        if v.approved:
            approved.append(v.intent)
        return v

    model.checker.check = spy
    for op in stream:
        if op[0] != "state":
            model.run(op)
    assert all(i.purpose is Purpose.CLOSE_ALL and i.reduce_only for i in approved)


@settings(max_examples=120, deadline=None)
@given(st.lists(ops, min_size=5, max_size=60), st.lists(ops, min_size=10, max_size=100))
def test_reducing_never_increases_exposure(warmup, stream):
    """In REDUCING every fill of an approved order shrinks its market's position (so gross exposure never
    grows), whatever the interleaving of approvals and fills; hedges also never grow net delta at approval
    (asserted in ``Model.order``)."""
    model = Model(Mode.PAPER, None)
    for op in warmup:
        model.run(op)
    while model.open:  # orders from before REDUCING are canceled first
        model.run(("close", 0))
    model.run(("state", TradingState.REDUCING))
    model.fills.clear()
    for op in stream:
        if op[0] != "state":
            model.run(op)
    for purpose, pos_before, pos_after in model.fills:
        assert purpose is not Purpose.ENTRY
        assert pos_after <= pos_before


def test_streams_do_exercise_approvals():
    """Guard against a vacuous property: a fixed stream gets approvals of every purpose."""
    model = Model(Mode.PAPER, None)
    model.run(("mark", 0, D(50000), 0))
    model.run(("mark", 1, D(50000), 0))
    model.run(("order", 0, Side.BUY, D("0.01"), D(1), Purpose.ENTRY, False))
    model.run(("fill", 0, D(1)))
    model.run(("state", TradingState.REDUCING))
    model.run(("order", 0, Side.SELL, D("0.004"), None, Purpose.EXIT, False))
    model.run(("order", 0, Side.SELL, D("0.02"), None, Purpose.HEDGE, False))
    assert [(o[3], o[2]) for o in model.open] == [(Purpose.EXIT, D("0.004")), (Purpose.HEDGE, D("0.006"))]
