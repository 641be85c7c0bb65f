"""The config refuses what issue 14 found accepted: non-finite numbers, duplicate keys, limits that limit
nothing, unencrypted venue URLs, an API open to the network by accident, a kill file nobody can write, live
mode with nothing to trade on. JSON-level problems name line and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ate.config import ConfigError, load_config, parse_config

KEYS = {"ATE_BINANCE_API_KEY": "k", "ATE_BINANCE_API_SECRET": "s", "ATE_BACKPACK_API_KEY": "k",
        "ATE_BACKPACK_API_SECRET": "s"}


def problems_of_text(tmp_path, text: str | bytes) -> list[str]:
    path = tmp_path / "c.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=KEYS)
    return [p.replace(str(path), "FILE") for p in exc.value.problems]


def problems(data: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, env=KEYS if env is None else env)
    return exc.value.problems


@pytest.mark.parametrize(("text", "expected"), [
    ('{"mode": "live",\n "mode": "shadow"}',
     'config: malformed JSON in FILE at line 2 column 2: duplicate key "mode" (the first one would be silently replaced)'),
    ('{"risk_limits": {"capital_usd": Infinity}}',
     "config: malformed JSON in FILE at line 1 column 33: Infinity is not a number a config may hold (finite values only)"),
    ('{"capital_stages": {"scaling_min_sharpe": NaN}}',
     "config: malformed JSON in FILE at line 1 column 43: NaN is not a number a config may hold (finite values only)"),
    ('{"risk_limits":\n  {"capital_usd": -Infinity}}',
     "config: malformed JSON in FILE at line 2 column 19: -Infinity is not a number a config may hold (finite values only)"),
    ('{"mode": ' + "[" * 5000 + "]" * 5000 + "}",
     "config: malformed JSON in FILE at line 1 column 41: nested deeper than 32 levels"),
    ('{"monitor": {"port": ' + "9" * 5000 + "}}",
     "config: malformed JSON in FILE at line 1 column 22: a number of 5000 characters (at most 40)"),
    (b'{"mode": "paper",\n "run_id": "\xc3"}',
     "config: malformed JSON in FILE at line 2 column 13: byte 0xc3 is not UTF-8 text"),
    ('{"a": {"x": 1}, "b": {"x": 2}, "mode": "paper"}', "a: unknown key"),  # same key in two objects is fine
])
def test_json_problems_name_line_and_column(tmp_path, text, expected):
    assert problems_of_text(tmp_path, text)[0] == expected


@pytest.mark.parametrize(("section", "key"), [
    ("risk_limits", "max_position_size_usd"), ("risk_limits", "capital_usd"), ("risk_limits", "max_orders_per_second"),
    ("risk_limits", "trusted_price_max_age_s"), ("canary", "initial_capital"),
])
def test_non_finite_values_in_strings_are_refused_too(section, key):
    # "Infinity" as a JSON string would otherwise be coerced to float('inf') by the field's lax mode
    assert problems({"mode": "paper", section: {key: "Infinity"}})[0].startswith(
        f"{section}.{key}: Input should be a finite number")


def test_non_finite_nested_values_are_refused():
    out = problems({"mode": "paper", "strategies": {"arbitrage": {"max_notional": "inf"},
                                                    "funding_carry": {"notional": "inf", "exit_threshold_bps_8h": "nan"}},
                    "capital_stages": {"scaling_min_sharpe": "nan", "stages": [{"name": "s", "capital": "inf"}]}})
    assert {line.split(":")[0] for line in out} == {
        "strategies.arbitrage.max_notional", "strategies.funding_carry.notional",
        "strategies.funding_carry.exit_threshold_bps_8h", "capital_stages.scaling_min_sharpe",
        "capital_stages.stages.0.capital"}


@pytest.mark.parametrize(("data", "expected"), [
    ({"risk_limits": {"max_daily_loss_pct": 1.0, "emergency_stop_loss_pct": 1.0}},
     "risk_limits.max_daily_loss_pct: Input should be less than or equal to 0.25"),
    ({"risk_limits": {"max_single_trade_pct": 1.0, "max_order_pct_of_capital": 1.0}},
     "risk_limits.max_single_trade_pct: Input should be less than or equal to 0.25"),
    ({"risk_limits": {"max_price_deviation_pct": 1.0}},
     "risk_limits.max_price_deviation_pct: Input should be less than or equal to 0.5"),
    ({"canary": {"initial_capital": 1000, "daily_loss_limit": 999}},
     "canary: daily_loss_limit (999.0) must be at most 10% of initial_capital (1000.0)"),
    ({"risk_limits": {"capital_usd": 1e-9}}, "risk_limits.capital_usd: Input should be greater than or equal to 10"),
    ({"monitor": {"control_per_minute": 10**9}}, "monitor.control_per_minute: Input should be less than or equal to 600"),
    ({"venues": {"binance": {"spot_rest_url": "http://api.binance.com"}}},
     "venues.binance.spot_rest_url: 'http://api.binance.com': keys and orders would travel unencrypted; use https://"),
    ({"venues": {"backpack": {"ws_url": "not a url"}}}, "venues.backpack.ws_url: 'not a url' is not a wss:// URL"),
    ({"monitor": {"alerts": {"webhook_url": "http://hooks.example.com/x"}}},
     "monitor.alerts.webhook_url: 'http://hooks.example.com/x': keys and orders would travel unencrypted"),
    ({"venues": {"binance": {"api_key_env": "ATE_KEY\nX"}}},
     "venues.binance.api_key_env: String should match pattern"),
    ({"monitor": {"telegram": {"api_base": "http://api.telegram.org"}}},
     "monitor.telegram.api_base: 'http://api.telegram.org': keys and orders would travel unencrypted"),
    ({"monitor": {"host": "0.0.0.0"}},
     "monitor: host '0.0.0.0' exposes the operator API beyond this machine; set monitor.allow_remote true"),
    ({"store": {"url": "not a url"}}, "store.url: 'not a url' is not a database URL (e.g. sqlite:///state/ate.db)"),
])
def test_dangerous_values_are_refused_with_their_reason(data, expected):
    assert problems({"mode": "paper", **data})[0].startswith(expected)


def test_every_bound_has_its_reason_in_the_schema():
    from ate.config import config_schema

    schema = config_schema()["$defs"]
    for model, field, words in [("RiskLimits", "max_daily_loss_pct", "no limit"), ("MonitorConfig", "allow_remote", "opt-in"),
                                ("CanaryConfig", "daily_loss_limit", "10 %"), ("RiskLimits", "capital_usd", "minimum")]:
        prop = schema[model]["properties"][field]
        assert words in prop["description"], (model, field)


def test_loopback_http_is_the_simulator_and_allowed():
    cfg = parse_config({"mode": "paper", "venues": {"binance": {"spot_rest_url": "http://127.0.0.1:8123",
                                                                "spot_ws_url": "ws://localhost:9"},
                                                    "backpack": {"rest_url": "http://[::1]:7"}}}, env={})
    assert cfg.venues.binance.spot_rest_url == "http://127.0.0.1:8123"


def test_remote_monitor_needs_the_opt_in_and_the_token():
    remote = {"mode": "paper", "monitor": {"host": "10.1.2.3", "allow_remote": True}}
    assert problems(remote, env={}) == ["monitor.token_env: environment variable ATE_MONITOR_TOKEN must be set when "
                                        "monitor.host (10.1.2.3) is not loopback"]
    assert parse_config(remote, env={"ATE_MONITOR_TOKEN": "t"}).monitor.host == "10.1.2.3"


def test_kill_file_in_a_missing_directory(tmp_path):
    assert problems({"mode": "paper", "kill_switch": {"file": str(tmp_path / "no" / "STOP")}}) == [
        f"kill_switch.file: directory {tmp_path / 'no'} does not exist, so the kill file could never be written "
        "there (relative paths are taken from the working directory)"]
    # commands that only read the store or act in an emergency do not refuse over it
    assert parse_config({"mode": "paper", "kill_switch": {"file": str(tmp_path / "no" / "STOP")}}, env={},
                        require_keys=False)


@pytest.mark.parametrize("mode", ["live", "canary"])
def test_real_money_modes_need_a_venue(mode):
    out = problems({"mode": mode, "venues": {"binance": {"enabled": False}, "backpack": {"enabled": False}},
                    "markets": {"primary": "binance:BTCUSDT"}})
    assert f"config: mode {mode} needs a trading venue: enable venues.binance or venues.backpack" in out


def test_duplicate_key_message_survives_a_real_file(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text(json.dumps({"mode": "paper"})[:-1] + ', "mode": "live"}')
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=KEYS)
    assert "duplicate key \"mode\"" in exc.value.problems[0]


def test_an_invalid_dict_key_is_named_by_its_path():
    demo = json.loads((Path(__file__).resolve().parents[2] / "configs" / "demo.json").read_text())
    demo["sim"]["accounts"][0]["balances"]["nowhere"] = {"USDT": "1"}
    out = problems(demo)
    assert out[0] == ("sim.accounts.0.balances.nowhere: invalid key: Input should be 'binance-spot', "
                      "'binance-usdm' or 'backpack'")
