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
_BUY = Side.BUY


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

    # The rounders are on every order's path (strategy, risk) several times: a grid anchored at zero and an
    # unsigned value take the direct form, which is `_grid` without adding and subtracting zero (the same
    # value, and `normalize` makes the same digits of it).
    def round_qty(self, qty: Decimal) -> Decimal:
        if not qty > 0:
            return ZERO
        step = self.step_size
        if self.grid_at_min or step <= 0:
            return _grid(qty, self.min_qty if self.grid_at_min else ZERO, step, ROUND_FLOOR).normalize()
        return ((qty / step).to_integral_value(rounding=ROUND_FLOOR) * step).normalize()

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        rounding = ROUND_FLOOR if side is _BUY else ROUND_CEILING
        tick = self.tick_size
        if self.grid_at_min or tick <= 0 or price.is_signed():  # a negative value could round to −0 here
            return _grid(price, self.min_price if self.grid_at_min else ZERO, tick, rounding).normalize()
        return ((price / tick).to_integral_value(rounding=rounding) * tick).normalize()

    def check(self, qty: Decimal, price: Decimal | None, *, reduce_only: bool = False) -> None:
        """Raise FilterError if the (already rounded) order breaks a filter."""
        if qty <= 0:
            raise FilterError("LOT_SIZE", f"quantity {fmt(qty)} must be positive")
        if qty < self.min_qty:
            raise FilterError("LOT_SIZE", f"quantity {fmt(qty)} below minimum {fmt(self.min_qty)}")
        if self.max_qty > 0 and qty > self.max_qty:
            raise FilterError("LOT_SIZE", f"quantity {fmt(qty)} above maximum {fmt(self.max_qty)}")
        step = self.step_size
        if step > 0 and (qty - self.min_qty if self.grid_at_min else qty) % step != 0:
            raise FilterError("LOT_SIZE", f"quantity {fmt(qty)} not a multiple of step {fmt(self.step_size)}")
        if price is None:
            return
        if price <= 0 or price < self.min_price:
            raise FilterError("PRICE_FILTER", f"price {fmt(price)} below minimum {fmt(self.min_price)}")
        if self.max_price > 0 and price > self.max_price:
            raise FilterError("PRICE_FILTER", f"price {fmt(price)} above maximum {fmt(self.max_price)}")
        tick = self.tick_size
        if tick > 0 and (price - self.min_price if self.grid_at_min else price) % tick != 0:
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
