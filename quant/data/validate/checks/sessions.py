"""HOLIDAY and OUTSIDE_SESSION: rows on days and at times the exchange does not trade.

Trades and bars must fall in the phases where trades print; quotes in the phases that accept
orders (windows per day from ``calendar.DayFacts``). Days outside the calendar's range are
unchecked rather than rejected.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from quant.data.schema import DataKind
from quant.data.validate import kernels
from quant.data.validate.calendar import DayFacts
from quant.data.validate.casting import PREFIX
from quant.data.validate.checks.base import Check, fmt
from quant.data.validate.groups import Columns, Groups, PerGroup, Scratch
from quant.data.validate.rules import RuleCode, ValidationConfig


def holiday_check(calendar_name: str) -> Check:
    """HOLIDAY on the ``holiday`` flag of ``session_flags``."""
    return Check(
        RuleCode.HOLIDAY,
        pl.col(f"{PREFIX}holiday"),
        pl.format(
            "{} ({}) is not a {} session",
            fmt(pl.col(f"{PREFIX}day")),
            pl.col(f"{PREFIX}day").dt.strftime("%A"),
            pl.lit(calendar_name),
        ),
        flag="holiday",
    )


def outside_session_check(kind: DataKind) -> Check:
    """OUTSIDE_SESSION on the ``outside`` flag of ``session_flags``."""
    what = "order-entry" if kind is DataKind.QUOTES else "trading"
    start = "bar from" if kind is DataKind.BARS else "at"
    return Check(
        RuleCode.OUTSIDE_SESSION,
        pl.col(f"{PREFIX}outside"),
        pl.format(
            "{} {} local time on {} is outside the {} windows {}",
            pl.lit(start),
            _hms(pl.col(f"{PREFIX}tod")),
            fmt(pl.col(f"{PREFIX}day")),
            pl.lit(what),
            pl.col(f"{PREFIX}windows"),
        ),
        flag="outside",
    )


def session_flags(
    kind: DataKind,
    config: ValidationConfig,
    cols: Columns,
    groups: Groups,
    facts: list[DayFacts],
    unchecked: dict[RuleCode, np.ndarray],
    scratch: Scratch,
) -> dict[str, np.ndarray | PerGroup]:
    """The ``holiday`` (per symbol-day) and ``outside`` flags, in sorted order."""
    flags: dict[str, np.ndarray | PerGroup] = {}
    in_range = np.array([f.in_range for f in facts], dtype=bool)
    if not in_range.all():
        for rule in (RuleCode.HOLIDAY, RuleCode.OUTSIDE_SESSION):
            if config.enabled(rule):
                unchecked[rule] = np.where(in_range, 0, groups.rows)
    if config.enabled(RuleCode.HOLIDAY):
        holiday = np.array([f.in_range and not f.is_session for f in facts], dtype=bool)
        flags["holiday"] = PerGroup(holiday, groups.gid)
    if config.enabled(RuleCode.OUTSIDE_SESSION):
        flags["outside"] = _outside(kind, cols, groups, facts, in_range, scratch)
    return flags


def _outside(
    kind: DataKind,
    cols: Columns,
    groups: Groups,
    facts: list[DayFacts],
    in_range: np.ndarray,
    scratch: Scratch,
) -> np.ndarray:
    """True where a row lies outside every allowed window of its day (bars: no overlap).

    One compiled pass; each symbol-day carries its own list of windows.
    """
    windows = [f.quotes if kind is DataKind.QUOTES else f.trades for f in facts]
    count = np.fromiter((len(w) for w in windows), dtype=np.int64, count=len(windows))
    window_start = np.r_[0, np.cumsum(count)].astype(np.int64)
    bounds = np.array([b for w in windows for b in w], dtype=np.int64).reshape(-1, 2)
    tod = cols(f"{PREFIX}tod")
    bars = kind is DataKind.BARS
    end = tod + np.maximum(cols("ts_end") - cols("ts"), 1) if bars else tod
    return kernels.outside_windows(
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


def windows_column(kind: DataKind, g: np.ndarray, facts: list[DayFacts]) -> pl.Series:
    """The allowed windows of each rejected row's day as text (``_v_windows``, for reasons);
    ``g``: each row's symbol-day."""
    quotes = kind is DataKind.QUOTES
    text = {
        i: _windows_text(facts[i].quotes if quotes else facts[i].trades) for i in set(g.tolist())
    }
    return pl.Series(f"{PREFIX}windows", [text[i] for i in g.tolist()], pl.String)


def _hms(tod: pl.Expr) -> pl.Expr:
    """ns since midnight as HH:MM:SS.fff"""
    midnight = pl.lit(datetime(2000, 1, 1)).cast(pl.Datetime("ns"))
    return (midnight + pl.duration(nanoseconds=tod)).dt.strftime("%H:%M:%S%.3f")


def _windows_text(windows: tuple[tuple[int, int], ...]) -> str:
    if not windows:
        return "none (closed)"

    def hm(ns: int) -> str:
        m = ns // (60 * 10**9)
        return f"{m // 60:02d}:{m % 60:02d}"

    return ", ".join(f"{hm(lo)}-{hm(hi)}" for lo, hi in windows)
