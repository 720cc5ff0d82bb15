"""Intraday volume profiles learned from history: the shape VWAP slices follow.

A profile is the mean fraction of a day's volume traded in each intraday bucket of Istanbul local
time, averaged over every (symbol, day) in the history with equal weight per day, so one huge day
does not dominate the shape. It is learned from 1-minute bars of the lake's BARS schema (``ts``:
bar open, UTC ns; ``volume``): a bar counts in the bucket its open falls in. Auction prints count
too (the opening uncross just before 10:00, the closing uncross and trades at the close after
18:05): the profile describes the whole day and the VWAP algorithm decides what it can trade.

Half days (continuous trading ends at 12:30) have their own shape: the closing peak comes at
12:30. There are only a few half days a year, too few for a stable estimate, so by default the
half-day profile is the full-day profile compressed onto the half-day timetable: each phase of the
half day (opening auction, continuous trading, closing sequence) is mapped linearly onto the same
phase of a full day, and a half-day bucket gets the full-day volume of the stretch it maps to.
That keeps the U shape, puts the closing peak at 12:30 and gives each phase the share of the day
it has on full days. When the history holds at least ``min_half_days`` half-day samples the
half-day profile is learned from them instead. Half-day bars never enter the full-day profile.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import polars as pl

from quant.market.calendar import (
    BIST_TIMETABLES,
    ISTANBUL,
    PhaseWindow,
    SessionTimetable,
    TradingCalendar,
)

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class VolumeProfile:
    """Fractions of the day's volume per ``bucket_minutes`` bucket from local midnight.

    ``full_day`` and ``half_day`` each sum to one. Within a bucket volume is taken as uniform in
    time, which is what ``mass`` integrates.
    """

    bucket_minutes: int
    full_day: np.ndarray
    half_day: np.ndarray
    n_full_days: int = 0
    """(symbol, day) samples behind ``full_day``."""
    n_half_days: int = 0
    half_day_source: str = "scaled"
    """"learned" from half-day history, or "scaled" from the full-day profile."""

    def __post_init__(self) -> None:
        n = _check_bucket(self.bucket_minutes)
        for name in ("full_day", "half_day"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"{name} needs {n} buckets of {self.bucket_minutes} minutes")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0) or abs(arr.sum() - 1) > 1e-9:
                raise ValueError(f"{name} must be non-negative fractions summing to one")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @classmethod
    def from_fractions(
        cls, bucket_minutes: int, full_day: np.ndarray, half_day: np.ndarray | None = None
    ) -> VolumeProfile:
        """A profile from given weights (normalised), the half day scaled when not given."""
        full = np.asarray(full_day, dtype=np.float64)
        full = full / full.sum()
        if half_day is None:
            return cls(bucket_minutes, full, scale_to_half_day(full, bucket_minutes))
        half = np.asarray(half_day, dtype=np.float64)
        return cls(bucket_minutes, full, half / half.sum(), half_day_source="given")

    @property
    def n_buckets(self) -> int:
        return MINUTES_PER_DAY // self.bucket_minutes

    def fractions(self, half_day: bool = False) -> np.ndarray:
        return self.half_day if half_day else self.full_day

    def bucket_starts(self) -> list[time]:
        """Local start time of each bucket."""
        return [_minute_time(k * self.bucket_minutes) for k in range(self.n_buckets)]

    def cumulative(self, minute_of_day: float | np.ndarray, half_day: bool = False):
        """Fraction of the day's volume traded before ``minute_of_day`` (local minutes)."""
        edges = np.arange(self.n_buckets + 1, dtype=np.float64) * self.bucket_minutes
        cdf = np.concatenate([[0.0], np.cumsum(self.fractions(half_day))])
        return np.interp(minute_of_day, edges, cdf)

    def mass(self, start_minute: float, end_minute: float, half_day: bool = False) -> float:
        """Fraction of the day's volume traded in ``[start_minute, end_minute)`` local time."""
        lo, hi = self.cumulative(np.array([start_minute, end_minute]), half_day)
        return float(max(hi - lo, 0.0))

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "bucket": self.bucket_starts(),
                "full_day": self.full_day,
                "half_day": self.half_day,
            }
        )


def learn_volume_profile(
    bars: pl.DataFrame,
    bucket: str | int | timedelta = "5m",
    *,
    calendar: TradingCalendar | None = None,
    min_half_days: int = 5,
) -> VolumeProfile:
    """Learn the mean intraday volume profile from 1-minute bars (see the module doc).

    ``bars`` needs ``ts`` (UTC; a tz-aware datetime or integer ns) and ``volume``; ``symbol`` is
    used when present so that each (symbol, day) is one sample. ``calendar`` says which days are
    half days (default: the XIST calendar).
    """
    minutes = _bucket_minutes(bucket)
    n = _check_bucket(minutes)
    missing = [c for c in ("ts", "volume") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars are missing column(s): {', '.join(missing)}")
    if bars.height == 0:
        raise ValueError("cannot learn a volume profile from no bars")
    calendar = calendar if calendar is not None else _default_calendar()

    local = _utc(bars["ts"]).dt.convert_time_zone(str(ISTANBUL))
    frame = pl.DataFrame(
        {
            "symbol": bars["symbol"] if "symbol" in bars.columns else [""] * bars.height,
            "day": local.dt.date(),
            "bucket": (local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute()) // minutes,
            "volume": bars["volume"].cast(pl.Float64),
        }
    )
    per_bucket = frame.group_by("symbol", "day", "bucket").agg(pl.col("volume").sum())
    per_bucket = per_bucket.with_columns(total=pl.col("volume").sum().over("symbol", "day")).filter(
        pl.col("total") > 0
    )
    days = per_bucket["day"].unique().to_list()
    half_days = [d for d in days if calendar.is_half_day(d)]
    per_bucket = per_bucket.with_columns(half=pl.col("day").is_in(half_days))

    full, n_full = _mean_fractions(per_bucket.filter(~pl.col("half")), n)
    if n_full == 0:
        raise ValueError("the bars hold no full-day session with volume to learn from")
    half, n_half = _mean_fractions(per_bucket.filter(pl.col("half")), n)
    if n_half >= max(min_half_days, 1):
        return VolumeProfile(minutes, full, half, n_full, n_half, "learned")
    timetable = calendar.timetable_on(max(days))
    return VolumeProfile(
        minutes, full, scale_to_half_day(full, minutes, timetable), n_full, n_half, "scaled"
    )


def scale_to_half_day(
    full_day: np.ndarray, bucket_minutes: int, timetable: SessionTimetable | None = None
) -> np.ndarray:
    """Compress a full-day profile onto the half-day timetable, phase by phase (module doc)."""
    if timetable is None:
        timetable = BIST_TIMETABLES[-1]
    half_pts, full_pts = _phase_map(timetable.half_day, timetable.full_day)
    edges = np.arange(len(full_day) + 1, dtype=np.float64) * bucket_minutes
    cdf = np.concatenate([[0.0], np.cumsum(full_day)])
    mapped = np.interp(edges, half_pts, full_pts)
    scaled = np.diff(np.interp(mapped, edges, cdf))
    scaled = np.clip(scaled, 0.0, None)
    return scaled / scaled.sum()


def _phase_map(
    half: tuple[PhaseWindow, ...], full: tuple[PhaseWindow, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Break points of the piecewise-linear map from half-day to full-day local minutes."""
    by_phase = {w.phase: w for w in full}
    pts: dict[float, float] = {0.0: 0.0}
    last_h = last_f = 0.0
    for w in half:
        f = by_phase.get(w.phase)
        if f is None:
            continue
        for h_t, f_t in ((w.start, f.start), (w.end, f.end)):
            pts[_minutes(h_t)] = _minutes(f_t)
        last_h, last_f = _minutes(w.end), _minutes(f.end)
    pts[float(MINUTES_PER_DAY)] = last_f + (MINUTES_PER_DAY - last_h)
    keys = sorted(pts)
    return np.array(keys), np.array([pts[k] for k in keys])


def _mean_fractions(per_bucket: pl.DataFrame, n: int) -> tuple[np.ndarray, int]:
    samples = per_bucket.select("symbol", "day").n_unique() if per_bucket.height else 0
    out = np.zeros(n)
    if samples == 0:
        return out, 0
    sums = per_bucket.group_by("bucket").agg((pl.col("volume") / pl.col("total")).sum())
    out[sums["bucket"].to_numpy()] = sums["volume"].to_numpy() / samples
    return out / out.sum(), samples


def _utc(ts: pl.Series) -> pl.Series:
    if ts.dtype.is_integer():
        return pl.from_epoch(ts, time_unit="ns").dt.replace_time_zone("UTC")
    if isinstance(ts.dtype, pl.Datetime):
        return ts.dt.replace_time_zone("UTC") if ts.dtype.time_zone is None else ts
    raise ValueError(f"ts must be a datetime or integer ns column, got {ts.dtype}")


def _bucket_minutes(bucket: str | int | timedelta) -> int:
    if isinstance(bucket, timedelta):
        seconds = bucket.total_seconds()
        if seconds % 60:
            raise ValueError(f"bucket must be whole minutes, got {bucket}")
        return int(seconds // 60)
    if isinstance(bucket, int):
        return bucket
    m = re.fullmatch(r"\s*(\d+)\s*(m|min|h)\s*", str(bucket))
    if not m:
        raise ValueError(f"bucket must look like '5m', '30min' or '1h', got {bucket!r}")
    value = int(m.group(1))
    return value * 60 if m.group(2) == "h" else value


def _check_bucket(minutes: int) -> int:
    if minutes < 1 or MINUTES_PER_DAY % minutes:
        raise ValueError(f"bucket of {minutes} minutes does not divide the day")
    return MINUTES_PER_DAY // minutes


def _minutes(t: time) -> float:
    return t.hour * 60 + t.minute + t.second / 60


def _minute_time(minute: int) -> time:
    return time(minute // 60, minute % 60)


def local_minute_edges(day: date, bucket_minutes: int) -> np.ndarray:
    """UTC ns of every bucket edge of ``day`` in Istanbul local time (n_buckets + 1 edges).

    Built with the time zone rather than midnight + offset, so a clock change is respected.
    """
    n = _check_bucket(bucket_minutes)
    edges = [
        datetime.combine(day, _minute_time(k * bucket_minutes), ISTANBUL) for k in range(n)
    ] + [datetime.combine(day + timedelta(days=1), time(0), ISTANBUL)]
    return np.array([int(e.timestamp()) * 10**9 for e in edges], dtype=np.int64)


@functools.cache
def _default_calendar() -> TradingCalendar:
    return TradingCalendar()
