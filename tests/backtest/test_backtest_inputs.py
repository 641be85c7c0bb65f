"""What a backtest runs on: the capital of the config's mode, data chosen per asset, any configured market.

- A canary config runs on canary.initial_capital; --capital overrides it; the output says which.
- ETH end to end from ../shared/data: spot and perp candles, ETH funding, no DVOL (BTC's is refused, and
  without an ETH one the run says bitvol uses its proxy); directional and carry trade ETH.
- A strategy market the config does not declare is a clear error before anything runs (not a KeyError).
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
BTC_1H = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
ETH_SPOT = SHARED / "binance_spot_ETHUSDT_1h.csv.gz"
ETH_PERP = SHARED / "binance_usdm_ETHUSDT_perp_1h.csv.gz"
runner = CliRunner()

ETH_CONFIG = {
    "mode": "backtest", "run_id": "eth",
    "markets": {"primary": "binance:ETHUSDT", "backpack": [],
                "binance": [{"symbol": "ETHUSDT"}, {"symbol": "ETHUSDT", "kind": "perp"}]},
    "strategies": {"directional": {"market": "binance:ETHUSDT"}, "arbitrage": {"enabled": False},
                   "funding_carry": {"spot_market": "binance:ETHUSDT", "perp_market": "binance_usdm:ETHUSDT"}},
}
needs_eth = pytest.mark.skipif(not (ETH_SPOT.exists() and ETH_PERP.exists()), reason="../shared/data ETH absent")


def _write(tmp_path, doc, name="cfg.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.skipif(not BTC_1H.exists(), reason=f"{BTC_1H} not present")
@pytest.mark.parametrize(("extra", "capital", "source"), [
    ([], "1000.00", "canary.initial_capital (mode canary)"),
    (["--capital", "2500"], "2500.00", "--capital")])
def test_canary_config_backtests_on_the_canary_capital(tmp_path, monkeypatch, extra, capital, source):
    monkeypatch.chdir(ROOT)
    cfg = _write(tmp_path, json.loads((ROOT / "configs" / "canary.json").read_text()))
    cfg.chmod(0o600)
    r = runner.invoke(app, ["backtest", "--config", str(cfg), "--from", "2024-03-01", "--to", "2024-03-04",
                            "--json", *extra])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["capital_source"] == source
    assert f'{doc["stats"]["start_equity"]:.2f}' == capital  # all in the one quote wallet the run uses


@needs_eth
def test_eth_end_to_end_from_shared_data(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = _write(tmp_path, ETH_CONFIG)
    args = ["backtest", "--config", str(cfg), "--from", "2024-01-01", "--to", "2024-03-01", "--json",
            "--data-dir", str(SHARED), "--data", f"binance:ETHUSDT={ETH_SPOT}",
            "--data", f"binance_usdm:ETHUSDT={ETH_PERP}"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert "no ETH DVOL" in doc["note"] and "realized-volatility proxy" in doc["note"]
    assert doc["bars"] == 2 * (31 + 29) * 24
    symbols = {t["symbol"] for t in doc["trades"]}
    assert symbols and all("ETHUSDT" in s for s in symbols)
    assert {t["strategy"] for t in doc["trades"]} == {"directional"}
    # the carry opened an ETH spot/perp pair (still open at the end) and collected ETH funding from the ETH file
    carry = doc["stats"]["by_strategy"]["funding_carry"]
    assert carry["funding_net"] > 0 and doc["stats"]["open_at_end"] >= 2

    # BTC's implied volatility is refused for an ETH run
    r = runner.invoke(app, [*args, "--data", f"dvol={ROOT / 'data' / 'deribit_BTC_DVOL_1d.csv'}"])
    assert r.exit_code == 2
    assert "is BTC implied volatility, but the primary market binance:ETHUSDT trades ETH" in r.stderr


@needs_eth
def test_strategy_market_outside_the_config_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    doc = {**ETH_CONFIG, "strategies": {"arbitrage": {"enabled": False}}}  # directional/carry default to BTC
    cfg = _write(tmp_path, doc)
    r = runner.invoke(app, ["backtest", "--config", str(cfg), "--from", "2024-01-01", "--to", "2024-01-03",
                            "--data-dir", str(SHARED)])
    assert r.exit_code == 2
    assert "strategies.directional.markets.0: binance:BTCUSDT is not a configured market" in r.stderr
    assert "strategies.funding_carry.markets.0.perp: binance_usdm:BTCUSDT" in r.stderr


def test_missing_primary_candles_name_the_file_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/ here
    doc = {**ETH_CONFIG, "markets": {**ETH_CONFIG["markets"], "primary": "binance:ETHUSDT"}}
    cfg = _write(tmp_path, doc)
    r = runner.invoke(app, ["backtest", "--config", str(cfg), "--from", "2024-01-01", "--to", "2024-01-03"])
    assert r.exit_code == 2
    assert "no candles for the primary market binance:ETHUSDT: no binance_spot_ETHUSDT_1h.csv.gz in data" in r.stderr


BACKPACK_PERP = {
    "mode": "backtest", "run_id": "bp",
    "markets": {"primary": "backpack:ETH_USDC_PERP", "binance": [],
                "backpack": [{"symbol": "ETH_USDC_PERP", "kind": "perp"}]},
    "strategies": {"directional": {"market": "backpack:ETH_USDC_PERP"}, "arbitrage": {"enabled": False},
                   "funding_carry": {"enabled": False}},
    "sim": {"markets": [{"venue": "backpack", "symbol": "ETH_USDC_PERP", "data": "unused.csv.gz", "base": "ETH",
                         "quote": "USDC", "kind": "perp", "tick_size": "0.01", "step_size": "0.001",
                         "min_qty": "0.001"}]},
}


@needs_eth
def test_a_symbol_the_simulator_does_not_know_runs_with_the_configs_filters(tmp_path, monkeypatch):
    """Backpack ETH_USDC_PERP (filters from sim.markets; Binance's ETH perp 1h history stands in for its
    candles): the directional strategy trades it long and short, in a USDC wallet."""
    monkeypatch.chdir(ROOT)
    args = ["--from", "2024-01-01", "--to", "2024-03-01", "--json", "--data", f"backpack:ETH_USDC_PERP={ETH_PERP}"]
    r = runner.invoke(app, ["backtest", "--config", str(_write(tmp_path, BACKPACK_PERP)), *args])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {(t["venue"], t["symbol"]) for t in doc["trades"]} == {("backpack", "ETH_USDC_PERP")}
    assert {t["side"] for t in doc["trades"]} == {"BUY", "SELL"}  # a perp may be shorted
    assert "no funding history" in doc["note"]

    without = {**BACKPACK_PERP, "sim": {"markets": []}}
    r = runner.invoke(app, ["backtest", "--config", str(_write(tmp_path, without, "bare.json")), *args])
    assert r.exit_code == 2
    assert "backpack:ETH_USDC_PERP: no known instrument filters" in r.stderr and "sim.markets" in r.stderr
