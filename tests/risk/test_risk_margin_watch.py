"""MarginWatch's own rules (the wire is in test_risk_live_margin.py): what counts as leverage confirmed, when a
difference between the venue and the engine's books is a drift worth reconciling, and that a venue error is
an event, never an exception."""

from __future__ import annotations

from decimal import Decimal

from ate.execution.portfolio import Portfolio
from ate.model import Balance, Instrument, MarketKind, Position, Severity
from ate.trading.margin import MarginWatch
from ate.venues.base import MarginReport
from ate.venues.errors import VenueRejected, VenueUnknown

D = Decimal
SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"))
PERP = Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, D("0.1"), D("0.001"))


class Venue:
    def __init__(self, venue: str, leverage: int = 3) -> None:
        self.venue = venue
        self.leverage = leverage
        self.wallet = {"USDT": Balance("USDT", D("1000"))}
        self.held: list[Position] = []
        self.fail: Exception | None = None

    async def set_margin_type(self, symbol: str, margin_type: str) -> None:
        if self.fail is not None:
            raise self.fail

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        return self.leverage

    async def margin(self, symbol: str) -> MarginReport:
        if self.fail is not None:
            raise self.fail
        return MarginReport(symbol, D("900"), D("4"), D("120000"), D("-0.01"))

    async def balances(self) -> dict[str, Balance]:
        return dict(self.wallet)

    async def positions(self) -> list[Position]:
        return list(self.held)


class Orders:
    def __init__(self) -> None:
        self.open: list = []

    def open_orders(self):
        return self.open


class Core:
    def __init__(self) -> None:
        self.portfolio = Portfolio()
        for i in (SPOT, PERP):
            self.portfolio.add_instrument(i)
        self.portfolio.set_balances("binance", {"USDT": D("1000")})
        self.portfolio.set_balances("binance_usdm", {"USDT": D("1000")})
        self.margins: dict = {}
        self.orders = Orders()


async def nap(_s: float) -> None:
    return None


def watch(core: Core, clients: dict, events: list, drifts: list) -> MarginWatch:
    return MarginWatch(core, clients, leverage=3, margin_type="CROSSED", clock=lambda: 1, on_event=events.append,
                       on_drift=drifts.append, sleep=nap, poll_s=30)


async def test_leverage_is_checked_against_the_venues_answer():
    events: list = []
    w = watch(Core(), {"binance": Venue("binance"), "binance_usdm": Venue("binance_usdm")}, events, [])
    await w.setup()
    assert w.verified == {"binance_usdm:BTCUSDT": True} and [e.kind for e in events] == ["leverage_set"]

    events.clear()
    w = watch(Core(), {"binance_usdm": Venue("binance_usdm", leverage=20)}, events, [])
    await w.setup()  # the venue kept another leverage
    assert w.verified == {"binance_usdm:BTCUSDT": False}
    assert [(e.kind, e.severity) for e in events] == [("leverage_unverified", Severity.CRITICAL)]
    await w.poll()
    assert w.core.margins["binance_usdm:BTCUSDT"].leverage_ok is False  # the carry opens no pair on it

    events.clear()
    refusing = Venue("binance_usdm")
    refusing.fail = VenueRejected("binance_usdm", "no", code=-4048)
    w = watch(Core(), {"binance_usdm": refusing}, events, [])
    await w.setup()
    assert w.verified == {"binance_usdm:BTCUSDT": False} and events[0].severity is Severity.CRITICAL


async def test_a_poll_fills_the_margin_the_carry_guard_reads():
    core, events = Core(), []
    w = watch(core, {"binance": Venue("binance"), "binance_usdm": Venue("binance_usdm")}, events, [])
    await w.poll()
    m = core.margins["binance_usdm:BTCUSDT"]
    assert (m.equity, m.maintenance, m.liquidation_price) == (D("900"), D("4"), D("120000"))
    assert events == []


async def test_a_venue_error_is_an_event_and_the_last_margin_stays():
    core, events = Core(), []
    usdm = Venue("binance_usdm")
    w = watch(core, {"binance_usdm": usdm}, events, [])
    await w.poll()
    usdm.fail = VenueUnknown("binance_usdm", "timeout")
    await w.poll()
    assert core.margins["binance_usdm:BTCUSDT"].equity == D("900")
    assert [e.kind for e in events] == ["margin_read_failed"]


async def test_a_difference_is_a_drift_only_when_it_lasts_two_polls_with_nothing_in_flight():
    core, drifts = Core(), []
    usdm = Venue("binance_usdm")
    events: list = []
    w = watch(core, {"binance_usdm": usdm}, events, drifts)
    usdm.held = [Position("binance_usdm", "BTCUSDT", D("-0.01"))]  # e.g. a position the engine never saw
    await w.poll()
    assert drifts == [], "once may be a fill still on its way"
    core.orders.open = [type("O", (), {"venue": "binance_usdm"})()]
    await w.poll()
    assert drifts == [], "an order of ours is open there: not a drift"
    core.orders.open = []
    await w.poll()
    await w.poll()
    assert drifts == ["binance_usdm"]
    drift = next(e for e in events if e.kind == "account_drift")
    assert drift.data["diffs"] == {"binance_usdm:BTCUSDT": "-0.01"}

    drifts.clear()
    usdm.held = []
    usdm.wallet = {"USDT": Balance("USDT", D("1000.0005"))}  # a venue's own rounding, below a millionth
    await w.poll()
    await w.poll()
    assert drifts == []
