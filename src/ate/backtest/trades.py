"""Round trips and ledger entries of a run, rebuilt from its fills and funding payments.

A round trip of one strategy on one market opens with a fill from flat and closes with the fill that
brings the position back within one quantity step of where it started. Spot buys pay their fee in the
base coin, so a full exit leaves dust smaller than a step; the dust a trip leaves is valued at its exit
price in that trip's P&L and becomes the next trip's starting point. Net P&L = quote received − quote
paid − quote-denominated fees + funding while open + dust left × exit price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ate.backtest.stats import LedgerEntry, Trade
from ate.model import Fill, Instrument, MarketKind

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FundingPayment:
    market: str
    ts_ms: int
    amount: Decimal  # received (negative = paid)
    rate: Decimal
    mark: Decimal
    position_qty: Decimal


@dataclass(slots=True)
class _Open:
    strategy: str
    side: str
    entry_ms: int
    cash: Decimal = ZERO  # quote received − paid, fees in quote included
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    bought: Decimal = ZERO
    bought_quote: Decimal = ZERO
    sold: Decimal = ZERO
    sold_quote: Decimal = ZERO
    start: Decimal = ZERO  # position (dust) when the trip opened
    fills: list[Fill] = field(default_factory=list)


def fee_in_quote(f: Fill, inst: Instrument) -> Decimal:
    return f.fee * f.price if f.fee_asset == inst.base else f.fee


def build(fills: Sequence[Fill], funding: Sequence[FundingPayment],
          instruments: dict[str, Instrument]) -> tuple[list[Trade], list[LedgerEntry], int]:
    """(closed round trips, fee and funding ledger, round trips still open at the end), in time order."""
    # a settlement at t is paid before orders placed at t (the replayer applies it first)
    events: list[tuple[int, int, Fill | FundingPayment]] = [(f.ts_ms, 1, f) for f in fills]
    events += [(p.ts_ms, 0, p) for p in funding]
    events.sort(key=lambda e: (e[0], e[1]))
    pos: dict[tuple[str, str], Decimal] = {}
    open_: dict[tuple[str, str], _Open] = {}
    owner: dict[str, str] = {}  # market -> strategy of its latest fill
    trades: list[Trade] = []
    ledger: list[LedgerEntry] = []
    for _, _, ev in events:
        if isinstance(ev, FundingPayment):
            strategy = owner.get(ev.market, "")
            venue = ev.market.partition(":")[0]
            ledger.append(LedgerEntry(ev.ts_ms, "funding", float(ev.amount), venue, strategy))
            rt = open_.get((strategy, ev.market))
            if rt is not None:
                rt.funding += ev.amount
            continue
        f = ev
        market = f"{f.venue}:{f.symbol}"
        inst = instruments[market]
        key = (f.strategy, market)
        owner[market] = f.strategy
        fee_q = fee_in_quote(f, inst)
        if fee_q:
            ledger.append(LedgerEntry(f.ts_ms, "fee", float(fee_q), f.venue, f.strategy))
        base_fee = f.fee if f.fee_asset == inst.base and inst.kind is MarketKind.SPOT else ZERO
        delta = (f.qty - base_fee) if f.side.sign > 0 else -f.qty
        before = pos.get(key, ZERO)
        rt = open_.get(key)
        if rt is None:
            rt = open_[key] = _Open(f.strategy, f.side.value, f.ts_ms, start=before)
        quote_fee = ZERO if base_fee else fee_q
        notional = f.qty * f.price
        rt.cash += (-notional if f.side.sign > 0 else notional) - quote_fee
        rt.fees += fee_q
        if f.side.sign > 0:
            rt.bought += f.qty
            rt.bought_quote += notional
        else:
            rt.sold += f.qty
            rt.sold_quote += notional
        rt.fills.append(f)
        after = before + delta
        pos[key] = after
        if abs(after - rt.start) < inst.step_size:
            trades.append(_close(rt, f, market, (after - rt.start) * f.price))
            del open_[key]
    return trades, ledger, len(open_)


def _close(rt: _Open, last: Fill, market: str, dust_value: Decimal) -> Trade:
    venue, _, symbol = market.partition(":")
    long = rt.side == "BUY"
    entry_qty, entry_quote = (rt.bought, rt.bought_quote) if long else (rt.sold, rt.sold_quote)
    exit_qty, exit_quote = (rt.sold, rt.sold_quote) if long else (rt.bought, rt.bought_quote)
    pnl = rt.cash + rt.funding + dust_value
    return Trade(rt.strategy, venue, symbol, rt.side, rt.entry_ms, last.ts_ms,
                 float(entry_quote / entry_qty) if entry_qty else 0.0,
                 float(exit_quote / exit_qty) if exit_qty else 0.0,
                 float(entry_qty), float(pnl), float(rt.fees), float(rt.funding))



def strategy_round_trips(legs: Sequence[Trade], slots: Mapping[tuple[str, str], str] | None = None) -> list[Trade]:
    """Per-market trips → one round trip per strategy trade: a strategy's legs whose holding periods overlap
    (a carry pair's spot and perp, a hedged directional entry) are one trade, with their P&L, fees and
    funding summed. Prices and quantity are the first leg's; `legs` says how many were merged. A strategy
    trading several markets has a slot per market (or pair): `slots` maps (strategy, market) to it, and only
    legs of one slot are merged."""
    out: list[Trade] = []
    by_strategy: dict[tuple[str, str], list[Trade]] = {}
    for t in legs:
        slot = (slots or {}).get((t.strategy, f"{t.venue}:{t.symbol}"), "")
        by_strategy.setdefault((t.strategy, slot), []).append(t)
    for trips in by_strategy.values():
        group: list[Trade] = []
        end = 0
        for t in sorted(trips, key=lambda t: (t.entry_ms, t.exit_ms)):
            if group and (t.entry_ms < end or t.entry_ms == group[0].entry_ms):
                group.append(t)
                end = max(end, t.exit_ms)
                continue
            if group:
                out.append(_merge(group))
            group, end = [t], t.exit_ms
        if group:
            out.append(_merge(group))
    out.sort(key=lambda t: (t.exit_ms, t.entry_ms, t.strategy))
    return out


def _merge(group: list[Trade]) -> Trade:
    if len(group) == 1:
        return group[0]
    first = group[0]

    def total(field: str) -> float:  # summed exactly, rounded once
        return float(sum((Decimal(repr(getattr(t, field))) for t in group), ZERO))

    def joined(field: str) -> str:
        return "+".join(dict.fromkeys(getattr(t, field) for t in group))

    return Trade(first.strategy, joined("venue"), joined("symbol"), first.side, first.entry_ms,
                 max(t.exit_ms for t in group), first.entry_price, first.exit_price, first.qty, total("pnl"),
                 total("fees"), total("funding"), len(group))
