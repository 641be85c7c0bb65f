"""`ate dashboard --config PATH`: a read-only API and dashboard over the store, as a real process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from monitor_harness import TOKEN, record_history

from ate.store import Store

ATE = Path(sys.executable).with_name("ate")


def fetch(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_dashboard_serves_store_read_only(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/ate.db")
    record_history(store, shadow=True)  # a paper config reads the hypothetical book
    store.close()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"mode": "paper", "store": {"url": f"sqlite:///{tmp_path}/ate.db"},
                               "monitor": {"port": 0, "token_env": "ATE_CLI_TEST_TOKEN"}}))
    proc = subprocess.Popen([str(ATE), "dashboard", "--config", str(cfg)], stderr=subprocess.PIPE, text=True,
                            env={"ATE_CLI_TEST_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    try:
        line = proc.stderr.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", line).group(1)
        status, metrics = fetch(url + "/api/metrics")
        assert status == 200 and metrics["system_health"]["source"] == "store"
        assert len(metrics["current_positions"]) == 2
        status, body = fetch(url + "/readyz")
        assert status == 503
        status, body = fetch(url + "/api/kill", b"{}", {"Authorization": f"Bearer {TOKEN}",
                                                         "Content-Type": "application/json"})
        assert status == 409 and "read-only" in body["detail"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dashboard_rejects_invalid_config(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"mode": "paper", "monitor": {"port": 70000}}))
    res = subprocess.run([str(ATE), "dashboard", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "monitor.port" in res.stderr
