"""Fixtures; shared constants and helpers live in risk_support.py (importable by name)."""

import pytest
from risk_support import BP_SPOT, PERP, SPOT, D, FakeClock  # noqa: F401

from ate.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'ate.db'}")
    yield s
    s.close()
