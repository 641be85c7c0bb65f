"""The Binance face of the simulator: Spot and USD-M, each on its own loopback port.

Spot port: REST ``/api/v3``, streams ``/ws`` and ``/stream``, WS API ``/ws-api/v3``.
USD-M port: REST ``/fapi/v1|v2|v3``, streams ``/public``, ``/market``, ``/private`` (+ legacy ``/ws``).

Third-party clients work unmodified apart from URLs, keys and these options (tests/sim/test_sim_binance_ccxt.py):
ccxt needs ``options={"fetchCurrencies": False, "fetchMargins": False}`` (no ``/sapi``) and, for
``binance``, ``"fetchMarkets": {"types": ["spot"]}`` (the spot class otherwise also loads USD-M and
COIN-M markets from their own hosts). Override ``urls["api"]`` entries ``public``/``private``/``v1``
(spot) or every ``fapi*`` entry (USD-M); for ccxt.pro set ``urls["api"]["ws"]["spot"]`` to
``ws://…/ws`` and ``["linear"]`` to ``ws://…/ws`` (ccxt itself rewrites it to ``/public/ws`` or
``/market/ws``). When the replay clock is not real time (tests, or ``sim.clock: replay``), give
ccxt ``adjustForTimeDifference: True`` so it signs with the simulator's time.

Not simulated: conditional/algo orders, ``/sapi``, ``order/test``, OCO, Ed25519/RSA keys, the USD-M
WS API, cancel-replace, self-trade prevention, PERCENT_PRICE enforcement.
"""

from __future__ import annotations

from aiohttp import web

from ate.sim.binance_auth import BinanceKeys
from ate.sim.binance_limits import SPOT_LIMITS, USDM_LIMITS, RateLimiter
from ate.sim.binance_rest import BinanceRest, ListenKeys
from ate.sim.binance_ws import BinanceStreams
from ate.sim.instruments import BINANCE_SPOT, BINANCE_USDM
from ate.sim.runner import Endpoint, SimContext


@web.middleware
async def json_not_found(request: web.Request, handler):
    """Every answer is JSON ``{code, msg}``, a path or method the venue does not serve included (an
    HTML error page would break a client's error parsing). [ate choice] code -1000 (UNKNOWN)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status not in (404, 405):
            raise
        return web.json_response({"code": -1000, "msg": f"{exc.reason}: {request.method} {request.path}"},
                                 status=exc.status)


class BinanceFace:
    def __init__(self) -> None:
        self._runners: list[web.AppRunner] = []
        self._streams: list[BinanceStreams] = []
        self.rest: dict[str, BinanceRest] = {}

    async def start(self, ctx: SimContext) -> list[Endpoint]:
        keys = BinanceKeys(ctx.config)
        listen_keys = ListenKeys()
        endpoints = []
        for venue, spot, limits in ((BINANCE_SPOT, True, SPOT_LIMITS), (BINANCE_USDM, False, USDM_LIMITS)):
            if not ctx.core.markets_of(venue):
                continue
            limiter = RateLimiter(limits, ban_418=ctx.faults.ban_418)
            streams = BinanceStreams(ctx, spot, keys, limiter, listen_keys)
            rest = BinanceRest(ctx, spot, limiter, keys, listen_keys, streams)
            app = web.Application(middlewares=[json_not_found])
            app.add_routes(rest.routes() + streams.routes())
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, ctx.host, ctx.port())
            await site.start()
            await streams.start()
            port = runner.addresses[0][1]
            self._runners.append(runner)
            self._streams.append(streams)
            self.rest[venue] = rest
            endpoints += [Endpoint(venue, "rest", f"http://{ctx.host}:{port}"),
                          Endpoint(venue, "ws", f"ws://{ctx.host}:{port}")]
        return endpoints

    async def stop(self) -> None:
        for s in self._streams:
            await s.stop()
        for r in self._runners:
            await r.cleanup()
        self._runners.clear()
        self._streams.clear()
