import pytest

from ate.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path}/ate.db")
    yield s
    s.close()
