"""Input conventions shared by the labelling functions: one price series, one time axis.

Labels are computed per symbol over a pandas ``Series`` of closes indexed by the instant each
close is known: a bar's ``ts_end`` (tz-aware, converted to UTC), strictly increasing. A polars
bars frame (lake ``BARS`` schema, one symbol) is accepted too and converted with
:func:`close_series`. Integer indexes (bar numbers) are accepted for toy examples and tests;
only a time-based vertical barrier or volatility look-back needs real timestamps.

Internally every time axis becomes an int64 array (UTC nanoseconds for timestamps), so the
kernels are plain numpy and pandas 3's variable datetime resolution (``us`` by default) never
changes a comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl

PriceLike = pd.Series | pl.DataFrame
"""Closes of one symbol: a pandas Series indexed by close time, or a polars bars frame."""


def close_series(
    bars: pl.DataFrame | pd.DataFrame,
    column: str = "close",
    time_column: str = "ts_end",
    symbol: str | None = None,
) -> pd.Series:
    """The closes of one symbol as a pandas Series indexed by ``ts_end`` (UTC).

    A bar's close is known at its ``ts_end``, so that is the time a label or a volatility
    estimate computed from it is stamped with. ``symbol`` selects one symbol of a multi-symbol
    frame; a frame holding several symbols without it is an error (labels never mix symbols).
    """
    if isinstance(bars, pd.DataFrame):
        bars = pl.from_pandas(bars)
    if not isinstance(bars, pl.DataFrame):
        raise TypeError(f"bars must be a polars or pandas DataFrame, got {type(bars).__name__}")
    for name in (column, time_column):
        if name not in bars.columns:
            raise ValueError(f"bars have no column {name!r}")
    if "symbol" in bars.columns:
        if symbol is not None:
            bars = bars.filter(pl.col("symbol") == symbol)
        symbols = bars["symbol"].unique().to_list()
        if len(symbols) > 1:
            raise ValueError(
                f"bars hold {len(symbols)} symbols; pass symbol= to label one of them "
                f"(labels are computed per symbol)"
            )
    bars = bars.sort(time_column)
    index = pd.DatetimeIndex(bars[time_column].to_pandas(), name=time_column)
    out = pd.Series(bars[column].to_numpy().astype(np.float64), index=index, name=column)
    _check_time_index(out.index, "bars")
    return out


def as_close_series(prices: PriceLike) -> pd.Series:
    """Normalise ``prices`` to a float64 Series with a valid, strictly increasing index."""
    if isinstance(prices, pl.DataFrame):
        return close_series(prices)
    if not isinstance(prices, pd.Series):
        raise TypeError(
            "prices must be a pandas Series indexed by close time or a polars bars frame, "
            f"got {type(prices).__name__}"
        )
    values = prices.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any():
        raise ValueError(f"prices hold {int(np.isnan(values).sum())} missing value(s)")
    if (values <= 0).any():
        raise ValueError("prices must be positive")
    _check_time_index(prices.index, "prices")
    return pd.Series(values, index=prices.index, name=prices.name)


def _check_time_index(index: pd.Index, what: str) -> None:
    if isinstance(index, pd.DatetimeIndex) and index.tz is None:
        raise ValueError(f"{what} index must be tz-aware (UTC close times), got naive datetimes")
    if not isinstance(index, pd.DatetimeIndex) and not pd.api.types.is_integer_dtype(index):
        raise ValueError(f"{what} index must be close timestamps (or integer bar numbers)")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError(f"{what} index must be strictly increasing")


def time_values(index: Any) -> np.ndarray:
    """int64 view of a time axis: UTC nanoseconds for timestamps, the integers otherwise."""
    if isinstance(index, pd.Series):
        index = pd.Index(index)
    if isinstance(index, pd.DatetimeIndex):
        return index.as_unit("ns").asi8.copy()
    index = pd.Index(index)
    if isinstance(index.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(index):
        return pd.DatetimeIndex(index).as_unit("ns").asi8.copy()
    if pd.api.types.is_integer_dtype(index):
        return index.to_numpy(dtype=np.int64)
    raise ValueError(f"cannot use {index.dtype} values as times")


def axis_values(values: Any, what: str) -> tuple[np.ndarray, bool]:
    """int64 times of ``values`` and whether they are timestamps (tz-naive ones are refused)."""
    index = pd.Index(values)
    if isinstance(index, pd.DatetimeIndex) and index.tz is None:
        raise ValueError(f"{what} must be tz-aware (UTC) timestamps, got naive datetimes")
    return time_values(index), isinstance(index, pd.DatetimeIndex)


def duration_ns(delta: Any) -> int:
    """A ``timedelta``/``pd.Timedelta`` in nanoseconds."""
    return int(pd.Timedelta(delta).as_unit("ns").value)
