"""The risk commands: ``ate kill``, ``ate resume``, ``ate promote`` and ``ate close-all``.

They are the operator's last line of defence, so each does every step it can and reports each one: a venue
down, a key refused, a damaged store or a clock off by minutes costs that step, never the others. ``ate kill``
writes the kill file first (a running engine halts on it alone), then persists HALTED. ``ate close-all --yes``
halts the same way, so an engine that is running (or restarts) does not re-open what was just closed.
kill and resume act on one engine's files: its config (``--config`` or ``ATE_CONFIG``) is required.

They open the store and, for close-all, venue clients themselves, because they must work when no engine
process is running; the risk decisions stay in ``ate.risk`` (kill switch, state, promotion, close-all plans).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ate.cli_boundary import CommandError, ExitCode
from ate.model import TradingState
from ate.risk import promotion
from ate.risk.killswitch import kill_file, write_kill_file
from ate.risk.state import read_state, write_state

console = Console(soft_wrap=True, highlight=False)
ENGINE_CONFIG = typer.Option(None, "--config", "-c", envvar="ATE_CONFIG",
                             help="The engine's config JSON (its kill_switch.file and store.url).")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _say(line: str) -> None:
    console.print(line, markup=False)


def _config(path: Path | None, command: str):
    """The engine's config, or exit 2 with one line per problem. Keys are never required here: an emergency
    command must not fail because an API key variable of some venue is unset."""
    from ate.config import load_config_or_exit

    if path is None:
        raise CommandError(f"which engine? `ate {command}` acts on one engine's kill file and store",
                           "pass --config with the engine's config file, or set ATE_CONFIG", ExitCode.USAGE)
    return load_config_or_exit(path, require_keys=False)


@contextlib.contextmanager
def _logs_beside_the_store(cfg) -> Iterator[None]:
    """While the command runs, log records go to a file beside the store, not among its report lines."""
    from ate.logs import state_dir

    root = logging.getLogger()
    muted = [(h, h.level) for h in root.handlers
             if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    for h, _ in muted:
        h.setLevel(logging.CRITICAL + 1)
    try:
        path = state_dir(cfg.store.url) / "ate-cli.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        file: logging.Handler | None = logging.FileHandler(path)
        file.setFormatter(muted[0][0].formatter if muted else logging.Formatter())
        root.addHandler(file)
    except OSError:
        file = None  # a read-only directory: the records are dropped, the report is not
    try:
        yield
    finally:
        if file is not None:
            root.removeHandler(file)
            file.close()
        for h, level in muted:
            h.setLevel(level)


def _open_store(cfg):
    from ate.store import Store

    return Store(cfg.store.url)


def _failure(exc: BaseException) -> str:
    from ate.cli_boundary import translate

    known = translate(exc)
    return known.what if known is not None else f"{type(exc).__name__}: {exc}"


def _halt(cfg, reason: str, who: str) -> tuple[list[str], list[str]]:
    """Kill file first, then the store; returns (done, failed) lines."""
    done, failed = [], []
    now = _now_ms()
    path = kill_file(cfg.kill_switch)
    try:
        write_kill_file(path, reason, who, now)
        done.append(f"kill file {path} written (a running engine halts on it within one poll)")
    except OSError as exc:
        failed.append(f"kill file {path} NOT written: {_failure(exc)}")
    try:
        store = _open_store(cfg)
        try:
            before = write_state(store, TradingState.HALTED, who, reason, now)
        finally:
            store.close()
        done.append(f"store {cfg.store.url}: HALTED persisted (was {before.value})")
    except Exception as exc:
        failed.append(f"store {cfg.store.url}: HALTED NOT persisted: {_failure(exc)}")
    return done, failed


def kill_cmd(reason: str = typer.Option("operator kill", "--reason", "-r", help="Why (logged)."),
             config: Path | None = ENGINE_CONFIG) -> None:
    """HALT trading: write the kill file, then persist HALTED. Works with or without a running engine."""
    cfg = _config(config, "kill")
    with _logs_beside_the_store(cfg):
        done, failed = _halt(cfg, reason, "cli")
    for line in done:
        _say(f"ok      {line}")
    for line in failed:
        _say(f"FAILED  {line}")
    if len(done) == 0:
        raise CommandError("nothing was halted", "fix the lines above; stop the engine process if you must",
                           ExitCode.INCOMPLETE)
    _say("HALTED: a running engine cancels all open orders within one poll. Leave with `ate resume`.")
    if failed:
        raise typer.Exit(ExitCode.INCOMPLETE)


def resume_cmd(config: Path | None = ENGINE_CONFIG) -> None:
    """Leave HALTED: remove the kill file and persist ACTIVE; a running engine follows."""
    cfg = _config(config, "resume")
    with _logs_beside_the_store(cfg):
        _resume(cfg)


def _resume(cfg) -> None:
    path = kill_file(cfg.kill_switch)
    # The file goes first: an engine seeing ACTIVE in the store while the file exists would halt again.
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise CommandError(f"kill file {path} could not be removed: {_failure(exc)}",
                           "nothing was changed; the engine stays HALTED", ExitCode.INCOMPLETE) from None
    try:
        store = _open_store(cfg)
        try:
            before = read_state(store)["state"]
            write_state(store, TradingState.ACTIVE, "cli", "resume", _now_ms())
        finally:
            store.close()
    except Exception as exc:
        raise CommandError(f"store {cfg.store.url}: ACTIVE not persisted: {_failure(exc)}",
                           f"removed {path}, but the engine stays HALTED until the store says ACTIVE",
                           ExitCode.INCOMPLETE) from None
    _say(f"ACTIVE (was {before}) in {cfg.store.url}; removed {path}.")


def promote_cmd(config: Path = typer.Option(..., "--config", "-c", help="Engine config JSON."),
                check: bool = typer.Option(False, "--check", help="Only report the gates; change nothing."),
                as_json: bool = typer.Option(False, "--json", help="Print the gates and the verdict as JSON.")) -> None:
    """Check the promotion gates of the next capital stage and move up if every one passes."""
    cfg = _config(config, "promote")
    store = _open_store(cfg)
    try:
        now = _now_ms()
        report = (promotion.evaluate(store, cfg.capital_stages, now) if check
                  else promotion.promote(store, cfg.capital_stages, now, "cli"))
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps({
            "current": report.current, "target": report.target, "check": check, "eligible": report.eligible,
            "promoted": report.eligible and not check,
            "gates": [{"gate": g.name, "measured": g.measured, "required": g.required, "passed": g.passed}
                      for g in report.gates],
            "reasons": [] if report.eligible else report.reasons, "advice": report.advice}, indent=2))
        if not report.eligible:
            raise typer.Exit(ExitCode.INCOMPLETE)
        return
    table = Table(title=f"promotion {report.current} → {report.target or '(none)'}")
    for col in ("gate", "measured", "required", "result"):
        table.add_column(col)
    for g in report.gates:
        table.add_row(g.name, g.measured, g.required, "PASS" if g.passed else "FAIL")
    console.print(table)
    console.print(f"profit withdrawal (advice only): {report.advice}")
    if not report.eligible:
        console.print("not eligible: " + "; ".join(report.reasons) if check else
                      "refused: " + "; ".join(report.reasons))
        raise typer.Exit(ExitCode.INCOMPLETE)
    console.print(f"eligible for {report.target}" if check else
                  f"promoted to {report.target}; run the engine with mode live to trade it")


TRADING_VENUES = ("binance", "binance_usdm", "backpack")
# The config section holding each trading venue's connection settings and keys.
_SECTION = {"binance": "binance", "binance_usdm": "binance", "backpack": "backpack"}


def close_all_cmd(config: Path = typer.Option(..., "--config", "-c", help="Engine config JSON."),
                  venue: list[str] = typer.Option([], "--venue", "-v",
                                                  help="Only these venues (binance, binance_usdm, backpack)."),
                  yes: bool = typer.Option(False, "--yes", help="Execute; without it, only list what would be done."),
                  timeout_s: float = typer.Option(120.0, "--timeout", min=1,
                                                  help="Give up on a venue after this many seconds.")) -> None:
    """Cancel every open order and close every position, reduce-only, venue by venue. Needs no running engine.

    Exits 0 when every venue was read (dry run) or is left flat (--yes); 1 when anything is left open."""
    cfg = _config(config, "close-all")
    unknown = sorted(set(venue) - set(TRADING_VENUES))
    if unknown:
        raise CommandError(f"--venue: unknown venue(s) {', '.join(unknown)}",
                           f"choose from {', '.join(TRADING_VENUES)}", ExitCode.USAGE)
    with _logs_beside_the_store(cfg):
        ok = asyncio.run(close_all(cfg, set(venue) or set(TRADING_VENUES), yes, timeout_s=timeout_s))
    if not ok:
        raise typer.Exit(ExitCode.INCOMPLETE)


class _AlignedClock:
    """The venue's time as seen from here: close-all signs with it when the local clock is off, because
    refusing to close positions over a wrong system clock helps no one."""

    def __init__(self, base, offset_ms: int) -> None:
        self.base, self.offset_ms = base, offset_ms

    def now_ms(self) -> int:
        return self.base.now_ms() + self.offset_ms

    async def sleep(self, seconds: float) -> None:
        await self.base.sleep(seconds)


@dataclass(slots=True)
class _Venue:
    name: str
    client: object | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # why the venue could not be used at all


def _build(cfg, name: str, clock, pause_clock):
    """One venue's client; configuration problems (a missing key, a secret that is not base64) surface here."""
    from ate.venues.errors import MissingCredentials
    from ate.venues.factory import build_clients, credentials_for

    section = getattr(cfg.venues, _SECTION[name])
    if not section.enabled:
        raise CommandError(f"venues.{_SECTION[name]}.enabled is false", "", ExitCode.USAGE)
    if credentials_for(section) is None:
        raise MissingCredentials(f"no API key: set {section.api_key_env} and {section.api_secret_env}")
    only = {k: {"enabled": k == _SECTION[name]} for k in ("binance", "backpack", "deribit")}
    venues = cfg.venues.model_copy(update={k: getattr(cfg.venues, k).model_copy(update=v) for k, v in only.items()})
    try:
        return build_clients(venues, clock=clock, pause_clock=pause_clock)[name]
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError; never echo the secret itself
        raise MissingCredentials(f"venues.{_SECTION[name]}: the API secret is unusable ({type(exc).__name__}: "
                                 f"{str(exc)[:80]})") from None


async def _connect(cfg, name: str, clock, pauses, timeout_s: float) -> _Venue:
    """One venue's started client. A 429 pause or 418 ban an engine persisted holds here too: sending inside
    it would lengthen the ban. One that outlasts the timeout fails the venue at once, with nothing sent."""
    from ate.monitor.pauses import utc
    from ate.venues.clock import SystemClock
    from ate.venues.errors import ClockSkewError

    v = _Venue(name)
    base = clock or SystemClock()

    def build(venue_clock):
        client = _build(cfg, name, venue_clock, pauses.wall if pauses is not None else None)
        if pauses is not None:
            pauses.book.attach_clients([client])
        return client

    try:
        v.client = build(base)
        for until_ms, reason, left in (pauses.book.waits().values() if pauses is not None else ()):
            if left > timeout_s:
                v.error = (f"{reason}: the venue bans requests until {utc(until_ms)} ({left:.0f} s left, beyond "
                           f"the {timeout_s:.0f} s timeout); nothing was sent")
            v.notes.append(f"waited out {reason} ({left:.0f} s) before the first request")
        if v.error is not None:
            await v.client.close()
            v.client = None
            return v
        await v.client.start()
        try:
            v.client.server_clock.stamp(v.client.recv_window_ms)
        except ClockSkewError:
            offset = v.client.server_clock.offset_ms or 0
            await v.client.close()
            v.client = build(_AlignedClock(base, offset))
            await v.client.start()
            v.notes.append(f"local clock is {offset:+d} ms off the venue's: signing with the venue's time")
    except Exception as exc:
        v.error = _failure(exc)
        if v.client is not None:
            with contextlib.suppress(Exception):
                await v.client.close()
            v.client = None
    return v


@dataclass(slots=True)
class _Pauses:
    book: Any  # ate.monitor.pauses.PauseBook over the store, for one venue's client
    wall: Any  # the clock bans are counted on


async def close_all(cfg, venues: set[str], yes: bool, *, clock=None, timeout_s: float = 120.0,
                    wall=None) -> bool:
    """The body of ``ate close-all``; ``clock`` (``ate.venues.clock.Clock``) is the venue clients' clock,
    ``wall`` the one venue bans are counted on (default: the system clock).

    Returns True when every venue was read (dry run) or nothing is left open (``yes``)."""
    from ate.risk.capital import limits_from_config
    from ate.risk.closeall import VenueResult, execute_venue, plan_venue, record_close_all

    store, engine_spot, coids = None, None, {}
    try:
        store = _open_store(cfg)
        engine_spot = {(p.venue, p.symbol): p.qty for p in store.positions() if p.qty > 0}
        coids = {(o.venue, o.venue_order_id): o.client_order_id for o in store.orders(open_only=True)
                 if o.venue_order_id}
    except Exception as exc:
        _say(f"store   {cfg.store.url} unreadable ({_failure(exc)}): planning from the venues alone")
        if store is not None:
            store.close()
        store = None
    if yes:
        done, failed = _halt(cfg, "close-all", "cli")
        for line in done:
            _say(f"ok      {line}")
        for line in failed:
            _say(f"FAILED  {line}")
    limits = limits_from_config(cfg)

    def pauses() -> _Pauses | None:
        from ate.monitor.pauses import PauseBook
        from ate.venues.clock import SystemClock

        if store is None:
            return None
        wall_clock = wall or SystemClock()
        return _Pauses(PauseBook(store, _now_ms, wall_clock.now_ms, who="close-all"), wall_clock)

    async def one(name: str) -> tuple[_Venue, object, VenueResult | None]:
        v = await _connect(cfg, name, clock, pauses(), timeout_s)
        if v.error is not None:
            return v, None, None
        try:
            spot = None if engine_spot is None else {s: q for (vn, s), q in engine_spot.items() if vn == name}
            plan = await plan_venue(v.client, spot, {vo: c for (vn, vo), c in coids.items() if vn == name},
                                    limits, _now_ms)
            return v, plan, (await execute_venue(plan, v.client, store, cfg.run_id, _now_ms) if yes else None)
        except Exception as exc:
            v.error = _failure(exc)
            return v, None, None
        finally:
            await v.client.close()

    async def bounded(name: str):
        try:
            return await asyncio.wait_for(one(name), timeout_s)
        except TimeoutError:
            return _Venue(name, error=f"no answer within {timeout_s:.0f} s"), None, None

    reports = await asyncio.gather(*(bounded(n) for n in sorted(venues)))
    ok, results, skipped = True, {}, []
    for v, plan, result in reports:
        if v.error is not None:
            ok = False
            results[v.name] = v.error
            _say(f"{v.name}: FAILED: {v.error}" + ("; nothing there was cancelled or closed" if yes else ""))
            continue
        _say(f"{v.name}: {len(plan.cancels)} open orders, {len(plan.closes)} to close, {len(plan.skipped)} skipped")
        for note in v.notes:
            _say(f"  note   {note}")
        for line in plan.lines():
            _say(f"  {line}")
        skipped += plan.skipped
        ok = ok and not plan.skipped
        if result is None:
            continue
        results[v.name] = result
        for line in result.errors:
            _say(f"  ERROR  {line}")
        for line in result.left_open:
            _say(f"  LEFT   {line}")
        _say(f"  {v.name}: canceled {len(result.canceled)}, closed {len(result.closed)}, errors {len(result.errors)}, "
             f"left open {len(result.left_open)}")
        ok = ok and not result.left_open
    if not yes:
        if store is not None:
            store.close()
        _say("dry run: nothing was sent; add --yes to execute")
        return all(v.error is None for v, _, _ in reports)
    done = [r for r in results.values() if isinstance(r, VenueResult)]
    _say(f"canceled {sum(len(r.canceled) for r in done)}, closed {sum(len(r.closed) for r in done)}, "
         f"errors {sum(len(r.errors) for r in done) + len(results) - len(done)}; trading state HALTED "
         "(leave with `ate resume`)")
    if store is not None:
        try:
            record_close_all(store, _now_ms(), results, skipped)
        except Exception as exc:
            _say(f"store   close-all not recorded: {_failure(exc)}")
        finally:
            store.close()
    _say("ALL CLOSED" if ok else "NOT EVERYTHING IS CLOSED: see the FAILED, ERROR, LEFT and skip lines above")
    return ok
