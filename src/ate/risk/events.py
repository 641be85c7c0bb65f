"""Event kinds (``EngineEvent.kind`` in the store) that the risk layer writes or reads.

Written by risk:
- ``TRADING_STATE``: a state transition; data {"from", "to", "who", "why"}.
- ``KILL_SWITCH``: kill switch activated or resumed; data {"action": "activate"|"resume", "who", "reason",
  "canceled", "flattened"}.
- ``RISK_BREACH``: a limit was actually exceeded (not an order rejected in advance): the daily loss crossed
  its limit; data {"limit", "value", "what"}.
- ``EMERGENCY_ACTION``: an emergency-ladder action; data {"level", "action", "orders"}.
- ``CLOSE_ALL``: what ``ate close-all`` did; data {"venues", "canceled", "closed", "errors"}.
- ``PROMOTION``: a capital stage change; data {"from", "to", "who"}.

Emitted by the engine, read by the promotion gates (``ate promote``):
- ``API_VIOLATION``: the venue answered HTTP 418 or error -1003 (IP ban / too many requests);
  data {"venue", "code"}.
- ``RISK_BREACH``: also for the engine's own detections (e.g. a position found above its cap).
- ``MODULE_STATUS``: a signal module's status changed; data {"module", "status"} with status one of
  OK | WARMUP | STALE | DEGRADED | ERROR. The latest per module counts.
- ``MAJOR_FAILURE``: a failure the operator must look at (crash recovery with a mismatch, an unresolved
  one-legged arbitrage, lost venue connectivity > 5 min); data {"what"}.
"""

from __future__ import annotations

TRADING_STATE = "trading_state"
KILL_SWITCH = "kill_switch"
RISK_BREACH = "risk_breach"
EMERGENCY_ACTION = "emergency_action"
CLOSE_ALL = "close_all"
PROMOTION = "promotion"
API_VIOLATION = "api_violation"
MODULE_STATUS = "module_status"
MAJOR_FAILURE = "major_failure"

MODULES = ("atr_supertrend", "multi_timeframe", "lxvx", "bitvol", "garch", "kelly", "emergency", "gamma")

# engine_state keys owned by the risk layer
STATE_KEY = "risk.trading_state"
DAILY_KEY = "risk.daily"
STAGE_KEY = "risk.capital_stage"
LADDER_KEY = "risk.ladder"
