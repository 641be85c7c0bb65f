"""What a backtest replays: candles per market, funding per perp, DVOL history; loaded for a window.

Markets use the engine's keys (``binance:BTCUSDT`` spot, ``binance_usdm:BTCUSDT`` perp,
``backpack:BTC_USDC``). The CLI names files as ``--data MARKET=PATH``, ``--data funding:MARKET=PATH``,
``--data ref:MARKET=PATH`` (a reference market: replayed as prices only, e.g. a conversion source on a
venue the engine does not trade; no wallet, never traded) and ``--data dvol=PATH``; without any, the primary market replays the shipped 1h BTCUSDT history and
the shipped DVOL, and a perp market given candles gets the shipped funding history.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from ate.data.candles import Candle
from ate.data.loaders import DvolPoint, FundingRate, load_candles, load_dvol, load_funding
from ate.model import Instrument, MarketKind
from ate.sim.instruments import BINANCE_SPOT, BINANCE_USDM, KNOWN

REF = "ref:"
QUOTES = ("USDT", "USDC", "USD", "EUR")  # quote assets recognised at the end of a reference market's symbol

DATA_DIR = Path("data")
DEFAULT_CANDLES = {"binance:BTCUSDT": DATA_DIR / "binance_spot_BTCUSDT_1h.csv.gz"}
DEFAULT_FUNDING = {"binance_usdm:BTCUSDT": DATA_DIR / "binance_usdm_BTCUSDT_funding.csv"}
DEFAULT_DVOL = DATA_DIR / "deribit_BTC_DVOL_1d.csv"
WARMUP_MS = 1100 * 3_600_000  # garch needs 1,001 hourly bars; the other modules less
# engine venue id -> the simulator's instrument table venue
_SIM_VENUE = {"binance": BINANCE_SPOT, "binance_usdm": BINANCE_USDM}


class DataError(ValueError):
    pass


@dataclass(slots=True)
class MarketData:
    market: str  # engine key venue:SYMBOL
    instrument: Instrument
    candles: list[Candle]
    funding: list[FundingRate] = field(default_factory=list)
    reference: bool = False  # prices only: no wallet, never traded


@dataclass(slots=True)
class BacktestData:
    primary: str
    markets: dict[str, MarketData]
    dvol: list[DvolPoint] = field(default_factory=list)
    warmup: list[Candle] = field(default_factory=list)  # primary candles before the window, signals only
    note: str = ""  # anything synthesised (e.g. time-shifted history), printed with the results

    @property
    def start_ms(self) -> int:
        return min(m.candles[0].open_ms for m in self.markets.values() if m.candles)

    @property
    def end_ms(self) -> int:
        return max(m.candles[-1].close_ms for m in self.markets.values() if m.candles)


def instrument_for(market: str) -> Instrument:
    """Real exchange filters of a market, under the engine's venue id."""
    venue, _, symbol = market.partition(":")
    inst = KNOWN.get((_SIM_VENUE.get(venue, venue), symbol))
    if inst is None:
        raise DataError(f"{market}: no known instrument filters for this market")
    return replace(inst, venue=venue)


def reference_instrument(market: str) -> Instrument:
    """Filters of a reference market: the known ones, else base/quote read from the symbol on a fine grid
    (it only ever supplies prices)."""
    try:
        return instrument_for(market)
    except DataError:
        pass
    venue, _, symbol = market.partition(":")
    plain = symbol.replace("_", "").replace("/", "").replace("-", "")
    for quote in QUOTES:
        if plain.endswith(quote) and len(plain) > len(quote):
            return Instrument(venue, symbol, plain[: -len(quote)], quote, MarketKind.SPOT, Decimal("0.01"),
                              Decimal("0.00000001"), Decimal("0.00000001"))
    raise DataError(f"{market}: cannot tell base and quote from the symbol (quotes known: {', '.join(QUOTES)})")


def parse_date(text: str) -> int:
    """`YYYY-MM-DD` or an ISO timestamp (UTC unless it says otherwise) → epoch ms."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"{text!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_data_specs(specs: Sequence[str]) -> dict[str, Path]:
    """`KEY=PATH` items → {KEY: PATH}; KEY is a market, `funding:<market>` or `dvol`."""
    out = {}
    for spec in specs:
        key, sep, path = spec.partition("=")
        if not sep or not key or not path:
            raise DataError(f"--data {spec!r}: expected KEY=PATH (e.g. binance:BTCUSDT=data/file.csv.gz)")
        out[key.strip()] = Path(path.strip())
    return out


def load_window(primary: str, files: dict[str, Path], start_ms: int | None, end_ms: int | None,
                warmup_ms: int = WARMUP_MS) -> BacktestData:
    """Candles with open time in [start, end), funding settled in (start, end], DVOL up to end, and the
    primary candles of the `warmup_ms` before start for the signal modules' warm-up."""
    files = dict(files)
    if not any(":" in k and not k.startswith("funding:") for k in files) and primary in DEFAULT_CANDLES:
        files[primary] = DEFAULT_CANDLES[primary]
    if "dvol" not in files and DEFAULT_DVOL.exists():
        files["dvol"] = DEFAULT_DVOL
    markets: dict[str, MarketData] = {}
    warmup: list[Candle] = []
    for spec, path in sorted(files.items()):
        if spec == "dvol" or spec.startswith("funding:"):
            continue
        ref = spec.startswith(REF)
        key = spec[len(REF):] if ref else spec
        candles = load_candles(_existing(path, spec), end_ms=end_ms)
        opens = [c.open_ms for c in candles]
        first = 0 if start_ms is None else bisect_left(opens, start_ms)
        if key == primary and start_ms is not None:
            warmup = candles[bisect_left(opens, start_ms - warmup_ms):first]
        candles = candles[first:]
        if not candles:
            raise DataError(f"{key}: {path} has no candles in the window")
        markets[key] = MarketData(key, reference_instrument(key) if ref else instrument_for(key), candles,
                                  reference=ref)
    if primary not in markets:
        raise DataError(f"no candles for the primary market {primary} (give --data {primary}=PATH)")
    for key, md in markets.items():
        if md.instrument.kind is not MarketKind.PERP:
            continue
        path = files.get(f"funding:{key}") or DEFAULT_FUNDING.get(key)
        if path is None:
            continue
        first, last = md.candles[0].open_ms, md.candles[-1].close_ms
        md.funding = [r for r in load_funding(_existing(path, f"funding:{key}")) if first < r.ts_ms <= last]
    dvol: list[DvolPoint] = []
    if "dvol" in files:
        dvol = [p for p in load_dvol(_existing(files["dvol"], "dvol")) if end_ms is None or p.day_open_ms < end_ms]
    return BacktestData(primary, markets, dvol, warmup)


def _existing(path: Path, key: str) -> Path:
    if not path.exists():
        raise DataError(f"{key}: data file {path} does not exist")
    return path


def shift_candles(candles: Sequence[Candle], offset_ms: int) -> list[Candle]:
    return [replace(c, open_ms=c.open_ms + offset_ms) for c in candles]

