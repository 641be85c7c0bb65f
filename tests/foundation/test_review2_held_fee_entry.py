"""Review 2 (model/position.py `held_fee`): a spot buy whose fee the venue takes in the base coin, closing a
short exactly, leaves the position short by the fee. That fee's value is already in `fees`; the dust it leaves
must carry the fill's price, so trading at a constant price afterwards realises nothing — else the fee is
counted a second time as realised P&L (the ledger's `realized` entries)."""

from decimal import Decimal as D

from ate.model import Position, Side

P = D("60000")
Q = D("0.01")
FEE = D("0.00001")  # BTC, taken from the BTC bought


def test_a_buy_closing_a_short_with_a_base_fee_leaves_dust_at_the_fill_price():
    pos = Position("binance", "BTCUSDT")
    pos.apply_fill(Side.SELL, Q, P)  # arbitrage sells inventory on this venue
    pos.apply_fill(Side.BUY, Q, P, FEE * P, held_fee=FEE)  # and buys it back; the fee is taken in BTC
    assert pos.qty == -FEE
    assert pos.entry_price == P, "the dust left by the fee has no entry price"
    pos.apply_fill(Side.SELL, Q, P)  # the next round trip, at the same price
    pos.apply_fill(Side.BUY, Q, P)
    assert pos.realized_pnl == 0, f"realised {pos.realized_pnl} at a constant price (the fee counted twice)"
