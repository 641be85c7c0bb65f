"""Review 4 (issue 16): a clock stepping back across 00:00 UTC must not re-anchor the emergency ladder's day.

The daily-loss tracker only moves to a later day (`day > day_ms`); the emergency module re-anchored E_day0 and
dropped its level on any other day, so an NTP step back over midnight, and the step forward again, erased the
new day's daily-loss level: the REDUCE it stands for came late (at the next loss) or never.
"""

from __future__ import annotations

from ate.config.modules import EmergencyConfig
from ate.signals.emergency import DAY_MS, Emergency

MIDNIGHT = 1_750_032_000_000 - 1_750_032_000_000 % DAY_MS + DAY_MS
MIN = 60_000


def test_a_clock_step_back_over_midnight_keeps_the_new_days_daily_loss_level():
    e = Emergency(EmergencyConfig())
    e.update_equity(10_000.0, MIDNIGHT + MIN, gross_exposure=5_000.0)
    e.update_equity(9_400.0, MIDNIGHT + 10 * MIN, gross_exposure=5_000.0)  # −6 % today: level 2 (daily loss)
    assert (e.level, e.e_day0) == (2, 10_000.0)
    assert [a.kind for a in e.evaluate(MIDNIGHT + 10 * MIN).actions] == ["REDUCE"]
    e.update_equity(9_400.0, MIDNIGHT + 10 * MIN - 11 * MIN, gross_exposure=5_000.0)  # the clock steps back
    assert (e.level, e.e_day0, e.day) == (2, 10_000.0, MIDNIGHT)
    e.update_equity(9_400.0, MIDNIGHT + 12 * MIN, gross_exposure=5_000.0)  # and forward again
    assert (e.level, e.e_day0, e.day) == (2, 10_000.0, MIDNIGHT)
    assert [a.kind for a in e.evaluate(MIDNIGHT + 12 * MIN).actions] == ["REDUCE"]  # still short of its target
    e.update_equity(9_400.0, MIDNIGHT + DAY_MS, gross_exposure=5_000.0)  # the next day does re-anchor
    assert (e.e_day0, e.day) == (9_400.0, MIDNIGHT + DAY_MS)
