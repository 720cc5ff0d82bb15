"""The BIST trading day: which sessions exist (``exchange_calendars`` XIST) and their phases.

Sessions and holidays come from ``exchange_calendars``; the phase timetable inside a session is
BIST's own and lives here as dated data. Half days end continuous trading at 12:30 and run the
same closing sequence shifted to that time.
"""

from __future__ import annotations

import bisect
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

ISTANBUL = ZoneInfo("Europe/Istanbul")

# exchange_calendars 4.13 reads Series.values on tz-aware data, which pandas 3.1 deprecates;
# the values it reads are correct, so the warning is noise for our users.
warnings.filterwarnings("ignore", message="Series.values returning an ndarray")


class SessionPhase(StrEnum):
    CLOSED = "closed"
    OPENING_AUCTION = "opening_auction"
    """Order collection before the open; no trades."""
    OPENING_UNCROSS = "opening_uncross"
    """The opening price is set at the price that maximises executed volume."""
    CONTINUOUS = "continuous"
    CLOSING_PRICE_PUBLICATION = "closing_price_publication"
    CLOSING_AUCTION = "closing_auction"
    CLOSING_UNCROSS = "closing_uncross"
    TRADES_AT_CLOSE = "trades_at_close"

    @property
    def trades_allowed(self) -> bool:
        """Phases in which prints may occur (auction uncrosses, continuous, trades at close)."""
        return self in _TRADING_PHASES

    @property
    def accepts_orders(self) -> bool:
        """BIST takes no order entry, cancel or amend while it computes an auction price."""
        return self not in _NO_ENTRY_PHASES


_NO_ENTRY_PHASES = frozenset(
    {
        SessionPhase.CLOSED,
        SessionPhase.OPENING_UNCROSS,
        SessionPhase.CLOSING_PRICE_PUBLICATION,
        SessionPhase.CLOSING_UNCROSS,
    }
)

_TRADING_PHASES = frozenset(
    {
        SessionPhase.OPENING_UNCROSS,
        SessionPhase.CONTINUOUS,
        SessionPhase.CLOSING_UNCROSS,
        SessionPhase.TRADES_AT_CLOSE,
    }
)


@dataclass(frozen=True)
class PhaseWindow:
    """``phase`` runs from ``start`` (inclusive) to ``end`` (exclusive), Istanbul local time."""

    phase: SessionPhase
    start: time
    end: time


@dataclass(frozen=True)
class SessionTimetable:
    """The phases of a full day and of a half day, in force from ``effective_from``."""

    effective_from: date
    full_day: tuple[PhaseWindow, ...]
    half_day: tuple[PhaseWindow, ...]
    source: str = ""


def _w(phase: SessionPhase, start: str, end: str) -> PhaseWindow:
    return PhaseWindow(phase, time.fromisoformat(start), time.fromisoformat(end))


def _closing_sequence(continuous_end: str) -> tuple[PhaseWindow, ...]:
    """The closing phases start when continuous trading ends, at the same offsets every day."""
    t0 = datetime.combine(date(2000, 1, 1), time.fromisoformat(continuous_end))
    offsets = [
        (SessionPhase.CLOSING_PRICE_PUBLICATION, 0, 1),
        (SessionPhase.CLOSING_AUCTION, 1, 5),
        (SessionPhase.CLOSING_UNCROSS, 5, 8),
        (SessionPhase.TRADES_AT_CLOSE, 8, 10),
    ]
    return tuple(
        PhaseWindow(phase, (t0 + timedelta(minutes=a)).time(), (t0 + timedelta(minutes=b)).time())
        for phase, a, b in offsets
    )


_OPENING = (
    _w(SessionPhase.OPENING_AUCTION, "09:40", "09:55"),
    _w(SessionPhase.OPENING_UNCROSS, "09:55", "10:00"),
)

BIST_TIMETABLES: tuple[SessionTimetable, ...] = (
    SessionTimetable(
        effective_from=date(2000, 1, 1),
        full_day=(
            *_OPENING,
            _w(SessionPhase.CONTINUOUS, "10:00", "18:00"),
            *_closing_sequence("18:00"),
        ),
        half_day=(
            *_OPENING,
            _w(SessionPhase.CONTINUOUS, "10:00", "12:30"),
            *_closing_sequence("12:30"),
        ),
        source="BIST equity market session flow (BIST.md); the opening uncross ends at a random"
        " moment between 09:55 and 10:00, the closing uncross between 18:05 and 18:07",
    ),
)


@dataclass(frozen=True)
class SessionInfo:
    day: date
    half_day: bool
    windows: tuple[PhaseWindow, ...]

    @property
    def continuous_window(self) -> PhaseWindow:
        return next(w for w in self.windows if w.phase is SessionPhase.CONTINUOUS)

    def phase_at_local(self, t: time) -> SessionPhase:
        for w in self.windows:
            if w.start <= t < w.end:
                return w.phase
        return SessionPhase.CLOSED

    def bounds(self, phase: SessionPhase) -> tuple[datetime, datetime]:
        """Start and end of ``phase`` on this day as aware Istanbul datetimes."""
        w = next(w for w in self.windows if w.phase is phase)
        return (
            datetime.combine(self.day, w.start, ISTANBUL),
            datetime.combine(self.day, w.end, ISTANBUL),
        )

    @property
    def first_order_time(self) -> datetime:
        return datetime.combine(self.day, self.windows[0].start, ISTANBUL)

    @property
    def last_trade_time(self) -> datetime:
        return datetime.combine(self.day, self.windows[-1].end, ISTANBUL)


class TradingCalendar:
    """Sessions, holidays, half days and intraday phases of an exchange (BIST by default)."""

    def __init__(
        self,
        calendar_name: str = "XIST",
        timetables: Sequence[SessionTimetable] = BIST_TIMETABLES,
    ) -> None:
        self.calendar_name = calendar_name
        self._xcal = _load_xcal(calendar_name)
        self.timetables = tuple(sorted(timetables, key=lambda t: t.effective_from))
        self._starts = [t.effective_from for t in self.timetables]
        early = self._xcal.early_closes
        self._half_days = frozenset(d.date() for d in early)

    @property
    def first_day(self) -> date:
        return self._xcal.first_session.date()

    @property
    def last_day(self) -> date:
        return self._xcal.last_session.date()

    def timetable_on(self, day: date) -> SessionTimetable:
        i = bisect.bisect_right(self._starts, day) - 1
        if i < 0:
            raise ValueError(f"no session timetable is in force on {day}")
        return self.timetables[i]

    def _check_range(self, day: date) -> None:
        if not self.first_day <= day <= self.last_day:
            raise ValueError(
                f"{day} is outside the {self.calendar_name} calendar "
                f"({self.first_day} to {self.last_day})"
            )

    def is_session(self, day: date) -> bool:
        self._check_range(day)
        return bool(self._xcal.is_session(pd.Timestamp(day)))

    def is_half_day(self, day: date) -> bool:
        return day in self._half_days

    def sessions(self, start: date, end: date) -> list[date]:
        """Trading days between ``start`` and ``end``, both inclusive."""
        self._check_range(start)
        self._check_range(end)
        return [
            d.date() for d in self._xcal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))
        ]

    def holidays(self, start: date, end: date) -> list[date]:
        """Weekdays between ``start`` and ``end`` on which the exchange is closed."""
        sessions = set(self.sessions(start, end))
        days = pd.bdate_range(start, end)
        return [d.date() for d in days if d.date() not in sessions]

    def session(self, day: date) -> SessionInfo | None:
        """The phase timetable of ``day``, or None when the exchange is closed."""
        if not self.is_session(day):
            return None
        half = self.is_half_day(day)
        tt = self.timetable_on(day)
        return SessionInfo(day, half, tt.half_day if half else tt.full_day)

    def next_session(self, day: date) -> date:
        self._check_range(day)
        return (
            self._xcal.date_to_session(pd.Timestamp(day), direction="next").date()
            if not self.is_session(day)
            else self._xcal.next_session(pd.Timestamp(day)).date()
        )

    def previous_session(self, day: date) -> date:
        self._check_range(day)
        ts = pd.Timestamp(day)
        if self.is_session(day):
            return self._xcal.previous_session(ts).date()
        return self._xcal.date_to_session(ts, direction="previous").date()

    def phase_at(self, timestamp: datetime | pd.Timestamp) -> SessionPhase:
        """The market phase at an instant. Naive timestamps are taken as UTC."""
        ts = pd.Timestamp(timestamp)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        local = ts.tz_convert(ISTANBUL)
        info = self.session(local.date())
        if info is None:
            return SessionPhase.CLOSED
        return info.phase_at_local(local.time())


@functools.cache
def _load_xcal(name: str) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(name)
