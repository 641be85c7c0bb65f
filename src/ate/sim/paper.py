"""Paper trading: the in-process matching core, driven by live top-of-book updates.

Orders of a paper run are matched by the same core the backtester and `ate simulate` use, against
the books the engine receives from the venues; balances start from the venues' real balances (or a
configured virtual capital) and are never sent anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from ate.model import Balance, Instrument
from ate.model.market import BookTicker
from ate.sim.core import MatchingCore

ACCOUNT = "paper"


class PaperVenue:
    def __init__(self, instruments: Iterable[Instrument], fees_bps: Callable[[str], tuple[Decimal, Decimal]],
                 clock: Callable[[], int]) -> None:
        self.core = MatchingCore(clock)
        self.core.add_account(ACCOUNT)
        for inst in instruments:
            maker, taker = fees_bps(inst.venue)
            self.core.add_market(inst, maker / Decimal(10_000), taker / Decimal(10_000))

    def fund(self, venue: str, balances: dict[str, Balance]) -> None:
        for asset, b in balances.items():
            if b.total > 0:
                self.core.deposit(ACCOUNT, venue, asset, b.total)

    def on_book(self, book: BookTicker) -> None:
        """A live top of book: resting paper orders it crosses fill as makers, at their limit."""
        m = self.core.markets.get((book.venue, book.symbol))
        if m is None:
            return
        self.core.update_book(m, int(book.bid / m.tick), int(book.ask / m.tick), int(book.bid_qty / m.step),
                              int(book.ask_qty / m.step), book.ts_ms)
