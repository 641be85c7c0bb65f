from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """Something the operator should be able to see later: a transition, correction or alert."""

    ts_ms: int
    kind: str
    message: str
    severity: Severity = Severity.INFO
    data: dict = field(default_factory=dict)
