"""Operator alerts: Telegram Bot API and generic JSON webhooks, deduplicated, rate limited per kind, queued.

`Notifier.alert()` never blocks and never raises: alerts go into a queue drained by a background task, so
a slow or dead receiver cannot hold up trading. Non-critical alerts are bounded (the newest beyond
`queue_size` are dropped and counted); a CRITICAL alert is never dropped by the queue nor rate limited,
only deduplicated, and its delivery is retried. Everything sent, failed, dropped or suppressed is counted
per kind for the metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from ate.config.models import AlertsConfig
from ate.model import EngineEvent, Severity
from ate.monitor.background import Background
from ate.monitor.bot_api import BotApi
from ate.risk.events import (
    API_VIOLATION,
    CLOSE_ALL,
    EMERGENCY_ACTION,
    KILL_SWITCH,
    MAJOR_FAILURE,
    PROMOTION,
    RISK_BREACH,
    TRADING_STATE,
)

log = logging.getLogger(__name__)

# Event kinds the operator must hear about whatever their severity: the risk layer's (kill switch, state
# changes incl. halts, daily loss and other breaches, emergency ladder, close-all, promotions), external
# ledger events (money the engine did not move), reconciliation corrections, venue bans and pauses,
# market-data outages and the dead-man's findings. Any CRITICAL event alerts too.
EXTERNAL_KINDS = ("external_transfer", "external_fill", "external_deposit", "external_withdrawal", "liquidation",
                  "unknown_order", "unknown_order_update")
VENUE_KINDS = ("venue_paused", "stream_outage", "stream_restored", "engine_stalled")
ALERT_KINDS = (KILL_SWITCH, TRADING_STATE, RISK_BREACH, EMERGENCY_ACTION, CLOSE_ALL, PROMOTION, API_VIOLATION,
               MAJOR_FAILURE, "reconciliation", *EXTERNAL_KINDS, *VENUE_KINDS)
CRITICAL_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    text: str
    severity: Severity = Severity.WARNING
    # Alerts with the same kind and key within the kind's dedup window are sent once.
    key: str = ""
    ts_ms: int = field(default_factory=lambda: int(time.time() * 1000))


class TelegramSink:
    def __init__(self, base_url: str, bot_token: str, chat_id: str) -> None:
        self._bot = BotApi(base_url, bot_token)
        self.chat_id = chat_id

    def __repr__(self) -> str:  # the bot's URL carries the bot token
        return "TelegramSink(<redacted>)"

    def request(self, alert: Alert) -> tuple[str, dict]:
        text = f"[ate] {alert.severity.value.upper()} {alert.kind}: {alert.text}"
        return self._bot.url("sendMessage"), {"chat_id": self.chat_id, "text": text}


class WebhookSink:
    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, alert: Alert) -> tuple[str, dict]:
        return self.url, {"source": "ate", "kind": alert.kind, "severity": alert.severity.value, "text": alert.text,
                          "key": alert.key, "ts_ms": alert.ts_ms}


class DeliveryError(Exception):
    pass


async def post(session: aiohttp.ClientSession, sink, alert: Alert) -> None:
    url, body = sink.request(alert)
    async with session.post(url, json=body) as resp:
        if resp.status >= 300:
            raise DeliveryError(f"{type(sink).__name__} answered HTTP {resp.status}")


def post_blocking(sink, alert: Alert, timeout_s: float) -> None:
    """Deliver from a thread while the event loop cannot (the dead-man's watchdog)."""
    url, body = sink.request(alert)
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - configured alert receiver
        if resp.status >= 300:
            raise DeliveryError(f"{type(sink).__name__} answered HTTP {resp.status}")


class Notifier:
    def __init__(self, sinks: list, *, min_interval_s: float = 60.0, max_per_minute: int = 20,
                 queue_size: int = 100, timeout_s: float = 10.0,
                 min_interval_by_kind: Mapping[str, float] | None = None,
                 clock: Callable[[], float] = time.monotonic, retry_delay_s: float = 1.0) -> None:
        self.sinks = sinks
        self.min_interval_s = min_interval_s
        self.min_interval_by_kind = dict(min_interval_by_kind or {})
        self.max_per_minute = max_per_minute
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self.clock = clock
        self.retry_delay_s = retry_delay_s
        self._queue: deque[Alert] = deque()  # in the order raised; CRITICAL ones do not count against the bound
        self._queued_normal = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_sent: dict[tuple[str, str], float] = {}
        self._recent: dict[str, deque[float]] = {}
        self._delivery = Background("ate-alerts", self._deliver, http=True, timeout_s=timeout_s)
        self.sent_by_kind: Counter[str] = Counter()
        self.failed_by_kind: Counter[str] = Counter()
        self.dropped = self.suppressed = 0

    @property
    def sent(self) -> int:
        return sum(self.sent_by_kind.values())

    @property
    def failed(self) -> int:
        return sum(self.failed_by_kind.values())

    @classmethod
    def from_config(cls, cfg: AlertsConfig, env: Mapping[str, str], **kwargs) -> Notifier:
        sinks: list = []
        token = env.get(cfg.telegram_bot_token_env) if cfg.telegram_bot_token_env else None
        if token and cfg.telegram_chat_id:
            sinks.append(TelegramSink(cfg.telegram_api_base, token, cfg.telegram_chat_id))
        if cfg.webhook_url:
            sinks.append(WebhookSink(cfg.webhook_url))
        return cls(sinks, min_interval_s=cfg.min_interval_s, max_per_minute=cfg.max_per_minute,
                   queue_size=cfg.queue_size, timeout_s=cfg.timeout_s,
                   min_interval_by_kind=cfg.min_interval_by_kind, **kwargs)

    def alert(self, alert: Alert) -> bool:
        """Queue an alert; False when it was deduplicated, rate limited or (not CRITICAL) the queue is full."""
        if not self.sinks:
            return False
        now = self.clock()
        critical = alert.severity is Severity.CRITICAL
        dedup = (alert.kind, alert.key or alert.text)
        window = self.min_interval_by_kind.get(alert.kind, self.min_interval_s)
        last = self._last_sent.get(dedup)
        if last is not None and now - last < window:
            self.suppressed += 1
            return False
        recent = self._recent.setdefault(alert.kind, deque())
        while recent and now - recent[0] >= 60:
            recent.popleft()
        if not critical and len(recent) >= self.max_per_minute:
            self.suppressed += 1
            return False
        if not critical:
            if self._queued_normal >= self.queue_size:
                self.dropped += 1
                return False
            self._queued_normal += 1
        self._queue.append(alert)
        if len(self._last_sent) > 1000:  # forget keys whose dedup window is over
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < self.min_interval_s}
        self._last_sent[dedup] = now
        recent.append(now)
        self._idle.clear()
        self._wake.set()
        return True

    def event(self, ev: EngineEvent) -> bool:
        """Alert for an engine event of one of ALERT_KINDS (or any critical event)."""
        if not wants(ev):
            return False
        # Same kind and text is the same news; a writer that repeats news in new words passes a "key".
        key = str(ev.data.get("key") or ev.message)
        return self.alert(Alert(ev.kind, ev.message, ev.severity, key, ev.ts_ms))

    @property
    def idle(self) -> bool:
        """Every queued alert has been attempted."""
        return self._idle.is_set()

    def start(self) -> None:
        if self.sinks:
            self._delivery.start()

    async def drain(self) -> None:
        """Wait until every queued alert has been attempted (tests, orderly shutdown)."""
        if self._delivery.running:
            await self._idle.wait()

    async def stop(self) -> None:
        await self._delivery.stop()

    def _next(self) -> Alert | None:
        if not self._queue:
            return None
        alert = self._queue.popleft()
        if alert.severity is not Severity.CRITICAL:
            self._queued_normal -= 1
        return alert

    async def _deliver(self) -> None:
        while True:
            alert = self._next()
            if alert is None:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            for sink in self.sinks:
                await self._send(sink, alert)

    async def _send(self, sink, alert: Alert) -> None:
        attempts = CRITICAL_RETRIES if alert.severity is Severity.CRITICAL else 1
        for attempt in range(1, attempts + 1):
            try:
                await post(self._delivery.session, sink, alert)
            except (aiohttp.ClientError, TimeoutError, DeliveryError) as exc:
                log.warning("alert delivery failed", extra={"sink": type(sink).__name__, "kind": alert.kind,
                                                            "attempt": attempt, "error": type(exc).__name__})
                if attempt == attempts:
                    self.failed_by_kind[alert.kind] += 1
                    return
                await asyncio.sleep(self.retry_delay_s * attempt)
            else:
                self.sent_by_kind[alert.kind] += 1
                return


def wants(ev: EngineEvent) -> bool:
    return ev.kind in ALERT_KINDS or ev.severity is Severity.CRITICAL
