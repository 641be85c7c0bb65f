from pathlib import Path

import pytest

from ate.data.candles import INTERVAL_MS, Aggregator, Candle, aggregate
from ate.data.loaders import data_info, load_candles

DATA = Path(__file__).resolve().parents[2] / "data"
H = INTERVAL_MS["1h"]


def test_1m_aggregates_to_the_independent_1h_file_exactly():
    minutes = load_candles(DATA / "binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz")
    hours = list(aggregate(minutes, H))
    assert minutes[0].open_ms % H != 0  # the file starts at 17:20: that partial hour is not emitted
    assert hours[0].open_ms == minutes[0].open_ms - minutes[0].open_ms % H + H
    complete = [h for h in hours if h.complete]
    ref = {c.open_ms: c for c in load_candles(DATA / "binance_spot_BTCUSDT_1h.csv.gz",
                                              start_ms=hours[0].open_ms, end_ms=hours[-1].open_ms + H)}
    assert len(complete) == 719
    for h in complete:
        r = ref[h.open_ms]
        assert (h.open, h.high, h.low, h.close) == (r.open, r.high, r.low, r.close)
        assert h.volume == pytest.approx(r.volume, rel=1e-9)


def test_missing_minute_gives_an_incomplete_bar_never_a_filled_one():
    base = 1_700_000_000_000 - 1_700_000_000_000 % H
    bars = [Candle(base + i * 60_000, 100 + i, 101 + i, 99 + i, 100.5 + i, 1.0) for i in range(60) if i != 30]
    bars.append(Candle(base + H, 1, 2, 0.5, 1.5, 2.0))
    (out,) = list(aggregate(bars, H))
    assert not out.complete and out.n_base == 59
    assert (out.open, out.high, out.low, out.close, out.volume) == (100, 160, 99, 159.5, 59.0)


def test_bucket_missing_its_last_minute_is_emitted_when_the_next_bucket_starts():
    agg = Aggregator(INTERVAL_MS["5m"])
    base = 1_700_000_100_000 - 1_700_000_100_000 % 300_000
    assert agg.update(Candle(base, 1, 1, 1, 1, 1)) == ()
    assert agg.update(Candle(base + 60_000, 2, 2, 2, 2, 1)) == ()
    (late,) = agg.update(Candle(base + 300_000, 3, 3, 3, 3, 1))
    assert late.open_ms == base and late.close == 2 and not late.complete


def test_data_info_reports_the_real_binance_outages():
    info = data_info(DATA / "binance_spot_BTCUSDT_1h.csv.gz")
    assert info.rows == 73_264 and info.interval_ms == H
    assert len(info.gaps) == 27 and info.missing == 122
