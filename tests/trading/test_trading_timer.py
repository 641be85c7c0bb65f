"""The timer passes equity on to the daily-loss tracker, the risk layer and the emergency module only when
something they read moved (equity to the digit, gross exposure, a flow, the UTC day), and after an operator
resume re-based them. Invariant, over random streams of marks (often repeated), clock steps (seconds,
minutes, across midnight), deposits and withdrawals: every tick leaves daily loss, its persisted record (and
when it was saved), the risk layer's daily loss and the emergency ladder exactly as a core that passes every
tick on."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ate.config import parse_config
from ate.model import Instrument, MarketKind, TradingState
from ate.model.market import BookTicker
from ate.risk.events import DAILY_KEY
from ate.trading.core import TradingCore
from ate.trading.memory_state import MemoryState

D = Decimal
SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"), D("0.00001"),
                  min_notional=D("5"))
T0 = 1_764_028_800_000 + 23 * 3_600_000  # 23:00 UTC: an hour before midnight


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


class NoVenue:
    def submit(self, order, instrument) -> None:
        pass

    def cancel(self, order) -> None:
        pass


def core_with(clock: Clock) -> tuple[TradingCore, MemoryState]:
    cfg = parse_config({"mode": "paper", "strategies": {"arbitrage": {"enabled": False},
                                                        "funding_carry": {"enabled": False},
                                                        "directional": {"enabled": False}},
                        "risk_limits": {"capital_usd": 10000, "max_daily_loss_pct": 0.03}}, env={})
    state = MemoryState()
    core = TradingCore(cfg, instruments=[SPOT], strategies=[], clock=clock, state=state)
    core.attach(NoVenue())
    core.set_balances("binance", {"USDT": D("5000"), "BTC": D("0.1")})
    return core, state


def observed(core: TradingCore, state: MemoryState) -> tuple:
    """Everything a tick passed on could have changed (the daily record with its save time included)."""
    record = state.get_state(DAILY_KEY)
    em = core.signals.emergency.export_state()
    d = core.daily
    return (record, d.day_ms, d.e_day0, d.peak, str(d.equity), d.breached_day, d.loss, core.risk.daily_loss, em,
            core.signals.emergency.level)


PRICES = ["40000", "40000.00", "39000", "30000", "41000"]  # "40000.00": the same value in other digits
STEPS = st.one_of(
    st.tuples(st.just("mark"), st.sampled_from(PRICES)),
    st.tuples(st.just("wait"), st.sampled_from([1_000, 60_000, 3_600_000, 86_400_000])),
    st.tuples(st.just("transfer"), st.sampled_from(["100", "-250"])),
    st.tuples(st.just("tick"), st.just("")),
    st.tuples(st.just("resume"), st.just("")),  # a halt and an operator's resume: re-bases anchor and peak
)


def apply(core: TradingCore, clock: Clock, step: tuple[str, str | int], n: int) -> None:
    kind, arg = step
    if kind == "mark":
        p = D(arg)
        core.on_book(BookTicker("binance", "BTCUSDT", p - 1, D(1), p + 1, D(1), 0, clock()))
    elif kind == "wait":
        clock.now += int(arg)
    elif kind == "transfer":
        core.book_transfer("binance", "USDT", D(arg), clock(), f"t{n}", "test")
    elif kind == "resume":
        core.set_trading_state(TradingState.HALTED, "test", "halt")
        core.set_trading_state(TradingState.ACTIVE, "operator", "resume")


@settings(max_examples=60, deadline=None)
@given(st.lists(STEPS, min_size=1, max_size=40))
def test_a_tick_left_out_changes_nothing_a_tick_passed_on_would(steps):
    lazy_clock, eager_clock = Clock(), Clock()
    lazy, lazy_state = core_with(lazy_clock)
    eager, eager_state = core_with(eager_clock)
    for n, step in enumerate([("mark", "40000"), *steps]):
        for core, clock in ((lazy, lazy_clock), (eager, eager_clock)):
            apply(core, clock, step, n)
        lazy.on_timer()
        eager._equity_seen = None  # forgets what it passed on: every tick goes through
        eager.on_timer()
        assert observed(lazy, lazy_state) == observed(eager, eager_state), f"after {step}"


def test_midnight_with_an_unchanged_equity_anchors_the_new_day():
    clock = Clock()
    core, _ = core_with(clock)
    core.on_book(BookTicker("binance", "BTCUSDT", D("39999"), D(1), D("40001"), D(1), 0, clock()))
    core.on_timer()
    core.on_book(BookTicker("binance", "BTCUSDT", D("29999"), D(1), D("30001"), D(1), 0, clock()))
    core.on_timer()  # 9,000 → 8,000: a loss of 1,000 today
    assert core.daily.loss == 1000 and core.risk.daily_loss >= 300
    clock.now += 3_600_000  # past midnight, nothing else moved
    core.on_timer()
    assert core.daily.day_ms == T0 - T0 % 86_400_000 + 86_400_000
    assert core.daily.e_day0 == D("8000") and core.daily.loss == 0
    assert core.signals.emergency.e_day0 == 8000.0


def test_a_resume_after_a_halt_rebases_what_the_timer_passes_on():
    """The anchor and the peak re-based by an operator resume reach the risk layer on the next tick even
    though equity did not move."""
    clock = Clock()
    core, _ = core_with(clock)
    core.on_book(BookTicker("binance", "BTCUSDT", D("39999"), D(1), D("40001"), D(1), 0, clock()))
    core.on_timer()
    core.on_book(BookTicker("binance", "BTCUSDT", D("19999"), D(1), D("20001"), D(1), 0, clock()))
    core.on_timer()
    assert core.signals.emergency.level >= 2
    core.set_trading_state(TradingState.HALTED, "test", "halt")
    core.set_trading_state(TradingState.ACTIVE, "operator", "resume")
    clock.now += 1_000
    core.on_timer()
    assert core.daily.e_day0 == core.daily.peak == D("7000")
    assert core.signals.emergency.peak == 7000.0 and core.signals.emergency.level == 0
    assert core.risk.daily_loss == core.daily.limit == D("300")  # re-derived: the day's breach still stands
