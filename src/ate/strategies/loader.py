"""Users' strategies named in `strategies.custom`: resolved, checked and built once, at start.

`class` is one of
  - `pkg.module:Class`          a module importable from the environment,
  - `path/to/file.py:Class`     a file (relative to the working directory),
  - `name`                      an entry point of an installed package in the group `ate.strategies`.
The class must subclass `ate.strategies.plugin.UserStrategy`; `params` are validated by its `Params` model.
Every problem is one `strategies.custom.<i>.<field>: <reason>` line (ConfigError), the same shape as config
errors, so commands exit 2 naming the field before anything trades.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from pydantic import ValidationError

from ate.config.loader import ConfigError
from ate.config.strategies import CustomStrategyConfig, StrategiesConfig
from ate.data.candles import INTERVAL_MS
from ate.strategies.base import Strategy
from ate.strategies.guard import Guarded
from ate.strategies.plugin import UserStrategy

ENTRY_POINT_GROUP = "ate.strategies"
BUILTIN_NAMES = frozenset({"directional", "arbitrage", "funding_carry"})


class _Problem(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _module_from_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise _Problem("class", f"file {path} does not exist")
    # One module per file whatever the cwd, so two entries naming the same file share their classes.
    key = "ate_user_strategy_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None or spec.loader is None:
        raise _Problem("class", f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[key]
        raise
    return module


def resolve_class(spec: str) -> type:
    """The class a `class` value names (see the module docstring); raises _Problem on any failure."""
    if ":" not in spec:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
        if not found:
            raise _Problem("class", f"{spec!r} is neither 'module:Class' nor an installed entry point of "
                                    f"group {ENTRY_POINT_GROUP!r}")
        try:
            return found[0].load()
        except Exception as exc:
            raise _Problem("class", f"entry point {spec!r} failed to load: {type(exc).__name__}: {exc}") from None
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise _Problem("class", f"{spec!r} must be 'module:Class' or 'file.py:Class'")
    try:
        module = _module_from_file(Path(where)) if where.endswith(".py") else importlib.import_module(where)
    except _Problem:
        raise
    except ModuleNotFoundError as exc:
        raise _Problem("class", f"cannot import {where!r}: {exc}") from None
    except Exception as exc:
        raise _Problem("class", f"importing {where!r} raised {type(exc).__name__}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise _Problem("class", f"{where!r} has no attribute {attr!r}") from None


def _build(entry: CustomStrategyConfig) -> UserStrategy:
    cls = resolve_class(entry.class_)
    if not (isinstance(cls, type) and issubclass(cls, UserStrategy)):
        raise _Problem("class", f"{entry.class_!r} is not a subclass of ate.strategies.plugin.UserStrategy")
    try:
        params = cls.Params.model_validate(entry.params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise _Problem(f"params.{where}" if where else "params", reason) from None
    try:
        strategy = cls(params, name=entry.name)
    except Exception as exc:
        raise _Problem("class", f"{cls.__name__}(...) raised {type(exc).__name__}: {exc}") from None
    unknown = strategy.unknown_timeframes(strategy.timeframes)
    if unknown:
        raise _Problem("class", f"{cls.__name__}.timeframes has {unknown}; allowed: {', '.join(INTERVAL_MS)}")
    return strategy


def build_custom(section: StrategiesConfig) -> list[Strategy]:
    """The enabled custom strategies, each behind its guard; ConfigError listing every problem otherwise."""
    out: list[Guarded] = []
    problems: list[str] = []
    names: set[str] = set()
    for i, entry in enumerate(section.custom):
        if not entry.enabled:
            continue
        try:
            strategy = _build(entry)
            if strategy.name in BUILTIN_NAMES or strategy.name in names:
                taken = "a built-in strategy" if strategy.name in BUILTIN_NAMES else "another custom strategy"
                raise _Problem("name", f"{strategy.name!r} is already the name of {taken}")
        except _Problem as p:
            problems.append(f"strategies.custom.{i}.{p.field}: {p.reason}")
            continue
        names.add(strategy.name)
        out.append(Guarded(strategy))
    if problems:
        raise ConfigError(problems)
    return list(out)


def check_strategies_or_exit(cfg: object) -> None:
    """For commands that trade or backtest: exit 2 with one `<field.path>: <reason>` line per problem."""
    section: StrategiesConfig = cfg if isinstance(cfg, StrategiesConfig) else cfg.strategies  # type: ignore[attr-defined]
    problems = []
    markets = getattr(cfg, "markets", None)
    if markets is not None:  # a strategy on a market the engine does not subscribe to would never trade
        configured = markets.by_key()
        problems += [f"{path}: {market} is not a configured market (markets: {', '.join(sorted(configured))}); "
                     f"add it to markets, or remove it from the strategy" for path, market in
                     section.traded_markets().items() if market not in configured]
    try:
        build_custom(section)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        sys.stderr.write("".join(f"{line}\n" for line in problems))
        raise SystemExit(2) from None
