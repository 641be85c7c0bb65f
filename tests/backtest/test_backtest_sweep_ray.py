"""`ate sweep --ray-address` on a real Ray cluster: a head node started by the test on 127.0.0.1 (`ray start
--head`, 2 CPUs), the sweep run by the real CLI in its own process, results equal to the process pool's.

Skips cleanly when Ray is not installed (it is an optional extra; `.[dev]` installs it)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "binance_spot_BTCUSDT_1h.csv.gz"
RAY = Path(sys.executable).with_name("ray")
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    # Workers import ate from wherever the test runs it (an editable install, or PYTHONPATH=src).
    src = str(ROOT / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src,
            "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture()
def ray_head():
    # One Ray head on this machine at a time: `ray stop` stops every local cluster of the user, and a second
    # head would contend for Ray's fixed default ports (two test runs side by side on one machine).
    lock = open("/tmp/ate-ray-test.lock", "a+b")  # noqa: SIM115 - held for the fixture's lifetime
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield from _head()
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _head():
    # A short temp dir: Ray's unix socket paths must stay under 108 bytes.
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    port = _free_port()
    cmd = [str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
           "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", tmp]
    subprocess.run(cmd, check=True, env=_env(), cwd=ROOT, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=_env(), capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def _sweep(cfg: Path, grid: Path, *extra: str) -> list[dict]:
    args = [sys.executable, "-c", "from ate.cli import main; main()", "sweep", "--config", str(cfg),
            "--grid", str(grid), "--from", "2024-01-01", "--to", "2024-01-15", "--data",
            f"binance:BTCUSDT={DATA}", "--rank-by", "total_return", "--json", *extra]
    r = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return sorted(json.loads(r.stdout), key=lambda x: x["index"])


def test_sweep_on_a_ray_cluster_equals_the_process_pool(ray_head, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"mode": "backtest", "run_id": "ray"}))
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"modules.combiner.min_confidence": [0.1, 0.6],
                                "strategies.directional.stop_atr": [1.0, 3.0]}))
    on_ray = _sweep(cfg, grid, "--ray-address", ray_head)
    local = _sweep(cfg, grid, "--workers", "2")
    assert len(on_ray) == 4
    assert on_ray == local
    # the grid changed the runs: not four copies of one backtest
    assert len({r["final_equity"] for r in on_ray}) == 4 and len({r["trades"] for r in on_ray}) > 1
