"""Rows arranged by symbol-day without moving the frame, and the buffers the passes reuse.

Every stage works on numpy arrays in *sorted* order (symbol-days contiguous, chronological per
symbol); ``Groups`` maps results back, so the output keeps the input order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from quant.data.validate import kernels


class Scratch:
    """Output arrays reused from chunk to chunk.

    A fresh array of several megabytes costs a page fault per 4 KiB on first write, which
    measured as a large share of the compiled passes' time; a chunk's arrays live until the
    chunk is concluded, so the run keeps two sets (one chunk prepared while the previous one
    is concluded). Nothing taken from here may outlive its chunk.
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, dtype: type) -> np.ndarray:
        have = self._arrays.get(name)
        if have is None or have.shape[0] < n or have.dtype != dtype:
            have = self._arrays[name] = np.empty(n, dtype)
        return have[:n]


def numpy_of(series: pl.Series, scratch: Scratch | None, name: str) -> np.ndarray:
    """``series.to_numpy()``; a numeric series without nulls held in several chunks (as read
    from Parquet) is copied chunk by chunk into a reused buffer rather than a fresh array."""
    if (
        scratch is None
        or series.n_chunks() == 1
        or series.null_count()
        or not series.dtype.is_numeric()
    ):
        return series.to_numpy()
    chunks = [c.to_numpy() for c in series.get_chunks()]
    out = scratch.get(name, series.len(), chunks[0].dtype.type)
    at = 0
    for c in chunks:
        out[at : at + c.shape[0]] = c
        at += c.shape[0]
    return out


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + length)`` for each pair, without a Python loop."""
    total = int(lengths.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def to_dates(days: np.ndarray) -> list[date]:
    return days.astype("datetime64[D]").tolist()


@dataclass
class Groups:
    """Rows arranged by symbol-day without moving the frame.

    ``order`` maps a *sorted* position to the input position (None when the input is already
    grouped: symbol-days contiguous and chronological per symbol). Stages work on numpy arrays
    in sorted order; results are mapped back, so output keeps the input order.
    """

    order: np.ndarray | None
    gid: np.ndarray
    starts: np.ndarray
    symbols: list[str]
    day_ints: np.ndarray
    rows: np.ndarray

    @property
    def n(self) -> int:
        return len(self.symbols)

    @functools.cached_property
    def days(self) -> list[date]:
        return to_dates(self.day_ints)

    @functools.cached_property
    def symbol_start(self) -> np.ndarray:
        """True for the first group of each symbol (groups of a symbol are adjacent)."""
        s = np.array(self.symbols, dtype=object)
        return np.r_[True, s[1:] != s[:-1]] if self.n else np.zeros(0, dtype=bool)

    @functools.cached_property
    def symbol_id(self) -> np.ndarray:
        """A running number per symbol, per group."""
        return np.cumsum(self.symbol_start) - 1

    def sort(self, values: np.ndarray) -> np.ndarray:
        return values if self.order is None else values[self.order]

    def to_input(self, positions: np.ndarray) -> np.ndarray:
        return positions if self.order is None else self.order[positions]


def group_rows(symbol: pl.Series, day: np.ndarray, scratch: Scratch | None = None) -> Groups:
    n = len(day)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Groups(None, empty, empty, [], empty, empty)
    runs = symbol.rle()
    gid, starts, run_of = kernels.symbol_day_runs(
        runs.struct.field("len").cast(pl.Int64).to_numpy(),
        day,
        None if scratch is None else scratch.get("gid", n, np.int64),
    )
    first_symbols = runs.struct.field("value").gather(run_of)
    new_symbol = (first_symbols != first_symbols.shift(1)).fill_null(True).to_numpy()
    runs = first_symbols.filter(pl.Series(new_symbol))
    first_days = day[starts]
    backwards = ~new_symbol[1:] & (first_days[1:] <= first_days[:-1])
    if runs.n_unique() == runs.len() and not backwards.any():
        rows = np.diff(np.r_[starts, n])
        return Groups(None, gid, starts, first_symbols.to_list(), first_days, rows)
    # Interleaved input (e.g. sorted by time across symbols): a stable order by (symbol, day)
    # from two radix sorts on small integer keys; the frame itself is never reordered.
    uniques = symbol.unique().sort()
    codes = symbol.cast(pl.Enum(uniques.to_list())).to_physical().to_numpy().astype(np.int64)
    offset = day - day.min()
    if uniques.len() < 2**16 and offset.max() < 2**16:
        by_day = np.argsort(offset.astype(np.uint16), kind="stable")
        order = by_day[np.argsort(codes.astype(np.uint16)[by_day], kind="stable")]
    else:
        order = (
            pl.DataFrame({"c": codes, "d": day})
            .with_row_index("i")
            .sort("c", "d", "i")["i"]
            .to_numpy()
            .astype(np.int64)
        )
    c, d = codes[order], day[order]
    change = np.r_[True, (c[1:] != c[:-1]) | (d[1:] != d[:-1])]
    starts = np.flatnonzero(change)
    names = uniques.to_list()
    return Groups(
        order,
        np.cumsum(change) - 1,
        starts,
        [names[i] for i in c[starts].tolist()],
        d[starts],
        np.diff(np.r_[starts, n]),
    )


@dataclass(frozen=True)
class PerGroup:
    """A row flag that is the same for every row of a symbol-day, stored per symbol-day."""

    values: np.ndarray
    gid: np.ndarray

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.values[self.gid[rows]]


class Columns:
    """Numpy views of frame columns in sorted order (nulls filled: such rows are already dead)."""

    def __init__(self, frame: pl.DataFrame, groups: Groups, scratch: Scratch | None = None) -> None:
        self.frame = frame
        self.groups = groups
        self.scratch = scratch
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        got = self._cache.get(name)
        if got is None:
            s = self.frame[name]
            if isinstance(s.dtype, pl.Datetime):
                s = s.dt.epoch("ns")
            if s.null_count():
                s = s.fill_null(np.nan if s.dtype.is_float() else 0)
            got = self._cache[name] = self.groups.sort(numpy_of(s, self.scratch, f"col_{name}"))
        return got

    def put(self, name: str, values: np.ndarray) -> None:
        self._cache[name] = values
