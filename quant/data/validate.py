"""Market-data validation: every row comes out clean or quarantined with the rule it broke.

A backtest is only as honest as its data, and a bad print (a price off the tick grid, a trade
during the opening auction, a fat-finger spike) silently becomes a fill in a simulation. So every
row is checked against the rules below, and nothing is dropped silently: a rejected row goes to
the quarantine with its rule code and a reason that names the value and the limit it broke.

Rules and precedence
--------------------
A row that breaks several rules is recorded once, under the first rule it breaks in this order
(the order of ``RuleCode``). Row-level rules come first, then the rules that compare a row with
the rows before it, which therefore only see rows that passed everything earlier:

1. ``SCHEMA`` value cannot be read as the schema's type, or is outside the field's domain (a
   missing required column is a whole-input error: ``ValueError`` naming the columns).
2. ``NULL`` null, NaN or infinite value in a required field.
3. ``NON_POSITIVE`` price or size <= 0 (bars: prices > 0; volume and trade count >= 0, since a
   bar without trades is a fact, not an error).
4. ``OHLC`` bar values inconsistent (high < max(open, close), low > min(open, close),
   low > high, vwap outside [low, high], ts_end not after ts).
5. ``CROSSED`` quote with bid >= ask.
6. ``OFF_TICK`` price not on the tick grid in force that day (exact, in integer price units).
7. ``HOLIDAY`` row on a day that is not a session of the calendar.
8. ``OUTSIDE_SESSION`` trade or bar outside the phases where trades are allowed; quote outside
   the phases that accept orders.
9. ``DUPLICATE`` same key (``KEYS[kind]``) as an earlier row: the first is kept.
10. ``OUT_OF_ORDER`` ts earlier than a ts already seen for the symbol that day (bars: not later),
    or seq not greater than the highest seq seen for the symbol that day.
11. ``OUTSIDE_BAND`` outside the daily price band around the previous session's close (its last
    price alive after rules 1-10, unless that price lies outside its own day's band: a bad
    print at the close is not a base, the day's last price inside its band is).
12. ``STALE`` a series that stops moving (see ``ValidationConfig.stale_max_run``).
13. ``OUTLIER`` a price far from the prices before it *and* after it: robust z-score of the log
    return beyond ``ValidationConfig.outlier_z`` (a real jump is confirmed by later prices).
14. ``GAP`` expected data that is missing: a finding of the report, never a quarantined row.

Grouping. Rows are validated per symbol and *local* day (the calendar's time zone; UTC without
a calendar). Ordering is judged within a symbol-day: the lake stores one partition per
symbol-day, so a row merely stored among another day's rows is placed on its own day rather
than rejected. The frame is never reordered: ``clean`` and ``quarantine`` keep the input order.
Markets whose sessions span midnight (futures) need ``calendar=None`` or HOLIDAY/GAP off, since
their trading day is not the local calendar day.

Streaming. ``validate_parquet`` and ``validate_stream`` validate data larger than memory in
chunks of complete symbol-days, carrying the only cross-day state (each symbol's previous close,
for the band) from chunk to chunk, so that a chunked run gives exactly the in-memory result.

Speed. Validating must cost a small multiple of reading the data (issue 2: 20 million trades in
at most 3x a bare Parquet scan; see BENCHMARKS.md). Row passes are compiled kernels
(``validate_kernels``) or vectorised polars/numpy; Python loops run per symbol-day at most, and
per rejected row only to word its reason. A large chunk's independent stages (reading columns,
grouping, row-level and sequence rules) run on one worker thread while the previous chunk's
ordered stages (band, stale, outlier) and output run on the caller's thread: results do not
depend on that overlap, only the wall time does.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from quant.data import validate_kernels as _kernels
from quant.data.quality_report import QualityReport, SymbolDayQuality
from quant.data.schema import (
    KEYS,
    CorporateActionKind,
    DataKind,
    TradeCondition,
    polars_schema,
)
from quant.market.bands import BIST_BAND_RULES, PriceBand, PriceBandRule
from quant.market.calendar import SessionPhase, TradingCalendar
from quant.market.ticks import (
    BIST_SHARE_TICKS,
    PRICE_SCALE,
    RoundingMode,
    TickSchedule,
    TickSizeTable,
    to_units,
)

__all__ = [
    "ChunkSink",
    "ParquetSink",
    "RuleCode",
    "ValidationConfig",
    "ValidationResult",
    "median_of_five",
    "validate",
    "validate_parquet",
    "validate_stream",
]


class RuleCode(StrEnum):
    """Validation rules; declaration order is the precedence (see the module docstring)."""

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

_PRECEDENCE: tuple[RuleCode, ...] = tuple(RuleCode)
_QUARANTINE_RULES: tuple[RuleCode, ...] = tuple(r for r in RuleCode if r.quarantines)
_ALWAYS_ON = frozenset({RuleCode.SCHEMA, RuleCode.NULL})
"""A clean row must conform to the schema, so these two cannot be switched off."""
_MARKET_RULES = frozenset({RuleCode.OFF_TICK, RuleCode.OUTSIDE_BAND, RuleCode.OUTSIDE_SESSION})
"""Rules that encode BIST market microstructure: off for data from other markets."""

QUARANTINE_COLUMNS = ("rule", "reason", "input_row")
"""Columns the quarantine adds to the input's own columns."""

DAY_NS = 86_400 * 10**9
_NULL_SYMBOL = "<null>"
_P = "_v_"  # prefix of internal helper columns


# -- configuration ----------------------------------------------------------------------------


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
        rules = overrides.pop("rules", frozenset(RuleCode)) - _MARKET_RULES
        return cls(calendar=calendar, rules=rules, **overrides)

    def without(self, *rules: RuleCode | str) -> ValidationConfig:
        """A copy with ``rules`` switched off."""
        return self.model_copy(update={"rules": self.rules - {RuleCode(r) for r in rules}})

    def enabled(self, rule: RuleCode) -> bool:
        return rule in _ALWAYS_ON or rule in self.rules

    def summary(self) -> dict[str, Any]:
        """JSON-friendly settings for the report."""
        return {
            "rules": [r.value for r in _PRECEDENCE if self.enabled(r)],
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


ChunkSink = Callable[[pl.DataFrame, pl.DataFrame], None]
"""Receives ``(clean, quarantine)`` of each validated chunk (streaming instead of holding)."""


@dataclass(frozen=True)
class ValidationResult:
    """Clean rows, quarantined rows and the quality report of one validation run.

    ``clean`` holds schema-conformant rows (schema columns only) that passed every rule;
    ``quarantine`` holds every rejected row with its original columns plus ``rule``, ``reason``
    and ``input_row`` (0-based position in the input). Rows in = clean + quarantined. When a
    sink received the chunks, both frames here are empty and ``streamed`` is True.
    """

    clean: pl.DataFrame
    quarantine: pl.DataFrame
    report: QualityReport
    streamed: bool = False


class ParquetSink:
    """A ``ChunkSink`` writing each chunk's clean and quarantined rows as Parquet part files.

    Files go to ``directory/clean/part-NNNNN.parquet`` and ``directory/quarantine/...``; empty
    parts are not written.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.parts = 0
        self.files: list[Path] = []

    def __call__(self, clean: pl.DataFrame, quarantine: pl.DataFrame) -> None:
        for name, frame in (("clean", clean), ("quarantine", quarantine)):
            if frame.height:
                target = self.directory / name / f"part-{self.parts:05d}.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".parquet.tmp")
                frame.write_parquet(tmp)
                os.replace(tmp, target)
                self.files.append(target)
        self.parts += 1


# -- public entry points ----------------------------------------------------------------------


def validate(
    frame: pl.DataFrame | pl.LazyFrame,
    kind: DataKind | str,
    config: ValidationConfig | None = None,
    *,
    corporate_actions: pl.DataFrame | None = None,
    source_label: str = "",
    synthetic: bool = False,
) -> ValidationResult:
    """Validate an in-memory frame of ``kind`` (trades, quotes, bars or corporate actions).

    ``corporate_actions`` (lake schema) tells the band rule where the exchange adjusted the base
    price: on a symbol's ex-date the band is not checked (counted unchecked), nor the daily-bar
    return across it. Raises ``ValueError`` when a required column is missing or has a type that
    cannot hold the field at all.
    """
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    run = _Run(DataKind(kind), config or ValidationConfig(), corporate_actions, sink=None)
    try:
        run.feed(frame)
        return run.finish(source_label, synthetic)
    finally:
        run.close()


def validate_stream(
    chunks: Iterable[pl.DataFrame],
    kind: DataKind | str,
    config: ValidationConfig | None = None,
    *,
    sink: ChunkSink | None = None,
    corporate_actions: pl.DataFrame | None = None,
    source_label: str = "",
    synthetic: bool = False,
) -> ValidationResult:
    """Validate chunks that each hold complete symbol-days, chronological per symbol.

    This is the way to validate the lake partition by partition (a partition is a symbol-day).
    A symbol-day split across chunks is still validated, but duplicates and ordering are then
    only checked within each piece. With a ``sink``, results go to it chunk by chunk and memory
    stays bounded by the chunk size; daily bars are small and validated in one piece at the end.
    """
    run = _Run(DataKind(kind), config or ValidationConfig(), corporate_actions, sink=sink)
    try:
        for chunk in chunks:
            run.feed(chunk)
        return run.finish(source_label, synthetic)
    finally:
        run.close()


def validate_parquet(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    kind: DataKind | str,
    config: ValidationConfig | None = None,
    *,
    sink: ChunkSink | None = None,
    corporate_actions: pl.DataFrame | None = None,
    source_label: str | None = None,
    synthetic: bool = False,
    batch_rows: int = 1_000_000,
) -> ValidationResult:
    """Validate Parquet files larger than memory in one sequential read.

    The files are read in batches of ``batch_rows``; rows wait in a buffer until their
    symbol-day is complete, which the Parquet row-group statistics (symbol and ts min/max) prove
    once no unread row group can hold that symbol-day. Files sorted by symbol or by time (as the
    lake and most vendors write them) therefore stream with a buffer of about one batch; files
    without statistics are held until the end. Give a ``sink`` to keep memory bounded.
    """
    kind = DataKind(kind)
    paths = _expand_paths(source)
    run = _Run(kind, config or ValidationConfig(), corporate_actions, sink=sink)
    try:
        return _feed_parquet(run, paths, kind, source_label, synthetic, batch_rows)
    finally:
        run.close()


def _feed_parquet(
    run: _Run,
    paths: list[str],
    kind: DataKind,
    source_label: str | None,
    synthetic: bool,
    batch_rows: int,
) -> ValidationResult:
    lf = pl.scan_parquet(paths)
    available = lf.collect_schema().names()
    _check_columns(available, kind)
    label = source_label if source_label is not None else ", ".join(str(p) for p in paths)
    if kind is DataKind.CORPORATE_ACTIONS:
        run.feed(lf.collect())
        return run.finish(label, synthetic)
    planner = _StatsPlanner(paths, run)
    for batch in lf.collect_batches(chunk_size=batch_rows):
        for ready in planner.add(batch):
            run.feed(ready)
    for ready in planner.flush():
        run.feed(ready)
    return run.finish(label, synthetic)


# -- helpers: columns, casting ----------------------------------------------------------------


@functools.cache
def _schema(kind: DataKind) -> pl.Schema:
    """The lake schema of ``kind``, built once (callers must not modify it)."""
    return polars_schema(kind)


def _expand_paths(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    paths: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.rglob("*.parquet"))
            if not found:
                raise ValueError(f"no Parquet files under {p}")
            paths += [str(f) for f in found]
        elif p.exists():
            paths.append(str(p))
        else:
            raise ValueError(f"no such file: {p}")
    if not paths:
        raise ValueError("no Parquet files to validate")
    return paths


def _check_columns(columns: Sequence[str], kind: DataKind, reserved: bool = True) -> None:
    """The whole-input SCHEMA check: every schema column present, no name clash with ours."""
    missing = [c for c in _schema(kind).names() if c not in columns]
    if missing:
        raise ValueError(f"SCHEMA: {kind} data is missing required column(s): {', '.join(missing)}")
    clash = [c for c in columns if c in QUARANTINE_COLUMNS or c.startswith(_P)]
    if clash and reserved:
        raise ValueError(f"SCHEMA: input column name(s) reserved by validation: {', '.join(clash)}")


_CASTABLE = (
    pl.Boolean,
    pl.String,
    pl.Null,
    pl.Date,
    pl.Datetime,
    pl.Categorical,
    pl.Enum,
    pl.Decimal,
)


def _castable(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or isinstance(dtype, _CASTABLE) or dtype in _CASTABLE


def _as_utc(series: pl.Series) -> pl.Series:
    """Any timestamp-like column as Datetime(ns, UTC); unreadable values become null.

    Naive timestamps are taken as UTC (as ``TradingCalendar.phase_at`` does); integers are
    nanoseconds since the epoch; strings are parsed with polars' format inference.
    """
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        out = series
    elif dtype == pl.String:
        try:
            out = series.str.to_datetime(time_unit="ns", strict=False)
        except pl.exceptions.PolarsError:
            out = pl.Series(series.name, [None] * series.len(), dtype=pl.Datetime("ns"))
    elif dtype == pl.Date:
        out = series.cast(pl.Datetime("ns"))
    else:
        out = series.cast(pl.Int64, strict=False).cast(pl.Datetime("ns"))
    assert isinstance(out.dtype, pl.Datetime)
    if out.dtype.time_zone is None:
        out = out.dt.replace_time_zone("UTC")
    elif out.dtype.time_zone != "UTC":
        out = out.dt.convert_time_zone("UTC")
    return out.dt.cast_time_unit("ns").alias(series.name)


def _cast(frame: pl.DataFrame, kind: DataKind) -> tuple[pl.DataFrame, list[str]]:
    """Cast schema columns to the lake types, keeping originals of the columns that changed.

    Returns the frame with typed schema columns, ``_v_schema_<col>`` flags for values that could
    not be read, ``_v_orig_<col>`` with the original values (for the quarantine), and the list of
    columns that needed a cast. Data already in the lake types passes through untouched.
    """
    _check_columns(frame.columns, kind, reserved=False)
    schema = _schema(kind)
    bad_types = [
        f"{c} ({frame.schema[c]})" for c in schema.names() if not _castable(frame.schema[c])
    ]
    if bad_types:
        raise ValueError(f"SCHEMA: column(s) of a type that cannot be read: {', '.join(bad_types)}")
    cast_columns = [c for c, target in schema.items() if frame.schema[c] != target]
    if not cast_columns:
        return frame, []
    typed: list[pl.Series] = []
    flags: list[pl.Expr] = []
    for name in cast_columns:
        target, source = schema[name], frame.schema[name]
        col = frame[name]
        if isinstance(target, pl.Datetime):
            typed.append(_as_utc(col))
        elif target.is_integer() and source.is_float():
            whole = pl.col(name).is_finite() & (pl.col(name) == pl.col(name).floor())
            typed.append(
                frame.select(pl.when(whole).then(pl.col(name)).cast(target, strict=False))
                .to_series()
                .alias(name)
            )
        else:
            typed.append(col.cast(target, strict=False))
        orig = pl.col(f"{_P}orig_{name}")
        if target.is_integer() and source.is_float():
            # NaN/inf are NULL findings; a fraction cannot be read as an integer.
            flag = orig.is_finite() & (orig != orig.floor())
        else:
            flag = orig.is_not_null() & pl.col(name).is_null()
        flags.append(flag.fill_null(False).alias(f"{_P}schema_{name}"))
    out = frame.with_columns([frame[c].alias(f"{_P}orig_{c}") for c in cast_columns] + typed)
    return out.with_columns(flags), cast_columns


# -- helpers: calendar ------------------------------------------------------------------------


@functools.cache
def _xcal(name: str) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(name)


def _tod_ns(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 10**9 + t.microsecond * 1000


def _merge(windows: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[list[int]] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


@dataclass(frozen=True)
class _DayFacts:
    in_range: bool
    is_session: bool
    previous_session: date | None
    trades: tuple[tuple[int, int], ...] = ()
    """Windows (ns since local midnight) in which trades may print."""
    quotes: tuple[tuple[int, int], ...] = ()
    """Windows in which orders are accepted (quotes may update)."""
    continuous: tuple[tuple[int, int], ...] = ()
    """Continuous trading, where intraday bars are expected (GAP)."""


class _Calendar:
    """Day facts the rules need: sessions from exchange_calendars, phases from BIST's timetable."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._x = _xcal(name)
        self.tz = ZoneInfo(str(self._x.tz))
        self.first_day: date = self._x.first_session.date()
        self.last_day: date = self._x.last_session.date()
        sessions = [d.date() for d in self._x.sessions]
        self._sessions = sessions
        self._session_set = frozenset(sessions)
        self._previous = dict(zip(sessions[1:], sessions[:-1], strict=True))
        self._bist = TradingCalendar(name) if name == "XIST" else None
        self._facts: dict[date, _DayFacts] = {}
        self._regular_hours = {} if self._bist is not None else self._hours()

    def _hours(self) -> dict[date, tuple[tuple[int, int], ...]]:
        """Regular trading hours of every session (ns since local midnight), computed once."""
        schedule = self._x.schedule
        local = {
            c: pd.to_datetime(schedule[c]).dt.tz_convert(self.tz).dt.tz_localize(None)
            for c in ("open", "break_start", "break_end", "close")
        }
        midnight = pd.DatetimeIndex(schedule.index).as_unit("ns").asi8
        tods = {
            c: v.to_numpy().astype("datetime64[ns]").astype(np.int64) - midnight
            for c, v in local.items()
        }
        has_break = local["break_start"].notna().to_numpy() & local["break_end"].notna().to_numpy()
        out: dict[date, tuple[tuple[int, int], ...]] = {}
        for i, day in enumerate(self._sessions):
            o, c = int(tods["open"][i]), int(tods["close"][i])
            if has_break[i]:
                out[day] = ((o, int(tods["break_start"][i])), (int(tods["break_end"][i]), c))
            else:
                out[day] = ((o, c),)
        return out

    def sessions_between(self, start: date, end: date) -> list[date]:
        lo = bisect.bisect_left(self._sessions, max(start, self.first_day))
        hi = bisect.bisect_right(self._sessions, min(end, self.last_day))
        return self._sessions[lo:hi]

    def facts(self, day: date) -> _DayFacts:
        cached = self._facts.get(day)
        if cached is None:
            cached = self._facts[day] = self._compute(day)
        return cached

    def _compute(self, day: date) -> _DayFacts:
        if not self.first_day <= day <= self.last_day:
            return _DayFacts(in_range=False, is_session=False, previous_session=None)
        if day not in self._session_set:
            return _DayFacts(in_range=True, is_session=False, previous_session=None)
        previous = self._previous.get(day)
        if self._bist is not None:
            info = self._bist.session(day)
            assert info is not None
            windows = info.windows
            trades = _merge(
                (_tod_ns(w.start), _tod_ns(w.end)) for w in windows if w.phase.trades_allowed
            )
            quotes = _merge(
                (_tod_ns(w.start), _tod_ns(w.end)) for w in windows if w.phase.accepts_orders
            )
            cont = _merge(
                (_tod_ns(w.start), _tod_ns(w.end))
                for w in windows
                if w.phase is SessionPhase.CONTINUOUS
            )
            return _DayFacts(True, True, previous, trades, quotes, cont)
        regular = self._regular_hours[day]
        return _DayFacts(True, True, previous, regular, regular, regular)


@functools.cache
def _calendar(name: str) -> _Calendar:
    """One calendar per name per process: its day facts are pure functions of the day."""
    return _Calendar(name)


@functools.lru_cache(maxsize=256)
def _fixed_offset_ns(tz_key: str, first_day: int, last_day: int) -> int | None:
    """The zone's UTC offset if it is the same over the whole range of days, else None.

    Istanbul has been UTC+3 all year since September 2016: local days and times are then plain
    integer arithmetic, which is much cheaper than a per-row time-zone conversion.
    """
    tz = ZoneInfo(tz_key)
    offsets = {
        datetime.fromtimestamp(d * 86_400, tz).utcoffset()
        for d in range(first_day - 1, last_day + 2)
    }
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    assert offset is not None
    return int(offset.total_seconds()) * 10**9


def _local_clock(
    ts: pl.Series, tz: ZoneInfo | None, scratch: _Scratch | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local day (days since 1970-01-01), time of day (ns) and the UTC epoch (ns) of non-null
    UTC timestamps.

    Uses integer arithmetic when the zone's offset is fixed over the data (Istanbul since
    2016), and polars' time-zone conversion otherwise.
    """
    epoch = _numpy(ts.dt.epoch("ns"), scratch, "epoch")
    if epoch.size == 0:
        return epoch.copy(), epoch.copy(), epoch
    offset = (
        0
        if tz is None
        else _fixed_offset_ns(tz.key, int(epoch.min()) // DAY_NS, int(epoch.max()) // DAY_NS)
    )
    if offset is not None:
        n = epoch.shape[0]
        if scratch is None:
            return (*_kernels.local_clock(epoch, offset), epoch)
        day, tod = scratch.get("day", n, np.int64), scratch.get("tod", n, np.int64)
        return (*_kernels.local_clock(epoch, offset, day, tod), epoch)
    assert tz is not None
    local = ts.dt.convert_time_zone(tz.key).dt.replace_time_zone(None).dt.epoch("ns")
    local = local.to_numpy()
    day = local // DAY_NS
    return day, local - day * DAY_NS, epoch


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + length)`` for each pair, without a Python loop."""
    total = int(lengths.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def _to_dates(days: np.ndarray) -> list[date]:
    return days.astype("datetime64[D]").tolist()


# -- helpers: grouping ----------------------------------------------------------------------------


@dataclass
class _Groups:
    """Rows arranged by symbol-day without moving the frame.

    ``order`` maps a *sorted* position to the input position (None when the input is already
    grouped: symbol-days contiguous and chronological per symbol). Stages work on numpy arrays
    in sorted order; results are mapped back, so output keeps the input order.
    """

    order: np.ndarray | None
    gid: np.ndarray
    starts: np.ndarray
    symbols: list[str]
    day_ints: np.ndarray
    rows: np.ndarray

    @property
    def n(self) -> int:
        return len(self.symbols)

    @functools.cached_property
    def days(self) -> list[date]:
        return _to_dates(self.day_ints)

    @functools.cached_property
    def symbol_start(self) -> np.ndarray:
        """True for the first group of each symbol (groups of a symbol are adjacent)."""
        s = np.array(self.symbols, dtype=object)
        return np.r_[True, s[1:] != s[:-1]] if self.n else np.zeros(0, dtype=bool)

    @functools.cached_property
    def symbol_id(self) -> np.ndarray:
        """A running number per symbol, per group."""
        return np.cumsum(self.symbol_start) - 1

    def sort(self, values: np.ndarray) -> np.ndarray:
        return values if self.order is None else values[self.order]

    def to_input(self, positions: np.ndarray) -> np.ndarray:
        return positions if self.order is None else self.order[positions]


def _group(symbol: pl.Series, day: np.ndarray, scratch: _Scratch | None = None) -> _Groups:
    n = len(day)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Groups(None, empty, empty, [], empty, empty)
    runs = symbol.rle()
    gid, starts, run_of = _kernels.symbol_day_runs(
        runs.struct.field("len").cast(pl.Int64).to_numpy(),
        day,
        None if scratch is None else scratch.get("gid", n, np.int64),
    )
    first_symbols = runs.struct.field("value").gather(run_of)
    new_symbol = (first_symbols != first_symbols.shift(1)).fill_null(True).to_numpy()
    runs = first_symbols.filter(pl.Series(new_symbol))
    first_days = day[starts]
    backwards = ~new_symbol[1:] & (first_days[1:] <= first_days[:-1])
    if runs.n_unique() == runs.len() and not backwards.any():
        rows = np.diff(np.r_[starts, n])
        return _Groups(None, gid, starts, first_symbols.to_list(), first_days, rows)
    # Interleaved input (e.g. sorted by time across symbols): a stable order by (symbol, day)
    # from two radix sorts on small integer keys; the frame itself is never reordered.
    uniques = symbol.unique().sort()
    codes = symbol.cast(pl.Enum(uniques.to_list())).to_physical().to_numpy().astype(np.int64)
    offset = day - day.min()
    if uniques.len() < 2**16 and offset.max() < 2**16:
        by_day = np.argsort(offset.astype(np.uint16), kind="stable")
        order = by_day[np.argsort(codes.astype(np.uint16)[by_day], kind="stable")]
    else:
        order = (
            pl.DataFrame({"c": codes, "d": day})
            .with_row_index("i")
            .sort("c", "d", "i")["i"]
            .to_numpy()
            .astype(np.int64)
        )
    c, d = codes[order], day[order]
    change = np.r_[True, (c[1:] != c[:-1]) | (d[1:] != d[:-1])]
    starts = np.flatnonzero(change)
    names = uniques.to_list()
    return _Groups(
        order,
        np.cumsum(change) - 1,
        starts,
        [names[i] for i in c[starts].tolist()],
        d[starts],
        np.diff(np.r_[starts, n]),
    )


class _Scratch:
    """Output arrays reused from chunk to chunk.

    A fresh array of several megabytes costs a page fault per 4 KiB on first write, which
    measured as a large share of the compiled passes' time; a chunk's arrays live until the
    chunk is concluded, so the run keeps two sets (one chunk prepared while the previous one
    is concluded). Nothing taken from here may outlive its chunk.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, dtype: type) -> np.ndarray:
        have = self._arrays.get(name)
        if have is None or have.shape[0] < n or have.dtype != dtype:
            have = self._arrays[name] = np.empty(n, dtype)
        return have[:n]


@dataclass(frozen=True)
class _PerGroup:
    """A row flag that is the same for every row of a symbol-day, stored per symbol-day."""

    values: np.ndarray
    gid: np.ndarray

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.values[self.gid[rows]]


def _numpy(series: pl.Series, scratch: _Scratch | None, name: str) -> np.ndarray:
    """``series.to_numpy()``; a numeric series without nulls held in several chunks (as read
    from Parquet) is copied chunk by chunk into a reused buffer rather than a fresh array."""
    if (
        scratch is None
        or series.n_chunks() == 1
        or series.null_count()
        or not series.dtype.is_numeric()
    ):
        return series.to_numpy()
    chunks = [c.to_numpy() for c in series.get_chunks()]
    out = scratch.get(name, series.len(), chunks[0].dtype.type)
    at = 0
    for c in chunks:
        out[at : at + c.shape[0]] = c
        at += c.shape[0]
    return out


class _Columns:
    """Numpy views of frame columns in sorted order (nulls filled: such rows are already dead)."""

    def __init__(
        self, frame: pl.DataFrame, groups: _Groups, scratch: _Scratch | None = None
    ) -> None:
        self.frame = frame
        self.groups = groups
        self.scratch = scratch
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        got = self._cache.get(name)
        if got is None:
            s = self.frame[name]
            if isinstance(s.dtype, pl.Datetime):
                s = s.dt.epoch("ns")
            if s.null_count():
                s = s.fill_null(np.nan if s.dtype.is_float() else 0)
            got = self._cache[name] = self.groups.sort(_numpy(s, self.scratch, f"col_{name}"))
        return got

    def put(self, name: str, values: np.ndarray) -> None:
        self._cache[name] = values


# -- helpers: tick grid -------------------------------------------------------------------------


def _schedule_arrays(schedule: TickSchedule) -> tuple[np.ndarray, np.ndarray]:
    lowers = np.array([to_units(t.lower) for t in schedule.tiers], dtype=np.int64)
    ticks = np.array([to_units(t.tick) for t in schedule.tiers], dtype=np.int64)
    return lowers, ticks


def _tier(lowers: np.ndarray, units: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(lowers, units, side="right") - 1, 0, None)


@functools.lru_cache(maxsize=16)
def _table_arrays(table: TickSizeTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every schedule's tier lower bounds and ticks (price units), concatenated, and where each
    schedule's tiers start (one extra entry: the end)."""
    parts = [_schedule_arrays(s) for s in table.schedules]
    sizes = [lowers.shape[0] for lowers, _ in parts]
    start = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    lowers = np.concatenate([lo for lo, _ in parts]).astype(np.int64)
    ticks = np.concatenate([t for _, t in parts]).astype(np.int64)
    return start, lowers, ticks


def _off_tick(
    prices: np.ndarray,
    groups: _Groups,
    schedule_of_group: np.ndarray,
    table: TickSizeTable,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """True where a price is not exactly on the grid in force on its day.

    Exact integer check: the price in units of 1/10,000 TRY must be a whole number (within
    float noise of 1e-6 units) and a multiple of the tick above the tier's lower bound, the
    tier being the one that holds the price in the schedule of its day. Symbol-days with no
    schedule in force are not flagged (they are counted unchecked). One compiled pass.
    """
    start, lowers, ticks = _table_arrays(table)
    return _kernels.off_tick(
        prices,
        groups.gid,
        np.ascontiguousarray(schedule_of_group, dtype=np.int64),
        start,
        lowers,
        ticks,
        float(PRICE_SCALE),
        out,
    )


def _tick_sizes(prices: np.ndarray, schedules: np.ndarray, table: TickSizeTable) -> np.ndarray:
    out = np.full(prices.shape, np.nan)
    with np.errstate(invalid="ignore"):
        units = np.rint(np.nan_to_num(prices * PRICE_SCALE, nan=0.0, posinf=0.0, neginf=0.0))
    for s in np.unique(schedules[schedules >= 0]).tolist():
        lowers, ticks = _schedule_arrays(table.schedules[s])
        sel = schedules == s
        out[sel] = ticks[_tier(lowers, units[sel].astype(np.int64))] / PRICE_SCALE
    return out


# -- helpers: outlier reference -----------------------------------------------------------------


def median_of_five(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
    e: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Element-wise median of five arrays with ten min/max operations (no sort, no loop).

    f = the larger of min(a, b) and min(c, d); g = the smaller of max(a, b) and max(c, d);
    the median of the five is the median of (e, f, g). Inputs are left untouched.
    """
    if out is None:
        out = np.empty(np.broadcast(a, b, c, d, e).shape)
    t1, t2 = np.empty_like(out), np.empty_like(out)
    np.minimum(a, b, out=t1)
    np.minimum(c, d, out=t2)
    np.maximum(t1, t2, out=out)  # f
    np.maximum(a, b, out=t1)
    np.maximum(c, d, out=t2)
    np.minimum(t1, t2, out=t1)  # g
    np.maximum(e, out, out=t2)  # max(e, f)
    np.minimum(t2, t1, out=t2)  # min(max(e, f), g)
    np.minimum(e, out, out=out)  # min(e, f)
    np.maximum(out, t2, out=out)
    return out


def _forward_reference(p: np.ndarray, rows: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Median of up to five *next* prices of each row's scope (``ends``: scope end, exclusive).

    NaN where a row is the last of its scope. Padding as in ``_reference_prices``.
    """
    pads = np.array([-np.inf, np.inf, -np.inf, np.inf, -np.inf])
    window = np.empty((rows.size, 5))
    for k in range(1, 6):
        at = rows + k
        window[:, k - 1] = np.where(at < ends, p[np.minimum(at, p.shape[0] - 1)], pads[k - 1])
    ref = median_of_five(*window.T) if rows.size else np.zeros(0)
    ref[rows + 1 >= ends] = np.nan
    return ref


def _reference_prices(p: np.ndarray, starts: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Median of up to five previous prices of the same scope (NaN for a scope's first row).

    Near the start of a scope, where fewer than five earlier prices exist, the missing ones
    are padded with alternating -inf/+inf so that the median is that of the prices that exist
    (the lower middle for an even count).
    """
    n = p.shape[0]
    ref = np.full(n, np.nan)
    if n > 5:
        median_of_five(p[4:-1], p[3:-2], p[2:-3], p[1:-4], p[:-5], out=ref[5:])
    # Rows with fewer than five earlier prices in their scope: a small padded median.
    head = np.flatnonzero((pos >= 1) & (pos <= 4))
    if head.size:
        pads = np.array([-np.inf, np.inf, -np.inf, np.inf, -np.inf])
        window = np.empty((head.size, 5))
        for k in range(1, 6):
            window[:, k - 1] = np.where(pos[head] >= k, p[np.maximum(head - k, 0)], pads[k - 1])
        ref[head] = median_of_five(*window.T)
    ref[starts] = np.nan
    return ref


# -- the run --------------------------------------------------------------------------------------

_STALE_VALUES: dict[DataKind, tuple[str, ...]] = {
    DataKind.TRADES: ("price", "size", "side"),
    DataKind.QUOTES: ("bid_price", "bid_size", "ask_price", "ask_size"),
    DataKind.BARS: ("open", "high", "low", "close", "volume"),
}
_TICK_COLUMNS: dict[DataKind, tuple[str, ...]] = {
    DataKind.TRADES: ("price",),
    DataKind.QUOTES: ("bid_price", "ask_price"),
    DataKind.BARS: ("open", "high", "low", "close"),
}
_CODE = {rule: i + 1 for i, rule in enumerate(_PRECEDENCE)}
_PIPELINE_ROWS = 200_000
"""Chunks of at least this many rows are prepared on a worker thread (see ``_Run._start``)."""
_ROW_LEVEL = 255
"""Placeholder code of a row-level rejection whose exact rule is resolved on the rejects only."""


@dataclass
class _Check:
    """One way to break a rule: a mask (True = broken) and the reason text for such rows.

    ``flag`` names a numpy-computed flag (tick grid, calendar): the mask then reads that column,
    which exists only on the rejected rows; other checks are polars expressions over any row.
    """

    rule: RuleCode
    mask: pl.Expr
    reason: pl.Expr
    flag: str | None = None
    null_of: str | None = None
    """Set when the check is "column is null": it cannot fire on a column without nulls."""
    fast: Callable[[_Columns], np.ndarray] | None = None
    """The same mask from numpy columns in sorted order, exact on rows without nulls (a row
    with a null is caught by the null check of that column anyway)."""
    domain: tuple[str, tuple[Any, ...]] | None = None
    """(column, allowed values) when the check is "value not among these" on a text column:
    only rows that differ from the first (most common) value need the membership test."""


@dataclass
class _Prepared:
    """A chunk between its independent stages and the ordered ones (see ``_Run._prepare``)."""

    raw: pl.DataFrame
    first_row: int | None
    frame: pl.DataFrame
    cast_columns: list[str]
    unplaced: pl.DataFrame | None
    day: np.ndarray
    tod: np.ndarray
    groups: _Groups
    cols: _Columns
    facts: list[_DayFacts] | None
    code: np.ndarray
    alive: np.ndarray
    flags: dict[str, np.ndarray | _PerGroup]
    unchecked: dict[RuleCode, np.ndarray]
    findings: list[_Finding]


@dataclass
class _Finding:
    """Rows a stage rejected: sorted positions, rule codes and reasons."""

    positions: np.ndarray
    codes: np.ndarray
    reasons: pl.Series


def _not_finite(name: str, cols: _Columns) -> np.ndarray:
    return ~np.isfinite(cols(name))


def _not_positive(name: str, cols: _Columns) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return cols(name) <= 0


@functools.lru_cache(maxsize=16)
def _calm_bounds(z: float, min_scale: float) -> np.ndarray:
    """Ratio bounds of the outlier screen's four levels, c = 0, F/8, F/4, F/2 (see
    ``_Run._outliers`` and ``validate_kernels.outlier_screen``): rows (inner low, inner high,
    outer low, outer high).

    Relative margins of 1e-9 on every bound, 1e-6 on the outer ones and 1e-12 on the median
    keep the certificate on the safe side of the rounding of the exact path's logarithms; an
    interval that cannot hold is (inf, -inf), which holds nothing.
    """
    f = z * min_scale

    def within(c: float) -> tuple[float, float]:
        if c <= 0:
            return math.inf, -math.inf
        return math.exp(-c) * (1 + 1e-9), math.exp(c) * (1 - 1e-9)

    rows = []
    for c in (0.0, f / 8, f / 4, f / 2):
        inner = (1.0, 1.0) if c == 0.0 else within(c)  # level 0 counts q == 1 exactly
        rows.append([*inner, *within(f * (1 - 1e-6) - c - 1e-12)])
    return np.array(rows)


def _crossed(cols: _Columns) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return cols("bid_price") >= cols("ask_price")


def _fmt(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).fill_null("null")


def _first_reason(checks: Sequence[_Check]) -> tuple[pl.Expr, pl.Expr]:
    """When-chains giving the first broken rule and its reason (evaluated on rejected rows)."""
    rule: Any = pl
    reason: Any = pl
    for c in checks:
        rule = rule.when(c.mask.fill_null(False)).then(pl.lit(c.rule.value))
        reason = reason.when(c.mask.fill_null(False)).then(c.reason)
    if not checks:
        return pl.lit(None, pl.String), pl.lit(None, pl.String)
    return rule.otherwise(pl.lit(None, pl.String)), reason.otherwise(pl.lit(None, pl.String))


def _any(checks: Sequence[_Check]) -> pl.Expr:
    expr = pl.lit(False)
    for c in checks:
        expr = expr | c.mask.fill_null(False)
    return expr


def _hms(tod: pl.Expr) -> pl.Expr:
    """ns since midnight as HH:MM:SS.fff"""
    midnight = pl.lit(datetime(2000, 1, 1)).cast(pl.Datetime("ns"))
    return (midnight + pl.duration(nanoseconds=tod)).dt.strftime("%H:%M:%S%.3f")


def _ts_fmt(expr: pl.Expr) -> pl.Expr:
    """A UTC timestamp as text, with as many fractional digits as it needs."""
    text = expr.dt.strftime("%Y-%m-%d %H:%M:%S%.9f").str.replace(r"\.?0+$", "")
    return (text + pl.lit(" UTC")).fill_null("null")


def _ts_text(values: np.ndarray) -> pl.Series:
    ts = pl.Series(values, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
    return ts.to_frame("t").select(_ts_fmt(pl.col("t"))).to_series()


def _windows_text(windows: tuple[tuple[int, int], ...]) -> str:
    if not windows:
        return "none (closed)"

    def hm(ns: int) -> str:
        m = ns // (60 * 10**9)
        return f"{m // 60:02d}:{m % 60:02d}"

    return ", ".join(f"{hm(lo)}-{hm(hi)}" for lo, hi in windows)


class _Run:
    """One validation run: the chunk pipeline, carried band state, outputs and statistics."""

    def __init__(
        self,
        kind: DataKind,
        config: ValidationConfig,
        corporate_actions: pl.DataFrame | None,
        sink: ChunkSink | None,
    ) -> None:
        self.kind = kind
        self.cfg = config
        self.sink = sink
        self.calendar = _calendar(config.calendar) if config.calendar else None
        self.tz = self.calendar.tz if self.calendar else None
        self.band = PriceBand(config.band_rules, config.tick_table)
        self._regimes: dict[date, tuple[int, float] | None] = {}
        self._checks: dict[tuple[tuple[str, ...], bool], list[_Check]] = {}
        self._reasons: dict[tuple[tuple[str, ...], bool], tuple[pl.Expr, pl.Expr]] = {}
        self.rows_seen = 0
        self.clean_parts: list[pl.DataFrame] = []
        self.quarantine_parts: list[pl.DataFrame] = []
        self.stats: list[pl.DataFrame] = []
        self.samples: dict[str, list[dict[str, Any]]] = {}
        self.last_close: dict[str, tuple[date, float | None]] = {}
        """Per symbol: the last day with a base-eligible price and that price (for the band)."""
        self.interval_ns: int | None = (
            int(config.bar_interval.total_seconds() * 10**9) if config.bar_interval else None
        )
        self.daily_buffer: list[pl.DataFrame] = []
        self.ex_dates: frozenset[tuple[str, date]] = frozenset()
        if corporate_actions is not None and corporate_actions.height:
            ca = corporate_actions.select(
                pl.col("symbol").cast(pl.String), pl.col("ex_date").cast(pl.Date)
            ).drop_nulls()
            self.ex_dates = frozenset(ca.iter_rows())
        self.input_columns: list[str] | None = None
        self._quarantine_schema: pl.Schema | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[_Prepared] | None = None
        self._scratch = (_Scratch(), _Scratch())
        self._chunks = 0

    # -- feeding ------------------------------------------------------------------------------

    @property
    def daily(self) -> bool:
        """Daily (or longer) bars: STALE and OUTLIER then look across days, per symbol."""
        return (
            self.kind is DataKind.BARS
            and self.interval_ns is not None
            and self.interval_ns >= DAY_NS
        )

    def feed(self, raw: pl.DataFrame) -> None:
        """Validate one chunk of complete symbol-days (raw input columns)."""
        if self.input_columns is None:
            _check_columns(raw.columns, self.kind)
            self.input_columns = list(raw.columns)
        elif raw.columns != self.input_columns:
            if set(raw.columns) != set(self.input_columns):
                raise ValueError(
                    f"SCHEMA: chunk columns {raw.columns} differ from the first chunk's "
                    f"{self.input_columns}"
                )
            raw = raw.select(self.input_columns)
        if self._quarantine_schema is None:
            template = raw.head(0).select(
                *self.input_columns,
                pl.lit(None, pl.String).alias("rule"),
                pl.lit(None, pl.String).alias("reason"),
                pl.lit(None, pl.Int64).alias("input_row"),
            )
            self._quarantine_schema = template.schema
        first_row = self.rows_seen
        self.rows_seen += raw.height
        if self.kind is DataKind.BARS and self.interval_ns is None:
            self._infer_interval(raw)
        if self.kind is DataKind.CORPORATE_ACTIONS or self.daily:
            raw = raw.with_columns(
                pl.int_range(first_row, first_row + raw.height, dtype=pl.Int64).alias("input_row")
            )
            if self.daily:
                self.daily_buffer.append(raw)  # daily bars are small: validated whole at the end
            else:
                self._emit(*self._corporate_actions(raw))
            return
        # Intraday chunks get no input_row column: a column added to a frame read in several
        # chunks makes polars realign every column in every later select. The positions are
        # attached to the rejected rows only.
        job = self._start(raw, first_row)
        previous, self._pending = self._pending, job
        if previous is not None:
            self._emit(*self._conclude(previous.result()))

    def _start(self, raw: pl.DataFrame, first_row: int) -> Future[_Prepared]:
        """Prepare a chunk: on the worker thread when it is large (so that it overlaps the
        previous chunk's conclusion and the reading of the next), else right here."""
        scratch = self._next_scratch()
        if raw.height >= _PIPELINE_ROWS:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="validate")
            return self._executor.submit(self._prepare, raw, first_row, scratch)
        done: Future[_Prepared] = Future()
        done.set_result(self._prepare(raw, first_row, scratch))
        return done

    def close(self) -> None:
        """Stop the worker thread (idempotent)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def finish(self, source_label: str, synthetic: bool) -> ValidationResult:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._emit(*self._conclude(pending.result()))
        self.close()
        if self.daily_buffer:
            frames, self.daily_buffer = self.daily_buffer, []
            self._emit(*self._chunk(pl.concat(frames, how="vertical_relaxed")))
        report = self._report(source_label, synthetic)
        if self.sink is not None:
            return ValidationResult(
                self._empty_clean(), self._empty_quarantine(), report, streamed=True
            )
        clean = pl.concat(self.clean_parts) if self.clean_parts else self._empty_clean()
        quarantine = (
            pl.concat(self.quarantine_parts, how="vertical_relaxed").sort("input_row")
            if self.quarantine_parts
            else self._empty_quarantine()
        )
        return ValidationResult(clean, quarantine, report)

    def _empty_clean(self) -> pl.DataFrame:
        return pl.DataFrame(schema=_schema(self.kind))

    def _empty_quarantine(self) -> pl.DataFrame:
        """No rejected rows, with the columns the quarantine has for this input."""
        if self._quarantine_schema is not None:
            return pl.DataFrame(schema=self._quarantine_schema)
        schema = dict(_schema(self.kind))
        schema.update({"rule": pl.String, "reason": pl.String, "input_row": pl.Int64})
        return pl.DataFrame(schema=schema)

    def _infer_interval(self, raw: pl.DataFrame) -> None:
        """Bar length = median of ts_end - ts over the first chunk with readable bars."""
        if raw.height == 0:
            return
        span = _as_utc(raw["ts_end"]).dt.epoch("ns") - _as_utc(raw["ts"]).dt.epoch("ns")
        d = span.filter(span > 0).median()
        if d is not None:
            self.interval_ns = int(d)  # type: ignore[arg-type]

    def _emit(self, clean: pl.DataFrame, quarantine: pl.DataFrame, stats: pl.DataFrame) -> None:
        self.stats.append(stats)
        self._sample(quarantine)
        if self.sink is not None:
            self.sink(clean, quarantine)
        else:
            self.clean_parts.append(clean)
            if quarantine.height:
                self.quarantine_parts.append(quarantine)

    def _sample(self, quarantine: pl.DataFrame) -> None:
        n = self.cfg.sample_size
        if not n or not quarantine.height:
            return
        for rule in quarantine["rule"].unique().sort().to_list():
            have = self.samples.setdefault(rule, [])
            if len(have) < n:
                rows = quarantine.filter(pl.col("rule") == rule).head(n - len(have))
                have.extend(
                    {k: _jsonable(v) for k, v in row.items()} for row in rows.iter_rows(named=True)
                )

    def _quarantine(self, rejected: pl.DataFrame, cast_columns: Sequence[str]) -> pl.DataFrame:
        """Rejected rows as received: original columns + rule, reason, input_row."""
        assert self.input_columns is not None
        cols = [
            pl.col(f"{_P}orig_{c}").alias(c) if c in cast_columns else pl.col(c)
            for c in self.input_columns
        ]
        return rejected.select(*cols, pl.col("rule"), pl.col("reason"), pl.col("input_row"))

    # -- the chunk pipeline -------------------------------------------------------------------

    def _chunk(
        self, raw: pl.DataFrame, first_row: int | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Run every stage on one chunk of complete symbol-days: (clean, quarantine, stats).

        ``raw`` has an ``input_row`` column, or ``first_row`` gives the input position of its
        first row.
        """
        return self._conclude(self._prepare(raw, first_row, self._next_scratch()))

    def _next_scratch(self) -> _Scratch:
        """The scratch arrays of the next chunk (alternating: see ``_Scratch``)."""
        self._chunks += 1
        return self._scratch[self._chunks % 2]

    def _prepare(self, raw: pl.DataFrame, first_row: int | None, scratch: _Scratch) -> _Prepared:
        """The stages that need nothing from other chunks: reading the columns, grouping,
        the row-level rules and the sequence rules. Safe to run on a worker thread while
        the previous chunk is concluded: it only reads the run's settings and caches."""
        frame, cast_columns = _cast(raw, self.kind)
        unplaced = None
        if frame["symbol"].null_count() or frame["ts"].null_count():
            if first_row is not None:  # positions are about to move: record them first
                frame = frame.with_columns(
                    pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias(
                        "input_row"
                    )
                )
            # Rows without a symbol or a timestamp belong to no symbol-day: rejected first.
            frame, unplaced = _split(frame, pl.col("symbol").is_null() | pl.col("ts").is_null())
            rule, reason = _first_reason(self._schema_checks(cast_columns) + self._null_checks())
            unplaced = unplaced.with_columns(rule.alias("rule"), reason.alias("reason"))
        day, tod, epoch = _local_clock(frame["ts"], self.tz, scratch)
        groups = _group(frame["symbol"], day, scratch)
        cols = _Columns(frame, groups, scratch)
        cols.put(f"{_P}tod", groups.sort(tod))
        cols.put("ts", groups.sort(epoch))
        facts = [self.calendar.facts(d) for d in groups.days] if self.calendar else None
        n = frame.height
        code = scratch.get("code", n, np.uint8)  # sorted positions; 0 = clean
        code[:] = 0
        unchecked: dict[RuleCode, np.ndarray] = {}
        findings: list[_Finding] = []

        # Stage 1: row-level rules (vectorised polars checks + numpy grid/calendar flags).
        checks = self._row_checks(cast_columns, facts is not None)
        # A column's null count is known without a scan: skip "is null" where there are none.
        expr_checks = [
            c
            for c in checks
            if c.flag is None and (c.null_of is None or frame[c.null_of].null_count())
        ]
        bad = self._row_mask(frame, cols, groups, expr_checks, scratch.get("bad", n, np.bool_))
        flags = self._array_flags(cols, groups, facts, unchecked, scratch)
        for f in flags.values():
            if isinstance(f, _PerGroup):
                if f.values.any():
                    bad |= f.values[groups.gid]
            else:
                bad |= f
        code[bad] = _ROW_LEVEL
        alive = np.logical_not(bad, out=scratch.get("alive", n, np.bool_))

        # Stages 2-5 see only rows alive after the stages before them.
        findings += self._sequence(cols, groups, alive, code)
        return _Prepared(
            raw,
            first_row,
            frame,
            cast_columns,
            unplaced,
            day,
            tod,
            groups,
            cols,
            facts,
            code,
            alive,
            flags,
            unchecked,
            findings,
        )

    def _conclude(self, chunk: _Prepared) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """The stages that carry state from chunk to chunk (the band's previous close), in
        input order, then the chunk's clean rows, quarantine and statistics."""
        raw, first_row, frame, cast_columns = (
            chunk.raw,
            chunk.first_row,
            chunk.frame,
            chunk.cast_columns,
        )
        unplaced, day, tod, groups, cols = (
            chunk.unplaced,
            chunk.day,
            chunk.tod,
            chunk.groups,
            chunk.cols,
        )
        facts, code, alive, flags = chunk.facts, chunk.code, chunk.alive, chunk.flags
        unchecked, findings = chunk.unchecked, chunk.findings
        findings += self._band_stage(cols, groups, alive, code, unchecked)
        findings += self._stale(cols, groups, alive, code)
        findings += self._outliers(cols, groups, alive, code, unchecked)
        missing = self._missing_bars(cols, groups, facts)

        # Assemble: one filter for the clean rows, a gather for the rejected ones.
        rejected_sorted = np.flatnonzero(code)
        rejected_input = groups.to_input(rejected_sorted)
        by_input = np.argsort(rejected_input, kind="stable")
        rejected_sorted, rejected_input = rejected_sorted[by_input], rejected_input[by_input]
        clean = _without(frame, rejected_input)
        clean = clean.select(_schema(self.kind).names())
        rejected = self._resolve(
            frame,
            cast_columns,
            rejected_sorted,
            rejected_input,
            code,
            flags,
            findings,
            groups,
            facts,
            day,
            tod,
            first_row,
        )
        parts = [p for p in (unplaced, rejected) if p is not None and p.height]
        full = pl.concat(parts, how="diagonal_relaxed") if parts else None
        quarantine = (
            self._quarantine(full, cast_columns).sort("input_row")
            if full is not None
            else self._empty_quarantine()
        )
        if clean.height + quarantine.height != raw.height or quarantine["rule"].null_count():
            # A defect in this module, never a data problem: refuse rather than lose rows.
            raise RuntimeError(
                f"validation did not account for every row: {raw.height} in, {clean.height} "
                f"clean, {quarantine.height} quarantined"
            )
        stats = self._chunk_stats(groups, rejected, unplaced, unchecked, missing)
        return clean, quarantine, stats

    def _resolve(
        self,
        frame: pl.DataFrame,
        cast_columns: Sequence[str],
        rejected_sorted: np.ndarray,
        rejected_input: np.ndarray,
        code: np.ndarray,
        flags: dict[str, np.ndarray | _PerGroup],
        findings: list[_Finding],
        groups: _Groups,
        facts: list[_DayFacts] | None,
        day: np.ndarray,
        tod: np.ndarray,
        first_row: int | None,
    ) -> pl.DataFrame | None:
        """The rejected rows (input order) with their rule, reason and symbol-day."""
        if rejected_input.size == 0:
            return None
        rows = frame[rejected_input].with_columns(
            pl.Series(f"{_P}gid", groups.gid[rejected_sorted], dtype=pl.Int64)
        )
        if "input_row" not in rows.columns:
            assert first_row is not None
            rows = rows.with_columns(
                pl.Series("input_row", first_row + rejected_input, dtype=pl.Int64)
            )
        k = f"{_P}k"
        parts: list[pl.DataFrame] = []
        row_level = np.flatnonzero(code[rejected_sorted] == _ROW_LEVEL)
        if row_level.size:
            sub_sorted = rejected_sorted[row_level]
            sub = rows[row_level].with_columns(
                [pl.Series(f"{_P}{name}", f[sub_sorted]) for name, f in flags.items()]
                + [
                    pl.Series(f"{_P}day", _to_dates(day[rejected_input[row_level]]), pl.Date),
                    pl.Series(f"{_P}tod", tod[rejected_input[row_level]], pl.Int64),
                ]
            )
            sub = self._reason_columns(sub, groups, facts)
            rule, reason = self._row_reasons(cast_columns, facts is not None)
            parts.append(
                sub.select(
                    pl.Series(k, row_level, dtype=pl.Int64),
                    rule.alias("rule"),
                    reason.alias("reason"),
                )
            )
        # Findings are in sorted space; ``rows`` are in input order.
        names = {v: r.value for r, v in _CODE.items()}
        by_sorted = np.argsort(rejected_sorted)
        ascending = rejected_sorted[by_sorted]
        for f in findings:
            if not f.positions.size:
                continue
            where = by_sorted[np.searchsorted(ascending, f.positions)]
            parts.append(
                pl.DataFrame(
                    {
                        k: pl.Series(where, dtype=pl.Int64),
                        "rule": pl.Series([names[c] for c in f.codes.tolist()], dtype=pl.String),
                        "reason": f.reasons.cast(pl.String),
                    }
                )
            )
        labels = pl.concat(parts).sort(k)
        return rows.with_columns(labels["rule"], labels["reason"])

    # -- stage 1 --------------------------------------------------------------------------------

    @staticmethod
    def _row_mask(
        frame: pl.DataFrame,
        cols: _Columns,
        groups: _Groups,
        checks: Sequence[_Check],
        bad: np.ndarray,
    ) -> np.ndarray:
        """Rows (sorted order) that break any of the expression ``checks``.

        Numeric checks run on the numpy columns the later stages use anyway, text domains
        test only the rows that differ from the usual value, and what is left is one polars
        select.
        """
        n = frame.height
        bad[:] = False
        if n == 0:
            return bad
        rest: list[_Check] = []
        in_input_order = np.zeros(n, dtype=bool)
        for c in checks:
            if c.fast is not None:
                bad |= c.fast(cols)
            elif c.domain is not None:
                name, allowed = c.domain
                column = frame[name]
                other = (column != allowed[0]).fill_null(False)
                if other.any():
                    at = other.arg_true()
                    outside = (~column.gather(at).is_in(list(allowed))).fill_null(False)
                    in_input_order[at.filter(outside).to_numpy()] = True
            else:
                rest.append(c)
        if rest:
            in_input_order |= frame.select(_any(rest)).to_series().to_numpy()
        if in_input_order.any():
            bad |= groups.sort(in_input_order)
        return bad

    def _array_flags(
        self,
        cols: _Columns,
        groups: _Groups,
        facts: list[_DayFacts] | None,
        unchecked: dict[RuleCode, np.ndarray],
        scratch: _Scratch,
    ) -> dict[str, np.ndarray | _PerGroup]:
        """Numpy flags in sorted order: off-tick per price column, holiday, outside session."""
        kind, cfg = self.kind, self.cfg
        flags: dict[str, np.ndarray | _PerGroup] = {}
        if groups.n == 0:
            return flags
        if cfg.enabled(RuleCode.OFF_TICK):
            schedule = self._schedule_index(groups.days)
            if (schedule < 0).any():
                unchecked[RuleCode.OFF_TICK] = np.where(schedule < 0, groups.rows, 0)
            for c in _TICK_COLUMNS[kind]:
                out = scratch.get(f"offtick_{c}", cols(c).shape[0], np.bool_)
                flags[f"offtick_{c}"] = _off_tick(cols(c), groups, schedule, cfg.tick_table, out)
        if facts is not None:
            in_range = np.array([f.in_range for f in facts], dtype=bool)
            if not in_range.all():
                for rule in (RuleCode.HOLIDAY, RuleCode.OUTSIDE_SESSION):
                    if cfg.enabled(rule):
                        unchecked[rule] = np.where(in_range, 0, groups.rows)
            if cfg.enabled(RuleCode.HOLIDAY):
                holiday = np.array([f.in_range and not f.is_session for f in facts], dtype=bool)
                flags["holiday"] = _PerGroup(holiday, groups.gid)
            if cfg.enabled(RuleCode.OUTSIDE_SESSION):
                flags["outside"] = self._outside(cols, groups, facts, in_range, scratch)
        return flags

    def _schedule_index(self, days: list[date]) -> np.ndarray:
        starts = np.array(
            [s.effective_from for s in self.cfg.tick_table.schedules], dtype="datetime64[D]"
        )
        wanted = np.array(days, dtype="datetime64[D]")
        return (np.searchsorted(starts, wanted, side="right") - 1).astype(np.int64)

    def _outside(
        self,
        cols: _Columns,
        groups: _Groups,
        facts: list[_DayFacts],
        in_range: np.ndarray,
        scratch: _Scratch,
    ) -> np.ndarray:
        """True where a row lies outside every allowed window of its day (bars: no overlap).

        One compiled pass; each symbol-day carries its own list of windows.
        """
        windows = [f.quotes if self.kind is DataKind.QUOTES else f.trades for f in facts]
        count = np.fromiter((len(w) for w in windows), dtype=np.int64, count=len(windows))
        window_start = np.r_[0, np.cumsum(count)].astype(np.int64)
        bounds = np.array([b for w in windows for b in w], dtype=np.int64).reshape(-1, 2)
        tod = cols(f"{_P}tod")
        bars = self.kind is DataKind.BARS
        end = tod + np.maximum(cols("ts_end") - cols("ts"), 1) if bars else tod
        return _kernels.outside_windows(
            tod,
            end,
            bars,
            groups.gid,
            window_start,
            np.ascontiguousarray(bounds[:, 0]),
            np.ascontiguousarray(bounds[:, 1]),
            in_range,
            scratch.get("outside", tod.shape[0], np.bool_),
        )

    def _schema_checks(self, cast_columns: Sequence[str]) -> list[_Check]:
        schema = _schema(self.kind)
        checks = [
            _Check(
                RuleCode.SCHEMA,
                pl.col(f"{_P}schema_{c}"),
                pl.format(
                    "{} value '{}' cannot be read as {}",
                    pl.lit(c),
                    _fmt(pl.col(f"{_P}orig_{c}")),
                    pl.lit(str(schema[c])),
                ),
            )
            for c in cast_columns
        ]
        if self.kind is DataKind.TRADES:
            conditions = [c.value for c in TradeCondition]
            checks += [
                _Check(
                    RuleCode.SCHEMA,
                    ~pl.col("side").is_in([-1, 0, 1]),
                    pl.format("side {} is not one of -1, 0, 1", _fmt(pl.col("side"))),
                    fast=lambda cols: (cols("side") < -1) | (cols("side") > 1),
                ),
                _Check(
                    RuleCode.SCHEMA,
                    ~pl.col("condition").is_in(conditions),
                    pl.format(
                        "condition '{}' is not a trade condition ({})",
                        _fmt(pl.col("condition")),
                        pl.lit(", ".join(conditions)),
                    ),
                    domain=("condition", tuple(conditions)),
                ),
            ]
        return checks

    def _null_checks(self) -> list[_Check]:
        checks: list[_Check] = []
        for name, dtype in _schema(self.kind).items():
            checks.append(
                _Check(RuleCode.NULL, pl.col(name).is_null(), pl.lit(f"{name} is null"), None, name)
            )
            if dtype.is_float():
                checks.append(
                    _Check(
                        RuleCode.NULL,
                        ~pl.col(name).is_finite(),
                        pl.format("{} is {}", pl.lit(name), _fmt(pl.col(name))),
                        fast=functools.partial(_not_finite, name),
                    )
                )
        return checks

    def _row_checks(self, cast_columns: Sequence[str], with_calendar: bool) -> list[_Check]:
        """Every row-level check, in precedence order (built once per input layout)."""
        key = (tuple(cast_columns), with_calendar)
        if key not in self._checks:
            self._checks[key] = self._build_row_checks(cast_columns, with_calendar)
        return self._checks[key]

    def _row_reasons(
        self, cast_columns: Sequence[str], with_calendar: bool
    ) -> tuple[pl.Expr, pl.Expr]:
        """``_first_reason`` of the row-level checks (built once per input layout)."""
        key = (tuple(cast_columns), with_calendar)
        if key not in self._reasons:
            self._reasons[key] = _first_reason(self._row_checks(cast_columns, with_calendar))
        return self._reasons[key]

    def _build_row_checks(self, cast_columns: Sequence[str], with_calendar: bool) -> list[_Check]:
        kind = self.kind
        on = self.cfg.enabled
        checks = self._schema_checks(cast_columns) + self._null_checks()
        if on(RuleCode.NON_POSITIVE):
            positive = {
                DataKind.TRADES: ("price", "size"),
                DataKind.QUOTES: ("bid_price", "ask_price", "bid_size", "ask_size"),
                DataKind.BARS: ("open", "high", "low", "close", "vwap"),
            }[kind]
            checks += [
                _Check(
                    RuleCode.NON_POSITIVE,
                    pl.col(c) <= 0,
                    pl.format("{} {} is not positive", pl.lit(c), _fmt(pl.col(c))),
                    fast=functools.partial(_not_positive, c),
                )
                for c in positive
            ]
            if kind is DataKind.BARS:
                checks += [
                    _Check(
                        RuleCode.NON_POSITIVE,
                        pl.col(c) < 0,
                        pl.format("{} {} is negative", pl.lit(c), _fmt(pl.col(c))),
                    )
                    for c in ("volume", "trade_count")
                ]
        if kind is DataKind.BARS and on(RuleCode.OHLC):
            o, h, lo, c, v = (pl.col(x) for x in ("open", "high", "low", "close", "vwap"))
            top, bottom = pl.max_horizontal(o, c), pl.min_horizontal(o, c)
            tol = 1e-9 * h.abs()
            checks += [
                _Check(
                    RuleCode.OHLC,
                    pl.col("ts_end") <= pl.col("ts"),
                    pl.format(
                        "ts_end {} is not after ts {}",
                        _ts_fmt(pl.col("ts_end")),
                        _ts_fmt(pl.col("ts")),
                    ),
                ),
                _Check(
                    RuleCode.OHLC, lo > h, pl.format("low {} is above high {}", _fmt(lo), _fmt(h))
                ),
                _Check(
                    RuleCode.OHLC,
                    h < top,
                    pl.format("high {} is below max(open, close) {}", _fmt(h), _fmt(top)),
                ),
                _Check(
                    RuleCode.OHLC,
                    lo > bottom,
                    pl.format("low {} is above min(open, close) {}", _fmt(lo), _fmt(bottom)),
                ),
                _Check(
                    RuleCode.OHLC,
                    (v < lo - tol) | (v > h + tol),
                    pl.format("vwap {} is outside [low {}, high {}]", _fmt(v), _fmt(lo), _fmt(h)),
                ),
            ]
        if kind is DataKind.QUOTES and on(RuleCode.CROSSED):
            checks.append(
                _Check(
                    RuleCode.CROSSED,
                    pl.col("bid_price") >= pl.col("ask_price"),
                    pl.format(
                        "bid {} is at or above ask {}",
                        _fmt(pl.col("bid_price")),
                        _fmt(pl.col("ask_price")),
                    ),
                    fast=_crossed,
                )
            )
        if on(RuleCode.OFF_TICK):
            checks += [
                _Check(
                    RuleCode.OFF_TICK,
                    pl.col(f"{_P}offtick_{c}"),
                    pl.format(
                        "{} {} is not on the {} TRY tick grid in force on {}",
                        pl.lit(c),
                        _fmt(pl.col(c)),
                        _fmt(pl.col(f"{_P}tick_{c}")),
                        _fmt(pl.col(f"{_P}day")),
                    ),
                    flag=f"offtick_{c}",
                )
                for c in _TICK_COLUMNS[kind]
            ]
        if with_calendar and on(RuleCode.HOLIDAY):
            assert self.calendar is not None
            checks.append(
                _Check(
                    RuleCode.HOLIDAY,
                    pl.col(f"{_P}holiday"),
                    pl.format(
                        "{} ({}) is not a {} session",
                        _fmt(pl.col(f"{_P}day")),
                        pl.col(f"{_P}day").dt.strftime("%A"),
                        pl.lit(self.calendar.name),
                    ),
                    flag="holiday",
                )
            )
        if with_calendar and on(RuleCode.OUTSIDE_SESSION):
            what = "order-entry" if kind is DataKind.QUOTES else "trading"
            start = "bar from" if kind is DataKind.BARS else "at"
            checks.append(
                _Check(
                    RuleCode.OUTSIDE_SESSION,
                    pl.col(f"{_P}outside"),
                    pl.format(
                        "{} {} local time on {} is outside the {} windows {}",
                        pl.lit(start),
                        _hms(pl.col(f"{_P}tod")),
                        _fmt(pl.col(f"{_P}day")),
                        pl.lit(what),
                        pl.col(f"{_P}windows"),
                    ),
                    flag="outside",
                )
            )
        return checks

    def _reason_columns(
        self, sub: pl.DataFrame, groups: _Groups, facts: list[_DayFacts] | None
    ) -> pl.DataFrame:
        """Columns the row-level reasons refer to: tick size in force, session windows."""
        extra: list[pl.Series] = []
        g = sub[f"{_P}gid"].to_numpy()
        if self.cfg.enabled(RuleCode.OFF_TICK):
            schedule = self._schedule_index(groups.days)[g]
            for c in _TICK_COLUMNS[self.kind]:
                prices = sub[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
                extra.append(
                    pl.Series(f"{_P}tick_{c}", _tick_sizes(prices, schedule, self.cfg.tick_table))
                )
        if facts is not None:
            quotes = self.kind is DataKind.QUOTES
            text = {
                i: _windows_text(facts[i].quotes if quotes else facts[i].trades)
                for i in set(g.tolist())
            }
            extra.append(pl.Series(f"{_P}windows", [text[i] for i in g.tolist()], pl.String))
        return sub.with_columns(extra) if extra else sub

    # -- stage 2 --------------------------------------------------------------------------------

    def _sequence(
        self, cols: _Columns, groups: _Groups, alive: np.ndarray, code: np.ndarray
    ) -> list[_Finding]:
        """DUPLICATE and OUT_OF_ORDER within each symbol-day.

        A row is out of order when its ts is earlier than the latest ts of the earlier rows of
        its symbol-day (bars: not later, since a bar's ts is its key), or its seq is not greater
        than their highest seq. "Earlier rows" are those alive after the row-level rules. A row
        rejected for its ts cannot raise the running maximum of ts, so for ts alone this is
        exactly "the previous accepted row"; where ts and seq disagree in the same stretch the
        running maxima include rows rejected for the other field (a vectorised simplification).
        Every duplicate is also out of sequence (same ts and seq), so keys are compared only
        among rows sharing a timestamp with such a row: a row whose key appeared earlier is a
        DUPLICATE (the first occurrence stays clean), the others are OUT_OF_ORDER.
        """
        on = self.cfg.enabled
        if not (on(RuleCode.DUPLICATE) or on(RuleCode.OUT_OF_ORDER)) or not alive.any():
            return []
        bars = self.kind is DataKind.BARS
        tod, ts = cols(f"{_P}tod"), cols("ts")
        # Suspects, whether each is late in ts, and the earlier maxima of tod and seq (0
        # where it is not late in that field), in one pass over the rows.
        positions, late, prev_tod, prev_seq = _kernels.late_rows(
            tod, None if bars else cols("seq"), groups.starts, alive, bars
        )
        if positions.size == 0:
            return []
        # Duplicates: an earlier alive row with the same key shares the suspect's timestamp,
        # and its symbol-day.
        suspect_groups = np.unique(groups.gid[positions])
        span = _ranges(groups.starts[suspect_groups], groups.rows[suspect_groups])
        near = span[alive[span] & np.isin(ts[span], np.unique(ts[positions]))]
        # Rows whose key (symbol-day, ts[, seq]) occurred at an earlier row: sorted by key
        # and then position, every row equal to its predecessor repeats it.
        keys = [groups.gid[near], ts[near]] + ([] if bars else [cols("seq")[near]])
        by_key = np.lexsort([near, *keys[::-1]])
        same = np.ones(max(near.size - 1, 0), dtype=bool)
        for key in keys:
            ordered = key[by_key]
            same &= ordered[1:] == ordered[:-1]
        repeated = near[by_key][1:][same]
        is_dup = np.isin(positions, repeated) & on(RuleCode.DUPLICATE)
        rejected = is_dup | on(RuleCode.OUT_OF_ORDER)
        positions, is_dup = positions[rejected], is_dup[rejected]
        late, prev_tod, prev_seq = late[rejected], prev_tod[rejected], prev_seq[rejected]
        if positions.size == 0:
            return []
        codes = np.where(is_dup, _CODE[RuleCode.DUPLICATE], _CODE[RuleCode.OUT_OF_ORDER])
        code[positions] = codes
        alive[positions] = False
        symbols = [groups.symbols[g] for g in groups.gid[positions].tolist()]
        gts = ts[positions]
        prev_ts = gts - (tod[positions] - prev_tod)
        utc = pl.Datetime("ns", "UTC")
        detail = pl.DataFrame(
            {
                "dup": is_dup,
                "symbol": pl.Series(symbols, dtype=pl.String),
                "ts": pl.Series(gts, dtype=pl.Int64).cast(utc),
                "prev_ts": pl.Series(prev_ts, dtype=pl.Int64).cast(utc),
                "late": late,
                "seq": cols("seq")[positions] if not bars else np.zeros(positions.size, np.int64),
                "prev_seq": prev_seq if not bars else 0,
            }
        ).with_columns(_ts_fmt(pl.col("ts")), _ts_fmt(pl.col("prev_ts")).alias("prev_ts"))
        key_names = ", ".join(KEYS[self.kind])
        key_values = (
            pl.format("{}, {}", "symbol", "ts")
            if bars
            else pl.format("{}, {}, {}", "symbol", "ts", "seq")
        )
        order_text = pl.format(
            "ts {} is {} {} already seen for this symbol-day",
            "ts",
            pl.lit("not after" if bars else "earlier than"),
            "prev_ts",
        )
        if not bars:
            order_text = (
                pl.when("late")
                .then(order_text)
                .otherwise(
                    pl.format("seq {} does not increase (highest so far {})", "seq", "prev_seq")
                )
            )
        reasons = detail.select(
            pl.when("dup")
            .then(
                pl.format("same key ({}) = ({}) as an earlier row", pl.lit(key_names), key_values)
            )
            .otherwise(order_text)
        ).to_series()
        return [_Finding(positions, codes, reasons)]

    # -- stage 3 --------------------------------------------------------------------------------

    def _band_stage(
        self,
        cols: _Columns,
        groups: _Groups,
        alive: np.ndarray,
        code: np.ndarray,
        unchecked: dict[RuleCode, np.ndarray],
    ) -> list[_Finding]:
        """OUTSIDE_BAND: the band of day d comes from the symbol's last price on the previous
        session, among that day's rows alive after rules 1-10 (the rules that do not need a
        base themselves); if that price lies outside the previous session's own band, from
        the last price inside it (see ``_rebase``). Without such a price (a symbol's first
        day, a day after a gap, an ex-date, a day outside the calendar) the day is not
        checked: its rows count as unchecked. Quotes carry no closing price, so they are
        always unchecked.
        """
        if not self.cfg.enabled(RuleCode.OUTSIDE_BAND) or groups.n == 0:
            return []
        close = (
            cols("bid_price")
            if self.kind is DataKind.QUOTES
            else cols("price" if self.kind is DataKind.TRADES else "close")
        )
        alive_rows, last = _kernels.last_alive(close, groups.starts, alive)
        if self.kind is DataKind.QUOTES:
            unchecked[RuleCode.OUTSIDE_BAND] = alive_rows
            return []
        if not alive_rows.any():
            return []
        present_g = np.flatnonzero(alive_rows)
        present, closes = present_g.tolist(), last[present_g].tolist()
        lower = np.full(groups.n, np.nan)
        upper = np.full(groups.n, np.nan)
        base = np.full(groups.n, np.nan)
        latest: dict[str, tuple[date, float | None]] = {}
        banded: list[int] = []
        previous_closes: list[float] = []
        for g, last_close in zip(present, closes, strict=True):
            symbol, day = groups.symbols[g], groups.days[g]
            previous = latest.get(symbol) or self.last_close.get(symbol)
            latest[symbol] = (day, last_close)
            previous_close = self._band_base(symbol, day, previous)
            if previous_close is not None:
                banded.append(g)
                previous_closes.append(previous_close)
        used = dict(zip(banded, previous_closes, strict=True))
        if banded:
            at = np.array(banded, dtype=np.int64)
            lower[at], upper[at], base[at] = self._daily_bands(
                np.array(previous_closes, dtype=np.float64), [groups.days[g] for g in banded]
            )
            with np.errstate(invalid="ignore"):
                bad_close = (last < lower - 1e-9) | (last > upper + 1e-9)
            if bad_close.any():
                latest = self._rebase(groups, present, used, close, alive, last, lower, upper, base)
        self.last_close.update(latest)
        unchecked[RuleCode.OUTSIDE_BAND] = np.where(np.isnan(lower), alive_rows, 0)
        checked = ~np.isnan(lower)
        if not checked.any():
            return []
        if self.kind is DataKind.TRADES:
            low = high = close
        else:
            low, high = cols("low"), cols("high")
        positions = _kernels.outside_band(low, high, groups.gid, alive, lower, upper)
        if positions.size == 0:
            return []
        code[positions] = _CODE[RuleCode.OUTSIDE_BAND]
        alive[positions] = False
        g = groups.gid[positions]
        detail = pl.DataFrame(
            {
                "low": low[positions],
                "high": high[positions],
                "lo": lower[g],
                "hi": upper[g],
                "base": base[g],
            }
        )
        what = (
            pl.format("price {}", "low")
            if self.kind is DataKind.TRADES
            else pl.format("low {} / high {}", "low", "high")
        )
        reasons = detail.select(
            pl.format(
                "{} is outside the daily band [{}, {}] around base {} (previous close)",
                what,
                "lo",
                "hi",
                "base",
            )
        ).to_series()
        codes = np.full(positions.size, _CODE[RuleCode.OUTSIDE_BAND], dtype=np.uint8)
        return [_Finding(positions, codes, reasons)]

    def _rebase(
        self,
        groups: _Groups,
        present: list[int],
        used: dict[int, float],
        close: np.ndarray,
        alive: np.ndarray,
        last: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        base: np.ndarray,
    ) -> dict[str, tuple[date, float | None]]:
        """Symbol-days again, in order, where a day's last price lies outside its own band.

        Such a price is a bad print (a fat finger at the close), not the base of the next
        day's band: the next day's base is the day's last price inside its band (none: the
        next day is not checked). A base that changes moves that day's band, which can change
        its own last valid price, so the days of a symbol are settled one after the other;
        ``lower``, ``upper`` and ``base`` are updated in place. Returns the latest (day, close)
        per symbol, as carried to the next chunk. ``used``: the base each day got first.
        """
        latest: dict[str, tuple[date, float | None]] = {}
        for g in present:
            symbol, day = groups.symbols[g], groups.days[g]
            previous = latest.get(symbol) or self.last_close.get(symbol)
            previous_close = self._band_base(symbol, day, previous)
            if previous_close is None:
                lower[g] = upper[g] = base[g] = np.nan
            elif previous_close != used.get(g):
                b = self._daily_bands(np.array([previous_close]), [day])
                lower[g], upper[g], base[g] = b[0][0], b[1][0], b[2][0]
            value: float | None = float(last[g])
            lo, hi = lower[g] - 1e-9, upper[g] + 1e-9
            if not np.isnan(lo) and not lo <= last[g] <= hi:
                rows = np.arange(groups.starts[g], groups.starts[g] + groups.rows[g])
                valid = rows[alive[rows] & (close[rows] >= lo) & (close[rows] <= hi)]
                value = float(close[valid[-1]]) if valid.size else None
            latest[symbol] = (day, value)
        return latest

    def _band_base(
        self, symbol: str, day: date, previous: tuple[date, float | None] | None
    ) -> float | None:
        """The previous close the band of ``day`` is built on, or None if the day has none."""
        if previous is None or previous[1] is None or (symbol, day) in self.ex_dates:
            return None
        previous_day, previous_close = previous
        if self.calendar is not None:
            facts = self.calendar.facts(day)
            if not facts.in_range or facts.previous_session != previous_day:
                return None
        elif previous_day >= day:
            return None
        return previous_close

    def _daily_bands(
        self, previous_closes: np.ndarray, days: list[date]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``PriceBand.daily`` for many symbol-days at once: (lower, upper, base), NaN where
        there is no band (no rule or tick table in force that day, or a price that cannot be
        rounded to the grid).

        The same operations as the scalar version, element by element, through the tick
        schedule's vectorised rounding, one call per (tick schedule, band width) in force; a
        price in integer units divided by the scale is exactly what ``from_units`` gives back
        for any price below 10^9 TRY, and larger prices take the scalar path.
        """
        n = previous_closes.shape[0]
        lower, upper, base = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        regimes: dict[tuple[int, float], list[int]] = {}
        for i, day in enumerate(days):
            regime = self._band_regime(day)
            if regime is not None:
                regimes.setdefault(regime, []).append(i)
        for (s, pct), members in regimes.items():
            schedule = self.cfg.tick_table.schedules[s]
            at = np.array(members, dtype=np.int64)
            close = previous_closes[at]
            with np.errstate(invalid="ignore"):
                plain = np.isfinite(close) & (close > 0) & (close < 1e9)
            for i in at[~plain].tolist():
                try:
                    b = self.band.daily(float(previous_closes[i]), days[i])
                    lower[i], upper[i], base[i] = b.lower, b.upper, b.reference
                except ValueError:  # a price that cannot be rounded to the grid
                    pass
            at, close = at[plain], close[plain]
            if not at.size:
                continue
            b = schedule.round_units_array(close * PRICE_SCALE, RoundingMode.NEAREST) / PRICE_SCALE
            high_price, low_price = b * (1 + pct), b * (1 - pct)
            with np.errstate(invalid="ignore"):
                ok = (low_price > 0) & np.isfinite(low_price) & np.isfinite(high_price)
                ok &= high_price > 0
            at, b, high_price, low_price = at[ok], b[ok], high_price[ok], low_price[ok]
            if not at.size:
                continue
            upper[at] = (
                schedule.round_units_array(high_price * PRICE_SCALE, RoundingMode.DOWN)
                / PRICE_SCALE
            )
            lower[at] = (
                schedule.round_units_array(low_price * PRICE_SCALE, RoundingMode.UP) / PRICE_SCALE
            )
            base[at] = b
        return lower, upper, base

    def _band_regime(self, day: date) -> tuple[int, float] | None:
        """(tick schedule, daily band width) in force on ``day``; None if either is missing."""
        if day not in self._regimes:
            try:
                pct = self.band.rule_on(day).daily_pct
                schedule = self.cfg.tick_table.schedule_on(day)
            except ValueError:  # no band rule or tick table in force that day
                self._regimes[day] = None
            else:
                self._regimes[day] = (self.cfg.tick_table.schedules.index(schedule), pct)
        return self._regimes[day]

    # -- stages 4 and 5 ---------------------------------------------------------------------------

    def _scope(self, groups: _Groups, live: np.ndarray | None) -> np.ndarray:
        """Scope id per (alive) row: symbol-day, or symbol for daily bars."""
        gid = groups.gid if live is None else groups.gid[live]
        return groups.symbol_id[gid] if self.daily else gid

    def _stale(
        self, cols: _Columns, groups: _Groups, alive: np.ndarray, code: np.ndarray
    ) -> list[_Finding]:
        """STALE: see ``ValidationConfig.stale_max_run``; runs are over alive rows."""
        if not self.cfg.enabled(RuleCode.STALE) or not alive.any():
            return []
        scope = groups.symbol_id[groups.gid] if self.daily else groups.gid
        values = [cols(c) for c in _STALE_VALUES[self.kind]]
        values += [values[-1]] * (5 - len(values))  # the kernel compares five columns
        cap = self.cfg.stale_max_run
        limit = int(self.cfg.stale_max_duration.total_seconds() * 10**9)
        positions, run_len, elapsed = _kernels.stale_rows(
            scope, alive, cols("ts"), *values, cap, limit
        )
        if positions.size == 0:
            return []
        code[positions] = _CODE[RuleCode.STALE]
        alive[positions] = False
        reasons = (
            pl.DataFrame({"n": run_len, "minutes": (elapsed / 6e10).round(1)})
            .select(
                pl.format(
                    "row {} of a run of identical values lasting {} min"
                    " (allowed: {} rows or {} min)",
                    "n",
                    "minutes",
                    pl.lit(cap),
                    pl.lit(round(limit / 6e10, 1)),
                )
            )
            .to_series()
        )
        codes = np.full(positions.size, _CODE[RuleCode.STALE], dtype=np.uint8)
        return [_Finding(positions, codes, reasons)]

    def _outliers(
        self,
        cols: _Columns,
        groups: _Groups,
        alive: np.ndarray,
        code: np.ndarray,
        unchecked: dict[RuleCode, np.ndarray],
    ) -> list[_Finding]:
        """OUTLIER: see ``ValidationConfig.outlier_z``; returns are over alive rows.

        Intraday, a compiled screen first sets aside the *calm* symbol-days, which provably
        hold no outlier: with F = outlier_z * outlier_min_scale (the smallest bound a return
        can be held to), a day is calm when, for one c in (0, F/8, F/4, F/2), more than half
        of its returns lie within c of zero (so the median return does too) and all of them
        within F - c (so no return is more than F from the median). Tick data, where most prices
        equal the median of the five before them, is nearly always calm. Calm days need only
        their unchecked counts (every return but the day's first is finite); the rest (days
        with jumps, bad prints or wide spreads) are scored exactly.
        """
        if not self.cfg.enabled(RuleCode.OUTLIER):
            return []
        unchecked[RuleCode.OUTLIER] = np.zeros(groups.n, dtype=np.int64)
        if not alive.any():
            return []
        cfg = self.cfg
        if self.kind is DataKind.TRADES:
            prices = cols("price")
        elif self.kind is DataKind.QUOTES:
            prices = (cols("bid_price") + cols("ask_price")) / 2
        else:
            prices = cols("close")
        if self.daily:
            live = None if alive.all() else np.flatnonzero(alive)
        else:
            sizes, calm = _kernels.outlier_screen(
                prices, groups.starts, alive, _calm_bounds(cfg.outlier_z, cfg.outlier_min_scale)
            )
            nobs = np.maximum(sizes - 1, 0)
            enough = nobs >= cfg.outlier_min_obs
            # Too few returns: never scored, whatever they are (all rows unchecked).
            strays = ~calm & enough
            calm_unchecked = np.where(enough, sizes - nobs, sizes)
            unchecked[RuleCode.OUTLIER] += np.where(strays, 0, calm_unchecked)
            if not strays.any():
                return []
            stray = np.flatnonzero(strays)
            span = _ranges(groups.starts[stray], groups.rows[stray])
            live = span[alive[span]]
            if live.size == 0:
                return []
            if live.size == alive.shape[0]:
                live = None

        def take(a: np.ndarray) -> np.ndarray:
            return a if live is None else a[live]

        p = take(prices)
        scope = self._scope(groups, live)
        m = p.shape[0]
        new_scope = np.empty(m, dtype=bool)
        new_scope[0] = True
        np.not_equal(scope[1:], scope[:-1], out=new_scope[1:])
        starts = np.flatnonzero(new_scope)
        scope_no = np.cumsum(new_scope) - 1
        pos = np.arange(m) - starts[scope_no]
        ref = _reference_prices(p, starts, pos)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(p / ref)
        if self.daily and self.ex_dates:
            ex = np.array(
                [(s, d) in self.ex_dates for s, d in zip(groups.symbols, groups.days, strict=True)]
            )
            r[ex[take(groups.gid)]] = np.nan
        n_scopes = starts.shape[0]
        sizes = np.diff(np.r_[starts, m])
        finite = np.isfinite(r)
        nobs = np.add.reduceat(finite, starts) if m else np.zeros(0, dtype=np.int64)
        enough = nobs >= cfg.outlier_min_obs
        # Since |median| <= max|r|, a scope whose returns all satisfy |r| <= z * floor / 2 has
        # |r - median| <= z * floor <= z * scale for every row: no outlier is possible there,
        # and its exact median and MAD are not needed.
        with np.errstate(invalid="ignore"):
            biggest = np.fmax.reduceat(np.abs(r), starts) if m else np.zeros(0)
        suspect = np.flatnonzero(enough & (biggest > cfg.outlier_z * cfg.outlier_min_scale / 2))
        flagged = np.zeros(0, dtype=np.int64)
        med = np.zeros(n_scopes)
        scale = np.full(n_scopes, cfg.outlier_min_scale)
        if suspect.size:
            rows = _ranges(starts[suspect], sizes[suspect])
            sub_scope, sub_r = scope_no[rows], r[rows]
            stats = (
                pl.DataFrame(
                    [
                        pl.Series("s", sub_scope).set_sorted(),
                        pl.Series("r", sub_r, nan_to_null=True),
                    ]
                )
                .group_by("s", maintain_order=True)
                .agg(
                    pl.col("r").median().alias("m"),
                    (pl.col("r") - pl.col("r").median()).abs().median().alias("mad"),
                )
            )
            at = stats["s"].to_numpy()
            med[at] = stats["m"].fill_null(0.0).to_numpy()
            scale[at] = np.maximum(
                1.4826 * stats["mad"].fill_null(0.0).to_numpy(), cfg.outlier_min_scale
            )
            bound = cfg.outlier_z * scale[sub_scope]
            with np.errstate(invalid="ignore"):
                far = np.abs(sub_r - med[sub_scope]) > bound
            candidates = rows[far]
            # Confirmation from the other side: a genuine jump is followed by prices near it;
            # a bad print stands alone. The last price of a scope has no later prices, so the
            # backward test alone decides there.
            ends = (starts + sizes)[scope_no[candidates]]
            forward = _forward_reference(p, candidates, ends)
            with np.errstate(divide="ignore", invalid="ignore"):
                r_next = np.log(forward / p[candidates])
                z_next = (r_next - med[scope_no[candidates]]) / scale[scope_no[candidates]]
            z_back = (r[candidates] - med[scope_no[candidates]]) / scale[scope_no[candidates]]
            # Far from both sides means above both or below both: the price comes back.
            alone = np.isnan(forward) | ((np.abs(z_next) > cfg.outlier_z) & (z_back * z_next < 0))
            flagged, z_next = candidates[alone], z_next[alone]
        # Unchecked: each scope's rows without a return, and all rows of too-small scopes.
        not_checked = np.where(enough, sizes - nobs, sizes)
        if self.daily:
            no_return = ~finite | ~enough[scope_no]
            unchecked[RuleCode.OUTLIER] = np.bincount(
                take(groups.gid)[no_return], minlength=groups.n
            )
        else:
            np.add.at(unchecked[RuleCode.OUTLIER], take(groups.gid)[starts], not_checked)
        if flagged.size == 0:
            return []
        positions = flagged if live is None else live[flagged]
        code[positions] = _CODE[RuleCode.OUTLIER]
        alive[positions] = False
        s_of = scope_no[flagged]
        z = (r[flagged] - med[s_of]) / scale[s_of]
        detail = pl.DataFrame(
            {
                "p": p[flagged],
                "r": r[flagged].round(5),
                "ref": ref[flagged],
                "z": z.round(1),
                "next": np.round(z_next, 1),
            },
            nan_to_null=True,
        )
        confirmation = (
            pl.when(pl.col("next").is_null())
            .then(pl.lit("no later price"))
            .otherwise(pl.format("the next prices are as far the other way: robust z {}", "next"))
        )
        reasons = detail.select(
            pl.format(
                "price {}: log return {} from the median of the previous prices {} has robust z"
                " {}, beyond ±{}; {}",
                "p",
                "r",
                "ref",
                "z",
                pl.lit(cfg.outlier_z),
                confirmation,
            )
        ).to_series()
        codes = np.full(positions.size, _CODE[RuleCode.OUTLIER], dtype=np.uint8)
        return [_Finding(positions, codes, reasons)]

    # -- gaps -----------------------------------------------------------------------------------

    def _missing_bars(
        self, cols: _Columns, groups: _Groups, facts: list[_DayFacts] | None
    ) -> np.ndarray:
        """Intraday bars missing from continuous trading, per symbol-day (GAP).

        Expected: the bar slots of ``interval`` in the day's continuous window(s); present: the
        distinct bar starts inside them among all rows received (valid or not: a rejected bar
        is a quarantined row, not a missing one).
        """
        missing = np.zeros(groups.n, dtype=np.int64)
        if (
            self.kind is not DataKind.BARS
            or facts is None
            or not self.cfg.enabled(RuleCode.GAP)
            or self.daily
            or not self.interval_ns
            or groups.n == 0
        ):
            return missing
        interval = self.interval_ns
        tod = cols(f"{_P}tod")
        inside = np.zeros(tod.shape[0], dtype=bool)
        expected = np.zeros(groups.n, dtype=np.int64)
        width = max(len(f.continuous) for f in facts)
        for k in range(width):
            lo = np.array([f.continuous[k][0] if len(f.continuous) > k else 0 for f in facts])
            hi = np.array([f.continuous[k][1] if len(f.continuous) > k else 0 for f in facts])
            expected += -((lo - hi) // interval)  # ceil((hi - lo) / interval)
            inside |= (tod >= lo[groups.gid]) & (tod < hi[groups.gid])
        present = (
            pl.DataFrame({"g": groups.gid[inside], "ts": cols("ts")[inside]})
            .group_by("g")
            .agg(pl.col("ts").n_unique().alias("n"))
        )
        have = np.zeros(groups.n, dtype=np.int64)
        have[present["g"].to_numpy()] = present["n"].to_numpy()
        return np.maximum(expected - have, 0)

    # -- statistics ---------------------------------------------------------------------------

    def _chunk_stats(
        self,
        groups: _Groups,
        rejected: pl.DataFrame | None,
        unplaced: pl.DataFrame | None,
        unchecked: dict[RuleCode, np.ndarray],
        missing: np.ndarray,
    ) -> pl.DataFrame:
        """Counts per symbol-day: rows, clean, rejected and unchecked by rule, missing."""
        n = groups.n
        per_rule = np.zeros((n, len(_PRECEDENCE) + 1), dtype=np.int64)
        if rejected is not None and rejected.height:
            g = rejected[f"{_P}gid"].to_numpy()
            k = rejected["rule"].replace_strict({r.value: i for r, i in _CODE.items()}).to_numpy()
            np.add.at(per_rule, (g, k), 1)
        cols: dict[str, Any] = {
            "symbol": pl.Series(groups.symbols, dtype=pl.String),
            "day": pl.Series(groups.days, dtype=pl.Date),
            "rows": pl.Series(groups.rows, dtype=pl.Int64),
            "clean": pl.Series(groups.rows - per_rule.sum(axis=1), dtype=pl.Int64),
            "missing": pl.Series(missing, dtype=pl.Int64),
        }
        for rule in _QUARANTINE_RULES:
            cols[f"rej_{rule.value}"] = pl.Series(per_rule[:, _CODE[rule]], dtype=pl.Int64)
            u = unchecked.get(rule)
            cols[f"unc_{rule.value}"] = pl.Series(
                u if u is not None else np.zeros(n, dtype=np.int64), dtype=pl.Int64
            )
        stats = pl.DataFrame(cols)
        if unplaced is not None and unplaced.height:
            # Rows with no symbol or no timestamp: one entry per symbol (or "<null>") and day.
            day = (
                pl.col("ts").dt.convert_time_zone(self.tz.key).dt.date()
                if self.tz is not None
                else pl.col("ts").dt.date()
            )
            agg = [
                pl.len().cast(pl.Int64).alias("rows"),
                pl.lit(0, pl.Int64).alias("clean"),
                pl.lit(0, pl.Int64).alias("missing"),
            ]
            for rule in _QUARANTINE_RULES:
                agg += [
                    (pl.col("rule") == rule.value).sum().cast(pl.Int64).alias(f"rej_{rule.value}"),
                    pl.lit(0, pl.Int64).alias(f"unc_{rule.value}"),
                ]
            extra = unplaced.group_by(
                pl.col("symbol").cast(pl.String).fill_null(_NULL_SYMBOL).alias("symbol"),
                day.alias("day"),
                maintain_order=True,
            ).agg(agg)
            stats = pl.concat([stats, extra.select(stats.columns)], how="vertical_relaxed")
        return stats

    def _report(self, source_label: str, synthetic: bool) -> QualityReport:
        symbol_days: list[SymbolDayQuality] = []
        stats = pl.concat(self.stats, how="vertical_relaxed") if self.stats else None
        if stats is not None and stats.height:
            stats = stats.group_by("symbol", "day", maintain_order=True).sum()
            names = [r.value for r in _QUARANTINE_RULES]
            rejected = _by_row(names, stats.select([f"rej_{n}" for n in names]).to_numpy())
            unchecked = _by_row(names, stats.select([f"unc_{n}" for n in names]).to_numpy())
            columns = zip(
                stats["symbol"].to_list(),
                stats["day"].to_list(),
                stats["rows"].to_list(),
                stats["clean"].to_list(),
                stats["missing"].to_list(),
                strict=True,
            )
            for i, (symbol, day, rows, clean, missing) in enumerate(columns):
                # Counts come from this module, so the records skip pydantic's validation.
                symbol_days.append(
                    SymbolDayQuality.model_construct(
                        symbol=symbol,
                        day=day,
                        rows=rows,
                        clean=clean,
                        rejected=rejected[i],
                        missing=missing,
                        missing_session=False,
                        unchecked=unchecked[i],
                    )
                )
            symbol_days += self._missing_sessions(stats)
            keys = [(d.symbol, d.day or date.max) for d in symbol_days]
            order = sorted(range(len(symbol_days)), key=keys.__getitem__)
            symbol_days = [symbol_days[i] for i in order]
        interval = (
            str(timedelta(microseconds=self.interval_ns / 1000)) if self.interval_ns else None
        )
        return QualityReport(
            kind=self.kind.value,
            source_label=source_label,
            synthetic=synthetic,
            rules={r.value: r.description for r in _PRECEDENCE if self.cfg.enabled(r)},
            config=self.cfg.summary() | {"bar_interval_used": interval},
            symbol_days=symbol_days,
            samples={
                r.value: self.samples[r.value] for r in _PRECEDENCE if r.value in self.samples
            },
        )

    def _missing_sessions(self, stats: pl.DataFrame) -> list[SymbolDayQuality]:
        """Sessions without any row for a symbol, between its first and last day (GAP).

        Each counts as missing the rows such a day should hold: the symbol's median rows per
        day (trades, quotes), one daily bar, or the day's intraday bar slots.
        """
        if (
            self.calendar is None
            or not self.cfg.enabled(RuleCode.GAP)
            or self.kind is DataKind.CORPORATE_ACTIONS
        ):
            return []
        placed = stats.filter(pl.col("day").is_not_null() & (pl.col("symbol") != _NULL_SYMBOL))
        out: list[SymbolDayQuality] = []
        calendar = self.calendar
        for (symbol,), sub in placed.group_by("symbol", maintain_order=True):
            # Only sessions span the range: a row on a holiday does not make days expected.
            days = {d for d in sub["day"].to_list() if calendar.facts(d).is_session}
            if not days:
                continue
            gaps = [d for d in calendar.sessions_between(min(days), max(days)) if d not in days]
            for d in gaps:
                if self.kind is not DataKind.BARS:
                    expected = max(1, int(sub["rows"].median() or 1))  # type: ignore[arg-type]
                elif self.daily or not self.interval_ns:
                    expected = 1
                else:
                    windows = self.calendar.facts(d).continuous
                    expected = max(1, sum(-((lo - hi) // self.interval_ns) for lo, hi in windows))
                out.append(
                    SymbolDayQuality(
                        symbol=str(symbol),
                        day=d,
                        rows=0,
                        clean=0,
                        missing=expected,
                        missing_session=True,
                    )
                )
        return out

    # -- corporate actions --------------------------------------------------------------------

    def _corporate_actions(
        self, raw: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """SCHEMA, NULL, NON_POSITIVE, HOLIDAY and DUPLICATE for corporate actions."""
        frame, cast_columns = _cast(raw, DataKind.CORPORATE_ACTIONS)
        kinds = [k.value for k in CorporateActionKind]
        checks = self._schema_checks(cast_columns)
        checks.append(
            _Check(
                RuleCode.SCHEMA,
                ~pl.col("kind").is_in(kinds),
                pl.format(
                    "kind '{}' is not one of {}", _fmt(pl.col("kind")), pl.lit(", ".join(kinds))
                ),
            )
        )
        checks += [
            _Check(RuleCode.NULL, pl.col(c).is_null(), pl.lit(f"{c} is null"))
            for c in ("symbol", "ex_date", "kind")
        ]
        needs = [
            ("split", "ratio"),
            ("bonus", "ratio"),
            ("rights", "ratio"),
            ("rights", "price"),
            ("dividend", "amount"),
        ]
        checks += [
            _Check(
                RuleCode.NULL,
                (pl.col("kind") == k) & ~pl.col(c).is_finite().fill_null(False),
                pl.format("{} of a {} is {}", pl.lit(c), pl.lit(k), _fmt(pl.col(c))),
            )
            for k, c in needs
        ]
        if self.cfg.enabled(RuleCode.NON_POSITIVE):
            checks += [
                _Check(
                    RuleCode.NON_POSITIVE,
                    pl.col(c) <= 0,
                    pl.format("{} {} is not positive", pl.lit(c), _fmt(pl.col(c))),
                )
                for c in ("ratio", "price", "amount")
            ]
        if self.calendar is not None and self.cfg.enabled(RuleCode.HOLIDAY):
            calendar = self.calendar
            closed = [
                d
                for d in frame["ex_date"].drop_nulls().unique().to_list()
                if calendar.facts(d).in_range and not calendar.facts(d).is_session
            ]
            checks.append(
                _Check(
                    RuleCode.HOLIDAY,
                    pl.col("ex_date").is_in(pl.Series(closed, dtype=pl.Date).implode()),
                    pl.format(
                        "ex-date {} is not a {} session",
                        _fmt(pl.col("ex_date")),
                        pl.lit(calendar.name),
                    ),
                )
            )
        passed, bad = _split(frame, _any(checks))
        rule, reason = _first_reason(checks)
        bad = bad.with_columns(rule.alias("rule"), reason.alias("reason"))
        if self.cfg.enabled(RuleCode.DUPLICATE) and passed.height:
            keys = list(KEYS[DataKind.CORPORATE_ACTIONS])
            passed, dups = _split(passed, ~pl.struct(keys).is_first_distinct())
            dups = dups.with_columns(
                pl.lit(RuleCode.DUPLICATE.value).alias("rule"),
                pl.format(
                    "same key ({}) = ({}) as an earlier row",
                    pl.lit(", ".join(keys)),
                    pl.concat_str([_fmt(pl.col(k)) for k in keys], separator=", "),
                ).alias("reason"),
            )
            bad = pl.concat([bad, dups], how="diagonal_relaxed")
        quarantine = self._quarantine(bad, cast_columns).sort("input_row")
        clean = passed.select(_schema(DataKind.CORPORATE_ACTIONS).names())
        symbol = pl.col("symbol").cast(pl.String).fill_null(_NULL_SYMBOL)
        rows = pl.concat(
            [
                passed.select(
                    symbol, pl.col("ex_date").alias("day"), pl.lit(None, pl.String).alias("rule")
                ),
                bad.select(symbol, pl.col("ex_date").alias("day"), pl.col("rule")),
            ]
        )
        agg = [
            pl.len().cast(pl.Int64).alias("rows"),
            pl.col("rule").is_null().sum().cast(pl.Int64).alias("clean"),
            pl.lit(0, pl.Int64).alias("missing"),
        ]
        for r in _QUARANTINE_RULES:
            agg += [
                (pl.col("rule") == r.value).sum().cast(pl.Int64).alias(f"rej_{r.value}"),
                pl.lit(0, pl.Int64).alias(f"unc_{r.value}"),
            ]
        stats = rows.group_by("symbol", "day", maintain_order=True).agg(agg)
        return clean, quarantine, stats


_SLICE_LIMIT = 64
"""Up to this many rejected rows, clean rows are taken as slices between them (no copy)."""


def _without(frame: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """``frame`` without the rows at ``rows`` (ascending positions)."""
    if rows.size == 0:
        return frame
    if rows.size > _SLICE_LIMIT:
        keep = np.ones(frame.height, dtype=bool)
        keep[rows] = False
        return frame.filter(pl.Series(keep))
    bounds = np.r_[-1, rows, frame.height].tolist()
    pieces = [frame.slice(a + 1, b - a - 1) for a, b in itertools.pairwise(bounds) if b - a > 1]
    return pl.concat(pieces) if pieces else frame.clear()


def _split(frame: pl.DataFrame, mask: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows where ``mask`` is False or null, rows where it is True)."""
    flag = frame.select(mask.fill_null(False)).to_series()
    if not flag.any():
        return frame, frame.clear()
    return frame.filter(~flag), frame.filter(flag)


def _by_row(names: list[str], counts: np.ndarray) -> list[dict[str, int]]:
    """Per row of ``counts`` (rows x names): the non-zero counts by name, in name order.

    Column by column, so the Python work follows the non-zero entries, not the rows.
    """
    out: list[dict[str, int]] = [{} for _ in range(counts.shape[0])]
    for j, name in enumerate(names):
        rows = np.flatnonzero(counts[:, j])
        for i, value in zip(rows.tolist(), counts[rows, j].tolist(), strict=True):
            out[i][name] = value
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


# -- streaming planner ------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowGroup:
    end_row: int
    sym_min: str | None
    ts_min: int | None
    sym_max: str | None = None


def _row_group_stats(paths: Sequence[str]) -> list[_RowGroup]:
    """Where every row group ends (in rows read) and its smallest symbol and ts, if known."""
    out: list[_RowGroup] = []
    offset = 0
    for path in paths:
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        sym_i = names.index("symbol") if "symbol" in names else None
        ts_i = names.index("ts") if "ts" in names else None
        scale = None
        if ts_i is not None:
            unit = getattr(pf.schema_arrow.field("ts").type, "unit", None)
            scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}.get(unit or "")
        for r in range(meta.num_row_groups):
            rg = meta.row_group(r)
            sym_min = sym_max = ts_min = None
            if sym_i is not None:
                st = rg.column(sym_i).statistics
                if st is not None and st.has_min_max and isinstance(st.min, str):
                    sym_min = st.min
                    sym_max = st.max if isinstance(st.max, str) else None
            if ts_i is not None and scale is not None:
                st = rg.column(ts_i).statistics
                if st is not None and st.has_min_max and isinstance(st.min_raw, int):
                    ts_min = st.min_raw * scale
            offset += rg.num_rows
            out.append(_RowGroup(offset, sym_min, ts_min, sym_max))
    return out


class _StatsPlanner:
    """Holds rows back until Parquet statistics prove their symbol-day complete.

    A symbol-day is complete once every unread row group starts at a larger symbol (files
    sorted by symbol) or after the end of that day (files sorted by time). Rows without a
    symbol or a timestamp are released at once (they are rejected whatever follows).
    """

    def __init__(self, paths: Sequence[str], run: _Run) -> None:
        self.row_groups = _row_group_stats(paths)
        self.run = run
        self.read = 0
        self.buffer: pl.DataFrame | None = None
        self.buffer_first: int | None = None
        """File position of the first held row while the held rows are one stretch of it."""

    def add(self, batch: pl.DataFrame) -> list[pl.DataFrame]:
        first_row: int | None = self.read  # file position of the batch's first row, if known
        self.read += batch.height
        if self.buffer is not None and self.buffer.height:
            batch = pl.concat([self.buffer, batch], how="vertical_relaxed")
            first_row = self.buffer_first
        self.buffer = None
        remaining = [g for g in self.row_groups if g.end_row > self.read]
        if not remaining:
            return [batch] if batch.height else []
        release = self._complete(batch, remaining, first_row)
        first_held = int(np.argmin(release)) if not release.all() else batch.height
        if not release[first_held:].any():  # released rows are a prefix: slice, don't filter
            ready, held = batch.slice(0, first_held), batch.slice(first_held)
            self.buffer_first = None if first_row is None else first_row + first_held
        else:
            mask = pl.Series(release)
            ready, held = batch.filter(mask), batch.filter(~mask)
            self.buffer_first = None
        self.buffer = held if held.height else None
        return [ready] if ready.height else []

    def _before_symbol(self, symbol: pl.Series, next_min: str, first_row: int | None) -> np.ndarray:
        """Rows whose symbol sorts before ``next_min``.

        When the batch is one stretch of the file, each row group it overlaps decides for all
        its rows at once if its symbols lie wholly before or from ``next_min``.
        """
        n = symbol.len()
        if first_row is None:
            return (symbol < next_min).fill_null(False).to_numpy()
        out = np.zeros(n, dtype=bool)
        start = 0
        for group in self.row_groups:
            lo, hi = max(start, first_row) - first_row, min(group.end_row, self.read) - first_row
            start = group.end_row
            if hi <= 0:
                continue
            if lo >= n:
                break
            if group.sym_max is not None and group.sym_max < next_min:
                out[lo:hi] = True
            elif group.sym_min is None or group.sym_max is None or group.sym_min < next_min:
                piece = symbol.slice(lo, hi - lo)
                out[lo:hi] = (piece < next_min).fill_null(False).to_numpy()
        return out

    def flush(self) -> list[pl.DataFrame]:
        held, self.buffer = self.buffer, None
        return [held] if held is not None and held.height else []

    def _complete(
        self, batch: pl.DataFrame, remaining: list[_RowGroup], first_row: int | None
    ) -> np.ndarray:
        """Rows whose symbol-day no unread row group can continue.

        Bounds decide first (the batch's time range against the frontier; the symbols of the
        row groups the batch's rows come from against the next one): row by row comparisons
        run only where a batch or a row group straddles a frontier.
        """
        symbol = batch["symbol"].cast(pl.String, strict=False)
        ts = batch["ts"] if batch.schema["ts"] == pl.Datetime("ns", "UTC") else _as_utc(batch["ts"])
        release = np.zeros(batch.height, dtype=bool)
        if symbol.null_count() or ts.null_count():
            release |= (symbol.is_null() | ts.is_null()).to_numpy()
        sym_mins = [g.sym_min for g in remaining]
        if None not in sym_mins:
            next_min = min(s for s in sym_mins if s is not None)
            # Every row read so far lies in a read row group (or the partly read one, which
            # starts at next_min or later), at or above that group's smallest symbol.
            read = [g.sym_min for g in self.row_groups if g.end_row <= self.read]
            if None in read or (read and min(s for s in read if s is not None) < next_min):
                release |= self._before_symbol(symbol, next_min, first_row)
        ts_mins = [g.ts_min for g in remaining]
        epoch = ts.dt.epoch("ns")
        if None not in ts_mins and not self.run.daily and epoch.null_count() < epoch.len():
            frontier = min(t for t in ts_mins if t is not None)
            # Null stamps count as 0, as they would in a per-row computation.
            low, high = int(epoch.min()), int(epoch.max())  # type: ignore[arg-type]
            nulls = epoch.null_count() > 0
            first, last = (min(low, 0), max(high, 0)) if nulls else (low, high)
            tz = self.run.tz
            offset = 0 if tz is None else _fixed_offset_ns(tz.key, first // DAY_NS, last // DAY_NS)

            def day_end(e: Any) -> Any:
                """End of the local day of ``e`` (monotone in ``e``)."""
                if offset is None:  # widen by more than any zone's offset
                    return ((e + 14 * 3600 * 10**9) // DAY_NS + 1) * DAY_NS + 14 * 3600 * 10**9
                return ((e + offset) // DAY_NS + 1) * DAY_NS - offset

            if day_end(last) <= frontier:
                release[:] = True
            elif day_end(first) <= frontier:
                release |= day_end(epoch.fill_null(0).to_numpy()) <= frontier
        return release
