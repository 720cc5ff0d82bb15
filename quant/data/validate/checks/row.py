"""Stage 1, the row-level rules: each row judged on its own, in precedence order.

SCHEMA, NULL, NON_POSITIVE, OHLC and CROSSED are here; OFF_TICK, HOLIDAY and OUTSIDE_SESSION
come from ``ticks`` and ``sessions``. Whether a row breaks any check is computed for every row
(numpy shortcuts where a check has one, else one polars select); which rule it broke first and
why is worded on the rejected rows only (``RowChecks.reasons``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import polars as pl

from quant.data.schema import DataKind, TradeCondition
from quant.data.validate.calendar import DayFacts
from quant.data.validate.casting import PREFIX, lake_schema
from quant.data.validate.checks.base import Check, any_broken, first_reason, fmt, ts_fmt
from quant.data.validate.checks.sessions import (
    holiday_check,
    outside_session_check,
    session_flags,
    windows_column,
)
from quant.data.validate.checks.ticks import (
    off_tick_checks,
    off_tick_flags,
    schedule_index,
    tick_size_columns,
)
from quant.data.validate.groups import Columns, Groups, PerGroup, Scratch
from quant.data.validate.rules import RuleCode, ValidationConfig

_POSITIVE: dict[DataKind, tuple[str, ...]] = {
    DataKind.TRADES: ("price", "size"),
    DataKind.QUOTES: ("bid_price", "ask_price", "bid_size", "ask_size"),
    DataKind.BARS: ("open", "high", "low", "close", "vwap"),
}
"""Columns that must be > 0 (NON_POSITIVE), per kind."""


class RowChecks:
    """The row-level checks of a run, built once per input layout (the columns that needed a
    cast, with or without a calendar), and the numpy flags and reason columns they read."""

    def __init__(self, kind: DataKind, config: ValidationConfig, calendar_name: str | None) -> None:
        self.kind = kind
        self.cfg = config
        self.calendar_name = calendar_name
        self._checks: dict[tuple[tuple[str, ...], bool], list[Check]] = {}
        self._reasons: dict[tuple[tuple[str, ...], bool], tuple[pl.Expr, pl.Expr]] = {}

    def checks(self, cast_columns: Sequence[str], with_calendar: bool) -> list[Check]:
        """Every row-level check, in precedence order (built once per input layout)."""
        key = (tuple(cast_columns), with_calendar)
        if key not in self._checks:
            self._checks[key] = self._build(cast_columns, with_calendar)
        return self._checks[key]

    def reasons(self, cast_columns: Sequence[str], with_calendar: bool) -> tuple[pl.Expr, pl.Expr]:
        """``first_reason`` of the row-level checks (built once per input layout)."""
        key = (tuple(cast_columns), with_calendar)
        if key not in self._reasons:
            self._reasons[key] = first_reason(self.checks(cast_columns, with_calendar))
        return self._reasons[key]

    def _build(self, cast_columns: Sequence[str], with_calendar: bool) -> list[Check]:
        kind = self.kind
        on = self.cfg.enabled
        checks = schema_checks(kind, cast_columns) + null_checks(kind)
        if on(RuleCode.NON_POSITIVE):
            checks += _non_positive_checks(kind)
        if kind is DataKind.BARS and on(RuleCode.OHLC):
            checks += _ohlc_checks()
        if kind is DataKind.QUOTES and on(RuleCode.CROSSED):
            checks.append(_crossed_check())
        if on(RuleCode.OFF_TICK):
            checks += off_tick_checks(kind)
        if with_calendar and on(RuleCode.HOLIDAY):
            assert self.calendar_name is not None
            checks.append(holiday_check(self.calendar_name))
        if with_calendar and on(RuleCode.OUTSIDE_SESSION):
            checks.append(outside_session_check(kind))
        return checks

    def flags(
        self,
        cols: Columns,
        groups: Groups,
        facts: list[DayFacts] | None,
        unchecked: dict[RuleCode, np.ndarray],
        scratch: Scratch,
    ) -> dict[str, np.ndarray | PerGroup]:
        """Numpy flags in sorted order: off-tick per price column, holiday, outside session."""
        flags: dict[str, np.ndarray | PerGroup] = {}
        if groups.n == 0:
            return flags
        if self.cfg.enabled(RuleCode.OFF_TICK):
            flags.update(
                off_tick_flags(self.kind, self.cfg.tick_table, cols, groups, unchecked, scratch)
            )
        if facts is not None:
            flags.update(
                session_flags(self.kind, self.cfg, cols, groups, facts, unchecked, scratch)
            )
        return flags

    def reason_columns(
        self, sub: pl.DataFrame, groups: Groups, facts: list[DayFacts] | None
    ) -> pl.DataFrame:
        """Columns the row-level reasons refer to: tick size in force, session windows."""
        extra: list[pl.Series] = []
        g = sub[f"{PREFIX}gid"].to_numpy()
        if self.cfg.enabled(RuleCode.OFF_TICK):
            schedule = schedule_index(self.cfg.tick_table, groups.days)[g]
            extra += tick_size_columns(self.kind, self.cfg.tick_table, sub, schedule)
        if facts is not None:
            extra.append(windows_column(self.kind, g, facts))
        return sub.with_columns(extra) if extra else sub


def row_mask(
    frame: pl.DataFrame,
    cols: Columns,
    groups: Groups,
    checks: Sequence[Check],
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
    rest: list[Check] = []
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
        in_input_order |= frame.select(any_broken(rest)).to_series().to_numpy()
    if in_input_order.any():
        bad |= groups.sort(in_input_order)
    return bad


def schema_checks(kind: DataKind, cast_columns: Sequence[str]) -> list[Check]:
    """SCHEMA: values that could not be read (``casting.cast``), trades' side and condition."""
    schema = lake_schema(kind)
    checks = [
        Check(
            RuleCode.SCHEMA,
            pl.col(f"{PREFIX}schema_{c}"),
            pl.format(
                "{} value '{}' cannot be read as {}",
                pl.lit(c),
                fmt(pl.col(f"{PREFIX}orig_{c}")),
                pl.lit(str(schema[c])),
            ),
        )
        for c in cast_columns
    ]
    if kind is DataKind.TRADES:
        conditions = [c.value for c in TradeCondition]
        checks += [
            Check(
                RuleCode.SCHEMA,
                ~pl.col("side").is_in([-1, 0, 1]),
                pl.format("side {} is not one of -1, 0, 1", fmt(pl.col("side"))),
                fast=lambda cols: (cols("side") < -1) | (cols("side") > 1),
            ),
            Check(
                RuleCode.SCHEMA,
                ~pl.col("condition").is_in(conditions),
                pl.format(
                    "condition '{}' is not a trade condition ({})",
                    fmt(pl.col("condition")),
                    pl.lit(", ".join(conditions)),
                ),
                domain=("condition", tuple(conditions)),
            ),
        ]
    return checks


def null_checks(kind: DataKind) -> list[Check]:
    """NULL: every schema column; float columns also NaN and infinity."""
    checks: list[Check] = []
    for name, dtype in lake_schema(kind).items():
        checks.append(
            Check(RuleCode.NULL, pl.col(name).is_null(), pl.lit(f"{name} is null"), None, name)
        )
        if dtype.is_float():
            checks.append(
                Check(
                    RuleCode.NULL,
                    ~pl.col(name).is_finite(),
                    pl.format("{} is {}", pl.lit(name), fmt(pl.col(name))),
                    fast=functools.partial(_not_finite, name),
                )
            )
    return checks


def _non_positive_checks(kind: DataKind) -> list[Check]:
    """Prices and sizes > 0; bars' volume and trade count >= 0."""
    positive = _POSITIVE[kind]
    checks: list[Check] = [
        Check(
            RuleCode.NON_POSITIVE,
            pl.col(c) <= 0,
            pl.format("{} {} is not positive", pl.lit(c), fmt(pl.col(c))),
            fast=functools.partial(_not_positive, c),
        )
        for c in positive
    ]
    if kind is DataKind.BARS:
        checks += [
            Check(
                RuleCode.NON_POSITIVE,
                pl.col(c) < 0,
                pl.format("{} {} is negative", pl.lit(c), fmt(pl.col(c))),
            )
            for c in ("volume", "trade_count")
        ]
    return checks


def _ohlc_checks() -> list[Check]:
    """Bars whose values cannot belong to one bar."""
    o, h, lo, c, v = (pl.col(x) for x in ("open", "high", "low", "close", "vwap"))
    top, bottom = pl.max_horizontal(o, c), pl.min_horizontal(o, c)
    tol = 1e-9 * h.abs()
    return [
        Check(
            RuleCode.OHLC,
            pl.col("ts_end") <= pl.col("ts"),
            pl.format(
                "ts_end {} is not after ts {}",
                ts_fmt(pl.col("ts_end")),
                ts_fmt(pl.col("ts")),
            ),
        ),
        Check(RuleCode.OHLC, lo > h, pl.format("low {} is above high {}", fmt(lo), fmt(h))),
        Check(
            RuleCode.OHLC,
            h < top,
            pl.format("high {} is below max(open, close) {}", fmt(h), fmt(top)),
        ),
        Check(
            RuleCode.OHLC,
            lo > bottom,
            pl.format("low {} is above min(open, close) {}", fmt(lo), fmt(bottom)),
        ),
        Check(
            RuleCode.OHLC,
            (v < lo - tol) | (v > h + tol),
            pl.format("vwap {} is outside [low {}, high {}]", fmt(v), fmt(lo), fmt(h)),
        ),
    ]


def _crossed_check() -> Check:
    """Quotes with the bid at or above the ask."""
    return Check(
        RuleCode.CROSSED,
        pl.col("bid_price") >= pl.col("ask_price"),
        pl.format(
            "bid {} is at or above ask {}",
            fmt(pl.col("bid_price")),
            fmt(pl.col("ask_price")),
        ),
        fast=_crossed,
    )


def _not_finite(name: str, cols: Columns) -> np.ndarray:
    return ~np.isfinite(cols(name))


def _not_positive(name: str, cols: Columns) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return cols(name) <= 0


def _crossed(cols: Columns) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return cols("bid_price") >= cols("ask_price")
