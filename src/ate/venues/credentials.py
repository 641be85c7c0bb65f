"""API credentials from the environment. The secret never appears in repr, logs or errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ate.venues.errors import MissingCredentials


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask(self.api_key)})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, key_var: str, secret_var: str, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        missing = [name for name in (key_var, secret_var) if not env.get(name)]
        if missing:
            raise MissingCredentials(f"environment variable(s) not set: {', '.join(missing)}")
        return cls(env[key_var].strip(), env[secret_var].strip())

    @classmethod
    def optional_from_env(cls, key_var: str | None, secret_var: str | None,
                          environ: Mapping[str, str] | None = None) -> Credentials | None:
        """Credentials if both variables are named and set, else None (public data only)."""
        if not key_var or not secret_var:
            return None
        try:
            return cls.from_env(key_var, secret_var, environ)
        except MissingCredentials:
            return None


def mask(value: str) -> str:
    """First four characters only: enough to tell keys apart in a log, useless to an attacker."""
    return f"{value[:4]}…" if len(value) > 8 else "…"
