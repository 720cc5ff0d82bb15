"""Stage 4, STALE: a series that stops moving (see ``ValidationConfig.stale_max_run``)."""

from __future__ import annotations

import numpy as np
import polars as pl

from quant.data.schema import DataKind
from quant.data.validate import kernels
from quant.data.validate.checks.base import Finding
from quant.data.validate.groups import Columns, Groups
from quant.data.validate.rules import CODE, RuleCode, ValidationConfig

STALE_VALUES: dict[DataKind, tuple[str, ...]] = {
    DataKind.TRADES: ("price", "size", "side"),
    DataKind.QUOTES: ("bid_price", "bid_size", "ask_price", "ask_size"),
    DataKind.BARS: ("open", "high", "low", "close", "volume"),
}
"""The values that must all repeat for a row to extend a stale run, per kind."""


def stale_findings(
    kind: DataKind,
    config: ValidationConfig,
    daily: bool,
    cols: Columns,
    groups: Groups,
    alive: np.ndarray,
    code: np.ndarray,
) -> list[Finding]:
    """STALE: see ``ValidationConfig.stale_max_run``; runs are over alive rows, per symbol-day
    (``daily`` bars: per symbol, across days)."""
    if not config.enabled(RuleCode.STALE) or not alive.any():
        return []
    scope = groups.symbol_id[groups.gid] if daily else groups.gid
    values = [cols(c) for c in STALE_VALUES[kind]]
    values += [values[-1]] * (5 - len(values))  # the kernel compares five columns
    cap = config.stale_max_run
    limit = int(config.stale_max_duration.total_seconds() * 10**9)
    positions, run_len, elapsed = kernels.stale_rows(scope, alive, cols("ts"), *values, cap, limit)
    if positions.size == 0:
        return []
    code[positions] = CODE[RuleCode.STALE]
    alive[positions] = False
    reasons = (
        pl.DataFrame({"n": run_len, "minutes": (elapsed / 6e10).round(1)})
        .select(
            pl.format(
                "row {} of a run of identical values lasting {} min (allowed: {} rows or {} min)",
                "n",
                "minutes",
                pl.lit(cap),
                pl.lit(round(limit / 6e10, 1)),
            )
        )
        .to_series()
    )
    codes = np.full(positions.size, CODE[RuleCode.STALE], dtype=np.uint8)
    return [Finding(positions, codes, reasons)]
