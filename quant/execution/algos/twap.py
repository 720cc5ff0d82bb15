"""TWAP: the parent split into equal slices evenly spread over the window.

The simplest schedule and the benchmark others are measured against: it ignores volume, so its
footprint is the same at the quiet lunch hour as at the busy open. Slices are due at the start of
each sub-interval (the first at ``start_ns``); shares are split by largest remainder, the extra
lots going to the earliest slices, so the slices sum exactly to the parent.

Auctions and halts: no child is sent outside continuous trading. A slice that falls due during an
auction phase or a halt is sent at the first continuous-trading event after it (catch-up), unless
the window has ended by then, in which case the algorithm expires with the quantity unfilled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from quant.execution.algos.base import ScheduledAlgorithm, even_times
from quant.execution.algos.pricing import PricingPolicy


class TWAP(ScheduledAlgorithm):
    """``slices`` equal slices over the window, or one slice every ``interval_ns``."""

    name = "twap"

    def __init__(
        self,
        slices: int | None = None,
        interval_ns: int | None = None,
        pricing: PricingPolicy | None = None,
    ) -> None:
        if (slices is None) == (interval_ns is None):
            raise ValueError("give exactly one of slices and interval_ns")
        if slices is not None and (not isinstance(slices, int) or slices < 1):
            raise ValueError(f"slices must be a positive integer, got {slices!r}")
        if interval_ns is not None and (not isinstance(interval_ns, int) or interval_ns <= 0):
            raise ValueError(f"interval_ns must be a positive integer, got {interval_ns!r}")
        self.slices = slices
        self.interval_ns = interval_ns
        super().__init__(pricing)

    def _slices(self) -> tuple[Sequence[int], Sequence[float]]:
        span = self._end - self._start
        if self.interval_ns is not None:
            n = math.ceil(span / self.interval_ns)
            times = [self._start + i * self.interval_ns for i in range(n)]
            # A last, shorter interval gets a proportionally smaller slice: the rate is constant.
            weights = [min(self.interval_ns, self._end - t) for t in times]
            return times, weights
        assert self.slices is not None
        return even_times(self._start, self._end, self.slices), [1.0] * self.slices
