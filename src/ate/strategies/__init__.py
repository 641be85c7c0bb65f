"""Strategies: data + signal decisions → order intents (no venues, no store, no risk)."""

from ate.strategies.factory import build_strategies

__all__ = ["build_strategies"]
