"""Clocks: the only way the core learns what time it is.

The backtest drives a ``SimulatedClock`` from the data; the live actors pass a wall clock. Core
objects take a ``Clock`` and never read the system time themselves, which keeps backtests
deterministic and makes the same object usable in both runtimes.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Current time as UTC nanoseconds since the epoch."""
        ...


class SimulatedClock:
    """A clock that only moves when told to, and never backwards."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        if ts_ns < self._now:
            raise ValueError(f"simulated time cannot go backwards ({ts_ns} < {self._now})")
        self._now = int(ts_ns)
