"""Graceful shutdown (SIGINT / SIGTERM): the plan the engine runs, step by step.

Stop strategies first so nothing new is decided, then cancel resting orders (or keep them, per
``shutdown.cancel_orders``), flatten only if ``shutdown.flatten`` is set (never by default), flush
the store, close connections. Positions are left as they are unless configured otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum

import structlog

from ate.config.risk import ShutdownConfig

log = structlog.get_logger("ate.risk")


class Step(StrEnum):
    STOP_STRATEGIES = "stop_strategies"
    CANCEL_ORDERS = "cancel_orders"
    FLATTEN = "flatten"
    FLUSH_STORE = "flush_store"
    CLOSE_CONNECTIONS = "close_connections"


def shutdown_plan(cfg: ShutdownConfig) -> list[Step]:
    steps = [Step.STOP_STRATEGIES]
    if cfg.cancel_orders:
        steps.append(Step.CANCEL_ORDERS)
    if cfg.flatten:
        steps.append(Step.FLATTEN)
    return [*steps, Step.FLUSH_STORE, Step.CLOSE_CONNECTIONS]


async def run_shutdown(plan: list[Step], actions: Mapping[Step, Callable[[], Awaitable[object]]]) -> list[Step]:
    """Run every step in order; a failing step is logged and the rest still run (connections must close).

    Returns the steps that completed. A step with no action registered is a programming error.
    """
    missing = [s.value for s in plan if s not in actions]
    if missing:
        raise ValueError(f"no shutdown action for {', '.join(missing)}")
    done: list[Step] = []
    for step in plan:
        try:
            await actions[step]()
        except Exception:
            log.exception("shutdown_step_failed", step=step.value)
            continue
        done.append(step)
    return done
