"""The stateful part of the market-data filter: is this book's price believable, given what was confirmed?

Per market it keeps an anchor: the last confirmed mid. A market's first price is checked against an independent
reference (a REST ticker, the last closed candle) within ``reference_band``; after that every book must stay
within ``max_jump`` of the anchor, and the anchor follows each accepted book, so the band moves with the market.
A book beyond the band (a spike or a drop) or with a spread beyond ``max_spread`` is quarantined and never
moves the anchor. A market can never be locked for good: after ``reanchor_after`` quarantined books in a row
(or ``reanchor_after_ms`` of them) the guard asks for a fresh reference, and the reference becomes the anchor.
If the market really moved, the books follow the new anchor; if the feed was poisoned, they stay quarantined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

Key = tuple[str, str]  # (venue, symbol)
TWO = Decimal(2)

QUARANTINED, RECOVERED, REANCHORED = "market_data_quarantined", "market_data_recovered", "market_data_reanchored"


@dataclass(frozen=True, slots=True)
class GuardBounds:
    max_jump: float = 0.05
    max_spread: float = 0.02
    reference_band: float = 0.05
    reanchor_after: int = 20
    reanchor_after_ms: int = 30_000
    ask_interval_ms: int = 1_000  # at most one reference request per market this often


@dataclass(slots=True)
class _Market:
    anchor: Decimal | None = None
    confirmed: bool = False  # the anchor came from a book, not only from a reference
    rejected: int = 0  # quarantined books since the last accepted one
    first_rejected_ms: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    asked: bool = False  # a reference request is outstanding
    asked_ms: int | None = None


class PriceGuard:
    """``ask_reference(key)`` requests an independent price (answered later by :meth:`set_reference`);
    ``on_event(kind, key, data)`` hears the start and end of every quarantine episode and every re-anchor."""

    def __init__(self, bounds: GuardBounds = GuardBounds(), *,
                 ask_reference: Callable[[Key], None] | None = None,
                 on_event: Callable[[str, Key, dict], None] | None = None) -> None:
        self.bounds = bounds
        self.ask_reference = ask_reference
        self.on_event = on_event
        self._markets: dict[Key, _Market] = {}
        # Decimal once here: converting a float on every book would be most of the guard's cost
        self._spread = Decimal(str(bounds.max_spread))
        self._up = 1 + Decimal(str(bounds.max_jump))
        self._ref_up = 1 + Decimal(str(bounds.reference_band))

    def anchor(self, key: Key) -> Decimal | None:
        m = self._markets.get(key)
        return None if m is None else m.anchor

    def set_reference(self, key: Key, price: Decimal, ts_ms: int, source: str) -> None:
        """An independent price for ``key`` (REST ticker, candle close): the anchor books are judged against."""
        if not price.is_finite() or price <= 0:
            return
        m = self._markets.setdefault(key, _Market())
        previous, m.anchor, m.confirmed, m.asked = m.anchor, price, False, False
        if previous is not None and m.rejected:
            self._emit(REANCHORED, key, {"from": str(previous), "to": str(price), "source": source,
                                         "quarantined": m.rejected, "ts_ms": ts_ms})

    def check(self, key: Key, bid: Decimal, ask: Decimal, ts_ms: int) -> str | None:
        """None to accept (the anchor moves to this book's mid), else the reason it is quarantined.

        ``bid`` and ``ask`` have passed the structural checks (finite, positive, not crossed)."""
        m = self._markets.get(key)
        if m is None:
            m = self._markets[key] = _Market()
        mid = (bid + ask) / TWO
        if ask - bid > mid * self._spread:
            return self._reject(m, key, "wide_spread", mid, ts_ms)
        if m.anchor is None:
            return self._reject(m, key, "no_reference", mid, ts_ms)
        up = self._up if m.confirmed else self._ref_up
        if mid > m.anchor * up:
            return self._reject(m, key, "spike" if m.confirmed else "off_reference", mid, ts_ms)
        if mid * up < m.anchor:
            return self._reject(m, key, "drop" if m.confirmed else "off_reference", mid, ts_ms)
        m.anchor, m.confirmed = mid, True
        if m.rejected:
            self._emit(RECOVERED, key, {"price": str(mid), "quarantined": m.rejected, "reasons": dict(m.reasons),
                                        "ts_ms": ts_ms})
            m.rejected, m.reasons = 0, {}
        return None

    def _reject(self, m: _Market, key: Key, reason: str, mid: Decimal, ts_ms: int) -> str:
        if m.rejected == 0:
            m.first_rejected_ms = ts_ms
            self._emit(QUARANTINED, key, {"reason": reason, "price": str(mid),
                                          "anchor": None if m.anchor is None else str(m.anchor), "ts_ms": ts_ms})
        m.rejected += 1
        m.reasons[reason] = m.reasons.get(reason, 0) + 1
        stuck = (m.anchor is None or m.rejected % self.bounds.reanchor_after == 0
                 or ts_ms - m.first_rejected_ms >= self.bounds.reanchor_after_ms)
        recent = m.asked_ms is not None and ts_ms - m.asked_ms < self.bounds.ask_interval_ms
        if stuck and not m.asked and not recent and self.ask_reference is not None:
            m.asked, m.asked_ms = True, ts_ms
            self.ask_reference(key)
        return reason

    def reference_failed(self, key: Key) -> None:
        """The requested reference could not be had; the next quarantined book may ask again."""
        m = self._markets.get(key)
        if m is not None:
            m.asked = False

    def _emit(self, kind: str, key: Key, data: dict) -> None:
        if self.on_event is not None:
            self.on_event(kind, key, data)
