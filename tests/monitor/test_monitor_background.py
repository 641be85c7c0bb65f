"""The one lifecycle behind alert delivery, the alert feed and Telegram control (monitor/background.py): one loop
however often it is started, stop cancels it and waits for it before the HTTP session closes, a second stop
is harmless; and the Bot API URL that both Telegram pieces build never shows the token."""

from __future__ import annotations

import asyncio

import pytest

from ate.model import Severity
from ate.monitor.alerts import Alert, TelegramSink
from ate.monitor.background import Background
from ate.monitor.bot_api import BotApi

TOKEN = "123456:SECRET-bot-token"


async def test_one_loop_stopped_before_its_session_closes():
    started, seen = [], []
    bg: Background

    async def loop() -> None:
        started.append(bg.session)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append(("cancelled", bg.session.closed))  # the session outlives the loop
            raise

    bg = Background("test-loop", loop, http=True, timeout_s=2.5)
    bg.start()
    bg.start()  # already running: no second loop, no second session
    await asyncio.sleep(0)
    assert bg.running and len(started) == 1
    session = started[0]
    assert session.timeout.total == 2.5
    await bg.stop()
    assert seen == [("cancelled", False)]
    assert session.closed and not bg.running
    await bg.stop()  # a second stop is harmless
    with pytest.raises(RuntimeError, match="test-loop: no HTTP session"):
        _ = bg.session


async def test_a_loop_without_http_has_no_session_and_a_loop_that_ended_stops_cleanly():
    ran = []

    async def once() -> None:
        ran.append(1)

    bg = Background("test-once", once)
    bg.start()
    await asyncio.sleep(0)
    assert ran == [1]
    with pytest.raises(RuntimeError):
        _ = bg.session
    await bg.stop()
    assert not bg.running


def test_the_bot_token_stays_in_the_url():
    api = BotApi("http://127.0.0.1:9/", TOKEN)
    assert api.url("sendMessage") == f"http://127.0.0.1:9/bot{TOKEN}/sendMessage"
    sink = TelegramSink("http://127.0.0.1:9", TOKEN, "-100")
    url, body = sink.request(Alert("kill_switch", "halted", Severity.CRITICAL, ts_ms=1))
    assert (url, body) == (api.url("sendMessage"), {"chat_id": "-100", "text": "[ate] CRITICAL kill_switch: halted"})
    assert TOKEN not in repr(api) and TOKEN not in repr(sink)
