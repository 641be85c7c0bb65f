"""Operator HTTP API and dashboard (FastAPI): read endpoints, probes, Prometheus, token-guarded controls."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ate.model import EngineEvent, Severity
from ate.monitor.prom import Exposition
from ate.monitor.view import ControlRefused, EngineView

STATIC = files("ate.monitor") / "static"
SWAGGER = "/static/vendor/swagger-ui"
Limit = Annotated[int, Query(ge=1, le=1000)]
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


class ControlBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("operator request", min_length=1, max_length=200)


class ControlResult(BaseModel):
    ok: bool
    action: str
    trading_state: dict


class RateLimiter:
    """Token bucket: `per_minute` requests per minute, bursting up to the same number."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.clock = clock
        self.last = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class FailureLimiter:
    """Failed authentications per client address, each address with its own bucket: one address guessing
    never slows another, and a request with the right token never consults it."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_addresses: int = 4096) -> None:
        self.per_minute, self.clock, self.max_addresses = per_minute, clock, max_addresses
        self._buckets: OrderedDict[str, RateLimiter] = OrderedDict()

    def allow(self, address: str) -> bool:
        bucket = self._buckets.pop(address, None) or RateLimiter(self.per_minute, self.clock)
        self._buckets[address] = bucket  # most recent last; the least recent goes when the table is full
        if len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return bucket.allow()


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and abandoned as soon as it exceeds ``limit`` (a declared length over the
    limit is refused before reading anything): a 20 MB body costs the server a few kilobytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


MAX_CONTROL_BODY = 4096  # a reason of 200 characters fits many times over


@dataclass(slots=True)
class ApiSettings:
    token: str | None  # None disables the control endpoints
    token_env: str
    control_per_minute: int = 6
    failed_auth_per_minute: int = 10
    stream_interval_s: float = 2.0
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)


async def dashboard_payload(view: EngineView) -> dict:
    metrics, orders, events, equity, signals, trades, prices = await asyncio.gather(
        view.metrics_snapshot(), view.orders(open_only=True, limit=50), view.events(limit=30), view.equity(),
        view.signals(), view.trades(limit=100), view.prices())
    return {"metrics": metrics, "orders": orders, "events": events, "equity": equity, "signals": signals,
            "trades": trades, "prices": prices}


def create_app(view: EngineView, settings: ApiSettings, shutdown: asyncio.Event | None = None) -> FastAPI:
    app = FastAPI(title="ate operator API", version="1", docs_url=None, redoc_url=None)
    limiter = RateLimiter(settings.control_per_minute)  # authenticated control requests, all callers together
    failures = FailureLimiter(settings.failed_auth_per_minute)
    exposition = Exposition()
    stopping = shutdown or asyncio.Event()
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", response_class=HTMLResponse, summary="Operator dashboard")
    async def dashboard() -> HTMLResponse:
        # Everything the page needs is served from here; the policy makes that a guarantee.
        return HTMLResponse((STATIC / "index.html").read_text(),
                            headers={"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Swagger UI vendored from npm (static/vendor/swagger-ui): the docs work without internet.
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ate operator API",
                                   swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png")

    @app.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz", summary="Readiness: data fresh, venues reachable, reconciliation done (503 otherwise)")
    async def readyz() -> JSONResponse:
        ready, reasons = await view.readiness()
        return JSONResponse({"ready": ready, "reasons": reasons}, status_code=200 if ready else 503)

    @app.get("/api/status", summary="Start-up phase (and the venue bans it waits out), health, readiness")
    async def status() -> dict:
        return await view.status()

    @app.get("/api/metrics", summary="system_health, strategy_performance, current_positions")
    async def metrics() -> dict:
        return await view.metrics_snapshot()

    @app.get("/api/orders")
    async def orders(open_only: bool = False, limit: Limit = 100) -> list[dict]:
        return await view.orders(open_only=open_only, limit=limit)

    @app.get("/api/trades", summary="Fills, newest first")
    async def trades(limit: Limit = 100) -> list[dict]:
        return await view.trades(limit=limit)

    @app.get("/api/events")
    async def events(limit: Limit = 100, kind: Annotated[str | None, Query(max_length=48)] = None) -> list[dict]:
        return await view.events(limit=limit, kind=kind)

    @app.get("/api/signals", summary="Latest output of each signal module")
    async def signals() -> dict:
        return await view.signals()

    @app.get("/api/dashboard", summary="Everything the dashboard shows, once")
    async def dashboard_once() -> dict:
        return await dashboard_payload(view)

    # Infinite by design, so kept out of the schema (schema-driven clients would never finish reading it).
    @app.get("/api/stream", include_in_schema=False)
    async def stream(request: Request) -> StreamingResponse:
        async def frames() -> AsyncIterator[str]:
            while not stopping.is_set() and not await request.is_disconnected():
                yield f"data: {json.dumps(await dashboard_payload(view))}\n\n"
                try:
                    await asyncio.wait_for(stopping.wait(), settings.stream_interval_s)
                except TimeoutError:
                    pass
        return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/metrics", summary="Prometheus text exposition", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        body = exposition.render(await view.metrics_snapshot())
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def control(request: Request, action: str, creds: HTTPAuthorizationCredentials | None,
                      run: Callable[[str, str], Awaitable[None]]) -> ControlResult:
        # Token first, then the rate limits, then the body. A caller without the right token is limited per
        # address (its flood never reaches the operator's bucket, and stops being audited one by one); the
        # right token is only limited by the bucket of authenticated requests; the body is read last, capped.
        client = request.client.host if request.client else "unknown"
        who = f"operator@{client}"
        reason = ""

        async def audit(outcome: str, status: int) -> None:
            await view.record_event(EngineEvent(
                settings.clock_ms(), "audit", f"{action} {outcome}",
                Severity.WARNING if status >= 400 or action == "kill" else Severity.INFO,
                {"action": action, "outcome": outcome, "status": status, "who": who, "reason": reason}))

        given = creds.credentials if creds is not None else None
        valid = (settings.token is not None and given is not None
                 and hmac.compare_digest(given.encode(), settings.token.encode()))
        if not valid and not failures.allow(client):
            raise HTTPException(429, "too many failed attempts from this address", headers={"Retry-After": "10"})
        if settings.token is None:
            await audit("refused: control disabled", 403)
            raise HTTPException(403, f"control endpoints disabled: set {settings.token_env} to enable them")
        if not valid:
            await audit("refused: missing token" if given is None else "refused: wrong token", 401)
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        if not limiter.allow():
            raise HTTPException(429, "too many control requests", headers={"Retry-After": "10"})
        try:
            raw = await read_capped(request, MAX_CONTROL_BODY)
        except BodyTooLarge:
            await audit("refused: body too large", 413)
            raise HTTPException(413, f"body larger than {MAX_CONTROL_BODY} bytes") from None
        try:
            reason = (ControlBody.model_validate_json(raw) if raw.strip() else ControlBody()).reason
        except ValidationError as exc:
            await audit("refused: invalid body", 422)
            # Not echoing the input: it may be arbitrary bytes.
            detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            raise HTTPException(422, detail) from None
        try:
            await run(reason, who)
        except ControlRefused as exc:
            await audit(f"refused: {exc}", 409)
            raise HTTPException(409, str(exc)) from None
        await audit("done", 200)
        snap = await view.metrics_snapshot()
        return ControlResult(ok=True, action=action, trading_state=snap["system_health"]["trading_state"])

    @app.post("/api/kill", summary="Kill switch: halt trading (bearer token)", **_CONTROL_DOC)
    async def kill(request: Request, creds: Creds) -> ControlResult:
        return await control(request, "kill", creds, view.kill)

    @app.post("/api/resume", summary="Leave HALTED (bearer token)", **_CONTROL_DOC)
    async def resume(request: Request, creds: Creds) -> ControlResult:
        return await control(request, "resume", creds, lambda _reason, who: view.resume(who))

    @app.post("/api/close-all", summary="Reduce-only close of every position (bearer token)", **_CONTROL_DOC)
    async def close_all(request: Request, creds: Creds) -> ControlResult:
        return await control(request, "close-all", creds, lambda _reason, who: view.close_all(who))

    return app


# The body is parsed by hand after the token check, so it is declared for the OpenAPI document here.
_CONTROL_DOC: dict = {
    "responses": {
        401: {"description": "missing or wrong bearer token"},
        403: {"description": "control endpoints disabled (token environment variable unset)"},
        409: {"description": "no running engine to control"},
        413: {"description": "body larger than 4096 bytes"},
        422: {"description": "invalid body"},
        429: {"description": "rate limited: failed attempts from this address, or authenticated control requests"},
    },
    "openapi_extra": {"requestBody": {"required": False, "content": {
        "application/json": {"schema": ControlBody.model_json_schema()}}}},
}
