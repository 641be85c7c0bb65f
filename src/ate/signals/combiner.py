"""The directional combiner (§6): weighted votes → decision, veto scoping, size and exit levels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ate.config.modules import CombinerConfig
from ate.signals.base import ModuleOutput, Side, Status, Veto

_UNCOUNTED = (Status.STALE, Status.ERROR)
ENTRY_SCOPES = ("directional", "all")


@dataclass(frozen=True, slots=True)
class Combined:
    side: Side | None  # BUY / SELL, or None for no decision
    confidence: float  # B/T or S/T of the decided side (0 without a decision)
    buy: float  # B
    sell: float  # S
    total: float  # T
    reason: str


def combine(voters: Iterable[ModuleOutput], cfg: CombinerConfig) -> Combined:
    """Step 1 of §6 over the voters' outputs (STALE / ERROR voters do not count)."""
    b = s = t = 0.0
    for out in voters:
        w = cfg.weights.get(out.module)  # type: ignore[call-overload]
        if w is None or out.vote is None or out.status in _UNCOUNTED:
            continue
        wc = w * out.vote.confidence
        t += wc
        if out.vote.side is Side.BUY:
            b += wc
        elif out.vote.side is Side.SELL:
            s += wc
    if t <= 0:
        return Combined(None, 0.0, b, s, t, "no counted votes")
    if b > cfg.dominance * s:
        if b / t >= cfg.min_confidence:
            return Combined(Side.BUY, b / t, b, s, t, "")
        return Combined(None, 0.0, b, s, t, f"BUY confidence {b / t:.4f} < {cfg.min_confidence}")
    if s > cfg.dominance * b:
        if s / t >= cfg.min_confidence:
            return Combined(Side.SELL, s / t, b, s, t, "")
        return Combined(None, 0.0, b, s, t, f"SELL confidence {s / t:.4f} < {cfg.min_confidence}")
    return Combined(None, 0.0, b, s, t, f"no dominance (B {b:.4f}, S {s:.4f})")


def entry_vetoes(outputs: Iterable[ModuleOutput], market: str | None = None,
                 venue: str | None = None) -> list[Veto]:
    """Vetoes that block a new directional entry: `directional`, `all`, and this market/venue."""
    scopes = set(ENTRY_SCOPES)
    if market:
        scopes.add(f"market:{market}")
    if venue:
        scopes.add(f"venue:{venue}")
    return [v for out in outputs for v in out.vetoes if v.scope in scopes]


def target_notional(equity: float, kelly_f: float, bitvol_m: float, garch_m: float) -> float:
    """`N = equity·kelly.f·bitvol.m·garch.m` (before risk-layer caps and rounding)."""
    return equity * kelly_f * bitvol_m * garch_m


def exit_levels(entry: float, atr: float, side: Side, stop_atr: float = 2.0,
                target_atr: float = 3.0) -> tuple[float, float]:
    """(stop, target) fixed at entry from the decision bar's ATR(14)."""
    sign = 1.0 if side is Side.BUY else -1.0
    return entry - sign * stop_atr * atr, entry + sign * target_atr * atr


@dataclass(frozen=True, slots=True)
class Intent:
    """What the directional strategy should do at this decision close."""

    kind: str  # ENTER | EXIT | FLATTEN | NONE
    side: Side | None
    size_fraction: float  # of equity, for ENTER (kelly·bitvol·garch)
    reason: str


def decide(combined: Combined, outputs: Mapping[str, ModuleOutput], position: float, *,
           allow_short: bool = False, market: str | None = None, venue: str | None = None) -> Intent:
    """Steps 2–4 of §6. `position` is the signed base position on the market (0 = flat).

    Exits come first and are never vetoed; an emergency FLATTEN_AND_HALT closes everything.
    """
    em = outputs.get("emergency")
    if em is not None and any(a.kind == "FLATTEN_AND_HALT" for a in em.actions):
        return Intent("FLATTEN", None, 0.0, "emergency FLATTEN_AND_HALT")
    side = combined.side
    if side is None:
        return Intent("NONE", None, 0.0, combined.reason)
    if position > 0 and side is Side.SELL or position < 0 and side is Side.BUY:
        return Intent("EXIT", side, 0.0, "opposite decision")
    if position != 0:
        return Intent("NONE", side, 0.0, "already in a position (no pyramiding)")
    if side is Side.SELL and not allow_short:
        return Intent("NONE", side, 0.0, "spot is long-only: SELL only exits")
    vetoes = entry_vetoes(outputs.values(), market, venue)
    if vetoes:
        return Intent("NONE", side, 0.0, "vetoed: " + "; ".join(f"{v.scope} ({v.reason})" for v in vetoes))
    if outputs.get("kelly") is None or outputs["kelly"].size_multiplier is None:
        return Intent("NONE", side, 0.0, "no kelly fraction")
    fraction = 1.0
    for name in ("kelly", "bitvol", "garch"):
        out = outputs.get(name)
        if out is not None and out.size_multiplier is not None:
            fraction *= out.size_multiplier
    if fraction <= 0:
        return Intent("NONE", side, 0.0, "size multiplier 0")
    return Intent("ENTER", side, fraction, "")
