"""Emergency ladder actions (signals-and-strategies.md §5.1). The emergency module computes the level;
this turns a level and the current holdings into reduce-only order intents.

- Levels 2/3/4 REDUCE 25/50/75 %: gross exposure ≤ (1 − x)·X_ref, X_ref = gross exposure when the episode
  first reached level 2. Directional positions are cut in proportion; delta-neutral pairs are cut pairwise
  (the same coin quantity off both legs, so the pair stays neutral); arbitrage inventory is kept.
  One-shot per level: the target depends on X_ref, not on today's exposure, so planning again after the
  cut filled yields nothing, and only a shortfall (partial fill, rounding) is re-issued. The caller must not
  plan again while the previous cut is still in flight.
- Level 5 FLATTEN_AND_HALT: close directional positions and pairs (arbitrage inventory too if
  ``flatten_inventory``) and ask the caller to HALT; see :class:`EmergencyLadder`.

Orders are MARKET, reduce-only, purpose CLOSE_ALL: emergency orders bypass entry checks, never exit
checks (pre-trade still enforces reduce-only and the venue filters).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from ate.model import EngineEvent, Instrument, OrderIntent, OrderType, Purpose, Severity, Side, TimeInForce
from ate.risk.events import EMERGENCY_ACTION, LADDER_KEY
from ate.risk.store import StateStore

ZERO = Decimal(0)
REDUCE_BY_LEVEL = {2: Decimal("0.25"), 3: Decimal("0.50"), 4: Decimal("0.75")}
FLATTEN_LEVEL = 5
DAY_MS = 86_400_000


class Book(StrEnum):
    DIRECTIONAL = "directional"
    PAIR = "pair"  # one leg of a delta-neutral pair (funding carry, hedged directional)
    ARBITRAGE = "arbitrage"  # pre-funded arbitrage inventory: kept by REDUCE


@dataclass(frozen=True, slots=True)
class Holding:
    instrument: Instrument
    qty: Decimal  # signed base quantity
    mark: Decimal
    book: Book
    pair: str = ""  # pair id shared by both legs of a PAIR
    strategy: str = ""

    @property
    def notional(self) -> Decimal:
        return abs(self.qty) * self.mark


def gross_exposure(holdings: Iterable[Holding]) -> Decimal:
    """Gross exposure the ladder acts on: directional positions and pair legs, arbitrage excluded."""
    return sum((h.notional for h in holdings if h.book is not Book.ARBITRAGE), ZERO)


def _ceil_step(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(rounding=ROUND_CEILING) * step if step > 0 else qty


def _close(h: Holding, qty: Decimal, reason: str) -> OrderIntent:
    side = Side.SELL if h.qty > 0 else Side.BUY
    return OrderIntent(h.instrument.venue, h.instrument.symbol, side, qty.normalize(), None,
                       h.strategy or "emergency", Purpose.CLOSE_ALL, OrderType.MARKET, TimeInForce.IOC,
                       reduce_only=True, meta={"reason": reason})


def cut_intents(holdings: Iterable[Holding], fraction: Decimal, reason: str) -> list[OrderIntent]:
    """Reduce-only intents cutting ``fraction`` (0..1] of every directional position and pair."""
    out: list[OrderIntent] = []
    pairs: dict[str, list[Holding]] = defaultdict(list)
    for h in holdings:
        if h.qty == 0 or h.book is Book.ARBITRAGE:
            continue
        if h.book is Book.PAIR:
            pairs[h.pair].append(h)
            continue
        qty = min(abs(h.qty), _ceil_step(abs(h.qty) * fraction, h.instrument.step_size))
        if qty > 0:
            out.append(_close(h, qty, reason))
    for legs in pairs.values():
        step = max(h.instrument.step_size for h in legs)
        smallest = min(abs(h.qty) for h in legs)
        qty = smallest if fraction >= 1 else min(smallest, _ceil_step(smallest * fraction, step))
        out.extend(_close(h, abs(h.qty) if fraction >= 1 else qty, reason) for h in legs if qty > 0)
    return out


def flatten_intents(holdings: Iterable[Holding], *, include_arbitrage: bool = False,
                    reason: str = "flatten") -> list[OrderIntent]:
    """Close every directional position and pair (and arbitrage inventory if asked), reduce-only."""
    hs = [h if h.book is not Book.ARBITRAGE or not include_arbitrage else
          Holding(h.instrument, h.qty, h.mark, Book.DIRECTIONAL, strategy=h.strategy) for h in holdings]
    return cut_intents(hs, Decimal(1), reason)


@dataclass(slots=True)
class LadderPlan:
    level: int
    intents: list[OrderIntent] = field(default_factory=list)
    halt: bool = False  # level 5: the caller HALTs (persisted) and cancels every open order first
    target: Decimal | None = None  # gross exposure target of a REDUCE


class EmergencyLadder:
    """Ladder episode state (X_ref, highest level acted on), persisted under ``risk.ladder``.

    Engine use, at each emergency module output::

        plan = ladder.plan(output_level, holdings)
        if plan.halt:  # cancel all, HALT; the flatten intents pass pre-trade as CLOSE_ALL
            await kill_switch.activate("emergency level 5", "emergency")
        for intent in plan.intents: ... check and send ...
    """

    def __init__(self, store: StateStore, clock: Callable[[], int], *, flatten_inventory: bool = False) -> None:
        self.store = store
        self.clock = clock
        self.flatten_inventory = flatten_inventory
        rec = store.get_state(LADDER_KEY) or {}
        self.x_ref = Decimal(rec["x_ref"]) if rec.get("x_ref") is not None else None
        self.level = int(rec.get("level", 0))
        self.day_ms = rec.get("day_ms")

    def plan(self, level: int, holdings: list[Holding]) -> LadderPlan:
        now = self.clock()
        day = now - now % DAY_MS
        if level < 2:
            if self.x_ref is not None and self.day_ms is not None and day > self.day_ms:
                self.reset()  # the episode ends with the day once the level is back to ≤ 1
            return LadderPlan(level)
        if self.x_ref is None:
            self.x_ref, self.day_ms = gross_exposure(holdings), day
        acted = max(self.level, level)
        if level >= FLATTEN_LEVEL:
            plan = LadderPlan(level, flatten_intents(holdings, include_arbitrage=self.flatten_inventory,
                                                     reason="emergency level 5"), halt=True, target=ZERO)
        else:
            # the level only rises within an episode and cuts are never reversed: the deepest level acted on rules
            target = (1 - REDUCE_BY_LEVEL[min(acted, 4)]) * self.x_ref
            gross = gross_exposure(holdings)
            plan = LadderPlan(level, target=target)
            if gross > target:
                plan.intents = cut_intents(holdings, (gross - target) / gross, f"emergency level {acted}")
        if acted != self.level or plan.intents:
            self.level = acted
            self._save(now)
            self.store.add_event(EngineEvent(now, EMERGENCY_ACTION,
                                             f"emergency level {level}: {len(plan.intents)} reduce-only orders",
                                             Severity.CRITICAL, {"level": level, "action": "halt" if plan.halt
                                                                 else "reduce", "orders": len(plan.intents)}))
        return plan

    def reset(self) -> None:
        """New episode (new day at level ≤ 1, or operator resume after a halt)."""
        self.x_ref, self.level, self.day_ms = None, 0, None
        self._save(self.clock())

    def _save(self, now: int) -> None:
        self.store.set_state(LADDER_KEY, {"x_ref": None if self.x_ref is None else str(self.x_ref),
                                          "level": self.level, "day_ms": self.day_ms}, now)
