"""Run the operator API (uvicorn) and alert delivery as tasks inside the caller's event loop. (A running
engine's heartbeat and dead-man live in `observer.EngineObserver`: they vouch for the engine, not the API.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import uvicorn

from ate.config.models import MonitorConfig
from ate.monitor.alerts import Notifier
from ate.monitor.api import ApiSettings, create_app
from ate.monitor.view import EngineView


class _EmbeddedServer(uvicorn.Server):
    # The engine owns SIGINT/SIGTERM; uvicorn must not replace its handlers.
    @contextlib.contextmanager
    def capture_signals(self):
        yield


@dataclass
class MonitorHandle:
    host: str
    port: int
    notifier: Notifier
    _server: _EmbeddedServer
    _tasks: list[asyncio.Task]
    _shutdown: asyncio.Event
    _own_notifier: bool = True

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        self._shutdown.set()  # ends live dashboard streams so uvicorn can close their connections
        self._server.should_exit = True
        for task in self._tasks[1:]:  # background loops; the server task ends by itself
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_notifier:  # a notifier handed in belongs to the caller, who drains it last
            await self.notifier.stop()


def _bind(host: str, port: int) -> socket.socket:
    # Bound here, not by uvicorn, so a busy port raises OSError to the caller instead of sys.exit.
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                reuse_port=False)
    sock.setblocking(False)
    return sock


async def start_monitor(view: EngineView, cfg: MonitorConfig, *, env: Mapping[str, str] | None = None,
                        notifier: Notifier | None = None) -> MonitorHandle:
    """Serve the API on cfg.host:cfg.port (0 = any free port) and start alert delivery."""
    env = os.environ if env is None else env
    token = env.get(cfg.token_env) or None
    shutdown = asyncio.Event()
    # Audit events are stamped by the view's clock, like everything else the dashboard shows.
    app = create_app(view, ApiSettings(token=token, token_env=cfg.token_env, control_per_minute=cfg.control_per_minute,
                                       failed_auth_per_minute=cfg.failed_auth_per_minute,
                                       stream_interval_s=cfg.stream_interval_s, clock_ms=view.clock), shutdown)
    sock = _bind(cfg.host, cfg.port)
    # log_config=None: uvicorn logs go through the engine's logging setup instead of replacing it.
    server = _EmbeddedServer(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                            timeout_graceful_shutdown=5))
    server_task = asyncio.create_task(server.serve(sockets=[sock]), name="ate-monitor-http")
    while not server.started:
        if server_task.done():
            server_task.result()  # surfaces the startup error
            raise RuntimeError("monitor server stopped during startup")
        await asyncio.sleep(0.01)
    own = notifier is None
    notifier = notifier or Notifier.from_config(cfg.alerts, env)
    notifier.start()
    port = sock.getsockname()[1]
    return MonitorHandle(cfg.host, port, notifier, server, [server_task], shutdown, own)
