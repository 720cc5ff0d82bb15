"""OFF_TICK: every price exactly on the tick grid in force on its day.

Exact, in integer price units (1/10,000 TRY); the tick table may change over time, so each
symbol-day is checked against the schedule in force that day (a day with none is unchecked).
"""

from __future__ import annotations

import functools
from datetime import date

import numpy as np
import polars as pl

from quant.data.schema import DataKind
from quant.data.validate import kernels
from quant.data.validate.casting import PREFIX
from quant.data.validate.checks.base import Check, fmt
from quant.data.validate.groups import Columns, Groups, Scratch
from quant.data.validate.rules import RuleCode
from quant.market.ticks import PRICE_SCALE, TickSchedule, TickSizeTable, to_units

TICK_COLUMNS: dict[DataKind, tuple[str, ...]] = {
    DataKind.TRADES: ("price",),
    DataKind.QUOTES: ("bid_price", "ask_price"),
    DataKind.BARS: ("open", "high", "low", "close"),
}
"""The price columns on the grid, per kind."""


def _schedule_arrays(schedule: TickSchedule) -> tuple[np.ndarray, np.ndarray]:
    lowers = np.array([to_units(t.lower) for t in schedule.tiers], dtype=np.int64)
    ticks = np.array([to_units(t.tick) for t in schedule.tiers], dtype=np.int64)
    return lowers, ticks


def _tier(lowers: np.ndarray, units: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(lowers, units, side="right") - 1, 0, None)


@functools.lru_cache(maxsize=16)
def table_arrays(table: TickSizeTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every schedule's tier lower bounds and ticks (price units), concatenated, and where each
    schedule's tiers start (one extra entry: the end)."""
    parts = [_schedule_arrays(s) for s in table.schedules]
    sizes = [lowers.shape[0] for lowers, _ in parts]
    start = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    lowers = np.concatenate([lo for lo, _ in parts]).astype(np.int64)
    ticks = np.concatenate([t for _, t in parts]).astype(np.int64)
    return start, lowers, ticks


def off_tick(
    prices: np.ndarray,
    groups: Groups,
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
    start, lowers, ticks = table_arrays(table)
    return kernels.off_tick(
        prices,
        groups.gid,
        np.ascontiguousarray(schedule_of_group, dtype=np.int64),
        start,
        lowers,
        ticks,
        float(PRICE_SCALE),
        out,
    )


def tick_sizes(prices: np.ndarray, schedules: np.ndarray, table: TickSizeTable) -> np.ndarray:
    out = np.full(prices.shape, np.nan)
    with np.errstate(invalid="ignore"):
        units = np.rint(np.nan_to_num(prices * PRICE_SCALE, nan=0.0, posinf=0.0, neginf=0.0))
    for s in np.unique(schedules[schedules >= 0]).tolist():
        lowers, ticks = _schedule_arrays(table.schedules[s])
        sel = schedules == s
        out[sel] = ticks[_tier(lowers, units[sel].astype(np.int64))] / PRICE_SCALE
    return out


def schedule_index(table: TickSizeTable, days: list[date]) -> np.ndarray:
    """Index of the tick schedule in force on each day (-1: none yet)."""
    starts = np.array([s.effective_from for s in table.schedules], dtype="datetime64[D]")
    wanted = np.array(days, dtype="datetime64[D]")
    return (np.searchsorted(starts, wanted, side="right") - 1).astype(np.int64)


def off_tick_checks(kind: DataKind) -> list[Check]:
    """One check per price column; the flags come from ``off_tick_flags``."""
    return [
        Check(
            RuleCode.OFF_TICK,
            pl.col(f"{PREFIX}offtick_{c}"),
            pl.format(
                "{} {} is not on the {} TRY tick grid in force on {}",
                pl.lit(c),
                fmt(pl.col(c)),
                fmt(pl.col(f"{PREFIX}tick_{c}")),
                fmt(pl.col(f"{PREFIX}day")),
            ),
            flag=f"offtick_{c}",
        )
        for c in TICK_COLUMNS[kind]
    ]


def off_tick_flags(
    kind: DataKind,
    table: TickSizeTable,
    cols: Columns,
    groups: Groups,
    unchecked: dict[RuleCode, np.ndarray],
    scratch: Scratch,
) -> dict[str, np.ndarray]:
    """``offtick_<column>`` flags in sorted order; days without a schedule count unchecked."""
    flags: dict[str, np.ndarray] = {}
    schedule = schedule_index(table, groups.days)
    if (schedule < 0).any():
        unchecked[RuleCode.OFF_TICK] = np.where(schedule < 0, groups.rows, 0)
    for c in TICK_COLUMNS[kind]:
        out = scratch.get(f"offtick_{c}", cols(c).shape[0], np.bool_)
        flags[f"offtick_{c}"] = off_tick(cols(c), groups, schedule, table, out)
    return flags


def tick_size_columns(
    kind: DataKind, table: TickSizeTable, sub: pl.DataFrame, schedule: np.ndarray
) -> list[pl.Series]:
    """The tick in force for each rejected row's prices (``_v_tick_<column>``, for reasons);
    ``schedule``: each row's schedule index."""
    extra: list[pl.Series] = []
    for c in TICK_COLUMNS[kind]:
        prices = sub[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
        extra.append(pl.Series(f"{PREFIX}tick_{c}", tick_sizes(prices, schedule, table)))
    return extra
