"""Latency models: how late our orders reach the exchange and market data reaches us.

A replay that lets a strategy see a quote and trade on it in the same nanosecond overstates what
any real system can do; these models put the delays back (after hftbacktest's ``LatencyModel``).
Two delays matter: **order entry** (our send time to the exchange's receive time) and the
**market-data feed** (the exchange's event time to the moment our strategy sees it). All values
are integer nanoseconds and never negative, so time never runs backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class LatencyModel(Protocol):
    def entry_ns(self, ts_ns: int) -> int:
        """Delay of an order (or cancel) sent at local time ``ts_ns`` before the exchange has it."""
        ...

    def feed_ns(self, ts_ns: int) -> int:
        """Delay of a market event stamped ``ts_ns`` by the exchange before we see it."""
        ...


@dataclass(frozen=True, slots=True)
class ConstantLatency:
    """The same delays every time (a co-located gateway with a steady feed)."""

    entry: int = 0
    feed: int = 0

    def __post_init__(self) -> None:
        if self.entry < 0 or self.feed < 0:
            raise ValueError("latencies cannot be negative")

    def entry_ns(self, ts_ns: int) -> int:
        return self.entry

    def feed_ns(self, ts_ns: int) -> int:
        return self.feed


class NormalLatency:
    """Gaussian delays truncated below at ``floor_ns``, reproducible from ``seed``.

    Entry and feed delays come from independent streams spawned from the seed, so adding a
    strategy that reads more market data does not change the delays its orders see.
    Draws are made in blocks to keep the per-event cost low.
    """

    _BLOCK = 4096

    def __init__(
        self,
        entry_mean_ns: float,
        entry_std_ns: float,
        feed_mean_ns: float = 0.0,
        feed_std_ns: float = 0.0,
        seed: int = 0,
        floor_ns: int = 0,
    ) -> None:
        if min(entry_mean_ns, entry_std_ns, feed_mean_ns, feed_std_ns, floor_ns) < 0:
            raise ValueError("latency means, deviations and floor must be non-negative")
        self.entry_mean_ns, self.entry_std_ns = entry_mean_ns, entry_std_ns
        self.feed_mean_ns, self.feed_std_ns = feed_mean_ns, feed_std_ns
        self.seed, self.floor_ns = seed, floor_ns
        entry_ss, feed_ss = np.random.SeedSequence(seed).spawn(2)
        self._entry = _Stream(entry_ss, entry_mean_ns, entry_std_ns, floor_ns, self._BLOCK)
        self._feed = _Stream(feed_ss, feed_mean_ns, feed_std_ns, floor_ns, self._BLOCK)

    def entry_ns(self, ts_ns: int) -> int:
        return self._entry.next()

    def feed_ns(self, ts_ns: int) -> int:
        return self._feed.next()


class _Stream:
    __slots__ = ("_buf", "_floor", "_i", "_mean", "_n", "_rng", "_std")

    def __init__(
        self, ss: np.random.SeedSequence, mean: float, std: float, floor: int, n: int
    ) -> None:
        self._rng = np.random.Generator(np.random.PCG64(ss))
        self._mean, self._std, self._floor, self._n = mean, std, floor, n
        self._buf: list[int] = []
        self._i = 0

    def next(self) -> int:
        if self._i >= len(self._buf):
            draws = self._rng.normal(self._mean, self._std, self._n)
            self._buf = np.maximum(np.rint(draws), self._floor).astype(np.int64).tolist()
            self._i = 0
        value = self._buf[self._i]
        self._i += 1
        return value
