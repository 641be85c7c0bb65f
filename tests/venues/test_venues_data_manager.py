"""Market data manager: validation/quarantine, candle aggregation and push delivery."""

from decimal import Decimal as D

from ate.data.candles import MINUTE_MS, Candle
from ate.data.manager import MarketDataManager
from ate.model.market import BookTicker, MarkPrice, Trade

T0 = 1_700_000_100_000 - 1_700_000_100_000 % (5 * MINUTE_MS)


def book(bid="100", ask="101", u=1, ts=T0) -> BookTicker:
    return BookTicker("binance", "BTCUSDT", D(bid), D("1"), D(ask), D("1"), u, ts)


def candle(i: int, close: float = 100.0, **kw) -> Candle:
    fields = dict(open=100.0, high=max(101.0, close), low=min(99.0, close), close=close, volume=5.0) | kw
    return Candle(T0 + i * MINUTE_MS, fields["open"], fields["high"], fields["low"], fields["close"],
                  fields["volume"])


def test_book_validation_quarantines_and_counts():
    m = MarketDataManager()
    pushed = []
    m.subscribe("book", pushed.append)
    m.on_book(book())
    m.on_book(book(bid="NaN", u=2))
    m.on_book(book(bid="0", u=3))
    m.on_book(book(bid="102", ask="101", u=4))  # crossed
    m.on_book(book(u=0 + 0, ts=T0 - 1))  # no id: older timestamp is out of order
    m.on_book(book(bid="1001", ask="1002", u=5))  # 10x jump
    m.on_book(book(bid="100.5", ask="100.6", u=6))
    m.on_book(book(u=5))  # id went backwards
    assert [b.update_id for b in pushed] == [1, 6]
    assert m.book("binance", "BTCUSDT").bid == D("100.5")
    assert m.quarantine_counts() == {"book:crossed": 1, "book:jump": 1, "book:nan": 1, "book:non_positive": 1,
                                     "book:out_of_order": 2}


def test_candles_are_validated_aggregated_and_pushed():
    m = MarketDataManager(timeframes=("5m",))
    got = []
    m.subscribe("candle", lambda v, s, tf, c: got.append((tf, c.open_ms)))
    for i in range(5):
        m.on_candle("binance", "BTCUSDT", candle(i))
    m.on_candle("binance", "BTCUSDT", candle(4))  # duplicate from a backfill: ignored, not quarantined
    m.on_candle("binance", "BTCUSDT", candle(3))  # out of order
    m.on_candle("binance", "BTCUSDT", candle(5, close=float("nan")))
    m.on_candle("binance", "BTCUSDT", candle(5, close=5000.0))  # spike
    m.on_candle("binance", "BTCUSDT", candle(5, high=99.5))  # high below open
    assert got == [("1m", T0 + i * MINUTE_MS) for i in range(5)] + [("5m", T0)]
    (bar,) = m.candles("binance", "BTCUSDT", "5m")
    assert bar.complete and bar.volume == 25.0 and bar.high == 101.0
    assert m.duplicates == 1
    assert m.quarantine_counts() == {"candle:inconsistent_ohlc": 1, "candle:jump": 1, "candle:nan": 1,
                                     "candle:out_of_order": 1}


async def test_queue_subscribers_get_marks_and_trades():
    m = MarketDataManager()
    marks = m.queue("mark")
    trades = m.queue("trade", maxsize=1)
    mark = MarkPrice("binance_usdm", "BTCUSDT", D("100"), D("100"), D("0.0001"), T0 + 8 * 3600_000, T0)
    m.on_mark(mark)
    m.on_mark(MarkPrice("binance_usdm", "BTCUSDT", D("-1"), None, None, None, T0 + 1))
    assert (await marks.get()) == (mark,) and marks.empty()
    for i in range(3):
        m.on_trade(Trade("backpack", "BTC_USDC", str(i), D("100"), D("0.1"), False, T0 + i))
    (last,) = [trades.get_nowait()]
    assert last[0].trade_id == "2"
    assert m.quarantine_counts() == {"mark:non_positive": 1, "trade:subscriber_overflow": 2}


def test_dvol_repeat_polls_are_not_quarantined():
    m = MarketDataManager()
    day = 86_400_000
    m.on_dvol("BTC", Candle(day, 50, 50, 50, 50, 0, day))
    m.on_dvol("BTC", Candle(day, 50, 50, 50, 50, 0, day))
    m.on_dvol("BTC", Candle(2 * day, 900, 900, 900, 900, 0, day))
    assert m.dvol["BTC"].open_ms == day and m.quarantine_counts() == {"dvol:jump": 1}
