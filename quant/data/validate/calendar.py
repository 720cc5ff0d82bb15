"""Local days and times of rows, and what the exchange calendar says about each day.

Rows are grouped by *local* day (the calendar's time zone; UTC without a calendar), and a day's
facts (session or not, the previous session, the windows in which trades and quotes may occur)
come from exchange_calendars, with BIST's own phase timetable for XIST.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import polars as pl

from quant.data.validate import kernels
from quant.data.validate.groups import Scratch, numpy_of
from quant.market.calendar import SessionPhase, TradingCalendar

DAY_NS = 86_400 * 10**9


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
class DayFacts:
    in_range: bool
    is_session: bool
    previous_session: date | None
    trades: tuple[tuple[int, int], ...] = ()
    """Windows (ns since local midnight) in which trades may print."""
    quotes: tuple[tuple[int, int], ...] = ()
    """Windows in which orders are accepted (quotes may update)."""
    continuous: tuple[tuple[int, int], ...] = ()
    """Continuous trading, where intraday bars are expected (GAP)."""


class Calendar:
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
        self._facts: dict[date, DayFacts] = {}
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

    def facts(self, day: date) -> DayFacts:
        cached = self._facts.get(day)
        if cached is None:
            cached = self._facts[day] = self._compute(day)
        return cached

    def _compute(self, day: date) -> DayFacts:
        if not self.first_day <= day <= self.last_day:
            return DayFacts(in_range=False, is_session=False, previous_session=None)
        if day not in self._session_set:
            return DayFacts(in_range=True, is_session=False, previous_session=None)
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
            return DayFacts(True, True, previous, trades, quotes, cont)
        regular = self._regular_hours[day]
        return DayFacts(True, True, previous, regular, regular, regular)


@functools.cache
def calendar_named(name: str) -> Calendar:
    """One calendar per name per process: its day facts are pure functions of the day."""
    return Calendar(name)


@functools.lru_cache(maxsize=256)
def fixed_offset_ns(tz_key: str, first_day: int, last_day: int) -> int | None:
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


def local_clock(
    ts: pl.Series, tz: ZoneInfo | None, scratch: Scratch | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local day (days since 1970-01-01), time of day (ns) and the UTC epoch (ns) of non-null
    UTC timestamps.

    Uses integer arithmetic when the zone's offset is fixed over the data (Istanbul since
    2016), and polars' time-zone conversion otherwise.
    """
    epoch = numpy_of(ts.dt.epoch("ns"), scratch, "epoch")
    if epoch.size == 0:
        return epoch.copy(), epoch.copy(), epoch
    offset = (
        0
        if tz is None
        else fixed_offset_ns(tz.key, int(epoch.min()) // DAY_NS, int(epoch.max()) // DAY_NS)
    )
    if offset is not None:
        n = epoch.shape[0]
        if scratch is None:
            return (*kernels.local_clock(epoch, offset), epoch)
        day, tod = scratch.get("day", n, np.int64), scratch.get("tod", n, np.int64)
        return (*kernels.local_clock(epoch, offset, day, tod), epoch)
    assert tz is not None
    local = ts.dt.convert_time_zone(tz.key).dt.replace_time_zone(None).dt.epoch("ns")
    local = local.to_numpy()
    day = local // DAY_NS
    return day, local - day * DAY_NS, epoch
