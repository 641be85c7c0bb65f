"""Backpack WS hub on a real loopback server: envelope, multi-stream SUBSCRIBE, private auth, keep-alive."""

import asyncio
import base64
import json

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ate.sim.backpack_ws import BackpackStreams, parse_stream
from ate.venues.backpack.signing import public_key_from_seed, sign

NOW = 1_773_600_000_000
SEED = base64.b64encode(Ed25519PrivateKey.generate().private_bytes(
    Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()
KEY = public_key_from_seed(SEED)
SYMBOLS = ["BTC_USDC", "BTC_USDC_PERP"]


def snapshot(account, stream):
    if stream.startswith("account.positionUpdate") and account:
        return [{"s": "BTC_USDC_PERP", "q": "0.5", "owner": account}]
    return []


@pytest.fixture
async def hub():
    streams = BackpackStreams({KEY: "acct-1"}, lambda: SYMBOLS, lambda: NOW, snapshot,
                              ping_interval_s=0.05, pong_timeout_s=0.12)
    app = web.Application()
    app.router.add_get("/", streams.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        yield streams, session, f"ws://127.0.0.1:{port}/"
    await streams.close_all()
    await runner.cleanup()


async def next_json(ws):
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def until_subscribed(streams, name):
    while not streams.wants(name):
        await asyncio.sleep(0)


def test_stream_names():
    assert parse_stream("depth.BTC_USDC", SYMBOLS) == ("depth", "BTC_USDC")
    assert parse_stream("depth.200ms.BTC_USDC", SYMBOLS) == ("depth", "BTC_USDC")
    assert parse_stream("kline.1m.BTC_USDC_PERP", SYMBOLS) == ("kline", "BTC_USDC_PERP")
    assert parse_stream("kline.7m.BTC_USDC", SYMBOLS) is None
    assert parse_stream("depth.ETH_USDC", SYMBOLS) is None
    assert parse_stream("account.orderUpdate", SYMBOLS) == ("account.orderUpdate", None)
    assert parse_stream("account.positionUpdate.BTC_USDC_PERP", SYMBOLS) == ("account.positionUpdate",
                                                                              "BTC_USDC_PERP")
    assert parse_stream("btcusdt@depth", SYMBOLS) is None


async def test_several_streams_in_one_frame_and_envelope(hub):
    streams, session, url = hub
    async with session.ws_connect(url) as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["depth.BTC_USDC", "trade.BTC_USDC"]})
        await until_subscribed(streams, "trade.BTC_USDC")
        assert streams.wants("depth.BTC_USDC")
        streams.publish("trade.BTC_USDC", {"e": "trade", "s": "BTC_USDC", "p": "70000"})
        streams.publish("bookTicker.BTC_USDC", {"e": "bookTicker"})  # nobody subscribed: not sent
        streams.publish("depth.BTC_USDC", {"e": "depth", "U": 5, "u": 5})
        assert await next_json(ws) == {"stream": "trade.BTC_USDC",
                                       "data": {"e": "trade", "s": "BTC_USDC", "p": "70000"}}
        assert (await next_json(ws))["stream"] == "depth.BTC_USDC"
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["trade.BTC_USDC"]})
        while streams.wants("trade.BTC_USDC"):
            await asyncio.sleep(0)
        assert streams.wants("depth.BTC_USDC")


async def test_invalid_stream_is_an_error_frame(hub):
    streams, session, url = hub
    async with session.ws_connect(url) as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["depth.NOPE_USDC"], "id": 7})
        assert await next_json(ws) == {"id": 7, "error": {"code": 4006, "message": "Invalid stream"}}


async def test_private_subscription_needs_valid_signature(hub):
    streams, session, url = hub
    ts, window = NOW - 10, 5000
    good = sign(SEED, f"instruction=subscribe&timestamp={ts}&window={window}")
    async with session.ws_connect(url) as ws:
        bad = bytearray(base64.b64decode(good))
        bad[5] ^= 1
        await ws.send_json({"method": "SUBSCRIBE", "params": ["account.orderUpdate"],
                            "signature": [KEY, base64.b64encode(bytes(bad)).decode(), str(ts), str(window)]})
        assert (await next_json(ws))["error"]["message"] == "Invalid signature"
        await ws.send_json({"method": "SUBSCRIBE", "params": ["account.orderUpdate"],
                            "signature": [KEY, good, str(NOW - 6000), str(window)]})
        assert (await next_json(ws))["error"]["message"] == "Request has expired"
        assert not streams.wants("account.orderUpdate")
        await ws.send_json({"method": "SUBSCRIBE", "params": ["account.orderUpdate", "account.positionUpdate"],
                            "signature": [KEY, good, str(ts), str(window)]})
        # the position snapshot comes first, without an event type
        assert await next_json(ws) == {"stream": "account.positionUpdate",
                                       "data": {"s": "BTC_USDC_PERP", "q": "0.5", "owner": "acct-1"}}
        streams.publish_account("acct-2", "account.orderUpdate", "BTC_USDC", {"e": "orderFill", "i": "1"})
        streams.publish_account("acct-1", "account.orderUpdate", "BTC_USDC", {"e": "orderAccepted", "i": "2"})
        assert await next_json(ws) == {"stream": "account.orderUpdate", "data": {"e": "orderAccepted", "i": "2"}}


async def test_server_pings_and_client_pongs_keep_it_open(hub):
    streams, session, url = hub
    async with session.ws_connect(url, autoping=False) as ws:
        for _ in range(4):  # several timeouts' worth of pings, each answered
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type is aiohttp.WSMsgType.PING
            await ws.pong(msg.data)
        assert not ws.closed and streams.connections == 1


async def test_silent_client_is_closed_after_pong_timeout(hub):
    streams, session, url = hub
    async with session.ws_connect(url, autoping=False) as ws:
        kinds = []
        while True:
            msg = await asyncio.wait_for(ws.receive(), 5)
            kinds.append(msg.type)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
        assert aiohttp.WSMsgType.PING in kinds
        assert kinds[-1] is aiohttp.WSMsgType.CLOSE
