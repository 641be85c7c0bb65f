"""The HTML report: self-contained, every chart container rendered by headless chromium; and --json."""

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from backtest_st_strategy import ConstantHedge, SupertrendLongFlat, permissive_config

from ate.backtest.data import BacktestData, MarketData, instrument_for
from ate.backtest.report import CHART_IDS, fmt, render
from ate.backtest.runner import ReplaySettings, run_backtest
from ate.data.loaders import load_candles, load_funding

ROOT = Path(__file__).resolve().parents[2] / "data"
SPOT_1H = ROOT / "binance_spot_BTCUSDT_1h.csv.gz"
FUNDING = ROOT / "binance_usdm_BTCUSDT_funding.csv"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def result():
    if not (SPOT_1H.exists() and FUNDING.exists()):
        pytest.skip("shipped 1h candles or funding absent")
    start, end = 1_704_067_200_000, 1_711_929_600_000  # 2024 Q1
    spot = load_candles(SPOT_1H, start_ms=start, end_ms=end)
    perp = "binance_usdm:BTCUSDT"
    funding = [r for r in load_funding(FUNDING) if start < r.ts_ms <= end]
    data = BacktestData("binance:BTCUSDT", {
        "binance:BTCUSDT": MarketData("binance:BTCUSDT", instrument_for("binance:BTCUSDT"), spot),
        perp: MarketData(perp, instrument_for(perp), list(spot), funding)})
    # the full signal engine runs on the primary market (decisions for the timeline); the test strategy trades
    cfg = permissive_config(markets={"primary": "binance:BTCUSDT"})
    return run_backtest(cfg, data, settings=ReplaySettings(size_fraction=10.0),
                        strategies=[SupertrendLongFlat(), ConstantHedge(start + 3_600_000, end)],
                        capital=Decimal(200_000))


def test_report_is_self_contained_and_says_na_for_undefined(result):
    page = render(result)
    assert page.count("<script") >= len(CHART_IDS)
    assert not re.search(r'<script[^>]+src="http', page)  # plotly inlined, nothing fetched
    assert len(re.findall(r"plotly\.js v\d", page)) == 1  # the library is inlined exactly once
    assert page.count("Plotly.newPlot") == len(CHART_IDS)
    for cid in CHART_IDS:
        assert f'id="chart-{cid}"' in page
    assert "PASS" in page or "FAIL" in page
    assert fmt(None) == "n/a" and fmt(0.25, "win_rate") == "25.00 %"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (Debian chromium package)")
def test_report_renders_in_headless_chromium(result, tmp_path):
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    path.write_text(render(result), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:")
                       else route.continue_())  # offline: any network fetch fails the render
            page.goto(path.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5")
            for cid in CHART_IDS:
                el = page.locator(f"#chart-{cid}")
                box = el.bounding_box()
                assert box is not None and box["height"] > 100 and box["width"] > 300, cid
                # plotly drew data: at least one trace or heatmap layer inside the container
                assert el.locator(".main-svg").count() >= 1
                assert el.locator("g.trace, g.hm, .heatmaplayer image, .heatmaplayer").count() >= 1, cid
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_json_has_no_non_finite_numbers(result):
    from ate.backtest.commands import dumps

    text = dumps(result.to_json())
    doc = json.loads(text)
    assert doc["final_equity"] == str(result.final_equity)
    assert doc["stats"]["trades"] == len(result.trades) > 0
    assert doc["stats"]["funding_paid"] >= 0 and "NaN" not in text
