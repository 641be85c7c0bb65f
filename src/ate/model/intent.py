"""What a strategy wants done, before the risk layer and the order manager turn it into an order."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from ate.model.enums import OrderType, Side, TimeInForce


class Purpose(StrEnum):
    ENTRY = "entry"  # adds exposure
    EXIT = "exit"  # closes a strategy position
    HEDGE = "hedge"  # brings a hedged book back to its target delta
    UNWIND = "unwind"  # completes or reverts a one-legged arbitrage fill
    CLOSE_ALL = "close_all"  # emergency flatten: reduce-only, bypasses entry checks, never exit checks

    @property
    def adds_exposure(self) -> bool:
        return self is Purpose.ENTRY


@dataclass(slots=True)
class OrderIntent:
    venue: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None
    strategy: str
    purpose: Purpose = Purpose.ENTRY
    type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.IOC
    reduce_only: bool = False
    meta: dict = field(default_factory=dict)
    # Legs sharing a non-empty group are one unit: risk approves all of them at one size or none.
    group: str = ""

    @property
    def market(self) -> str:
        return f"{self.venue}:{self.symbol}"
