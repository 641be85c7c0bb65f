"""`strategies.custom`: a user's class loads by import path, by file or by entry point; every mistake is one
`strategies.custom.<i>.<field>: <reason>` line and exit 2 before anything trades (config validate, backtest)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app
from ate.config import ConfigError, parse_config
from ate.strategies import build_strategies
from ate.strategies.guard import Guarded

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
OFF = {"directional": {"enabled": False}, "arbitrage": {"enabled": False}, "funding_carry": {"enabled": False}}

PLUGIN = textwrap.dedent('''
    from pydantic import BaseModel, ConfigDict, Field
    from ate.strategies.plugin import UserStrategy

    class P(BaseModel):
        model_config = ConfigDict(extra="forbid")
        fast: int = Field(3, ge=1)

    class Mine(UserStrategy):
        name = "mine"
        Params = P

    class NotAStrategy:
        pass

    class BadFrames(UserStrategy):
        name = "frames"
        timeframes = ("2m",)
''')


@pytest.fixture()
def plugin_dir(tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "strats.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("userpkg")]:
        del sys.modules[name]


def cfg(*custom: dict, **extra) -> dict:
    return {"mode": "backtest", "strategies": {**OFF, "custom": list(custom)}, **extra}


def problems(*custom: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        build_strategies(parse_config(cfg(*custom), env={}))
    return exc.value.problems


def test_loads_by_module_path_with_validated_params(plugin_dir):
    built = build_strategies(parse_config(cfg({"class": "userpkg.strats:Mine", "params": {"fast": 7}}), env={}))
    assert [s.name for s in built] == ["mine"]
    assert isinstance(built[0], Guarded) and built[0].inner.params.fast == 7


def test_loads_by_file_path_and_renames(plugin_dir):
    built = build_strategies(parse_config(cfg({"class": "userpkg/strats.py:Mine", "name": "mine_b"},
                                              {"class": "userpkg.strats:Mine"}), env={}))
    assert [s.name for s in built] == ["mine_b", "mine"]


def test_loads_by_entry_point(plugin_dir):
    dist = plugin_dir / "userpkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: userpkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ate.strategies]\nmine_ep = userpkg.strats:Mine\n")
    built = build_strategies(parse_config(cfg({"class": "mine_ep", "name": "from_ep"}), env={}))
    assert [s.name for s in built] == ["from_ep"]
    assert problems({"class": "no_such_ep"}) == [
        "strategies.custom.0.class: 'no_such_ep' is neither 'module:Class' nor an installed entry point of "
        "group 'ate.strategies'"]


@pytest.mark.parametrize(("entry", "line"), [
    ({"class": "userpkg.nothere:Mine"}, "strategies.custom.0.class: cannot import 'userpkg.nothere'"),
    ({"class": "userpkg.strats:Missing"}, "strategies.custom.0.class: 'userpkg.strats' has no attribute 'Missing'"),
    ({"class": "userpkg.strats:NotAStrategy"},
     "strategies.custom.0.class: 'userpkg.strats:NotAStrategy' is not a subclass of ate.strategies.plugin.UserStrategy"),
    ({"class": "userpkg.strats:Mine", "params": {"fast": 0}},
     "strategies.custom.0.params.fast: Input should be greater than or equal to 1"),
    ({"class": "userpkg.strats:Mine", "params": {"fsat": 2}}, "strategies.custom.0.params.fsat: unknown key"),
    ({"class": "userpkg.strats:Mine", "name": "directional"},
     "strategies.custom.0.name: 'directional' is already the name of a built-in strategy"),
    ({"class": "userpkg.strats:BadFrames"}, "strategies.custom.0.class: BadFrames.timeframes has ['2m']"),
    ({"class": "nowhere/strats.py:Mine"}, "strategies.custom.0.class: file nowhere/strats.py does not exist"),
])
def test_each_mistake_names_its_field(plugin_dir, entry, line):
    (got,) = problems(entry)
    assert got.startswith(line), got


def test_every_problem_is_reported_and_disabled_entries_are_not_loaded(plugin_dir):
    got = problems({"class": "userpkg.strats:Mine"}, {"class": "userpkg.strats:Mine"},
                   {"class": "userpkg.nothere:X", "enabled": False}, {"class": "userpkg.strats:Missing"})
    assert got == ["strategies.custom.1.name: 'mine' is already the name of another custom strategy",
                   "strategies.custom.3.class: 'userpkg.strats' has no attribute 'Missing'"]


def test_config_schema_rejects_malformed_entries():
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg({"class": "a:B", "name": "Bad Name"}, ), env={})
    assert exc.value.problems[0].startswith("strategies.custom.0.name:")
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg({"params": {}}), env={})
    assert exc.value.problems == ["strategies.custom.0.class: Field required"]


def test_cli_exits_2_naming_the_field_before_running(plugin_dir):
    path = plugin_dir / "c.json"
    path.write_text(json.dumps(cfg({"class": "userpkg.strats:Mine", "params": {"fast": "x"}})))
    for args in (["config", "validate", str(path)],
                 ["backtest", "--config", str(path), "--from", "2024-01-01", "--to", "2024-01-02"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, r.output
        assert r.stderr.startswith("strategies.custom.0.params.fast: Input should be a valid integer"), r.stderr
    path.write_text(json.dumps(cfg({"class": "userpkg.strats:Mine", "params": {"fast": 4}})))
    r = runner.invoke(app, ["config", "validate", str(path)])
    assert r.exit_code == 0 and "ok" in r.stdout


@pytest.mark.parametrize("example", ["ema_cross", "mean_reversion"])
def test_example_configs_validate(example, monkeypatch):
    monkeypatch.chdir(ROOT)
    r = runner.invoke(app, ["config", "validate", f"examples/strategies/{example}.json"])
    assert r.exit_code == 0, r.output
