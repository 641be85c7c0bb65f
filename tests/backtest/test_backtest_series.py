"""The compact result series (typed columns, pickled records) give back exactly what was put in, and the
statistics computed over them are bit-identical to those over plain lists of points."""

from __future__ import annotations

import json
import math
import random

from ate.backtest.commands import dumps
from ate.backtest.series import PairSeries, RecordLog
from ate.backtest.stats import EquityCurve, EquityPoint, compute, drawdown_series, period_returns

DAY = 86_400_000


def _points(n: int) -> list[EquityPoint]:
    rnd = random.Random(7)
    eq, out = 10_000.0, []
    for i in range(n):
        eq *= 1.0 + rnd.gauss(0.0, 0.003)
        flow = 250.0 if i == n // 3 else 0.0  # a deposit: stats remove it from the gain
        out.append(EquityPoint(1_700_000_000_000 + i * 3_600_000, eq + flow, flow))
    return out


def test_an_equity_curve_holds_exactly_the_points_and_slices_like_a_list() -> None:
    points = _points(50)
    curve = EquityCurve()
    for p in points[1:]:
        curve.add(p.ts_ms, p.equity, p.flow)
    curve.insert(0, points[0])
    assert len(curve) == 50 and list(curve) == points and curve == points
    assert curve[0] == points[0] and curve[-1] == points[-1] and list(curve[10:20]) == points[10:20]
    assert isinstance(curve[1:], EquityCurve)


def test_statistics_over_a_curve_are_those_over_the_list_bit_for_bit() -> None:
    points = _points(24 * 40)  # 40 days hourly: Sharpe, Sortino and monthly returns are all defined
    curve = EquityCurve(points)
    assert list(period_returns(curve)) == list(period_returns(points))
    assert drawdown_series(curve) == drawdown_series(points)
    assert json.dumps(compute(curve, [], [])) == json.dumps(compute(points, [], []))
    assert compute(curve, [], [])["net_flows"] == 250.0


def test_a_pair_series_round_trips_times_and_floats() -> None:
    rows = [(1_700_000_000_000 + i, x) for i, x in enumerate([0.1, -0.0, 1e-300, 104_538.50738210404, math.pi])]
    s = PairSeries(rows)
    assert list(s) == rows and s[2] == rows[2] and s[1:3] == rows[1:3] and len(s) == 5
    assert math.copysign(1.0, s[1][1]) == -1.0  # the sign of zero survives


def test_a_record_log_returns_equal_copies_and_dumps_like_a_list() -> None:
    records = [{"ts": i * DAY, "outputs": {"kelly": {"values": {"wins": i, "mean": 0.1 * i}, "vetoes": []}},
                "intent": {"kind": "HOLD", "side": None, "size_fraction": 1 / 3}} for i in range(5)]
    log = RecordLog(records)
    assert len(log) == 5 and list(log) == records and log[3] == records[3] and log[1:3] == records[1:3]
    log[0]["ts"] = -1  # a reader's change never reaches the log
    assert log[0]["ts"] == 0
    assert dumps({"d": log}) == dumps({"d": records})
