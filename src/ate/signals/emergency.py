"""emergency override (§5.1): drawdown / daily-loss ladder and the flash, stale and venue-health detectors.

It never votes and never trades against a move: its outputs are vetoes (entries only) and
reduce-only actions. Its state (peak, E_day0, level, halted, ...) is a plain dict for the store.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from typing import Any

from msgspec.structs import replace

from ate.config.modules import EmergencyConfig
from ate.data.candles import Candle
from ate.signals.base import Action, ModuleOutput, SafeModule, Status, Veto

DAY_MS = 86_400_000
_EPS = 1e-12  # thresholds are fractions: 1 − 9000/10000 must count as 10 %


class _VenueHealth:
    __slots__ = ("requests", "errors", "unhealthy")

    def __init__(self) -> None:
        self.requests: deque[tuple[int, bool]] = deque()
        self.errors = 0
        self.unhealthy = False


class Emergency(SafeModule):
    name = "emergency"
    __slots__ = ("cfg", "peak", "e_day0", "day", "equity", "level", "halted", "x_ref", "exposure",
                 "acted_level", "calm_since_ms", "veto_active", "_prev_close", "_flash_until",
                 "_last_update", "_venues", "_values", "_values_version", "_version", "_flash_latest",
                 "_dd_steps", "_dl_steps", "_equity_args", "_marks", "_out", "_out_version", "_out_marks", "_out_keep",
                 "_out_from", "_out_until", "_out_calm", "_out_stale_floor", "_out_oldest")

    def __init__(self, cfg: EmergencyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.peak: float | None = None
        self.e_day0: float | None = None
        self.day: int | None = None
        self.equity: float | None = None
        self.level = 0
        self.halted = False
        self.x_ref: float | None = None  # gross exposure when the episode first hit level 2
        self.exposure: float | None = None
        self.acted_level = 0  # highest level whose action has been issued in this episode
        self.calm_since_ms: int | None = None
        self.veto_active = False
        self._prev_close: dict[str, float] = {}
        self._flash_until: dict[str, int] = {}
        self._flash_latest = 0  # the latest of `_flash_until`: no flash veto from then on
        self._last_update: dict[str, int] = {}
        self._venues: dict[str, _VenueHealth] = {}
        # bumped by every change that can change the output (ladder state, detector inputs) but a move of the
        # marks alone (equity, peak, E_day0), which bumps `_marks`: that changes the output's `values` only
        self._version = 0
        self._marks = 0
        self._values: dict[str, Any] = {}
        self._values_version: tuple[int, int] | None = None  # (`_version`, `_marks`) of `_values`
        # a level counts the thresholds at or below the ratio: on these ascending lists, bisect_right counts them
        self._dd_steps = [t - _EPS for t in cfg.drawdown_levels]
        self._dl_steps = [t - _EPS for t in cfg.daily_loss_levels]
        # (equity, gross exposure, UTC day, `_version` after it) of the last update_equity that ran in full
        self._equity_args: tuple[float, float | None, int, int] | None = None
        # The last output and where it holds (see `evaluate`): same `_version`, now in [from, until), and the
        # rarer time limits (the veto-lift clock, the stale floor, the oldest venue request) where not None.
        self._out: ModuleOutput | None = None
        self._out_version = -1
        self._out_marks = 0  # `_marks` of its values
        self._out_keep = False
        self._out_from = 0
        self._out_until: int | float = math.inf
        self._out_calm: int | None = None
        self._out_stale_floor: int | None = None
        self._out_oldest: int | None = None

    # ---- inputs -------------------------------------------------------------------------------

    def update_equity(self, equity: float, now_ms: int, gross_exposure: float | None = None,
                      flow: float = 0.0) -> None:
        """Mark-to-market equity over all venues (USD) at `now_ms`.

        `flow` is an external deposit (+) or withdrawal (−) already included in `equity`: peak and
        E_day0 shift by it so a transfer is not a loss. `gross_exposure` (USD) sets the REDUCE reference.
        """
        if not equity == equity or equity < 0:
            raise ValueError(f"equity {equity!r} is not a non-negative number")
        day = now_ms - now_ms % DAY_MS
        if not flow and equity > 0.0 and self._equity_args == (equity, gross_exposure, day, self._version):
            # The same input again with nothing changed since (a flat book between marks): the full update
            # below is idempotent — peak and E_day0 gain 0, the ladder reads the same peak, E_day0 and E, and
            # x_ref, the veto and the calm clock are already as it leaves them. Only the clock moves.
            # (`equity > 0` keeps a −0.0 from flipping the sign of a zero peak; a gross exposure of ±0 reads
            # the same in every comparison.)
            if now_ms > self.last_ts:
                self.last_ts = now_ms
            return
        before = self._read_by_evaluate()
        if self.peak is None:
            self.peak = self.e_day0 = equity
            self.day = day
        else:
            self.peak += flow
            self.e_day0 += flow  # type: ignore[operator]
            if day != self.day:  # first equity of a new UTC day stands as E_day0; the level may fall again
                self.day, self.e_day0 = day, equity
                if not self.halted:
                    self.level = 0
        self.peak = max(self.peak, equity)
        self.equity = equity
        if gross_exposure is not None:
            self.exposure = gross_exposure
        self.level = max(self.level, self.ladder_level(equity))
        if self.level >= 2:
            if self.x_ref is None:
                self.x_ref = gross_exposure  # may stay None until an exposure is reported
            self.veto_active = True
            self.calm_since_ms = None
        elif self.calm_since_ms is None:
            self.calm_since_ms = now_ms
        if self.level >= 5:
            self.halted = True
        self.last_ts = max(self.last_ts, now_ms)
        if before == self._read_by_evaluate():
            self._marks += 1  # vetoes, actions, status and reason read none of what moved (see `_evaluate`)
        else:
            self._version += 1
        self._equity_args = (equity, gross_exposure, day, self._version)

    def _read_by_evaluate(self) -> tuple[Any, ...]:
        """The ladder state `_evaluate` and `_output` read besides `values` (the exposure only where a REDUCE
        can be due)."""
        return (self.level, self.halted, self.x_ref, self.exposure if 2 <= self.level <= 4 else None,
                self.veto_active, self.calm_since_ms, self.peak is None)

    def ladder_level(self, equity: float) -> int:
        assert self.peak is not None and self.e_day0 is not None
        dd = 1.0 - equity / self.peak if self.peak > 0 else 0.0
        dl = max(0.0, 1.0 - equity / self.e_day0) if self.e_day0 > 0 else 0.0
        # a NaN ratio (an infinite equity) reaches no threshold; bisect would put it past all of them
        by_dd = bisect_right(self._dd_steps, dd) if dd == dd else 0
        by_dl = bisect_right(self._dl_steps, dl) if dl == dl else 0
        return max(by_dd, by_dl)

    def on_minute(self, c: Candle, market: str) -> None:
        """A closed 1m candle of a market in use: the flash detector."""
        prev = self._prev_close.get(market)
        self._prev_close[market] = c.close
        close_ms = c.open_ms + c.interval_ms
        if prev is not None and abs(c.close / prev - 1.0) > self.cfg.flash_threshold:
            until = self._flash_until[market] = close_ms + int(self.cfg.flash_veto_s * 1000)
            self._flash_latest = max(self._flash_latest, until)
            self._version += 1
        if close_ms > self.last_ts:
            self.last_ts = close_ms

    def on_market_update(self, market: str, now_ms: int) -> None:
        """Any book or trade update of `market` (the stale detector)."""
        last = self._last_update.get(market)
        self._last_update[market] = now_ms
        if last is None or now_ms < last:
            # A later update of a known market only moves its stale limit later: a cached output (never one
            # with a stale veto, see `_evaluate`) stays true until the limit it was computed with.
            self._version += 1

    def record_request(self, venue: str, ok: bool, now_ms: int) -> None:
        """One venue request outcome; errors are timeouts, transport, 5xx, 418, 429, auth (probes count)."""
        h = self._venues.get(venue)
        if h is None:
            h = self._venues[venue] = _VenueHealth()
        h.requests.append((now_ms, ok))
        h.errors += not ok
        self._version += 1

    def resume(self, equity: float, now_ms: int) -> None:
        """Authenticated operator resume: leaves HALTED and re-bases peak and E_day0."""
        self.halted = False
        self.peak = self.e_day0 = self.equity = equity
        self.day = now_ms - now_ms % DAY_MS
        self.level = 0
        self.acted_level = 0
        self.x_ref = None
        self.veto_active = False
        self.calm_since_ms = now_ms
        self._version += 1

    # ---- evaluation ---------------------------------------------------------------------------

    def evaluate(self, now_ms: int) -> ModuleOutput:
        """The output at `now_ms`; the last one again (its `ts` brought up to date) while it provably holds.

        `_evaluate` reads the state, which every change bumps `_version` for, and the clock only through the
        limits it records: no flash veto starts or ends before `_out_until`, the veto does not lift while
        `now − calm < veto_lift_s`, no market goes stale while `now − stale floor ≤ stale_s`, no venue request
        leaves the window while `now − window < the oldest one`. An evaluation that changed the ladder state
        (a veto lifted, a one-shot REDUCE issued), that reports a stale market (its reason counts the seconds)
        or that failed is not kept. (Expired requests and venue flags it settles are already in its output.)
        """
        if self._out_version == self._version and self._out_from <= now_ms < self._out_until \
                and (self._out_stale_floor is None or now_ms - self._out_stale_floor <= self.cfg.stale_s * 1000
                     or self._fresh_since(now_ms)) \
                and (self._out_calm is None or now_ms - self._out_calm < self.cfg.veto_lift_s * 1000) \
                and (self._out_oldest is None or now_ms - int(self.cfg.venue_window_s * 1000) < self._out_oldest):
            self.consecutive_errors = 0
            out = self._out
            if self._out_marks != self._marks:  # the marks moved: new values, the rest holds
                self._out_marks = self._marks
                out = self._out = replace(out, ts=self.last_ts, values=self._current_values())  # type: ignore[arg-type]
            elif out.ts != self.last_ts:  # type: ignore[union-attr]  (kept: `_out_version` is -1 without one)
                out = self._out = replace(out, ts=self.last_ts)  # type: ignore[arg-type]
            return out  # type: ignore[return-value]
        version = self._version
        self._out_keep, self._out_from, self._out_until = True, now_ms, math.inf
        self._out_calm = self._out_stale_floor = self._out_oldest = None
        out = super().evaluate(now_ms)
        keep = self._out_keep and self._version == version and out.status is not Status.ERROR
        self._out, self._out_version, self._out_marks = (out, version, self._marks) if keep else (None, -1, 0)
        return out

    def _fresh_since(self, now_ms: int) -> bool:
        """No market stale at `now_ms` by the updates seen since the kept output's stale floor was taken (they
        only move the floor later: an earlier one bumps `_version`); the new floor is kept."""
        floor = min(self._last_update.values())
        if now_ms - floor <= self.cfg.stale_s * 1000:
            self._out_stale_floor = floor
            return True
        return False

    def _venue_vetoes(self, now_ms: int) -> list[Veto]:
        cfg = self.cfg
        out = []
        horizon = now_ms - int(cfg.venue_window_s * 1000)
        oldest = None
        for venue, h in self._venues.items():
            while h.requests and h.requests[0][0] <= horizon:
                _, ok = h.requests.popleft()
                h.errors -= not ok
            n = len(h.requests)
            rate = h.errors / n if n else 0.0
            # (after this, evaluating again changes no flag: venue_recover_rate <= venue_error_rate)
            if not h.unhealthy and n >= cfg.venue_min_requests and rate > cfg.venue_error_rate:
                h.unhealthy = True
            elif h.unhealthy and rate <= cfg.venue_recover_rate:
                h.unhealthy = False
            if h.unhealthy:
                out.append(Veto(f"venue:{venue}", f"error rate {rate:.1%} over {n} requests"))
            if h.requests and (oldest is None or h.requests[0][0] < oldest):
                oldest = h.requests[0][0]
        self._out_oldest = oldest
        return out

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        if self.level < 2 and now_ms >= self._flash_latest and not (
                self.veto_active or self.halted or self._last_update or self._venues):
            return self._output((), ())  # nothing can veto or act: the common case, on every 1m close
        cfg = self.cfg
        vetoes: list[Veto] = []
        actions: list[Action] = []
        if self.veto_active and self.level <= 1 and not self.halted and self.calm_since_ms is not None:
            if now_ms - self.calm_since_ms >= cfg.veto_lift_s * 1000:
                self.veto_active, self.x_ref, self.acted_level = False, None, 0
                self._version += 1
            else:
                self._out_calm = self.calm_since_ms
        if self.halted:  # state, not an event: every evaluation while halted says flatten (reduce-only)
            vetoes.append(Veto("all", "HALTED by the emergency ladder (operator resume required)"))
            actions.append(Action("FLATTEN_AND_HALT"))
            self.acted_level = 5
        elif self.veto_active:
            vetoes.append(Veto("all", f"emergency level {self.level}"))
        if 2 <= self.level <= 4 and not self.halted:
            pct = cfg.reduce_pct[self.level - 2]
            target = 1.0 - pct / 100.0
            if self.x_ref is not None and self.exposure is not None:
                due = self.exposure > target * self.x_ref * (1 + 1e-9)  # re-issued while short of target
            else:
                due = self.level > self.acted_level  # exposure unknown: once per level
            if due:
                actions.append(Action("REDUCE", pct=pct, target_fraction=target))
                if self.level > self.acted_level:
                    self.acted_level = self.level
                    self._version += 1
        until = math.inf
        for market, t in self._flash_until.items():
            if now_ms < t:
                vetoes.append(Veto(f"market:{market}", f"flash move, veto until {t}"))
                until = min(until, t)
        self._out_until = until
        if self._last_update:
            stale_ms = cfg.stale_s * 1000
            floor = min(self._last_update.values())
            if now_ms - floor > stale_ms:
                for market, last in self._last_update.items():
                    if now_ms - last > stale_ms:
                        vetoes.append(Veto(f"market:{market}", f"no update for {(now_ms - last) / 1000:.0f} s"))
                self._out_keep = False  # the reason counts the seconds
            else:
                self._out_stale_floor = floor
        if self._venues:
            vetoes.extend(self._venue_vetoes(now_ms))
        return self._output(tuple(vetoes), tuple(actions))

    def _current_values(self) -> dict[str, Any]:
        key = (self._version, self._marks)
        if self._values_version != key:
            self._values_version = key
            self._values = self._ladder_values()
        return self._values

    def _output(self, vetoes: tuple[Veto, ...], actions: tuple[Action, ...]) -> ModuleOutput:
        values = self._current_values()
        status = Status.OK if self.peak is not None else Status.WARMUP
        return ModuleOutput(self.name, self.last_ts, status, None, None, f"level{self.level}", vetoes, actions,
                            values, "" if self.peak is not None else "no equity input yet")

    def _ladder_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"level": self.level, "halted": self.halted}
        if self.peak is not None:
            assert self.equity is not None and self.e_day0 is not None
            values.update(equity=self.equity, peak=self.peak, e_day0=self.e_day0,
                          drawdown=1.0 - self.equity / self.peak if self.peak > 0 else 0.0,
                          daily_loss=max(0.0, 1.0 - self.equity / self.e_day0) if self.e_day0 > 0 else 0.0,
                          x_ref=self.x_ref)
        return values

    def _neutral(self, ts: int) -> ModuleOutput:
        return ModuleOutput(self.name, ts, Status.ERROR, None, None, "unknown",
                            (Veto("all", "emergency module error: failing closed"),))

    # ---- persistence --------------------------------------------------------------------------

    _STATE = ("peak", "e_day0", "day", "equity", "level", "halted", "x_ref", "exposure", "acted_level",
              "calm_since_ms", "veto_active")

    def export_state(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in self._STATE}
        state["flash_until"] = dict(self._flash_until)
        return state

    def import_state(self, state: dict[str, Any]) -> None:
        for k in self._STATE:
            if k in state:
                setattr(self, k, state[k])
        self._version += 1
        self._flash_until = {str(k): int(v) for k, v in state.get("flash_until", {}).items()}
        self._flash_latest = max(self._flash_until.values(), default=0)
