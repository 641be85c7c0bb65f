"""Parameter sweeps: a grid of dotted config paths → one validated config per combination → many backtests.

Runs locally on a process pool by default, or on an existing Ray cluster when an address is given (Ray is
an optional extra, ``pip install ate[ray]``, imported only on that path). Every combination is validated
through the config model before anything runs; the results are ranked by one statistic.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ate.backtest.data import BacktestData
from ate.backtest.runner import run_backtest
from ate.config import ConfigError, EngineConfig, parse_config
from ate.model import Mode
from ate.strategies.loader import build_custom

RANK_KEYS = ("sharpe", "total_return", "cagr", "sortino", "monthly_return_equivalent", "max_drawdown", "win_rate",
             "profit_factor")
SUMMARY_KEYS = ("total_return", "cagr", "monthly_return_equivalent", "sharpe", "sortino", "max_drawdown", "win_rate",
                "profit_factor", "trades", "fees_paid", "funding_net")


class GridError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_grid(path: Path) -> dict[str, list[Any]]:
    try:
        grid = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GridError([f"grid: cannot read {path}: {exc}"]) from None
    if not isinstance(grid, dict) or not grid:
        raise GridError(["grid: expected a non-empty JSON object of \"dotted.path\": [values]"])
    problems = [f"grid.{k}: expected a non-empty list of values" for k, v in grid.items()
                if not isinstance(v, list) or not v]
    if problems:
        raise GridError(problems)
    return grid


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    node: Any = data
    parts = dotted.split(".")
    for p in parts[:-1]:
        if isinstance(node, list):  # e.g. strategies.custom.0.params.fast
            if not p.isdigit() or int(p) >= len(node):
                raise GridError([f"{dotted}: no item {p} in that list"])
            node = node[int(p)]
            continue
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict | list):
            raise GridError([f"{dotted}: {p} is not a section"])
        node = nxt
    if isinstance(node, list):
        raise GridError([f"{dotted}: a whole list item cannot be swept; name a key inside it"])
    node[parts[-1]] = value


def combinations(grid: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values, strict=True))


def _secret_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, SecretStr):
        yield path
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _secret_paths(v, (*path, k))
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            yield from _secret_paths(v, (*path, i))


def backtest_data(cfg: EngineConfig) -> dict[str, Any]:
    """The config as JSON data a backtest can re-validate: API keys and secrets removed, not masked (a
    masked "****" is no valid key, and a backtest never calls a venue, so none travels to a worker)."""
    raw = cfg.model_dump(mode="json")
    for path in _secret_paths(cfg.model_dump(mode="python")):
        node = raw
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = None
    return raw


def configs_for(base: EngineConfig, grid: Mapping[str, Sequence[Any]]) -> list[tuple[dict[str, Any], EngineConfig]]:
    """One validated config per combination; every invalid combination is reported, with its values."""
    raw = backtest_data(base)
    out, problems = [], []
    for combo in combinations(grid):
        data = json.loads(json.dumps(raw))
        try:
            for k, v in combo.items():
                _set_path(data, k, v)
            cfg = parse_config(data, env={})
            build_custom(cfg.strategies)  # a plug-in's params are checked by its own model, here, not in a worker
            out.append((combo, cfg))
        except ConfigError as exc:
            problems += [f"{_label(combo)}: {p}" for p in exc.problems]
        except GridError as exc:
            problems += [f"{_label(combo)}: {p}" for p in exc.problems]
    if problems:
        raise GridError(problems)
    return out


def _label(combo: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in combo.items())


@dataclass(frozen=True, slots=True)
class Job:
    index: int
    params: dict[str, Any]
    config: dict[str, Any]  # validated config as JSON data (picklable, cheap to ship to a worker)
    mode: str = "backtest"  # the mode the config file declares: its capital and limits apply


_worker_data: BacktestData | None = None  # set once per worker process by the pool's initializer


def _init_worker(data: BacktestData) -> None:
    global _worker_data
    _worker_data = data


def _run_in_worker(job: Job) -> dict[str, Any]:
    assert _worker_data is not None
    return run_job(job, _worker_data)


def run_job(job: Job, data: BacktestData) -> dict[str, Any]:
    """One backtest of a sweep (runs in a worker process or a Ray task)."""
    cfg = parse_config(job.config, env={})
    res = run_backtest(cfg, data, mode=Mode(job.mode))
    return {"index": job.index, "params": job.params, "final_equity": str(res.final_equity),
            **{k: res.stats.get(k) for k in SUMMARY_KEYS}}


def run_local(jobs: Sequence[Job], data: BacktestData, workers: int,
              on_done: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    results = []
    if workers <= 1:
        for job in jobs:
            r = run_job(job, data)
            results.append(r)
            on_done(r)
        return results
    # the data goes to each worker once, not with every job
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(data,)) as pool:
        futures = [pool.submit(_run_in_worker, job) for job in jobs]
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            on_done(r)
    return results


def run_ray(jobs: Sequence[Job], data: BacktestData, address: str,
            on_done: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise GridError(["--ray-address needs Ray: pip install 'ate[ray]'"]) from None
    # Workers import ate themselves: install it (same version) on every node, or start the nodes with
    # PYTHONPATH pointing at the source tree; the data travels once through the object store.
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    try:
        remote = ray.remote(run_job)
        data_ref = ray.put(data)
        pending = [remote.remote(job, data_ref) for job in jobs]
        results = []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            r = ray.get(done[0])
            results.append(r)
            on_done(r)
        return results
    finally:
        ray.shutdown()  # disconnects this driver; the cluster keeps running


def rank(results: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Best first; lower is better for max_drawdown; undefined values rank last, ties by grid order."""
    lower_better = key == "max_drawdown"

    def sort_key(r: dict[str, Any]) -> tuple[int, float, int]:
        v = r.get(key)
        if v is None:
            return (1, 0.0, r["index"])
        return (0, v if lower_better else -v, r["index"])

    return sorted(results, key=sort_key)
