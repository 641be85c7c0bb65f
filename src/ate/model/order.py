"""Orders with an explicit state machine and deterministic client order ids."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from ate.model.enums import OrderType, Side, TimeInForce


class OrderStatus(StrEnum):
    NEW = "NEW"  # created and written ahead, not yet sent
    SUBMITTED = "SUBMITTED"  # sent; the venue acknowledged it or the outcome is being resolved
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})

_S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # A fill report can arrive before the acknowledgement, so NEW may jump straight to a fill state.
    _S.NEW: frozenset({_S.SUBMITTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.REJECTED, _S.CANCELED, _S.EXPIRED}),
    _S.SUBMITTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def client_order_id(run_id: str, strategy: str, seq: int, epoch: int = 0) -> str:
    """Deterministic id: the same (run, epoch, strategy, sequence) always yields the same id. `epoch` numbers
    the engine starts sharing one store, so runs and modes (shadow, then canary) never reuse an id.

    Fits Binance's ``^[.A-Z:/a-z0-9_-]{1,36}$``; Backpack's uint32 ``clientId`` is derived from it.
    """
    key = f"{run_id}|{strategy}|{seq}" if not epoch else f"{run_id}|{epoch}|{strategy}|{seq}"
    digest = hashlib.blake2b(key.encode(), digest_size=9).hexdigest()
    return f"ate-{strategy[:6]}-{digest}"


def backpack_client_id(coid: str) -> int:
    """Backpack takes a uint32 clientId; derive it deterministically from the string id."""
    return int.from_bytes(hashlib.blake2b(coid.encode(), digest_size=4).digest(), "big") or 1


@dataclass(slots=True)
class Order:
    client_order_id: str
    venue: str
    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    price: Decimal | None = None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    strategy: str = ""
    status: OrderStatus = OrderStatus.NEW
    venue_order_id: str | None = None
    filled_qty: Decimal = Decimal(0)
    filled_quote: Decimal = Decimal(0)
    created_ms: int = 0
    updated_ms: int = 0
    reason: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        return self.filled_quote / self.filled_qty if self.filled_qty else None

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal

    def view(self, status: OrderStatus | None = None, ts_ms: int = 0, reason: str = "", **changes) -> Order:
        """A copy as a venue would report this order: same id and terms, the given status (fills carried
        over unless `changes` say otherwise). Executors and reconciliation speak to the order manager
        in these views; the manager's own order is never shared."""
        return replace(self, status=status or self.status, updated_ms=ts_ms or self.updated_ms,
                       reason=reason or self.reason, meta=dict(self.meta), **changes)

    def transition(self, new: OrderStatus, ts_ms: int = 0, reason: str = "") -> None:
        if new not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"{self.client_order_id}: {self.status} -> {new} is not allowed")
        self.status = new
        if ts_ms:
            self.updated_ms = ts_ms
        if reason:
            self.reason = reason

    def apply_fill(self, qty: Decimal, price: Decimal, ts_ms: int = 0) -> None:
        """Book a fill. Fills are facts: one is booked whatever the status (a fill reported after the venue's
        cancel or expiry is a real-world case) and never raises after validation; an open order moves to
        PARTIALLY_FILLED or FILLED, a terminal one keeps the venue's final word. An overfill is booked too —
        the caller reports it (`overfilled`)."""
        if qty <= 0:
            raise ValueError("fill quantity must be positive")
        self.filled_qty += qty
        self.filled_quote += qty * price
        if ts_ms:
            self.updated_ms = ts_ms
        if not self.status.is_terminal:
            self.status = OrderStatus.FILLED if self.filled_qty >= self.qty else OrderStatus.PARTIALLY_FILLED

    @property
    def overfilled(self) -> bool:
        return self.filled_qty > self.qty
