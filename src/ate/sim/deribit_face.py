"""The simulated Deribit: read-only `GET /api/v2/public/get_volatility_index_data` on one loopback port.

Serves the DVOL history files of ``sim.dvol`` (relative paths from the working directory) on the
simulated clock; see :mod:`ate.sim.deribit_dvol` for the no-look-ahead rule and the response shape.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ate.sim.deribit_dvol import DvolHistory, dvol_response
from ate.sim.faults import Faults
from ate.sim.runner import Endpoint, SimContext

PATH = "/api/v2/public/get_volatility_index_data"


@web.middleware
async def json_rpc_not_found(request: web.Request, handler):
    """Deribit answers a method it does not have with a JSON-RPC error, never an HTML page."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status not in (404, 405):
            raise
        return web.json_response({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}},
                                 status=400)


class DeribitFace:
    venue = "deribit"

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None

    async def start(self, ctx: SimContext) -> list[Endpoint]:
        self.history = DvolHistory.from_files(ctx.config.dvol, ctx.stamp)
        self.clock = ctx.clock
        self.faults: Faults = ctx.faults
        app = web.Application(middlewares=[json_rpc_not_found])
        app.router.add_get(PATH, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, ctx.host, ctx.port()).start()
        host, port = self._runner.addresses[0][:2]
        return [Endpoint(self.venue, "rest", f"http://{host}:{port}")]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def now_ms(self) -> int:
        return self.clock.now_ms() + self.faults.skew_ms

    async def _handle(self, request: web.Request) -> web.Response:
        fault = self.faults.http_fault("deribit")
        if fault == "timeout":  # hangs, then fails like an overloaded gateway
            await asyncio.sleep(self.faults.spec.timeout_ms / 1000)
        await self.faults.delay()
        if fault is not None:
            return web.json_response({"jsonrpc": "2.0", "error": {"code": 11094, "message": "internal_server_error"}},
                                     status=503)
        body = dvol_response(self.history, dict(request.query), self.now_ms)
        return web.json_response(body, status=400 if "error" in body else 200)
