"""A perp whose book goes quiet keeps a trusted price from the venue's mark stream (over the simulator's
wire), and a mark the price guard does not believe never becomes one."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import data_present, world

from ate.model import OrderIntent, Purpose, Side
from ate.model.market import MarkPrice
from ate.risk.verdict import Reason

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(60)]

PERP = "binance_usdm:BTCUSDT"


async def test_a_perp_with_a_quiet_book_is_priced_by_its_mark_stream(tmp_path, monkeypatch):
    async with world(tmp_path, monkeypatch, mode="shadow") as (sim, engine, drive, _):
        core = engine.core
        on_book = core.on_book
        dropped = []

        def quiet_perp(book):  # the perp's book says nothing more; its mark stream goes on
            if f"{book.venue}:{book.symbol}" == PERP:
                dropped.append(book)
                return
            on_book(book)

        monkeypatch.setattr(core, "on_book", quiet_perp)
        max_age = core.risk.limits.trusted_max_age_ms
        for _ in range(4):
            await drive.step(max_age)
        now = engine.clock.now_ms()
        assert dropped, "the perp's book kept moving in the replay"
        price, ts = core.risk._marks[PERP]
        assert now - ts <= max_age, "no trusted price for a perp whose mark stream is live"
        venue_mark = sim.core.markets["binance-usdm", "BTCUSDT"].mark
        assert price == engine.data.mark("binance_usdm", "BTCUSDT").mark
        assert abs(price - Decimal(str(venue_mark))) / price < Decimal("0.001")
        inst = core.portfolio.instruments[PERP]
        intent = OrderIntent("binance_usdm", "BTCUSDT", Side.BUY, Decimal("0.002"), price, "arbitrage",
                             Purpose.UNWIND)
        assert core.risk.check(intent, inst).reason is not Reason.NO_TRUSTED_PRICE

        # a mark 50 % off the anchor passes the stateless checks (under 10x) but not the price guard
        last = engine.data.mark("binance_usdm", "BTCUSDT")
        engine.data.on_mark(MarkPrice(last.venue, last.symbol, price * Decimal("1.5"), last.index,
                                      last.funding_rate, last.next_funding_ms, now))
        assert core.risk._marks[PERP][0] == price
        assert core.portfolio.position(PERP).mark_price == price
