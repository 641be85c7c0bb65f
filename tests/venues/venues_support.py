"""Small real HTTP/WebSocket servers on 127.0.0.1 (port 0) that speak just enough Binance/Backpack
to exercise the adapters' transport logic: signing checks, weights, 429s, timeouts and reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from ate.venues.binance.signing import hmac_signature

API_KEY = "test-api-key-0001"
SECRET = "planted-secret-DO-NOT-LEAK-7f3a9c"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeVenue:
    """Routes are plain aiohttp handlers; every request is recorded as (method, path, query, body)."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[tuple[str, str, dict, str]] = []
        self.hang = asyncio.Event()  # never set: handlers awaiting it simulate a venue that does not answer
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.server: TestServer | None = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def json(self, method: str, path: str, payload: object, status: int = 200, headers: dict | None = None) -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(payload, status=status, headers=headers)
        self.route(method, path, handler)

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.seen if (m, p) == (method, path))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.seen.append((request.method, request.path, dict(request.query), body))
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"code": -1, "msg": f"no route {request.path}"}, status=404)
        return await handler(request)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


def binance_signature_ok(request: web.Request, body: str) -> bool:
    query = request.query_string
    payload, _, signature = query.rpartition("&signature=")
    return request.headers.get("X-MBX-APIKEY") == API_KEY and hmac_signature(SECRET, payload + body) == signature
