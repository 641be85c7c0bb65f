import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app
from ate.config import ConfigError, EngineConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
KEYS = {"ATE_BINANCE_API_KEY": "k", "ATE_BINANCE_API_SECRET": "s", "ATE_BACKPACK_API_KEY": "k",
        "ATE_BACKPACK_API_SECRET": "s"}


def problems(data: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, env=KEYS if env is None else env)
    return exc.value.problems


@pytest.mark.parametrize("name", ["config.example.json", "configs/shadow.json", "configs/canary.json",
                                  "configs/demo.json"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(ROOT / name, env=KEYS)
    assert isinstance(cfg, EngineConfig)


def test_defaults_follow_the_operator_plan_choices():
    cfg = parse_config({"mode": "paper"}, env={})
    assert cfg.risk_limits.max_order_pct_of_capital == 0.25
    assert cfg.risk_limits.max_price_deviation_pct == 0.10
    assert cfg.risk_limits.max_daily_loss_pct == 0.03
    assert (cfg.canary.initial_capital, cfg.canary.max_position_size, cfg.canary.daily_loss_limit) == (1000, 0.02, 30)
    assert [s.capital for s in cfg.capital_stages.stages] == [1000, 3000, 5000, 10000, 25000, 50000]
    assert cfg.monitor.host == "127.0.0.1" and cfg.monitor.port == 8080
    assert cfg.store.url == "sqlite:///state/ate.db"


def test_unknown_keys_are_named():
    assert problems({"mode": "paper", "risk_limits": {"max_daily_loss": 0.1}, "colour": 1}) == [
        "risk_limits.max_daily_loss: unknown key", "colour: unknown key"]


def test_wrong_types_and_bad_enums():
    out = problems({"mode": "yolo", "monitor": {"port": "eighty"}})
    assert out[0].startswith("mode: Input should be 'backtest', 'paper', 'shadow', 'canary' or 'live'")
    assert out[1].startswith("monitor.port: Input should be a valid integer")


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("risk_limits", "max_position_size_usd", -5, "risk_limits.max_position_size_usd: Input should be greater than 0"),
    ("risk_limits", "max_daily_loss_pct", 1.5, "risk_limits.max_daily_loss_pct: Input should be less than or equal to 0.25"),
    ("canary", "daily_loss_limit", 0, "canary.daily_loss_limit: Input should be greater than 0"),
    ("monitor", "port", 70000, "monitor.port: Input should be less than or equal to 65535"),
])
def test_out_of_range_limits(section, key, value, expected):
    assert problems({"mode": "paper", section: {key: value}}) == [expected]


def test_contradicting_limits():
    assert problems({"mode": "paper", "risk_limits": {"max_daily_loss_pct": 0.2, "emergency_stop_loss_pct": 0.1}}) == [
        "risk_limits: max_daily_loss_pct (0.2) must not exceed emergency_stop_loss_pct (0.1)"]
    assert problems({"mode": "paper", "canary": {"initial_capital": 100, "daily_loss_limit": 150}}) == [
        "canary: daily_loss_limit (150.0) must be at most 10% of initial_capital (100.0)"]


@pytest.mark.parametrize("mode", ["shadow", "canary", "live"])
def test_modes_that_need_keys_name_the_unset_variables(mode):
    out = problems({"mode": mode}, env={"ATE_BINANCE_API_KEY": "k"})
    assert out == [
        f"venues.binance.api_secret_env: environment variable ATE_BINANCE_API_SECRET is not set (required in {mode} mode)",
        f"venues.backpack.api_key_env: environment variable ATE_BACKPACK_API_KEY is not set (required in {mode} mode)",
        f"venues.backpack.api_secret_env: environment variable ATE_BACKPACK_API_SECRET is not set (required in {mode} mode)",
    ]
    assert parse_config({"mode": "paper"}, env={}).mode.value == "paper"


def test_inline_keys_need_an_owner_only_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"mode": "paper", "venues": {"binance": {"api_key": "k", "api_secret": "s"}}}))
    path.chmod(0o644)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert exc.value.problems == ["venues.binance.api_key: inline keys are only allowed in a file with mode 0600 "
                                  "(use the environment variable named by api_key_env instead)"]
    path.chmod(0o600)
    assert load_config(path, env={}).venues.binance.api_key.get_secret_value() == "k"


def test_inline_keys_for_a_simulator_on_any_loopback_address_need_no_private_file(tmp_path):
    path = tmp_path / "c.json"
    urls = {"spot_rest_url": "http://127.0.0.2:9", "spot_ws_url": "ws://127.0.0.2:9", "usdm_rest_url": "http://[::1]:9",
            "usdm_ws_url": "ws://localhost:9", "spot_ws_api_url": "ws://127.0.0.3:9"}
    path.write_text(json.dumps({"mode": "paper", "venues": {"binance": {"api_key": "k", "api_secret": "s", **urls}}}))
    path.chmod(0o644)
    assert load_config(path, env={}).venues.binance.api_key.get_secret_value() == "k"


def test_cli_validate_ok_and_rejections(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"mode": "paper"}))
    res = runner.invoke(app, ["config", "validate", str(good)])
    assert res.exit_code == 0 and res.stdout.strip() == "ok"
    bad = tmp_path / "bad.json"
    bad.write_text('{"mode": "paper",, }')
    res = runner.invoke(app, ["config", "validate", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.strip() == f"config: malformed JSON in {bad} at line 1 column 18: Expecting property name enclosed in double quotes"
    res = runner.invoke(app, ["config", "validate", str(tmp_path / "missing.json")])
    assert res.exit_code == 2
    assert res.stderr.startswith(f"config: cannot read {tmp_path / 'missing.json'}: No such file or directory")


def test_validate_in_a_real_process_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mode": "live", "risk_limits": {"max_single_trade_pct": "lots"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATE_")}
    proc = subprocess.run([sys.executable, "-m", "ate.cli", "config", "validate", str(bad)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("risk_limits.max_single_trade_pct: Input should be a valid number")


def test_schema_command_prints_the_json_schema():
    res = runner.invoke(app, ["config", "schema"])
    schema = json.loads(res.stdout)
    assert res.exit_code == 0
    assert {"mode", "venues", "risk_limits", "canary", "modules", "strategies", "store", "monitor"} <= set(
        schema["properties"])
