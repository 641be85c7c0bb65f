from __future__ import annotations

import pytest

from ate.config.risk import ShutdownConfig
from ate.risk import Step, run_shutdown, shutdown_plan


def test_default_plan_cancels_but_never_liquidates():
    assert shutdown_plan(ShutdownConfig()) == [Step.STOP_STRATEGIES, Step.CANCEL_ORDERS, Step.FLUSH_STORE,
                                               Step.CLOSE_CONNECTIONS]
    keep = shutdown_plan(ShutdownConfig(cancel_orders=False))
    assert Step.CANCEL_ORDERS not in keep and Step.FLATTEN not in keep
    assert shutdown_plan(ShutdownConfig(flatten=True)).index(Step.FLATTEN) == 2  # after cancel, before flush


async def test_steps_run_in_order_and_a_failure_does_not_stop_the_rest():
    ran = []

    def action(step, fail=False):
        async def run():
            ran.append(step)
            if fail:
                raise ConnectionError("venue gone")
        return run

    plan = shutdown_plan(ShutdownConfig(flatten=True))
    actions = {s: action(s, fail=s is Step.CANCEL_ORDERS) for s in Step}
    done = await run_shutdown(plan, actions)
    assert ran == plan
    assert done == [s for s in plan if s is not Step.CANCEL_ORDERS]


async def test_missing_action_is_refused_before_anything_runs():
    ran = []

    async def stop():
        ran.append(1)

    with pytest.raises(ValueError, match="flush_store, close_connections"):
        await run_shutdown(shutdown_plan(ShutdownConfig(cancel_orders=False)), {Step.STOP_STRATEGIES: stop})
    assert not ran
