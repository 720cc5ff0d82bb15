"""Reading Parquet larger than memory in complete symbol-days.

Rows wait in a buffer until their symbol-day is complete, which the files' row-group statistics
(symbol and ts min/max) prove once no unread row group can hold that symbol-day. Files sorted by
symbol or by time therefore stream with a buffer of about one batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from quant.data.validate.calendar import DAY_NS, fixed_offset_ns
from quant.data.validate.casting import as_utc

if TYPE_CHECKING:
    from quant.data.validate.runner import Run


def expand_paths(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """The Parquet files of ``source`` (files, or directories searched recursively)."""
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    paths: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.rglob("*.parquet"))
            if not found:
                raise ValueError(f"no Parquet files under {p}")
            paths += [str(f) for f in found]
        elif p.exists():
            paths.append(str(p))
        else:
            raise ValueError(f"no such file: {p}")
    if not paths:
        raise ValueError("no Parquet files to validate")
    return paths


@dataclass(frozen=True)
class RowGroup:
    """Where a row group ends (rows read, over all files) and its symbol and ts bounds."""

    end_row: int
    sym_min: str | None
    ts_min: int | None
    sym_max: str | None = None


def row_group_stats(paths: Sequence[str]) -> list[RowGroup]:
    """Where every row group ends (in rows read) and its smallest symbol and ts, if known."""
    out: list[RowGroup] = []
    offset = 0
    for path in paths:
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        sym_i = names.index("symbol") if "symbol" in names else None
        ts_i = names.index("ts") if "ts" in names else None
        scale = None
        if ts_i is not None:
            unit = getattr(pf.schema_arrow.field("ts").type, "unit", None)
            scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}.get(unit or "")
        for r in range(meta.num_row_groups):
            rg = meta.row_group(r)
            sym_min = sym_max = ts_min = None
            if sym_i is not None:
                st = rg.column(sym_i).statistics
                if st is not None and st.has_min_max and isinstance(st.min, str):
                    sym_min = st.min
                    sym_max = st.max if isinstance(st.max, str) else None
            if ts_i is not None and scale is not None:
                st = rg.column(ts_i).statistics
                if st is not None and st.has_min_max and isinstance(st.min_raw, int):
                    ts_min = st.min_raw * scale
            offset += rg.num_rows
            out.append(RowGroup(offset, sym_min, ts_min, sym_max))
    return out


class StatsPlanner:
    """Holds rows back until Parquet statistics prove their symbol-day complete.

    A symbol-day is complete once every unread row group starts at a larger symbol (files
    sorted by symbol) or after the end of that day (files sorted by time). Rows without a
    symbol or a timestamp are released at once (they are rejected whatever follows).
    """

    def __init__(self, paths: Sequence[str], run: Run) -> None:
        self.row_groups = row_group_stats(paths)
        self.run = run
        self.read = 0
        self.buffer: pl.DataFrame | None = None
        self.buffer_first: int | None = None
        """File position of the first held row while the held rows are one stretch of it."""

    def add(self, batch: pl.DataFrame) -> list[pl.DataFrame]:
        first_row: int | None = self.read  # file position of the batch's first row, if known
        self.read += batch.height
        if self.buffer is not None and self.buffer.height:
            batch = pl.concat([self.buffer, batch], how="vertical_relaxed")
            first_row = self.buffer_first
        self.buffer = None
        remaining = [g for g in self.row_groups if g.end_row > self.read]
        if not remaining:
            return [batch] if batch.height else []
        release = self._complete(batch, remaining, first_row)
        first_held = int(np.argmin(release)) if not release.all() else batch.height
        if not release[first_held:].any():  # released rows are a prefix: slice, don't filter
            ready, held = batch.slice(0, first_held), batch.slice(first_held)
            self.buffer_first = None if first_row is None else first_row + first_held
        else:
            mask = pl.Series(release)
            ready, held = batch.filter(mask), batch.filter(~mask)
            self.buffer_first = None
        self.buffer = held if held.height else None
        return [ready] if ready.height else []

    def _before_symbol(self, symbol: pl.Series, next_min: str, first_row: int | None) -> np.ndarray:
        """Rows whose symbol sorts before ``next_min``.

        When the batch is one stretch of the file, each row group it overlaps decides for all
        its rows at once if its symbols lie wholly before or from ``next_min``.
        """
        n = symbol.len()
        if first_row is None:
            return (symbol < next_min).fill_null(False).to_numpy()
        out = np.zeros(n, dtype=bool)
        start = 0
        for group in self.row_groups:
            lo, hi = max(start, first_row) - first_row, min(group.end_row, self.read) - first_row
            start = group.end_row
            if hi <= 0:
                continue
            if lo >= n:
                break
            if group.sym_max is not None and group.sym_max < next_min:
                out[lo:hi] = True
            elif group.sym_min is None or group.sym_max is None or group.sym_min < next_min:
                piece = symbol.slice(lo, hi - lo)
                out[lo:hi] = (piece < next_min).fill_null(False).to_numpy()
        return out

    def flush(self) -> list[pl.DataFrame]:
        held, self.buffer = self.buffer, None
        return [held] if held is not None and held.height else []

    def _complete(
        self, batch: pl.DataFrame, remaining: list[RowGroup], first_row: int | None
    ) -> np.ndarray:
        """Rows whose symbol-day no unread row group can continue.

        Bounds decide first (the batch's time range against the frontier; the symbols of the
        row groups the batch's rows come from against the next one): row by row comparisons
        run only where a batch or a row group straddles a frontier.
        """
        symbol = batch["symbol"].cast(pl.String, strict=False)
        ts = batch["ts"] if batch.schema["ts"] == pl.Datetime("ns", "UTC") else as_utc(batch["ts"])
        release = np.zeros(batch.height, dtype=bool)
        if symbol.null_count() or ts.null_count():
            release |= (symbol.is_null() | ts.is_null()).to_numpy()
        sym_mins = [g.sym_min for g in remaining]
        if None not in sym_mins:
            next_min = min(s for s in sym_mins if s is not None)
            # Every row read so far lies in a read row group (or the partly read one, which
            # starts at next_min or later), at or above that group's smallest symbol.
            read = [g.sym_min for g in self.row_groups if g.end_row <= self.read]
            if None in read or (read and min(s for s in read if s is not None) < next_min):
                release |= self._before_symbol(symbol, next_min, first_row)
        ts_mins = [g.ts_min for g in remaining]
        epoch = ts.dt.epoch("ns")
        if None not in ts_mins and not self.run.daily and epoch.null_count() < epoch.len():
            frontier = min(t for t in ts_mins if t is not None)
            # Null stamps count as 0, as they would in a per-row computation.
            low, high = int(epoch.min()), int(epoch.max())  # type: ignore[arg-type]
            nulls = epoch.null_count() > 0
            first, last = (min(low, 0), max(high, 0)) if nulls else (low, high)
            tz = self.run.tz
            offset = 0 if tz is None else fixed_offset_ns(tz.key, first // DAY_NS, last // DAY_NS)

            def day_end(e: Any) -> Any:
                """End of the local day of ``e`` (monotone in ``e``)."""
                if offset is None:  # widen by more than any zone's offset
                    return ((e + 14 * 3600 * 10**9) // DAY_NS + 1) * DAY_NS + 14 * 3600 * 10**9
                return ((e + offset) // DAY_NS + 1) * DAY_NS - offset

            if day_end(last) <= frontier:
                release[:] = True
            elif day_end(first) <= frontier:
                release |= day_end(epoch.fill_null(0).to_numpy()) <= frontier
        return release
