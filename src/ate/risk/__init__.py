"""The risk layer: every order passes here (DESIGN.md principle 4).

- ``pretrade.PreTradeChecker``: approve / trim / reject each ``OrderIntent`` (hot path, pure).
- ``capital.limits_in_force``: the capital and USD limits of the mode (canary, live stage, configured).
- ``state.TradingStateKeeper``: ACTIVE / REDUCING / HALTED, persisted, transitions logged.
- ``killswitch.KillSwitch``: file, CLI, operator API, SIGUSR1 → HALTED + cancel all (+ flatten).
- ``daily.DailyLossTracker``: daily loss from 00:00 UTC and the equity peak, persisted.
- ``ladder.EmergencyLadder``: emergency levels → reduce-only intents; level 5 flatten and halt.
- ``promotion``: capital stages, promotion gates, withdrawal advice.
- ``shutdown``: the graceful-shutdown plan.
- ``closeall``: cancel everything and close every position (``ate close-all``, and a canceller for the kill
  switch when no order manager runs).

Engine wiring (the order manager and the engine call these; nothing reaches a venue around them)::

    limits = limits_from_config(cfg, promotion.stage_index(store))        # mode → capital in force
    checker = PreTradeChecker(limits, clock)                              # clock() -> epoch ms
    keeper = TradingStateKeeper(store, clock); keeper.subscribe(checker.set_state)
    daily = DailyLossTracker(store, limits.daily_loss_usd, clock)
    kill = KillSwitch(cfg.kill_switch, keeper, cancel_all=om.cancel_all, flatten=om.flatten_all)
    kill.install_signal_handler(loop); asyncio.create_task(kill.run())   # file + store watch, SIGUSR1
    ladder = EmergencyLadder(store, clock)

    # market data: checker.update_mark(instrument.key, trusted_mark, ts_ms)
    # every intent: v = checker.check(intent, instrument); send v.intent only if v.approved
    # a multi-leg intent (legs share OrderIntent.group): g = checker.check_group(legs, instruments);
    #     send every g.intents or none; strategies size within checker.headroom_usd(market, side)
    # fills: checker.on_fill(instrument, side, qty); order ended: checker.on_order_closed(key, side, unfilled)
    # reconciliation: checker.set_position(instrument, qty)
    # equity (e.g. every second): checker.set_daily_loss(daily.update(equity, flow))
    # emergency module output (values["level"]): plan = ladder.plan(level, holdings);
    #     if plan.halt: await kill.activate("emergency level 5", "emergency"); then check + send plan.intents
    # operator API (monitor): await kill.activate(reason, who) / await kill.resume(who)
    # leaving HALTED (resume here or `ate resume` seen by kill.run): a keeper listener calls daily.rebase()
    #     and ladder.reset() — the emergency spec re-bases peak and E_day0 on resume
    # SIGINT/SIGTERM: await run_shutdown(shutdown_plan(cfg.shutdown), {Step...: coroutine function})

``Limits`` are fixed at start: a promotion takes effect when the engine restarts in the new stage.
"""

from ate.risk.capital import Limits, limits_from_config, limits_in_force
from ate.risk.daily import DailyLossTracker, pnl_total
from ate.risk.killswitch import KillSwitch
from ate.risk.ladder import Book, EmergencyLadder, Holding, LadderPlan
from ate.risk.pretrade import PreTradeChecker
from ate.risk.shutdown import Step, run_shutdown, shutdown_plan
from ate.risk.state import TradingStateKeeper
from ate.risk.verdict import Decision, GroupVerdict, Reason, Verdict

__all__ = [
    "Book",
    "DailyLossTracker",
    "Decision",
    "EmergencyLadder",
    "GroupVerdict",
    "Holding",
    "KillSwitch",
    "LadderPlan",
    "Limits",
    "PreTradeChecker",
    "Reason",
    "Step",
    "TradingStateKeeper",
    "Verdict",
    "limits_from_config",
    "limits_in_force",
    "pnl_total",
    "run_shutdown",
    "shutdown_plan",
]
