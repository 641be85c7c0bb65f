"""Seeded, reproducible fault injection shared by every protocol face.

Every fault kind can fire two ways: at random, with the probability its ``FaultSpec`` rate gives
(``--faults``), or on demand, armed for the next ``count`` occasions (``Faults.arm``, which
``Simulator.inject`` and scenario files use). Random draws come from one ``random.Random(seed)``; each
occasion draws every nonzero rate it offers, whatever fires, so a run with the same seed, the same
spec and the same occasions injects the same faults, and an armed fault changes its own occasion only,
never the draws after it.

A face asks at each decision point (``venue`` narrows armed faults to one face; ``symbol`` to one
market)::

    faults.http_fault(venue)       -> "5xx" | "timeout" | None   (before handling a REST request)
    faults.maintenance(venue)      -> bool    (inside a maintenance window: answer 503)
    faults.rate_limited(venue)     -> int | None   (answer 429; the Retry-After seconds)
    await faults.delay()           # latency + jitter, before answering / sending
    faults.reject_order(venue)     -> bool    (answer a new order with a venue reject)
    faults.ioc_order(venue)        -> "rest_first" | "stream_first" | None   (IOC/market order reply order)
    faults.ws_fault(venue)         -> "drop" | "stall" | "duplicate" | "reorder" | "malformed" | None
    faults.stale(venue)            -> bool    (withhold one market-data message)
    faults.depth_gap(venue)        -> bool    (skip one depth diff: sequence gap)
    faults.book_fault(venue, sym)  -> "crossed_book" | "locked_book" | "zero_price" | ... | None
    faults.cancel_202(venue)       -> bool    (Backpack: cancel accepted, executed later)
    faults.skew_ms                 # add to the server time the venue reports and checks against
    faults.ban_418                 # rate-limit breaches go straight to a 418 ban
    faults.counts                  # how many faults of each kind were injected (tests and logs)
    faults.log                     # (kind, venue, symbol) of each, in order

The kinds that change the simulated world itself (spike, drop, partial_fill, liquidate, halt,
deposit, withdraw) are applied by :mod:`ate.sim.inject`, which draws them here too.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Protocol

from aiohttp import web

from ate.config.sim import FaultSpec

BOOK_KINDS = ("crossed_book", "locked_book", "zero_price", "negative_price", "nan_price")
FRAME_KINDS = ("ws_drop", "ws_stall", "ws_duplicate", "ws_reorder", "ws_malformed")


@dataclass
class Shot:
    """A fault armed on demand: fires on the next ``left`` matching occasions."""

    kind: str
    venue: str | None
    symbol: str | None
    left: int
    params: dict = field(default_factory=dict)

    def matches(self, kind: str, venue: str | None, symbol: str | None) -> bool:
        return (self.kind == kind and (self.venue is None or self.venue == venue)
                and (self.symbol is None or self.symbol == symbol))


class Faults:
    def __init__(self, spec: FaultSpec | None = None, seed: int = 0,
                 clock: Callable[[], int] | None = None) -> None:
        self.spec = spec or FaultSpec()
        self._rng = random.Random(seed)
        self._clock = clock or (lambda: 0)
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str | None, str | None]] = []
        self._shots: list[Shot] = []
        self._maintenance_until: dict[str | None, int] = {}
        # per-message decisions skip their draws when nothing of theirs can fire (the hot paths)
        self._book_rates = any(getattr(self.spec, k) for k in BOOK_KINDS)
        self._frame_rates = any(getattr(self.spec, k) for k in FRAME_KINDS)

    @property
    def skew_ms(self) -> int:
        return self.spec.clock_skew_ms

    @property
    def ban_418(self) -> bool:
        return self.spec.ban_418

    # ------------------------------------------------------------------ arming and drawing
    def arm(self, kind: str, *, venue: str | None = None, symbol: str | None = None, count: int = 1,
            **params: object) -> None:
        """Fire ``kind`` on its next ``count`` occasions (on ``venue`` / ``symbol`` if given)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self._shots.append(Shot(kind, venue, symbol, count, params))

    def armed(self, kind: str) -> bool:
        return any(s.kind == kind for s in self._shots)

    def fire(self, kind: str, rate: float, venue: str | None = None, symbol: str | None = None) -> dict | None:
        """The params of an armed shot, ``{}`` for a random hit, None when the fault does not fire."""
        chosen = self.first(((kind, rate),), venue, symbol)
        return None if chosen is None else chosen[1]

    def first(self, choices: tuple[tuple[str, float], ...], venue: str | None = None,
              symbol: str | None = None) -> tuple[str, dict] | None:
        """The first of the (kind, rate) choices that fires on this occasion, with its params.

        Every rate is drawn on every occasion, whatever fires, so the random sequence depends only on
        the seed, the spec and the occasions: an armed shot changes what happens then, not later."""
        hits = [rate > 0 and self._rng.random() < rate for _, rate in choices]
        for (kind, _), hit in zip(choices, hits, strict=True):
            params = self._take(kind, venue, symbol)
            if params is None and hit:
                params = {}
            if params is not None:
                self.counts[kind] += 1
                self.log.append((kind, venue, symbol))
                return kind, params
        return None

    def _take(self, kind: str, venue: str | None, symbol: str | None) -> dict | None:
        for shot in self._shots:
            if shot.matches(kind, venue, symbol):
                shot.left -= 1
                if shot.left == 0:
                    self._shots.remove(shot)
                return shot.params
        return None

    def _hit(self, rate: float, kind: str, venue: str | None = None, symbol: str | None = None) -> bool:
        return self.fire(kind, rate, venue, symbol) is not None

    # ------------------------------------------------------------------ REST
    def http_fault(self, venue: str | None = None) -> str | None:
        chosen = self.first((("timeout", self.spec.http_timeout), ("5xx", self.spec.http_5xx)), venue)
        return None if chosen is None else chosen[0]

    def maintenance(self, venue: str | None = None) -> bool:
        """True while a maintenance window of the venue is open; a fault opens one."""
        now = self._clock()
        hit = self.spec.maintenance > 0 and self._rng.random() < self.spec.maintenance  # drawn every request
        if max(self._maintenance_until.get(venue, 0), self._maintenance_until.get(None, 0)) > now:
            return True
        if not hit:
            return False
        self._maintenance_until[venue] = now + self.spec.maintenance_ms
        self.counts["maintenance"] += 1
        self.log.append(("maintenance", venue, None))
        return True

    def start_maintenance(self, venue: str | None, duration_ms: int) -> None:
        """Open a maintenance window now (``venue`` None: every venue) for ``duration_ms`` of sim time."""
        self._maintenance_until[venue] = self._clock() + duration_ms
        self.counts["maintenance"] += 1
        self.log.append(("maintenance", venue, None))

    def rate_limited(self, venue: str | None = None) -> int | None:
        shot = self.fire("http_429", self.spec.http_429, venue)
        return None if shot is None else int(shot.get("retry_after_s", self.spec.retry_after_s))

    def latency_s(self) -> float:
        ms = self.spec.latency_ms
        if self.spec.jitter_ms:
            ms += self._rng.randint(0, self.spec.jitter_ms)
        return ms / 1000

    async def delay(self) -> None:
        s = self.latency_s()
        if s > 0:
            await asyncio.sleep(s)

    # ------------------------------------------------------------------ orders
    def reject_order(self, venue: str | None = None) -> bool:
        return self._hit(self.spec.reject, "reject", venue)

    def cancel_202(self, venue: str | None = None) -> bool:
        return self._hit(self.spec.cancel_202, "cancel_202", venue)

    def ioc_order(self, venue: str | None = None) -> str | None:
        chosen = self.first((("ioc_rest_first", self.spec.ioc_rest_first),
                             ("ioc_stream_first", self.spec.ioc_stream_first)), venue)
        return None if chosen is None else chosen[0][4:]

    @property
    def ioc_gap_s(self) -> float:
        return self.spec.ioc_gap_ms / 1000

    # ------------------------------------------------------------------ streams
    def ws_fault(self, venue: str | None = None) -> str | None:
        if not self._frame_rates and not self._shots:
            return None
        chosen = self.first(tuple((kind, getattr(self.spec, kind)) for kind in FRAME_KINDS), venue)
        return None if chosen is None else chosen[0][3:]

    def stale(self, venue: str | None = None) -> bool:
        return self._hit(self.spec.stale, "stale", venue)

    def depth_gap(self, venue: str | None = None) -> bool:
        return self._hit(self.spec.depth_gap, "depth_gap", venue)

    def book_fault(self, venue: str | None = None, symbol: str | None = None) -> str | None:
        if not self._book_rates and not self._shots:
            return None
        chosen = self.first(tuple((kind, getattr(self.spec, kind)) for kind in BOOK_KINDS), venue, symbol)
        return None if chosen is None else chosen[0]


class FrameShaper:
    """One connection's view of the transport faults: what to write for each queued frame.

    ``frames(text)`` returns "drop" (close the connection), "stall" (go silent), or the list of
    frames to write now: the frame twice (duplicate), nothing yet (reorder: it follows the next
    frame), or a frame that is not JSON (malformed: the first half of the text, or an HTML error
    page, as a proxy in front of a venue sends)."""

    def __init__(self, faults: Faults, venue: str | None) -> None:
        self.faults = faults
        self.venue = venue
        self.held: str | None = None

    def frames(self, text: str) -> str | list[str]:
        fault = self.faults.ws_fault(self.venue)
        if fault in ("drop", "stall"):
            return fault
        if fault == "reorder" and self.held is None:
            self.held = text
            return []
        out = [text, text] if fault == "duplicate" else \
            [malformed(text, self.faults.counts["ws_malformed"])] if fault == "malformed" else [text]
        if self.held is not None:
            out.append(self.held)
            self.held = None
        return out


def malformed(text: str, nth: int) -> str:
    """The nth malformed frame: odd ones the first half of the text, even ones an HTML error page (no
    random draw, so an armed fault does not shift the seeded ones)."""
    if nth % 2 and len(text) > 1:
        return text[: len(text) // 2]
    return "<html><body><h1>502 Bad Gateway</h1></body></html>"


def _bad(kind: str, bid: str, ask: str) -> tuple[str, str]:
    """The (bid, ask) price strings a poisoned book message shows instead of ``bid``/``ask``."""
    if kind == "crossed_book":
        return ask, bid
    if kind == "locked_book":
        return ask, ask
    if kind == "zero_price":
        return "0", "0"
    if kind == "nan_price":
        return "NaN", "NaN"
    try:  # negative_price
        return str(-Decimal(bid)), str(-Decimal(ask))
    except InvalidOperation:
        return "-1", "-1"


def poison_book(payload: dict, kind: str) -> dict:
    """A copy of a book message (bookTicker or depth, either venue) with its best prices poisoned.

    bookTicker messages carry ``b``/``a`` price strings; depth messages carry ``b``/``a`` or
    ``bids``/``asks`` lists of [price, qty] in either order (Backpack lists ascending). The best
    level of each side with a quantity (highest bid, lowest ask) is rewritten; a side without one
    gets one."""
    out = json.loads(json.dumps(payload))
    for bk, ak in (("b", "a"), ("bids", "asks")):
        bid, ask = out.get(bk), out.get(ak)
        if isinstance(bid, str) and isinstance(ask, str):
            out[bk], out[ak] = _bad(kind, bid, ask)
            return out
        if isinstance(bid, list) and isinstance(ask, list):
            bi, ai = _best(bid, max), _best(ask, min)
            if bi is None and ai is None:
                return out  # only level removals: no price to poison
            ref = bid[bi] if bi is not None else ask[ai]  # type: ignore[index]
            nb, na = _bad(kind, ref[0] if bi is None else bid[bi][0], ref[0] if ai is None else ask[ai][0])
            for levels, i, price in ((bid, bi, nb), (ask, ai, na)):
                if i is None:
                    levels.append([price, ref[1]])
                else:
                    levels[i] = [price, levels[i][1]]
            return out
    return out


def _best(levels: list, pick: Callable) -> int | None:
    live = [i for i, (_, q) in enumerate(levels) if Decimal(q) != 0]
    return pick(live, key=lambda i: Decimal(levels[i][0])) if live else None

class StreamGate(Protocol):
    """A face's user-data streams, as the REST side of the same venue orders its replies around them."""

    def hold(self, account: str) -> None:
        """Keep the account's user-data frames back from now on (queued in order)."""

    def release(self, account: str) -> None:
        """Send what was held, in order, and stop holding."""

    async def flushed(self, account: str) -> None:
        """Return once every frame queued so far for the account has been written to its sockets."""


async def ordered_reply(ordering: str, gate: StreamGate, account: str, request: web.Request,
                        response: web.StreamResponse, gap_s: float) -> None:
    """Put an IOC order's REST reply and its stream events on the wire in the order the fault says.

    rest_first: the events were held since before the order ran; the reply is written out now and the
    caller releases them (after ``gap_s``). stream_first: the reply waits until the events are written,
    then ``gap_s`` more. The gap keeps the two sockets' bytes apart for the client."""
    if ordering == "stream_first":
        try:
            await asyncio.wait_for(gate.flushed(account), 2.0)
        except TimeoutError:
            pass  # a subscriber that does not read: the reply goes anyway
        await asyncio.sleep(gap_s)
    else:
        await response.prepare(request)
        await response.write_eof()
        await asyncio.sleep(gap_s)
