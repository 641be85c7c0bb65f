from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ate.model import FilterError, Instrument, MarketKind, Position, Side, fmt

SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", MarketKind.SPOT, tick_size=Decimal("0.01"),
                  step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"), max_qty=Decimal("9000"),
                  min_price=Decimal("0.01"), max_price=Decimal("1000000"), min_notional=Decimal("5"))
PERP = Instrument("binance", "BTCUSDT_PERP", "BTC", "USDT", MarketKind.PERP, tick_size=Decimal("0.10"),
                  step_size=Decimal("0.001"), min_qty=Decimal("0.001"), max_qty=Decimal("1000"),
                  min_price=Decimal("556.80"), max_price=Decimal("4529764"), min_notional=Decimal("100"),
                  grid_at_min=True)

decimals = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("50"), places=8, allow_nan=False)
prices = st.decimals(min_value=Decimal("1000"), max_value=Decimal("200000"), places=6, allow_nan=False)


@pytest.mark.parametrize("inst", [SPOT, PERP], ids=["spot", "usdm"])
@given(qty=decimals, price=prices, side=st.sampled_from(list(Side)))
def test_rounded_orders_sit_on_the_grid_or_are_rejected(inst, qty, price, side):
    q = inst.round_qty(qty)
    anchor = inst.min_qty if inst.grid_at_min else 0
    assert q <= qty
    if q > 0:
        assert (q - anchor) % inst.step_size == 0
    p = inst.round_price(price, side)
    assert (p <= price) if side is Side.BUY else (p >= price)
    assert abs(p - price) < inst.tick_size
    try:
        rq, rp = inst.prepare(side, qty, price)
    except FilterError as exc:
        assert exc.reason in {"LOT_SIZE", "MIN_NOTIONAL", "PRICE_FILTER"}
        assert q < inst.min_qty or q * p < inst.min_notional
    else:
        assert rq == q and rp == p and rq * rp >= inst.min_notional


def test_min_notional_and_reduce_only_exemption_on_perps():
    with pytest.raises(FilterError, match="MIN_NOTIONAL"):
        SPOT.prepare(Side.BUY, Decimal("0.00005"), Decimal("60000"))
    with pytest.raises(FilterError, match="MIN_NOTIONAL"):
        PERP.prepare(Side.SELL, Decimal("0.001"), Decimal("60000"))
    assert PERP.prepare(Side.SELL, Decimal("0.0019"), Decimal("60000.01"), reduce_only=True) == (
        Decimal("0.001"), Decimal("60000.1"))


def test_wire_format_never_uses_exponents():
    assert fmt(Decimal("1E-7")) == "0.0000001"
    assert fmt(Decimal("60000.10")) == "60000.1"
    assert fmt(Decimal("100")) == "100"


def test_position_pnl_through_a_flip_and_funding_sign():
    p = Position("binance", "BTCUSDT_PERP")
    p.apply_fill(Side.BUY, Decimal("2"), Decimal("100"))
    assert p.apply_fill(Side.SELL, Decimal("3"), Decimal("110")) == Decimal("20")
    assert p.qty == Decimal("-1") and p.entry_price == Decimal("110")
    p.mark_price = Decimal("100")
    assert p.unrealized_pnl == Decimal("10")
    short = Position("binance", "BTCUSDT_PERP", qty=Decimal("-2"))
    assert short.apply_funding(Decimal("0.0001"), Decimal("100000")) == Decimal("20")
    assert short.apply_funding(Decimal("-0.0001"), Decimal("100000")) == Decimal("-20")


def _reference_grid(value: Decimal, anchor: Decimal, step: Decimal, rounding: str) -> Decimal:
    """The rounding rule as first written (anchor + n·step), which the instrument's direct form must match."""
    if step <= 0:
        return value.normalize()
    return (anchor + ((value - anchor) / step).to_integral_value(rounding=rounding) * step).normalize()


steps = st.sampled_from([Decimal(s) for s in ("0.01", "0.10", "0.1", "1", "10", "5", "0.00001", "0.001", "0.0025",
                                              "0.3", "1E+1", "0", "-0.01")])
values = st.one_of(st.decimals(allow_nan=True, allow_infinity=True, places=12),
                   st.decimals(min_value=Decimal("-1"), max_value=Decimal("1"), places=6),
                   st.sampled_from([Decimal(s) for s in ("0", "-0", "0E-8", "-0.003", "70000.010", "7E+4")]))


@given(value=values, step=steps, grid_at_min=st.booleans(), side=st.sampled_from(list(Side)))
def test_rounding_is_the_anchored_grid_digit_for_digit(value, step, grid_at_min, side):
    """Rounding in the instrument's direct form is `anchor + floor|ceil((v − anchor) / step)·step`, same digits
    (what is stored and sent), for any value, sign, zero, infinity and NaN, on either grid."""
    inst = Instrument("v", "S", "B", "Q", MarketKind.SPOT, tick_size=step, step_size=step, min_qty=Decimal("0.002"),
                      min_price=Decimal("0.002"), grid_at_min=grid_at_min)
    anchor = Decimal("0.002") if grid_at_min else Decimal(0)
    rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING

    def outcome(fn):
        try:
            return str(fn())
        except InvalidOperation as exc:
            return type(exc).__name__

    assert outcome(lambda: inst.round_price(value, side)) == outcome(lambda: _reference_grid(value, anchor, step,
                                                                                             rounding))
    expected_qty = outcome(lambda: _reference_grid(value, anchor, step, ROUND_FLOOR) if value > 0 else Decimal(0))
    assert outcome(lambda: inst.round_qty(value)) == expected_qty
