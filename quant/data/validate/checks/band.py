"""Stage 3, OUTSIDE_BAND: prices outside the daily band around the previous session's close.

The only rule with state across chunks: each symbol's last base-eligible price (``last_close``)
is carried from chunk to chunk, so a chunked run gives exactly the in-memory result.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from quant.data.schema import DataKind
from quant.data.validate import kernels
from quant.data.validate.calendar import Calendar
from quant.data.validate.checks.base import Finding
from quant.data.validate.groups import Columns, Groups
from quant.data.validate.rules import CODE, RuleCode, ValidationConfig
from quant.market.bands import PriceBand
from quant.market.ticks import PRICE_SCALE, RoundingMode


class BandCheck:
    """The band rule of one run and the state it carries from chunk to chunk."""

    def __init__(
        self,
        kind: DataKind,
        config: ValidationConfig,
        calendar: Calendar | None = None,
        ex_dates: frozenset[tuple[str, date]] = frozenset(),
    ) -> None:
        self.kind = kind
        self.cfg = config
        self.calendar = calendar
        self.ex_dates = ex_dates
        """(symbol, ex-date) of corporate actions: the exchange adjusts the base, so no band."""
        self.band = PriceBand(config.band_rules, config.tick_table)
        self.last_close: dict[str, tuple[date, float | None]] = {}
        """Per symbol: the last day with a base-eligible price and that price."""
        self._regimes: dict[date, tuple[int, float] | None] = {}

    def findings(
        self,
        cols: Columns,
        groups: Groups,
        alive: np.ndarray,
        code: np.ndarray,
        unchecked: dict[RuleCode, np.ndarray],
    ) -> list[Finding]:
        """OUTSIDE_BAND: the band of day d comes from the symbol's last price on the previous
        session, among that day's rows alive after rules 1-10 (the rules that do not need a
        base themselves); if that price lies outside the previous session's own band, from
        the last price inside it (see ``_rebase``). Without such a price (a symbol's first
        day, a day after a gap, an ex-date, a day outside the calendar) the day is not
        checked: its rows count as unchecked. Quotes carry no closing price, so they are
        always unchecked.
        """
        if not self.cfg.enabled(RuleCode.OUTSIDE_BAND) or groups.n == 0:
            return []
        close = (
            cols("bid_price")
            if self.kind is DataKind.QUOTES
            else cols("price" if self.kind is DataKind.TRADES else "close")
        )
        alive_rows, last = kernels.last_alive(close, groups.starts, alive)
        if self.kind is DataKind.QUOTES:
            unchecked[RuleCode.OUTSIDE_BAND] = alive_rows
            return []
        if not alive_rows.any():
            return []
        present_g = np.flatnonzero(alive_rows)
        present, closes = present_g.tolist(), last[present_g].tolist()
        lower = np.full(groups.n, np.nan)
        upper = np.full(groups.n, np.nan)
        base = np.full(groups.n, np.nan)
        latest: dict[str, tuple[date, float | None]] = {}
        banded: list[int] = []
        previous_closes: list[float] = []
        for g, last_close in zip(present, closes, strict=True):
            symbol, day = groups.symbols[g], groups.days[g]
            previous = latest.get(symbol) or self.last_close.get(symbol)
            latest[symbol] = (day, last_close)
            previous_close = self._base(symbol, day, previous)
            if previous_close is not None:
                banded.append(g)
                previous_closes.append(previous_close)
        used = dict(zip(banded, previous_closes, strict=True))
        if banded:
            at = np.array(banded, dtype=np.int64)
            lower[at], upper[at], base[at] = self.daily_bands(
                np.array(previous_closes, dtype=np.float64), [groups.days[g] for g in banded]
            )
            with np.errstate(invalid="ignore"):
                bad_close = (last < lower - 1e-9) | (last > upper + 1e-9)
            if bad_close.any():
                latest = self._rebase(groups, present, used, close, alive, last, lower, upper, base)
        self.last_close.update(latest)
        unchecked[RuleCode.OUTSIDE_BAND] = np.where(np.isnan(lower), alive_rows, 0)
        checked = ~np.isnan(lower)
        if not checked.any():
            return []
        if self.kind is DataKind.TRADES:
            low = high = close
        else:
            low, high = cols("low"), cols("high")
        positions = kernels.outside_band(low, high, groups.gid, alive, lower, upper)
        if positions.size == 0:
            return []
        code[positions] = CODE[RuleCode.OUTSIDE_BAND]
        alive[positions] = False
        g = groups.gid[positions]
        detail = pl.DataFrame(
            {
                "low": low[positions],
                "high": high[positions],
                "lo": lower[g],
                "hi": upper[g],
                "base": base[g],
            }
        )
        what = (
            pl.format("price {}", "low")
            if self.kind is DataKind.TRADES
            else pl.format("low {} / high {}", "low", "high")
        )
        reasons = detail.select(
            pl.format(
                "{} is outside the daily band [{}, {}] around base {} (previous close)",
                what,
                "lo",
                "hi",
                "base",
            )
        ).to_series()
        codes = np.full(positions.size, CODE[RuleCode.OUTSIDE_BAND], dtype=np.uint8)
        return [Finding(positions, codes, reasons)]

    def _rebase(
        self,
        groups: Groups,
        present: list[int],
        used: dict[int, float],
        close: np.ndarray,
        alive: np.ndarray,
        last: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        base: np.ndarray,
    ) -> dict[str, tuple[date, float | None]]:
        """Symbol-days again, in order, where a day's last price lies outside its own band.

        Such a price is a bad print (a fat finger at the close), not the base of the next
        day's band: the next day's base is the day's last price inside its band (none: the
        next day is not checked). A base that changes moves that day's band, which can change
        its own last valid price, so the days of a symbol are settled one after the other;
        ``lower``, ``upper`` and ``base`` are updated in place. Returns the latest (day, close)
        per symbol, as carried to the next chunk. ``used``: the base each day got first.
        """
        latest: dict[str, tuple[date, float | None]] = {}
        for g in present:
            symbol, day = groups.symbols[g], groups.days[g]
            previous = latest.get(symbol) or self.last_close.get(symbol)
            previous_close = self._base(symbol, day, previous)
            if previous_close is None:
                lower[g] = upper[g] = base[g] = np.nan
            elif previous_close != used.get(g):
                b = self.daily_bands(np.array([previous_close]), [day])
                lower[g], upper[g], base[g] = b[0][0], b[1][0], b[2][0]
            value: float | None = float(last[g])
            lo, hi = lower[g] - 1e-9, upper[g] + 1e-9
            if not np.isnan(lo) and not lo <= last[g] <= hi:
                rows = np.arange(groups.starts[g], groups.starts[g] + groups.rows[g])
                valid = rows[alive[rows] & (close[rows] >= lo) & (close[rows] <= hi)]
                value = float(close[valid[-1]]) if valid.size else None
            latest[symbol] = (day, value)
        return latest

    def _base(
        self, symbol: str, day: date, previous: tuple[date, float | None] | None
    ) -> float | None:
        """The previous close the band of ``day`` is built on, or None if the day has none."""
        if previous is None or previous[1] is None or (symbol, day) in self.ex_dates:
            return None
        previous_day, previous_close = previous
        if self.calendar is not None:
            facts = self.calendar.facts(day)
            if not facts.in_range or facts.previous_session != previous_day:
                return None
        elif previous_day >= day:
            return None
        return previous_close

    def daily_bands(
        self, previous_closes: np.ndarray, days: list[date]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``PriceBand.daily`` for many symbol-days at once: (lower, upper, base), NaN where
        there is no band (no rule or tick table in force that day, or a price that cannot be
        rounded to the grid).

        The same operations as the scalar version, element by element, through the tick
        schedule's vectorised rounding, one call per (tick schedule, band width) in force; a
        price in integer units divided by the scale is exactly what ``from_units`` gives back
        for any price below 10^9 TRY, and larger prices take the scalar path.
        """
        n = previous_closes.shape[0]
        lower, upper, base = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        regimes: dict[tuple[int, float], list[int]] = {}
        for i, day in enumerate(days):
            regime = self._regime(day)
            if regime is not None:
                regimes.setdefault(regime, []).append(i)
        for (s, pct), members in regimes.items():
            schedule = self.cfg.tick_table.schedules[s]
            at = np.array(members, dtype=np.int64)
            close = previous_closes[at]
            with np.errstate(invalid="ignore"):
                plain = np.isfinite(close) & (close > 0) & (close < 1e9)
            for i in at[~plain].tolist():
                try:
                    b = self.band.daily(float(previous_closes[i]), days[i])
                    lower[i], upper[i], base[i] = b.lower, b.upper, b.reference
                except ValueError:  # a price that cannot be rounded to the grid
                    pass
            at, close = at[plain], close[plain]
            if not at.size:
                continue
            b = schedule.round_units_array(close * PRICE_SCALE, RoundingMode.NEAREST) / PRICE_SCALE
            high_price, low_price = b * (1 + pct), b * (1 - pct)
            with np.errstate(invalid="ignore"):
                ok = (low_price > 0) & np.isfinite(low_price) & np.isfinite(high_price)
                ok &= high_price > 0
            at, b, high_price, low_price = at[ok], b[ok], high_price[ok], low_price[ok]
            if not at.size:
                continue
            upper[at] = (
                schedule.round_units_array(high_price * PRICE_SCALE, RoundingMode.DOWN)
                / PRICE_SCALE
            )
            lower[at] = (
                schedule.round_units_array(low_price * PRICE_SCALE, RoundingMode.UP) / PRICE_SCALE
            )
            base[at] = b
        return lower, upper, base

    def _regime(self, day: date) -> tuple[int, float] | None:
        """(tick schedule, daily band width) in force on ``day``; None if either is missing."""
        if day not in self._regimes:
            try:
                pct = self.band.rule_on(day).daily_pct
                schedule = self.cfg.tick_table.schedule_on(day)
            except ValueError:  # no band rule or tick table in force that day
                self._regimes[day] = None
            else:
                self._regimes[day] = (self.cfg.tick_table.schedules.index(schedule), pct)
        return self._regimes[day]
