"""Directional strategy (§6): combiner numbers, sizing, ATR exits (stop first), time stop, vetoes, hedge."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal as D

import pytest

from ate.config.modules import CombinerConfig
from ate.config.strategies import DirectionalConfig
from ate.data.candles import Candle
from ate.model import Fill, Instrument, MarketKind, Order, OrderStatus, Purpose, Side
from ate.signals.base import ModuleOutput, Status, Veto, Vote
from ate.signals.base import Side as V
from ate.signals.combiner import combine, decide
from ate.signals.engine import Decision
from ate.strategies.base import SimpleContext
from ate.strategies.directional import DirectionalStrategy, exit_trigger

M, PERP = "binance:BTCUSDT", "binance_usdm:BTCUSDT"
HOUR = 3_600_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % HOUR
SPOT_I = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, D("0.01"), D("0.00001"), D("0.00001"),
                    D("9000"), D("0.01"), D("1000000"), D("5"))
PERP_I = Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, D("0.10"), D("0.001"), D("0.001"),
                    D("1000"), D("556.80"), D("4529764"), D("100"), grid_at_min=True)


def out(module: str, side: V | None = None, conf: float = 0.0, mult: float | None = None,
        vetoes: tuple[Veto, ...] = (), **values) -> ModuleOutput:
    return ModuleOutput(module, T0, Status.OK, Vote(side, conf) if side else None, mult, vetoes=vetoes,
                        values=values)


def decision(atr=(V.BUY, 0.9), lxvx=(V.HOLD, 0.2), mtf=(V.BUY, 0.8), kelly=0.02, bitvol=0.75, garch=1.2,
             atr_value=500.0, close=60_000.0, ts=T0, vetoes: tuple[Veto, ...] = (), market: str = M) -> Decision:
    outputs = {
        "atr_supertrend": out("atr_supertrend", *atr, atr=atr_value, vetoes=vetoes),
        "multi_timeframe": out("multi_timeframe", *mtf),
        "lxvx": out("lxvx", *lxvx),
        "bitvol": out("bitvol", mult=bitvol),
        "garch": out("garch", mult=garch),
        "kelly": out("kelly", mult=kelly, vetoes=(Veto("directional", "kelly 0"),) if kelly == 0 else ()),
    }
    combined = combine([outputs[k] for k in ("atr_supertrend", "lxvx", "multi_timeframe")], CombinerConfig())
    bar = Candle(ts - HOUR, close, close, close, close, 1.0, HOUR)
    return Decision(ts, bar, outputs, combined, decide(combined, outputs, 0.0), market)


def make_ctx(inst: Instrument = SPOT_I, market: str = M) -> SimpleContext:
    ctx = SimpleContext(now_ms=T0, equity_usd=D("10000"), instruments={market: inst, PERP: PERP_I})
    ctx.set_book(market, "59990", "60000")
    ctx.set_book(PERP, "59980", "59990")
    return ctx


def fill(s, ctx, intent, price: str, qty: D | None = None) -> None:
    o = Order(f"o{ctx.now_ms}{intent.meta['leg']}", intent.venue, intent.symbol, intent.side, intent.type, intent.qty,
              intent.price, intent.tif, intent.reduce_only, intent.strategy, meta=dict(intent.meta))
    q = intent.qty if qty is None else qty
    if q > 0:
        o.apply_fill(q, D(price), ctx.now_ms)
        s.on_order_update(o, Fill(intent.venue, intent.symbol, o.client_order_id, o.client_order_id, "v", intent.side,
                                  q, D(price), D(0), "USDT", False, ctx.now_ms, s.name), ctx)
    if o.is_open:
        o.transition(OrderStatus.EXPIRED, ctx.now_ms)
        s.on_order_update(o, None, ctx)


def candle(open_ms: int, o: float, h: float, low: float, c: float) -> Candle:
    return Candle(open_ms, o, h, low, c, 1.0)


def test_combiner_and_sizing_acceptance_a():
    d = decision()
    assert d.combined.buy == pytest.approx(0.87) and d.combined.total == pytest.approx(0.95)
    assert d.combined.side is V.BUY and d.combined.confidence == pytest.approx(0.9158, abs=5e-5)
    s = DirectionalStrategy()
    ctx = make_ctx()
    (entry,) = s.on_decision(d, ctx)
    assert entry.meta["notional"] == "180.00"  # 10,000·0.02·0.75·1.2
    assert (entry.side, entry.qty, entry.price, entry.purpose) == (Side.BUY, D("0.003"), D("60060"), Purpose.ENTRY)
    assert entry.meta["votes"]["atr_supertrend"] == {"side": "BUY", "confidence": 0.9}
    assert entry.meta["multipliers"] == {"kelly": 0.02, "bitvol": 0.75, "garch": 1.2}
    fill(s, ctx, entry, "60000")
    p = s.metrics()["position"]
    assert (p["entry"], p["stop"], p["target"]) == (60_000.0, 59_000.0, 61_500.0)
    assert p["expiry_ms"] == T0 + 72 * HOUR


def test_combiner_acceptance_b_sell_and_no_decisions():
    d = decision(atr=(V.SELL, 0.6), lxvx=(V.BUY, 0.9), mtf=(V.SELL, 0.5))
    c = d.combined
    assert c.sell == pytest.approx(0.57) and 1.2 * c.buy == pytest.approx(0.432)
    assert c.side is V.SELL and c.confidence == pytest.approx(0.6129, abs=5e-5)
    assert DirectionalStrategy().on_decision(d, make_ctx()) == ()  # spot is long-only: SELL only exits
    assert DirectionalStrategy(DirectionalConfig(market=PERP)).on_decision(d, make_ctx(PERP_I, PERP)) == ()  # BTC spot's
    d = replace(d, market=PERP)
    (short,) = DirectionalStrategy(DirectionalConfig(market=PERP)).on_decision(d, make_ctx(PERP_I, PERP))
    assert (short.side, short.qty) == (Side.SELL, D("0.003"))
    low = decision(atr=(V.SELL, 0.6), lxvx=(V.BUY, 0.9), mtf=(V.SELL, 0.3))
    assert low.combined.side is None and low.combined.sell / low.combined.total == pytest.approx(0.586, abs=5e-4)
    hold = decision(atr=(V.SELL, 0.6), lxvx=(V.BUY, 0.9), mtf=(V.HOLD, 0.5))
    assert hold.combined.side is None and hold.combined.sell == pytest.approx(0.42)
    assert DirectionalStrategy(DirectionalConfig(market=PERP)).on_decision(replace(hold, market=PERP),
                                                                          make_ctx(PERP_I, PERP)) == ()


def open_long(s: DirectionalStrategy, ctx: SimpleContext, price: str = "60000") -> None:
    (entry,) = s.on_decision(decision(), ctx)
    fill(s, ctx, entry, price)
    assert s.phase == "open"


def test_veto_blocks_entries_not_exits_acceptance_c():
    ctx = make_ctx()
    ctx.vetoes.add("directional")
    s = DirectionalStrategy()
    assert s.on_decision(decision(), ctx) == () and "veto" in s.metrics()["last_skip_reason"]
    assert DirectionalStrategy().on_decision(decision(vetoes=(Veto("directional", "extreme"),)), make_ctx()) == ()
    ctx.vetoes.clear()
    open_long(s, ctx)
    ctx.vetoes.update({"directional", "all"})
    (exit_,) = s.on_decision(decision(atr=(V.SELL, 0.9), mtf=(V.SELL, 0.8), close=60_100.0), ctx)
    assert (exit_.side, exit_.qty, exit_.purpose, exit_.price) == (Side.SELL, D("0.003"), Purpose.EXIT, D("59799.5"))
    assert exit_.meta["reason"] == "opposite decision"


def test_no_pyramiding_and_min_notional_skip():
    s = DirectionalStrategy()
    ctx = make_ctx()
    open_long(s, ctx)
    assert s.on_decision(decision(), ctx) == ()
    tiny = DirectionalStrategy()
    ctx2 = make_ctx()
    ctx2.equity_usd = D("200")  # N = 3.6 USDT < 5 USDT minimum notional
    assert tiny.on_decision(decision(), ctx2) == ()
    assert "MIN_NOTIONAL" in tiny.metrics()["last_skip_reason"]


def test_exit_trigger_rules():
    # long, stop 59,000, target 61,500
    assert exit_trigger(True, 59_000, 61_500, T0 + HOUR, candle(T0, 60_000, 61_600, 58_900, 60_000)) == ("stop", 59_000)
    assert exit_trigger(True, 59_000, 61_500, T0 + HOUR, candle(T0, 58_500, 58_800, 58_000, 58_600)) == ("stop", 58_500)
    assert exit_trigger(True, 59_000, 61_500, T0 + HOUR, candle(T0, 60_000, 61_600, 59_500, 61_000)) == ("target", 61_500)
    assert exit_trigger(True, 59_000, 61_500, T0 + HOUR, candle(T0, 61_700, 61_800, 61_600, 61_700)) == ("target", 61_700)
    assert exit_trigger(True, 59_000, 61_500, T0 + 2 * 60_000, candle(T0, 60_000, 60_100, 59_900, 60_050)) is None
    assert exit_trigger(True, 59_000, 61_500, T0 + 60_000, candle(T0, 60_000, 60_100, 59_900, 60_050)) == ("time", 60_050)
    # short, stop 61,000, target 58,500: spanning both → stop
    assert exit_trigger(False, 61_000, 58_500, T0 + HOUR, candle(T0, 60_000, 61_100, 58_400, 60_000)) == ("stop", 61_000)
    assert exit_trigger(False, 61_000, 58_500, T0 + HOUR, candle(T0, 61_500, 61_600, 61_200, 61_300)) == ("stop", 61_500)


def test_candle_exits_stop_first_then_round_trip_booked():
    s = DirectionalStrategy()
    ctx = make_ctx()
    open_long(s, ctx)
    assert s.on_candle(M, candle(T0, 60_000, 60_500, 59_500, 60_200), ctx) == ()
    (exit_,) = s.on_candle(M, candle(T0 + 60_000, 60_000, 61_600, 58_900, 60_000), ctx)
    assert (exit_.side, exit_.qty, exit_.price) == (Side.SELL, D("0.003"), D("58705"))  # 59,000 − 50 bps
    assert exit_.meta["reason"] == "stop" and exit_.meta["trigger"] == 59_000
    fill(s, ctx, exit_, "59000", qty=D("0.001"))  # partly filled: repeated on the next candle
    (again,) = s.on_candle(M, candle(T0 + 120_000, 59_000, 59_100, 58_800, 58_900), ctx)
    assert (again.qty, again.price) == (D("0.002"), D("58605.5"))
    fill(s, ctx, again, "58900")
    m = s.metrics()
    assert m["phase"] == "flat" and m["round_trips"] == 1 and m["losses"] == 1
    assert m["realised_pnl_usd"] == pytest.approx(-1.0 - 2.2)
    assert m["exits_by_reason"] == {"stop": 1}
    (trade,) = s.drain_trades()
    assert trade.entry_notional == pytest.approx(180.0) and not trade.hypothetical


def test_time_stop_72h():
    s = DirectionalStrategy()
    ctx = make_ctx()
    open_long(s, ctx)
    last = T0 + 72 * HOUR - 60_000
    assert s.on_candle(M, candle(last - 60_000, 60_000, 60_100, 59_900, 60_000), ctx) == ()
    (exit_,) = s.on_candle(M, candle(last, 60_000, 60_100, 59_900, 60_050), ctx)
    assert exit_.meta["reason"] == "time" and exit_.meta["trigger"] == 60_050


def test_hypothetical_trades_while_kelly_zero():
    s = DirectionalStrategy()
    ctx = make_ctx()
    assert s.on_decision(decision(kelly=0.0), ctx) == ()
    assert s.metrics()["hypothetical_open"]
    s.on_candle(M, candle(T0, 60_000, 61_600, 59_900, 61_000), ctx)  # target 60,030 + 1,500
    (t,) = s.drain_trades()
    entry = 60_000 * 1.0005
    exit_ = (entry + 1500) * 0.9995
    assert t.hypothetical and t.entry_notional == pytest.approx(entry)
    assert t.net_pnl == pytest.approx(exit_ - entry - (entry + exit_) * 0.001)
    assert s.metrics()["round_trips"] == 0 and s.metrics()["win_rate_pct"] is None


def test_hedge_ratio_adds_perp_short_and_closes_it():
    s = DirectionalStrategy(DirectionalConfig(hedge_ratio=1.0, hedge_market=PERP))
    ctx = make_ctx()
    (book,) = s.hedge_books(ctx).values()
    assert (book.venue, book.instrument, book.hedge_ratio) == ("binance_usdm", "BTCUSDT", 1.0)
    ctx.equity_usd = D("1000000")  # N = 18,000 USDT → 0.3 BTC
    entry, hedge = s.on_decision(decision(), ctx)
    assert (hedge.side, hedge.qty, hedge.purpose, hedge.meta["hedge_book"]) == (Side.SELL, D("0.3"), Purpose.HEDGE,
                                                                                 s.book_id)
    fill(s, ctx, entry, "60000")
    fill(s, ctx, hedge, "59980")
    snap = s.hedge_snapshot(ctx)[s.book_id]
    assert (snap.spot, snap.perp) == (0.3, -0.3)
    exit_, close_hedge = s.on_candle(M, candle(T0, 60_000, 60_100, 58_000, 58_500), ctx)
    assert (close_hedge.side, close_hedge.qty, close_hedge.reduce_only) == (Side.BUY, D("0.3"), True)
    fill(s, ctx, exit_, "59000")
    fill(s, ctx, close_hedge, "59000")
    assert s.metrics()["phase"] == "flat"
    assert s.metrics()["realised_pnl_usd"] == pytest.approx(-300 + 294)


def test_state_roundtrip():
    s = DirectionalStrategy()
    ctx = make_ctx()
    open_long(s, ctx)
    s2 = DirectionalStrategy()
    s2.restore(json.loads(json.dumps(s.state())))
    assert s2.state() == s.state()
    (exit_,) = s2.on_candle(M, candle(T0, 60_000, 61_600, 59_500, 61_000), ctx)
    assert exit_.meta["reason"] == "target"
