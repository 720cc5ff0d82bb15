"""BIST market rules as dated data: tick table, price bands, sessions and circuit breakers."""

from quant.market.bands import BIST_BAND_RULES, Band, PriceBand, PriceBandRule
from quant.market.breakers import (
    BIST_CIRCUIT_BREAKER_RULES,
    CircuitBreakerRule,
    CircuitBreakers,
    MarketWideStage,
)
from quant.market.calendar import (
    BIST_TIMETABLES,
    ISTANBUL,
    PhaseWindow,
    SessionInfo,
    SessionPhase,
    SessionTimetable,
    TradingCalendar,
)
from quant.market.instrument import Instrument
from quant.market.ticks import (
    BIST_SHARE_TICKS,
    RoundingMode,
    TickSchedule,
    TickSizeTable,
    TickTier,
)

__all__ = [
    "BIST_BAND_RULES",
    "BIST_CIRCUIT_BREAKER_RULES",
    "BIST_SHARE_TICKS",
    "BIST_TIMETABLES",
    "ISTANBUL",
    "Band",
    "CircuitBreakerRule",
    "CircuitBreakers",
    "Instrument",
    "MarketWideStage",
    "PhaseWindow",
    "PriceBand",
    "PriceBandRule",
    "RoundingMode",
    "SessionInfo",
    "SessionPhase",
    "SessionTimetable",
    "TickSchedule",
    "TickSizeTable",
    "TickTier",
    "TradingCalendar",
]
