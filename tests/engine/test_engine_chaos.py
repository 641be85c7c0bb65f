"""The short version of bench/chaos.py: a canary engine SIGKILLed at random instants (start-up and
reconciliation included) while a withdrawal, a deposit, a manual perp trade and its liquidation happen at
the venues; afterwards the store agrees with what the venues report through their own APIs on every order,
fill, fee, balance and position, `ate close-all`'s dry-run plan equals the venues' holdings, and the only
transfers booked besides the opening balance are the injected ones. ATE_CHAOS_KILLS=100 runs
the full version."""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from engine_support import data_present

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from chaos import chaos  # noqa: E402

KILLS = int(os.environ.get("ATE_CHAOS_KILLS", "6"))
pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120 + 10 * KILLS)]


async def test_kills_at_random_instants_leave_the_store_equal_to_the_venues(tmp_path):
    out = await chaos(tmp_path, KILLS, 4.0)
    zero = ("duplicate orders at the venue", "venue fills missing from the store", "fills booked twice",
            "fills without a fee entry", "orders stuck non-terminal", "store orders the venue never saw",
            "unexplained transfers (beyond the injected ones)")
    assert {k: out[k] for k in zero} == dict.fromkeys(zero, 0), out
    assert out["balance differences"] == {} and out["perp position differences"] == {}, out
    assert out["close-all plan vs venue holdings"] == {}, out
    by_strategy = out["fills per strategy (store)"]
    assert all(by_strategy.get(s, 0) > 0 for s in ("arbitrage", "funding_carry", "directional")), out
    # the injected transfers; a fee's 1e-8 wire rounding may ride along with one found by reconciliation
    transfers = sorted(t.split() for t in out["transfers booked after the opening balance"])
    assert [k for k, _ in transfers] == ["binance:USDT", "binance_usdm:USDT"], out
    wanted = (Decimal("-100"), Decimal("250"))
    assert all(abs(Decimal(a) - w) <= Decimal("1e-6") for (_, a), w in zip(transfers, wanted, strict=True)), out
    assert out["external fills"] == 2, out  # the manual perp trade and its liquidation, each once
    # the clearance fee the venue took beside the liquidation's trade: a liquidation loss, not a transfer
    assert [c.split()[0] for c in out["liquidation costs booked"]] == ["binance_usdm:USDT"], out
