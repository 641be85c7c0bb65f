"""Reconciliation of the ledger with a venue, at start and after every reconnect: the *difference* only.

Orders: what the venue says wins, and every correction is an event. Orders on the venue that this engine
never wrote are cancelled or adopted per `execution.unknown_orders`; orders the store thinks open but the
venue no longer lists are settled from the venue's record, and an order the venue never heard of (the
engine died between the write-ahead and the send) is closed as never sent — unless this run's executor is
still sending it (`OrderManager.in_flight`): reconciliation after a reconnect runs while trading continues,
and a POST still on the wire, or an unknown outcome the executor is resolving, is skipped (`in_flight`) and
checked again at the next reconciliation.

Fills: every fill since the stored cursor that the ledger lacks is applied once (a fill of an order this
engine never sent becomes an external fill with an alert), in one unit with the cursor that covers it.

Funding: every payment in the venue's income history since the stored cursor that the ledger lacks is
booked once as funding (the live path's ref), in one unit with its cursor, before the accounts are compared.

Accounts (`reconcile_accounts`, at start): the venue's balances and perp positions are compared with the
ledger's; each deposit and withdrawal the venue's transfer history lists since the last comparison is a
transfer booked once by its id, then the rest of a balance difference becomes a transfer (deposit,
withdrawal, or the first start's opening balance), a perp position difference an external fill — each with
an alert, booked once, never strategy P&L. A liquidation since the last comparison (the venue's close-out,
or a position difference whose trade was never seen) owns that rest in its margin asset: what the venue
took beside the trade is a liquidation loss, never a withdrawal that would move the daily-loss baseline. The window starts after the
last comparison's own time, which judged the position difference it dated then. Balances and positions are
never overwritten from the venue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from ate.execution.ledger import external_flows
from ate.execution.order_manager import EXTERNAL, POSITION_DIFF
from ate.model import EngineEvent, Fill, MarketKind, OrderStatus, Severity, Side
from ate.venues.errors import VenueUnknown

log = logging.getLogger(__name__)
ZERO = Decimal(0)
# Client ids of the orders Binance USD-M makes itself to close a position: a liquidation, an auto-deleverage.
CLOSE_OUT_IDS = ("autoclose-", "adl_autoclose")


@dataclass
class ReconcileReport:
    venue: str
    adopted: list[str] = field(default_factory=list)
    cancelled_unknown: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    never_sent: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)  # unknown to the venue yet, our send still in progress
    fills_replayed: int = 0
    external_fills: int = 0
    funding_recovered: int = 0
    unresolved: list[str] = field(default_factory=list)  # the venue's answer was unknown or ambiguous

    @property
    def corrections(self) -> int:
        return len(self.adopted) + len(self.cancelled_unknown) + len(self.settled) + len(self.never_sent)


async def reconcile(core, client, store, now_ms: int, *, unknown_orders: str = "cancel") -> ReconcileReport:
    venue = client.venue
    report = ReconcileReport(venue)
    om = core.orders
    ours = {o.client_order_id: o for o in om.open_orders() if o.venue == venue}
    # A venue that keys orders by its own form of our ids (Backpack: a uint32) maps them back only for ids
    # it has seen; after a restart it must learn the open ones before their fills are read back.
    learn = getattr(client, "client_id", None)
    if learn is not None:
        for coid in ours:
            learn(coid)
    symbols = _venue_symbols(core, venue)

    for view in await client.open_orders():
        if view.client_order_id in ours or store.get_order(view.client_order_id) is not None:
            core.on_order_update(view, None)
            ours.pop(view.client_order_id, None)
        elif unknown_orders == "adopt":
            view.strategy = view.strategy or "adopted"
            store.save_order(view)
            om.orders[view.client_order_id] = view
            report.adopted.append(view.client_order_id)
        else:
            await client.cancel_order(view.symbol, view.client_order_id)
            report.cancelled_unknown.append(view.client_order_id)

    for symbol in symbols:
        await _missing_fills(core, client, store, symbol, now_ms, report)

    for coid, order in ours.items():
        if not order.is_open:
            continue
        try:
            view = await client.query_order(order.symbol, coid, like=order)
        except VenueUnknown as exc:  # e.g. two venue orders match a colliding client id: leave it open, say so
            report.unresolved.append(coid)
            log.warning("reconcile %s: %s", coid, exc)
            continue
        if view is None and coid in om.in_flight:
            report.in_flight.append(coid)
            continue
        if view is None:
            view = order.view(OrderStatus.REJECTED if order.filled_qty == 0 else OrderStatus.CANCELED,
                              reason="never reached the venue (reconciliation)")
            report.never_sent.append(coid)
        else:
            report.settled.append(coid)
        core.on_order_update(view, None)
    # last: when the history cannot be read, the orders are settled and the failure skips only the
    # account comparison, which would otherwise take the missing funding for a transfer
    await _missing_funding(core, client, store, now_ms, report)

    if report.corrections:
        ev = EngineEvent(now_ms, "reconciliation", f"{venue}: {report.corrections} corrections", Severity.WARNING,
                         {"venue": venue, "adopted": report.adopted, "cancelled_unknown": report.cancelled_unknown,
                          "settled": report.settled, "never_sent": report.never_sent})
        store.add_event(ev)
    if report.unresolved:
        ev = EngineEvent(now_ms, "order_unresolved", f"{venue}: {len(report.unresolved)} open orders could not be "
                         "matched to one venue order; kept open", Severity.CRITICAL,
                         {"venue": venue, "orders": report.unresolved})
        store.add_event(ev)
    return report


async def _missing_fills(core, client, store, symbol: str, now_ms: int, report: ReconcileReport) -> None:
    key = f"cursor:{client.venue}:{symbol}"
    fills, cursor = await client.fills_since(symbol, store.get_state(key))
    om = core.orders
    with core.unit():  # the fills and the cursor past them: both or neither
        for fill in fills:
            if om.knows_fill(fill):
                continue
            order = om.find(fill)
            if order is None:
                report.external_fills += core.book_external_fill(fill, "not sent by this engine (reconciliation)")
                continue
            core.on_order_update(order.view(), fill)
            report.fills_replayed += 1
        if cursor is not None:
            store.set_state(key, cursor, now_ms)


async def _missing_funding(core, client, store, now_ms: int, report: ReconcileReport) -> None:
    """Funding settled while the engine was not listening, from the venue's income history, each payment
    once (by the live path's ref) in one unit with the cursor past it. Without a cursor the history starts
    at this venue's first ledger entry: what came before is in the opening balance."""
    venue = client.venue
    key = f"funding_cursor:{venue}"
    cursor = store.get_state(key)
    if cursor is None:
        cursor = min((e["ts_ms"] for e in store.ledger(shadow=core.shadow) if e["venue"] == venue), default=now_ms)
    payments, new_cursor = await client.funding_since(int(cursor))
    with core.unit():
        for p in payments:
            market = f"{venue}:{p.symbol}"
            if market not in core.portfolio.instruments:
                continue  # a market this engine does not trade: the account comparison sees it
            report.funding_recovered += core.book_missed_funding(market, p.amount, p.ts_ms)
        store.set_state(key, new_cursor, now_ms)


async def reconcile_accounts(core, client, now_ms: int, *, hypothetical: bool) -> list[str]:
    """Book the difference between the venue's balances (and perp positions) and the ledger's as external
    events; returns what was booked. `hypothetical` (shadow, paper): the engine's fills never reached this
    venue, so its balances are compared with the transfers alone and positions are not compared."""
    venue = client.venue
    booked: list[str] = []
    opening = not any(core.portfolio.balances[venue].values())  # the first start on this venue: nothing booked
    compared_key = f"accounts_compared:{venue}"
    since = core.store.get_state(compared_key) if core.store is not None else None
    if hypothetical:
        venue_pos, balances, transfers = {}, {a: b.total for a, b in (await client.balances()).items()}, ()
    else:
        # the first comparison's balances hold every transfer up to their read, which is after its time
        settled = await _settled_account(core, client, now_ms, now_ms if since is None else since)
        if settled is None:
            core.store.add_event(EngineEvent(
                now_ms, "reconciliation", f"{venue}: the account kept moving while it was read; its balances "
                "are compared at the next start", Severity.WARNING, {"venue": venue}))
            return booked
        venue_pos, balances, transfers = settled
    # positions first: an external perp fill books realised P&L into the wallet the balances then compare
    if not hypothetical:
        for market, inst in core.portfolio.instruments.items():
            if inst.venue != venue or inst.kind is not MarketKind.PERP:
                continue
            held = venue_pos.get(inst.symbol)
            diff = (held.qty if held is not None else ZERO) - core.portfolio.position(market).qty
            if diff:
                price = (held.entry_price or held.mark_price) if held is not None else (
                    core.portfolio.position(market).mark_price or core.portfolio.position(market).entry_price)
                fill = Fill(venue, inst.symbol, f"{POSITION_DIFF}{now_ms}", "", "", Side.BUY if diff > 0 else Side.SELL,
                            abs(diff), price, ZERO, inst.quote, False, now_ms)
                if core.book_external_fill(fill, "position differs from the ledger (liquidation or manual trade)"):
                    booked.append(f"{inst.symbol} {diff:+f}")
    if hypothetical:
        ledger = external_flows(core.store, shadow=core.shadow)[venue] if core.store is not None else {}
    else:
        ledger = core.portfolio.balances[venue]
    liquidated = {} if hypothetical else _liquidated_assets(core, venue, since)
    for asset in sorted(set(balances) | {a for a, v in ledger.items() if v} | {t.asset for t in transfers}):
        diff = balances.get(asset, ZERO) - ledger.get(asset, ZERO)
        # Each deposit and withdrawal the venue lists is a flow booked once by its id, before any difference
        # is judged (a deposit may hide a liquidation's loss exactly). The window starts at the previous
        # comparison's time and its balances were read after it: a transfer listed again was booked by it.
        for t in transfers:
            if t.asset == asset and core.book_transfer(
                    venue, asset, t.amount, now_ms, f"transfer:{venue}:{t.ref}",
                    ("deposit" if t.amount > 0 else "withdrawal") + " (the venue's history)"):
                booked.append(f"{asset} {t.amount:+f}")
                diff -= t.amount
        if not diff:
            continue
        why, either_sign = liquidated.get(asset, ("", False))
        if why and (diff < 0 or either_sign):
            if core.book_liquidation_cost(venue, asset, diff, now_ms, f"liquidation:{now_ms}:{asset}", why):
                booked.append(f"{asset} {diff:+f} (liquidation)")
            continue
        why = "opening balance" if opening else ("deposit" if diff > 0 else "withdrawal") + " (reconciliation)"
        if core.book_transfer(venue, asset, diff, now_ms, f"reconcile:{now_ms}:{asset}", why, opening=opening):
            booked.append(f"{asset} {diff:+f}")
    if core.store is not None and not hypothetical:
        core.store.set_state(compared_key, now_ms, now_ms)
    if booked:
        core.rebuild_risk()
    return booked


def _liquidated_assets(core, venue: str, since_ms: int | None) -> dict[str, tuple[str, bool]]:
    """The margin assets of this venue's perps that a liquidation touched since the last account comparison,
    with why, and whether a difference of either sign is the liquidation's. A close-out whose trade was booked
    only takes beside it (a fee): a gain there is a deposit. A position difference whose trade was never seen
    was booked at an assumed price: the rest of its P&L, either way, is in the difference. Without a previous
    comparison nothing is attributed: every difference is then a transfer."""
    if since_ms is None or core.store is None:
        return {}
    out: dict[str, tuple[str, bool]] = {}
    # after the comparison's own time: the position difference it booked (dated then) was judged by it
    for f in core.store.fills(since_ms=since_ms + 1, strategy=EXTERNAL, shadow=False):
        inst = core.portfolio.instruments.get(f"{f.venue}:{f.symbol}")
        if f.venue != venue or inst is None or inst.kind is not MarketKind.PERP:
            continue
        if f.trade_id.startswith(POSITION_DIFF):
            out[inst.quote] = (f"the rest of the {f.symbol} position closed without a trade seen (liquidation)",
                               True)
        elif f.client_order_id.startswith(CLOSE_OUT_IDS) and not out.get(inst.quote, ("", False))[1]:
            out[inst.quote] = (f"taken beside the venue's close-out {f.client_order_id} of {f.symbol} "
                               "(liquidation)", False)
    return out


def _venue_symbols(core, venue: str) -> list[str]:
    return sorted({k.partition(":")[2] for k in core.portfolio.instruments if k.startswith(venue + ":")})


async def _settled_account(core, client, now_ms: int, transfers_after_ms: int, attempts: int = 3):
    """The venue's perp positions, balances and listed transfers (after ``transfers_after_ms``) read on both
    sides of a fetch of the fills since the cursor, until the two reads agree. A fill between the start-up
    fill fetch and a single balance read would be in the balance but not in the ledger, be booked as a
    transfer, and then again as a fill when its trade arrives; a deposit between the balance read and the
    history read would be listed but not in the balances. When nothing moved across the fetch, the ledger
    holds every fill the read reflects and the listed transfers are the ones in the balances."""
    venue = client.venue
    symbols = _venue_symbols(core, venue)
    before = await _account(client, transfers_after_ms)
    for _ in range(attempts):
        report = ReconcileReport(venue)
        for symbol in symbols:
            await _missing_fills(core, client, core.store, symbol, now_ms, report)
        after = await _account(client, transfers_after_ms)
        if _qty_view(after) == _qty_view(before):
            return after
        before = after
    return None


async def _account(client, transfers_after_ms: int):
    positions = {p.symbol: p for p in await client.positions()}
    balances = {a: b.total for a, b in (await client.balances()).items()}
    # none when the venue's history cannot be read here (Backpack, Binance spot): the difference decides alone
    return positions, balances, tuple(await client.transfers_since(transfers_after_ms) or ())


def _qty_view(account):
    positions, balances, transfers = account  # marks move between reads; quantities only with fills and transfers
    return ({s: p.qty for s, p in positions.items() if p.qty}, {a: v for a, v in balances.items() if v},
            {t.ref for t in transfers})
