"""The matching executor (backtests and paper trading): approved orders go to the in-process matching core.

It implements the order manager's ``Executor`` protocol (``submit(order, instrument)``, ``cancel(order)``)
and reports through the same sink as the live executors: ``sink(order_view, fill_or_None)``. Updates are
collected from the core's ORDER events and delivered by ``flush()`` — at the end of ``submit``/``cancel``
and by the runner after each replay step — never from inside a core call, so the engine may place new
orders in reaction without re-entering the matching core. The executor listens to the core only while it
has an order in the core (a listener makes the core build public-trade records on every replayed
print). Markets are added to the core under the engine's venue ids (``binance``, ``binance_usdm``,
``backpack``), so an order's venue and symbol are used as they are.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ate.model import Fill, Instrument, Order, OrderStatus
from ate.sim.core import ORDER, MatchingCore, OrderEvent, OrderRejected, SimFill, SimOrder

UpdateSink = Callable[[Order, Fill | None], None]


@dataclass(frozen=True, slots=True)
class ExecutedFill:
    """A fill with what the backtest needs to attribute it: the strategy and the order's purpose."""

    fill: Fill
    purpose: str


class MatchingExecutor:
    def __init__(self, core: MatchingCore, account: str, sink: UpdateSink) -> None:
        self.core = core
        self.account = account
        self.sink = sink
        self.fills: list[ExecutedFill] = []
        self.submitted: list[Order] = []  # every order the engine sent, in order
        self.rejections: list[tuple[int, str, str]] = []  # (ts, client order id, reason)
        self._orders: dict[str, Order] = {}  # engine orders open in the core, by client order id
        self._pending: deque[tuple[Order, Fill | None]] = deque()
        self._unlisten: Callable[[], None] | None = None
        self._flushing = False

    def submit(self, order: Order, instrument: Instrument) -> None:
        self.submitted.append(order)
        self._orders[order.client_order_id] = order
        self._listen()
        try:
            self.core.place_order(self.account, order.venue, order.symbol, order.side, order.type, order.qty,
                                  order.price, tif=order.tif, client_order_id=order.client_order_id,
                                  reduce_only=order.reduce_only)
        except OrderRejected as exc:
            self._orders.pop(order.client_order_id, None)
            now = self.core.now()
            self.rejections.append((now, order.client_order_id, str(exc.reason)))
            self._pending.append((order.view(OrderStatus.REJECTED, now, str(exc)), None))
        self.flush()

    def cancel(self, order: Order) -> None:
        try:
            self.core.cancel_order(self.account, order.venue, order.symbol, client_order_id=order.client_order_id)
        except OrderRejected:
            pass  # already closed: its final state was reported when it closed
        self.flush()

    def flush(self) -> None:
        """Deliver collected updates in order (updates caused while delivering are delivered too)."""
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._pending:
                view, fill = self._pending.popleft()
                self.sink(view, fill)
        finally:
            self._flushing = False
        if not self._orders and self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    def _listen(self) -> None:
        if self._unlisten is None:
            self._unlisten = self.core.listen(self._on_event)

    def _on_event(self, kind: str, payload: object) -> None:
        if kind != ORDER:
            return
        ev: OrderEvent = payload  # type: ignore[assignment]
        if ev.account != self.account:
            return
        order = self._orders.get(ev.order.client_order_id)
        if order is None:
            return
        fill = _engine_fill(ev.fill, order) if ev.fill is not None else None
        if fill is not None:
            self.fills.append(ExecutedFill(fill, str(order.meta.get("purpose", ""))))
        self._pending.append((_sim_view(ev.order, order), fill))
        if not ev.order.is_open:
            self._orders.pop(order.client_order_id, None)


def order_row(o: Order) -> dict:
    """An order as the shadow/backtest comparison and the JSON output see it."""
    return {"ts_ms": o.created_ms, "strategy": o.strategy, "market": f"{o.venue}:{o.symbol}", "side": o.side.value,
            "qty": str(o.qty), "price": None if o.price is None else str(o.price), "id": o.client_order_id}


def _sim_view(sim: SimOrder, order: Order) -> Order:
    return order.view(sim.status, sim.updated_ms, sim.reason, venue_order_id=str(sim.order_id),
                      filled_qty=sim.filled_qty, filled_quote=sim.filled_quote)


def _engine_fill(f: SimFill, order: Order) -> Fill:
    return Fill(f.venue, f.symbol, f.trade_id, f.client_order_id, f.venue_order_id, f.side, f.qty, f.price, f.fee,
                f.fee_asset, f.is_maker, f.ts_ms, order.strategy)
