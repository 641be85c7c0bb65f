"""The two example strategies backtested through `ate backtest` on real Binance 1h candles: each trades only
under its own name, every order passes the risk layer and the venue's filters, and its entries are exactly
where an independent computation of its rule (pandas) puts them. A failing plug-in next to one changes
nothing of the other's trades."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ate.backtest.commands import _window
from ate.backtest.runner import run_backtest
from ate.cli import app
from ate.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
FROM, TO = "2024-01-01", "2024-02-01"
HOUR = 3_600_000
runner = CliRunner()
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")


def closes() -> pd.Series:
    with gzip.open(DATA, "rt") as f:
        df = pd.read_csv(f)
    lo, hi = 1_704_067_200_000, 1_706_745_600_000  # FROM, TO
    df = df[(df.open_time_ms >= lo) & (df.open_time_ms < hi)]
    return pd.Series(df.close.to_numpy(), index=df.open_time_ms.to_numpy() + HOUR)  # by close time


def backtest(example: str) -> dict:
    r = runner.invoke(app, ["backtest", "--config", f"examples/strategies/{example}.json", "--from", FROM,
                            "--to", TO, "--data", f"binance:BTCUSDT={DATA}", "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def first_long_entries(signal_long: pd.Series, signal_exit: pd.Series) -> list[int]:
    """Close times at which a long/flat rule enters, given per-bar entry and exit conditions."""
    out, held = [], False
    for t in signal_long.index:
        if not held and signal_long[t]:
            out.append(int(t))
            held = True
        elif held and signal_exit[t]:
            held = False
    return out


def test_ema_cross_enters_where_the_emas_cross(monkeypatch):
    monkeypatch.chdir(ROOT)
    doc = backtest("ema_cross")
    c = closes()
    fast, slow = c.ewm(span=12, adjust=False).mean(), c.ewm(span=26, adjust=False).mean()
    ready = pd.Series(range(1, len(c) + 1), index=c.index) >= 26
    expected = first_long_entries((fast > slow) & ready, (fast < slow) & ready)
    trades = doc["trades"]
    assert len(trades) >= 5 and doc["orders_rejected"] == 0
    assert {t["strategy"] for t in trades} == {"ema_cross"}
    assert [t["entry_ms"] for t in trades] == expected[:len(trades)]
    assert len(expected) - len(trades) == doc["stats"]["open_at_end"]


def test_mean_reversion_enters_below_the_band(monkeypatch):
    monkeypatch.chdir(ROOT)
    doc = backtest("mean_reversion")
    c = closes()
    prior = c.shift(1).rolling(48)
    z = (c - prior.mean()) / prior.std()
    trades = doc["trades"]
    assert len(trades) >= 3 and doc["orders_rejected"] == 0
    assert {t["strategy"] for t in trades} == {"mean_reversion"}
    for t in trades:
        assert z[t["entry_ms"]] <= -2.0  # entered only on a close at least 2 sigma below the mean
        assert z[t["exit_ms"]] >= 0.0 or t["exit_price"] <= t["entry_price"] * 0.95
    first_signal = int(z[z <= -2.0].index[0])
    assert trades[0]["entry_ms"] == first_signal


BOMB = '''
from ate.model import OrderIntent, Side
from decimal import Decimal
from ate.strategies.plugin import UserStrategy

class Bomb(UserStrategy):
    name = "bomb"
    timeframes = ("1h",)

    def on_bar(self, market, timeframe, bar, ctx):
        self.memory["n"] = self.memory.get("n", 0) + 1
        if self.memory["n"] % 7 == 0:
            raise RuntimeError("boom")
        # tries to pass its order off as the EMA cross's, which would steal that strategy's fills
        return [OrderIntent("binance", "BTCUSDT", Side.BUY, Decimal("0.001"), Decimal(bar.close), "ema_cross")]
'''


def test_a_failing_plugin_beside_the_ema_cross_changes_none_of_its_trades(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path / "bomb.py").write_text(BOMB)
    raw = json.loads((ROOT / "examples/strategies/ema_cross.json").read_text())
    alone = load_config(ROOT / "examples/strategies/ema_cross.json")
    raw["strategies"]["custom"].append({"class": f"{tmp_path / 'bomb.py'}:Bomb"})
    both = parse_config(raw, env={})
    data, _, _ = _window(alone, FROM, TO, [f"binance:BTCUSDT={DATA}"])
    a, b = run_backtest(alone, data), run_backtest(both, data)
    assert a.trades and b.trades == a.trades
    assert [f for f in b.fills if f["strategy"] != "ema_cross"] == []


def test_a_sweep_over_a_custom_strategys_params_matches_single_backtests(tmp_path, monkeypatch):
    """`strategies.custom.<i>.params.<key>` is a sweepable path; the default combination reproduces the
    plain backtest of the example."""
    monkeypatch.chdir(ROOT)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"strategies.custom.0.params.fast": [5, 12]}))
    r = runner.invoke(app, ["sweep", "--config", "examples/strategies/ema_cross.json", "--grid", str(grid),
                            "--from", FROM, "--to", TO, "--data", f"binance:BTCUSDT={DATA}", "--workers", "1",
                            "--json"])
    assert r.exit_code == 0, r.output
    by_fast = {row["params"]["strategies.custom.0.params.fast"]: row for row in json.loads(r.stdout)}
    single = backtest("ema_cross")
    assert by_fast[12]["final_equity"] == single["final_equity"]
    assert by_fast[12]["trades"] == len(single["trades"]) != by_fast[5]["trades"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"strategies.custom.3.params.fast": [5]}))
    r = runner.invoke(app, ["sweep", "--config", "examples/strategies/ema_cross.json", "--grid", str(bad),
                            "--from", FROM, "--to", TO, "--data", f"binance:BTCUSDT={DATA}"])
    assert r.exit_code == 2 and "strategies.custom.3.params.fast: no item 3 in that list" in r.stderr
    bad.write_text(json.dumps({"strategies.custom.0.params.fast": [5, 40]}))  # 40 ≥ slow (26)
    r = runner.invoke(app, ["sweep", "--config", "examples/strategies/ema_cross.json", "--grid", str(bad),
                            "--from", FROM, "--to", TO, "--data", f"binance:BTCUSDT={DATA}"])
    assert r.exit_code == 2, r.output
    assert "strategies.custom.0.params.fast=40: strategies.custom.0.params: fast must be smaller than slow" in r.stderr
