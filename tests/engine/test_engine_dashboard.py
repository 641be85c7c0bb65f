"""The operator dashboard of a real engine running on the simulator, in headless Chromium (Playwright):
the eight module tiles, figures that move with the engine without a reload, and the kill button — refused
without the token, and with it the engine halts and the venues' open orders are gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from engine_support import ACCOUNT, data_present, world

from ate.model import OrderType, Side, TimeInForce

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MODULES = ["bitvol", "lxvx", "garch", "kelly", "gamma", "emergency", "atr_supertrend", "multi_timeframe"]
TOKEN = "dashboard-e2e-token"

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
              pytest.mark.timeout(120)]


def open_orders(sim) -> list:
    return [o for (venue, symbol) in sim.core.markets for o in sim.core.open_orders(ACCOUNT, venue, symbol)]


async def metrics(url: str) -> dict:
    async with aiohttp.ClientSession() as s, s.get(url + "/api/metrics") as r:
        return await r.json()


async def test_dashboard_of_a_running_engine_and_its_kill_button(tmp_path, monkeypatch):
    from playwright.async_api import async_playwright

    monkeypatch.setenv("ATE_MONITOR_TOKEN", TOKEN)
    sections = {"monitor": {"enabled": True, "port": 0, "stream_interval_s": 0.2}}
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=sections) as (sim, engine, drive, _):
        # Resting orders on both venues, far from the market, as an operator might have left them.
        sim.core.place_order(ACCOUNT, "binance-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.001"),
                             Decimal("30000"), tif=TimeInForce.GTC, client_order_id="resting-bn")
        sim.core.place_order(ACCOUNT, "backpack", "BTC_USDC", Side.BUY, OrderType.LIMIT, Decimal("0.001"),
                             Decimal("30000"), tif=TimeInForce.GTC, client_order_id="4242")
        assert len(open_orders(sim)) == 2
        url = engine.monitor.url
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await (await browser.new_context(bypass_csp=True)).new_page()
            loads = []
            page.on("framenavigated", lambda frame: loads.append(frame.url))
            await page.goto(url + "/")
            await page.wait_for_function("document.getElementById('conn').textContent === 'stream connected'")
            tiles = page.locator("#modules .tile")
            assert [await t.get_attribute("data-module") for t in await tiles.all()] == MODULES
            # The engine's own mode and clock: canary, on the simulator's clock.
            await page.locator("#mode", has_text="CANARY").wait_for()
            assert (await page.locator("#clock").text_content()).startswith("simulated clock · ")
            before = await page.locator("#uptime").text_content()
            await drive.run(5 * 60_000, 15_000)  # the engine's clock moves five minutes
            await page.wait_for_function(f"document.getElementById('uptime').textContent !== {before!r}")
            # The engine's closed 1m candles reach the price chart, with the venue's quote as its unit.
            await page.wait_for_function("window.ateCharts.price && window.ateCharts.price.series"
                                         " && window.ateCharts.price.series.data().length >= 5")
            assert (await page.locator("#price-title").text_content()).endswith("(USDT)") or \
                (await page.locator("#price-title").text_content()).endswith("(USDC)")
            assert (await metrics(url))["system_health"]["websocket"], "streams are reported"

            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.accept())))
            await page.click("#kill-btn")  # no token
            await page.wait_for_function("document.getElementById('control-msg').dataset.status === '401'")
            assert (await metrics(url))["system_health"]["trading_state"]["state"] == "ACTIVE"
            assert len(open_orders(sim)) == 2

            await page.fill("#token", TOKEN)
            await page.click("#kill-btn")
            await page.wait_for_function("document.getElementById('control-msg').dataset.status === '200'")
            await page.wait_for_function("document.getElementById('trading-state').textContent === 'HALTED'")
            assert (await metrics(url))["system_health"]["trading_state"]["state"] == "HALTED"
            assert engine.core.trading_state.value == "HALTED"
            for _ in range(200):  # cancels travel over the venues' REST APIs
                if not open_orders(sim):
                    break
                await drive.step(1_000)
            assert open_orders(sim) == []
            assert dialogs == ["Halt all trading now?", "Halt all trading now?"]
            assert loads == [url + "/"]  # one page load, updated live
            await browser.close()


async def test_shadow_engine_dashboard_says_shadow_and_separates_inventory_revaluation(tmp_path, monkeypatch):
    """Shadow on the simulator: the badge says SHADOW (nothing says live), the one clock is the simulator's,
    the tiles carry the modules' own votes and reasons, and the day's P&L of a shadow engine, which trades
    nothing, is all revaluation of the pre-funded inventory."""
    from playwright.async_api import async_playwright

    sections = {"monitor": {"enabled": True, "port": 0, "stream_interval_s": 0.2}}
    async with world(tmp_path, monkeypatch, mode="shadow", engine_sections=sections) as (sim, engine, drive, _):
        await drive.run(10 * 60_000, 15_000)
        url = engine.monitor.url
        async with aiohttp.ClientSession() as s, s.get(url + "/api/dashboard") as r:
            frame = await r.json()
        now = engine.clock.now_ms()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await (await browser.new_context(bypass_csp=True)).new_page()
            await page.goto(url + "/")
            await page.locator("#mode", has_text="SHADOW").wait_for()
            assert "live" not in (await page.locator("header").text_content()).lower()
            stamp = datetime.fromtimestamp(now / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
            await page.locator("#clock", has_text=f"simulated clock · {stamp} UTC").wait_for()
            for module, signal in frame["signals"].items():
                out = signal["output"]
                tile = f"[data-module={module}]"
                assert await page.locator(f"{tile} .status").text_content() == signal["status"]
                assert await page.locator(f"{tile} .reason").text_content() == out["reason"]
                if out["vote"] is not None:
                    assert await page.locator(f"{tile} .vote").text_content() == (
                        f"vote {out['vote']['side']} · confidence {out['vote']['confidence']:.2f}")
            perf = frame["metrics"]["strategy_performance"]["performance"]
            total = f"{Decimal(str(perf['daily_pnl_usd'])).quantize(Decimal('0.01')):,}"
            assert total != "0.00"  # BTC moved while the inventory was held
            await page.locator("[data-metric=revaluation]").wait_for()
            assert await page.locator("[data-metric=daily-pnl]").text_content() == total
            assert await page.locator("[data-metric=strategy-pnl]").text_content() == "0.00"
            assert await page.locator("[data-metric=revaluation]").text_content() == total
            market = await page.locator("#price-market").input_value()
            candles = len(frame["prices"][market]["candles"])
            assert candles >= 10
            assert await page.evaluate("window.ateCharts.price.series.data().length") == candles
            await browser.close()
