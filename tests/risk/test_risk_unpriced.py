"""Finding 6: an asset without a price (BNB fee dust) never switches risk off. Daily loss, the emergency
module's equity and persistence keep running; the asset is priced from configuration or valued at zero with
one warning; a configured market's first mark is awaited only for the grace period at start, and an asset
priced late enters equity as a flow, never as profit."""

from __future__ import annotations

from decimal import Decimal

from ate.config import parse_config
from ate.model import Instrument, MarketKind, OrderIntent, Purpose, Side
from ate.model.market import BookTicker
from ate.risk.events import DAILY_KEY
from ate.store import Store
from ate.trading.core import TradingCore
from ate.trading.memory_state import MemoryState

D = Decimal
SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"), D("0.00001"),
                  min_notional=D("5"))
PERP = Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, D("0.1"), D("0.001"), D("0.001"))
T0 = 1_764_028_800_000 + 3_600_000  # 01:00 UTC


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def core_with(clock: Clock, state, **risk) -> TradingCore:
    cfg = parse_config({"mode": "paper", "strategies": {"arbitrage": {"enabled": False},
                                                        "funding_carry": {"enabled": False},
                                                        "directional": {"enabled": False}},
                        "risk_limits": {"capital_usd": 10000, "max_daily_loss_pct": 0.03, **risk}}, env={})
    store = state if isinstance(state, Store) else None
    core = TradingCore(cfg, instruments=[SPOT, PERP], strategies=[], clock=clock, state=state, store=store)
    core.attach(NoVenue())
    return core


class NoVenue:
    def submit(self, order, instrument) -> None:
        pass

    def cancel(self, order) -> None:
        pass


def book(core: TradingCore, clock: Clock, price: str) -> None:
    p = D(price)
    core.on_book(BookTicker("binance", "BTCUSDT", p - 1, D(1), p + 1, D(1), 0, clock()))


def entry(core: TradingCore, price: str) -> bool:
    intent = OrderIntent("binance", "BTCUSDT", Side.BUY, D("0.001"), D(price), "test", Purpose.ENTRY)
    return core.orders.submit(intent) is not None


def test_bnb_dust_without_a_price_never_stops_the_daily_loss():
    """The reproduction: 1,600 → 900 with BNB dust held was booked as a daily loss of 0 against a 300 limit."""
    clock, state = Clock(), MemoryState()
    core = core_with(clock, state)
    events = []
    core.on_event = events.append
    core.set_balances("binance", {"USDT": D("800"), "BTC": D("0.02"), "BNB": D("0.0004")})
    book(core, clock, "40000")
    core.on_timer()  # equity 800 + 0.02 × 40,000 = 1,600; BNB valued at 0
    assert core.daily.equity == D("1600") and core.daily.loss == 0
    assert [e.kind for e in events] == ["unpriced_asset"] and events[0].data["asset"] == "BNB"
    clock.now += 60_000
    book(core, clock, "5000")  # BTC falls: equity 900
    core.on_timer()
    assert core.daily.loss == D("700")
    assert core.risk.daily_loss >= D("300")
    assert not entry(core, "5000") and core.orders.stats.rejected_by_risk == {"daily_loss": 1}
    assert [e.kind for e in events] == ["unpriced_asset"], "warned once per asset, not every tick"
    assert D(state.get_state(DAILY_KEY)["last_equity"]) == 900  # persisted
    assert core.signals.emergency is not None


def test_a_configured_price_values_the_asset():
    clock, state = Clock(), MemoryState()
    core = core_with(clock, state, asset_prices_usd={"BNB": 600.0})
    events = []
    core.on_event = events.append
    core.set_balances("binance", {"USDT": D("100"), "BNB": D("0.5")})
    core.on_timer()
    assert core.daily.equity == D("400") and events == []


def test_a_market_price_is_awaited_for_the_grace_period_only():
    clock, state = Clock(), MemoryState()
    core = core_with(clock, state, unpriced_grace_s=30)
    core.set_balances("binance", {"USDT": D("1000"), "BTC": D("0.01")})
    core.on_timer()
    assert core.daily.equity is None, "no valuation without BTC while its market's first mark may come"
    clock.now += 31_000
    core.on_timer()  # the market stays silent: BTC valued at 0, risk runs
    assert core.daily.equity == D("1000") and core.daily.e_day0 == D("1000")
    clock.now += 1_000
    book(core, clock, "50000")  # BTC priced at last: +500 enters as a flow, not a profit
    core.on_timer()
    assert core.daily.equity == D("1500") and core.daily.e_day0 == D("1500") and core.daily.loss == 0
    clock.now += 1_000
    book(core, clock, "40000")
    core.on_timer()
    assert core.daily.loss == D("100"), "a loss after pricing counts in full"


def test_persistence_runs_while_a_mark_is_awaited(tmp_path):
    clock, store = Clock(), Store(f"sqlite:///{tmp_path / 'ate.db'}")
    core = core_with(clock, store, unpriced_grace_s=3600)
    core.set_balances("binance", {"USDT": D("1000"), "BTC": D("0.01")})
    core.on_timer()
    assert core.daily.equity is None
    assert store.get_state("signals") is not None, "signal and strategy state persisted anyway"
    store.close()


def test_dust_spent_without_ever_being_priced_leaves_quietly():
    clock, state = Clock(), MemoryState()
    core = core_with(clock, state)
    core.set_balances("binance", {"USDT": D("100"), "BNB": D("0.001")})
    core.on_timer()
    core.set_balances("binance", {"USDT": D("100")})  # the BNB went on fees
    core.on_timer()
    assert core.daily.equity == D("100") and core.valuation.zeroed == set()
