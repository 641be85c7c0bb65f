"""Scenario files: a JSON list of timed fault injections, played on the simulator's clock.

    [{"at": "30s", "kind": "withdraw", "account": "demo", "venue": "binance-spot", "asset": "BTC",
      "amount": "0.05"},
     {"at": "60s", "kind": "liquidate", "account": "demo", "venue": "binance-usdm", "symbol": "BTCUSDT"},
     {"at": "90s", "kind": "spike", "venue": "backpack", "factor": 3, "ticks": 2},
     {"at": "120s", "kind": "ioc_ordering", "order": "rest_first"}]

``at`` is the time from the start of play: ``"1500ms"``, ``"30s"``, ``"2m"``, ``"1h"`` or a number
of ms. Every other field is a parameter of that kind's injection (ate.sim.inject); durations
(``duration``) take the same forms. ``Scenario.load(path)`` / ``Scenario.parse(data)`` validate the
whole file and raise :class:`ScenarioError` listing every problem as ``event[i].field: reason``.

Played by ``ate simulate --scenario FILE`` and by tests through the same player,
``sim.play(scenario)``: each event runs when the replay reaches its time, in order with the replayed
data. An event the world refuses when it comes (a withdrawal above the free balance, a liquidation
without a position) is recorded in ``Scenario.failures`` and the play goes on.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from ate.config.sim import SimVenue
from ate.sim.core import MatchingCore, OrderRejected
from ate.sim.faults import BOOK_KINDS, FRAME_KINDS
from ate.sim.inject import Injector
from ate.sim.replay import Replayer

_log = logging.getLogger(__name__)
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")


def _ms(value: object) -> object:
    """'30s' / '1500ms' / '2m' / '1h' / a number of ms → int ms (anything else is left to fail)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError("a duration is a number of ms or a string like '1500ms', '30s', '2m', '1h'")
        return round(float(match.group(1)) * _UNITS[match.group(2)])
    return value


Duration = Annotated[int, BeforeValidator(_ms), Field(ge=0)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at: Duration

    def params(self) -> dict[str, object]:
        out = self.model_dump(exclude={"at", "kind"}, exclude_none=True)
        if "duration" in out:
            out["duration_ms"] = out.pop("duration")
        return out


class Transfer(_Event):
    kind: Literal["deposit", "withdraw"]
    account: str = Field(min_length=1)
    venue: SimVenue
    asset: str = Field(min_length=1)
    amount: Decimal = Field(gt=0, allow_inf_nan=False)


class Liquidate(_Event):
    kind: Literal["liquidate"]
    account: str = Field(min_length=1)
    venue: Literal["binance-usdm", "backpack"]
    symbol: str = Field(min_length=1)


class Halt(_Event):
    kind: Literal["halt"]
    venue: SimVenue
    symbol: str = Field(min_length=1)
    duration: Duration | None = None


class Resume(_Event):
    kind: Literal["resume"]
    venue: SimVenue
    symbol: str = Field(min_length=1)


class Spike(_Event):
    kind: Literal["spike"]
    venue: SimVenue
    symbol: str | None = None
    factor: float | None = Field(None, gt=1, le=1000)
    ticks: int | None = Field(None, ge=1, le=10_000)


class Drop(_Event):
    kind: Literal["drop"]
    venue: SimVenue
    symbol: str | None = None
    factor: float | None = Field(None, gt=0, lt=1)
    ticks: int | None = Field(None, ge=1, le=10_000)


class Maintenance(_Event):
    kind: Literal["maintenance"]
    venue: SimVenue | None = None
    duration: Duration | None = None


class IocOrdering(_Event):
    kind: Literal["ioc_ordering"]
    order: Literal["rest_first", "stream_first"]
    venue: SimVenue | None = None
    count: int = Field(1, ge=1)


class Armed(_Event):
    """Faults met at the next ``count`` occasions on the venue."""

    kind: Literal["http_5xx", "http_timeout", "reject", "cancel_202", "stale", "depth_gap",
                  *FRAME_KINDS]  # type: ignore[valid-type]
    venue: SimVenue | None = None
    count: int = Field(1, ge=1)


class BookFault(_Event):
    """Poisoned book messages at the next ``count`` book updates of the venue (and symbol)."""

    kind: Literal[BOOK_KINDS]  # type: ignore[valid-type]
    venue: SimVenue | None = None
    symbol: str | None = None
    count: int = Field(1, ge=1)


class RateLimit(_Event):
    kind: Literal["http_429"]
    venue: SimVenue | None = None
    count: int = Field(1, ge=1)
    retry_after_s: int | None = Field(None, ge=1, le=3600)


class PartialFill(_Event):
    kind: Literal["partial_fill"]
    venue: SimVenue | None = None
    symbol: str | None = None
    count: int = Field(1, ge=1)
    fraction: float | None = Field(None, gt=0, lt=1)


Event = Annotated[Transfer | Liquidate | Halt | Resume | Spike | Drop | Maintenance | IocOrdering | Armed
                  | BookFault | RateLimit | PartialFill, Field(discriminator="kind")]
_EVENTS = TypeAdapter(list[Event])


class ScenarioError(ValueError):
    """A scenario that does not validate; ``problems`` are ``event[i].field: reason`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class Scenario:
    def __init__(self, events: list[_Event], source: str = "scenario") -> None:
        self.events = events  # the replay runs same-time events in this (file) order
        self.source = source
        self.failures: list[tuple[int, str, str]] = []  # (at ms, kind, why)

    @classmethod
    def parse(cls, data: object, source: str = "scenario") -> Scenario:
        try:
            return cls(_EVENTS.validate_python(data), source)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = list(err["loc"])
                where = f"event[{loc.pop(0)}]" if loc and isinstance(loc[0], int) else "scenario"
                if loc and isinstance(loc[0], str) and loc[0] in _KINDS_OF_UNION:
                    loc.pop(0)  # pydantic names the union member; the kind is already in the event
                where += "".join(f".{part}" for part in loc)
                problems.append(f"{where}: {err['msg']}")
            raise ScenarioError(source, problems) from None

    @classmethod
    def load(cls, path: Path | str) -> Scenario:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise ScenarioError(str(path), [f"cannot read: {exc.strerror}"]) from None
        except ValueError as exc:
            raise ScenarioError(str(path), [f"not JSON: {exc}"]) from None
        return cls.parse(data, str(path))

    def check(self, core: MatchingCore) -> None:
        """Raise ScenarioError if an event names an account or a market the world does not have."""
        problems = []
        for i, e in enumerate(self.events):
            account, venue, symbol = (getattr(e, k, None) for k in ("account", "venue", "symbol"))
            if account is not None and account not in core.accounts:
                problems.append(f"event[{i}].account: no simulated account {account!r}")
            if symbol is not None and (venue, symbol) not in core.markets and not (
                    venue is None and any(s == symbol for _, s in core.markets)):
                problems.append(f"event[{i}].symbol: no simulated market {venue or '*'}:{symbol}")
            elif venue is not None and not core.markets_of(venue):
                problems.append(f"event[{i}].venue: no simulated market on {venue}")
        if problems:
            raise ScenarioError(self.source, problems)

    def schedule(self, replayer: Replayer, injector: Injector, start_ms: int,
                 stamp: Callable[[int], int] | None = None) -> None:
        """Check the events against the world, then run each when the replay reaches ``start_ms + at``
        (data time; ``stamp`` maps it onto the world clock in the simulator's wall mode)."""
        self.check(injector.core)
        for event in self.events:
            when = start_ms + event.at
            replayer.schedule(stamp(when) if stamp else when, lambda e=event: self._run(injector, e))

    def _run(self, injector: Injector, event: _Event) -> None:
        try:
            injector.inject(event.kind, **event.params())  # type: ignore[attr-defined]
        except (OrderRejected, ValueError) as exc:
            self.failures.append((event.at, event.kind, str(exc)))  # type: ignore[attr-defined]
            _log.warning("scenario %s: %s at %d ms refused: %s", self.source, event.kind,  # type: ignore[attr-defined]
                         event.at, exc)


_KINDS_OF_UNION = {cls.__name__ for cls in _Event.__subclasses__()}
# pydantic reports a discriminated member by its tag ("withdraw"), not the class name
_KINDS_OF_UNION |= {tag for cls in _Event.__subclasses__()
                    for tag in cls.model_fields["kind"].annotation.__args__}  # type: ignore[union-attr]
