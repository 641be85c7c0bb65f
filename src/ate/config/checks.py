"""What every config section shares: unknown keys and non-finite numbers refused, and URLs that must be
encrypted unless they stay on this machine."""

from __future__ import annotations

import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints


class Section(BaseModel):
    # NaN or Infinity in a limit would make every comparison against it pass or fail silently.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _checked(secure: str, plain: str):
    def check(value: str) -> str:
        try:
            parts = urlsplit(value)
            scheme, host = parts.scheme, parts.hostname
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            scheme, host = "", None
        if scheme not in (secure, plain) or not host:
            raise ValueError(f"{value!r} is not a {secure}:// URL")
        if scheme == plain and not is_loopback(host):
            raise ValueError(f"{value!r}: keys and orders would travel unencrypted; use {secure}:// "
                             f"({plain}:// is only accepted on loopback, e.g. the local simulator)")
        return value
    return check


# Venue REST and alert endpoints carry signed requests or tokens: TLS, except to loopback (the simulator).
HttpsUrl = Annotated[str, AfterValidator(_checked("https", "http"))]
WssUrl = Annotated[str, AfterValidator(_checked("wss", "ws"))]

# The name of an environment variable holding a secret (POSIX: letters, digits, underscore; not a digit first).
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
