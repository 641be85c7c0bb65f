"""``ate simulate``: serve the simulated venues of a config until Ctrl-C or SIGTERM.

Prints one line per endpoint once every server is listening, ``<venue> <rest|ws> <url>``, then runs
the replay; exits 0 on SIGINT/SIGTERM. Data paths in the config's ``sim.markets`` are relative to the
working directory (run it from the repository root). ``--faults`` sets fault rates (seeded by
``--seed``); ``--scenario FILE`` plays timed fault injections (ate.sim.scenario) from the replay start.
A bad fault spec or scenario exits 2 with one ``<where>: <reason>`` line per problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import typer
from pydantic import ValidationError

from ate.config.sim import FaultSpec


def simulate_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Engine config JSON with a `sim` section."),
    speed: float | None = typer.Option(None, "--speed", min=0, help="Replay speed (0 = as fast as possible)."),
    faults: str | None = typer.Option(None, "--faults", help="Fault spec, e.g. 'http_5xx=0.01,latency_ms=20'."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the fault injection."),
    port_base: int | None = typer.Option(None, "--port-base", min=0, max=65000,
                                         help="First port (then +1, +2...); 0 picks free ports."),
    scenario: Path | None = typer.Option(None, "--scenario",
                                         help="JSON list of timed faults to play, e.g. configs/scenarios/*.json."),
) -> None:
    """Run the simulated exchanges (Binance Spot/USD-M, Backpack, Deribit) of a config on 127.0.0.1."""
    from ate.config import load_config_or_exit

    cfg = load_config_or_exit(config)
    if cfg.sim is None:
        print("sim: the config has no 'sim' section", file=sys.stderr)
        raise typer.Exit(2)
    fault_spec = None
    if faults is not None:
        try:
            fault_spec = FaultSpec.model_validate(faults)
        except ValidationError as exc:
            for err in exc.errors():
                print(f"--faults: {'.'.join(map(str, err['loc'])) or 'spec'}: {err['msg']}", file=sys.stderr)
            raise typer.Exit(2) from None
    plan = None
    if scenario is not None:
        from ate.sim.scenario import Scenario, ScenarioError

        try:
            plan = Scenario.load(scenario)
        except ScenarioError as exc:
            _problems(exc)
            raise typer.Exit(2) from None
    asyncio.run(_serve(cfg.sim, speed, fault_spec, seed, port_base, plan))


def _problems(exc) -> None:
    for problem in exc.problems:
        print(f"--scenario {exc.source}: {problem}", file=sys.stderr)


def served_time(sim_cfg, speed: float | None) -> str:
    """External clients sign with their own wall clocks, so unless the replay runs at real time the
    venues must check timestamps against the wall clock."""
    if sim_cfg.server_time != "auto":
        return sim_cfg.server_time
    return "replay" if (sim_cfg.speed if speed is None else speed) == 1 else "wall"


async def _serve(sim_cfg, speed, faults, seed, port_base, scenario) -> None:
    from ate.sim.runner import run_simulator
    from ate.sim.scenario import ScenarioError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_simulator(sim_cfg, speed=speed, faults=faults, seed=seed, port_base=port_base,
                             server_time=served_time(sim_cfg, speed)) as sim:
        if scenario is not None:
            try:
                sim.play(scenario)
            except ScenarioError as exc:
                _problems(exc)
                raise SystemExit(2) from None
        for endpoint in sim.endpoints:
            print(endpoint.line(), flush=True)
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)
