"""gamma hedge controller (§5.2) and the combiner (§6)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ate.config.modules import CombinerConfig, GammaConfig
from ate.signals.base import Action, ModuleOutput, Side, Status, Veto, Vote
from ate.signals.combiner import combine, decide, exit_levels, target_notional
from ate.signals.gamma import Gamma, HedgeBook, hedge_check

H = 3_600_000
STEP = 0.001


# ---- gamma ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("spot, perp, hours, move, qty", [
    (1.000, -0.970, 0.0, 0.0, -0.030),  # outside the 2 % band
    (1.000, -0.992, 4.0, 0.0, -0.008),  # d +0.008 after 4 h: outside the 0.5 % soft band
    (1.000, -0.997, 4.0, 0.0, None),  # d +0.003 after 4 h: inside the soft band
    (1.000, -0.994, 1.0, 0.025, -0.006),  # d +0.006 after a 2.5 % move
    (1.000, -0.994, 1.0, 0.01, None),  # same d, no trigger
])
def test_gamma_acceptance(spot, perp, hours, move, qty):
    chk = hedge_check(spot, perp, 1.0, STEP, hours_since_hedge=hours, move_since_hedge=move, mark=60_000)
    if qty is None:
        assert chk.qty is None
    else:
        assert chk.qty == pytest.approx(qty, abs=1e-12)


def test_gamma_below_minimum_and_partial_hedge_target():
    chk = hedge_check(1.0, -0.97, 1.0, STEP, hours_since_hedge=0, move_since_hedge=0, mark=60_000, min_qty=0.05)
    assert chk.qty is None and chk.reason == "below_min"
    # h 0.5: target delta is half the spot
    chk = hedge_check(2.0, 0.0, 0.5, STEP, hours_since_hedge=0, move_since_hedge=0, mark=60_000)
    assert chk.target == 1.0 and chk.qty == pytest.approx(-1.0)


@settings(max_examples=300, deadline=None)
@given(spot=st.floats(0.0, 50.0), perp=st.floats(-60.0, 10.0), h=st.floats(0.05, 1.0),
       step=st.sampled_from([0.001, 0.01, 0.1, 0.00001]), hours=st.floats(0, 10), move=st.floats(-0.1, 0.1))
def test_gamma_after_instruction_delta_is_inside_band(spot, perp, h, step, hours, move):
    chk = hedge_check(spot, perp, h, step, hours_since_hedge=hours, move_since_hedge=move, mark=50_000)
    if chk.qty is None:
        return
    after = hedge_check(spot, perp + chk.qty, h, step, hours_since_hedge=0, move_since_hedge=0, mark=50_000)
    assert abs(after.deviation) <= step / 2 + 1e-9 * max(1.0, abs(spot), abs(perp))
    assert abs(after.deviation) <= after.band
    assert after.qty is None


def test_gamma_module_books_stale_and_hedge():
    g = Gamma(GammaConfig())
    assert g.evaluate(0).status is Status.OK and g.evaluate(0).actions == ()
    g.register_book("carry", HedgeBook("BTC", "binance", "BTCUSDT-PERP", 1.0, STEP))
    out = g.evaluate(0)
    assert out.status is Status.STALE and out.veto.scope == "hedged"
    g.update_book("carry", 1.0, -0.97, 60_000.0, 10 * H)
    out = g.evaluate(10 * H + 1000)
    assert out.status is Status.OK
    assert out.action == Action("HEDGE", asset="BTC", venue="binance", instrument="BTCUSDT-PERP",
                                qty=pytest.approx(-0.03))
    g.update_book("carry", 1.0, -0.97, 60_000.0, 10 * H, in_flight=True)
    assert g.evaluate(10 * H + 1000).status is Status.STALE
    g.on_hedge("carry", 10 * H + 2000, 60_000.0)
    g.update_book("carry", 1.0, -0.994, 60_000.0, 11 * H)
    assert g.evaluate(11 * H).actions == ()
    g.update_book("carry", 1.0, -0.994, 60_000.0, 14 * H + 2000)  # 4 h since the hedge
    out = g.evaluate(14 * H + 2000)
    assert out.action.qty == pytest.approx(-0.006) and out.values["carry"]["last_hedge_ms"] == 10 * H + 2000
    assert g.evaluate(14 * H + 2000 + 61_000).status is Status.STALE  # snapshot > 60 s old


# ---- combiner -------------------------------------------------------------------------------------

CFG = CombinerConfig()


def vote(module: str, side: str, conf: float, status: Status = Status.OK) -> ModuleOutput:
    return ModuleOutput(module, 0, status, Vote(Side(side), conf))


@pytest.mark.parametrize("atr, lxvx, mtf, side, conf, why", [
    (("BUY", 0.9), ("HOLD", 0.2), ("BUY", 0.8), Side.BUY, 0.87 / 0.95, ""),
    (("SELL", 0.6), ("BUY", 0.9), ("SELL", 0.5), Side.SELL, 0.57 / 0.93, ""),
    (("SELL", 0.6), ("BUY", 0.9), ("SELL", 0.3), None, 0.0, "confidence"),
    (("SELL", 0.6), ("BUY", 0.9), ("HOLD", 0.5), None, 0.0, "dominance"),
    (("HOLD", 0.0), ("HOLD", 0.0), ("HOLD", 0.0), None, 0.0, "no counted votes"),
])
def test_combine_table(atr, lxvx, mtf, side, conf, why):
    c = combine([vote("atr_supertrend", *atr), vote("lxvx", *lxvx), vote("multi_timeframe", *mtf)], CFG)
    assert c.side is side and c.confidence == pytest.approx(conf, abs=1e-12)
    assert why in c.reason
    if side is Side.BUY:
        assert c.buy == pytest.approx(0.87) and c.total == pytest.approx(0.95) and c.confidence == pytest.approx(
            0.9158, abs=5e-5)
    if side is Side.SELL:
        assert c.sell == pytest.approx(0.57) and c.confidence == pytest.approx(0.6129, abs=5e-5)


def test_stale_and_error_voters_do_not_count():
    c = combine([vote("atr_supertrend", "BUY", 0.9, Status.STALE), vote("lxvx", "HOLD", 0.2),
                 vote("multi_timeframe", "BUY", 0.8, Status.ERROR)], CFG)
    assert c.side is None and c.total == pytest.approx(0.08)


def test_size_and_exit_levels_acceptance():
    assert target_notional(10_000, 0.02, 0.75, 1.2) == pytest.approx(180.0)
    assert exit_levels(60_000, 500, Side.BUY) == (59_000, 61_500)
    assert exit_levels(60_000, 500, Side.SELL) == (61_000, 58_500)


def _outputs(**extra: ModuleOutput) -> dict[str, ModuleOutput]:
    out = {
        "kelly": ModuleOutput("kelly", 0, Status.OK, size_multiplier=0.02),
        "bitvol": ModuleOutput("bitvol", 0, Status.OK, size_multiplier=0.75),
        "garch": ModuleOutput("garch", 0, Status.OK, size_multiplier=1.2),
        "emergency": ModuleOutput("emergency", 0, Status.OK),
    }
    out.update(extra)
    return out


BUY = combine([vote("atr_supertrend", "BUY", 0.9), vote("lxvx", "HOLD", 0.2), vote("multi_timeframe", "BUY", 0.8)],
              CFG)
SELL = combine([vote("atr_supertrend", "SELL", 0.6), vote("lxvx", "BUY", 0.9), vote("multi_timeframe", "SELL", 0.5)],
               CFG)
EXTREME_BITVOL = ModuleOutput("bitvol", 0, Status.OK, size_multiplier=0.0, regime="extreme",
                              vetoes=(Veto("directional", "extreme"),))
EMERGENCY_L2 = ModuleOutput("emergency", 0, Status.OK, vetoes=(Veto("all", "level 2"),),
                            actions=(Action("REDUCE", pct=25.0, target_fraction=0.75),))
HALT = ModuleOutput("emergency", 0, Status.OK, vetoes=(Veto("all", "halted"),), actions=(Action("FLATTEN_AND_HALT"),))
FLASH_OTHER = ModuleOutput("emergency", 0, Status.OK, vetoes=(Veto("market:backpack:BTC_USDC", "flash"),))


@pytest.mark.parametrize("combined, outputs, position, kind, reason", [
    (BUY, _outputs(), 0.0, "ENTER", ""),
    (BUY, _outputs(bitvol=EXTREME_BITVOL), 0.0, "NONE", "directional"),
    (BUY, _outputs(emergency=EMERGENCY_L2), 0.0, "NONE", "all"),
    (BUY, _outputs(emergency=FLASH_OTHER), 0.0, "ENTER", ""),  # a veto on another market does not apply
    (SELL, _outputs(bitvol=EXTREME_BITVOL), 0.5, "EXIT", ""),  # vetoes block entries, never exits
    (SELL, _outputs(emergency=EMERGENCY_L2), 0.5, "EXIT", ""),
    (SELL, _outputs(), 0.0, "NONE", "long-only"),
    (BUY, _outputs(), 0.5, "NONE", "pyramiding"),
    (BUY, _outputs(emergency=HALT), 0.5, "FLATTEN", "FLATTEN_AND_HALT"),  # emergency override
    (BUY, _outputs(kelly=ModuleOutput("kelly", 0, Status.OK, size_multiplier=0.0,
                                      vetoes=(Veto("directional", "kelly 0"),))), 0.0, "NONE", "kelly"),
])
def test_decide_table(combined, outputs, position, kind, reason):
    intent = decide(combined, outputs, position, market="binance:BTCUSDT", venue="binance")
    assert intent.kind == kind and reason in intent.reason
    if kind == "ENTER":
        assert intent.side is Side.BUY and intent.size_fraction == pytest.approx(0.02 * 0.75 * 1.2)
        assert 10_000 * intent.size_fraction == pytest.approx(180.0)


def test_short_entries_need_allow_short():
    intent = decide(SELL, _outputs(), 0.0, allow_short=True)
    assert intent.kind == "ENTER" and intent.side is Side.SELL
