"""The dashboard tells the truth (issue 14 item 6), each item in real headless Chromium over the real API:
the mode badge comes from the engine, numbers carry the instrument's precision, the charts (lightweight-charts)
have axes, units and trades at their fill price, module tiles say vote, confidence, reason and vetoes, one
labelled clock stamps everything, the read-only `ate dashboard` has no controls, and today's P&L is split into
the strategies' P&L and the revaluation of inventory."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from monitor_harness import (
    NOW_MS,
    PLANTED_SECRET,
    TOKEN,
    EngineStandIn,
    fill_recorder,
    monitor_config,
    record_history,
)
from test_monitor_browser import CHROMIUM, open_page, text

from ate.config.modules import CombinerConfig
from ate.model import Fill, Instrument, MarketKind, Mode
from ate.model import Side as OrderSide
from ate.monitor.figures import daily_pnl_usd
from ate.monitor.recorder import MetricsRecorder
from ate.monitor.server import start_monitor
from ate.monitor.view import StoreView
from ate.signals.base import ModuleOutput, Side, Status, Veto, Vote
from ate.signals.combiner import combine, decide
from ate.store import Store
from ate.store.db import MARKS_KEY

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed "
                                "(apt-get install -y chromium)")

ATE = Path(sys.executable).with_name("ate")
INSTRUMENTS = {
    "binance:BTCUSDT": Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, Decimal("0.01"),
                                  Decimal("0.00001")),
    "binance_usdm:BTCUSDT": Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", MarketKind.PERP, Decimal("0.1"),
                                       Decimal("0.001")),
}
CANDLES = 30


def add_candles(rec: MetricsRecorder, market: str) -> None:
    for i in range(CANDLES):  # 1m candles of the last half hour, the last one holding the fills
        o = 59_000 + 50 * i
        rec.candle(market, NOW_MS - (CANDLES - i) * 60_000, o, o + 80, o - 40, o + 30)


@pytest.fixture
async def serve(store, clock, tmp_path):
    """serve(mode, clock_kind) → (url, recorder): the running engine's view as the engine builds it."""
    handles = []

    async def start(mode: Mode = Mode.CANARY, clock_kind: str = "simulated", candles: bool = True):
        rec = MetricsRecorder(clock)
        fill_recorder(rec, clock)
        if candles:
            add_candles(rec, "binance:BTCUSDT")
        engine = EngineStandIn(store, rec, clock, tmp_path)
        view = StoreView(store, recorder=rec, controls=engine.controls, mode=mode, clock=clock,
                         clock_kind=clock_kind, instruments=INSTRUMENTS)
        handle = await start_monitor(view, monitor_config(), env={"ATE_TEST_MONITOR_TOKEN": TOKEN,
                                                                  "BINANCE_API_SECRET": PLANTED_SECRET})
        handles.append(handle)
        return handle.url, rec

    yield start
    for h in handles:
        await h.stop()


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright
    from test_monitor_browser import ARGS

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        await b.close()


async def loaded(browser, url: str):
    page = await open_page(browser, bypass_csp=True)
    await page.goto(url + "/")
    await page.wait_for_function("document.getElementById('positions').rows.length > 1")
    return page


async def cells(page, selector: str) -> list[str]:
    return [c.strip() for c in await page.locator(selector).all_text_contents()]


@pytest.mark.parametrize("mode", [Mode.SHADOW, Mode.CANARY])
async def test_mode_badge_is_the_engines_mode(serve, browser, mode):
    url, _ = await serve(mode)
    page = await open_page(browser, bypass_csp=True)
    await page.goto(url + "/")
    await page.locator("#mode", has_text=mode.value.upper()).wait_for()
    assert "mode-" + mode.value in await page.locator("#mode").get_attribute("class")
    assert await text(page, "#mode-note") == ""  # an engine is attached: the mode is its own
    # The stream's connection state no longer reads as a mode: no "live" anywhere in a shadow header.
    assert await text(page, "#conn") == "stream connected"
    header = (await text(page, "header")).lower()
    assert ("live" in header) is (mode is Mode.LIVE)
    assert page.external == []


async def test_numbers_are_rounded_to_the_instruments_precision(serve, browser, store):
    # An average entry and a gain with many digits, as the ledger holds them exactly. Positions are replayed
    # from fills: an hour ago the recorded 0.47 BTC was sold and 0.00125 bought at 61000.1234; with today's
    # 3 × 0.01 at 59002 that is 0.03125 at 59081.924936.
    store.add_fill(Fill("binance", "BTCUSDT", "p-0", "c-0", "v-0", OrderSide.SELL, Decimal("0.47"), Decimal("60000"),
                        Decimal(0), "USDT", False, NOW_MS - 3_600_000, "directional"))
    store.add_fill(Fill("binance", "BTCUSDT", "p-1", "c-1", "v-1", OrderSide.BUY, Decimal("0.00125"),
                        Decimal("61000.1234"), Decimal(0), "USDT", False, NOW_MS - 3_500_000, "directional"))
    store.set_state(MARKS_KEY, {"binance:BTCUSDT": "60507.55", "binance_usdm:BTCUSDT": "61010"}, NOW_MS)
    assert store.positions()[0].unrealized_pnl == Decimal("44.55078325")
    url, _ = await serve()
    page = await loaded(browser, url)
    rows = page.locator("#positions tr")
    spot = [c.strip() for c in await rows.nth(1).locator("td").all_text_contents()]
    perp = [c.strip() for c in await rows.nth(2).locator("td").all_text_contents()]
    # venue, symbol, qty (step 0.00001), entry and mark (tick 0.01), notional and uPnL (cents)
    assert spot == ["binance", "BTCUSDT", "0.03125", "59,081.92", "60,507.55", "1,890.86", "44.55"]
    # perp: step 0.001, tick 0.1
    assert perp == ["binance_usdm", "BTCUSDT", "-0.500", "60,100.0", "61,010.0", "30,505.00", "-455.00"]
    orders = page.locator("#orders tr")
    assert [c.strip() for c in await orders.nth(1).locator("td").all_text_contents()][4:6] == ["0.01000", "59,001.00"]
    trades = page.locator("#trades tr")
    assert [c.strip() for c in await trades.nth(1).locator("td").all_text_contents()][4:7] == [
        "0.01000", "59,002.00", "0.059 USDT"]
    # Nothing on the page shows the raw exact values.
    body = await text(page, "body")
    assert "44.55078325" not in body and "59081.924936" not in body
    assert not re.search(r"\d\.\d{9,}", body)


async def test_charts_have_axes_units_and_trades_on_price(serve, browser, store):
    url, _ = await serve()
    page = await loaded(browser, url)
    await page.wait_for_function("window.ateCharts.price && window.ateCharts.price.markers")
    chart = await page.evaluate("""() => {
        const c = window.ateCharts;
        const price = c.price.series, eq = c.equity.series, pnl = c.pnl.series;
        return {
            market: document.getElementById('price-market').value,
            title: document.getElementById('price-title').textContent,
            candles: price.data().length, first: price.data()[0], type: price.seriesType(),
            markers: c.price.markers.markers().map((m) => [m.time, m.price, m.position, m.text]),
            axes: Object.fromEntries(Object.entries(c).map(([k, v]) => [k,
                [v.chart.priceScale('right').width(), v.chart.timeScale().width(), v.chart.options().timeScale.visible,
                 v.chart.options().rightPriceScale.visible]])),
            units: [price.options().title, eq.options().title, pnl.options().title],
            priceLabel: price.priceFormatter().format(59002.126),
            usdLabel: eq.priceFormatter().format(-0.615),
            equityPoints: eq.data().length, pnlBars: pnl.data().length, pnlType: pnl.seriesType(),
            canvases: document.querySelectorAll('#price-chart canvas').length,
        };
    }""")
    assert chart["market"] == "binance:BTCUSDT"
    assert chart["title"] == "Price: binance:BTCUSDT (USDT)"
    assert (chart["type"], chart["candles"]) == ("Candlestick", CANDLES)
    assert chart["first"] == {"time": (NOW_MS - CANDLES * 60_000) // 1000, "open": 59_000, "high": 59_080,
                              "low": 58_960, "close": 59_030}
    # Each of the three fills sits on the candle that holds it, at its own fill price.
    last_bar = (NOW_MS - 60_000) // 1000
    assert chart["markers"] == [[last_bar, 59002, "atPriceMiddle", "B 0.01000 @ 59,002.00"]] * 3
    for name, (price_axis, time_axis, time_visible, price_visible) in chart["axes"].items():
        assert price_axis > 20 and time_axis > 100 and time_visible and price_visible, name
    assert chart["canvases"] > 2  # pane and both axes are drawn
    assert chart["units"] == ["USDT", "USD", "USD"]
    assert (chart["priceLabel"], chart["usdLabel"]) == ("59,002.13", "-0.62")
    assert chart["pnlType"] == "Histogram" and chart["pnlBars"] == 30
    assert chart["equityPoints"] > 100
    assert await text(page, "footer a") == "TradingView Lightweight Charts™"
    assert page.external == []


async def test_price_chart_turns_from_fills_to_candles_and_follows_the_chosen_market(serve, browser, store):
    store.add_fill(Fill("binance_usdm", "BTCUSDT", "p1", "ate-carry-1", "vp1", OrderSide.SELL, Decimal("0.5"),
                        Decimal("60100.1"), Decimal("0"), "USDT", False, NOW_MS - 600_000, "funding_carry"))
    url, rec = await serve(candles=False)
    page = await loaded(browser, url)
    chart = "window.ateCharts.price"
    await page.wait_for_function(f"{chart} && {chart}.markers")
    # No candles yet: the newest trade's market, drawn through its fill prices.
    assert await page.locator("#price-market").input_value() == "binance:BTCUSDT"
    assert await page.evaluate(f"{chart}.series.seriesType()") == "Line"
    assert await text(page, "#price-note") == "no market data (no engine attached): the line joins the fill prices"
    add_candles(rec, "binance:BTCUSDT")
    await page.wait_for_function(f"{chart}.series.seriesType() === 'Candlestick'")
    assert await page.evaluate(f"{chart}.series.data().length") == CANDLES
    assert await page.evaluate(f"{chart}.markers.markers().length") == 3
    # The operator picks the perp: its one sell, at its own price and precision (tick 0.1).
    await page.select_option("#price-market", "binance_usdm:BTCUSDT")
    await page.locator("#price-title", has_text="binance_usdm:BTCUSDT").wait_for()
    markers = await page.evaluate(f"{chart}.markers.markers().map((m) => [m.price, m.shape, m.text])")
    assert markers == [[60100.1, "arrowDown", "S 0.500 @ 60,100.1"]]
    assert await page.evaluate(f"{chart}.series.seriesType()") == "Line"
    assert page.external == []


async def test_module_tiles_say_vote_confidence_reason_and_vetoes(serve, browser):
    url, rec = await serve()
    outputs = {
        "atr_supertrend": ModuleOutput("atr_supertrend", NOW_MS, Status.OK, Vote(Side.BUY, 0.8), regime="up",
                                       vetoes=(Veto("directional", "ATR percentile 99.3 is extreme"),),
                                       reason="supertrend flipped up"),
        "lxvx": ModuleOutput("lxvx", NOW_MS, Status.OK, Vote(Side.BUY, 0.55), reason="contango widening"),
        "multi_timeframe": ModuleOutput("multi_timeframe", NOW_MS, Status.WARMUP, Vote(Side.HOLD, 0.0),
                                        reason="1d history 12 of 30 bars"),
        "kelly": ModuleOutput("kelly", NOW_MS, Status.OK, None, 0.25),
        "gamma": ModuleOutput("gamma", NOW_MS, Status.OK, None, vetoes=(Veto("hedged", "book a: delta drift"),)),
    }
    for name, out in outputs.items():
        rec.module(name, out.status.value, out.to_dict())
    # The decision the directional strategy takes on these outputs, computed by the real combiner.
    combined = combine(outputs.values(), CombinerConfig())
    intent = decide(combined, outputs, 0.0, market="binance:BTCUSDT", venue="binance")
    assert intent.kind == "NONE" and intent.reason.startswith("vetoed: directional")
    rec.strategy_metrics({"directional": {"phase": "flat", "wins": 0, "losses": 0, "last_skip_reason": None,
                                          "last_decision": {"ts": NOW_MS, "kind": intent.kind,
                                                            "side": combined.side.value,
                                                            "confidence": combined.confidence,
                                                            "reason": intent.reason}}})
    page = await open_page(browser, bypass_csp=True)
    await page.goto(url + "/")
    atr = page.locator("[data-module=atr_supertrend]")
    await atr.locator(".vote", has_text="vote BUY").wait_for()
    assert await text(page, "[data-module=atr_supertrend] .vote") == "vote BUY · confidence 0.80"
    assert await text(page, "[data-module=atr_supertrend] .reason") == "supertrend flipped up"
    assert await cells(page, "[data-module=atr_supertrend] .vetoes li") == [
        "veto directional: ATR percentile 99.3 is extreme"]
    assert await text(page, "[data-module=lxvx] .vote") == "vote BUY · confidence 0.55"
    assert await text(page, "[data-module=multi_timeframe] .status") == "WARMUP"
    assert await text(page, "[data-module=multi_timeframe] .reason") == "1d history 12 of 30 bars"
    assert await text(page, "[data-module=kelly] .vote") == "no vote"
    assert await text(page, "[data-module=kelly] .mult") == "size ×0.25"
    assert await cells(page, "[data-module=gamma] .vetoes li") == ["veto hedged: book a: delta drift"]
    # Why directional does not trade: the entry veto (the gamma one only blocks hedged books) and the decision.
    assert await text(page, "#directional-vetoes") == (
        "blocked by atr_supertrend veto directional: ATR percentile 99.3 is extreme")
    decision = await text(page, "#directional-decision")
    conf = f"{combined.confidence:.2f}"
    assert decision == (f"phase flat · last decision NONE BUY (confidence {conf}, 2026-03-10 12:00:00 UTC): "
                        "vetoed: directional (ATR percentile 99.3 is extreme)")

    # The veto lifts and the emergency module vetoes everything: the page follows without reload.
    rec.module("atr_supertrend", "OK", ModuleOutput("atr_supertrend", NOW_MS, Status.OK, Vote(Side.BUY, 0.8)).to_dict())
    rec.module("emergency", "OK", ModuleOutput("emergency", NOW_MS, Status.OK, None, None, "level3",
                                               (Veto("all", "emergency level 3"),)).to_dict())
    await page.locator("#directional-vetoes", has_text="emergency").wait_for()
    assert await text(page, "#directional-vetoes") == "blocked by emergency veto all: emergency level 3"
    assert await page.locator("[data-module=atr_supertrend] .vetoes li").count() == 0


async def test_one_labelled_clock_stamps_everything(serve, browser, clock, store):
    url, _ = await serve(clock_kind="simulated")
    page = await loaded(browser, url)
    assert await text(page, "#clock") == "simulated clock · 2026-03-10 12:00:00 UTC"
    assert await page.locator("#clock").get_attribute("data-kind") == "simulated"
    headers = await cells(page, "#events th")
    assert headers[0] == "time (UTC, simulated clock)"
    assert (await cells(page, "#trades th"))[0] == "time (UTC, simulated clock)"
    assert (await cells(page, "#events td"))[0] == "2026-03-10 11:59:56"  # the newest event: module_status

    # The simulated clock moves on; the page's one clock follows it, and an operator action recorded through
    # the API is stamped by the same clock (not the wall clock of the machine).
    clock.advance(90 * 60_000)
    await page.locator("#clock", has_text="13:30:00").wait_for()
    async with aiohttp.ClientSession() as s, s.post(url + "/api/kill", json={"reason": "clock test"},
                                                   headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200
    audit = store.events(kind="audit")
    assert [e.ts_ms for e in audit] == [NOW_MS + 90 * 60_000]
    await page.locator("#events td", has_text="kill done").wait_for()
    assert (await cells(page, "#events td"))[0] == "2026-03-10 13:30:00"


async def test_wall_clock_is_labelled_as_such(serve, browser):
    url, _ = await serve(clock_kind="wall")
    page = await loaded(browser, url)
    assert await text(page, "#clock") == "wall clock · 2026-03-10 12:00:00 UTC"
    assert (await cells(page, "#events th"))[0] == "time (UTC, wall clock)"


async def test_daily_pnl_is_split_into_strategy_pnl_and_inventory_revaluation(serve, browser, store):
    url, _ = await serve()
    page = await loaded(browser, url)
    await page.locator("[data-metric=revaluation]").wait_for()
    total = Decimal(str(daily_pnl_usd(store.equity_series(), NOW_MS)))
    # Today's fills: three buys of 0.01 at 59,002 marked at 61,000, less 0.059 USDT fee each; funding 12.5
    # received by the carry at 04:00 (the 20:00 payment of yesterday is not today's).
    directional = 3 * Decimal("0.01") * (61000 - 59002) - 3 * Decimal("0.059")
    assert directional == Decimal("59.763")
    strategy = directional + Decimal("12.5")
    values = {await c.get_attribute("data-metric"): (await c.text_content()).strip()
              for c in await page.locator("#pnl-split td").all()}
    cents = lambda d: f"{d.quantize(Decimal('0.01')):,}"  # noqa: E731
    assert values == {"daily-pnl": cents(total), "strategy-pnl": "72.26", "strategy-pnl-directional": "59.76",
                      "strategy-pnl-funding_carry": "12.50", "revaluation": cents(total - strategy)}
    labels = await cells(page, "#pnl-split th")
    assert labels[1] == "strategy P&L (today's fills marked to market, fees, funding)"
    assert labels[-1] == "inventory revaluation (pre-funded inventory and holdings carried into the day)"
    assert await text(page, "#pnl-window") == ("from 2026-03-10 00:00:00 to 2026-03-10 12:00:00 UTC "
                                               "(simulated clock)")


def test_read_only_ate_dashboard_shows_no_controls(tmp_path):
    """The real `ate dashboard` process over a paper config's store: mode from the config, said so, and not a
    single control on the page."""
    store = Store(f"sqlite:///{tmp_path}/ate.db")
    # read-only means the wall clock: data of today; a paper run's records are its hypothetical book
    record_history(store, now_ms=int(time.time() * 1000), shadow=True)
    store.close()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"mode": "paper", "store": {"url": f"sqlite:///{tmp_path}/ate.db"},
                               "monitor": {"port": 0}}))
    # PYTHONPATH passed on: the process runs the code under test, not another installed copy.
    proc = subprocess.Popen([str(ATE), "dashboard", "--config", str(cfg)], stderr=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    try:
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", proc.stderr.readline()).group(1)
        asyncio.run(_read_only_page(url))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _read_only_page(url: str) -> None:
    from playwright.async_api import async_playwright
    from test_monitor_browser import ARGS

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await open_page(b, bypass_csp=True)
        await page.goto(url + "/")
        await page.wait_for_function("document.getElementById('positions').rows.length > 1")
        assert await text(page, "#mode") == "PAPER"
        assert await text(page, "#mode-note") == "read-only view of the store (no engine attached; mode from the config)"
        assert (await text(page, "#clock")).startswith("wall clock · ")
        assert await text(page, "#source") == "store"
        for control in ("#kill-btn", "#resume-btn", "#close-all-btn", "#token", "#controls"):
            assert await page.locator(control).count() == 0, control
        assert await page.locator("button").count() == 0
        # No market data without an engine: the price chart joins the stored fills and marks them.
        await page.wait_for_function("window.ateCharts.price && window.ateCharts.price.markers")
        assert await text(page, "#price-note") == "no market data (no engine attached): the line joins the fill prices"
        assert await page.evaluate("window.ateCharts.price.markers.markers().length") == 3
        assert page.external == []
        await b.close()
