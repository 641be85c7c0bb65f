"""`ate promote` on stored histories that pass and that fail each gate."""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from ate.cli import app
from ate.config.risk import CapitalStagesConfig
from ate.model import EngineEvent
from ate.risk import promotion
from ate.risk.events import (
    API_VIOLATION,
    MAJOR_FAILURE,
    MODULE_STATUS,
    MODULES,
    PROMOTION,
    RISK_BREACH,
    STAGE_KEY,
)
from ate.store import Store, schema

D = Decimal
DAY = 86_400_000
HOUR = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def history(store, days, daily_returns, start_equity=1000.0, flows=None):
    """Hourly equity snapshots ending now; ``daily_returns(day)`` is that day's return, spread over 24 h."""
    end = now_ms()
    start = end - int(days * DAY)
    equity = start_equity
    flows = flows or {}
    rows = []
    for h in range(int(days * 24) + 1):
        if h:
            equity *= (1 + daily_returns(h // 24)) ** (1 / 24)
        flow = flows.get(h, 0.0)
        equity += flow
        rows.append({"ts_ms": start + h * HOUR, "equity": D(repr(round(equity, 6))), "flows": D(repr(flow)),
                     "shadow": False})
    with store.engine.begin() as c:  # one transaction: Store.add_equity commits (fsync) per snapshot
        c.execute(insert(schema.equity_snapshots), rows)
    return start


def modules_ok(store, since, overrides=None):
    for m in MODULES:
        status = (overrides or {}).get(m, "OK")
        if status is None:
            continue
        store.add_event(EngineEvent(since + HOUR, MODULE_STATUS, f"{m} {status}", data={"module": m, "status": status}))


@pytest.fixture
def env(tmp_path):
    url = f"sqlite:///{tmp_path / 'ate.db'}"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"mode": "paper", "store": {"url": url}}))
    store = Store(url)
    yield store, cfg
    store.close()


def run(cfg, *args):
    r = CliRunner().invoke(app, ["promote", "--config", str(cfg), *args])
    return r.exit_code, r.output


def set_stage(store, index, since, live_since=None):
    store.set_state(STAGE_KEY, {"index": index, "since_ms": since, "live_since_ms": live_since})


def test_canary_passes(env):
    store, cfg = env
    since = history(store, 15, lambda d: 0.002)
    set_stage(store, None, since)
    modules_ok(store, since)
    code, out = run(cfg, "--check")
    assert code == 0, out
    assert out.count("PASS") == 5 and "FAIL" not in out and "eligible for stage1" in out
    assert "+3.0" in out  # 15 days at 0.2 %/day ≈ +3.05 %
    assert store.get_state(STAGE_KEY)["index"] is None  # --check changes nothing


@pytest.mark.parametrize("case,reason", [
    ("short", "duration: 10.0 days (needs >= 14 days)"),
    ("loss", "return: -1.49% (needs > 0)"),
    ("api", "api_violations: 1 (needs 0 (no 418 / -1003))"),
    ("module", "modules: garch=ERROR, gamma=unreported (needs all 8 modules OK)"),
    ("breach", "risk_breaches: 1 (needs 0)"),
])
def test_canary_fails_each_gate_with_its_reason(env, case, reason):
    store, cfg = env
    since = history(store, 10 if case == "short" else 15, lambda d: -0.001 if case == "loss" else 0.002)
    set_stage(store, None, since)
    if case == "module":
        modules_ok(store, since, {"garch": "ERROR", "gamma": None})  # gamma never reported
    else:
        modules_ok(store, since)
    if case == "api":
        store.add_event(EngineEvent(since + 2 * DAY, API_VIOLATION, "418 from binance",
                                    data={"venue": "binance", "code": 418}))
    if case == "breach":
        store.add_event(EngineEvent(since + 3 * DAY, RISK_BREACH, "daily loss", data={"what": "daily_loss"}))
    code, out = run(cfg, "--check")
    assert code == 1
    assert out.count("FAIL") == 1
    assert f"not eligible: {reason}" in out


def test_events_before_the_stage_began_do_not_count(env):
    store, cfg = env
    store.add_event(EngineEvent(now_ms() - 30 * DAY, API_VIOLATION, "old", data={"venue": "binance", "code": -1003}))
    since = history(store, 15, lambda d: 0.002)
    set_stage(store, None, since)
    modules_ok(store, since)
    assert run(cfg, "--check")[0] == 0


def test_promote_refuses_then_moves_up_and_persists(env):
    store, cfg = env
    since = history(store, 15, lambda d: 0.002)
    set_stage(store, None, since)
    code, out = run(cfg)  # no module reports yet
    assert code == 1 and "refused: modules:" in out and store.get_state(STAGE_KEY)["index"] is None
    modules_ok(store, since)
    code, out = run(cfg)
    assert code == 0 and "promoted to stage1" in out
    rec = store.get_state(STAGE_KEY)
    assert rec["index"] == 0 and rec["live_since_ms"] == rec["since_ms"] > since
    assert store.events(kind=PROMOTION)[0].data == {"from": "canary", "to": "stage1", "who": "cli"}
    code, out = run(cfg, "--check")  # the new stage has no history yet
    assert code == 1 and "duration: 0.0 days" in out


def test_stage_gates_apply_below_scaling_capital(env):
    store, cfg = env
    since = history(store, 14.5, lambda d: 0.001)
    set_stage(store, 1, since, since - 20 * DAY)  # stage2 (3k) -> stage3 (5k)
    modules_ok(store, since)
    code, out = run(cfg, "--check")
    assert code == 0 and "promotion stage2 → stage3" in out


def noisy(d):
    return 0.004 + 0.01 * math.sin(d * 1.7)


def test_scaling_gates_pass(env):
    store, cfg = env
    since = history(store, 35, noisy, start_equity=10000)
    set_stage(store, 3, since, since - 60 * DAY)  # stage4 (10k) -> stage5 (25k)
    code, out = run(cfg, "--check")
    assert code == 0, out
    assert "promotion stage4 → stage5" in out and out.count("PASS") == 5


@pytest.mark.parametrize("case,reason", [
    ("short", "duration: 20.0 days (needs >= 30 days)"),
    ("sharpe", "sharpe:"),
    ("drawdown", "max_drawdown:"),
    ("failure", "major_failures: 1 (needs 0)"),
])
def test_scaling_fails_each_gate(env, case, reason):
    store, cfg = env
    days = 20 if case == "short" else 35
    if case == "sharpe":  # swings of ±1.5 % around a tiny drift: profitable, Sharpe well below 1
        since = history(store, days, lambda d: 0.0001 + 0.015 * math.sin(d * 1.7), start_equity=10000)
    elif case == "drawdown":  # -25 % over days 5..9, then a steep recovery
        since = history(store, days, lambda d: -0.06 if 5 <= d < 10 else (0.03 if d >= 10 else 0.004),
                        start_equity=10000)
    else:
        since = history(store, days, noisy, start_equity=10000)
    if case == "failure":
        store.add_event(EngineEvent(since + DAY, MAJOR_FAILURE, "unresolved one-legged arbitrage",
                                    data={"what": "one_legged"}))
    set_stage(store, 3, since, since)
    code, out = run(cfg, "--check")
    assert code == 1
    assert out.count("FAIL") == 1, out
    line = next(x for x in out.splitlines() if x.startswith("not eligible: "))
    assert line.removeprefix("not eligible: ").startswith(reason)


def test_last_stage_cannot_move_up(env):
    store, cfg = env
    set_stage(store, 5, now_ms() - DAY)
    code, out = run(cfg, "--check")
    assert code == 1 and "stage6 is the last stage" in out


def test_deposits_are_not_returns(store):
    end = now_ms()
    for i, (eq, flow) in enumerate([(1000, 0), (1000, 0), (6000, 5000), (5990, 0)]):
        store.add_equity(end - (3 - i) * DAY, D(eq), D(flow))
    index = promotion.growth_index(store.equity_series())
    assert index[-1][1] == pytest.approx(5990 / 6000)


def test_sharpe_of_alternating_returns_is_zero():
    assert promotion.sharpe([0.01, -0.01] * 15) == pytest.approx(0.0, abs=1e-12)
    assert promotion.sharpe([0.01] * 6) is None


def test_withdrawal_advice(store):
    cfg = CapitalStagesConfig()
    end = now_ms()
    store.add_equity(end - 6 * DAY, D("10000"), D(0))
    store.add_equity(end - DAY, D("10300"), D(0))
    store.add_equity(end, D("10500"), D("100"))  # 100 of the rise is a deposit
    rec = {"index": 3, "since_ms": end - 10 * DAY, "live_since_ms": end - 30 * DAY}
    assert promotion.withdrawal_advice(store, cfg, end, rec) == \
        "withdraw 400.00 USD (100% of this week's profit 400.00 USD)"
    rec["live_since_ms"] = end - 70 * DAY
    assert promotion.withdrawal_advice(store, cfg, end, rec).startswith("withdraw 200.00 USD (50%")
    rec["live_since_ms"] = None
    assert "before the first capital stage" in promotion.withdrawal_advice(store, cfg, end, rec)
