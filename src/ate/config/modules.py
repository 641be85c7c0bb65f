"""The `modules` config section: parameters of the eight signal modules and the combiner.

Defaults are those of reference/signals-and-strategies.md §2–§6.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ate.config.checks import Section as _Section

Timeframe = Literal["15m", "1h", "4h", "1d"]



def _increasing(name: str, xs: list[float]) -> None:
    if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
        raise ValueError(f"{name} must be strictly increasing, got {xs}")


class AtrSupertrendConfig(_Section):
    enabled: bool = True
    atr_period: int = Field(14, ge=1)
    st_period: int = Field(10, ge=1)
    st_multiplier: float = Field(3.0, gt=0)
    sma_fast: int = Field(10, ge=1)
    sma_slow: int = Field(20, ge=2)
    strength_window: int = Field(10, ge=1)
    regime_window: int = Field(100, ge=2)
    regime_factor_low: float = Field(0.8, ge=0, le=1)
    regime_factor_normal: float = Field(1.0, ge=0, le=1)
    regime_factor_high: float = Field(0.8, ge=0, le=1)
    hold_confidence: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> AtrSupertrendConfig:
        if self.sma_fast >= self.sma_slow:
            raise ValueError(f"sma_fast ({self.sma_fast}) must be below sma_slow ({self.sma_slow})")
        return self


class MultiTimeframeConfig(_Section):
    enabled: bool = True
    st_period: int = Field(10, ge=1)
    st_multiplier: float = Field(3.0, gt=0)
    weights: dict[Timeframe, float] = Field(default_factory=lambda: {"15m": 0.2, "1h": 0.3, "4h": 0.3, "1d": 0.2})
    min_available: int = Field(2, ge=1, le=4)

    @model_validator(mode="after")
    def _weights(self) -> MultiTimeframeConfig:
        if not self.weights or any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {self.weights}")
        return self


class LxvxConfig(_Section):
    enabled: bool = True
    volume_window: int = Field(20, ge=1)
    vwap_window: int = Field(100, ge=1)
    score_threshold: float = Field(1.5, gt=0)
    max_deviation: float = Field(0.01, gt=0)
    hold_confidence: float = Field(0.2, ge=0, le=1)
    multiplier_min: float = Field(0.25, ge=0)
    multiplier_max: float = Field(1.0, gt=0)


class BitvolConfig(_Section):
    enabled: bool = True
    # Percentile bounds of the regimes low | normal | elevated | high | extreme.
    regime_bounds: list[float] = Field(default_factory=lambda: [20.0, 60.0, 80.0, 95.0], min_length=4, max_length=4)
    multipliers: list[float] = Field(default_factory=lambda: [1.0, 1.0, 0.75, 0.5, 0.0], min_length=5, max_length=5)
    warmup_multiplier: float = Field(0.75, ge=0)
    lookback_days: int = Field(365, ge=2)
    min_history: int = Field(180, ge=2)
    proxy_window: int = Field(720, ge=2)
    live_max_age_s: float = Field(7200.0, gt=0)
    history_max_age_days: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> BitvolConfig:
        _increasing("regime_bounds", self.regime_bounds)
        if any(m < 0 for m in self.multipliers):
            raise ValueError("multipliers must be >= 0")
        if self.min_history > self.lookback_days:
            raise ValueError("min_history must not exceed lookback_days")
        return self


class GarchConfig(_Section):
    enabled: bool = True
    window: int = Field(1000, ge=50)
    refit_hours: float = Field(24.0, gt=0)
    max_persistence: float = Field(0.9999, gt=0, le=1)
    ewma_lambda: float = Field(0.94, gt=0, lt=1)
    ewma_seed_returns: int = Field(30, ge=1)
    ewma_min_returns: int = Field(100, ge=1)
    target_vol: float = Field(50.0, gt=0)
    multiplier_min: float = Field(0.25, ge=0)
    multiplier_max: float = Field(2.0, gt=0)
    spike_factor: float = Field(1.3, gt=0)

    @model_validator(mode="after")
    def _ranges(self) -> GarchConfig:
        if self.multiplier_min > self.multiplier_max:
            raise ValueError("multiplier_min must not exceed multiplier_max")
        if self.ewma_seed_returns > self.ewma_min_returns:
            raise ValueError("ewma_seed_returns must not exceed ewma_min_returns")
        return self


class KellyConfig(_Section):
    enabled: bool = True
    lookback_trades: int = Field(100, ge=1)
    min_trades: int = Field(20, ge=1)
    fraction: float = Field(0.25, gt=0, le=1)
    cap: float = Field(0.05, ge=0, le=1)
    default_fraction: float = Field(0.02, ge=0, le=1)
    ignore_below: float = Field(1e-6, ge=0)


class EmergencyConfig(_Section):
    enabled: bool = True
    # Level k (1..5) is reached at drawdown >= drawdown_levels[k-1] or daily loss >= daily_loss_levels[k-1].
    drawdown_levels: list[float] = Field(default_factory=lambda: [0.05, 0.10, 0.15, 0.20, 0.25],
                                         min_length=5, max_length=5)
    daily_loss_levels: list[float] = Field(default_factory=lambda: [0.02, 0.05, 0.08, 0.12, 0.15],
                                           min_length=5, max_length=5)
    # REDUCE percentage for levels 2, 3, 4.
    reduce_pct: list[float] = Field(default_factory=lambda: [25.0, 50.0, 75.0], min_length=3, max_length=3)
    veto_lift_s: float = Field(3600.0, ge=0)
    flash_threshold: float = Field(0.05, gt=0)
    flash_veto_s: float = Field(900.0, ge=0)
    stale_s: float = Field(60.0, gt=0)
    venue_window_s: float = Field(300.0, gt=0)
    venue_min_requests: int = Field(20, ge=1)
    venue_error_rate: float = Field(0.05, gt=0, le=1)
    venue_recover_rate: float = Field(0.025, ge=0, le=1)

    @model_validator(mode="after")
    def _ladders(self) -> EmergencyConfig:
        _increasing("drawdown_levels", self.drawdown_levels)
        _increasing("daily_loss_levels", self.daily_loss_levels)
        _increasing("reduce_pct", self.reduce_pct)
        if not all(0 < x < 1 for x in self.drawdown_levels + self.daily_loss_levels):
            raise ValueError("ladder thresholds are fractions in (0, 1)")
        if not all(0 < x < 100 for x in self.reduce_pct):
            raise ValueError("reduce_pct values are percentages in (0, 100)")
        if self.venue_recover_rate > self.venue_error_rate:
            raise ValueError("venue_recover_rate must not exceed venue_error_rate")
        return self


class GammaConfig(_Section):
    enabled: bool = True
    band_pct: float = Field(0.02, gt=0)
    soft_pct: float = Field(0.005, gt=0)
    rebalance_hours: float = Field(4.0, gt=0)
    move_pct: float = Field(0.02, gt=0)
    max_snapshot_age_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _soft_below_band(self) -> GammaConfig:
        if self.soft_pct > self.band_pct:
            raise ValueError("soft_pct must not exceed band_pct")
        return self


class CombinerConfig(_Section):
    weights: dict[Literal["atr_supertrend", "lxvx", "multi_timeframe"], float] = Field(
        default_factory=lambda: {"atr_supertrend": 0.7, "lxvx": 0.4, "multi_timeframe": 0.3})
    dominance: float = Field(1.2, ge=1.0)
    min_confidence: float = Field(0.6, ge=0, le=1)

    @model_validator(mode="after")
    def _weights(self) -> CombinerConfig:
        if any(w < 0 for w in self.weights.values()):
            raise ValueError(f"combiner weights must be >= 0, got {self.weights}")
        return self


class ModulesConfig(_Section):
    decision_timeframe: Literal["15m", "1h", "4h"] = "1h"
    max_gap_bars: int = Field(3, ge=0)
    stale_grace_s: float = Field(120.0, ge=0)
    atr_supertrend: AtrSupertrendConfig = AtrSupertrendConfig()
    multi_timeframe: MultiTimeframeConfig = MultiTimeframeConfig()
    lxvx: LxvxConfig = LxvxConfig()
    bitvol: BitvolConfig = BitvolConfig()
    garch: GarchConfig = GarchConfig()
    kelly: KellyConfig = KellyConfig()
    emergency: EmergencyConfig = EmergencyConfig()
    gamma: GammaConfig = GammaConfig()
    combiner: CombinerConfig = CombinerConfig()
