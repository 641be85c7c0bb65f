"""The Telegram Bot API as both the alert sink and Telegram control use it: one URL scheme that carries the
bot token (so the token is never repeated in a repr, a log line or an error) and one checked call."""

from __future__ import annotations

from typing import Any

import aiohttp


class BotApiError(Exception):
    pass


class BotApi:
    def __init__(self, base_url: str, token: str) -> None:
        self._base = f"{base_url.rstrip('/')}/bot{token}"

    def __repr__(self) -> str:  # the URL carries the bot token
        return "BotApi(<redacted>)"

    def url(self, method: str) -> str:
        return f"{self._base}/{method}"

    async def call(self, session: aiohttp.ClientSession, method: str, body: dict, timeout_s: float) -> Any:
        """The method's `result`; BotApiError unless the answer is a 2xx JSON document with `ok: true`."""
        async with session.post(self.url(method), json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            try:
                doc = await resp.json(content_type=None)
            except ValueError:
                raise BotApiError(f"{method}: HTTP {resp.status}, body is not JSON") from None
        if resp.status >= 300 or not isinstance(doc, dict) or doc.get("ok") is not True:
            desc = doc.get("description", "") if isinstance(doc, dict) else ""
            raise BotApiError(f"{method}: HTTP {resp.status} {str(desc)[:200]}")
        return doc.get("result")
