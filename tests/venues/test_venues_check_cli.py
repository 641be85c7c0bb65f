"""`ate check` exits non-zero when a venue cannot be reached, printing the table."""

import json

from typer.testing import CliRunner

from ate.cli import app


def test_check_fails_for_unreachable_venues(tmp_path):
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    cfg = {"mode": "paper", "venues": {
        "binance": {"spot_rest_url": dead, "usdm_rest_url": dead},
        "backpack": {"rest_url": dead}, "deribit": {"rest_url": dead}}}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 1, result.output
    for venue in ("binance", "binance_usdm", "backpack", "deribit"):
        assert venue in result.output
    assert result.output.count("FAIL") == 4


def test_check_rejects_invalid_config(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"venues": {"binance": {"recv_window_ms": 70000}}}))
    result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert "recv_window_ms" in result.output
