"""Domain model: nothing here imports the rest of ate."""

from ate.model.enums import Mode, OrderType, Side, TimeInForce, TradingState
from ate.model.events import EngineEvent, Severity
from ate.model.fill import Fill
from ate.model.instrument import FilterError, Instrument, MarketKind, fmt, to_decimal
from ate.model.intent import OrderIntent, Purpose
from ate.model.order import (
    IllegalTransition,
    Order,
    OrderStatus,
    backpack_client_id,
    client_order_id,
)
from ate.model.position import Balance, Position, held_fee

__all__ = [
    "Balance",
    "EngineEvent",
    "Fill",
    "FilterError",
    "IllegalTransition",
    "Instrument",
    "MarketKind",
    "Mode",
    "Order",
    "OrderIntent",
    "OrderStatus",
    "OrderType",
    "Position",
    "Purpose",
    "Severity",
    "Side",
    "TimeInForce",
    "TradingState",
    "backpack_client_id",
    "client_order_id",
    "fmt",
    "held_fee",
    "to_decimal",
]
