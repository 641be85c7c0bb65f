"""The engine's money state as a projection of the ledger in the store.

`replay` rebuilds balances and positions from the store alone: every transfer (deposits, withdrawals and
opening balances found by reconciliation), funding entry and liquidation cost moves its wallet; every fill, in booking
order, moves positions and balances exactly as it did live (fees included). Nothing else is kept: there
is no snapshot of positions or balances to drift from the facts.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from ate.execution.portfolio import Portfolio

ZERO = Decimal(0)
# Entries that move a wallet beside the fills: transfers are flows; funding and what a venue's liquidation
# took beside its close-out trade are P&L.
WALLET_KINDS = ("transfer", "funding", "liquidation")


def replay(portfolio: Portfolio, store, *, shadow: bool = False) -> int:
    """Apply the store's ledger to an empty portfolio; returns the number of fills replayed. Fills of markets
    no longer configured move nothing (their instrument, hence their assets, is unknown)."""
    for e in store.ledger(shadow=shadow):
        if e["kind"] not in WALLET_KINDS:
            continue
        portfolio.balances[e["venue"]][e["asset"]] += e["amount"]
        if e["kind"] == "funding" and e["symbol"]:
            portfolio.position(f"{e['venue']}:{e['symbol']}").funding += e["amount"]
    for f in store.fills(shadow=shadow):
        if f"{f.venue}:{f.symbol}" in portfolio.instruments:
            portfolio.apply_fill(f)
    portfolio.entries.clear()  # already in the store


def external_flows(store, *, shadow: bool) -> dict[str, dict[str, Decimal]]:
    """Per wallet and asset, the sum of transfers booked: what a venue holds for an engine whose own fills
    are hypothetical (shadow, paper)."""
    out: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for e in store.ledger(kind="transfer", shadow=shadow):
        out[e["venue"]][e["asset"]] += e["amount"]
    return out
