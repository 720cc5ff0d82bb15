"""Rule codes, their precedence and the settings of a validation run.

The order of ``RuleCode`` is the precedence: a row that breaks several rules is recorded once,
under the first (see the package docstring for what each rule checks).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from quant.market.bands import BIST_BAND_RULES, PriceBandRule
from quant.market.ticks import BIST_SHARE_TICKS, TickSizeTable


class RuleCode(StrEnum):
    """Validation rules; declaration order is the precedence (see the package docstring)."""

    SCHEMA = "SCHEMA"
    NULL = "NULL"
    NON_POSITIVE = "NON_POSITIVE"
    OHLC = "OHLC"
    CROSSED = "CROSSED"
    OFF_TICK = "OFF_TICK"
    HOLIDAY = "HOLIDAY"
    OUTSIDE_SESSION = "OUTSIDE_SESSION"
    DUPLICATE = "DUPLICATE"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    OUTSIDE_BAND = "OUTSIDE_BAND"
    STALE = "STALE"
    OUTLIER = "OUTLIER"
    GAP = "GAP"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def quarantines(self) -> bool:
        """False for GAP: missing data has no row to quarantine; it lowers the score instead."""
        return self is not RuleCode.GAP


_DESCRIPTIONS: dict[RuleCode, str] = {
    RuleCode.SCHEMA: "value cannot be read as the schema's type or is outside the field's domain",
    RuleCode.NULL: "null, NaN or infinite value in a required field",
    RuleCode.NON_POSITIVE: "price or size not positive (bar volume and trade count negative)",
    RuleCode.OHLC: "bar inconsistent: high/low not bracketing open, close, vwap; or ts_end <= ts",
    RuleCode.CROSSED: "quote bid at or above the ask",
    RuleCode.OFF_TICK: "price not on the tick grid in force that day",
    RuleCode.HOLIDAY: "row on a day that is not a session of the calendar",
    RuleCode.OUTSIDE_SESSION: "trade or bar outside the trading phases; quote outside order entry",
    RuleCode.DUPLICATE: "same key as an earlier row (the first occurrence is kept)",
    RuleCode.OUT_OF_ORDER: "timestamp earlier than one already seen, or seq not increasing",
    RuleCode.OUTSIDE_BAND: "price outside the daily band around the previous session's close",
    RuleCode.STALE: "series stopped moving: a long run of identical rows over a long time",
    RuleCode.OUTLIER: "price far from the prices before and after it (robust z of log return)",
    RuleCode.GAP: "expected data missing: a session without data, or missing intraday bars",
}

PRECEDENCE: tuple[RuleCode, ...] = tuple(RuleCode)
QUARANTINE_RULES: tuple[RuleCode, ...] = tuple(r for r in RuleCode if r.quarantines)
ALWAYS_ON = frozenset({RuleCode.SCHEMA, RuleCode.NULL})
"""A clean row must conform to the schema, so these two cannot be switched off."""
MARKET_RULES = frozenset({RuleCode.OFF_TICK, RuleCode.OUTSIDE_BAND, RuleCode.OUTSIDE_SESSION})
"""Rules that encode BIST market microstructure: off for data from other markets."""

CODE: dict[RuleCode, int] = {rule: i + 1 for i, rule in enumerate(PRECEDENCE)}
"""A rule's code in a chunk's per-row ``uint8`` code array (0 = clean)."""
ROW_LEVEL = 255
"""Placeholder code of a row-level rejection whose exact rule is resolved on the rejects only."""


class ValidationConfig(BaseModel):
    """Which rules run and with which thresholds.

    The defaults validate BIST equities. ``ValidationConfig.non_bist()`` validates data from
    other markets (e.g. US stocks) with the BIST microstructure rules (tick grid, price band,
    session phases) turned off and another exchange calendar for holidays and gaps.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    rules: frozenset[RuleCode] = frozenset(RuleCode)
    calendar: str | None = "XIST"
    """``exchange_calendars`` name; None turns off HOLIDAY, OUTSIDE_SESSION and GAP, and days are
    then UTC days. Session phases follow BIST's timetable for XIST; for any other calendar the
    trading window is the calendar's regular open to close."""
    tick_table: TickSizeTable = BIST_SHARE_TICKS
    band_rules: tuple[PriceBandRule, ...] = BIST_BAND_RULES
    bar_interval: timedelta | None = None
    """Length of a bar for the GAP check; None infers it (median of ts_end - ts). Bars of a day
    or more are daily bars: STALE and OUTLIER then run per symbol across days."""
    stale_max_run: int = Field(default=20, ge=2)
    """STALE: a row is stale when it is at least the ``stale_max_run + 1``-th consecutive row of a
    symbol-day with identical values (trades: price, size, side; quotes: both sides' prices and
    sizes; bars: open, high, low, close, volume) *and* more than ``stale_max_duration`` after the
    first row of that run. The first rows of a run are kept; only the rows beyond are flagged."""
    stale_max_duration: timedelta = timedelta(minutes=30)
    outlier_z: float = Field(default=8.0, gt=0)
    """OUTLIER: a price is an outlier when it is far from the prices before it *and* from the
    prices after it. Backward: r = log(price / median of the previous five prices of the
    symbol-day; fewer at the start), z = (r - median(r)) / max(1.4826 * MAD(r),
    ``outlier_min_scale``) with median and MAD per symbol-day, |z| > ``outlier_z``. Forward: the
    log return from the price to the median of the next five prices, scored with the same
    median and scale, must be beyond the threshold too and of the opposite sign: the price
    comes back (the last price of a day is judged on the backward test alone). Prices are
    trades' prices, quotes' mids and bars' closes; daily bars are scored per symbol across
    days. Medians rather than single neighbours keep one bad print from making its honest
    neighbours look like outliers, and the forward test keeps a genuine jump (which later
    prices confirm) and a crash in several legs out of the quarantine."""
    outlier_min_scale: float = Field(default=0.002, ge=0)
    """Floor of the robust scale (log-return units). Tick data often has a MAD of zero (most
    prints at the same price); the floor keeps one-tick moves from scoring as outliers."""
    outlier_min_obs: int = Field(default=20, ge=3)
    """Symbol-days with fewer returns are not checked for outliers (counted as unchecked)."""
    sample_size: int = Field(default=5, ge=0)
    """Quarantined rows kept per rule as samples in the report."""

    @classmethod
    def non_bist(cls, calendar: str | None = "XNYS", **overrides: Any) -> ValidationConfig:
        """Rules for data from another market: no BIST tick grid, price band or phases."""
        rules = overrides.pop("rules", frozenset(RuleCode)) - MARKET_RULES
        return cls(calendar=calendar, rules=rules, **overrides)

    def without(self, *rules: RuleCode | str) -> ValidationConfig:
        """A copy with ``rules`` switched off."""
        return self.model_copy(update={"rules": self.rules - {RuleCode(r) for r in rules}})

    def enabled(self, rule: RuleCode) -> bool:
        return rule in ALWAYS_ON or rule in self.rules

    def summary(self) -> dict[str, Any]:
        """JSON-friendly settings for the report."""
        return {
            "rules": [r.value for r in PRECEDENCE if self.enabled(r)],
            "calendar": self.calendar,
            "tick_table": self.tick_table.name,
            "band_rules": [
                {"from": r.effective_from.isoformat(), "daily_pct": r.daily_pct}
                for r in self.band_rules
            ],
            "bar_interval": str(self.bar_interval) if self.bar_interval else None,
            "stale_max_run": self.stale_max_run,
            "stale_max_duration": str(self.stale_max_duration),
            "outlier_z": self.outlier_z,
            "outlier_min_scale": self.outlier_min_scale,
            "outlier_min_obs": self.outlier_min_obs,
        }
