"""Operator commands from a Telegram chat: a thin transport over the same controls as the HTTP API.

The engine long-polls the Bot API (`getUpdates`) and answers with `sendMessage`. Only the configured chat
ids are obeyed; any other chat gets no answer and is recorded as an `audit` event, like every command.
Commands that change what the engine may do (/kill, /close_all, /resume) run only with `confirm`
(`/kill confirm [reason]`); /stop (REDUCING: no new entries, exits allowed) is the quick brake and needs none.

Each update's id is persisted before its command runs, so a restart never runs a command twice (a command
lost to a crash at that instant is answered by nothing, and the operator sends it again); commands older
than `max_age_s` are refused rather than run late. The Bot API being down, slow or answering nonsense only
delays commands: the poller backs off and retries, and never touches trading. The bot token lives only in
the request URL; it is never logged, stored or repeated in an event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from ate.config.models import TelegramControlConfig
from ate.model import EngineEvent, Severity
from ate.monitor.background import Background
from ate.monitor.bot_api import BotApi, BotApiError
from ate.monitor.controls import RiskControls
from ate.monitor.view import EngineView

log = logging.getLogger(__name__)

OFFSET_KEY = "monitor.telegram.offset"
MAX_TEXT = 4000  # Telegram refuses messages above 4096 characters
CONFIRMED = ("kill", "close_all", "resume")
HELP = """ate commands:
/status – mode, trading state, readiness, open orders
/balance – balances per venue
/positions – open positions
/daily – today's P&L
/stop [reason] – REDUCING: no new entries, exits still allowed
/kill confirm [reason] – kill switch: HALTED, every open order cancelled
/close_all confirm – halt, cancel, close every position reduce-only
/resume confirm – back to ACTIVE
/help – this list"""


class TelegramControl:
    def __init__(self, cfg: TelegramControlConfig, token: str, *, view: EngineView, controls: RiskControls,
                 status: Callable[[], dict], store: Any, wall_s: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.view = view
        self.controls = controls
        self.status = status
        self.store = store
        self.wall_s = wall_s
        self.allowed = frozenset(cfg.chat_ids)
        self._bot = BotApi(cfg.api_base, token)
        # No session-wide timeout: the long poll and each reply carry their own.
        self._poller = Background("ate-telegram", self._run, http=True)
        self.polls = self.poll_failures = self.commands = self.refused = self.send_failures = 0
        self._handlers = {"status": self._status, "balance": self._balance, "positions": self._positions,
                          "daily": self._daily, "pnl": self._daily, "stop": self._stop, "kill": self._kill,
                          "close_all": self._close_all, "resume": self._resume, "help": self._help,
                          "start": self._help}

    def __repr__(self) -> str:
        return f"TelegramControl(chats={sorted(self.allowed)})"

    @classmethod
    def from_config(cls, cfg: TelegramControlConfig, env: Mapping[str, str], **kw) -> TelegramControl | None:
        """None unless a token is in the configured variable and at least one chat id is listed."""
        token = env.get(cfg.bot_token_env) if cfg.bot_token_env else None
        if not token or not cfg.chat_ids:
            if cfg.bot_token_env or cfg.chat_ids:  # half configured: say why nothing will answer
                why = ("no chat_ids listed" if token else "no bot_token_env" if not cfg.bot_token_env
                       else f"environment variable {cfg.bot_token_env} is not set")
                log.warning("telegram control off: %s", why)
            return None
        return cls(cfg, token, **kw)

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    # ---- polling -------------------------------------------------------------------------------------

    async def _run(self) -> None:
        offset = await asyncio.to_thread(self.store.get_state, OFFSET_KEY)
        while True:
            body: dict[str, Any] = {"timeout": self.cfg.long_poll_s, "allowed_updates": ["message"]}
            if isinstance(offset, int):
                body["offset"] = offset
            try:
                updates = await self._bot.call(self._poller.session, "getUpdates", body,
                                               self.cfg.long_poll_s + self.cfg.timeout_s)
                if not isinstance(updates, list):
                    raise BotApiError("getUpdates: result is not a list")
                self.polls += 1
            except (aiohttp.ClientError, TimeoutError, BotApiError) as exc:
                self.poll_failures += 1
                # the exception's text may hold the request URL, and with it the token: only its type
                log.warning("telegram getUpdates failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(self.cfg.retry_s)
                continue
            for update in updates:
                uid = update.get("update_id") if isinstance(update, dict) else None
                if not isinstance(uid, int) or (isinstance(offset, int) and uid < offset):
                    continue
                offset = uid + 1
                await asyncio.to_thread(self.store.set_state, OFFSET_KEY, offset)  # before acting: at most once
                try:
                    await self._handle(update.get("message"))
                except Exception:  # one bad command must not end the poller
                    log.exception("telegram command failed")

    async def _handle(self, msg: Any) -> None:
        if not isinstance(msg, dict) or not isinstance(msg.get("chat"), dict):
            return
        text = msg.get("text")
        if not isinstance(text, str) or not text.startswith("/"):
            return
        chat = str(msg["chat"].get("id"))
        word, *args = text.split()
        command = word[1:].partition("@")[0].lower()[:32]  # "/status@ate_bot" in groups
        who = f"telegram:{chat}"
        if chat not in self.allowed:
            self.refused += 1
            await self._audit(command, "refused: chat not allowed", who, Severity.WARNING)
            return
        date = msg.get("date")
        if not isinstance(date, int | float) or self.wall_s() - date > self.cfg.max_age_s:
            await self._audit(command, "refused: too old", who, Severity.WARNING)
            await self._reply(chat, f"/{command} was sent too long ago and was not run; send it again.")
            return
        handler = self._handlers.get(command)
        if handler is None:
            await self._audit(command, "refused: unknown command", who, Severity.INFO)
            await self._reply(chat, f"unknown command /{command}\n\n{HELP}")
            return
        if command in CONFIRMED and (not args or args[0].lower() != "confirm"):
            await self._audit(command, "refused: not confirmed", who, Severity.INFO)
            await self._reply(chat, f"/{command} needs a confirmation: send /{command} confirm")
            return
        reason = " ".join(args[1:] if command in CONFIRMED else args)[:200]
        self.commands += 1
        outcome, answer = await handler(reason, who)
        changes = command in ("stop", *CONFIRMED)
        await self._audit(command, outcome, who, Severity.WARNING if changes else Severity.INFO, reason)
        await self._reply(chat, answer)

    async def _audit(self, command: str, outcome: str, who: str, severity: Severity, reason: str = "") -> None:
        await self.view.record_event(EngineEvent(
            self.view.clock(), "audit", f"telegram /{command} {outcome} ({who})", severity,
            {"action": command, "outcome": outcome, "who": who, "reason": reason, "via": "telegram"}))

    async def _reply(self, chat: str, text: str) -> None:
        try:
            await self._bot.call(self._poller.session, "sendMessage", {"chat_id": chat, "text": text[:MAX_TEXT]},
                                 self.cfg.timeout_s)
        except (aiohttp.ClientError, TimeoutError, BotApiError) as exc:
            self.send_failures += 1
            log.warning("telegram sendMessage failed", extra={"error": type(exc).__name__})

    # ---- commands: (outcome for the audit trail, answer) ----------------------------------------------

    async def _state_line(self) -> str:
        rec = await self.controls.trading_state()
        why = f" ({rec['who']}: {rec['why']})" if rec.get("who") else ""
        return f"state {rec['state']}{why}"

    async def _status(self, _reason: str, _who: str) -> tuple[str, str]:
        st = self.status()
        ready, reasons = await self.controls.readiness()
        lines = [f"mode {st['mode'].upper()}", await self._state_line(),
                 "ready" if ready else "not ready: " + "; ".join(reasons),
                 f"equity {st['equity_usd']:.2f} USD", f"open orders {st['open_orders']}",
                 f"positions {len(st['positions'])}"]
        return "done", "\n".join(lines)

    async def _balance(self, _reason: str, _who: str) -> tuple[str, str]:
        balances = self.status()["balances"]
        lines = [f"{venue}: " + ", ".join(f"{asset} {amount}" for asset, amount in sorted(wallet.items()))
                 for venue, wallet in sorted(balances.items())]
        return "done", "\n".join(lines) or "no balances"

    async def _positions(self, _reason: str, _who: str) -> tuple[str, str]:
        positions = self.status()["positions"]
        lines = [f"{market}: {p['qty']} @ {p['entry']} (mark {p['mark']})" for market, p in sorted(positions.items())]
        return "done", "\n".join(lines) or "no open positions"

    async def _daily(self, _reason: str, _who: str) -> tuple[str, str]:
        perf = (await self.view.metrics_snapshot())["strategy_performance"]["performance"]
        pnl = perf.get("daily_pnl_usd")
        lines = ["today's P&L: " + ("not known yet (no equity snapshot today)" if pnl is None else f"{pnl:.2f} USD"),
                 f"daily loss counted by the risk layer: {self.status()['daily_loss_usd']:.2f} USD"]
        split = perf.get("daily_pnl_split")
        if isinstance(split, dict):
            lines += [f"  {k}: {v}" for k, v in split.items() if not isinstance(v, dict | list)]
        return "done", "\n".join(lines)

    async def _stop(self, reason: str, who: str) -> tuple[str, str]:
        changed = await self.controls.reduce(reason or "telegram /stop", who)
        if not changed:
            return "no change", f"nothing changed: {await self._state_line()}"
        return "done", "REDUCING: no new entries; exits still allowed. /resume confirm to trade again."

    async def _kill(self, reason: str, who: str) -> tuple[str, str]:
        await self.controls.kill(reason or "telegram /kill", who)
        return "done", (f"HALTED: kill switch activated, open orders cancelled ({self.status()['open_orders']} left "
                        "in the engine). /resume confirm to trade again.")

    async def _close_all(self, _reason: str, who: str) -> tuple[str, str]:
        await self.controls.close_all(who)
        return "done", "HALTED; orders cancelled and reduce-only close orders sent for every position."

    async def _resume(self, _reason: str, who: str) -> tuple[str, str]:
        await self.controls.resume(who)
        return "done", f"resumed: {await self._state_line()}"

    async def _help(self, _reason: str, _who: str) -> tuple[str, str]:
        return "done", HELP
