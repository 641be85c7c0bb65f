"""The replayer applies every market's book points, candle closes, funding settlements and scheduled events in
one global order — (time, close before book before funding before event, market) — whatever shortcut it takes
for a market whose path runs ahead of the others. Real data: a spot and a perp 1m stream of different
lengths and offsets, funding every 8 h, events scheduled between and on path points."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from ate.data.candles import Candle
from ate.data.loaders import FundingRate, load_candles
from ate.sim.clock import ManualClock
from ate.sim.core import MatchingCore
from ate.sim.instruments import BINANCE_SPOT, BINANCE_USDM, KNOWN
from ate.sim.replay import POINTS, Replayer

DATA = Path(__file__).resolve().parents[2] / "data"
SPOT = DATA / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"
PERP = DATA / "binance_usdm_BTCUSDT_perp_1m_2025-05-04_2025-06-24.csv.gz"
CLOSE, BOOK, FUNDING, EVENT = 0, 1, 2, 3


class RecordingCore(MatchingCore):
    """The real matching core, logging what the replayer applies to it and when. Book updates are seen as a
    face sees them, through a book listener (which makes every update observable, so each is applied)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock.now_ms)
        self.clock_ = clock
        self.log: list[tuple[int, int, str]] = []
        self.listen_book(self._on_book)

    def _on_book(self, m):
        assert self.clock_.now_ms() == m.ts_ms
        self.log.append((m.ts_ms, BOOK, m.venue))

    def close_candle(self, m, candle: Candle):
        self.log.append((candle.close_ms, CLOSE, m.venue))
        super().close_candle(m, candle)

    def settle_funding(self, venue, symbol, ts_ms, rate, mark_price=None):
        self.log.append((ts_ms, FUNDING, venue))
        return super().settle_funding(venue, symbol, ts_ms, rate, mark_price)


def test_two_markets_funding_and_events_replay_in_one_global_order():
    spot_c = load_candles(SPOT)[:600]
    perp_c = [c for c in load_candles(PERP) if c.open_ms >= spot_c[0].open_ms + 7 * 60_000][:500]
    clock = ManualClock(spot_c[0].open_ms)
    core = RecordingCore(clock)
    spot = core.add_market(KNOWN[(BINANCE_SPOT, "BTCUSDT")], D("0.001"), D("0.001"))
    perp = core.add_market(KNOWN[(BINANCE_USDM, "BTCUSDT")], D("0.0002"), D("0.0005"))
    rep = Replayer(core, clock)
    rep.add_candles(spot, spot_c)
    rep.add_candles(perp, perp_c)
    first = perp_c[0].open_ms
    last = max(spot_c[-1].close_ms, perp_c[-1].close_ms)
    fund_ts = [t for k in range(1, 4) if (t := first - first % 28_800_000 + k * 28_800_000) <= last]
    assert len(fund_ts) >= 1
    rep.add_funding(perp, [FundingRate(t, "BTCUSDT", D("0.0001"), None) for t in fund_ts])
    event_ts = [spot_c[10].open_ms + 15_000, perp_c[3].close_ms, spot_c[300].open_ms + 7]
    for t in event_ts:
        rep.schedule(t, lambda t=t: core.log.append((t, EVENT, "event")))

    steps = sorted({c.close_ms for c in spot_c + perp_c} | set(fund_ts))
    for t in steps[::37] + [steps[-1]]:  # advance in uneven chunks, as the backtest runner does per close
        rep.advance_to(t)

    feeds = {"binance-spot": 0, "binance-usdm": 1, "event": 2}
    expected = []
    for venue, candles in (("binance-spot", spot_c), ("binance-usdm", perp_c)):
        for c in candles:
            expected += [(c.open_ms + k * c.interval_ms // POINTS, BOOK, venue) for k in range(POINTS)]
            expected.append((c.close_ms, CLOSE, venue))
    expected += [(t, FUNDING, "binance-usdm") for t in fund_ts]
    expected += [(t, EVENT, "event") for t in event_ts]
    expected.sort(key=lambda e: (e[0], e[1], feeds[e[2]]))
    assert len(core.log) == len(expected) == 5 * 1100 + len(fund_ts) + 3
    assert core.log == expected
