"""What a feature is: one definition, computed vectorised over history and on a stream.

A ``Feature`` is a frozen dataclass whose fields are its parameters. It names the columns it
reads (``inputs``) and gives its value twice:

- ``expr()``: a polars expression over a history frame of many symbols (sorted by symbol,
  then time; ``lag``, ``windowed`` and ``per_symbol`` keep every value inside its symbol), for
  research over years of history;
- ``kernel(slots)``: the same definition as a recurrence, a compiled kernel in ``kernels.py``
  fed one event at a time, for the live stream processor.

The two agree to a few ulps in practice (the parity tests hold them to 1e-9 relative on real
and synthetic data), both produce nulls (never NaN, never 0) until the feature has enough
history, and a value stamped t depends only on events stamped at or before t (the look-ahead
tests change the future and check, bit for bit).

Inputs are either columns of the event (``close``, ``bid_price``, ``size`` ...) or context
columns that the pipeline derives in both modes the same way (``CONTEXT``): the Istanbul
session day, time of day and market phase from the trading calendar, and the market return
from the cross-section of symbols.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import numpy as np
import polars as pl


class Source(StrEnum):
    """The kind of event a feature pipeline consumes; fixes the time stamps and row order."""

    BARS = "bars"
    TRADES = "trades"
    QUOTES = "quotes"

    @property
    def stamp(self) -> str:
        """The instant a row's values are known: a bar's close ``ts_end``, a tick's ``ts``."""
        return "ts_end" if self is Source.BARS else "ts"

    @property
    def session_ts(self) -> str:
        """The instant that decides a row's session day: a bar belongs to the day it opened."""
        return "ts"

    @property
    def order(self) -> tuple[str, ...]:
        """Row order within a symbol (ticks of one instant keep their sequence number order)."""
        return ("ts_end", "ts") if self is Source.BARS else ("ts", "seq")

    @classmethod
    def infer(cls, columns: Mapping[str, Any] | list[str] | tuple[str, ...]) -> Source:
        """Bars have ``ts_end``, quotes ``bid_price``; anything else is a trade."""
        names = set(columns)
        if "ts_end" in names:
            return cls.BARS
        if "bid_price" in names:
            return cls.QUOTES
        return cls.TRADES


SESSION = "session"
"""Context: Istanbul local date of the row's session stamp, as days since 1970-01-01."""
TIME_OF_DAY = "time_of_day"
"""Context: minutes since Istanbul local midnight at the row's stamp."""
MINUTES_SINCE_OPEN = "minutes_since_open"
"""Context: minutes since the session's first order time (09:40) at the stamp; null outside
the session day's trading hours and on days without a session."""
PHASE = "phase"
"""Context: code of the market phase at the stamp (``PHASE_CODES``)."""
MARKET_RETURN = "market_return"
"""Context: equal-weighted mean of the log returns of every symbol with a bar stamped t."""

CONTEXT = (SESSION, TIME_OF_DAY, MINUTES_SINCE_OPEN, PHASE, MARKET_RETURN)
CALENDAR_CONTEXT = (SESSION, TIME_OF_DAY, MINUTES_SINCE_OPEN, PHASE)


POSITION = "_position"
"""Row number of a row within its symbol (0 for the symbol's first row), added by the pipeline.

Shifts, arithmetic and windows computed afresh (min, max, weighted sums) run over the whole
frame at once, which polars does about three times faster than group by group with ``.over``;
``lag`` and ``windowed`` use this column to keep them inside the row's own symbol."""


def scratch(*parts: object) -> str:
    """Name of an intermediate column (see ``Feature.intermediates``)."""
    return "__" + "_".join(str(p) for p in parts)


def position() -> pl.Expr:
    return pl.col(POSITION)


def lag(x: pl.Expr, k: int = 1) -> pl.Expr:
    """``x`` k rows earlier in the same symbol; null for the symbol's first k rows."""
    return pl.when(position() >= k).then(x.shift(k))


def windowed(rolling: pl.Expr, n: int) -> pl.Expr:
    """A rolling statistic over n rows computed afresh for each window (min, max, a weighted
    sum, a sum of integer values), evaluated over the whole frame and kept only where its
    window lies inside the row's symbol (null for the symbol's first n - 1 rows)."""
    return pl.when(position() >= n - 1).then(rolling)


def per_symbol(expr: pl.Expr) -> pl.Expr:
    """Evaluate ``expr`` symbol by symbol. Needed for recursions (EWMA, cumulative sums,
    forward fills) and for rolling float sums, means and variances: polars slides those with
    a running, compensated state, so over the whole frame the rounding of one symbol's values
    would depend on the rows before it in memory, i.e. on another symbol's later prices (an
    ulp-sized look-ahead the look-ahead tests catch)."""
    return expr.over("symbol")


def seeded_ewm(x: pl.Expr, n: int, alpha: float, lead: int) -> pl.Expr:
    """EMA of ``x`` seeded by the simple mean of its first ``n`` values (TA-Lib, talipp and
    Wilder's convention), then ``m += alpha * (x - m)``; null before the seed.

    ``lead`` is the number of leading nulls of ``x`` (known from the definition), so the seed
    sits at row ``lead + n - 1`` of the symbol. Matches ``kernels._seeded_ema``.
    """
    i = position()
    seed_at = lead + n - 1
    seeded = pl.when(i == seed_at).then(x.rolling_mean(n)).when(i > seed_at).then(x)
    return per_symbol(seeded.ewm_mean(alpha=alpha, adjust=False))


def check_window(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class Feature(ABC):
    """One feature: parameters are dataclass fields; subclasses are frozen dataclasses."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Column name, derived from the parameters (unique within a pipeline)."""

    @property
    @abstractmethod
    def inputs(self) -> tuple[str, ...]:
        """Columns read: event columns and/or ``CONTEXT`` columns."""

    @abstractmethod
    def expr(self) -> pl.Expr:
        """The vectorised definition, evaluated over a frame sorted by symbol then time that
        has the ``POSITION`` column: shifts go through ``lag``, rolling statistics through
        ``windowed``, recursions through ``per_symbol``, so that no value mixes two symbols.
        Nulls in the warm-up; the pipeline turns NaN and infinities into nulls, as the kernels
        do."""

    def intermediates(self) -> dict[str, pl.Expr]:
        """Columns that ``expr`` reads by name, computed first (from input and context columns
        only). polars shares repeated sub-expressions (CSE) except rolling and ``.over``
        ones, which it recomputes at every use; a feature that needs one twice materialises it
        here once. Named with ``scratch``, keyed by what they compute, so that features
        sharing one (MACD's line for its three outputs) compute it once."""
        return {}

    @abstractmethod
    def kernel(self, slots: Mapping[str, int]) -> tuple[int, list[float], int]:
        """The streaming definition: ``(opcode, parameters, state size)`` for ``kernels.step``,
        with input columns resolved to their ``slots`` in the event vector."""

    @property
    def params(self) -> dict[str, Any]:
        """The parameters, as plain values (for configs, manifests and sweeps)."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def cross_sectional(self) -> bool:
        """Needs the market return, i.e. the bars of every symbol at the same instant."""
        return MARKET_RETURN in self.inputs

    @property
    def event_inputs(self) -> tuple[str, ...]:
        return tuple(c for c in self.inputs if c not in CONTEXT)

    def batch(self, frame: pl.DataFrame, **pipeline_options: Any) -> pl.Series:
        """Values over a history frame (one or several symbols; any row order), in the
        pipeline's output order: by symbol, then time. A frame without a ``symbol`` column is
        one symbol's history."""
        from quant.features.pipeline import FeaturePipeline

        if "symbol" not in frame.columns:
            frame = frame.with_columns(symbol=pl.lit(""))
        pipeline = FeaturePipeline([self], source=Source.infer(frame.columns), **pipeline_options)
        return pipeline.batch(frame).get_column(self.name)

    def stream(self, source: Source | str | None = None, **pipeline_options: Any) -> FeatureStream:
        """A fresh incremental state for one symbol: ``update(**row) -> float | None``."""
        return FeatureStream(self, None if source is None else Source(source), pipeline_options)


class FeatureStream:
    """One feature of one symbol, fed one event at a time (a thin wrapper around a one-feature
    ``StreamingFeatures``, so it runs the very kernel the pipeline runs).

    ``update(**row)`` takes the event's columns (time stamps as UTC epoch nanoseconds or aware
    datetimes; bars need ``ts`` and ``ts_end``) and returns the value, or None while warming up.
    Cross-sectional features need ``market_return`` in the row.
    """

    __slots__ = ("_feature", "_options", "_source", "_stream")

    def __init__(self, feature: Feature, source: Source | None, options: Mapping[str, Any]) -> None:
        self._feature = feature
        self._options = dict(options)
        self._source = source
        self._stream = None

    @property
    def feature(self) -> Feature:
        return self._feature

    def update(self, **row: Any) -> float | None:
        if self._stream is None:
            from quant.features.pipeline import FeaturePipeline

            source = self._source or Source.infer(row)
            options = dict(self._options)
            if self._feature.cross_sectional:  # one symbol: the caller supplies the market
                options.setdefault("market", "given")
            pipeline = FeaturePipeline([self._feature], source=source, **options)
            self._stream = pipeline.stream()
        value = float(self._stream.update("", row)[0])
        return None if np.isnan(value) else value
