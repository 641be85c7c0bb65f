"""Logs tell the story: `extra` fields kept as JSON keys, every retried or failed venue request logged once
with venue, endpoint, status and attempt, and the engine's log file rotated by size with a kept count."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from aiohttp import web

from ate.logs import configure_logging
from ate.model import MarketKind
from ate.venues.binance.client import BinanceClient, BinanceUrls
from ate.venues.clock import ManualClock
from ate.venues.errors import VenueUnknown
from ate.venues.ratelimit import binance_spot_limiter
from ate.venues.rest import Request


@pytest.fixture
def log_file(tmp_path):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    path = tmp_path / "ate.log"
    yield path
    for h in list(root.handlers):
        if h not in saved[0]:
            root.removeHandler(h)
            h.close()
    for h in saved[0]:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(saved[1])
    structlog.reset_defaults()


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_extra_fields_are_kept(log_file):
    configure_logging(file=log_file, stderr_level=logging.CRITICAL)
    binance_spot_limiter(ManualClock(1_000_000)).pause(42, "HTTP 429")
    [rec] = [r for r in records(log_file) if r["event"] == "venue paused"]
    assert (rec["venue"], rec["seconds"], rec["reason"], rec["until_ms"]) == ("binance_spot", 42, "HTTP 429",
                                                                              1_042_000)
    assert rec["level"] == "warning" and rec["logger"] == "ate.venues.ratelimit"


def test_log_file_rotates_by_size_and_keeps_the_configured_count(log_file):
    configure_logging(file=log_file, stderr_level=logging.CRITICAL, max_bytes=20_000, backups=2)
    log = logging.getLogger("ate.test")
    for i in range(1000):
        log.info("tick", extra={"i": i, "pad": "x" * 40})
    files = sorted(p.name for p in log_file.parent.glob("ate.log*"))
    assert files == ["ate.log", "ate.log.1", "ate.log.2"]
    for name in files:
        assert (log_file.parent / name).stat().st_size <= 20_000
    newest = records(log_file)
    assert newest[-1]["i"] == 999 and all(r["event"] == "tick" for r in newest)
    kept = len(newest) + len(records(log_file.parent / "ate.log.1")) + len(records(log_file.parent / "ate.log.2"))
    assert kept < 1000  # the oldest went with the rotation


async def test_every_retried_or_failed_request_is_logged_once_with_its_context(log_file):
    configure_logging(file=log_file, stderr_level=logging.CRITICAL)
    answers = iter([503, 502, 200, 503])

    async def handler(request: web.Request) -> web.Response:
        status = next(answers)
        body = {"serverTime": 1} if status == 200 else {"code": -1000, "msg": "Unknown error"}
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/api/v3/time", handler)
    app.router.add_post("/api/v3/userDataStream", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    client = BinanceClient(MarketKind.SPOT, BinanceUrls(url, url), clock=ManualClock(60_000, auto_advance=True))
    assert await client.server_time_ms() == 1  # two 5xx retried, then answered
    with pytest.raises(VenueUnknown):  # not idempotent: one attempt, failed
        await client.rest.request(Request("POST", "/api/v3/userDataStream", idempotent=False))
    await client.close()
    await runner.cleanup()
    lines = [(r["event"], r["venue"], r["method"], r["endpoint"], r["status"], r["attempt"])
             for r in records(log_file) if r["event"].startswith("request")]
    assert lines == [("request retried", "binance", "GET", "/api/v3/time", 503, 1),
                     ("request retried", "binance", "GET", "/api/v3/time", 502, 2),
                     ("request failed", "binance", "POST", "/api/v3/userDataStream", 503, 1)]
