"""SignalEngine: the eight modules + combiner + aggregation for one primary market.

The one implementation used by the live engine, the backtester and `ate signals`: feed it closed
candles (and equity, fills, DVOL, hedge-book snapshots); on each decision-bar close it returns a
`Decision` with every module's output. Time is always the candles' / callers' `now_ms`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from ate.config import EngineConfig
from ate.config.modules import ModulesConfig
from ate.data.candles import INTERVAL_MS, MINUTE_MS, Aggregator, Candle
from ate.data.loaders import DvolPoint
from ate.signals.atr_supertrend import AtrSupertrend
from ate.signals.base import ModuleOutput, SafeModule, Status
from ate.signals.bitvol import Bitvol
from ate.signals.combiner import Combined, Intent, combine, decide
from ate.signals.emergency import Emergency
from ate.signals.gamma import Gamma, HedgeBook
from ate.signals.garch import Garch, GarchFit, fit_garch
from ate.signals.kelly import Kelly
from ate.signals.lxvx import Lxvx
from ate.signals.multi_timeframe import MultiTimeframe

TF_BY_MS = {ms: tf for tf, ms in INTERVAL_MS.items()}


def signal_markets(cfg: EngineConfig) -> list[str]:
    """Markets with a signal engine: the primary one, then each directional market (each its own engine)."""
    d = cfg.strategies.directional
    return list(dict.fromkeys([cfg.markets.primary, *(d.markets if d.enabled else ())]))
MODULE_ORDER = ("atr_supertrend", "multi_timeframe", "lxvx", "bitvol", "garch", "kelly", "emergency", "gamma")
VOTERS = ("atr_supertrend", "lxvx", "multi_timeframe")


@dataclass(frozen=True, slots=True)
class Decision:
    ts: int  # decision bar close time (UTC ms)
    bar: Candle  # the decision-timeframe bar that closed
    outputs: dict[str, ModuleOutput]  # every module, in MODULE_ORDER
    combined: Combined
    intent: Intent
    market: str = ""  # the engine's market (`venue:SYMBOL`): one engine per directional market

    def to_dict(self) -> dict[str, Any]:
        c = self.combined
        return {
            "ts": self.ts,
            "bar": {"open_ms": self.bar.open_ms, "open": self.bar.open, "high": self.bar.high,
                    "low": self.bar.low, "close": self.bar.close, "volume": self.bar.volume,
                    "complete": self.bar.complete},
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
            "combined": {"side": c.side.value if c.side else None, "confidence": c.confidence, "buy": c.buy,
                         "sell": c.sell, "total": c.total, "reason": c.reason},
            "intent": {"kind": self.intent.kind, "side": self.intent.side.value if self.intent.side else None,
                       "size_fraction": self.intent.size_fraction, "reason": self.intent.reason},
        }


class _Cascade:
    """Base candles → 15m → 1h → 4h → 1d, each level folding the one below (one aggregator touched per
    base candle most of the time). `complete` and `n_base` of higher levels are carried up from the
    children so a missing minute anywhere marks every bucket containing it incomplete."""

    __slots__ = ("levels",)

    def __init__(self, base_ms: int, timeframes: Iterable[str]) -> None:
        self.levels: list[list[Any]] = []  # [tf, aggregator, bucket start, n_base sum, all complete]
        below = base_ms
        for tf in sorted(timeframes, key=INTERVAL_MS.__getitem__):
            ms = INTERVAL_MS[tf]
            if ms <= base_ms:
                continue
            self.levels.append([tf, Aggregator(ms, below), None, 0, True])
            below = ms

    def feed(self, c: Candle) -> list[tuple[str, Candle]]:
        """A base candle; returns the (timeframe, bucket) pairs it closed, lowest timeframe first."""
        levels = self.levels
        if not levels:
            return []
        children = levels[0][1].update(c)
        if not children:
            return []  # the common case: the base candle closed no bucket
        return [(levels[0][0], b) for b in children] + self._up(children, 1)

    def feed_native(self, c: Candle) -> list[tuple[str, Candle]]:
        """A native bucket of a higher timeframe (warm-up history): folds it into the levels above it."""
        for i, level in enumerate(self.levels):
            if level[1].base_ms == c.interval_ms:
                return self._up((c,), i)
        return []

    def _up(self, children: tuple[Candle, ...], first: int) -> list[tuple[str, Candle]]:
        out: list[tuple[str, Candle]] = []
        for level in self.levels[first:]:
            agg = level[1]
            emitted: list[Candle] = []
            for child in children:
                start = child.open_ms - child.open_ms % agg.interval_ms
                prev = None
                if start != level[2]:
                    prev = (level[2], level[3], level[4])
                    level[2], level[3], level[4] = start, 0, True
                level[3] += child.n_base
                level[4] = level[4] and child.complete
                for bar in agg.update(child):
                    stats = prev if prev is not None and bar.open_ms == prev[0] else (None, level[3], level[4])
                    emitted.append(Candle(bar.open_ms, bar.open, bar.high, bar.low, bar.close, bar.volume,
                                          bar.interval_ms, stats[1], bar.complete and stats[2]))
            if not emitted:
                break
            out.extend((level[0], b) for b in emitted)
            children = tuple(emitted)
        return out


class SignalEngine:
    """All signal modules of one primary market.

    Inputs: `on_candle` (closed base candles; or native higher-timeframe candles for warm-up),
    `push_dvol`, `update_equity`, `record_trade`, `set_position`, hedge-book methods, detector inputs.
    Outputs: `on_candle` returns a `Decision` at each decision-bar close; `overrides(now_ms)` gives the
    emergency and gamma outputs for the 1m / 1 s loop. No method raises on bad input: it is counted in
    `rejected_candles` / `update_errors` and the affected module reports ERROR at the next evaluation.
    """

    def __init__(self, cfg: ModulesConfig | None = None, *, market: str = "binance:BTCUSDT",
                 base_interval: str = "1m", dvol_history: Iterable[DvolPoint] = (),
                 garch_fitter: Callable[[np.ndarray], GarchFit] = fit_garch, allow_short: bool = False) -> None:
        self.cfg = cfg = cfg or ModulesConfig()
        self.market = market
        self.venue = market.partition(":")[0] or None
        self.allow_short = allow_short
        self.base_ms = INTERVAL_MS[base_interval]
        self.decision_tf = cfg.decision_timeframe
        decision_ms = INTERVAL_MS[self.decision_tf]
        if decision_ms < self.base_ms:
            raise ValueError(f"decision timeframe {self.decision_tf} is below the base interval {base_interval}")
        grace = int(cfg.stale_grace_s * 1000)
        self.atr_supertrend = AtrSupertrend(cfg.atr_supertrend, decision_ms, grace, cfg.max_gap_bars)
        self.multi_timeframe = MultiTimeframe(cfg.multi_timeframe, self.base_ms)
        self.lxvx = Lxvx(cfg.lxvx, decision_ms, grace, cfg.max_gap_bars)
        self.bitvol = Bitvol(cfg.bitvol, dvol_history)
        self.garch = Garch(cfg.garch, garch_fitter, grace, rv=self.bitvol.rv, max_gap_bars=cfg.max_gap_bars)
        self.kelly = Kelly(cfg.kelly)
        self.emergency = Emergency(cfg.emergency)
        self.gamma = Gamma(cfg.gamma)
        self.modules: dict[str, SafeModule] = {m: getattr(self, m) for m in MODULE_ORDER}
        self._cascade = _Cascade(self.base_ms, {*cfg.multi_timeframe.weights, "1h", self.decision_tf})
        self._base_tf = TF_BY_MS[self.base_ms]
        self.position = 0.0
        self._garch_sigma: float | None = None
        self.rejected_candles = 0
        self._last_open: dict[int, int] = {}  # newest open time accepted per interval (but 1m base candles)
        self._last_base_open: float = -math.inf  # newest 1m base candle accepted
        self.update_errors: dict[str, str] = {}  # module → last update error since its last evaluation

    # ---- market data ----------------------------------------------------------------------------

    def on_candle(self, c: Candle) -> Decision | None:
        """A closed candle of the primary market; returns a Decision if a decision bar closed.

        Base-interval candles are aggregated. A candle of a higher interval is taken as a native
        bucket of that timeframe (history warm-up before the base stream starts; do not mix both
        for the same period).
        """
        if not (0.0 < c.low <= c.open <= c.high and c.low <= c.close <= c.high and c.volume >= 0.0):
            self.rejected_candles += 1  # NaN fails every comparison and lands here too
            return None
        interval = c.interval_ms
        if interval == MINUTE_MS == self.base_ms:  # the hot path: one per minute, most close nothing above
            if c.open_ms <= self._last_base_open:
                self.rejected_candles += 1  # duplicate or out of order
                return None
            self._last_base_open = c.open_ms
            try:
                self.emergency.on_minute(c, self.market)
            except Exception as exc:
                self.update_errors["emergency"] = f"{type(exc).__name__}: {exc}"
            bars = self._cascade.feed(c)
            if not bars:
                return None
        else:
            last = self._last_open.get(interval)
            if last is not None and c.open_ms <= last:
                self.rejected_candles += 1  # duplicate or out of order
                return None
            self._last_open[interval] = c.open_ms
            if interval == self.base_ms:
                bars = [(self._base_tf, c), *self._cascade.feed(c)]
            else:
                tf = TF_BY_MS.get(interval)
                if tf is None:
                    self.rejected_candles += 1
                    return None
                bars = [(tf, c), *self._cascade.feed_native(c)]
        # Every timeframe this candle closes is complete before the decision (a 1h close at 04:00 also
        # closes the 00:00-04:00 bar, which the decision at 04:00 must see).
        for tf, bar in bars:
            self._dispatch(tf, bar)
        decision = None
        for tf, bar in bars:
            if tf == self.decision_tf:
                decision = self.decide(bar)
        return decision

    def observe_candle(self, market: str, c: Candle) -> None:
        """A closed 1m candle of another market in use (arbitrage, carry legs): the flash detector only."""
        self._update("emergency", self.emergency.on_minute, c, market)

    def _update(self, name: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self.update_errors[name] = f"{type(exc).__name__}: {exc}"

    def _dispatch(self, tf: str, bar: Candle) -> None:
        self._update("multi_timeframe", self.multi_timeframe.update, tf, bar)
        if tf == "1h":
            self._update("bitvol", self.bitvol.update, bar)
            self._update("garch", self.garch.update, bar)
        if tf == self.decision_tf:
            self._update("atr_supertrend", self.atr_supertrend.update, bar)
            self._update("lxvx", self.lxvx.update, bar)

    # ---- evaluation -----------------------------------------------------------------------------

    def _eval(self, name: str, now_ms: int) -> ModuleOutput:
        module = self.modules[name]
        err = self.update_errors.pop(name, None)
        if err is not None:
            module.consecutive_errors += 1
            n = module._neutral(module.last_ts)
            return msgspec.structs.replace(n, status=Status.ERROR, reason=f"update failed: {err}")
        if name == "bitvol":
            g = self._garch_sigma
            return self.bitvol.evaluate(now_ms, g)
        return module.evaluate(now_ms)

    def evaluate_all(self, now_ms: int) -> dict[str, ModuleOutput]:
        out: dict[str, ModuleOutput] = {}
        garch = out["garch"] = self._eval("garch", now_ms)
        sigma = garch.values.get("sigma_1step_ann")
        self._garch_sigma = sigma if garch.status not in (Status.ERROR, Status.STALE) else None
        for name in MODULE_ORDER:
            if name != "garch":
                out[name] = self._eval(name, now_ms)
        return {name: out[name] for name in MODULE_ORDER}

    def decide(self, bar: Candle) -> Decision:
        """Evaluate every module at the close of `bar` and combine."""
        now = bar.open_ms + bar.interval_ms
        outputs = self.evaluate_all(now)
        combined = combine((outputs[v] for v in VOTERS), self.cfg.combiner)
        intent = decide(combined, outputs, self.position, allow_short=self.allow_short,
                        market=self.market, venue=self.venue)
        return Decision(now, bar, outputs, combined, intent, self.market)

    def overrides(self, now_ms: int) -> tuple[ModuleOutput, ModuleOutput]:
        """(emergency, gamma) outputs: call on every 1m close and 1 s tick, and after fills."""
        if self.update_errors:
            return self._eval("emergency", now_ms), self._eval("gamma", now_ms)
        return self.emergency.evaluate(now_ms), self.gamma.evaluate(now_ms)  # the common case, without lookups

    # ---- other inputs -----------------------------------------------------------------------------

    def push_dvol(self, value: float, ts_ms: int) -> None:
        self._update("bitvol", self.bitvol.push_dvol, value, ts_ms)

    def update_equity(self, equity: float, now_ms: int, gross_exposure: float | None = None,
                      flow: float = 0.0) -> None:
        self._update("emergency", self.emergency.update_equity, equity, now_ms, gross_exposure, flow)

    def record_trade(self, net_pnl: float, entry_notional: float, ts_ms: int, hypothetical: bool = False) -> None:
        self._update("kelly", self.kelly.record_trade, net_pnl, entry_notional, ts_ms, hypothetical)

    def set_position(self, qty: float) -> None:
        """Signed base position of the directional strategy on the primary market."""
        self.position = qty

    def register_hedge_book(self, book_id: str, book: HedgeBook) -> None:
        self.gamma.register_book(book_id, book)

    def update_hedge_book(self, book_id: str, spot: float, perp: float, mark: float, snapshot_ms: int,
                          in_flight: bool = False) -> None:
        self._update("gamma", self.gamma.update_book, book_id, spot, perp, mark, snapshot_ms, in_flight)

    def on_hedge(self, book_id: str, now_ms: int, price: float) -> None:
        self._update("gamma", self.gamma.on_hedge, book_id, now_ms, price)

    def on_market_update(self, market: str, now_ms: int) -> None:
        self.emergency.on_market_update(market, now_ms)

    def record_request(self, venue: str, ok: bool, now_ms: int) -> None:
        self.emergency.record_request(venue, ok, now_ms)

    def resume(self, equity: float, now_ms: int) -> None:
        self.emergency.resume(equity, now_ms)

    def alerts(self) -> list[str]:
        """Modules with 3 or more consecutive ERROR evaluations: the operator must be alerted (§2)."""
        return [name for name, m in self.modules.items() if m.alert]

    def export_state(self) -> dict[str, Any]:
        """Plain-dict state the store persists (emergency ladder and halt, kelly trade history)."""
        return {"emergency": self.emergency.export_state(), "kelly": self.kelly.export_state()}

    def import_state(self, state: dict[str, Any]) -> None:
        if "emergency" in state:
            self.emergency.import_state(state["emergency"])
        if "kelly" in state:
            self.kelly.import_state(state["kelly"])
