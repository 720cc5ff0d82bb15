"""Daily price bands (price limits): orders outside them are rejected by the exchange."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from quant.market.ticks import BIST_SHARE_TICKS, RoundingMode, TickSizeTable


@dataclass(frozen=True)
class PriceBandRule:
    """Band widths in force from ``effective_from``: a fraction of the reference price."""

    effective_from: date
    daily_pct: float
    closing_pct: float
    source: str = ""


BIST_BAND_RULES: tuple[PriceBandRule, ...] = (
    PriceBandRule(
        effective_from=date(2000, 1, 1),
        daily_pct=0.10,
        closing_pct=0.03,
        source="BIST equity market: ±10% of the base price; closing session ±3% of the last price",
    ),
)


@dataclass(frozen=True)
class Band:
    """Inclusive limits: a price exactly on ``lower`` or ``upper`` is allowed."""

    lower: float
    upper: float
    reference: float

    def contains(self, price: float) -> bool:
        return self.lower - 1e-9 <= price <= self.upper + 1e-9


class PriceBand:
    """Computes the band around a reference price on a given day.

    The base price is the previous close rounded to the tick; limits are the base ±10% rounded
    inward to the grid, so that the limit price itself is a valid, tradable price.
    """

    def __init__(
        self,
        rules: Sequence[PriceBandRule] = BIST_BAND_RULES,
        ticks: TickSizeTable = BIST_SHARE_TICKS,
    ) -> None:
        self.rules = tuple(sorted(rules, key=lambda r: r.effective_from))
        self._starts = [r.effective_from for r in self.rules]
        self.ticks = ticks

    def rule_on(self, day: date) -> PriceBandRule:
        i = bisect.bisect_right(self._starts, day) - 1
        if i < 0:
            raise ValueError(f"no price band rule is in force on {day}")
        return self.rules[i]

    def base_price(self, previous_close: float, on: date) -> float:
        return self.ticks.round_to_tick(previous_close, on, RoundingMode.NEAREST)

    def _band(self, reference: float, pct: float, on: date) -> Band:
        upper = self.ticks.round_to_tick(reference * (1 + pct), on, RoundingMode.DOWN)
        lower = self.ticks.round_to_tick(reference * (1 - pct), on, RoundingMode.UP)
        return Band(lower=lower, upper=upper, reference=reference)

    def daily(self, previous_close: float, on: date) -> Band:
        """The day's band from the previous session's close."""
        base = self.base_price(previous_close, on)
        return self._band(base, self.rule_on(on).daily_pct, on)

    def closing(self, last_continuous_price: float, on: date, daily: Band | None = None) -> Band:
        """The closing-session band around the last continuous-trading price.

        It never reaches outside the daily band when that band is given.
        """
        ref = self.ticks.round_to_tick(last_continuous_price, on, RoundingMode.NEAREST)
        band = self._band(ref, self.rule_on(on).closing_pct, on)
        if daily is not None:
            band = Band(max(band.lower, daily.lower), min(band.upper, daily.upper), ref)
        return band
