"""The replayed path of a candle longer than a minute: a book update every 15 s of data through the four
anchors (open, the nearer extreme, the other extreme, close), so an hourly perp keeps a fresh mark."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from ate.data.candles import Candle
from ate.sim.clock import ManualClock
from ate.sim.core import MARK, MatchingCore
from ate.sim.instruments import BINANCE_USDM, KNOWN
from ate.sim.replay import STEP_MS, Replayer, book_path, points_per_candle

HOUR = 3_600_000


def test_an_hourly_candle_moves_every_15_s_through_its_anchors():
    core = MatchingCore()
    m = core.add_market(KNOWN[(BINANCE_USDM, "BTCUSDT")], D(0), D(0))
    c = Candle(0, 100.0, 130.0, 90.0, 120.0, 240.0, HOUR)
    assert points_per_candle(HOUR) == 240 and points_per_candle(60_000) == 4
    ts, bid, ask, _, vol = book_path(m, [c], 0.0, 0.1, 0.0, 240)
    assert list(ts) == list(range(0, HOUR, 15_000))  # int64 arrays
    assert all(a - b == 1 for b, a in zip(bid, ask, strict=True))  # the one-tick spread at 0 bps
    px = [b * m.tick for b in bid]
    # open → low (nearer the open) at 15 min → high at 30 min → close at 45 min, then the close holds
    assert [px[i] for i in (0, 60, 120, 180, 239)] == [D(100), D(90), D(130), D(120), D(120)]
    assert max(px) == D(130) and min(px) == D(90)  # straight lines inside the candle's range
    assert len(vol) == 1 and vol[0] * 240 * m.step_f <= 240.0 and vol[0] == round(1.0 / m.step_f)  # per candle


def test_hourly_replay_marks_a_perp_every_15_s_and_closes_the_candle_once():
    clock = ManualClock(0)
    core = MatchingCore(clock.now_ms)
    m = core.add_market(KNOWN[(BINANCE_USDM, "BTCUSDT")], D(0), D(0))
    marks: list[int] = []
    core.listen(lambda kind, e: marks.append(e.ts_ms) if kind == MARK else None)
    rep = Replayer(core, clock)
    rep.add_candles(m, [Candle(0, 100.0, 130.0, 90.0, 120.0, 240.0, HOUR),
                        Candle(HOUR, 120.0, 121.0, 119.0, 120.5, 10.0, HOUR)], step_ms=STEP_MS)
    rep.advance_to(HOUR)
    assert marks == list(range(0, HOUR + 1, 15_000))  # and the next candle's open at 1 h
    assert [x.open_ms for x in m.candles] == [0]


def test_path_prices_are_int32_while_they_fit_and_widen_exactly_when_they_do_not():
    core = MatchingCore()
    fine = replace(KNOWN[(BINANCE_USDM, "BTCUSDT")], tick_size=D("0.00001"))  # 100,000 at 1e-5: 1e10 ticks
    m = core.add_market(fine, D(0), D(0), venue="fine")
    cheap = [Candle(k * 60_000, 1.0, 1.0, 1.0, 1.0, 10.0) for k in range(40_000)]  # > one chunk of candles
    dear = Candle(40_000 * 60_000, 100_000.0, 100_000.0, 100_000.0, 100_000.0, 10.0)
    ts, bid, ask, size, _ = book_path(m, [*cheap, dear], 0.0, 0.1, 0.0)
    assert bid.typecode == ask.typecode == "q" and ts.typecode == "q"  # widened mid-way
    assert bid[0] == 100_000 and bid[-1] == 10_000_000_000 and ask[-1] == bid[-1] + 1
    assert len(bid) == 4 * 40_001
    _, bid, ask, size, vol = book_path(m, cheap, 0.0, 0.1, 0.0)
    assert {a.itemsize for a in (bid, ask, size, vol)} == {4} and bid[-1] == 100_000
