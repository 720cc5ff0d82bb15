"""Price tick tables: the grid every BIST price must sit on.

Prices are handled internally as integers in units of 1/10,000 TRY so that "is this price on
the grid" is exact integer arithmetic, never a float comparison. BIST changes its tick table
from time to time, so a table is a list of dated schedules and every lookup names the day.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np

PRICE_SCALE = 10_000
"""Internal price units per TRY (supports ticks down to 0.0001)."""


def to_units(price: float) -> int:
    """Price in TRY to integer price units, rounding away float noise."""
    return round(price * PRICE_SCALE)


def from_units(units: int) -> float:
    return round(units / PRICE_SCALE, 4)


class RoundingMode(StrEnum):
    """How to bring an arbitrary price onto the grid.

    A buy limit is rounded DOWN and a sell limit UP so that rounding never makes an order more
    aggressive than its author asked; band limits are rounded INWARD (up for the lower limit, down
    for the upper) so the published limit is itself tradable.
    """

    NEAREST = "nearest"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class TickTier:
    """From ``lower`` TRY (inclusive) up to the next tier's lower bound, prices move by ``tick``."""

    lower: float
    tick: float


@dataclass(frozen=True)
class TickSchedule:
    """One version of a tick table, in force from ``effective_from`` until the next version."""

    effective_from: date
    tiers: tuple[TickTier, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a tick schedule needs at least one tier")
        lowers = [to_units(t.lower) for t in self.tiers]
        if lowers != sorted(lowers) or len(set(lowers)) != len(lowers):
            raise ValueError("tick tiers must have strictly increasing lower bounds")
        for tier, nxt in zip(self.tiers, self.tiers[1:], strict=False):
            # Every tier boundary must lie on both neighbouring grids, or rounding up at the top
            # of a tier could produce a price that is on neither grid.
            if to_units(nxt.lower - tier.lower) % to_units(tier.tick):
                raise ValueError(f"tier boundary {nxt.lower} is not on the {tier.tick} grid")
        ticks = [to_units(t.tick) for t in self.tiers]
        object.__setattr__(self, "_lowers", np.array(lowers, dtype=np.int64))
        object.__setattr__(self, "_ticks", np.array(ticks, dtype=np.int64))
        # Plain-int copies for the scalar paths: every order and fill rounds a price, and numpy
        # on single values costs microseconds where bisect on a short list costs nanoseconds.
        object.__setattr__(self, "_lowers_list", lowers)
        object.__setattr__(self, "_ticks_list", ticks)

    def tier_index(self, units: float) -> int:
        return max(0, bisect.bisect_right(self._lowers_list, units) - 1)

    def tick_units(self, units: int) -> int:
        return self._ticks_list[self.tier_index(units)]

    def tick_units_array(self, units: np.ndarray) -> np.ndarray:
        idx = np.clip(np.searchsorted(self._lowers, units, side="right") - 1, 0, None)
        return self._ticks[idx]

    def lower_units_array(self, units: np.ndarray) -> np.ndarray:
        idx = np.clip(np.searchsorted(self._lowers, units, side="right") - 1, 0, None)
        return self._lowers[idx]

    def round_units_array(
        self, units: np.ndarray, mode: RoundingMode | str = RoundingMode.NEAREST
    ) -> np.ndarray:
        """Vectorised ``TickSizeTable.round_to_tick`` in price units (float in, int64 out).

        Same rules as the scalar version, element by element, so that generators and validators
        working on millions of prices put them on exactly the grid a single order would use.
        """
        mode = RoundingMode(mode)
        shape = np.shape(units)
        u = np.asarray(units, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(u)) or np.any(u <= 0):
            raise ValueError("cannot round non-positive or non-finite prices")
        i = np.clip(np.searchsorted(self._lowers, np.floor(u), side="right") - 1, 0, None)
        lower, tick = self._lowers[i], self._ticks[i]
        steps = (u - lower) / tick
        if mode is RoundingMode.UP:
            n = np.ceil(steps - 1e-9)
        elif mode is RoundingMode.DOWN:
            n = np.floor(steps + 1e-9)
        else:
            n = np.floor(steps + 0.5)
        result = lower + n.astype(np.int64) * tick
        result = np.where(result <= 0, np.where(lower == 0, lower + tick, lower), result)
        # A price within float noise of a grid point is that grid point, whatever the mode.
        near = np.rint(u)
        close = np.flatnonzero(np.abs(u - near) < 1e-6)
        if close.size:
            cand = near[close].astype(np.int64)
            j = np.clip(np.searchsorted(self._lowers, cand, side="right") - 1, 0, None)
            on_grid = (cand - self._lowers[j]) % self._ticks[j] == 0
            result[close[on_grid]] = cand[on_grid]
        return result.reshape(shape)


class TickSizeTable:
    """A dated sequence of tick schedules; ``schedule_on(day)`` picks the one in force."""

    def __init__(self, schedules: Sequence[TickSchedule], name: str = "custom") -> None:
        if not schedules:
            raise ValueError("a tick table needs at least one schedule")
        self.name = name
        self.schedules = tuple(sorted(schedules, key=lambda s: s.effective_from))
        self._starts = [s.effective_from for s in self.schedules]

    def __repr__(self) -> str:
        return f"TickSizeTable({self.name!r}, {len(self.schedules)} schedules)"

    @classmethod
    def fixed(cls, tick: float, name: str | None = None) -> TickSizeTable:
        """One tick at every price, for instruments outside the BIST share table (futures, FX)."""
        tier = TickTier(lower=0.0, tick=tick)
        return cls([TickSchedule(date(1900, 1, 1), (tier,))], name=name or f"fixed-{tick}")

    def schedule_on(self, day: date) -> TickSchedule:
        i = bisect.bisect_right(self._starts, day) - 1
        if i < 0:
            raise ValueError(f"no tick schedule is in force on {day} (first: {self._starts[0]})")
        return self.schedules[i]

    def tick_size(self, price: float, on: date) -> float:
        """The tick that applies at ``price`` on day ``on``."""
        return from_units(self.schedule_on(on).tick_units(to_units(price)))

    def round_to_tick(
        self, price: float, on: date, mode: RoundingMode | str = RoundingMode.NEAREST
    ) -> float:
        """Bring ``price`` onto the grid in force on ``on``.

        The grid of a tier starts at its lower bound, so rounding up from the top of one tier
        lands exactly on the next tier's lower bound (e.g. 49.99 rounds up to 50.00).
        """
        if not math.isfinite(price) or price <= 0:
            raise ValueError(f"cannot round a non-positive or non-finite price: {price!r}")
        mode = RoundingMode(mode)
        schedule = self.schedule_on(on)
        units = price * PRICE_SCALE
        near = round(units)
        if abs(units - near) < 1e-6:
            units_i = near
            if self._on_grid(schedule, units_i):
                return from_units(units_i)
        i = schedule.tier_index(math.floor(units))
        lower = schedule._lowers_list[i]
        tick = schedule._ticks_list[i]
        steps = (units - lower) / tick
        if mode is RoundingMode.UP:
            n = math.ceil(steps - 1e-9)
        elif mode is RoundingMode.DOWN:
            n = math.floor(steps + 1e-9)
        else:
            n = math.floor(steps + 0.5)
        result = lower + n * tick
        if result <= 0:
            result = lower + tick if lower == 0 else lower
        return from_units(result)

    @staticmethod
    def _on_grid(schedule: TickSchedule, units: int) -> bool:
        i = schedule.tier_index(units)
        return (units - schedule._lowers_list[i]) % schedule._ticks_list[i] == 0

    def is_on_tick(self, price: float, on: date) -> bool:
        units = price * PRICE_SCALE
        near = round(units)
        return abs(units - near) < 1e-6 and near > 0 and self._on_grid(self.schedule_on(on), near)

    def on_tick_mask(self, prices: np.ndarray, on: date) -> np.ndarray:
        """Vectorised ``is_on_tick`` for one day's prices (validation runs it on millions)."""
        schedule = self.schedule_on(on)
        scaled = np.asarray(prices, dtype=np.float64) * PRICE_SCALE
        with np.errstate(invalid="ignore"):
            units = np.rint(scaled)
            ok = np.isfinite(scaled) & (np.abs(scaled - units) < 1e-6) & (units > 0)
        u = np.where(ok, units, 0).astype(np.int64)
        lowers = schedule.lower_units_array(u)
        ticks = schedule.tick_units_array(u)
        return ok & ((u - lowers) % ticks == 0)

    def round_to_tick_array(
        self, prices: np.ndarray, on: date, mode: RoundingMode | str = RoundingMode.NEAREST
    ) -> np.ndarray:
        """Vectorised ``round_to_tick`` for one day's prices (TRY in, TRY out)."""
        units = np.asarray(prices, dtype=np.float64) * PRICE_SCALE
        return np.round(self.schedule_on(on).round_units_array(units, mode) / PRICE_SCALE, 4)

    def tick_sizes(self, prices: np.ndarray, on: date) -> np.ndarray:
        units = np.rint(np.asarray(prices, dtype=np.float64) * PRICE_SCALE).astype(np.int64)
        return self.schedule_on(on).tick_units_array(units) / PRICE_SCALE


def _tiers(*pairs: tuple[float, float]) -> tuple[TickTier, ...]:
    return tuple(TickTier(lower, tick) for lower, tick in pairs)


BIST_SHARE_TICKS = TickSizeTable(
    [
        TickSchedule(
            effective_from=date(2000, 1, 1),
            tiers=_tiers((0.0, 0.01), (20.0, 0.02), (50.0, 0.05), (100.0, 0.10)),
            source="BIST equity market price ticks before the August 2023 revision",
        ),
        TickSchedule(
            # Announced by the BIST Equity Market Operations Directorate on 2023-08-28.
            effective_from=date(2023, 8, 28),
            tiers=_tiers(
                (0.0, 0.01),
                (20.0, 0.02),
                (50.0, 0.05),
                (100.0, 0.10),
                (250.0, 0.25),
                (500.0, 0.50),
                (1000.0, 1.00),
                (2500.0, 2.50),
            ),
            source="BIST equity market price ticks, revision of August 2023",
        ),
    ],
    name="bist-shares",
)
"""The tick table of BIST shares, rights, REICs and lease certificates."""
