"""A planted secret must never appear in logs, exception texts or reprs, whatever goes wrong."""

import logging
from decimal import Decimal

import pytest
from aiohttp import web
from venues_support import API_KEY, SECRET

from ate.model import Instrument, MarketKind, Order, OrderType, Side
from ate.venues.binance.client import BinanceClient, BinanceUrls
from ate.venues.clock import ManualClock
from ate.venues.credentials import Credentials
from ate.venues.errors import MissingCredentials, VenueError
from ate.venues.factory import build_clients

T0 = 1_700_000_040_000
BTC = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, Decimal("0.01"), Decimal("0.00001"))


async def test_secret_never_in_logs_or_errors(venue, caplog):
    caplog.set_level(logging.DEBUG)

    async def echo_reject(request):
        # A hostile/buggy venue echoing the whole request back must not make us log the secret either.
        return web.json_response({"code": -2015, "msg": f"Invalid API-key {request.query_string}"}, status=401)

    async def hang(request):
        await venue.hang.wait()

    venue.route("GET", "/api/v3/account", echo_reject)
    venue.route("POST", "/api/v3/order", hang)
    venue.json("GET", "/api/v3/time", "not json", status=503)
    c = BinanceClient(MarketKind.SPOT, BinanceUrls(venue.url, venue.url), Credentials(API_KEY, SECRET),
                      clock=ManualClock(T0, auto_advance=True), timeout_s=0.2)
    texts = [repr(c.creds), str(c.creds), repr(c.dialect.__dict__)]
    for call in (c.balances(), c.server_time_ms()):
        with pytest.raises(VenueError) as exc:
            await call
        texts += [str(exc.value), repr(exc.value), repr(exc.value.__dict__)]
    result = await c.place_order(Order("c1", "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal(1),
                                       Decimal(1)), BTC)
    texts += [repr(result)]
    await c.close()
    texts += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    assert caplog.records  # the failures above were logged
    assert all(SECRET not in t for t in texts)


def test_credentials_from_env_names_missing_variables_only():
    env = {"K": "key-value-1234", "S": SECRET}
    creds = Credentials.from_env("K", "S", env)
    assert creds.secret == SECRET and SECRET not in repr(creds)
    with pytest.raises(MissingCredentials, match="NOPE") as exc:
        Credentials.from_env("K", "NOPE", env)
    assert "key-value" not in str(exc.value)
    assert Credentials.optional_from_env("K", "NOPE", env) is None


def test_factory_reads_env_names_from_config():
    from ate.config.venues import VenuesConfig

    cfg = VenuesConfig.model_validate({"binance": {"api_key_env": "MY_K", "api_secret_env": "MY_S"}})
    clients = build_clients(cfg, environ={"MY_K": API_KEY, "MY_S": SECRET, "ATE_BACKPACK_API_KEY": "x"})
    assert clients["binance"].creds.secret == SECRET
    assert clients["binance_usdm"].kind is MarketKind.PERP
    assert clients["backpack"].creds is None  # secret variable unset → public data only
    assert set(clients) == {"binance", "binance_usdm", "backpack", "deribit"}


async def test_backpack_seed_never_in_logs_or_errors(venue, caplog):
    import base64

    from ate.venues.backpack.client import BackpackClient, BackpackUrls
    from ate.venues.backpack.signing import public_key_from_seed

    caplog.set_level(logging.DEBUG)
    seed = base64.b64encode(b"planted-backpack-seed-32-bytes!!").decode()
    venue.json("GET", "/api/v1/capital", {"code": "UNAUTHORIZED", "message": "bad key"}, status=401)
    venue.json("POST", "/api/v1/order", {"code": "SERVER_ERROR", "message": "boom"}, status=500)
    c = BackpackClient(BackpackUrls(venue.url, venue.url), Credentials(public_key_from_seed(seed), seed),
                       clock=ManualClock(T0, auto_advance=True))
    texts = [repr(c.creds), repr(c.dialect.__dict__), repr(c.subscribe_signature())]
    with pytest.raises(VenueError) as exc:
        await c.balances()
    texts += [str(exc.value), repr(exc.value.__dict__)]
    inst = Instrument("backpack", "SOL_USDC", "SOL", "USDC", MarketKind.SPOT, Decimal("0.01"), Decimal("0.01"))
    texts.append(repr(await c.place_order(Order("c", "backpack", "SOL_USDC", Side.BUY, OrderType.LIMIT,
                                                Decimal(1), Decimal(1)), inst)))
    await c.close()
    texts += [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    texts += [s for _, _, _, s in venue.seen]  # nor on the wire
    assert all(seed not in t for t in texts)
