"""The operator API authenticates first: failed attempts are limited per client address and never lock out the
right token; control bodies are capped while they stream in, so a 20 MB body is never read."""

from __future__ import annotations

import asyncio

import aiohttp
from monitor_harness import TOKEN, monitor_config

from ate.monitor.api import MAX_CONTROL_BODY, FailureLimiter
from ate.monitor.server import start_monitor

TWENTY_MB = 20 * 1024 * 1024


async def post(url: str, token: str | None, *, local: str = "127.0.0.1", **kw) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    connector = aiohttp.TCPConnector(local_addr=(local, 0))
    async with aiohttp.ClientSession(connector=connector) as s, s.post(url, headers=headers, **kw) as r:
        return r.status


async def test_100_bad_tokens_never_block_the_good_one(engine_view, store):
    view, *_ = engine_view
    handle = await start_monitor(view, monitor_config(failed_auth_per_minute=10), env={"ATE_TEST_MONITOR_TOKEN": TOKEN})
    try:
        kill, resume = handle.url + "/api/kill", handle.url + "/api/resume"
        bad = [await post(kill, f"guess-{i}") for i in range(100)]
        assert bad[:10] == [401] * 10 and bad[10:] == [429] * 90  # limited per address after 10 failures
        # the operator, from the very same address, in the middle of the flood
        assert await post(kill, TOKEN, json={"reason": "flood"}) == 200
        assert [await post(kill, "still-guessing") for _ in range(3)] == [429] * 3
        assert await post(resume, TOKEN) == 200
        # another address has its own budget: it is not refused because this one guessed
        assert await post(kill, "other", local="127.0.0.2") == 401
        audited = [e.data["outcome"] for e in store.events(kind="audit", limit=500)]
        assert audited.count("refused: wrong token") == 11  # 10 + the other address; the throttled are not stored
        assert audited.count("done") == 2
    finally:
        await handle.stop()


def test_failure_limiter_is_per_address_and_bounded():
    now = [0.0]
    limiter = FailureLimiter(2, clock=lambda: now[0], max_addresses=3)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b") and limiter.allow("b") and not limiter.allow("b")
    now[0] += 30  # 2 per minute: one back after 30 s
    assert limiter.allow("b") and not limiter.allow("b")
    small = FailureLimiter(1, clock=lambda: 0.0, max_addresses=2)
    assert small.allow("a") and not small.allow("a")
    small.allow("b")
    small.allow("c")  # the table holds 2: "a", seen least recently, is forgotten (memory stays bounded)
    assert small.allow("a") and not small.allow("c")


async def _raw(handle, request: bytes, body_part: bytes) -> bytes:
    """Send the head and only the first part of a body; the answer must come without the rest."""
    reader, writer = await asyncio.open_connection(handle.host, handle.port)
    try:
        writer.write(request + body_part)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)  # a bound, not a timing assertion
    finally:
        writer.close()


async def test_a_20_mb_body_is_never_read(engine_view):
    view, *_ = engine_view
    handle = await start_monitor(view, monitor_config(), env={"ATE_TEST_MONITOR_TOKEN": TOKEN})
    head = (f"POST /api/kill HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\n").encode()
    try:
        # declared: refused on the header, having read none of it
        answer = await _raw(handle, head + f"Content-Length: {TWENTY_MB}\r\n\r\n".encode(), b"{" + b" " * 65536)
        assert answer.startswith(b"HTTP/1.1 413")
        # chunked, no declared length: refused once the cap is passed, the other 19.9 MB never sent
        chunk = b" " * 8192
        answer = await _raw(handle, head + b"Transfer-Encoding: chunked\r\n\r\n",
                            b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2)))
        assert answer.startswith(b"HTTP/1.1 413")
        # without the token the body is not even looked at
        anon = head.replace(f"Authorization: Bearer {TOKEN}\r\n".encode(), b"")
        answer = await _raw(handle, anon + f"Content-Length: {TWENTY_MB}\r\n\r\n".encode(), b"{")
        assert answer.startswith(b"HTTP/1.1 401")
        # a body within the cap still works
        assert await post(handle.url + "/api/kill", TOKEN, json={"reason": "x" * 200}) == 200
        assert MAX_CONTROL_BODY == 4096
    finally:
        await handle.stop()
