"""Accounting: balances, positions, marks and the P&L ledger, from fills and funding only.

Balances are per venue wallet (`binance` spot, `binance_usdm`, `backpack`) and asset. Spot fills
move base and quote balances; perp fills move the position and book realized P&L into the wallet's
quote balance. Fees are charged in the asset the venue reports. Equity values every asset in USD
(stablecoins at 1 unless configured) plus perp unrealized P&L, so it can be compared to the venue's
own account to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from ate.model import Balance, Fill, Instrument, MarketKind, Position, held_fee

ZERO = Decimal(0)
STABLES = {"USDT": Decimal(1), "USDC": Decimal(1), "USD": Decimal(1)}


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    ts_ms: int
    kind: str  # realized | fee | funding
    amount: Decimal  # in `asset`; positive = gain
    asset: str
    venue: str
    symbol: str
    strategy: str
    ref: str
    value_usd: Decimal | None = None  # None: the asset had no price when booked
    price_source: str = ""


class Portfolio:
    def __init__(self, stable_prices: dict[str, Decimal] | None = None) -> None:
        self.balances: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
        self.positions: dict[str, Position] = {}
        self.prices: dict[str, Decimal] = dict(STABLES if stable_prices is None else stable_prices)
        self.entries: list[LedgerEntry] = []
        self.instruments: dict[str, Instrument] = {}

    # -- setup --

    def add_instrument(self, inst: Instrument) -> None:
        self.instruments[inst.key] = inst

    def set_balances(self, venue: str, balances: dict[str, Balance] | dict[str, Decimal]) -> None:
        wallet = self.balances[venue]
        wallet.clear()
        for asset, b in balances.items():
            wallet[asset] = b.total if isinstance(b, Balance) else Decimal(b)


    def position(self, market: str) -> Position:
        pos = self.positions.get(market)
        if pos is None:
            venue, _, symbol = market.partition(":")
            pos = self.positions[market] = Position(venue, symbol)
        return pos

    # -- marks --

    def mark(self, market: str, price: Decimal) -> None:
        inst = self.instruments.get(market)
        pos = self.positions.get(market)
        if pos is not None:
            pos.mark_price = price
        if inst is not None and inst.kind is MarketKind.SPOT and inst.quote in self.prices:
            self.prices[inst.base] = price * self.prices[inst.quote]

    # -- events --

    def apply_fill(self, fill: Fill) -> Decimal:
        """Book a fill; returns the realized P&L (quote) it closed, before fees."""
        market = f"{fill.venue}:{fill.symbol}"
        inst = self.instruments[market]
        pos = self.position(market)
        wallet = self.balances[fill.venue]
        sign = fill.side.sign
        spot = inst.kind is MarketKind.SPOT
        realized = pos.apply_fill(fill.side, fill.qty, fill.price,
                                  held_fee=held_fee(fill.fee, fill.fee_asset, inst.base if spot else None))
        trade_ref = f"{market}:{fill.trade_id}"  # trade ids are unique per venue and symbol only
        if spot:
            wallet[inst.base] += sign * fill.qty
            wallet[inst.quote] -= sign * fill.qty * fill.price
        else:
            wallet[inst.quote] += realized
        if fill.fee:
            wallet[fill.fee_asset] -= fill.fee
            fee_quote, source = self.fee_in_quote(inst, fill)
            if fee_quote is not None:
                pos.fees += fee_quote
            quote_usd = self.prices.get(inst.quote)
            value = None if fee_quote is None or quote_usd is None else -fee_quote * quote_usd
            self.entries.append(LedgerEntry(fill.ts_ms, "fee", -fill.fee, fill.fee_asset, fill.venue, fill.symbol,
                                            fill.strategy, f"fee:{trade_ref}", value, source))
        if realized:
            self._entry(fill.ts_ms, "realized", realized, inst.quote, fill, f"pnl:{trade_ref}")
        return realized

    def fee_in_quote(self, inst: Instrument, fill: Fill) -> tuple[Decimal | None, str]:
        """A fee in the market's quote asset, valued at that asset's price at the fill, and where the price
        came from: the quote itself, the fill price (fees in base), or the fee asset's mark (BNB)."""
        if fill.fee_asset == inst.quote:
            return fill.fee, "quote"
        if fill.fee_asset == inst.base:
            return fill.fee * fill.price, "fill_price"
        asset_usd, quote_usd = self.prices.get(fill.fee_asset), self.prices.get(inst.quote)
        if asset_usd is None or not quote_usd:
            return None, "unpriced"
        return fill.fee * asset_usd / quote_usd, f"mark:{fill.fee_asset}"

    def apply_funding(self, market: str, rate: Decimal, mark: Decimal, ts_ms: int, strategy: str = "") -> Decimal:
        """Funding settlement at ts: the payment the position receives (negative = paid)."""
        pos = self.positions.get(market)
        if pos is None or pos.qty == 0:
            return ZERO
        payment = pos.funding_payment(rate, mark)
        self.receive_funding(market, payment, ts_ms, strategy)
        return payment

    def receive_funding(self, market: str, amount: Decimal, ts_ms: int, strategy: str = "",
                        ref: str | None = None) -> None:
        """A funding payment of the settlement at ts (the venue's amount, or the one computed live), booked
        under the ref both paths share unless told otherwise (a correction)."""
        inst = self.instruments[market]
        pos = self.position(market)
        pos.funding += amount
        self.balances[inst.venue][inst.quote] += amount
        self.entries.append(LedgerEntry(ts_ms, "funding", amount, inst.quote, inst.venue, inst.symbol, strategy,
                                        ref or f"funding:{inst.symbol}:{ts_ms}"))

    def _entry(self, ts: int, kind: str, amount: Decimal, asset: str, fill: Fill, ref: str) -> None:
        value = None if asset not in self.prices else amount * self.prices[asset]
        self.entries.append(LedgerEntry(ts, kind, amount, asset, fill.venue, fill.symbol, fill.strategy, ref,
                                        value, "quote"))

    # -- valuation --

    def unpriced(self) -> list[str]:
        """Assets held without a USD price yet: equity is incomplete until this is empty."""
        return sorted({a for w in self.balances.values() for a, amt in w.items() if amt and a not in self.prices})

    def equity(self) -> Decimal:
        """Every asset held at its USD price (one without a price counts as zero) plus perp unrealized P&L."""
        return self._valued(strict=False)  # type: ignore[return-value]

    def priced_equity(self) -> Decimal | None:
        """`equity()` when every asset held has a price, else None: the valuation's common case in one pass."""
        return self._valued(strict=True)

    def _valued(self, strict: bool) -> Decimal | None:
        total = ZERO
        prices = self.prices
        for wallet in self.balances.values():
            for asset, amount in wallet.items():
                if amount:
                    price = prices.get(asset)
                    if price is not None:
                        total += amount * price
                    elif strict:
                        return None
        return self._with_perps(total)

    def _with_perps(self, total: Decimal) -> Decimal:
        instruments = self.instruments
        for market, pos in self.positions.items():
            inst = instruments.get(market)
            if inst is not None and inst.kind is MarketKind.PERP:
                total += pos.unrealized_pnl
        return total
