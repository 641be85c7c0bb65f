"""Local order book sequencing: Binance spot / Backpack id chains and Binance USD-M ``pu`` chains."""

from decimal import Decimal as D

from ate.model.market import DepthUpdate
from ate.venues.book import LocalBook


def diff(first, last, bids=(), asks=(), pu=None) -> DepthUpdate:
    return DepthUpdate("v", "S", [(D(p), D(q)) for p, q in bids], [(D(p), D(q)) for p, q in asks],
                       first, last, pu, 0)


def snap(last_id, bids, asks) -> DepthUpdate:
    return DepthUpdate("v", "S", [(D(p), D(q)) for p, q in bids], [(D(p), D(q)) for p, q in asks],
                       last_id, last_id, None, 0, snapshot=True)


def test_spot_chain_buffer_bridge_and_gap():
    book = LocalBook("binance", "BTCUSDT")
    assert book.apply(diff(95, 99, bids=[("99", "1")]))  # before the snapshot: buffered
    assert book.apply(diff(100, 104, bids=[("100", "2")], asks=[("101", "0")]))
    book.snapshot(snap(101, bids=[("98", "1")], asks=[("101", "1"), ("102", "3")]))
    # 95-99 dropped (older than the snapshot); 100-104 bridges lastUpdateId + 1 = 102
    assert book.best() == (D("100"), D("102")) and book.last_id == 104
    assert book.apply(diff(105, 106, asks=[("101.5", "1")]))
    assert book.best() == (D("100"), D("101.5"))
    assert not book.apply(diff(108, 109))  # 107 missing: gap
    assert not book.synced and book.resyncs == 1
    assert book.apply(diff(110, 111, bids=[("100", "0")]))  # buffered until the next snapshot
    book.snapshot(snap(109, bids=[("100", "5"), ("99", "1")], asks=[("102", "1")]))
    assert book.synced and book.best() == (D("99"), D("102"))


def test_snapshot_without_bridging_event_is_refused():
    book = LocalBook("backpack", "SOL_USDC")
    book.apply(diff(120, 125))
    book.snapshot(snap(100, bids=[("1", "1")], asks=[("2", "1")]))  # event starts after 101: lost
    assert not book.synced


def test_usdm_pu_chain():
    book = LocalBook("binance_usdm", "BTCUSDT")
    book.snapshot(snap(100, bids=[("10", "1")], asks=[("11", "1")]))
    assert book.apply(diff(90, 99, pu=89))  # u < lastUpdateId: dropped
    assert book.apply(diff(95, 103, bids=[("10.5", "1")], pu=94))  # U <= 100 <= u: first applied
    assert book.apply(diff(104, 107, asks=[("11", "0"), ("12", "2")], pu=103))
    assert book.best() == (D("10.5"), D("12"))
    assert not book.apply(diff(110, 111, pu=108))  # pu must equal previous u (107)
    assert not book.synced
