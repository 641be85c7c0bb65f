"""Positions and balances. A position is signed base quantity with average entry and P&L parts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ate.model.enums import Side

ZERO = Decimal(0)


@dataclass(slots=True)
class Balance:
    asset: str
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


def held_fee(fee: Decimal, fee_asset: str, spot_base: str | None) -> Decimal:
    """The part of a fill's fee taken from the coin a position holds: a spot fill's fee charged in its base
    coin (Binance takes a buy's fee from the BTC bought). `spot_base` is None for a perp, whose fees are
    never in its position. The one rule every projection of positions from fills applies."""
    return fee if spot_base is not None and fee_asset == spot_base else ZERO


@dataclass(slots=True)
class Position:
    """Signed position (long > 0) on one venue market, spot inventory or perp contract."""

    venue: str
    symbol: str
    qty: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    mark_price: Decimal = ZERO

    @property
    def unrealized_pnl(self) -> Decimal:
        if self.qty == 0 or self.mark_price == 0:
            return ZERO
        return (self.mark_price - self.entry_price) * self.qty

    @property
    def notional(self) -> Decimal:
        return abs(self.qty) * self.mark_price

    def apply_fill(self, side: Side, qty: Decimal, price: Decimal, fee_quote: Decimal = ZERO, *,
                   held_fee: Decimal = ZERO) -> Decimal:
        """Apply a fill; return the realized P&L it closed (before fees). `held_fee` is the part of the fee the
        venue took from the coin this position holds (`held_fee()`): the position holds that much less than the
        fill's quantity, at the same entry price, the fill's when the fill closed the position (the fee's value is
        in `fee_quote`: trading the dust at that price realises nothing)."""
        signed = qty * side.sign
        realized = ZERO
        self.fees += fee_quote
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = self.qty + signed
            self.entry_price = (self.entry_price * abs(self.qty) + price * qty) / abs(total)
            self.qty = total
        else:
            closing = min(abs(signed), abs(self.qty))
            realized = (price - self.entry_price) * closing * (1 if self.qty > 0 else -1)
            remainder = abs(signed) - closing
            self.qty += signed
            if self.qty == 0:
                self.entry_price = ZERO
            elif remainder > 0:  # flipped through zero: the rest opens at the fill price
                self.entry_price = price
        self.realized_pnl += realized
        if held_fee:
            if self.qty == 0:  # the fill closed the position: the fee's dust opens at the fill's price
                self.entry_price = price
            self.qty -= held_fee
            if self.qty == 0:
                self.entry_price = ZERO
        return realized

    def funding_payment(self, rate: Decimal, mark: Decimal) -> Decimal:
        return -self.qty * mark * rate

    def apply_funding(self, rate: Decimal, mark: Decimal) -> Decimal:
        """Funding at a settlement: positive rate, longs pay shorts. Returns the amount received."""
        payment = self.funding_payment(rate, mark)
        self.funding += payment
        return payment
