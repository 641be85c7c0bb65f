"""The outcome of a pre-trade check: approve, trim or reject, with a reason code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ate.model import OrderIntent


class Decision(StrEnum):
    APPROVE = "approve"
    TRIM = "trim"  # approved with a smaller quantity; ``reason`` names the limit that bound
    REJECT = "reject"


class Reason(StrEnum):
    OK = "ok"
    # limits that trim
    ORDER_CAP = "order_cap"  # notional > max_order_pct_of_capital of capital
    SINGLE_TRADE_CAP = "single_trade_cap"  # entry notional > max_single_trade_pct of capital
    POSITION_CAP = "position_cap"  # resulting position > max_position_size_usd / canary / stage cap
    REDUCE_ONLY = "reduce_only"  # a reducing order larger than the position it reduces
    DELTA = "delta"  # REDUCING: a hedge or unwind larger than the net delta it reduces
    # rejections
    HALTED = "halted"
    REDUCING = "reducing"  # REDUCING admits exits, hedges, unwinds and close-all only
    NO_TRUSTED_PRICE = "no_trusted_price"
    PRICE_DEVIATION = "price_deviation"
    DAILY_LOSS = "daily_loss"
    RATE_LIMIT = "rate_limit"
    NOTHING_TO_REDUCE = "nothing_to_reduce"
    LOT_SIZE = "LOT_SIZE"
    PRICE_FILTER = "PRICE_FILTER"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    INVALID = "invalid"  # non-positive quantity, or a market order with no mark to value it


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    reason: Reason
    intent: OrderIntent | None  # what may be sent (rounded by the venue's filters); None when rejected
    detail: str = ""

    @property
    def approved(self) -> bool:
        return self.decision is not Decision.REJECT


@dataclass(frozen=True, slots=True)
class GroupVerdict:
    """The outcome for the legs of one multi-leg intent: every leg at one size, or none.

    ``intents`` holds the legs to send (same order as asked) when approved, and is empty when rejected;
    ``leg`` is the index of the leg whose limit or filter decided a trim or a rejection."""

    decision: Decision
    reason: Reason
    intents: tuple[OrderIntent, ...] = ()
    detail: str = ""
    leg: int | None = None

    @property
    def approved(self) -> bool:
        return self.decision is not Decision.REJECT
