"""GAP: expected data that is missing, a finding of the report (never a quarantined row).

Two kinds: intraday bars missing from continuous trading on a day that has data, and sessions
of the calendar without any row for a symbol between its first and last day.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant.data.quality_report import SymbolDayQuality
from quant.data.schema import DataKind
from quant.data.validate.calendar import Calendar, DayFacts
from quant.data.validate.casting import PREFIX
from quant.data.validate.groups import Columns, Groups
from quant.data.validate.report import NULL_SYMBOL
from quant.data.validate.rules import RuleCode, ValidationConfig


def missing_bars(
    kind: DataKind,
    config: ValidationConfig,
    daily: bool,
    interval_ns: int | None,
    cols: Columns,
    groups: Groups,
    facts: list[DayFacts] | None,
) -> np.ndarray:
    """Intraday bars missing from continuous trading, per symbol-day (GAP).

    Expected: the bar slots of ``interval`` in the day's continuous window(s); present: the
    distinct bar starts inside them among all rows received (valid or not: a rejected bar
    is a quarantined row, not a missing one).
    """
    missing = np.zeros(groups.n, dtype=np.int64)
    if (
        kind is not DataKind.BARS
        or facts is None
        or not config.enabled(RuleCode.GAP)
        or daily
        or not interval_ns
        or groups.n == 0
    ):
        return missing
    interval = interval_ns
    tod = cols(f"{PREFIX}tod")
    inside = np.zeros(tod.shape[0], dtype=bool)
    expected = np.zeros(groups.n, dtype=np.int64)
    width = max(len(f.continuous) for f in facts)
    for k in range(width):
        lo = np.array([f.continuous[k][0] if len(f.continuous) > k else 0 for f in facts])
        hi = np.array([f.continuous[k][1] if len(f.continuous) > k else 0 for f in facts])
        expected += -((lo - hi) // interval)  # ceil((hi - lo) / interval)
        inside |= (tod >= lo[groups.gid]) & (tod < hi[groups.gid])
    present = (
        pl.DataFrame({"g": groups.gid[inside], "ts": cols("ts")[inside]})
        .group_by("g")
        .agg(pl.col("ts").n_unique().alias("n"))
    )
    have = np.zeros(groups.n, dtype=np.int64)
    have[present["g"].to_numpy()] = present["n"].to_numpy()
    return np.maximum(expected - have, 0)


def missing_sessions(
    kind: DataKind,
    config: ValidationConfig,
    calendar: Calendar | None,
    daily: bool,
    interval_ns: int | None,
    stats: pl.DataFrame,
) -> list[SymbolDayQuality]:
    """Sessions without any row for a symbol, between its first and last day (GAP).

    Each counts as missing the rows such a day should hold: the symbol's median rows per
    day (trades, quotes), one daily bar, or the day's intraday bar slots.
    """
    if calendar is None or not config.enabled(RuleCode.GAP) or kind is DataKind.CORPORATE_ACTIONS:
        return []
    placed = stats.filter(pl.col("day").is_not_null() & (pl.col("symbol") != NULL_SYMBOL))
    out: list[SymbolDayQuality] = []
    for (symbol,), sub in placed.group_by("symbol", maintain_order=True):
        # Only sessions span the range: a row on a holiday does not make days expected.
        days = {d for d in sub["day"].to_list() if calendar.facts(d).is_session}
        if not days:
            continue
        gaps = [d for d in calendar.sessions_between(min(days), max(days)) if d not in days]
        for d in gaps:
            if kind is not DataKind.BARS:
                expected = max(1, int(sub["rows"].median() or 1))  # type: ignore[arg-type]
            elif daily or not interval_ns:
                expected = 1
            else:
                windows = calendar.facts(d).continuous
                expected = max(1, sum(-((lo - hi) // interval_ns) for lo, hi in windows))
            out.append(
                SymbolDayQuality(
                    symbol=str(symbol),
                    day=d,
                    rows=0,
                    clean=0,
                    missing=expected,
                    missing_session=True,
                )
            )
    return out
