"""Loading and validating a config file, with errors as `<field.path>: <reason>` lines."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from ate.config.models import EngineConfig
from ate.model import Mode


class ConfigError(Exception):
    """Every problem found in a config, one `<field.path>: <reason>` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "config"


def _reason(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"config: cannot read {path}: {exc.strerror or exc}"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"config: malformed JSON in {path} at line {exc.lineno} column {exc.colno}: {exc.msg}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"config: top level of {path} must be a JSON object"])
    return data


def _owner_only(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def _loopback_only(venue) -> bool:
    """Every URL of the venue is this machine (a separately started ``ate simulate``): its keys are
    the simulator's test keys, not secrets."""
    urls = [v for k, v in venue.model_dump().items() if k.endswith("_url")]
    return bool(urls) and all(urlsplit(u).hostname in ("127.0.0.1", "localhost", "::1") for u in urls)


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


def parse_config(data: dict, *, path: Path | None = None, env: Mapping[str, str] | None = None,
                 require_keys: bool = True) -> EngineConfig:
    try:
        cfg = EngineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{_loc(e['loc'])}: {_reason(e)}" for e in exc.errors()]) from None
    problems = _inline_key_problems(cfg, path)
    if require_keys:  # False for commands that never call a venue (ate kill / resume / promote)
        problems += missing_key_problems(cfg, os.environ if env is None else env)
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
