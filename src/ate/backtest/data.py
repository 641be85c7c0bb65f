"""What a backtest replays: candles per market, funding per perp, DVOL history; loaded for a window.

Markets use the engine's keys (``binance:BTCUSDT`` spot, ``binance_usdm:BTCUSDT`` perp,
``backpack:BTC_USDC``). The CLI names files as ``--data MARKET=PATH``, ``--data funding:MARKET=PATH``,
``--data ref:MARKET=PATH`` (a reference market: replayed as prices only, e.g. a conversion source on a
venue the engine does not trade; no wallet, never traded) and ``--data dvol=PATH``. Whatever is not named
is looked up per asset in the data directories (the repo's ``data/`` by default, ``--data-dir`` adds more)
under the names the shipped files use: the primary market's 1h candles (``binance_spot_ETHUSDT_1h.csv.gz``,
``binance_usdm_ETHUSDT_perp_1h.csv.gz``), each perp's funding (``binance_usdm_ETHUSDT_funding.csv``) and the
implied volatility of the primary's base asset (``deribit_ETH_DVOL_1d.csv``). A DVOL file named for another
asset is refused (BTC's DVOL says nothing about ETH); without one for the asset, bitvol runs on its
realized-volatility proxy and the run's note says so.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from ate.data.candles import Candle
from ate.data.loaders import DvolPoint, FundingRate, load_candles, load_dvol, load_funding
from ate.data.loaders import parse_date as parse_date  # re-exported: backtest callers and tests read it here
from ate.model import Instrument, MarketKind
from ate.sim.instruments import BINANCE_SPOT, BINANCE_USDM, KNOWN

REF = "ref:"
QUOTES = ("USDT", "USDC", "USD", "EUR")  # quote assets recognised at the end of a reference market's symbol

DATA_DIR = Path("data")
# file names of the shipped (and ../shared) data, per engine venue
CANDLE_NAMES = {"binance": "binance_spot_{symbol}_1h.csv.gz", "binance_usdm": "binance_usdm_{symbol}_perp_1h.csv.gz",
                "backpack": "backpack_spot_{symbol}_1h.csv.gz"}
FUNDING_NAMES = {"binance_usdm": "binance_usdm_{symbol}_funding.csv"}
DVOL_NAME = "deribit_{asset}_DVOL_1d.csv"
_DVOL_ASSET = re.compile(r"deribit_([A-Z0-9]+)_DVOL", re.IGNORECASE)
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
    more_warmup: dict[str, list[Candle]] = field(default_factory=dict)  # other signal markets' warm-up
    more_dvol: dict[str, list[DvolPoint]] = field(default_factory=dict)  # DVOL of other signal markets' assets
    note: str = ""  # anything synthesised (e.g. time-shifted history), printed with the results

    @property
    def start_ms(self) -> int:
        return min(m.candles[0].open_ms for m in self.markets.values() if m.candles)

    @property
    def end_ms(self) -> int:
        return max(m.candles[-1].close_ms for m in self.markets.values() if m.candles)


def instrument_for(market: str, given: Mapping[str, Instrument] | None = None) -> Instrument:
    """Exchange filters of a market, under the engine's venue id: `given` ones (the config's `sim.markets`)
    first, then the real filters the simulator knows."""
    if given and market in given:
        return given[market]
    venue, _, symbol = market.partition(":")
    inst = KNOWN.get((_SIM_VENUE.get(venue, venue), symbol))
    if inst is None:
        raise DataError(f"{market}: no known instrument filters for this market (give them in the config's "
                        "sim.markets: venue, symbol, base, quote, kind, tick_size, step_size, ...)")
    return replace(inst, venue=venue)


def reference_instrument(market: str, given: Mapping[str, Instrument] | None = None) -> Instrument:
    """Filters of a reference market: given or known ones, else base/quote read from the symbol on a fine
    grid (it only ever supplies prices)."""
    try:
        return instrument_for(market, given)
    except DataError:
        pass
    venue, _, symbol = market.partition(":")
    plain = symbol.replace("_", "").replace("/", "").replace("-", "")
    for quote in QUOTES:
        if plain.endswith(quote) and len(plain) > len(quote):
            return Instrument(venue, symbol, plain[: -len(quote)], quote, MarketKind.SPOT, Decimal("0.01"),
                              Decimal("0.00000001"), Decimal("0.00000001"))
    raise DataError(f"{market}: cannot tell base and quote from the symbol (quotes known: {', '.join(QUOTES)})")


def parse_data_specs(specs: Sequence[str]) -> dict[str, Path]:
    """`KEY=PATH` items → {KEY: PATH}; KEY is a market, `funding:<market>` or `dvol`."""
    out = {}
    for spec in specs:
        key, sep, path = spec.partition("=")
        if not sep or not key or not path:
            raise DataError(f"--data {spec!r}: expected KEY=PATH (e.g. binance:BTCUSDT=data/file.csv.gz)")
        out[key.strip()] = Path(path.strip())
    return out


def find_file(dirs: Sequence[Path], name: str) -> Path | None:
    for d in dirs:
        if (d / name).exists():
            return d / name
    return None


def _named(table: dict[str, str], market: str) -> str | None:
    venue, _, symbol = market.partition(":")
    pattern = table.get(venue)
    return None if pattern is None else pattern.format(symbol=symbol)


def dvol_asset(path: Path) -> str | None:
    """The asset a DVOL file is for, from its name (``deribit_BTC_DVOL_1d.csv`` → BTC); None if it does not say."""
    m = _DVOL_ASSET.search(path.name)
    return m.group(1).upper() if m else None


def load_window(primary: str, files: dict[str, Path], start_ms: int | None, end_ms: int | None,
                warmup_ms: int = WARMUP_MS, data_dirs: Sequence[Path] = (DATA_DIR,),
                instruments: Mapping[str, Instrument] | None = None,
                signal_markets: Sequence[str] = ()) -> BacktestData:
    """Candles with open time in [start, end), funding settled in (start, end], DVOL up to end, and the
    candles of the `warmup_ms` before start of the primary market and of each other `signal_markets` (the
    directional markets, each with its own signal engine) for the signal modules' warm-up. Files not given
    are looked up per asset in `data_dirs` (see the module docstring); `instruments` gives filters of
    markets the simulator does not know."""
    files = dict(files)
    notes: list[str] = []
    asset = instrument_for(primary, instruments).base
    others = [m for m in dict.fromkeys(signal_markets) if m != primary]
    if not any(":" in k and not k.startswith("funding:") for k in files):
        name = _named(CANDLE_NAMES, primary)
        found = find_file(data_dirs, name) if name else None
        if found is None:
            raise DataError(f"no candles for the primary market {primary}: no {name} in "
                            f"{', '.join(map(str, data_dirs))} (give --data {primary}=PATH or --data-dir DIR)")
        files[primary] = found
        for market in others:  # a directional market without a file is reported by the market check
            name = _named(CANDLE_NAMES, market)
            found = find_file(data_dirs, name) if name else None
            if found is not None:
                files[market] = found
    if "dvol" in files:
        named = dvol_asset(files["dvol"])
        if named is not None and named != asset:
            raise DataError(f"dvol: {files['dvol']} is {named} implied volatility, but the primary market {primary} "
                            f"trades {asset} (give an {asset} DVOL file, or none: bitvol then uses realized volatility)")
    else:
        found = find_file(data_dirs, DVOL_NAME.format(asset=asset))
        if found is not None:
            files["dvol"] = found
        else:
            notes.append(f"no {asset} DVOL ({DVOL_NAME.format(asset=asset)}): bitvol uses its realized-volatility "
                         "proxy")
    markets: dict[str, MarketData] = {}
    warmup: list[Candle] = []
    more_warmup: dict[str, list[Candle]] = {}
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
        elif key in others and start_ms is not None:
            more_warmup[key] = candles[bisect_left(opens, start_ms - warmup_ms):first]
        candles = candles[first:]
        if not candles:
            raise DataError(f"{key}: {path} has no candles in the window")
        inst = reference_instrument(key, instruments) if ref else instrument_for(key, instruments)
        markets[key] = MarketData(key, inst, candles, reference=ref)
    if primary not in markets:
        raise DataError(f"no candles for the primary market {primary} (give --data {primary}=PATH)")
    for key, md in markets.items():
        if md.instrument.kind is not MarketKind.PERP:
            continue
        path = files.get(f"funding:{key}")
        if path is None:
            name = _named(FUNDING_NAMES, key)
            path = find_file(data_dirs, name) if name else None
        if path is None:
            notes.append(f"{key}: no funding history (give --data funding:{key}=PATH): no funding is paid")
            continue
        first, last = md.candles[0].open_ms, md.candles[-1].close_ms
        md.funding = [r for r in load_funding(_existing(path, f"funding:{key}")) if first < r.ts_ms <= last]
    dvol: list[DvolPoint] = []
    if "dvol" in files:
        dvol = [p for p in load_dvol(_existing(files["dvol"], "dvol")) if end_ms is None or p.day_open_ms < end_ms]
    more_dvol: dict[str, list[DvolPoint]] = {}
    for other in sorted({markets[m].instrument.base for m in others if m in markets} - {asset}):
        found = find_file(data_dirs, DVOL_NAME.format(asset=other))
        if found is None:
            notes.append(f"no {other} DVOL ({DVOL_NAME.format(asset=other)}): bitvol uses its realized-volatility "
                         "proxy on the markets trading it")
            continue
        more_dvol[other] = [p for p in load_dvol(found) if end_ms is None or p.day_open_ms < end_ms]
    return BacktestData(primary, markets, dvol, warmup, note="; ".join(notes), more_warmup=more_warmup,
                        more_dvol=more_dvol)


def _existing(path: Path, key: str) -> Path:
    if not path.exists():
        raise DataError(f"{key}: data file {path} does not exist")
    return path


def shift_candles(candles: Sequence[Candle], offset_ms: int) -> list[Candle]:
    return [replace(c, open_ms=c.open_ms + offset_ms) for c in candles]

