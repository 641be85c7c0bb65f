"""REST transport shared by the venue clients: rate limiting, retries, and outcome classification.

Only idempotent requests are retried (exponential backoff with full jitter). A non-idempotent
request (an order) that times out, meets a 5xx, a dropped connection or a 429 raises VenueUnknown:
its outcome is resolved by querying the client order id, never by sending it again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import msgspec

from ate.venues.clock import Clock
from ate.venues.errors import VenueError, VenueUnknown
from ate.venues.ratelimit import RateLimiter

log = logging.getLogger("ate.venues.rest")

Params = list[tuple[str, str]] | dict[str, Any] | list[dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    params: Params = None
    weight: int = 1
    orders: int = 0
    signed: bool = False
    keyed: bool = False  # API key header without a signature (Binance USER_STREAM)
    idempotent: bool = True
    # A further limiter (e.g. Backpack's 30/min history limit) charged on top of the venue's own.
    extra_limiter: RateLimiter | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    target: str  # path plus query string
    body: str | None
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    data: Any
    # When the answered attempt left (on the transport's clock), after every rate-limit wait and retry: what a
    # round trip is measured from (a clock sync timed across a 60 s ban would be 30 s off).
    sent_ms: int = 0


class Dialect(Protocol):
    """Venue-specific wire rules: how to sign a request and what an error answer proves."""

    venue: str

    def prepare(self, req: Request) -> Prepared: ...

    def error(self, status: int, data: Any) -> VenueError: ...

    def retry_after_s(self, status: int, headers: Mapping[str, str], strikes: int) -> float: ...


def decode_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode(errors="replace")


class RestTransport:
    def __init__(self, dialect: Dialect, base_url: str, limiter: RateLimiter, clock: Clock, *,
                 session: aiohttp.ClientSession | None = None, timeout_s: float = 10.0, max_attempts: int = 4,
                 backoff_base_s: float = 0.25, backoff_cap_s: float = 8.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.dialect = dialect
        self.venue = dialect.venue
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.clock = clock
        self._session = session
        self._own_session = session is None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._rng = rng
        self._strikes = 0  # consecutive 429s, for venues without Retry-After
        # Health observer: (venue, ok) per request; errors are timeouts, transport, 5xx, 418, 429 and auth.
        self.on_result: Callable[[str, bool], None] | None = None
        self.status_counts: dict[int, int] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    def _backoff_s(self, attempt: int) -> float:
        return self._rng() * min(self.backoff_cap_s, self.backoff_base_s * 2**attempt)

    def _log(self, req: Request, attempt: int, status: int | None, reason: str, retry: bool) -> None:
        """One line per retried attempt and one per request that finally failed, with its context."""
        fields = {"venue": self.venue, "method": req.method, "endpoint": req.path, "status": status,
                  "attempt": attempt, "reason": reason}
        if retry:
            log.info("request retried", extra=fields)
        elif status is not None and status < 500 and status not in (418, 429):
            log.info("request rejected", extra=fields)  # a definitive answer (e.g. not found), not trouble
        else:
            log.warning("request failed", extra=fields)

    async def request(self, req: Request) -> Response:
        attempts = self.max_attempts if req.idempotent else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            await self.limiter.acquire(req.weight, req.orders)
            if req.extra_limiter is not None:
                await req.extra_limiter.acquire(1)
            prepared = self.dialect.prepare(req)  # re-stamped on every attempt
            sent_ms = self.clock.now_ms()
            try:
                async with self.session.request(
                    req.method, self.base_url + prepared.target, data=prepared.body,
                    headers=prepared.headers, timeout=self.timeout,
                ) as resp:
                    raw = await resp.read()
                    status, headers = resp.status, resp.headers
            except (TimeoutError, aiohttp.ClientError) as exc:
                if self.on_result is not None:
                    self.on_result(self.venue, False)
                kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
                self._log(req, attempt + 1, None, kind, retry=not last)
                if last:
                    raise VenueUnknown(self.venue, f"{req.method} {req.path}: {kind}") from None
                await self.clock.sleep(self._backoff_s(attempt))
                continue
            self.status_counts[status] = self.status_counts.get(status, 0) + 1
            if self.on_result is not None:
                self.on_result(self.venue, status < 400 or (status < 500 and status not in (401, 403, 418, 429)))
            self.limiter.observe_headers(headers)
            data = decode_body(raw)
            if status < 400:
                self._strikes = 0
                return Response(status, headers, data, sent_ms)
            if status in (418, 429):
                self._strikes += 1
                wait = self.dialect.retry_after_s(status, headers, self._strikes)
                self.limiter.pause(wait, f"HTTP {status}")
                final = last or not req.idempotent
                self._log(req, attempt + 1, status, f"rate limited, paused {wait:.0f} s", retry=not final)
                if final:
                    raise VenueUnknown(self.venue, f"{req.method} {req.path}: rate limited, paused {wait:.0f}s",
                                       status=status, code=_code(data))
                continue
            error = self.dialect.error(status, data)
            retry = isinstance(error, VenueUnknown) and not last
            self._log(req, attempt + 1, status, f"code {error.code}: {error.venue_message}"[:200], retry=retry)
            if retry:
                await self.clock.sleep(self._backoff_s(attempt))
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover


def _code(data: Any) -> Any:
    return data.get("code") if isinstance(data, dict) else None
