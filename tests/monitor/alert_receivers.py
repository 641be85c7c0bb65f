"""Local alert receivers on 127.0.0.1:0 — a Telegram Bot API `sendMessage` endpoint and a JSON webhook —
served from a thread, so they keep answering while the engine's event loop is blocked (the dead-man's
watchdog test), with each message's arrival time for "within 5 s" assertions."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ate.config.models import AlertsConfig

BOT_TOKEN = "424242:planted-alert-bot-token"  # noqa: S105 - test value
CHAT_ID = "-100777"
TOKEN_ENV = "ATE_TEST_TG_TOKEN"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:  # a heartbeat ping: plain text
            parsed = {"raw": body.decode()}
        owner = self.server.owner  # type: ignore[attr-defined]
        status = 200
        if owner.down:  # an outage: the Bot API answers 502 with an HTML page, as proxies do
            status, data = 502, b"<html>502 Bad Gateway</html>"
        elif self.path.endswith("/getUpdates"):
            data = json.dumps({"ok": True, "result": owner.updates_after(parsed)}).encode()
        else:
            owner.record(self.path, parsed)
            reply = {"ok": True, "result": {"message_id": 1}} if "/sendMessage" in self.path else {"ok": True}
            data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


class ThreadedReceiver:
    def __init__(self) -> None:
        self.messages: list[tuple[float, str, dict]] = []  # (monotonic arrival, path, body)
        # The Bot API's side of commands: updates a chat sent, served by getUpdates (long polling), and
        # every getUpdates request body seen (offsets); `down` makes every call answer 502.
        self.updates: list[dict] = []
        self.polls: list[dict] = []
        self.down = False
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def record(self, path: str, body: dict) -> None:
        with self._cond:
            self.messages.append((time.monotonic(), path, body))
            self._cond.notify_all()

    def send_command(self, chat_id: str, text: str, *, age_s: float = 0.0) -> int:
        """A chat sends `text` to the bot; returns its update id."""
        with self._cond:
            uid = 1000 + len(self.updates)
            self.updates.append({"update_id": uid, "message": {
                "message_id": uid, "date": int(time.time() - age_s), "text": text,
                "chat": {"id": int(chat_id), "type": "private"}, "from": {"id": 7, "is_bot": False}}})
            self._cond.notify_all()
            return uid

    def updates_after(self, body: dict) -> list[dict]:
        """getUpdates: updates from `offset` on, waiting up to `timeout` seconds for one (long polling)."""
        deadline = time.monotonic() + float(body.get("timeout") or 0)
        offset = int(body.get("offset") or 0)
        with self._cond:
            self.polls.append(body)
            self._cond.notify_all()
            while True:
                pending = [u for u in self.updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if pending or left <= 0 or self.down:
                    return pending
                self._cond.wait(min(left, 0.1))

    def texts(self) -> list[str]:
        with self._cond:
            return [b.get("text", "") for _, _, b in self.messages]

    def wait_for(self, predicate, timeout_s: float) -> tuple[float, str, dict] | None:
        """The first message (arrival, path, body) satisfying `predicate(body)`, waiting up to `timeout_s`
        (blocking: call through asyncio.to_thread from a running loop)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for m in self.messages:
                    if predicate(m[2]):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def __enter__(self) -> ThreadedReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


class AlertReceivers:
    """A Telegram Bot API receiver and a webhook receiver, and the alerts config + env pointing at them."""

    def __init__(self) -> None:
        self.telegram = ThreadedReceiver()
        self.webhook = ThreadedReceiver()

    def __enter__(self) -> AlertReceivers:
        self.telegram.__enter__()
        self.webhook.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.telegram.__exit__(*exc)
        self.webhook.__exit__(*exc)

    def config(self, **kw) -> dict:
        return {"telegram_bot_token_env": TOKEN_ENV, "telegram_chat_id": CHAT_ID,
                "telegram_api_base": self.telegram.url, "webhook_url": f"{self.webhook.url}/hook", **kw}

    def alerts_config(self, **kw) -> AlertsConfig:
        return AlertsConfig(**self.config(**kw))

    env = {TOKEN_ENV: BOT_TOKEN}

    async def both(self, kind: str, contains: str = "", timeout_s: float = 5.0) -> tuple[dict, dict]:
        """The alert of `kind` (containing `contains`) at both receivers within `timeout_s`; fails otherwise."""
        def hook(b: dict) -> bool:
            return b.get("kind") == kind and contains in b.get("text", "")

        def tg(b: dict) -> bool:
            return f" {kind}: " in b.get("text", "") and contains in b.get("text", "")

        got_hook, got_tg = await asyncio.gather(asyncio.to_thread(self.webhook.wait_for, hook, timeout_s),
                                                asyncio.to_thread(self.telegram.wait_for, tg, timeout_s))
        assert got_hook is not None, f"no {kind} alert at the webhook within {timeout_s} s: {self.webhook.texts()}"
        assert got_tg is not None, f"no {kind} alert at the Bot API within {timeout_s} s: {self.telegram.texts()}"
        assert got_tg[1] == f"/bot{BOT_TOKEN}/sendMessage" and got_tg[2]["chat_id"] == CHAT_ID
        return got_hook[2], got_tg[2]
