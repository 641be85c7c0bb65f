"""The basis between two quote assets (e.g. USDT per USDC) as a live, validated market, and the gate it
puts on strategies whose legs settle in different quotes.

The rate comes from one conversion market (its mid, e.g. `binance:USDCUSDT` = USDT per USDC) or from a
cross of two markets (`mid(first) / mid(second)`), either the same base in the two quotes
(`BTCUSDT / BTCUSDC`) or the two quotes priced in a third asset (`USDCUSD / USDTUSD`). The books come
through the same validation as every price (the data manager and the core quarantine poisoned ones);
the guard adds age and sanity checks of its own. A fixed rate is only ever an explicit override.

Gate: a rate that is missing, stale, invalid, or further from 1 than the band vetoes trading across
the two quotes with a reason and one CRITICAL event; trading resumes only after the rate has stayed
valid and inside the band for `resume_s` without interruption.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ate.data.validate import check_book
from ate.model import Severity

ONE = Decimal(1)
TWO = Decimal(2)


class BasisSpecError(ValueError):
    """The configured conversion markets do not convert the second quote into the first."""


@dataclass(frozen=True, slots=True)
class BasisSpec:
    """What converts `quote_b` into `quote_a`: markets whose mid ratio is `quote_a` per `quote_b`."""

    quote_a: str
    quote_b: str
    fixed: Decimal | None = None  # explicit override: no live market, no gate
    markets: tuple[str, ...] = ()  # one market (its mid) or two (mid[0] / mid[1])
    max_age_ms: int = 60_000
    band_bps: float | None = 30.0  # None: the band is disabled (staleness still vetoes)
    resume_ms: int = 300_000

    def check_units(self, assets: Callable[[str], tuple[str, str]]) -> None:
        """Raise BasisSpecError unless the markets' (base, quote) make the ratio quote_a per quote_b."""
        a, b = self.quote_a, self.quote_b
        if len(self.markets) == 1:
            base, quote = assets(self.markets[0])
            if (base, quote) != (b, a):
                raise BasisSpecError(f"{self.markets[0]} is {base}/{quote}, not {b}/{a} ({a} per {b})")
            return
        (b1, q1), (b2, q2) = assets(self.markets[0]), assets(self.markets[1])
        same_base = b1 == b2 and (q1, q2) == (a, b)
        same_quote = q1 == q2 and (b1, b2) == (b, a)
        if not (same_base or same_quote):
            raise BasisSpecError(f"{self.markets[0]} ({b1}/{q1}) / {self.markets[1]} ({b2}/{q2}) is not {a} per {b}")


Book = Callable[[str], Any]  # market -> BookTicker | None
Emit = Callable[[int, str, str, Severity, dict[str, Any]], None]  # ts, kind, message, severity, data


class BasisGuard:
    """Reads the live rate and decides whether trading across the two quotes is allowed at `now`."""

    def __init__(self, spec: BasisSpec, emit: Emit) -> None:
        self.spec = spec
        self.emit = emit
        self.rate: Decimal | None = spec.fixed
        self.rate_ms: int | None = None
        self.source = "fixed" if spec.fixed is not None else "none"
        self.veto: str | None = None  # the reason trading is refused, None when allowed
        self.vetoed_since_ms: int | None = None
        self.ok_since_ms: int | None = None  # start of the current uninterrupted run of good readings
        self.vetoes = 0
        self._units_checked = False
        # per conversion market, the last book read and its mid: a book is validated and halved once, not on
        # every book of the traded markets that reads it again
        self._books: list[Any] = []
        self._mids: list[Decimal] = []

    @property
    def markets(self) -> tuple[str, ...]:
        """The conversion markets to subscribe to."""
        return () if self.spec.fixed is not None else self.spec.markets

    def update(self, book: Book, now: int, assets: Callable[[str], tuple[str, str]] | None = None) -> Decimal | None:
        """The rate to trade at now, or None while the basis vetoes trading (see `veto`)."""
        if self.spec.fixed is not None:
            return self.spec.fixed
        if not self._units_checked and assets is not None:
            self._units_checked = True
            problem = None
            try:
                self.spec.check_units(assets)
            except BasisSpecError as exc:
                problem = str(exc)
            except KeyError as exc:  # the engine has no instrument for it: its venue does not list it
                problem = f"{exc.args[0]} is not listed by its venue"
            if problem is not None:
                self.spec = BasisSpec(self.spec.quote_a, self.spec.quote_b, None, (), 0, self.spec.band_bps,
                                      self.spec.resume_ms)
                self.emit(now, "basis_config", f"conversion market unusable: {problem}", Severity.CRITICAL,
                          {"key": f"basis_config:{self.spec.quote_a}/{self.spec.quote_b}"})
        rate, problem = self._read(book, now)
        if rate is not None:
            self.rate, self.rate_ms = rate, now
        if problem is None:
            problem = self._outside_band(rate)
        return self._gate(problem, now)

    def _read(self, book: Book, now: int) -> tuple[Decimal | None, str | None]:
        spec = self.spec
        if not spec.markets:
            return None, "no usable conversion market"
        if len(self._books) != len(spec.markets):
            self._books, self._mids = [None] * len(spec.markets), [ONE] * len(spec.markets)
        mids = []
        for n, m in enumerate(spec.markets):
            b = book(m)
            if b is None:
                return None, f"no price for {m}"
            if b is not self._books[n]:
                problem = check_book(b, None)
                if problem is not None:
                    return None, f"{m} quarantined ({problem})"
                self._books[n], self._mids[n] = b, (b.bid + b.ask) / TWO
            if now - b.ts_ms > spec.max_age_ms:
                return None, f"{m} stale ({(now - b.ts_ms) / 1000:.0f} s old)"
            mids.append(self._mids[n])
        self.source = "mid" if len(mids) == 1 else "cross"
        return (mids[0] if len(mids) == 1 else mids[0] / mids[1]), None

    def _outside_band(self, rate: Decimal | None) -> str | None:
        band = self.spec.band_bps
        if rate is None or band is None:
            return None
        off = float(rate - ONE) * 1e4
        if abs(off) > band:
            return f"basis {off:+.1f} bps outside ±{band:g} bps"
        return None

    def _gate(self, problem: str | None, now: int) -> Decimal | None:
        if problem is not None:
            self.ok_since_ms = None
            if self.veto is None:
                self.vetoes += 1
                self.vetoed_since_ms = now
                self.emit(now, "basis_veto", f"{self.spec.quote_a}/{self.spec.quote_b} {problem}: arbitrage across "
                          "the two quotes vetoed", Severity.CRITICAL, self._data(problem))
            self.veto = problem
            return None
        if self.veto is None:
            return self.rate
        if self.ok_since_ms is None:
            self.ok_since_ms = now
        if now - self.ok_since_ms < self.spec.resume_ms:
            self.veto = f"basis back inside the band for {(now - self.ok_since_ms) / 1000:.0f} of " \
                        f"{self.spec.resume_ms / 1000:.0f} s"
            return None
        self.emit(now, "basis_resumed", f"{self.spec.quote_a}/{self.spec.quote_b} basis inside the band for "
                  f"{self.spec.resume_ms / 1000:.0f} s: arbitrage resumes", Severity.WARNING, self._data(None))
        self.veto = self.vetoed_since_ms = None
        return self.rate

    def _data(self, problem: str | None) -> dict[str, Any]:
        return {"key": f"basis:{self.spec.quote_a}/{self.spec.quote_b}", "reason": problem,
                "rate": None if self.rate is None else str(self.rate), "source": self.source}

    def status(self) -> dict[str, Any]:
        return {"quotes": f"{self.spec.quote_a}/{self.spec.quote_b}", "rate": None if self.rate is None else
                float(self.rate), "rate_ms": self.rate_ms, "source": self.source, "band_bps": self.spec.band_bps,
                "veto": self.veto, "vetoed_since_ms": self.vetoed_since_ms, "vetoes": self.vetoes}

    def state(self) -> dict[str, Any]:
        return {"veto": self.veto, "vetoed_since_ms": self.vetoed_since_ms, "vetoes": self.vetoes}

    def restore(self, state: dict[str, Any]) -> None:
        """A restart keeps a veto in force (its resume clock restarts only from readings it sees)."""
        self.veto = state.get("veto")
        self.vetoed_since_ms = state.get("vetoed_since_ms")
        self.ok_since_ms = None
        self.vetoes = int(state.get("vetoes", 0))


def spec_for(quote_a: str, quote_b: str, *, fixed: float | Decimal | None, market: str | None,
             cross: Sequence[str] | None, max_age_s: float, band_bps: float | None, resume_s: float) -> BasisSpec:
    markets: tuple[str, ...] = tuple(cross) if cross else ((market,) if market else ())
    rate = None if fixed is None else (fixed if isinstance(fixed, Decimal) else Decimal(repr(fixed)))
    return BasisSpec(quote_a, quote_b, rate, markets, int(max_age_s * 1000), band_bps, int(resume_s * 1000))
