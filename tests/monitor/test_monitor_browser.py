"""The dashboard in real headless Chromium (Playwright): tiles, live updates without reload, kill button."""
# The truth of what it shows (mode, precision, charts, tiles, clock, read-only, P&L split): test_dashboard_truth.py

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from monitor_harness import TOKEN

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MODULES = ["bitvol", "lxvx", "garch", "kelly", "gamma", "emergency", "atr_supertrend", "multi_timeframe"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed "
                                "(apt-get install -y chromium)")


async def open_page(browser, *, bypass_csp: bool):
    context = await browser.new_context(bypass_csp=bypass_csp)
    external: list[str] = []

    async def local_only(route) -> None:
        # Offline by construction: any request leaving 127.0.0.1 is recorded and refused.
        if route.request.url.startswith("http://127.0.0.1"):
            await route.continue_()
        else:
            external.append(route.request.url)
            await route.abort()

    await context.route("**/*", local_only)
    page = await context.new_page()
    page.external = external
    return page


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        await b.close()


@pytest.fixture
async def page(browser):
    # wait_for_function evaluates strings, which the dashboard's CSP forbids; the CSP itself is
    # exercised without bypass in test_dashboard_runs_under_its_content_security_policy.
    return await open_page(browser, bypass_csp=True)


async def text(page, selector: str) -> str:
    return (await page.locator(selector).text_content()) or ""


async def test_dashboard_live_and_kill_button(monitor, page):
    handle, view, rec, controls = monitor
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    await page.goto(handle.url + "/")
    await page.wait_for_function("document.getElementById('conn').textContent === 'stream connected'")
    await page.wait_for_function("document.querySelector('[data-module=garch] .status').textContent === 'OK'")
    tiles = page.locator("#modules .tile")
    assert await tiles.count() == 8
    assert [await t.get_attribute("data-module") for t in await tiles.all()] == MODULES
    assert await text(page, "#trading-state") == "ACTIVE"
    assert await text(page, "[data-metric=opportunities]") == "1"
    assert await text(page, "[data-metric=funding]") == "18.25"
    assert await page.locator("#positions tr").count() == 3  # header + 2 positions
    assert await page.locator("#orders tr").count() == 3  # header + 2 open orders
    assert await page.evaluate("window.ateCharts.equity.series.data().length") > 100
    assert await page.evaluate("window.ateCharts.pnl.series.data().length") == 30
    assert "corrected 1 order" in await text(page, "#events")

    # The engine's figures change; the page follows without reloading.
    for _ in range(4):
        rec.arbitrage_opportunity()
    rec.module("garch", "ERROR")
    await page.wait_for_function("document.querySelector('[data-metric=opportunities]').textContent === '5'")
    await page.wait_for_function("document.querySelector('[data-module=garch] .status').textContent === 'ERROR'")
    assert "st-ERROR" in (await page.locator("[data-module=garch]").get_attribute("class"))

    # Kill without a token: refused, state unchanged.
    dialogs = []

    async def accept(dialog):
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", lambda d: asyncio.ensure_future(accept(d)))
    await page.click("#kill-btn")
    await page.wait_for_function("document.getElementById('control-msg').dataset.status === '401'")
    assert dialogs == ["Halt all trading now?"]
    async with aiohttp.ClientSession() as s, s.get(handle.url + "/api/metrics") as r:
        assert (await r.json())["system_health"]["trading_state"]["state"] == "ACTIVE"

    # With the token: halted, visible on the page and in /api/metrics.
    await page.fill("#token", TOKEN)
    await page.click("#kill-btn")
    await page.wait_for_function("document.getElementById('control-msg').dataset.status === '200'")
    await page.wait_for_function("document.getElementById('trading-state').textContent === 'HALTED'")
    async with aiohttp.ClientSession() as s, s.get(handle.url + "/api/metrics") as r:
        state = (await r.json())["system_health"]["trading_state"]
    assert (state["state"], state["why"], state["who"]) == ("HALTED", "dashboard kill button", "operator@127.0.0.1")
    assert navigations == [handle.url + "/"]  # one load, never reloaded
    assert page.external == []


async def test_dismissed_confirmation_sends_nothing(monitor, page, store):
    handle, *_ = monitor
    await page.goto(handle.url + "/")
    await page.fill("#token", TOKEN)
    page.on("dialog", lambda d: asyncio.ensure_future(d.dismiss()))
    await page.click("#kill-btn")
    await page.wait_for_function("document.getElementById('control-msg').textContent === 'kill cancelled'")
    assert store.events(kind="audit") == []


async def test_openapi_docs_render_offline(monitor, page):
    handle, *_ = monitor
    await page.goto(handle.url + "/docs")
    await page.wait_for_selector(".opblock", timeout=15_000)
    paths = await page.locator(".opblock-summary-path").all_text_contents()
    assert {"/api/metrics", "/api/kill", "/readyz", "/metrics"} <= {p.replace("\u200b", "") for p in paths}
    assert page.external == []


async def test_dashboard_runs_under_its_content_security_policy(monitor, browser):
    handle, *_ = monitor
    page = await open_page(browser, bypass_csp=False)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    response = await page.goto(handle.url + "/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    await page.locator("#conn", has_text="stream connected").wait_for()
    await page.locator("[data-metric=opportunities]", has_text="1").wait_for()
    assert await page.locator("#modules .tile").count() == 8
    # The vendored chart library draws under the policy too (canvases for panes and axes of three charts).
    await page.locator("#pnl-chart canvas").first.wait_for()
    assert await page.locator(".chart canvas").count() >= 9
    assert not [m for m in console if "Content Security Policy" in m], console
