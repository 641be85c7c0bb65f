"""Operator alerts: Telegram Bot API and generic JSON webhooks, deduplicated, rate limited and queued.

`Notifier.alert()` never blocks and never raises: alerts go into a bounded queue drained by a background
task, so a slow or dead receiver cannot hold up trading. Dropped and failed deliveries are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from ate.config.models import AlertsConfig
from ate.model import EngineEvent, Severity
from ate.risk.events import (
    API_VIOLATION,
    CLOSE_ALL,
    EMERGENCY_ACTION,
    KILL_SWITCH,
    MAJOR_FAILURE,
    RISK_BREACH,
    TRADING_STATE,
)

log = logging.getLogger(__name__)

# Event kinds the operator must hear about at once: the risk layer's (kill switch, state changes incl.
# halts, daily loss and other breaches, emergency ladder, close-all, venue bans, major failures) and the
# engine's reconciliation corrections and venue errors.
ALERT_KINDS = (KILL_SWITCH, TRADING_STATE, RISK_BREACH, EMERGENCY_ACTION, CLOSE_ALL, API_VIOLATION, MAJOR_FAILURE,
               "reconciliation", "venue_error", "venue_unreachable")


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    text: str
    severity: Severity = Severity.WARNING
    # Alerts with the same kind and key within the dedup window are sent once.
    key: str = ""
    ts_ms: int = field(default_factory=lambda: int(time.time() * 1000))


class TelegramSink:
    def __init__(self, base_url: str, bot_token: str, chat_id: str) -> None:
        self._url = f"{base_url.rstrip('/')}/bot{bot_token}/sendMessage"
        self.chat_id = chat_id

    def __repr__(self) -> str:  # the URL carries the bot token
        return "TelegramSink(<redacted>)"

    async def send(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        text = f"[ate] {alert.severity.value.upper()} {alert.kind}: {alert.text}"
        async with session.post(self._url, json={"chat_id": self.chat_id, "text": text}) as resp:
            if resp.status >= 300:
                raise DeliveryError(f"telegram answered HTTP {resp.status}")


class WebhookSink:
    def __init__(self, url: str) -> None:
        self.url = url

    async def send(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        body = {"source": "ate", "kind": alert.kind, "severity": alert.severity.value, "text": alert.text,
                "key": alert.key, "ts_ms": alert.ts_ms}
        async with session.post(self.url, json=body) as resp:
            if resp.status >= 300:
                raise DeliveryError(f"webhook answered HTTP {resp.status}")


class DeliveryError(Exception):
    pass


class Notifier:
    def __init__(self, sinks: list, *, min_interval_s: float = 60.0, max_per_minute: int = 20,
                 queue_size: int = 100, timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sinks = sinks
        self.min_interval_s = min_interval_s
        self.max_per_minute = max_per_minute
        self.timeout_s = timeout_s
        self.clock = clock
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=queue_size)
        self._last_sent: dict[tuple[str, str], float] = {}
        self._recent: deque[float] = deque()
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self.sent = self.failed = self.dropped = self.suppressed = 0

    @classmethod
    def from_config(cls, cfg: AlertsConfig, env: Mapping[str, str], **kwargs) -> Notifier:
        sinks: list = []
        token = env.get(cfg.telegram_bot_token_env) if cfg.telegram_bot_token_env else None
        if token and cfg.telegram_chat_id:
            sinks.append(TelegramSink(cfg.telegram_api_base, token, cfg.telegram_chat_id))
        if cfg.webhook_url:
            sinks.append(WebhookSink(cfg.webhook_url))
        return cls(sinks, min_interval_s=cfg.min_interval_s, max_per_minute=cfg.max_per_minute,
                   queue_size=cfg.queue_size, timeout_s=cfg.timeout_s, **kwargs)

    def alert(self, alert: Alert) -> bool:
        """Queue an alert; False when it was deduplicated, rate limited or the queue is full."""
        if not self.sinks:
            return False
        now = self.clock()
        dedup = (alert.kind, alert.key or alert.text)
        last = self._last_sent.get(dedup)
        if last is not None and now - last < self.min_interval_s:
            self.suppressed += 1
            return False
        while self._recent and now - self._recent[0] >= 60:
            self._recent.popleft()
        if len(self._recent) >= self.max_per_minute:
            self.suppressed += 1
            return False
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        if len(self._last_sent) > 1000:  # forget keys whose dedup window is over
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < self.min_interval_s}
        self._last_sent[dedup] = now
        self._recent.append(now)
        return True

    def event(self, ev: EngineEvent) -> bool:
        """Alert for an engine event of one of ALERT_KINDS (or any critical event)."""
        if ev.kind not in ALERT_KINDS and ev.severity is not Severity.CRITICAL:
            return False
        key = str(ev.data.get("key") or ev.data.get("venue") or ev.data.get("level") or ev.message)
        return self.alert(Alert(ev.kind, ev.message, ev.severity, key, ev.ts_ms))

    def start(self) -> None:
        if self._task is None and self.sinks:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            self._task = asyncio.create_task(self._deliver(), name="ate-alerts")

    async def drain(self) -> None:
        """Wait until every queued alert has been attempted (tests, orderly shutdown)."""
        if self._task is not None:
            await self._queue.join()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self) -> None:
        assert self._session is not None
        while True:
            alert = await self._queue.get()
            try:
                for sink in self.sinks:
                    try:
                        await sink.send(self._session, alert)
                        self.sent += 1
                    except (aiohttp.ClientError, TimeoutError, DeliveryError) as exc:
                        self.failed += 1
                        log.warning("alert delivery failed via %r: %s", sink, type(exc).__name__)
            finally:
                self._queue.task_done()
