"""`ate simulate`: prints one `<venue> <rest|ws> <url>` line per endpoint, serves, exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sim_core_support import KEY, ROOT, SECRET, START_MS

DEMO = ROOT / "configs" / "demo.json"


@pytest.mark.skipif(not DEMO.exists(), reason="configs/demo.json absent")
def test_simulate_prints_endpoints_serves_and_exits_zero_on_sigterm(tmp_path: Path):
    cfg = json.loads(DEMO.read_text())
    cfg["sim"] = {"speed": 0, "start_ms": START_MS,
                  "accounts": [{"id": "t", "binance_api_key": KEY, "binance_api_secret": SECRET}],
                  "markets": [{"venue": "binance-spot", "symbol": "BTCUSDT",
                               "data": "data/binance_spot_BTCUSDT_1m_2025-06-01_2025-07-01.csv.gz"}]}
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(cfg))
    exe = Path(sys.executable).with_name("ate")
    proc = subprocess.Popen([str(exe), "simulate", "--config", str(path), "--seed", "3"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = [proc.stdout.readline().strip() for _ in range(2)]
        assert [ln.split()[:2] for ln in lines] == [["binance-spot", "rest"], ["binance-spot", "ws"]], \
            proc.stderr.read() if proc.poll() is not None else lines
        rest = lines[0].split()[2]
        assert rest.startswith("http://127.0.0.1:") and lines[1].split()[2] == rest.replace("http", "ws")
        with urllib.request.urlopen(rest + "/api/v3/time", timeout=5) as r:
            assert json.loads(r.read())["serverTime"] >= START_MS
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_simulate_without_sim_section_exits_2(tmp_path: Path):
    if not DEMO.exists():
        pytest.skip("configs/demo.json absent")
    cfg = json.loads(DEMO.read_text())
    cfg.pop("sim", None)
    for venue in cfg.get("venues", {}).values():
        if isinstance(venue, dict):
            venue["simulated"] = False
    path = tmp_path / "nosim.json"
    path.write_text(json.dumps(cfg))
    path.chmod(0o600)  # the demo's inline keys are only accepted from an owner-only file
    exe = Path(sys.executable).with_name("ate")
    done = subprocess.run([str(exe), "simulate", "--config", str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "sim" in done.stderr
