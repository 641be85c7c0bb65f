"""One background loop of the monitor and the HTTP session it talks through: alert delivery, the alert feed
and Telegram control all run this way.

Started at most once. Stopping cancels the loop, waits for it to end, then closes the session, so nothing it
sends outlives the engine and a second stop is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aiohttp


class Background:
    def __init__(self, name: str, run: Callable[[], Awaitable[None]], *, http: bool = False,
                 timeout_s: float | None = None) -> None:
        """`run` is the loop; with `http`, `session` is open while it runs (`timeout_s`: the session's total
        timeout per request; None keeps aiohttp's default, for loops that time each request themselves)."""
        self.name = name
        self._run = run
        self._http = http
        self._timeout_s = timeout_s
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"{self.name}: no HTTP session (not started, or started without http)")
        return self._session

    def start(self) -> None:
        if self._task is not None:
            return
        if self._http:
            limit = {} if self._timeout_s is None else {"timeout": aiohttp.ClientTimeout(total=self._timeout_s)}
            self._session = aiohttp.ClientSession(**limit)
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()
