"""Seeded, reproducible fault injection shared by every protocol face.

A face asks the one ``Faults`` object of the run at each decision point; every draw comes from one
``random.Random(seed)`` so a run with the same seed and the same request sequence injects the same
faults. Use from a face (Binance here; Backpack the same way)::

    faults.http_fault()    -> "5xx" | "timeout" | None   (before handling a REST request)
    await faults.delay()   # latency + jitter, before answering / sending
    faults.reject_order()  -> bool                        (answer a new order with a venue reject)
    faults.ws_fault()      -> "drop" | "stall" | None     (per WS message sent)
    faults.stale()         -> bool                        (withhold one market-data message)
    faults.depth_gap()     -> bool                        (skip one depth diff: sequence gap)
    faults.cancel_202()    -> bool                        (Backpack: cancel accepted, executed later)
    faults.skew_ms         # add to the server time the venue reports and checks against
    faults.ban_418         # rate-limit breaches go straight to a 418 ban
    faults.counts          # how many faults of each kind were injected (for tests and logs)
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from ate.config.sim import FaultSpec


class Faults:
    def __init__(self, spec: FaultSpec | None = None, seed: int = 0) -> None:
        self.spec = spec or FaultSpec()
        self._rng = random.Random(seed)
        self.counts: Counter[str] = Counter()

    @property
    def skew_ms(self) -> int:
        return self.spec.clock_skew_ms

    @property
    def ban_418(self) -> bool:
        return self.spec.ban_418

    def _hit(self, rate: float, kind: str) -> bool:
        if rate <= 0:
            return False
        if self._rng.random() < rate:
            self.counts[kind] += 1
            return True
        return False

    def http_fault(self) -> str | None:
        if self._hit(self.spec.http_timeout, "timeout"):
            return "timeout"
        if self._hit(self.spec.http_5xx, "5xx"):
            return "5xx"
        return None

    def latency_s(self) -> float:
        ms = self.spec.latency_ms
        if self.spec.jitter_ms:
            ms += self._rng.randint(0, self.spec.jitter_ms)
        return ms / 1000

    async def delay(self) -> None:
        s = self.latency_s()
        if s > 0:
            await asyncio.sleep(s)

    def reject_order(self) -> bool:
        return self._hit(self.spec.reject, "reject")

    def ws_fault(self) -> str | None:
        if self._hit(self.spec.ws_drop, "ws_drop"):
            return "drop"
        if self._hit(self.spec.ws_stall, "ws_stall"):
            return "stall"
        return None

    def stale(self) -> bool:
        return self._hit(self.spec.stale, "stale")

    def depth_gap(self) -> bool:
        return self._hit(self.spec.depth_gap, "depth_gap")

    def cancel_202(self) -> bool:
        return self._hit(self.spec.cancel_202, "cancel_202")
