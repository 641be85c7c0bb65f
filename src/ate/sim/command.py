"""``ate simulate``: serve the simulated venues of a config until Ctrl-C or SIGTERM.

Prints one line per endpoint once every server is listening, ``<venue> <rest|ws> <url>``, then runs
the replay; exits 0 on SIGINT/SIGTERM. Data paths in the config's ``sim.markets`` are relative to the
working directory (run it from the repository root). ``--faults`` sets fault rates (seeded by
``--seed``); ``--scenario FILE`` plays timed fault injections (ate.sim.scenario) from the replay start.
``--endpoints-file FILE`` also writes the endpoints as JSON (``{"binance-spot": {"rest": url, "ws": url},
...}``) once they listen, for a separately started ``ate run`` (``configs/simulate.json`` reads the
ports from ``--port-base``; the file is for tools and tests that bind port 0). The clock mode is
``sim.clock``; ``auto`` is ``wall`` here (any client works at any speed) unless the speed is 0.
A bad fault spec or scenario exits 2 with one ``<where>: <reason>`` line per problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
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
    clock: str | None = typer.Option(None, "--clock", help="wall (default) or replay: see sim.clock."),
    endpoints_file: Path | None = typer.Option(None, "--endpoints-file",
                                               help="Write the endpoint URLs as JSON to this file once listening."),
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
    if clock not in (None, "wall", "replay"):
        print(f"--clock: must be wall or replay, not {clock!r}", file=sys.stderr)
        raise typer.Exit(2)
    mode = clock or served_clock(cfg.sim, speed)
    if mode == "wall" and (cfg.sim.speed if speed is None else speed) == 0:
        print("--clock: wall needs a speed > 0 (as fast as possible has no wall time)", file=sys.stderr)
        raise typer.Exit(2)
    plan = None
    if scenario is not None:
        from ate.sim.scenario import Scenario, ScenarioError

        try:
            plan = Scenario.load(scenario)
        except ScenarioError as exc:
            _problems(exc)
            raise typer.Exit(2) from None
    asyncio.run(_serve(cfg.sim, speed, fault_spec, seed, port_base, plan, mode, endpoints_file))


def _problems(exc) -> None:
    for problem in exc.problems:
        print(f"--scenario {exc.source}: {problem}", file=sys.stderr)


def served_clock(sim_cfg, speed: float | None) -> str:
    """External clients sign with their own system clocks: the wall mode re-stamps the replay onto
    it at any speed. Only as-fast-as-possible (speed 0) has no wall time and stays on replay time."""
    if sim_cfg.clock != "auto":
        return sim_cfg.clock
    return "replay" if (sim_cfg.speed if speed is None else speed) == 0 else "wall"


def write_endpoints(path: Path, endpoints) -> None:
    """Atomically, so a reader polling for the file never sees half of it."""
    table: dict[str, dict[str, str]] = {}
    for e in endpoints:
        table.setdefault(e.venue, {})[e.kind] = e.url
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(table, indent=2) + "\n")
    os.replace(tmp, path)


async def _serve(sim_cfg, speed, faults, seed, port_base, scenario, mode, endpoints_file) -> None:
    from ate.sim.runner import run_simulator
    from ate.sim.scenario import ScenarioError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_simulator(sim_cfg, speed=speed, faults=faults, seed=seed, port_base=port_base,
                             clock_mode=mode) as sim:
        if scenario is not None:
            try:
                sim.play(scenario)
            except ScenarioError as exc:
                _problems(exc)
                raise SystemExit(2) from None
        for endpoint in sim.endpoints:
            print(endpoint.line(), flush=True)
        if endpoints_file is not None:
            write_endpoints(endpoints_file, sim.endpoints)
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)
