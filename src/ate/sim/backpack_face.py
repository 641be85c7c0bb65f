"""The simulated Backpack exchange: REST `/api/v1`, `/wapi/v1` and the WebSocket at `/` on one loopback port.

Plugs into the simulator runner (``ate.sim.runner``) as a face: ``await face.start(ctx)`` binds the
port and returns the REST and WS endpoints, ``await face.stop()`` shuts it down. Requests are
authenticated against the accounts' base64 Ed25519 public keys (``sim.accounts[].backpack_public_key``)
with the adapter's own signing code (``ate.venues.backpack.signing``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal

from aiohttp import web

from ate.sim import backpack_wire as wire
from ate.sim.backpack_auth import BackpackError, authenticate, invalid_request
from ate.sim.backpack_feed import BackpackFeed
from ate.sim.backpack_rest import HISTORY_MARKET_DATA, ROUTES, BackpackRest, Reply
from ate.sim.backpack_ws import BackpackStreams
from ate.sim.faults import Faults, ordered_reply
from ate.sim.runner import Endpoint, SimContext


class RateLimiter:
    """Sliding one-minute window per key (Backpack limits per subaccount; public calls per client IP)."""

    def __init__(self, per_minute: int, wall: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._wall = wall
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = self._wall()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - 60.0:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return False
        hits.append(now)
        return True


def _json_response(reply: Reply) -> web.Response:
    if reply.status == 204:
        return web.Response(status=204, headers=reply.headers)
    if reply.text:
        return web.Response(status=reply.status, text=str(reply.body), content_type="text/plain",
                            headers=reply.headers)
    return web.Response(status=reply.status, text=json.dumps(reply.body, separators=(",", ":")),
                        content_type="application/json", headers=reply.headers)


def _error_response(exc: BackpackError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status)


def _immediate(params: object) -> bool:
    """A new order that executes at once or never (market, IOC, FOK): its fills race its reply."""
    return isinstance(params, Mapping) and (str(params.get("orderType")) == "Market"
                                            or str(params.get("timeInForce")) in ("IOC", "FOK"))


def _query(request: web.Request) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in request.query:
        values = request.query.getall(key)
        out[key] = values if len(values) > 1 else values[0]
    return out


class BackpackFace:
    """One simulated Backpack venue over the core's markets of venue ``backpack``.

    Limits and keep-alive timings default to Backpack's; tests shrink them. ``wall`` is the
    rate limiter's time source (seconds).
    """

    venue = wire.VENUE

    def __init__(
        self,
        *,
        requests_per_minute: int = 2000,
        history_requests_per_minute: int = 30,
        ws_ping_interval_s: float = 60.0,
        ws_pong_timeout_s: float = 120.0,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = RateLimiter(requests_per_minute, wall)
        self._history_limit = RateLimiter(history_requests_per_minute, wall)
        self._ws_timing = (ws_ping_interval_s, ws_pong_timeout_s)
        self._runner: web.AppRunner | None = None
        self._detach: list[Callable[[], None]] = []

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, ctx: SimContext) -> list[Endpoint]:
        self.clock = ctx.clock
        self.faults: Faults = ctx.faults
        # API key (base64 Ed25519 public key) -> account id
        self.keys = {a.backpack_public_key: a.id for a in ctx.config.accounts if a.backpack_public_key}
        self.rest = BackpackRest(ctx.core, self, ctx.replayer.funding_history)
        self.streams = BackpackStreams(self.keys, lambda: [m.symbol for m in self.rest.markets()], self.now_ms,
                                       lambda account, stream: self.feed.on_subscribe(account, stream),
                                       ping_interval_s=self._ws_timing[0], pong_timeout_s=self._ws_timing[1],
                                       faults=self.faults)
        self.feed = BackpackFeed(self.rest, self.streams, lambda: self.now_ms() * 1000, self.faults)
        self._detach = self.feed.attach()
        app = web.Application()
        app.router.add_get("/", self.streams.handle)
        app.router.add_route("*", "/api/v1/{tail:.*}", self._handle)
        app.router.add_route("*", "/wapi/v1/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, ctx.host, ctx.port()).start()
        host, port = self._runner.addresses[0][:2]
        return [Endpoint(self.venue, "rest", f"http://{host}:{port}"), Endpoint(self.venue, "ws", f"ws://{host}:{port}")]

    async def stop(self) -> None:
        for detach in self._detach:
            detach()
        self._detach = []
        if self._runner is not None:
            await self.streams.close_all()
            await self._runner.cleanup()
            self._runner = None

    def now_ms(self) -> int:
        """Venue time: the simulated clock plus any injected skew (served by /time and checked against)."""
        return self.clock.now_ms() + self.faults.skew_ms

    # -- REST -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        handler = ROUTES.get((request.method, path))
        if handler is None:
            return _error_response(BackpackError(404, "RESOURCE_NOT_FOUND", "Not found"))
        try:
            return await self._dispatch(request, path, handler)
        except BackpackError as exc:
            return _error_response(exc)

    async def _dispatch(self, request: web.Request, path: str, handler: Callable) -> web.StreamResponse:
        if self.faults.maintenance(self.venue):
            raise BackpackError(503, "MAINTENANCE", "Exchange is under maintenance")
        query = _query(request)
        body: object = None
        if request.method != "GET" and request.can_read_body:
            text = await request.text()
            if text:
                try:
                    body = json.loads(text, parse_float=Decimal)
                except ValueError:
                    raise invalid_request("Invalid JSON body") from None
        # aiohttp's headers are case-insensitive, as HTTP header names are
        account = authenticate(request.method, path, query, body, request.headers, self.keys, self.now_ms())
        client = account or f"ip:{request.remote}"
        if not self._limit.allow(client) or (path in HISTORY_MARKET_DATA and not self._history_limit.allow(client)):
            raise BackpackError(429, "TOO_MANY_REQUESTS", "Too many requests")
        if self.faults.rate_limited(self.venue) is not None:  # Backpack documents no Retry-After
            raise BackpackError(429, "TOO_MANY_REQUESTS", "Too many requests")
        params = body if body is not None else query
        mutates = request.method != "GET"
        fault = self.faults.http_fault(self.venue)
        if fault is not None and not mutates:
            return await self._http_fault(fault)
        await self.faults.delay()
        new_order = path == "/api/v1/order" and request.method == "POST"
        if new_order and self.faults.reject_order(self.venue):
            raise BackpackError(400, "INVALID_ORDER", "Order rejected")
        if path == "/api/v1/order" and request.method == "DELETE" and self.faults.cancel_202(self.venue):
            return self._deferred_cancel(params, account)
        ordering = self.faults.ioc_order(self.venue) if new_order and account and _immediate(params) else None
        if ordering == "rest_first":
            self.streams.hold(account)
        try:
            response = _json_response(handler(self.rest, params, account))
            if fault is not None:
                # A failed answer to a request that acted is the worst case: the venue did it, the client can't know.
                response = await self._http_fault(fault)
            if ordering is not None:
                await ordered_reply(ordering, self.streams, account, request, response, self.faults.ioc_gap_s)
            return response
        finally:
            if ordering == "rest_first":
                self.streams.release(account)

    async def _http_fault(self, fault: str) -> web.Response:
        if fault == "timeout":
            await asyncio.sleep(self.faults.spec.timeout_ms / 1000)
            return _error_response(BackpackError(504, "TIMEOUT", "Request timed out"))
        return _error_response(BackpackError(503, "SERVER_ERROR", "Service unavailable"))

    def _deferred_cancel(self, params: object, account: str | None) -> web.Response:
        """202: the cancel is accepted but runs after the answer; the body shows the order as it stands."""
        if not isinstance(params, Mapping) or account is None:
            raise invalid_request("Invalid cancel request")
        order = self.rest.resting(account, params)
        snapshot = wire.order_json(order)

        def later() -> None:
            try:
                self.rest.cancel(account, params)
            except BackpackError:
                pass  # filled or cancelled meanwhile: exactly the race a 202 leaves open

        asyncio.get_running_loop().call_soon(later)
        return _json_response(Reply(snapshot, status=202))
