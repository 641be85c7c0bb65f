"""Deribit DVOL history on the simulated clock: Deribit's JSON-RPC shape and no look-ahead."""

from pathlib import Path

import pytest

from ate.data.loaders import load_dvol
from ate.sim.deribit_dvol import DAY_MS, DvolHistory, DvolRequestError, dvol_response

DVOL = Path(__file__).resolve().parents[2] / "data" / "deribit_BTC_DVOL_1d.csv"
POINTS = load_dvol(DVOL)
HISTORY = DvolHistory.from_files({"BTC": DVOL})
FAR_PAST, FAR_FUTURE = 0, 4_000_000_000_000


def query(start, end, resolution="1D", currency="BTC"):
    return {"currency": currency, "start_timestamp": str(start), "end_timestamp": str(end),
            "resolution": resolution}


@pytest.mark.parametrize("offset", [0, 1, DAY_MS - 1, DAY_MS, DAY_MS + 1, 5 * DAY_MS + 123])
def test_never_a_candle_dated_or_closed_after_the_clock(offset):
    now = POINTS[400].day_open_ms + offset
    body = dvol_response(HISTORY, query(FAR_PAST, FAR_FUTURE), lambda: now)
    data = body["result"]["data"]
    assert data, "history before the clock must be served"
    assert all(ts <= now - DAY_MS for ts, *_ in data)
    newest = max(p.day_open_ms for p in POINTS if p.day_open_ms + DAY_MS <= now)
    assert data[-1][0] == newest
    by_day = {p.day_open_ms: p.close for p in POINTS}
    assert all(row[1:] == [by_day[row[0]]] * 4 for row in data)


def test_jsonrpc_envelope_and_times_from_the_sim_clock():
    now = POINTS[30].day_open_ms + 3 * DAY_MS
    body = dvol_response(HISTORY, dict(query(POINTS[20].day_open_ms, now), id="9"), lambda: now)
    assert body["jsonrpc"] == "2.0" and body["id"] == 9 and body["testnet"] is False
    assert body["usIn"] == body["usOut"] == now * 1000 and body["usDiff"] == 0
    assert body["result"]["continuation"] is None
    assert [row[0] for row in body["result"]["data"]] == [p.day_open_ms for p in POINTS[20:33]]
    assert body["result"]["data"][0] == [POINTS[20].day_open_ms] + [POINTS[20].close] * 4


def test_pages_newest_first_with_continuation_as_next_end():
    history = DvolHistory.from_files({"btc": DVOL})
    history.page_size = 50
    now = POINTS[-1].day_open_ms + DAY_MS
    end, seen = now, []
    while True:
        page = history.page("BTC", FAR_PAST, end, "1D", now)
        seen = [row[0] for row in page.data] + seen
        if page.continuation is None:
            break
        assert len(page.data) == 50
        end = page.continuation
    assert seen == [p.day_open_ms for p in POINTS]


def test_invalid_params_use_deribit_error_shape():
    now = POINTS[-1].day_open_ms
    body = dvol_response(HISTORY, query(FAR_PAST, FAR_FUTURE, resolution="60"), lambda: now)
    assert body["error"]["code"] == -32602 and body["error"]["message"] == "Invalid params"
    assert body["error"]["data"]["param"] == "resolution" and "result" not in body
    assert dvol_response(HISTORY, query(FAR_PAST, FAR_FUTURE, resolution="7"), lambda: now)["error"]["data"][
        "param"] == "resolution"
    assert dvol_response(HISTORY, query(FAR_PAST, FAR_FUTURE, currency="ETH"), lambda: now)["error"]["data"][
        "param"] == "currency"
    assert dvol_response(HISTORY, {"currency": "BTC", "resolution": "1D", "end_timestamp": "1"},
                         lambda: now)["error"]["data"]["param"] == "start_timestamp"
    with pytest.raises(DvolRequestError):
        HISTORY.page("BTC", 10, 5, "1D", now)
