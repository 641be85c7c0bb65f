"""Equity for risk when some asset has no price: risk is never switched off by one unpriced asset.

An asset is priced by a configured market (its spot mark, through the portfolio) or by a configured fixed
USD price (``risk_limits.asset_prices_usd``, e.g. BNB dust). One that a configured market will price but
has no mark yet (start-up) is waited for at most ``risk_limits.unpriced_grace_s``: a valuation without it
would anchor the day's loss on a wrong equity. Anything else is valued at zero with one warning per asset.
When an asset valued at zero gets a price, its value enters equity as a *flow* (like a deposit), so it
never shows up as profit, and a loss made meanwhile is still counted.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ate.execution.portfolio import Portfolio
from ate.model import EngineEvent, MarketKind, Severity

ZERO = Decimal(0)


class Valuation:
    def __init__(self, portfolio: Portfolio, fixed_usd: dict[str, float], grace_ms: int,
                 clock: Callable[[], int], on_event: Callable[[EngineEvent], None]) -> None:
        self.portfolio = portfolio
        self.grace_ms = grace_ms
        self.clock = clock
        self.on_event = on_event
        self.started_ms: int | None = None  # the first valuation (a backtest's clock starts at its data)
        self.zeroed: set[str] = set()  # assets held but valued at zero, each warned about once
        for asset, price in fixed_usd.items():
            portfolio.prices.setdefault(asset, Decimal(repr(price)))

    def _marketed(self) -> set[str]:
        """Assets a configured spot market will price once its first mark arrives."""
        prices = self.portfolio.prices
        return {i.base for i in self.portfolio.instruments.values()
                if i.kind is MarketKind.SPOT and i.quote in prices}

    def equity(self, now: int | None = None) -> tuple[Decimal, Decimal] | None:
        """(equity, flow) at `now` (default: the clock's): ``flow`` is the value of assets priced for the first
        time since they were valued at zero. None while a configured market's first mark is awaited within
        the grace period."""
        if now is None:
            now = self.clock()
        if self.started_ms is None:
            self.started_ms = now
        if not self.zeroed:  # the common case: nothing to wait for, warn about or re-enter
            total = self.portfolio.priced_equity()
            if total is not None:
                return total, ZERO
        unpriced = set(self.portfolio.unpriced())
        flow = ZERO
        for asset in self.zeroed - unpriced:  # priced at last (its value is not a gain), or no longer held
            price = self.portfolio.prices.get(asset)
            if price is not None:
                flow += sum((w.get(asset, ZERO) for w in self.portfolio.balances.values()), ZERO) * price
            self.zeroed.discard(asset)
        waiting = unpriced & self._marketed() - self.zeroed
        if waiting and now - self.started_ms < self.grace_ms:
            return None
        for asset in sorted(unpriced - self.zeroed):
            self.zeroed.add(asset)
            held = sum((w.get(asset, ZERO) for w in self.portfolio.balances.values()), ZERO)
            self.on_event(EngineEvent(now, "unpriced_asset", f"{held} {asset} has no price: valued at 0 "
                                      "(configure risk_limits.asset_prices_usd or a market for it)",
                                      Severity.WARNING, {"asset": asset, "qty": str(held)}))
        return self.portfolio.equity(), flow
