"""emergency override (§5.1): drawdown / daily-loss ladder and the flash, stale and venue-health detectors.

It never votes and never trades against a move: its outputs are vetoes (entries only) and
reduce-only actions. Its state (peak, E_day0, level, halted, ...) is a plain dict for the store.
"""

from __future__ import annotations

from collections import deque
from typing import Any

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
                 "_last_update", "_venues", "_values", "_values_version", "_version", "_flash_latest")

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
        self._version = 0  # bumped by every change of the ladder state; keys the cached `values`
        self._values: dict[str, Any] = {}
        self._values_version = -1

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
        self._version += 1

    def ladder_level(self, equity: float) -> int:
        cfg = self.cfg
        assert self.peak is not None and self.e_day0 is not None
        dd = 1.0 - equity / self.peak if self.peak > 0 else 0.0
        dl = max(0.0, 1.0 - equity / self.e_day0) if self.e_day0 > 0 else 0.0
        by_dd = sum(1 for t in cfg.drawdown_levels if dd >= t - _EPS)
        by_dl = sum(1 for t in cfg.daily_loss_levels if dl >= t - _EPS)
        return max(by_dd, by_dl)

    def on_minute(self, c: Candle, market: str) -> None:
        """A closed 1m candle of a market in use: the flash detector."""
        prev = self._prev_close.get(market)
        self._prev_close[market] = c.close
        close_ms = c.open_ms + c.interval_ms
        if prev is not None and abs(c.close / prev - 1.0) > self.cfg.flash_threshold:
            until = self._flash_until[market] = close_ms + int(self.cfg.flash_veto_s * 1000)
            self._flash_latest = max(self._flash_latest, until)
        if close_ms > self.last_ts:
            self.last_ts = close_ms

    def on_market_update(self, market: str, now_ms: int) -> None:
        """Any book or trade update of `market` (the stale detector)."""
        self._last_update[market] = now_ms

    def record_request(self, venue: str, ok: bool, now_ms: int) -> None:
        """One venue request outcome; errors are timeouts, transport, 5xx, 418, 429, auth (probes count)."""
        h = self._venues.get(venue)
        if h is None:
            h = self._venues[venue] = _VenueHealth()
        h.requests.append((now_ms, ok))
        h.errors += not ok

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

    def _venue_vetoes(self, now_ms: int) -> list[Veto]:
        cfg = self.cfg
        out = []
        horizon = now_ms - int(cfg.venue_window_s * 1000)
        for venue, h in self._venues.items():
            while h.requests and h.requests[0][0] <= horizon:
                _, ok = h.requests.popleft()
                h.errors -= not ok
            n = len(h.requests)
            rate = h.errors / n if n else 0.0
            if not h.unhealthy and n >= cfg.venue_min_requests and rate > cfg.venue_error_rate:
                h.unhealthy = True
            elif h.unhealthy and rate <= cfg.venue_recover_rate:
                h.unhealthy = False
            if h.unhealthy:
                out.append(Veto(f"venue:{venue}", f"error rate {rate:.1%} over {n} requests"))
        return out

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        if self.level < 2 and now_ms >= self._flash_latest and not (
                self.veto_active or self.halted or self._last_update or self._venues):
            return self._output((), ())  # nothing can veto or act: the common case, on every 1m close
        cfg = self.cfg
        vetoes: list[Veto] = []
        actions: list[Action] = []
        if self.veto_active and self.level <= 1 and not self.halted and self.calm_since_ms is not None \
                and now_ms - self.calm_since_ms >= cfg.veto_lift_s * 1000:
            self.veto_active, self.x_ref, self.acted_level = False, None, 0
            self._version += 1
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
                self.acted_level = max(self.acted_level, self.level)
        for market, until in self._flash_until.items():
            if now_ms < until:
                vetoes.append(Veto(f"market:{market}", f"flash move, veto until {until}"))
        stale_ms = cfg.stale_s * 1000
        for market, last in self._last_update.items():
            if now_ms - last > stale_ms:
                vetoes.append(Veto(f"market:{market}", f"no update for {(now_ms - last) / 1000:.0f} s"))
        if self._venues:
            vetoes.extend(self._venue_vetoes(now_ms))
        return self._output(tuple(vetoes), tuple(actions))

    def _output(self, vetoes: tuple[Veto, ...], actions: tuple[Action, ...]) -> ModuleOutput:
        if self._values_version != self._version:
            self._values_version = self._version
            self._values = self._ladder_values()
        values = self._values
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
