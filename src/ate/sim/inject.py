"""The one API to inject a fault into a running simulator: ``sim.inject(kind, **params)``.

Kinds that change the simulated world act at once through the matching core or the replay:

    deposit / withdraw   account, venue, asset, amount        core.transfer (one balance notification)
    liquidate            account, venue, symbol[, clearance_fee]  the venue closes the position (autoclose-…)
    halt                 venue, symbol[, duration_ms]         status BREAK until resume (or the duration)
    resume               venue, symbol
    spike / drop         venue[, symbol, factor, ticks]       the next ``ticks`` book updates × factor
    maintenance          [venue, duration_ms]                 every REST request answers 503

Kinds a face meets at its next occasions are armed (``count`` occasions, default 1; ``venue`` and
``symbol`` narrow where):

    http_429 [retry_after_s]  http_5xx  http_timeout  reject  cancel_202          (REST requests)
    ioc_ordering order=rest_first|stream_first                                    (IOC/market orders)
    partial_fill [fraction]                                                       (IOC/market orders)
    ws_drop  ws_stall  ws_duplicate  ws_reorder  ws_malformed                     (stream frames)
    stale  depth_gap  crossed_book  locked_book  zero_price  negative_price  nan_price   (market data)

The same kinds fire at random with the ``FaultSpec`` rates (``--faults``); the injector draws the
world-changing ones (spike, drop and halt per replayed book update, liquidate per mark update,
partial_fill per IOC/market order) from the run's one seeded ``Faults``. docs/simulator-faults.md
describes each kind on the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ate.sim.core import MARK, Market, MatchingCore, OrderRejected
from ate.sim.faults import BOOK_KINDS, FRAME_KINDS, Faults
from ate.sim.replay import Replayer

ARMED = {"http_429": "http_429", "http_5xx": "5xx", "http_timeout": "timeout", "reject": "reject",
         "cancel_202": "cancel_202", "stale": "stale", "depth_gap": "depth_gap", "partial_fill": "partial_fill",
         **{k: k for k in (*FRAME_KINDS, *BOOK_KINDS)}}
BY_SYMBOL = (*BOOK_KINDS, "partial_fill")
ARMED_PARAMS = {"http_429": ("retry_after_s",), "partial_fill": ("fraction",)}
WORLD = ("deposit", "withdraw", "liquidate", "halt", "resume", "spike", "drop", "maintenance", "ioc_ordering")
KINDS = tuple(sorted((*ARMED, *WORLD)))


class Injector:
    def __init__(self, core: MatchingCore, replayer: Replayer, faults: Faults, now_ms: Callable[[], int]) -> None:
        self.core = core
        self.replayer = replayer
        self.faults = faults
        self.now_ms = now_ms
        spec = faults.spec
        core.taker_cap = self._taker_cap
        self._detach = []
        if spec.spike or spec.drop or spec.halt:
            self._detach.append(core.listen_book(self._on_book))
        if spec.liquidate:
            self._detach.append(core.listen(self._on_event))

    def close(self) -> None:
        for detach in self._detach:
            detach()
        self._detach.clear()
        self.core.taker_cap = None

    # ------------------------------------------------------------------ the API
    def inject(self, kind: str, **params: object) -> object:
        """Inject one fault now; raises ValueError (unknown kind, bad params) or OrderRejected (the
        core refused: unknown account or market, a withdrawal above the free balance, no position)."""
        if kind in ARMED:
            count = int(params.pop("count", 1))  # type: ignore[call-overload]
            venue, symbol = params.pop("venue", None), params.pop("symbol", None)
            if symbol is not None and kind not in BY_SYMBOL:
                raise ValueError(f"{kind} applies to a whole venue, not to a symbol")
            unknown = set(params) - set(ARMED_PARAMS.get(kind, ()))
            if unknown:
                raise ValueError(f"{kind}: unknown parameter(s) {', '.join(sorted(unknown))}")
            if kind == "partial_fill" and "fraction" in params and not 0 < float(params["fraction"]) < 1:
                raise ValueError("partial_fill: fraction must be between 0 and 1")
            self.faults.arm(ARMED[kind], venue=venue, symbol=symbol, count=count, **params)  # type: ignore[arg-type]
            return None
        handler = getattr(self, f"_{kind}", None) if kind in WORLD else None
        if handler is None:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        try:
            return handler(**params)
        except TypeError as exc:
            raise ValueError(f"{kind}: {exc}") from None

    # ------------------------------------------------------------------ world-changing kinds
    def _deposit(self, account: str, venue: str, asset: str, amount: object) -> object:
        return self._transfer(account, venue, asset, _positive(amount))

    def _withdraw(self, account: str, venue: str, asset: str, amount: object) -> object:
        return self._transfer(account, venue, asset, -_positive(amount))

    def _transfer(self, account: str, venue: str, asset: str, amount: Decimal) -> object:
        self._count("deposit" if amount > 0 else "withdraw", venue, None)
        return self.core.transfer(account, venue, asset, amount)

    def _liquidate(self, account: str, venue: str, symbol: str, clearance_fee: object = 0) -> object:
        fee = Decimal(str(clearance_fee))
        if not 0 <= fee < 1:
            raise ValueError("liquidate: clearance_fee is a fraction of the notional in [0, 1)")
        order = self.core.liquidate(account, venue, symbol, fee)
        self._count("liquidate", venue, symbol)
        return order

    def _halt(self, venue: str, symbol: str, duration_ms: int | None = None) -> object:
        m = self.core.halt(venue, symbol)
        self._count("halt", venue, symbol)
        if duration_ms is not None:
            self.replayer.schedule(self.now_ms() + int(duration_ms), lambda: self.core.resume(venue, symbol))
        return m

    def _resume(self, venue: str, symbol: str) -> object:
        return self.core.resume(venue, symbol)

    def _spike(self, venue: str, symbol: str | None = None, factor: float | None = None,
               ticks: int | None = None) -> list[Market]:
        factor = self.faults.spec.spike_factor if factor is None else float(factor)
        if factor <= 1:
            raise ValueError("spike: factor must be above 1")
        return self._shock("spike", venue, symbol, factor, ticks)

    def _drop(self, venue: str, symbol: str | None = None, factor: float | None = None,
              ticks: int | None = None) -> list[Market]:
        factor = self.faults.spec.drop_factor if factor is None else float(factor)
        if not 0 < factor < 1:
            raise ValueError("drop: factor must be between 0 and 1")
        return self._shock("drop", venue, symbol, factor, ticks)

    def _shock(self, kind: str, venue: str, symbol: str | None, factor: float, ticks: int | None) -> list[Market]:
        markets = [self.core.market(venue, symbol)] if symbol else self.core.markets_of(venue)
        if not markets:
            raise ValueError(f"{kind}: no market on {venue}")
        for m in markets:
            self.replayer.shock(m, factor, self.faults.spec.shock_ticks if ticks is None else int(ticks))
            self._count(kind, venue, m.symbol)
        return markets

    def _maintenance(self, venue: str | None = None, duration_ms: int | None = None) -> None:
        self.faults.start_maintenance(venue, self.faults.spec.maintenance_ms if duration_ms is None
                                      else int(duration_ms))

    def _ioc_ordering(self, order: str, venue: str | None = None, count: int = 1) -> None:
        if order not in ("rest_first", "stream_first"):
            raise ValueError("ioc_ordering: order must be rest_first or stream_first")
        self.faults.arm(f"ioc_{order}", venue=venue, count=int(count))

    def _count(self, kind: str, venue: str | None, symbol: str | None) -> None:
        self.faults.counts[kind] += 1
        self.faults.log.append((kind, venue, symbol))

    # ------------------------------------------------------------------ random draws
    def _taker_cap(self, m: Market, qty: Decimal) -> Decimal | None:
        shot = self.faults.fire("partial_fill", self.faults.spec.partial_fill, m.venue, m.symbol)
        if shot is None:
            return None
        fraction = Decimal(str(shot.get("fraction", self.faults.spec.partial_fraction)))
        cap = max(m.step, m.instrument.round_qty(qty * fraction))
        return cap if cap < qty else None

    def _on_book(self, m: Market) -> None:
        spec, faults = self.faults.spec, self.faults
        shock = faults.first((("spike", spec.spike), ("drop", spec.drop)), m.venue, m.symbol)
        if shock is not None and m.key not in self.replayer.shocks:  # a running shock is not restarted
            self.replayer.shock(m, spec.spike_factor if shock[0] == "spike" else spec.drop_factor,
                                spec.shock_ticks)
        if faults.fire("halt", spec.halt, m.venue, m.symbol) is not None:
            self.core.halt(m.venue, m.symbol)
            self.replayer.schedule(self.now_ms() + spec.halt_ms, lambda: self.core.resume(m.venue, m.symbol))

    def _on_event(self, kind: str, payload: object) -> None:
        if kind != MARK:
            return
        m: Market = payload.market  # type: ignore[attr-defined]
        for account in sorted(m.position_holders):
            if self.faults.fire("liquidate", self.faults.spec.liquidate, m.venue, m.symbol) is not None:
                try:
                    self.core.liquidate(account, m.venue, m.symbol)
                except OrderRejected:
                    pass  # the position closed meanwhile


def _positive(amount: object) -> Decimal:
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if not value.is_finite() or value <= 0:
        raise ValueError(f"amount must be a positive number, not {amount!r}")
    return value
