"""Calendar context (session day, time of day, minutes since the open, market phase) and the
features that expose it.

``SessionClock`` derives the context from UTC time stamps and the ``TradingCalendar`` with the
same integer arithmetic in both modes: per event (``context``, which keeps the day's offset,
boundaries and current phase window, so that an event costs a few comparisons) and over many
events with numpy (``contexts``: ``annotate`` for history frames, micro-batches for streams).
The phase it gives is ``TradingCalendar.phase_at`` (tested), encoded by ``PHASE_CODES``.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from quant.features import kernels
from quant.features.base import (
    CALENDAR_CONTEXT,
    MINUTES_SINCE_OPEN,
    PHASE,
    TIME_OF_DAY,
    Feature,
)
from quant.market.calendar import ISTANBUL, SessionPhase, TradingCalendar

PHASES: tuple[SessionPhase, ...] = (
    SessionPhase.CLOSED,
    SessionPhase.OPENING_AUCTION,
    SessionPhase.OPENING_UNCROSS,
    SessionPhase.CONTINUOUS,
    SessionPhase.CLOSING_PRICE_PUBLICATION,
    SessionPhase.CLOSING_AUCTION,
    SessionPhase.CLOSING_UNCROSS,
    SessionPhase.TRADES_AT_CLOSE,
)
"""Phase by code, fixed here (not by the enum's order): a model trained on these codes must
read the same phase from them forever. New phases get new codes at the end."""
PHASE_CODES: dict[SessionPhase, int] = {phase: code for code, phase in enumerate(PHASES)}
CLOSED = PHASE_CODES[SessionPhase.CLOSED]

DAY_NS = 86_400 * 10**9
MINUTE_NS = 60.0 * 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_MIN_NS = -(2**63)
_MAX_NS = 2**63 - 1


def to_ns(moment: datetime) -> int:
    """Exact UTC epoch nanoseconds of an aware datetime (no float seconds on the way)."""
    return (moment - _EPOCH) // _MICROSECOND * 1000


@dataclass(frozen=True, slots=True)
class SessionDay:
    """One Istanbul day as UTC nanosecond boundaries; ``open_ns`` is None without a session."""

    day: int
    open_ns: int | None = None
    close_ns: int | None = None
    starts: tuple[int, ...] = ()
    codes: tuple[int, ...] = ()

    def phase(self, ns: int) -> int:
        return self.phase_window(ns)[0]

    def phase_window(self, ns: int) -> tuple[int, int, int]:
        """``(code, from, until)``: the phase at ``ns`` and the UTC span it holds over within
        this day's session (before the open and after the close: to the day's bounds)."""
        if self.open_ns is None:
            return CLOSED, _MIN_NS, _MAX_NS
        if ns < self.open_ns:
            return CLOSED, _MIN_NS, self.open_ns
        if ns >= self.close_ns:
            return CLOSED, self.close_ns, _MAX_NS
        i = bisect.bisect_right(self.starts, ns) - 1
        until = self.starts[i + 1] if i + 1 < len(self.starts) else self.close_ns
        return self.codes[i], self.starts[i], until

    def minutes_since_open(self, ns: int) -> float:
        if self.open_ns is None or ns < self.open_ns or ns > self.close_ns:
            return math.nan
        return (ns - self.open_ns) / MINUTE_NS


@functools.cache
def _default_calendar() -> TradingCalendar:
    return TradingCalendar()


class SessionClock:
    """Calendar context at UTC instants, in the exchange's time zone (Istanbul by default)."""

    def __init__(self, calendar: TradingCalendar | None = None, tz: ZoneInfo = ISTANBUL) -> None:
        self.calendar = calendar if calendar is not None else _default_calendar()
        self.tz = tz
        self._days: dict[int, SessionDay] = {}
        self._lo = 1
        self._hi = 0
        self._offset = 0
        self._last_session_ns: int | None = None
        self._last_stamp_ns: int | None = None
        self._last_context = (math.nan, math.nan, math.nan, float(CLOSED))
        self._utc_offsets: dict[int, int | None] = {}
        self._info_day: int | None = None
        self._info = SessionDay(0)
        self._phase = (CLOSED, 0, 0)

    # -- per event ---------------------------------------------------------------------

    def local_ns(self, ns: int) -> int:
        """Local wall-clock nanoseconds since the epoch of the UTC instant ``ns``."""
        if self._lo <= ns < self._hi:
            return ns + self._offset
        offset = self._offset_at(ns)
        local = ns + offset
        start = local - local % DAY_NS - offset
        end = start + DAY_NS
        if self._offset_at(start) == offset == self._offset_at(end - 1):
            self._lo, self._hi, self._offset = start, end, offset
        else:  # a clock change inside this local day: no caching across it
            self._lo, self._hi, self._offset = ns, ns + 1, offset
        return local

    def _offset_at(self, ns: int) -> int:
        moment = datetime.fromtimestamp(ns // 10**9, tz=self.tz)
        return int(moment.utcoffset().total_seconds()) * 10**9

    def session_day(self, day: int) -> SessionDay:
        """The boundaries of local day number ``day`` (days since 1970-01-01), cached."""
        info = self._days.get(day)
        if info is None:
            info = self._days[day] = self._build_day(day)
        return info

    def _build_day(self, day: int) -> SessionDay:
        local_date = _EPOCH_DAY + timedelta(days=day)
        cal = self.calendar
        if not cal.first_day <= local_date <= cal.last_day:
            return SessionDay(day)
        info = cal.session(local_date)
        if info is None:
            return SessionDay(day)
        starts = tuple(to_ns(datetime.combine(local_date, w.start, self.tz)) for w in info.windows)
        close = to_ns(datetime.combine(local_date, info.windows[-1].end, self.tz))
        codes = tuple(PHASE_CODES[w.phase] for w in info.windows)
        return SessionDay(day, starts[0], close, starts, codes)

    def context(self, session_ns: int, stamp_ns: int) -> tuple[float, float, float, float]:
        """``(session, time_of_day, minutes_since_open, phase)`` of an event, as floats.

        Events come in time order, so the day's offset and boundaries, the phase window and
        the last answer (every bar of a slice, ticks of one millisecond share it) are kept:
        an event costs a few comparisons.
        """
        if session_ns == self._last_session_ns and stamp_ns == self._last_stamp_ns:
            return self._last_context
        local = self.local_ns(stamp_ns)
        day = local // DAY_NS
        session = day if session_ns == stamp_ns else self.local_ns(session_ns) // DAY_NS
        if day != self._info_day:
            self._info = self.session_day(day)
            self._info_day = day
            self._phase = self._info.phase_window(stamp_ns)
        info = self._info
        code, since, until = self._phase
        if not since <= stamp_ns < until:
            code, since, until = self._phase = info.phase_window(stamp_ns)
        open_ns = info.open_ns
        if open_ns is None or stamp_ns < open_ns or stamp_ns > info.close_ns:
            minutes = math.nan
        else:
            minutes = (stamp_ns - open_ns) / MINUTE_NS
        context = (float(session), (local % DAY_NS) / MINUTE_NS, minutes, float(code))
        self._last_session_ns = session_ns
        self._last_stamp_ns = stamp_ns
        self._last_context = context
        return context

    def contexts(self, session_ns: np.ndarray, stamp_ns: np.ndarray) -> np.ndarray:
        """``context`` of many events at once: an (n, 4) float array, NaN for null minutes.

        The same integer arithmetic as ``context``: offsets per UTC day (per event only across
        a clock change), then one compiled pass per local day present (``kernels.
        calendar_context``). ``annotate`` and micro-batched streams use it.
        """
        stamp_ns = np.asarray(stamp_ns, dtype=np.int64)
        n = stamp_ns.shape[0]
        out = np.empty((n, 4))
        if n == 0:
            return out
        local = self._local_array(stamp_ns)
        if session_ns is stamp_ns:
            session_local = local
        else:
            session_local = self._local_array(np.asarray(session_ns, dtype=np.int64))
        day = local // DAY_NS
        first, last = int(day[0]), int(day[-1])
        days = [first] if first == last and day.min() == day.max() else np.unique(day).tolist()
        for d in days:
            info = self.session_day(d)
            rows = slice(None) if len(days) == 1 else np.flatnonzero(day == d)
            part = out[rows] if len(days) == 1 else np.empty((len(rows), 4))
            kernels.calendar_context(
                stamp_ns[rows],
                local[rows],
                session_local[rows],
                -1 if info.open_ns is None else info.open_ns,
                -1 if info.close_ns is None else info.close_ns,
                np.asarray(info.starts, dtype=np.int64),
                np.asarray(info.codes, dtype=np.float64),
                part,
            )
            if len(days) > 1:
                out[rows] = part
        return out

    def _local_array(self, ns: np.ndarray) -> np.ndarray:
        """Local wall-clock nanoseconds of UTC nanoseconds (numpy)."""
        if not ns.size:
            return ns.copy()
        utc_day = ns // DAY_NS
        first, last = int(utc_day[0]), int(utc_day[-1])
        if first == last and utc_day.min() == first == utc_day.max():
            offset = self._utc_day_offset(first)
            if offset is not None:
                return ns + offset
        offsets = np.empty_like(ns)
        for d in np.unique(utc_day).tolist():
            offset = self._utc_day_offset(d)
            rows = utc_day == d
            if offset is not None:
                offsets[rows] = offset
            else:  # a clock change inside this UTC day: instant by instant
                idx = np.flatnonzero(rows)
                offsets[idx] = [self._offset_at(int(t)) for t in ns[idx]]
        return ns + offsets

    def _utc_day_offset(self, day: int) -> int | None:
        """The UTC offset over UTC day ``day``, None if the clock changes during it."""
        if day not in self._utc_offsets:
            start = self._offset_at(day * DAY_NS)
            end = self._offset_at((day + 1) * DAY_NS - 1)
            self._utc_offsets[day] = start if start == end else None
        return self._utc_offsets[day]

    # -- vectorised --------------------------------------------------------------------

    def annotate(
        self, frame: pl.DataFrame, session_ts: str, stamp: str, columns: Iterable[str]
    ) -> pl.DataFrame:
        """``frame`` with the requested context columns added (``session``, ``time_of_day``,
        ``minutes_since_open``, ``phase``); time stamps must be UTC datetimes."""
        wanted = [c for c in CALENDAR_CONTEXT if c in set(columns)]
        if not wanted:
            return frame
        stamp_ns = frame.get_column(stamp).dt.epoch("ns").to_numpy()
        session_ns = (
            stamp_ns
            if session_ts == stamp
            else frame.get_column(session_ts).dt.epoch("ns").to_numpy()
        )
        context = self.contexts(session_ns, stamp_ns)
        return frame.with_columns(
            pl.Series(name, context[:, CALENDAR_CONTEXT.index(name)], nan_to_null=True)
            for name in wanted
        )


# -- features -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MinutesSinceOpen(Feature):
    """Minutes since the session's first order time (09:40 Istanbul, the opening auction) at
    the row's stamp; null outside the day's session hours and on days without a session."""

    @property
    def name(self) -> str:
        return "minutes_since_open"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (MINUTES_SINCE_OPEN,)

    def expr(self) -> pl.Expr:
        return pl.col(MINUTES_SINCE_OPEN).cast(pl.Float64)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (kernels.OP_VALUE, [slots[MINUTES_SINCE_OPEN]], 0)


@dataclass(frozen=True)
class TimeOfDay(Feature):
    """Istanbul time of day on the unit circle: sin or cos of 2 pi minutes / 1440, so 23:59
    and 00:00 are neighbours for a model (a cyclical encoding)."""

    kind: Literal["sin", "cos"] = "sin"

    def __post_init__(self) -> None:
        if self.kind not in ("sin", "cos"):
            raise ValueError("kind must be 'sin' or 'cos'")

    @property
    def name(self) -> str:
        return f"time_of_day_{self.kind}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (TIME_OF_DAY,)

    _FACTOR = 2.0 * math.pi / 1440.0

    def expr(self) -> pl.Expr:
        angle = pl.col(TIME_OF_DAY).cast(pl.Float64) * self._FACTOR
        return angle.sin() if self.kind == "sin" else angle.cos()

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        op = kernels.OP_SIN if self.kind == "sin" else kernels.OP_COS
        return (op, [slots[TIME_OF_DAY], self._FACTOR], 0)


@dataclass(frozen=True)
class SessionPhaseCode(Feature):
    """Code of the market phase at the row's stamp (``PHASE_CODES``; 3 = continuous), as given
    by ``TradingCalendar.phase_at``. A categorical: give it to models as a category."""

    @property
    def name(self) -> str:
        return "session_phase"

    @property
    def inputs(self) -> tuple[str, ...]:
        return (PHASE,)

    def expr(self) -> pl.Expr:
        return pl.col(PHASE).cast(pl.Float64)

    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        return (kernels.OP_VALUE, [slots[PHASE]], 0)
