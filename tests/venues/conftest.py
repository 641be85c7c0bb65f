"""Fixtures; shared constants and helpers live in venues_support.py (importable by name)."""

import pytest
from aiohttp.test_utils import TestServer
from venues_support import API_KEY, SECRET, FakeVenue, binance_signature_ok  # noqa: F401


@pytest.fixture
async def venue():
    fake = FakeVenue()
    fake.server = TestServer(fake.app, host="127.0.0.1", port=0)
    await fake.server.start_server()
    yield fake
    fake.hang.set()  # release handlers that were told never to answer
    await fake.server.close()
