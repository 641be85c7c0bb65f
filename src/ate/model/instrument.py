"""Instruments and their exchange filters, with the Decimal rounding rules of the venues.

Rounding follows exchange-protocols.md §7.4: quantities round toward zero, limit prices round away
from the market (BUY floors, SELL ceils), and bounds are re-checked on the rounded values so an order
that a venue would reject is rejected here with a reason instead of being sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from ate.model.enums import Side

ZERO = Decimal(0)


class MarketKind(StrEnum):
    SPOT = "spot"
    PERP = "perp"


class FilterError(ValueError):
    """An order that the venue's filters would reject; ``reason`` names the filter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def to_decimal(value: object) -> Decimal:
    """Decimal from a venue string or int; floats go through repr so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def fmt(d: Decimal) -> str:
    """Wire format: plain decimal, never exponent notation, trailing zeros trimmed."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


def _grid(value: Decimal, anchor: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= 0:
        return value
    n = ((value - anchor) / step).to_integral_value(rounding=rounding)
    return anchor + n * step


@dataclass(frozen=True, slots=True)
class Instrument:
    venue: str
    symbol: str
    base: str
    quote: str
    kind: MarketKind
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    min_notional: Decimal = ZERO
    # Binance USD-M anchors the price/qty grid at minPrice/minQty; spot venues anchor at zero.
    grid_at_min: bool = False

    @property
    def key(self) -> str:
        return f"{self.venue}:{self.symbol}"

    def round_qty(self, qty: Decimal) -> Decimal:
        anchor = self.min_qty if self.grid_at_min else ZERO
        return _grid(qty, anchor, self.step_size, ROUND_FLOOR).normalize() if qty > 0 else ZERO

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        anchor = self.min_price if self.grid_at_min else ZERO
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        return _grid(price, anchor, self.tick_size, rounding).normalize()

    def check(self, qty: Decimal, price: Decimal | None, *, reduce_only: bool = False) -> None:
        """Raise FilterError if the (already rounded) order breaks a filter."""
        if qty <= 0:
            raise FilterError("LOT_SIZE", f"quantity {fmt(qty)} must be positive")
        if qty < self.min_qty:
            raise FilterError("LOT_SIZE", f"quantity {fmt(qty)} below minimum {fmt(self.min_qty)}")
        if self.max_qty > 0 and qty > self.max_qty:
            raise FilterError("LOT_SIZE", f"quantity {fmt(qty)} above maximum {fmt(self.max_qty)}")
        anchor = self.min_qty if self.grid_at_min else ZERO
        if self.step_size > 0 and (qty - anchor) % self.step_size != 0:
            raise FilterError("LOT_SIZE", f"quantity {fmt(qty)} not a multiple of step {fmt(self.step_size)}")
        if price is None:
            return
        if price <= 0 or price < self.min_price:
            raise FilterError("PRICE_FILTER", f"price {fmt(price)} below minimum {fmt(self.min_price)}")
        if self.max_price > 0 and price > self.max_price:
            raise FilterError("PRICE_FILTER", f"price {fmt(price)} above maximum {fmt(self.max_price)}")
        p_anchor = self.min_price if self.grid_at_min else ZERO
        if self.tick_size > 0 and (price - p_anchor) % self.tick_size != 0:
            raise FilterError("PRICE_FILTER", f"price {fmt(price)} not a multiple of tick {fmt(self.tick_size)}")
        exempt = reduce_only and self.kind is MarketKind.PERP
        if not exempt and self.min_notional > 0 and qty * price < self.min_notional:
            raise FilterError(
                "MIN_NOTIONAL", f"notional {fmt(qty * price)} below minimum {fmt(self.min_notional)}"
            )

    def prepare(
        self, side: Side, qty: Decimal, price: Decimal | None, *, reduce_only: bool = False
    ) -> tuple[Decimal, Decimal | None]:
        """Round quantity and price by the venue's rules and check every filter on the result."""
        q = self.round_qty(qty)
        p = self.round_price(price, side) if price is not None else None
        self.check(q, p, reduce_only=reduce_only)
        return q, p
