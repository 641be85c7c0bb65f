"""Shared setup for the Backpack/Deribit face tests: a simulated world on loopback with a manual clock.

The stand-in for Backpack history is real data: Binance spot BTCUSDT (March 2026) replays as BTC_USDC
and Bybit linear BTCUSDT as BTC_USDC_PERP.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ate.config.sim import SimConfig
from ate.sim.backpack_face import BackpackFace
from ate.sim.clock import ManualClock
from ate.sim.deribit_face import DeribitFace
from ate.sim.runner import Simulator, run_simulator
from ate.venues.backpack.signing import instruction_for, public_key_from_seed, sign, signing_string

REPO = Path(__file__).resolve().parents[2]
SPOT_DATA = "data/binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz"
PERP_DATA = "data/bybit_linear_BTCUSDT_1m_2026-02-27_2026-03-29.csv.gz"
FUNDING_DATA = "data/binance_usdm_BTCUSDT_funding.csv"  # the nearest real funding series for the stand-in


def fresh_seed() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


SEED = fresh_seed()
KEY = public_key_from_seed(SEED)
SEED_2 = fresh_seed()
KEY_2 = public_key_from_seed(SEED_2)


def config(**overrides: object) -> SimConfig:
    return SimConfig.model_validate({
        "speed": 0,
        "accounts": [
            {"id": "alice", "backpack_public_key": KEY, "balances": {"backpack": {"USDC": "100000", "BTC": "1"}}},
            {"id": "bob", "backpack_public_key": KEY_2, "balances": {"backpack": {"USDC": "5000"}}},
        ],
        "markets": [
            {"venue": "backpack", "symbol": "BTC_USDC", "data": SPOT_DATA},
            {"venue": "backpack", "symbol": "BTC_USDC_PERP", "data": PERP_DATA, "funding": FUNDING_DATA},
        ],
        "dvol": {"BTC": str(REPO / "data" / "deribit_BTC_DVOL_1d.csv")},
        **overrides,
    })


@contextlib.asynccontextmanager
async def backpack_sim(face: BackpackFace | None = None, **overrides: object) -> AsyncIterator[Simulator]:
    """Backpack and Deribit faces over a world whose clock moves only when the test advances it."""
    async with run_simulator(config(**overrides), clock=ManualClock(), faces=[face or BackpackFace(), DeribitFace()],
                             base_dir=REPO) as sim:
        sim.advance(60_000)
        yield sim


def signed(method: str, path: str, params: object, ts: int, *, seed: str = SEED, key: str = KEY,
           window: int | None = 5000) -> tuple[dict[str, str], str | None]:
    """Headers and JSON body of a Backpack request signed the way the venue documents it."""
    instruction = instruction_for(method, path)
    assert instruction is not None
    message = signing_string(instruction, params if isinstance(params, list) else dict(params or {}), ts, window)
    headers = {"X-API-Key": key, "X-Timestamp": str(ts), "X-Signature": sign(seed, message)}
    if window is not None:
        headers["X-Window"] = str(window)
    body = None
    if method != "GET":
        headers["Content-Type"] = "application/json; charset=utf-8"
        body = json.dumps(params)
    return headers, body
