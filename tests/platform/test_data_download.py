"""`ate data download` against the simulator's Binance and Backpack REST faces on 127.0.0.1: the file holds
exactly the venue's candles, real outages come back as gaps, an interrupted download resumes to the same
bytes, bad candles are rejected and reported, funding is paged by date, and `ate backtest` reads the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app
from ate.commands.download import _download
from ate.config import parse_config
from ate.config.sim import SimConfig
from ate.data.candles import Candle
from ate.data.loaders import iter_candles, load_funding
from ate.sim.clock import ManualClock
from ate.sim.runner import run_simulator
from ate.venues.download import download_candles
from ate.venues.factory import build_clients

ROOT = Path(__file__).resolve().parents[2]
SPOT_1H = "data/binance_spot_BTCUSDT_1h.csv.gz"
FILES = [SPOT_1H, "data/binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz",
         "data/binance_usdm_BTCUSDT_perp_1h_2026-01-01_2026-05-17.csv.gz", "data/binance_usdm_BTCUSDT_funding.csv",
         "data/bybit_linear_BTCUSDT_1m_2026-02-27_2026-03-29.csv.gz"]
H = 3_600_000
MAR20_2023, MAR27_2023 = 1_679_270_400_000, 1_679_875_200_000  # 2023-03-24 13:00 is a real Binance outage
JAN1_2026, JAN8_2026 = 1_767_225_600_000, 1_767_830_400_000
runner = CliRunner()
pytestmark = [pytest.mark.skipif(not all((ROOT / f).exists() for f in FILES), reason="data files absent"),
              pytest.mark.timeout(120)]


def sim_cfg() -> SimConfig:
    return SimConfig.model_validate({"speed": 0, "start_ms": 1_773_705_600_000, "seed": 1, "markets": [
        {"venue": "binance-spot", "symbol": "BTCUSDT", "data": FILES[1], "history": SPOT_1H},
        {"venue": "binance-usdm", "symbol": "BTCUSDT", "data": FILES[2], "funding": FILES[3]},
        {"venue": "backpack", "symbol": "BTC_USDC", "data": FILES[4]}]})


@pytest.fixture()
async def venues(monkeypatch):
    monkeypatch.chdir(ROOT)
    async with run_simulator(sim_cfg(), clock=ManualClock(), base_dir=ROOT) as sim:
        yield parse_config({"mode": "backtest", "venues": {
            "binance": {"spot_rest_url": sim.url("binance-spot"), "usdm_rest_url": sim.url("binance-usdm")},
            "backpack": {"rest_url": sim.url("backpack")}, "deribit": {"enabled": False}}}, env={})


def source(path: str, start: int, end: int) -> list[Candle]:
    return [c for c in iter_candles(ROOT / path, H) if start <= c.open_ms < end]


def rows(path: Path) -> list[tuple]:
    return [(c.open_ms, c.open, c.high, c.low, c.close, c.volume) for c in iter_candles(path, H)]


async def test_download_is_the_venue_history_with_its_real_gap(venues, tmp_path):
    out = tmp_path / "spot.csv"
    candles, funding = await _download(venues, "binance", "BTCUSDT", "1h", MAR20_2023, MAR27_2023, out, None,
                                       lambda *_: None)
    want = [(c.open_ms, c.open, c.high, c.low, c.close, c.volume) for c in source(SPOT_1H, MAR20_2023, MAR27_2023)]
    assert rows(out) == want and len(want) == 167
    assert candles.gaps == [(1_679_662_800_000, 1_679_666_400_000)] and candles.missing(H) == 1
    assert candles.rejected == [] and funding is None


class Interrupted:
    """The real client, until the connection drops on the n-th request."""

    def __init__(self, client, fail_on: int) -> None:
        self.client, self.fail_on, self.calls = client, fail_on, 0

    async def klines(self, *args):
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionResetError("connection reset by peer")
        return await self.client.klines(*args)


async def test_an_interrupted_download_resumes_to_the_same_bytes(venues, tmp_path):
    import aiohttp

    clean, broken = tmp_path / "clean.csv", tmp_path / "broken.csv"
    async with aiohttp.ClientSession() as session:
        client = build_clients(venues.venues, session=session, environ={})["binance"]
        await download_candles(client, "BTCUSDT", "1h", MAR20_2023, MAR27_2023, clean, chunk=24)
        with pytest.raises(ConnectionResetError):
            await download_candles(Interrupted(client, 3), "BTCUSDT", "1h", MAR20_2023, MAR27_2023, broken, chunk=24)
        assert len(rows(broken)) == 48  # two chunks flushed before the drop
        with open(broken, "a") as fh:
            fh.write("1679443200000,2790")  # a kill -9 in the middle of a row
        report = await download_candles(client, "BTCUSDT", "1h", MAR20_2023, MAR27_2023, broken, chunk=24)
    assert report.resumed_from_ms == MAR20_2023 + 48 * H
    assert broken.read_bytes() == clean.read_bytes()


class Poisoned:
    """The real client's candles plus what a misbehaving venue sends: NaN, a duplicate, one outside the window."""

    def __init__(self, client) -> None:
        self.client = client

    async def klines(self, symbol, interval, start, end):
        real = await self.client.klines(symbol, interval, start, end)
        bad = Candle(real[5].open_ms, float("nan"), 1, 1, 1, 1, H)
        return [*real[:5], bad, *real[6:10], real[9], *real[10:], Candle(end, 1, 1, 1, 1, 1, H)]


async def test_bad_candles_are_rejected_and_reported_never_written(venues, tmp_path):
    import aiohttp

    out = tmp_path / "p.csv"
    async with aiohttp.ClientSession() as session:
        client = build_clients(venues.venues, session=session, environ={})["binance"]
        report = await download_candles(Poisoned(client), "BTCUSDT", "1h", MAR20_2023, MAR20_2023 + 24 * H, out)
    assert report.rejected == [(MAR20_2023 + 5 * H, "nan"), (MAR20_2023 + 9 * H, "duplicate")]
    assert report.gaps == [(MAR20_2023 + 5 * H, MAR20_2023 + 6 * H)]
    assert report.rows == 23 and len(set(r[0] for r in rows(out))) == 23


async def test_perp_candles_and_funding_feed_a_backtest(venues, tmp_path):
    out, fund = tmp_path / "binance_usdm_BTCUSDT_1h.csv", tmp_path / "funding.csv"
    candles, funding = await _download(venues, "binance-usdm", "BTCUSDT", "1h", JAN1_2026, JAN8_2026, out, fund,
                                       lambda *_: None)
    assert candles.rows == 168 and candles.gaps == []
    want = [(r.ts_ms, r.rate) for r in load_funding(ROOT / FILES[3]) if JAN1_2026 <= r.ts_ms < JAN8_2026]
    assert [(r.ts_ms, r.rate) for r in load_funding(fund)] == want and len(want) == 21
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"markets": {"primary": "binance_usdm:BTCUSDT"}}))
    r = runner.invoke(app, ["backtest", "--config", str(cfg), "--from", "2026-01-02", "--to", "2026-01-08",
                            "--data", f"binance_usdm:BTCUSDT={out}", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["bars"] == 6 * 24


@pytest.mark.parametrize(("args", "message"), [
    (["--venue", "kraken"], "--venue 'kraken': one of binance, binance-usdm, backpack"),
    (["--venue", "binance", "--interval", "2h"], "--interval '2h': one of 1m, 5m, 15m, 1h, 4h, 1d"),
    (["--venue", "binance", "--funding"], "--funding: only binance-usdm funding history can be paged by date"),
    (["--venue", "backpack", "--funding"], "--funding: only binance-usdm funding history can be paged by date"),
    (["--venue", "binance", "--from", "yesterday"], "--from/--to: 'yesterday' is not a date"),
])
def test_bad_arguments_exit_2_with_the_option_named(tmp_path, args, message):
    base = {"--symbol": "BTCUSDT", "--from": "2024-01-01", "--to": "2024-01-02", "--out-dir": str(tmp_path)}
    for i in range(0, len(args), 2):
        if args[i] in base and i + 1 < len(args):
            base[args[i]] = args[i + 1]
    flat = [a for a in args if a not in base and a not in base.values()]
    cmd = ["data", "download", *flat, *[x for kv in base.items() for x in kv]]
    r = runner.invoke(app, cmd)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(message), r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_file_that_is_not_ours_is_left_alone(tmp_path):
    out = tmp_path / "x.csv"
    out.write_text("time,price\n1,2\n")
    r = runner.invoke(app, ["data", "download", "--venue", "binance", "--symbol", "BTCUSDT", "--from", "2024-01-01",
                            "--to", "2024-01-02", "--out", str(out)])
    assert r.exit_code == 2 and "is not a candle file to continue" in r.stderr
    assert out.read_text() == "time,price\n1,2\n"
