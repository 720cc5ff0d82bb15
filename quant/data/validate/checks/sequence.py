"""Stage 2, DUPLICATE and OUT_OF_ORDER: rows compared with the earlier rows of their symbol-day.

Ordering is judged within a symbol-day (the lake stores one partition per symbol-day), among
the rows alive after stage 1.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant.data.schema import KEYS, DataKind
from quant.data.validate import kernels
from quant.data.validate.casting import PREFIX
from quant.data.validate.checks.base import Finding, ts_fmt
from quant.data.validate.groups import Columns, Groups, ranges
from quant.data.validate.rules import CODE, RuleCode, ValidationConfig


def sequence_findings(
    kind: DataKind,
    config: ValidationConfig,
    cols: Columns,
    groups: Groups,
    alive: np.ndarray,
    code: np.ndarray,
) -> list[Finding]:
    """DUPLICATE and OUT_OF_ORDER within each symbol-day.

    A row is out of order when its ts is earlier than the latest ts of the earlier rows of
    its symbol-day (bars: not later, since a bar's ts is its key), or its seq is not greater
    than their highest seq. "Earlier rows" are those alive after the row-level rules. A row
    rejected for its ts cannot raise the running maximum of ts, so for ts alone this is
    exactly "the previous accepted row"; where ts and seq disagree in the same stretch the
    running maxima include rows rejected for the other field (a vectorised simplification).
    Every duplicate is also out of sequence (same ts and seq), so keys are compared only
    among rows sharing a timestamp with such a row: a row whose key appeared earlier is a
    DUPLICATE (the first occurrence stays clean), the others are OUT_OF_ORDER.
    """
    on = config.enabled
    if not (on(RuleCode.DUPLICATE) or on(RuleCode.OUT_OF_ORDER)) or not alive.any():
        return []
    bars = kind is DataKind.BARS
    tod, ts = cols(f"{PREFIX}tod"), cols("ts")
    # Suspects, whether each is late in ts, and the earlier maxima of tod and seq (0
    # where it is not late in that field), in one pass over the rows.
    positions, late, prev_tod, prev_seq = kernels.late_rows(
        tod, None if bars else cols("seq"), groups.starts, alive, bars
    )
    if positions.size == 0:
        return []
    # Duplicates: an earlier alive row with the same key shares the suspect's timestamp,
    # and its symbol-day.
    suspect_groups = np.unique(groups.gid[positions])
    span = ranges(groups.starts[suspect_groups], groups.rows[suspect_groups])
    near = span[alive[span] & np.isin(ts[span], np.unique(ts[positions]))]
    # Rows whose key (symbol-day, ts[, seq]) occurred at an earlier row: sorted by key
    # and then position, every row equal to its predecessor repeats it.
    keys = [groups.gid[near], ts[near]] + ([] if bars else [cols("seq")[near]])
    by_key = np.lexsort([near, *keys[::-1]])
    same = np.ones(max(near.size - 1, 0), dtype=bool)
    for key in keys:
        ordered = key[by_key]
        same &= ordered[1:] == ordered[:-1]
    repeated = near[by_key][1:][same]
    is_dup = np.isin(positions, repeated) & on(RuleCode.DUPLICATE)
    rejected = is_dup | on(RuleCode.OUT_OF_ORDER)
    positions, is_dup = positions[rejected], is_dup[rejected]
    late, prev_tod, prev_seq = late[rejected], prev_tod[rejected], prev_seq[rejected]
    if positions.size == 0:
        return []
    codes = np.where(is_dup, CODE[RuleCode.DUPLICATE], CODE[RuleCode.OUT_OF_ORDER])
    code[positions] = codes
    alive[positions] = False
    symbols = [groups.symbols[g] for g in groups.gid[positions].tolist()]
    gts = ts[positions]
    prev_ts = gts - (tod[positions] - prev_tod)
    utc = pl.Datetime("ns", "UTC")
    detail = pl.DataFrame(
        {
            "dup": is_dup,
            "symbol": pl.Series(symbols, dtype=pl.String),
            "ts": pl.Series(gts, dtype=pl.Int64).cast(utc),
            "prev_ts": pl.Series(prev_ts, dtype=pl.Int64).cast(utc),
            "late": late,
            "seq": cols("seq")[positions] if not bars else np.zeros(positions.size, np.int64),
            "prev_seq": prev_seq if not bars else 0,
        }
    ).with_columns(ts_fmt(pl.col("ts")), ts_fmt(pl.col("prev_ts")).alias("prev_ts"))
    key_names = ", ".join(KEYS[kind])
    key_values = (
        pl.format("{}, {}", "symbol", "ts")
        if bars
        else pl.format("{}, {}, {}", "symbol", "ts", "seq")
    )
    order_text = pl.format(
        "ts {} is {} {} already seen for this symbol-day",
        "ts",
        pl.lit("not after" if bars else "earlier than"),
        "prev_ts",
    )
    if not bars:
        order_text = (
            pl.when("late")
            .then(order_text)
            .otherwise(pl.format("seq {} does not increase (highest so far {})", "seq", "prev_seq"))
        )
    reasons = detail.select(
        pl.when("dup")
        .then(pl.format("same key ({}) = ({}) as an earlier row", pl.lit(key_names), key_values))
        .otherwise(order_text)
    ).to_series()
    return [Finding(positions, codes, reasons)]
