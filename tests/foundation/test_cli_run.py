"""`ate run` on the demo config: starts the simulator and the engine for real, and exits 0 on Ctrl-C."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ate.store import Store

ROOT = Path(__file__).resolve().parents[2]


def migrated(db: Path) -> bool:
    """The engine's schema is complete. Opening a Store earlier would run the same migration concurrently,
    and SQLite's DDL is not transactional under pysqlite ("table orders already exists")."""
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    except sqlite3.Error:
        return False


def test_run_demo_starts_and_stops_cleanly_on_ctrl_c(tmp_path):
    cfg = json.loads((ROOT / "configs" / "demo.json").read_text())
    cfg["store"] = {"url": f"sqlite:///{tmp_path}/demo.db"}
    cfg["monitor"] = {"port": 0}
    cfg["kill_switch"] = {"file": str(tmp_path / "EMERGENCY_STOP")}
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATE_")}
    proc = subprocess.Popen([sys.executable, "-m", "ate.cli", "run", "--config", str(path), "--quiet"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = None
    try:
        deadline = time.monotonic() + 120  # a bound for a loaded machine, not a timing assertion
        while time.monotonic() < deadline and proc.poll() is None:
            if migrated(tmp_path / "demo.db"):  # not while the engine creates the tables: see migrated()
                store = store or Store(f"sqlite:///{tmp_path}/demo.db")
                if store.events(kind="engine_started"):
                    break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert store is not None
    started = store.events(kind="engine_started")[0]
    stopped = store.events(kind="engine_stopped")[0]
    assert started.message == "engine started in shadow mode"
    assert stopped.ts_ms >= started.ts_ms
