from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ate.model.enums import Side


@dataclass(frozen=True, slots=True)
class Fill:
    venue: str
    symbol: str
    trade_id: str
    client_order_id: str
    venue_order_id: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    ts_ms: int
    strategy: str = ""

    @property
    def notional(self) -> Decimal:
        return self.qty * self.price
