"""Funding settled while the engine was down, over the simulator's wire: at the next start it is read from
the venue's income history and booked as funding (the carry's P&L) at the venue's amount — never as a
transfer with a deposit/withdrawal alert — once across further restarts, and never twice with the live
path, which books a settlement under the same ref."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_support import ACCOUNT, PERP_2025, SPOT_2025, ReplayClock, data_present, settle, sim_config, world
from test_engine_resume import SECTIONS, engine_wallet, start, stop, venue_wallet

from ate.model import OrderIntent, OrderType, Purpose, Side, TimeInForce

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]

D = Decimal
START_2025 = 1748822400000  # 2025-06-02 00:00 UTC; the perp settles funding at 08:00 and 16:00
SETTLE_1, SETTLE_2 = 1748851200000, 1748880000000
PERP = "binance_usdm:BTCUSDT"


def funding(store) -> list[dict]:
    return [e for e in store.ledger(kind="funding") if e["venue"] == "binance_usdm"]


async def advance_past(drive, ts_ms: int) -> None:
    drive.sim.advance_to(ts_ms + 60_000)  # the replay itself: the clock may run ahead of it while stopped
    await drive.step(1_000)


async def test_funding_settled_while_down_is_funding_once(tmp_path, monkeypatch):
    cfg = sim_config(start_ms=START_2025, spot_data=SPOT_2025, perp_data=PERP_2025, backpack_data=PERP_2025)
    async with world(tmp_path, monkeypatch, mode="canary", sim_cfg=cfg, engine_sections=SECTIONS,
                     start_engine=False) as (sim, _, drive, raw):
        clock: ReplayClock = drive.clock
        a = await start(raw, clock, drive)
        await drive.run(60_000, 15_000)
        bid = a.core.books[PERP].bid
        with a.core.unit():  # the carry's perp leg: a short that receives a positive rate
            order = a.core.orders.submit(OrderIntent("binance_usdm", "BTCUSDT", Side.SELL, D("0.002"),
                                                     (bid * D("0.998")).quantize(D("0.1")), "funding_carry",
                                                     Purpose.ENTRY, OrderType.LIMIT, TimeInForce.IOC))
        assert order is not None
        assert await settle(lambda: a.core.portfolio.position(PERP).qty == D("-0.002"), rounds=2000)
        await stop(a, clock, drive)

        await advance_past(drive, SETTLE_1)  # the engine is down across the 08:00 settlement
        (paid,) = sim.core.funding_for(ACCOUNT, "binance-usdm", "BTCUSDT")
        assert paid.ts_ms == SETTLE_1 and paid.amount > 0

        b = await start(raw, clock, drive)
        (entry,) = funding(b.store)
        assert (entry["amount"], entry["asset"], entry["ts_ms"]) == (paid.amount, "USDT", SETTLE_1)
        assert entry["ref"] == f"funding:BTCUSDT:{SETTLE_1}"
        assert not b.store.events(kind="external_transfer")  # no deposit claimed
        assert [e for e in b.store.ledger(kind="transfer") if e["venue"] == "binance_usdm"][1:] == []
        assert engine_wallet(b, "binance_usdm") == venue_wallet(sim, "binance-usdm")
        assert b.core.portfolio.position(PERP).funding == paid.amount

        # up across the 16:00 settlement: the live path books it from the mark stream
        for _ in range(12):
            await drive.step(3_600_000)
            if len(funding(b.store)) == 2:
                break
        first, live = funding(b.store)[:2]
        assert first == entry and live["ref"] == f"funding:BTCUSDT:{SETTLE_2}"
        await stop(b, clock, drive)

        c = await start(raw, clock, drive)  # the venue's history holds both: neither is booked again
        venue_paid = sim.core.funding_for(ACCOUNT, "binance-usdm", "BTCUSDT")
        assert [p.ts_ms for p in venue_paid] == [SETTLE_1, SETTLE_2]
        booked = funding(c.store)
        assert booked[:2] == [first, live]
        # the live path computed its payment from the mark stream; what the venue paid differs in the last
        # digits and the rest is a funding correction, not a deposit
        assert [e["ref"] for e in booked[2:]] in ([], [f"funding:BTCUSDT:{SETTLE_2}:correction"])
        assert sum(e["amount"] for e in booked) == sum(p.amount for p in venue_paid)
        assert not c.store.events(kind="external_transfer")
        assert engine_wallet(c, "binance_usdm") == venue_wallet(sim, "binance-usdm")
        await stop(c, clock, drive)

        d = await start(raw, clock, drive)  # and a further restart books nothing
        assert funding(d.store) == booked
        assert not d.store.events(kind="external_transfer")
        await stop(d, clock, drive)
