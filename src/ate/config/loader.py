"""Loading and validating a config file, with errors as `<field.path>: <reason>` lines."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from ate.config import jsontext
from ate.config.checks import is_loopback
from ate.config.models import EngineConfig
from ate.model import Mode


class ConfigError(Exception):
    """Every problem found in a config, one `<field.path>: <reason>` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _loc(loc: tuple) -> str:
    # pydantic marks an invalid dict key with a "[key]" step: the path is the key's, the reason says "key"
    return ".".join(str(p) for p in loc if p != "[key]") or "config"


def _reason(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    msg = err["msg"].removeprefix("Value error, ")
    return f"invalid key: {msg}" if err["loc"] and err["loc"][-1] == "[key]" else msg


def _read_json(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"config: cannot read {path}: {exc.strerror or exc}"]) from None
    try:
        data = jsontext.loads(raw)
    except jsontext.JsonTextError as exc:
        where = f" at {exc.where}" if exc.where else ""
        raise ConfigError([f"config: malformed JSON in {path}{where}: {exc.what}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"config: top level of {path} must be a JSON object"])
    return data


def _owner_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def _loopback_only(venue) -> bool:
    """Every URL of the venue is this machine (a separately started ``ate simulate``): its keys are
    the simulator's test keys, not secrets."""
    urls = [v for k, v in venue.model_dump().items() if k.endswith("_url")]
    return bool(urls) and all(is_loopback(urlsplit(u).hostname or "") for u in urls)


def _inline_key_problems(cfg: EngineConfig, path: Path | None) -> list[str]:
    problems = []
    private = path is not None and _owner_only(path)
    for name in ("binance", "backpack"):
        venue = getattr(cfg.venues, name)
        inline = venue.api_key is not None or venue.api_secret is not None
        if inline and not venue.simulated and not private and not _loopback_only(venue):
            problems.append(
                f"venues.{name}.api_key: inline keys are only allowed in a file with mode 0600 "
                f"(use the environment variable named by api_key_env instead)"
            )
    return problems


def missing_key_problems(cfg: EngineConfig, env: Mapping[str, str]) -> list[str]:
    """Modes that read accounts (shadow) or trade (canary, live) need keys for real venues."""
    if cfg.mode not in (Mode.SHADOW, Mode.CANARY, Mode.LIVE):
        return []
    problems = []
    for name in ("binance", "backpack"):
        venue = getattr(cfg.venues, name)
        if not venue.enabled or venue.simulated:
            continue
        for field in ("api_key", "api_secret"):
            env_name = getattr(venue, f"{field}_env")
            if getattr(venue, field) is None and not env.get(env_name):
                problems.append(
                    f"venues.{name}.{field}_env: environment variable {env_name} is not set "
                    f"(required in {cfg.mode.value} mode)"
                )
    return problems


def running_problems(cfg: EngineConfig, env: Mapping[str, str]) -> list[str]:
    """What a running engine needs from this machine: a token behind a remote API, a directory for the kill file."""
    problems = []
    if cfg.monitor.enabled and not is_loopback(cfg.monitor.host) and not env.get(cfg.monitor.token_env):
        problems.append(f"monitor.token_env: environment variable {cfg.monitor.token_env} must be set when "
                        f"monitor.host ({cfg.monitor.host}) is not loopback")
    directory = Path(cfg.kill_switch.file).absolute().parent
    if not directory.is_dir():
        problems.append(f"kill_switch.file: directory {directory} does not exist, so the kill file could never "
                        "be written there (relative paths are taken from the working directory)")
    return problems


def parse_config(data: dict, *, path: Path | None = None, env: Mapping[str, str] | None = None,
                 require_keys: bool = True) -> EngineConfig:
    try:
        cfg = EngineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{_loc(e['loc'])}: {_reason(e)}" for e in exc.errors()]) from None
    except RecursionError:
        raise ConfigError(["config: nested too deeply"]) from None
    problems = _inline_key_problems(cfg, path)
    # False for commands that never run the engine nor call a venue for it (status, dashboard, kill, resume,
    # close-all): an emergency command must not fail over a setting it does not use.
    if require_keys:
        env = os.environ if env is None else env
        problems += missing_key_problems(cfg, env) + running_problems(cfg, env)
    if problems:
        raise ConfigError(problems)
    return cfg


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, object] | None = None, require_keys: bool = True) -> EngineConfig:
    """Load and validate; ``overrides`` replace top-level keys (e.g. the CLI's --mode) before validation."""
    path = Path(path)
    return parse_config({**_read_json(path), **(overrides or {})}, path=path, env=env, require_keys=require_keys)


def config_schema() -> dict:
    return EngineConfig.model_json_schema()


def load_config_or_exit(path: str | Path, *, overrides: Mapping[str, object] | None = None,
                        require_keys: bool = True) -> EngineConfig:
    """For commands: the config, or one `<field.path>: <reason>` line per problem on stderr and exit 2.

    `require_keys=False` for commands that never call a venue (status, dashboard, kill, resume)."""
    try:
        return load_config(path, overrides=overrides, require_keys=require_keys)
    except ConfigError as exc:
        sys.stderr.write("".join(f"{line}\n" for line in exc.problems))
        raise SystemExit(2) from None
