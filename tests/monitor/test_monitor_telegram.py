"""Telegram control of a real engine (canary, on the simulator over its real wire protocols) through a local
server speaking the Bot API (getUpdates long polling, sendMessage) on 127.0.0.1: what each command does to
the engine and the venues, who may command it, the audit trail, and that a Bot API outage never touches
trading."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from alert_receivers import BOT_TOKEN, CHAT_ID, ThreadedReceiver

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
sys.path.insert(0, str(ENGINE_TESTS))
from engine_support import ACCOUNT, data_present, world  # noqa: E402

from ate.model import OrderType, Side, TimeInForce, TradingState  # noqa: E402
from ate.monitor.telegram import OFFSET_KEY  # noqa: E402

pytestmark = [pytest.mark.skipif(not data_present(), reason="simulator data files absent"),
              pytest.mark.timeout(120)]
TOKEN_ENV = "ATE_TEST_TG_CONTROL_TOKEN"
STRANGER = "555001"
UNTRACED_SESSION = aiohttp.ClientSession  # before the engine harness counts every session's requests


@pytest.fixture
def bot():
    with ThreadedReceiver() as r:
        yield r


@contextlib.asynccontextmanager
async def controlled_engine(tmp_path, monkeypatch, bot: ThreadedReceiver, **telegram):
    monkeypatch.setenv(TOKEN_ENV, BOT_TOKEN)
    cfg = {"bot_token_env": TOKEN_ENV, "chat_ids": [CHAT_ID], "api_base": bot.url, "long_poll_s": 1,
           "retry_s": 0.05, **telegram}
    sections = {"monitor": {"enabled": False, "telegram": cfg},
                "kill_switch": {"file": str(tmp_path / "EMERGENCY_STOP")}}
    async with world(tmp_path, monkeypatch, mode="canary", engine_sections=sections) as (sim, engine, drive, _):
        await restart_poller(engine, monkeypatch)
        await drive.run(30_000, 5_000)
        yield sim, engine, drive


async def restart_poller(engine, monkeypatch) -> None:
    """Restart the Telegram poller on a session the harness does not count: the harness holds the replay
    clock while an engine request is on the wire, and a long poll is always on the wire (it is wall-clock
    I/O outside the replay)."""
    await engine.telegram.stop()
    with monkeypatch.context() as m:
        m.setattr(aiohttp, "ClientSession", UNTRACED_SESSION)
        engine.telegram.start()


def reply_to(bot: ThreadedReceiver, contains: str, after: int = 0):
    def match(body: dict) -> bool:
        return body.get("chat_id") == CHAT_ID and contains in body.get("text", "")
    return asyncio.to_thread(lambda: bot.wait_for(lambda b: match(b) and bot_index(bot, b) >= after, 10.0))


def bot_index(bot: ThreadedReceiver, body: dict) -> int:
    return next(i for i, (_, _, b) in enumerate(bot.messages) if b is body)


async def ask(bot: ThreadedReceiver, text: str, expect: str, chat: str = CHAT_ID) -> str:
    """Send a command and return the bot's answer containing `expect` (fails after 10 s)."""
    start = len(bot.messages)
    bot.send_command(chat, text)
    got = await reply_to(bot, expect, start)
    assert got is not None, f"no answer containing {expect!r} to {text!r}: {bot.texts()[start:]}"
    assert got[1] == f"/bot{BOT_TOKEN}/sendMessage"
    return got[2]["text"]


def audits(engine) -> list:
    return [e for e in engine.store.events(kind="audit", limit=100) if e.data.get("via") == "telegram"]


def resting_orders(sim) -> list:
    return [o for (venue, symbol) in sim.core.markets for o in sim.core.open_orders(ACCOUNT, venue, symbol)]


async def until(predicate, what: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


async def test_status_and_reads_answer_from_the_running_engine(tmp_path, monkeypatch, bot):
    async with controlled_engine(tmp_path, monkeypatch, bot) as (_, engine, _):
        text = await ask(bot, "/status", "mode CANARY")
        assert "state ACTIVE" in text and f"open orders {len(engine.core.orders.open_orders())}" in text
        assert "USDT" in await ask(bot, "/balance", "binance:")
        assert await ask(bot, "/positions", "") is not None
        assert "today's P&L" in await ask(bot, "/daily", "today's P&L")
        assert "/kill confirm" in await ask(bot, "/help", "ate commands")
        assert "unknown command /frobnicate" in await ask(bot, "/frobnicate", "unknown command")
        actions = [(e.data["action"], e.data["outcome"], e.data["who"]) for e in audits(engine)]
        assert ("status", "done", f"telegram:{CHAT_ID}") in actions
        assert ("frobnicate", "refused: unknown command", f"telegram:{CHAT_ID}") in actions
        assert len(actions) == 6
        # the update offset is persisted: a restart does not run these again
        assert engine.store.get_state(OFFSET_KEY) == bot.updates[-1]["update_id"] + 1
        assert all(BOT_TOKEN not in e.message and BOT_TOKEN not in str(e.data)
                   for e in engine.store.events(limit=500))


async def test_kill_needs_confirmation_then_halts_and_cancels_every_order(tmp_path, monkeypatch, bot):
    async with controlled_engine(tmp_path, monkeypatch, bot) as (sim, engine, drive):
        for venue, symbol, cid in (("binance-spot", "BTCUSDT", "resting-bn"), ("backpack", "BTC_USDC", "4242")):
            sim.core.place_order(ACCOUNT, venue, symbol, Side.BUY, OrderType.LIMIT, Decimal("0.001"),
                                 Decimal("30000"), tif=TimeInForce.GTC, client_order_id=cid)
        assert len(resting_orders(sim)) == 2
        assert "needs a confirmation" in await ask(bot, "/kill", "confirmation")
        assert engine.core.trading_state is TradingState.ACTIVE and len(resting_orders(sim)) == 2

        await ask(bot, "/kill confirm drill from the phone", "HALTED")
        assert engine.killswitch.halted and engine.core.trading_state is TradingState.HALTED
        assert "drill from the phone" in (tmp_path / "EMERGENCY_STOP").read_text()  # the `ate kill` path
        await until(lambda: not resting_orders(sim), "orders still resting at the venues")
        await drive.run(10_000, 5_000)
        assert resting_orders(sim) == []
        kills = engine.store.events(kind="kill_switch", limit=10)
        assert any(e.data.get("who") == f"telegram:{CHAT_ID}" and e.data.get("canceled", 0) >= 2 for e in kills)
        outcomes = [(e.data["action"], e.data["outcome"]) for e in audits(engine)]
        assert ("kill", "refused: not confirmed") in outcomes and ("kill", "done") in outcomes
        assert next(e for e in audits(engine) if e.data["outcome"] == "done").data["reason"] == "drill from the phone"

        # /stop never loosens a halt; /resume confirm leaves it
        assert "nothing changed: state HALTED" in await ask(bot, "/stop", "nothing changed")
        await ask(bot, "/resume confirm", "resumed: state ACTIVE")
        assert engine.core.trading_state is TradingState.ACTIVE and not (tmp_path / "EMERGENCY_STOP").exists()
        await ask(bot, "/stop going to bed", "REDUCING")
        assert engine.core.trading_state is TradingState.REDUCING

        # a restarted poller resumes after the last update it took: nothing above runs a second time
        polls = len(bot.polls)
        await restart_poller(engine, monkeypatch)
        await until(lambda: len(bot.polls) > polls + 1, "no poll after the restart")
        assert bot.polls[polls]["offset"] == bot.updates[-1]["update_id"] + 1
        assert engine.core.trading_state is TradingState.REDUCING
        assert [e.data["outcome"] for e in audits(engine) if e.data["action"] == "kill"].count("done") == 1


async def test_an_unauthorised_chat_changes_nothing_and_hears_nothing(tmp_path, monkeypatch, bot):
    async with controlled_engine(tmp_path, monkeypatch, bot) as (sim, engine, drive):
        sim.core.place_order(ACCOUNT, "binance-spot", "BTCUSDT", Side.BUY, OrderType.LIMIT, Decimal("0.001"),
                             Decimal("30000"), tif=TimeInForce.GTC, client_order_id="resting-bn")
        for text in ("/kill confirm", "/close_all confirm", "/stop", "/status"):
            bot.send_command(STRANGER, text)
        await until(lambda: len(audits(engine)) == 4, "the stranger's commands were not all recorded")
        await ask(bot, "/status", "state ACTIVE")  # processed after the stranger's, in order
        await drive.run(10_000, 5_000)
        assert engine.core.trading_state is TradingState.ACTIVE and not engine.killswitch.halted
        assert len(resting_orders(sim)) == 1 and not (tmp_path / "EMERGENCY_STOP").exists()
        assert [b["chat_id"] for _, _, b in bot.messages] == [CHAT_ID]  # the stranger got no answer
        refused = [e for e in audits(engine) if e.data["who"] == f"telegram:{STRANGER}"]
        assert sorted(e.data["action"] for e in refused) == ["close_all", "kill", "status", "stop"]
        assert {e.data["outcome"] for e in refused} == {"refused: chat not allowed"}


async def test_a_bot_api_outage_never_disturbs_trading(tmp_path, monkeypatch, bot, caplog):
    caplog.set_level(logging.DEBUG)
    async with controlled_engine(tmp_path, monkeypatch, bot) as (sim, engine, drive):
        control = engine.telegram
        bot.down = True
        await until(lambda: control.poll_failures >= 3, "the poller did not notice the outage")
        books = engine.stats.books
        await drive.run(60_000, 5_000)
        assert engine.stats.books > books and engine.core.trading_state is TradingState.ACTIVE
        assert all(not t.done() for t in engine.tasks)
        # a command sent long before the API came back is refused, not run late; a fresh one runs
        bot.send_command(CHAT_ID, "/kill confirm", age_s=3600)
        bot.down = False
        assert "too long ago" in await ask(bot, "/status", "too long ago")
        assert not engine.killswitch.halted
        assert "mode CANARY" in await ask(bot, "/status", "mode CANARY")
        assert control.poll_failures >= 3 and control.polls >= 1
    assert BOT_TOKEN not in caplog.text
