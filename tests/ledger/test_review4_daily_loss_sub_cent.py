"""Review 4 (issue 16): the daily loss reaches the risk layer, the tracker and the emergency module at the very
tick it moves, however small the move. p2-core passes equity on only when it changed "to the digit"; a bleed
of half-cent steps must still breach the daily limit at the exact tick its sum reaches it (never one sample
late), and a flat equity between the steps must change nothing."""

from __future__ import annotations

import copy
from decimal import Decimal

from ledger_support import BP, CFG, PERP, SPOT, Clock, ScriptVenue, book

from ate.config import parse_config
from ate.store import Store
from ate.trading.core import TradingCore

D = Decimal


def _core(tmp_path):
    cfg = copy.deepcopy(CFG)
    cfg["risk_limits"] = {**cfg["risk_limits"], "capital_usd": 100_000, "max_daily_loss_pct": 0.001}  # 100 USD
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'ate.db'}")
    core = TradingCore(parse_config(cfg, env={}), instruments=(SPOT, PERP, BP), strategies=[], clock=clock,
                       state=store, store=store)
    core.attach(ScriptVenue())
    core.book_transfer("binance", "BTC", D("1"), clock.now, "open:BTC", "opening", opening=True)
    return core, clock, store


def _marks(core, clock, mid: Decimal) -> None:
    for inst in (SPOT, PERP, BP):  # a 0.01 spread: the mid moves in steps of 0.005
        core.on_book(book(inst, str(mid - D("0.005")), str(mid + D("0.005")), clock.now))


def test_half_cent_steps_breach_the_daily_limit_at_the_exact_tick(tmp_path):
    core, clock, store = _core(tmp_path)
    try:
        start = D("70000.000")
        _marks(core, clock, start)
        core.on_timer()
        assert core.daily.limit == D("100") and core.daily.e_day0 == start
        _marks(core, clock, start - D("99.985"))  # 0.015 USD short of the limit
        for step in range(1, 7):
            clock.now += 1_000
            core.on_timer()  # the same equity again: nothing moves, nothing breaches
            before = D("99.985") + D("0.005") * (step - 1)
            assert core.daily.loss == before and (core.daily.breached_day is None) == (before < 100)
            assert core.risk.daily_loss == before
            _marks(core, clock, start - D("99.985") - D("0.005") * step)
            clock.now += 1_000
            core.on_timer()
            loss = D("99.985") + D("0.005") * step
            assert core.daily.loss == loss
            if loss < 100:
                assert core.daily.breached_day is None and core.risk.daily_loss == loss, step
            else:  # the tick whose half cent reaches the limit records the breach and blocks entries
                assert core.daily.breached_day == clock.now - clock.now % 86_400_000, step
                assert core.risk.daily_loss == loss, step
        breaches = [e for e in store.events() if e.kind == "risk_breach"]
        assert len(breaches) == 1 and "daily loss 100.000 reached limit 100" in breaches[0].message
        emergency = core.signals.emergency
        assert emergency.equity == float(start - D("100.015")) and emergency.e_day0 == float(start)
    finally:
        store.close()
