"""The StrategyContext the trading core hands to strategies: a live view of the core's state."""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import TYPE_CHECKING

from ate.model import Balance, Instrument, Position, Side, TradingState
from ate.model.market import BookTicker
from ate.strategies.base import FundingInfo, MarginInfo

if TYPE_CHECKING:
    from ate.trading.core import TradingCore


class CoreContext:
    """Implements ``ate.strategies.base.StrategyContext`` over a TradingCore (no copies)."""

    __slots__ = ("core",)

    def __init__(self, core: TradingCore) -> None:
        self.core = core

    @property
    def now_ms(self) -> int:
        return self.core.clock()

    @property
    def equity_usd(self) -> Decimal:
        return self.core.portfolio.equity()

    @property
    def trading_state(self) -> TradingState:
        return self.core.trading_state

    @property
    def vetoes(self) -> Collection[str]:
        return self.core.active_vetoes()

    def signal_vetoes(self, market: str) -> Collection[str]:
        return self.core.signal_vetoes(market)

    def book(self, market: str) -> BookTicker | None:
        return self.core.books.get(market)

    def instrument(self, market: str) -> Instrument:
        return self.core.portfolio.instruments[market]

    def balance(self, venue: str, asset: str) -> Balance:
        total = self.core.portfolio.balances[venue][asset]
        locked = self.core.locked(venue, asset)
        return Balance(asset, total - locked, locked)

    def position(self, market: str) -> Position | None:
        return self.core.portfolio.positions.get(market)

    def funding(self, market: str) -> FundingInfo | None:
        return self.core.funding.get(market)

    def margin(self, market: str) -> MarginInfo | None:
        return self.core.margins.get(market)

    def size_multiplier(self, module: str) -> float | None:
        out = self.core.module_outputs.get(module)
        return None if out is None else out.size_multiplier

    def headroom_usd(self, strategy: str, market: str | None = None, side: Side | None = None) -> Decimal | None:
        return self.core.risk.headroom_usd(market, side)

    def in_flight(self, strategy: str, markets: Collection[str] = ()) -> bool:
        orders = self.core.orders.open_orders(strategy)
        if not markets or not orders:
            return bool(orders)
        return any(f"{o.venue}:{o.symbol}" in markets for o in orders)
