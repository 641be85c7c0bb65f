"""`ate simulate` at speed 60 in one process and an unmodified `ate run` in another, as the README shows:
`ate check` passes with no clock-skew warning, the engine starts and trades on both venues.

The only change to configs/simulate.json is test plumbing (port 0 with the endpoints file, a temporary
store) and an arbitrage without thresholds, so that it trades within seconds on the real spread."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOUND_S = 120  # a bound for a loaded machine, not a timing assertion


def _wait_for(what: str, ready, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        if ready():
            return
        assert proc.poll() is None, f"{what}: the process exited: {proc.stderr.read()}"
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {BOUND_S} s")


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def _venues_traded(db: Path) -> set[str]:
    if not db.exists():
        return set()
    with sqlite3.connect(db) as c:
        try:
            return {v for (v,) in c.execute("SELECT DISTINCT venue FROM fills")}
        except sqlite3.OperationalError:  # the schema is not there yet
            return set()


def test_ate_run_against_a_separately_started_ate_simulate_checks_clean_and_trades_on_both_venues(tmp_path):
    shipped = json.loads((ROOT / "configs" / "simulate.json").read_text())
    assert shipped["mode"] == "live" and shipped["sim"]["clock"] == "wall" and shipped["sim"]["speed"] == 60
    sim_cfg = {**shipped, "sim": {**shipped["sim"], "port_base": 0}}
    (tmp_path / "sim.json").write_text(json.dumps(sim_cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATE_")} | {"COLUMNS": "200"}
    endpoints_file = tmp_path / "endpoints.json"
    sim = subprocess.Popen([sys.executable, "-m", "ate.cli", "simulate", "--config", str(tmp_path / "sim.json"),
                            "--endpoints-file", str(endpoints_file)], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = None
    try:
        _wait_for("ate simulate listening", endpoints_file.exists, sim)
        ep = json.loads(endpoints_file.read_text())
        cfg = json.loads(json.dumps(shipped))
        cfg["venues"]["binance"].update({
            "spot_rest_url": ep["binance-spot"]["rest"], "spot_ws_url": ep["binance-spot"]["ws"],
            "spot_ws_api_url": ep["binance-spot"]["ws"] + "/ws-api/v3",
            "usdm_rest_url": ep["binance-usdm"]["rest"], "usdm_ws_url": ep["binance-usdm"]["ws"]})
        cfg["venues"]["backpack"].update({"rest_url": ep["backpack"]["rest"], "ws_url": ep["backpack"]["ws"]})
        cfg["venues"]["deribit"]["rest_url"] = ep["deribit"]["rest"]
        cfg["store"] = {"url": f"sqlite:///{tmp_path / 'run.db'}"}
        cfg["kill_switch"] = {"file": str(tmp_path / "EMERGENCY_STOP")}
        cfg["monitor"] = {"port": 0}
        cfg["strategies"]["arbitrage"].update(net_threshold_bps=0, fee_a_bps=0, fee_b_bps=0, slippage_buffer_bps=0)
        (tmp_path / "run.json").write_text(json.dumps(cfg))

        check = subprocess.run([sys.executable, "-m", "ate.cli", "check", "--config", str(tmp_path / "run.json")],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BOUND_S)
        assert check.returncode == 0, check.stdout + check.stderr
        skew = [line for line in check.stdout.splitlines() if "clock skew" in line]
        assert len(skew) == 3 and all("│ ok " in line for line in skew), check.stdout  # both Binance faces, Backpack

        run = subprocess.Popen([sys.executable, "-m", "ate.cli", "run", "--config", str(tmp_path / "run.json"),
                                "--quiet"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        _wait_for("fills on both venues", lambda: _venues_traded(tmp_path / "run.db") >= {"binance", "backpack"}, run)
        code, err = _stop(run)
        assert code == 0 and "Traceback" not in err, err
    finally:
        if run is not None:
            _stop(run)
        code, err = _stop(sim)
    assert code == 0 and "Traceback" not in err, err
    with sqlite3.connect(tmp_path / "run.db") as c:
        started = c.execute("SELECT message FROM events WHERE kind = 'engine_started'").fetchall()
        skews = c.execute("SELECT message FROM events WHERE message LIKE '%clock%'").fetchall()
    assert started == [("engine started in live mode",)] and skews == []
