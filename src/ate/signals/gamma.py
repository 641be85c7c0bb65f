"""gamma hedge controller (§5.2): keeps each hedged book's delta inside its band with perp hedges."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from msgspec.structs import replace

from ate.config.modules import GammaConfig
from ate.signals.base import Action, ModuleOutput, SafeModule, Status, Veto

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class HedgeCheck:
    delta: float  # Δ = S + P
    target: float  # T = (1 − h)·S
    deviation: float  # d = Δ − T
    band: float
    soft: float
    qty: float | None  # signed perp qty to trade, None when no hedge is due
    reason: str


def hedge_check(spot: float, perp: float, hedge_ratio: float, step: float, *, hours_since_hedge: float,
                move_since_hedge: float, mark: float, min_qty: float = 0.0, min_notional: float = 0.0,
                cfg: GammaConfig | None = None) -> HedgeCheck:
    """The §5.2 rule for one book: hedge `−d` rounded to the step when |d| leaves the band (or the soft
    band after `rebalance_hours` or a `move_pct` mark move since the last hedge)."""
    cfg = cfg or GammaConfig()
    delta = spot + perp
    target = (1.0 - hedge_ratio) * spot
    d = delta - target
    h_abs = hedge_ratio * abs(spot)
    band = max(cfg.band_pct * h_abs, step)
    soft = max(cfg.soft_pct * h_abs, step)
    ad = abs(d)
    if ad > band:
        why = "outside band"
    elif ad > soft and hours_since_hedge >= cfg.rebalance_hours:
        why = f"soft band after {hours_since_hedge:.1f} h"
    elif ad > soft and abs(move_since_hedge) >= cfg.move_pct:
        why = f"soft band after a {move_since_hedge:.2%} move"
    else:
        return HedgeCheck(delta, target, d, band, soft, None, "inside band")
    qty = -round(d / step) * step
    if qty == 0.0:
        return HedgeCheck(delta, target, d, band, soft, None, "rounds to zero")
    if abs(qty) < min_qty or abs(qty) * mark < min_notional:
        return HedgeCheck(delta, target, d, band, soft, None, "below_min")
    return HedgeCheck(delta, target, d, band, soft, qty, why)


@dataclass(slots=True)
class HedgeBook:
    asset: str
    venue: str
    instrument: str  # the book's hedge perp
    hedge_ratio: float
    step: float
    min_qty: float = 0.0
    min_notional: float = 0.0
    spot: float = 0.0
    perp: float = 0.0
    mark: float = math.nan
    snapshot_ms: int | None = None
    in_flight: bool = False
    last_hedge_ms: int | None = None
    last_hedge_price: float | None = None


class Gamma(SafeModule):
    name = "gamma"
    __slots__ = ("cfg", "books", "_version", "_out", "_out_version", "_out_keep", "_out_from", "_out_snapshot",
                 "_out_stale")

    def __init__(self, cfg: GammaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.books: dict[str, HedgeBook] = {}
        self._version = 0  # bumped by every change that can change the output
        # The last output and where it holds (see `evaluate`)
        self._out: ModuleOutput | None = None
        self._out_version = -1
        self._out_keep = False
        self._out_from = 0
        self._out_snapshot: int | None = None  # the oldest snapshot of the books it found fresh
        self._out_stale: set[str] = set()  # the books it found stale

    def register_book(self, book_id: str, book: HedgeBook) -> None:
        self.books[book_id] = book
        self._version += 1

    def update_book(self, book_id: str, spot: float, perp: float, mark: float, snapshot_ms: int,
                    in_flight: bool = False) -> None:
        """Account snapshot of a book: spot coins over all venues, signed perp coins, mark price."""
        b = self.books[book_id]
        # The same coins again, in a snapshot no older than the last, of a book the last output found fresh:
        # nothing that output says changes (a kept output's fresh books are inside their soft band, a verdict
        # that reads neither the mark nor the clock); the book just stays fresh longer than the output assumes.
        if b.last_hedge_ms is None or book_id in self._out_stale or b.snapshot_ms is None \
                or not (spot == b.spot and perp == b.perp and in_flight == b.in_flight
                        and snapshot_ms >= b.snapshot_ms):
            self._version += 1
        b.spot, b.perp, b.mark, b.snapshot_ms, b.in_flight = spot, perp, mark, snapshot_ms, in_flight
        if b.last_hedge_ms is None:  # the book's start counts as its first hedge for the 4 h and move rules
            b.last_hedge_ms, b.last_hedge_price = snapshot_ms, mark
        self.last_ts = max(self.last_ts, snapshot_ms)

    def on_hedge(self, book_id: str, now_ms: int, price: float) -> None:
        """A hedge instruction was filled."""
        b = self.books[book_id]
        b.last_hedge_ms, b.last_hedge_price, b.in_flight = now_ms, price, False
        self._version += 1

    def evaluate(self, now_ms: int) -> ModuleOutput:
        """The output at `now_ms`; the last one again (its `ts` brought up to date) while it provably holds.

        Kept only when every book was stale or inside its soft band: band and soft limits depend on the coins,
        the ratio and the step, so those verdicts read neither the mark nor the hours since the last hedge.
        It then holds while the books are unchanged (`_version`), the clock has not gone back (a stale book
        stays stale) and the fresh books are within max_snapshot_age_s of the oldest snapshot it judged.
        """
        if self._out_version == self._version and self._out_from <= now_ms and (
                self._out_snapshot is None or now_ms - self._out_snapshot <= self.cfg.max_snapshot_age_s * 1000
                or self._fresh_since(now_ms)):
            self.consecutive_errors = 0
            out = self._out
            if out.ts != self.last_ts:  # type: ignore[union-attr]  (kept: `_out_version` is -1 without one)
                out = self._out = replace(out, ts=self.last_ts)  # type: ignore[arg-type]
            return out  # type: ignore[return-value]
        version = self._version
        self._out_keep, self._out_from, self._out_snapshot = True, now_ms, None
        self._out_stale = set()
        out = super().evaluate(now_ms)
        keep = self._out_keep and self._version == version and out.status is not Status.ERROR
        self._out, self._out_version = (out, version) if keep else (None, -1)
        return out

    def _fresh_since(self, now_ms: int) -> bool:
        """The books the kept output found fresh are still fresh at `now_ms` by their snapshots since (same
        coins, never older: anything else bumps `_version`); the new oldest one is kept."""
        oldest = min(b.snapshot_ms for book_id, b in self.books.items()  # type: ignore[type-var]
                     if book_id not in self._out_stale)
        if now_ms - oldest <= self.cfg.max_snapshot_age_s * 1000:
            self._out_snapshot = oldest
            return True
        return False

    def _evaluate(self, now_ms: int) -> ModuleOutput:
        if not self.books:
            return ModuleOutput(self.name, self.last_ts, Status.OK, reason="no hedged books")
        actions: list[Action] = []
        vetoes: list[Veto] = []
        values: dict[str, Any] = {}
        status = Status.OK
        max_age = self.cfg.max_snapshot_age_s * 1000
        oldest = None
        for book_id, b in self.books.items():
            if b.snapshot_ms is None or b.in_flight or now_ms - b.snapshot_ms > max_age:
                status = Status.STALE
                why = "hedge in flight" if b.in_flight else "account snapshot too old"
                vetoes.append(Veto("hedged", f"{book_id}: {why}"))
                values[book_id] = {"reason": why}
                self._out_stale.add(book_id)
                continue
            assert b.last_hedge_ms is not None and b.last_hedge_price is not None
            chk = hedge_check(b.spot, b.perp, b.hedge_ratio, b.step,
                              hours_since_hedge=(now_ms - b.last_hedge_ms) / HOUR_MS,
                              move_since_hedge=b.mark / b.last_hedge_price - 1.0, mark=b.mark,
                              min_qty=b.min_qty, min_notional=b.min_notional, cfg=self.cfg)
            values[book_id] = {"delta": chk.delta, "target": chk.target, "deviation": chk.deviation,
                               "band": chk.band, "soft": chk.soft, "reason": chk.reason,
                               "last_hedge_ms": b.last_hedge_ms, "last_hedge_price": b.last_hedge_price}
            if chk.qty is not None:
                actions.append(Action("HEDGE", asset=b.asset, venue=b.venue, instrument=b.instrument, qty=chk.qty))
            ad = abs(chk.deviation)
            if ad > chk.soft or ad > chk.band:
                self._out_keep = False  # the time and move rules (and the mark, for min notional) may decide
            if oldest is None or b.snapshot_ms < oldest:
                oldest = b.snapshot_ms
        self._out_snapshot = oldest
        return ModuleOutput(self.name, self.last_ts, status, None, None, None, tuple(vetoes), tuple(actions), values)

    def _neutral(self, ts: int) -> ModuleOutput:
        return ModuleOutput(self.name, ts, Status.ERROR, None, None, None, (Veto("hedged", "gamma module error"),))
