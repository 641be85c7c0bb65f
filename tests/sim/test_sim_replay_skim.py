"""A market nothing observes (``MatchingCore.quiet``: no listener, no resting order, no position, not halted)
has a run of replayed points applied as its net effect. Whatever can be read afterwards, or in between (a
scheduled event, a funding settlement, another market's turn), must be what applying every point gives: the
book, update ids, last price, the replayed candle's bar, the perp mark, the closed candles and the clock; and
an order placed mid-replay (the market is then observed) fills at the same time and price.

Real data: a spot and a perp 1m stream at different offsets, hourly perp candles replayed every 15 s, funding
every 8 h, events on and between path points, advanced in uneven chunks as the backtest runner does."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import pytest

from ate.data.candles import Candle
from ate.data.loaders import FundingRate, load_candles
from ate.model import OrderType, Side
from ate.sim.clock import ManualClock
from ate.sim.core import MatchingCore
from ate.sim.instruments import BINANCE_SPOT, BINANCE_USDM, KNOWN
from ate.sim.replay import STEP_MS, Replayer

DATA = Path(__file__).resolve().parents[2] / "data"
SPOT = DATA / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
PERP = DATA / "binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz"
HOUR = 3_600_000


def _state(core: MatchingCore, clock: ManualClock) -> tuple:
    return (clock.now_ms(),) + tuple(
        (m.bid_t, m.ask_t, m.bid_sz, m.ask_sz, m.ts_ms, m.update_id, m.last_price_t, tuple(m.bar), m.mark,
         len(m.candles), m.candles[-1] if m.candles else None) for m in core.markets.values())


def _replay(observed: bool, hourly: bool = False, seam: bool = False) -> tuple[list, list, int]:
    spot_c = load_candles(SPOT)[:900]
    if seam:  # a copy of the data spliced on 11 minutes before the original ends (overlapping candles)
        spot_c = spot_c[:450] + [replace(c, open_ms=c.open_ms + 439 * 60_000) for c in spot_c[:450]]
    perp_c = [c for c in load_candles(PERP) if c.open_ms >= spot_c[0].open_ms + 7 * 60_000][:700]
    if hourly:  # the perp as hourly candles, replayed every 15 s of data (as `ate simulate` does)
        perp_c = [Candle(c.open_ms - c.open_ms % HOUR, c.open, c.high, c.low, c.close, c.volume, HOUR)
                  for c in perp_c[::60]]
    clock = ManualClock(spot_c[0].open_ms)
    core = MatchingCore(clock.now_ms)
    spot = core.add_market(KNOWN[(BINANCE_SPOT, "BTCUSDT")], D("0.001"), D("0.001"))
    perp = core.add_market(KNOWN[(BINANCE_USDM, "BTCUSDT")], D("0.0002"), D("0.0005"))
    core.add_account("a")
    core.deposit("a", BINANCE_SPOT, "USDT", D(100_000))
    core.deposit("a", BINANCE_USDM, "USDT", D(100_000))
    if observed:
        core.listen_book(lambda m: None)
    updates = [0]
    plain = core.update_book

    def counted(*args):
        updates[0] += 1
        plain(*args)

    core.update_book = counted  # type: ignore[method-assign]
    rep = Replayer(core, clock)
    rep.add_candles(spot, spot_c, min_size=0.01)
    assert seam == any(a.close_ms > b.open_ms for a, b in zip(spot_c, spot_c[1:], strict=False))
    rep.add_candles(perp, perp_c, min_size=0.01, step_ms=STEP_MS if hourly else None)
    first = perp_c[0].open_ms
    last = max(spot_c[-1].close_ms, perp_c[-1].close_ms)
    fund_ts = [t for k in range(1, 3) if (t := first - first % 28_800_000 + k * 28_800_000) <= last]
    rep.add_funding(perp, [FundingRate(t, "BTCUSDT", D("0.0001"), None) for t in fund_ts])  # paid at the mark
    seen: list = []
    for t in (spot_c[10].open_ms + 15_000, perp_c[3].close_ms, spot_c[300].open_ms + 7, spot_c[500].close_ms):
        rep.schedule(t, lambda: seen.append(_state(core, clock)))

    def buy(market, symbol, below: float) -> None:  # under the market: rests, fills later
        price = D(str(round((market.bid_t * market.tick_f) * (1 - below), 1)))
        core.place_order("a", market.venue, symbol, Side.BUY, OrderType.LIMIT, D("0.01"), price)

    rep.schedule(spot_c[620].open_ms + 20_000, lambda: buy(spot, "BTCUSDT", 0.002))
    rep.schedule(spot_c[700].open_ms, lambda: buy(perp, "BTCUSDT", -0.001))  # crosses: a position
    states = []
    steps = sorted({c.close_ms for c in spot_c + perp_c} | set(fund_ts))
    # with the seam, one step ends just before the close of the last candle before it: later points are due
    for t in sorted({*steps[::7], steps[-1], *([spot_c[449].close_ms - 1] if seam else [])}):
        rep.advance_to(t)
        states.append(_state(core, clock))
    fills = [(f.symbol, f.venue, f.ts_ms, f.price, f.qty) for f in core.account("a").fills]
    funding = [(e.ts_ms, e.amount, e.mark) for e in core.account("a").funding]
    return states, seen + [fills, funding], updates[0]


def test_a_quiet_market_skims_to_what_every_point_gives():
    states, seen, updates = _replay(observed=False)
    every_states, every_seen, every_updates = _replay(observed=True)
    assert every_updates == 4 * (900 + 700)  # observed: each point applied
    assert updates < every_updates // 2  # quiet stretches were skimmed...
    fills, funding = seen[-2], seen[-1]
    assert len(fills) == 2 and len(funding) >= 1  # ...and the orders and a position made the markets observed
    assert seen == every_seen
    assert states == every_states


def test_an_hourly_perp_replayed_every_15_s_skims_to_the_same_marks_and_bars():
    states, seen, updates = _replay(observed=False, hourly=True)
    every_states, every_seen, every_updates = _replay(observed=True, hourly=True)
    assert updates < every_updates
    assert seen == every_seen
    assert states == every_states


@pytest.mark.parametrize("hourly", [False, True])  # hourly: no perp close ties the spot's at the seam
def test_candles_out_of_order_are_applied_one_event_at_a_time_and_the_rest_skimmed(hourly):
    states, seen, updates = _replay(observed=False, hourly=hourly, seam=True)
    every_states, every_seen, every_updates = _replay(observed=True, hourly=hourly, seam=True)
    assert updates < every_updates // 2
    assert seen == every_seen
    assert states == every_states
