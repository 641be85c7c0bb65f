"""``ate check`` (verify every configured venue) and ``ate ticker`` (live top of book), on the configured
venues or, where the config says a venue is simulated, on an in-process simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ate.cli_boundary import ExitCode
from ate.model.market import BookTicker
from ate.venues.check import FAIL, OK, SKIP, WARN, CheckRow, check_clients
from ate.venues.clock import Clock
from ate.venues.errors import VenueError
from ate.venues.factory import build_clients

STYLE = {OK: "green", WARN: "yellow", FAIL: "bold red", SKIP: "dim"}


def simulated_urls(venues: Any, sim: Any) -> Any:
    """The venues section with every simulated venue's URLs pointed at a running simulator."""
    update: dict[str, Any] = {}
    if venues.binance.simulated:
        spot_ws, usdm_ws = sim.url("binance-spot", "ws"), sim.url("binance-usdm", "ws")
        update["binance"] = venues.binance.model_copy(update={
            "spot_rest_url": sim.url("binance-spot", "rest"), "spot_ws_url": spot_ws,
            "spot_ws_api_url": spot_ws + "/ws-api/v3", "usdm_rest_url": sim.url("binance-usdm", "rest"),
            "usdm_ws_url": usdm_ws})
    if venues.backpack.simulated:
        update["backpack"] = venues.backpack.model_copy(update={
            "rest_url": sim.url("backpack", "rest"), "ws_url": sim.url("backpack", "ws")})
    if venues.deribit.simulated:
        update["deribit"] = venues.deribit.model_copy(update={"rest_url": sim.url("deribit", "rest")})
    return venues.model_copy(update=update)


class _SimServerTime:
    """Clients of a simulated venue keep the simulator's server time (its replay clock)."""

    def __init__(self, sim: Any) -> None:
        self.now_ms = sim.ctx.server_time_ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def resolved_venues(cfg: Any, clock: Clock | None = None) -> AsyncIterator[tuple[Any, Clock | None]]:
    """The config's venues and the clock to use; simulated venues are served by an in-process simulator
    for the duration (and then keep its clock)."""
    v = cfg.venues
    if not (v.binance.simulated or v.backpack.simulated or v.deribit.simulated):
        yield v, clock
        return
    from ate.sim.runner import run_simulator

    async with run_simulator(cfg.sim) as sim:
        yield simulated_urls(v, sim), clock or _SimServerTime(sim)


async def run_checks(cfg: Any, clock: Clock | None = None) -> list[CheckRow]:
    keys_required = cfg.mode.value in ("shadow", "canary", "live")
    async with aiohttp.ClientSession() as session, resolved_venues(cfg, clock) as (venues, clock):
        clients = build_clients(venues, session=session, clock=clock)
        allowed = {n for n in clients if n.startswith("binance")} if cfg.venues.binance.allow_withdrawal_keys else set()
        return await check_clients(clients, keys_required=keys_required, withdrawal_allowed=allowed)


def render(rows: list[CheckRow]) -> Table:
    table = Table(title="ate check")
    for col in ("venue", "check", "status", "detail"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.venue, r.check, f"[{STYLE[r.status]}]{r.status}[/]", r.detail)
    return table


def check_cmd(config: Path = typer.Option(..., "--config", help="Config JSON file.")) -> None:
    """Verify each configured venue: reachable, clock skew, keys (read-only), what the keys may do (withdrawals:
    FAIL unless allowed; no IP restriction: WARN), rate-limit headroom."""
    from ate.config import load_config_or_exit

    cfg = load_config_or_exit(config)
    rows = asyncio.run(run_checks(cfg))
    Console().print(render(rows))
    if any(r.status == FAIL for r in rows):
        raise typer.Exit(ExitCode.INCOMPLETE)


def _book_table(books: dict[str, BookTicker]) -> Table:
    table = Table(title="top of book")
    for col in ("market", "bid qty", "bid", "ask", "ask qty", "spread bps", "time (ms)"):
        table.add_column(col, justify="right")
    for b in books.values():
        mid = (b.bid + b.ask) / 2
        table.add_row(f"{b.venue}:{b.symbol}", str(b.bid_qty), str(b.bid), str(b.ask), str(b.ask_qty),
                      f"{(b.ask - b.bid) / mid * 10_000:.2f}", str(b.ts_ms))
    return table


class _TickerSink:
    def __init__(self, live: Live) -> None:
        self.live = live
        self.books: dict[str, BookTicker] = {}

    def on_book(self, book: BookTicker) -> None:
        self.books[book.symbol] = book
        self.live.update(_book_table(self.books))

    def on_candle(self, *args: Any) -> None: ...
    def on_mark(self, *args: Any) -> None: ...
    def on_trade(self, *args: Any) -> None: ...
    def on_depth(self, *args: Any) -> None: ...


async def _ticker(cfg: Any, venue: str, symbol: str, watch: bool) -> None:
    # Public data only, so the local clock serves (stale-stream detection stays in wall time even when a
    # simulator replays faster than real time).
    async with aiohttp.ClientSession() as session, resolved_venues(cfg) as (venues, _):
        clients = build_clients(venues, session=session)
        if venue not in clients or venue == "deribit":
            raise typer.BadParameter(f"venue must be one of {', '.join(k for k in clients if k != 'deribit')}")
        client = clients[venue]
        book = await client.book_ticker(symbol)
        console = Console()
        if not watch:
            console.print(_book_table({symbol: book}))
            return
        with Live(_book_table({symbol: book}), console=console, refresh_per_second=10) as live:
            stream = client.market_stream([symbol], _TickerSink(live), candles=False)
            with contextlib.suppress(asyncio.CancelledError):
                await stream.run()


def ticker_cmd(
    config: Path = typer.Option(..., "--config", help="Config JSON file."),
    venue: str = typer.Option("binance", "--venue", help="binance (spot), binance_usdm or backpack."),
    symbol: str = typer.Option("BTCUSDT", "--symbol", help="Venue symbol, e.g. BTCUSDT or BTC_USDC."),
    watch: bool = typer.Option(False, "--watch", help="Stream updates until Ctrl-C."),
) -> None:
    """Show the top of book of one market (once, or live with --watch)."""
    from ate.config import load_config_or_exit

    cfg = load_config_or_exit(config)
    try:
        asyncio.run(_ticker(cfg, venue, symbol, watch))
    except KeyboardInterrupt:
        pass
    except (VenueError, aiohttp.ClientError, OSError) as exc:
        Console(stderr=True).print(f"{venue}: {exc}", markup=False)
        raise typer.Exit(1) from None
