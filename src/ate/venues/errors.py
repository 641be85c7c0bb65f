"""Venue errors, split by what they prove about the command's outcome."""

from __future__ import annotations


class VenueError(Exception):
    """Base class. Messages carry venue, status and the venue's error code/text, never credentials."""

    def __init__(self, venue: str, message: str, *, status: int | None = None, code: str | int | None = None):
        super().__init__(f"{venue}: {message}" + (f" (HTTP {status}, code {code})" if status else ""))
        self.venue = venue
        self.status = status
        self.code = code
        self.venue_message = message


class VenueRejected(VenueError):
    """Definitive rejection: the venue's answer proves nothing happened."""


class VenueUnknown(VenueError):
    """Outcome unknown (timeout, 5xx, dropped connection, 429 on an order): resolve by querying."""


class NotFound(VenueRejected):
    """The venue says the order (or object) does not exist."""


class ClockSkewError(RuntimeError):
    """Local clock too far from the venue's for a signed request to be accepted."""


class MissingCredentials(RuntimeError):
    """A required API key variable is not set (the message names the variable, never a value)."""
