"""VWAP: slices in proportion to the volume the market is expected to trade in each bucket.

Following the historical intraday profile (``learn_volume_profile``) spreads the parent like the
market spreads its volume, so the parent's average price tracks the day's VWAP: heavier at the
open and the close, lighter at midday. There is one slice per profile bucket overlapping the
window, due at the bucket's start (or the window's start for a partial first bucket), weighted by
the profile's volume in the overlap (uniform within a bucket).

The context's ``session`` matters:

- on a half day the half-day profile is used (scaled or learned, see ``volume_profile``);
- only continuous-trading time is weighted, since children go out in continuous trading only, so
  auction volume is not targeted (it would otherwise be deferred to the next continuous event,
  or never sent after the close).

Without a session the day is taken as a full day and the whole window is weighted; slices that
fall due in an auction are then sent at the next continuous-trading event, like TWAP does. When
the profile has no volume at all in the window, the slices fall back to time weights and
``plan_note`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from quant.execution.algos.base import ScheduledAlgorithm
from quant.execution.algos.pricing import PricingPolicy
from quant.execution.algos.volume_profile import VolumeProfile, local_minute_edges
from quant.market.calendar import ISTANBUL, SessionPhase


class VWAP(ScheduledAlgorithm):
    """Slices following ``volume_profile`` over the window (within one trading day)."""

    name = "vwap"

    def __init__(self, volume_profile: VolumeProfile, pricing: PricingPolicy | None = None):
        self.volume_profile = volume_profile
        self.plan_note = ""
        super().__init__(pricing)

    def _slices(self) -> tuple[Sequence[int], Sequence[float]] | str:
        self.plan_note = ""
        start, end = self._start, self._end
        day = _local(start).date()
        if _local(end - 1).date() != day:
            return "a VWAP window must lie within one trading day (Istanbul time)"
        session = self._ctx.session
        half = False
        if session is not None:
            if session.day != day:
                return f"the session given is for {session.day}, the window is on {day}"
            half = session.half_day
            a, b = session.bounds(SessionPhase.CONTINUOUS)
            start = max(start, _ns(a))
            end = min(end, _ns(b))
            if end <= start:
                return "the window does not overlap continuous trading"
        edges = local_minute_edges(day, self.volume_profile.bucket_minutes)
        fractions = self.volume_profile.fractions(half)
        times: list[int] = []
        mass: list[float] = []
        span: list[int] = []
        for k in range(len(fractions)):
            lo, hi = max(int(edges[k]), start), min(int(edges[k + 1]), end)
            if hi <= lo:
                continue
            times.append(lo)
            span.append(hi - lo)
            mass.append(fractions[k] * (hi - lo) / (edges[k + 1] - edges[k]))
        if not times:
            return "the window holds no time"
        if float(np.sum(mass)) <= 0:
            self.plan_note = "the profile has no volume in the window: slices are time-weighted"
            return times, [float(s) for s in span]
        return times, mass


def _local(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns // 10**9, ISTANBUL)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9
