"""Many features for many symbols, in both modes: ``FeaturePipeline.batch`` over a history frame
and ``StreamingFeatures`` fed one event, one slice of bars or one micro-batch at a time.

Both modes derive the same context (``SessionClock`` for the calendar, the equal-weighted
market return for the factor features) and run each feature's own definition (its polars
expression, its compiled kernel), so that a model trained on ``batch`` output sees the same
numbers live. Output rows are stamped at the instant their values are known: a bar's
``ts_end``, a tick's ``ts``.
"""

from __future__ import annotations

import base64
import itertools
import math
import operator
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import polars as pl

from quant.features import kernels
from quant.features.base import (
    CALENDAR_CONTEXT,
    MARKET_RETURN,
    POSITION,
    Feature,
    Source,
)
from quant.features.calendar_features import (
    MinutesSinceOpen,
    SessionClock,
    SessionPhaseCode,
    TimeOfDay,
    to_ns,
)
from quant.features.factor import MarketBeta, ResidualMomentum, with_market_return
from quant.features.fracdiff import FracDiff
from quant.features.indicators import ATR, MACD, RSI, VolumeZScore, VwapDistance
from quant.features.microstructure import (
    Microprice,
    OrderFlowImbalance,
    RelativeSpread,
    TradeSignImbalance,
)
from quant.features.returns import LogReturn
from quant.features.volatility import (
    CloseToCloseVol,
    GarmanKlassVol,
    ParkinsonVol,
    YangZhangVol,
)
from quant.market.calendar import TradingCalendar

MarketMode = Literal["equal_weighted", "given"]
_OPTIMIZATIONS = pl.QueryOptFlags(comm_subexpr_elim=True)


class FeaturePipeline:
    """A set of features over one kind of event (bars, trades or quotes).

    ``market="equal_weighted"`` (default) builds the market return for the factor features
    from the symbols in the data; ``market="given"`` takes a ``market_return`` column/field
    supplied by the caller (an index return, say).
    """

    def __init__(
        self,
        features: Sequence[Feature],
        source: Source | str = Source.BARS,
        *,
        calendar: TradingCalendar | None = None,
        market: MarketMode = "equal_weighted",
        market_column: str = "close",
    ) -> None:
        self.features: tuple[Feature, ...] = tuple(features)
        if not self.features:
            raise ValueError("a feature pipeline needs at least one feature")
        bad = [f for f in self.features if not isinstance(f, Feature)]
        if bad:
            raise TypeError(f"not features: {bad!r}")
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique, repeated: {', '.join(dupes)}")
        self.source = Source(source)
        if market not in ("equal_weighted", "given"):
            raise ValueError("market must be 'equal_weighted' or 'given'")
        self.market: MarketMode = market
        self.market_column = market_column
        if self.cross_sectional and self.source is not Source.BARS and market != "given":
            raise ValueError(
                "the equal-weighted market return is built from bars: use source='bars' or "
                "supply market_return with market='given'"
            )
        self.calendar = calendar
        self._clock: SessionClock | None = None
        needed = {c for f in self.features for c in f.inputs}
        self.calendar_context: tuple[str, ...] = tuple(c for c in CALENDAR_CONTEXT if c in needed)
        columns: list[str] = []
        for f in self.features:
            for c in f.event_inputs:
                if c not in columns:
                    columns.append(c)
        if self.cross_sectional and market == "equal_weighted" and market_column not in columns:
            columns.append(market_column)
        self.event_columns: tuple[str, ...] = tuple(columns)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def cross_sectional(self) -> bool:
        return any(f.cross_sectional for f in self.features)

    def session_clock(self) -> SessionClock:
        """A fresh clock (each stream keeps its own position in time)."""
        return SessionClock(self.calendar)

    # -- vectorised ---------------------------------------------------------------------

    def required_columns(self) -> tuple[str, ...]:
        """Columns a history frame must have."""
        cols = ["symbol", *self.event_columns]
        if self.calendar_context:
            cols += [self.source.session_ts, self.source.stamp]
        cols.append(self.source.stamp)
        if self.cross_sectional and self.market == "given":
            cols.append(MARKET_RETURN)
        return tuple(dict.fromkeys(cols))

    def batch(self, frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
        """Every feature over a history frame: one row per input row, columns ``symbol``,
        ``ts`` (the stamp: a bar's ``ts_end``, a tick's ``ts``), ``seq`` for ticks that have
        it, then one Float64 column per feature; sorted by symbol and time."""
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        missing = [c for c in self.required_columns() if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{self.source} feature frame is missing column(s): {', '.join(missing)}"
            )
        src = self.source
        frame = _utc_timestamps(frame, {src.stamp, src.session_ts} & set(frame.columns))
        order = ["symbol", *(c for c in src.order if c in frame.columns)]
        frame = frame.sort(order, maintain_order=True).with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).over("symbol").alias(POSITION)
        )
        if self.calendar_context:
            if self._clock is None:  # kept: its cache of session days serves every call
                self._clock = self.session_clock()
            frame = self._clock.annotate(frame, src.session_ts, src.stamp, self.calendar_context)
        if self.cross_sectional and self.market == "equal_weighted":
            if MARKET_RETURN in frame.columns:
                frame = frame.drop(MARKET_RETURN)
            frame = with_market_return(frame, src.stamp, self.market_column)
        keys = [pl.col("symbol"), pl.col(src.stamp).alias("ts")]
        if src is not Source.BARS and "seq" in frame.columns:
            keys.append(pl.col("seq"))
        scratch: dict[str, pl.Expr] = {}
        for f in self.features:
            for name, expr in f.intermediates().items():
                scratch.setdefault(name, expr)
        values = [f.expr().cast(pl.Float64).alias(f.name) for f in self.features]
        finite = [pl.when(pl.col(n).is_finite()).then(pl.col(n)).alias(n) for n in self.names]
        # lazily, so that polars shares sub-expressions between features (CSE) and runs
        # independent ones in parallel
        lazy = frame.lazy()
        if scratch:
            lazy = lazy.with_columns(**scratch)
        lazy = lazy.select(*keys, *values).with_columns(finite)
        return lazy.collect(optimizations=_OPTIMIZATIONS)

    # -- streaming ------------------------------------------------------------------------

    def stream(self) -> StreamingFeatures:
        """A fresh streaming counterpart (no symbol has history yet)."""
        return StreamingFeatures(self)

    def replay(
        self, frame: pl.DataFrame | pl.LazyFrame, batch_rows: int | None = None
    ) -> pl.DataFrame:
        """Feed a history frame through a fresh ``stream()`` in time order and collect the
        values in ``batch``'s layout: the live path run over recorded data, for parity checks.

        By default event by event (``update``; bars as slices of one stamp, ``update_slice``);
        with ``batch_rows``, as columnar micro-batches of about that many rows
        (``update_batch``; bars cut between stamps so that slices stay whole).
        """
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        missing = [c for c in self.required_columns() if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{self.source} feature frame is missing column(s): {', '.join(missing)}"
            )
        src = self.source
        stamps = {src.stamp, src.session_ts} & set(frame.columns)
        frame = _utc_timestamps(frame, stamps)
        order = ["symbol", *(c for c in src.order if c in frame.columns)]
        frame = frame.sort(order, maintain_order=True)
        events = frame.with_columns(pl.col(c).dt.epoch("ns") for c in stamps).with_row_index("_row")
        time_order = [*(c for c in src.order if c in frame.columns), "symbol"]
        events = events.sort(time_order, maintain_order=True)
        stream = self.stream()
        values = np.full((frame.height, len(self.names)), math.nan)
        if batch_rows is not None:
            for piece in _micro_batches(events, src, batch_rows):
                values[piece.get_column("_row").to_numpy()] = stream.update_batch(piece)
        elif src is Source.BARS:
            for piece in events.partition_by(src.stamp, maintain_order=True):
                rows = piece.rows(named=True)
                by_symbol = {event["symbol"]: event for event in rows}
                if len(by_symbol) != len(rows):
                    raise ValueError(f"two bars of one symbol share the stamp {rows[0][src.stamp]}")
                for vec, event in zip(stream.update_slice(by_symbol).values(), rows, strict=True):
                    values[event["_row"]] = vec
        else:
            for event in events.iter_rows(named=True):
                values[event["_row"]] = stream.update(event["symbol"], event)
        keys = [pl.col("symbol"), pl.col(src.stamp).alias("ts")]
        if src is not Source.BARS and "seq" in frame.columns:
            keys.append(pl.col("seq"))
        out = frame.select(keys)
        table = pl.DataFrame(values, schema=list(self.names), orient="row")
        return pl.concat([out, table.fill_nan(None)], how="horizontal")


def _micro_batches(events: pl.DataFrame, source: Source, rows: int) -> list[pl.DataFrame]:
    """Consecutive pieces of about ``rows`` events; bars are only cut between stamps."""
    if rows < 1:
        raise ValueError("batch_rows must be at least 1")
    if source is not Source.BARS:
        return [events.slice(i, rows) for i in range(0, events.height, rows)]
    stamp = events.get_column(source.stamp).to_numpy()
    starts = [0, *(np.flatnonzero(np.diff(stamp)) + 1).tolist()]
    pieces, begin = [], 0
    for start in [*starts[1:], events.height]:
        if start - begin >= rows or start == events.height:
            pieces.append(events.slice(begin, start - begin))
            begin = start
    return pieces


def _utc_timestamps(frame: pl.DataFrame, columns: Iterable[str]) -> pl.DataFrame:
    """Integer epoch-ns or naive columns read as UTC, aware ones converted to UTC."""
    fixes = []
    for c in columns:
        dtype = frame.schema[c]
        if dtype.is_integer():
            fixes.append(pl.from_epoch(pl.col(c), time_unit="ns").dt.replace_time_zone("UTC"))
        elif isinstance(dtype, pl.Datetime):
            if dtype.time_zone is None:
                fixes.append(pl.col(c).dt.replace_time_zone("UTC"))
            elif dtype.time_zone != "UTC":
                fixes.append(pl.col(c).dt.convert_time_zone("UTC"))
        else:
            raise ValueError(f"time stamp column {c!r} must be a datetime or epoch nanoseconds")
    return frame.with_columns(fixes) if fixes else frame


def event_ns(value: Any) -> int:
    """UTC epoch nanoseconds of an event time stamp (int ns, aware or naive-UTC datetime,
    numpy datetime64)."""
    if type(value) is int:
        return value
    if isinstance(value, datetime):
        return to_ns(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, (int, np.integer)):
        return int(value)
    raise TypeError(f"not a time stamp: {value!r}")


class StreamingFeatures:
    """The streaming counterpart of a ``FeaturePipeline``: per-symbol state, fed as events come.

    Three ways in, one state and one set of kernels, so they can be mixed and give the same
    values:

    - ``update(symbol, event)``: one event (a mapping of the source's columns, time stamps as
      UTC epoch nanoseconds or aware datetimes); returns the feature vector as of that event
      (float64 in ``names`` order, NaN where the batch value is null; ``as_dict`` gives None);
    - ``update_slice({symbol: event})``: every symbol's bar of one instant, as the bar builder
      publishes them; the factor features need it (their market return is the slice's);
    - ``update_batch(columns)``: a columnar micro-batch of events in arrival order (a polars
      frame or a mapping of arrays, e.g. an Arrow record batch from the feed): the per-event
      Python work is paid once per batch, which is what keeps tick streams within twice the
      vectorised cost per row.

    Events of a symbol must arrive in time order (the order ``batch`` sorts them in; the data
    validator quarantines late prints). Not thread-safe: one instance per actor.
    """

    def __init__(self, pipeline: FeaturePipeline) -> None:
        self.pipeline = pipeline
        self.names = pipeline.names
        columns = pipeline.event_columns
        context = list(pipeline.calendar_context)
        self._market = pipeline.cross_sectional
        if self._market:
            context.append(MARKET_RETURN)
        slots = {c: i for i, c in enumerate([*columns, *context])}
        self._n_inputs = len(slots)
        self._program, self._state_size = kernels.compile_program(
            [f.kernel(slots) for f in pipeline.features], self._n_inputs
        )
        self._io = np.full(self._n_inputs + len(self.names), math.nan)
        self._rows: dict[str, int] = {}
        # one row per symbol: the kernels' state, then the symbol's previous close (for the
        # equal-weighted market return, kept by ``kernels.step_slices``)
        self._states = np.zeros((8, self._state_size + 1))
        self._n_columns = len(columns)
        self._columns = columns
        self._getter = operator.itemgetter(*columns) if columns else None
        src = pipeline.source
        self._stamp = src.stamp
        self._session_ts = src.session_ts
        self._clock = pipeline.session_clock() if pipeline.calendar_context else None
        order = {c: i for i, c in enumerate(CALENDAR_CONTEXT)}
        self._context_slots = [(slots[c], order[c]) for c in pipeline.calendar_context]
        self._market_slot = slots.get(MARKET_RETURN, -1)
        self._equal_weighted = self._market and pipeline.market == "equal_weighted"
        self._close_slot = slots.get(pipeline.market_column, -1)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._rows)

    def reset(self) -> None:
        """Forget every symbol's history (a new replay starts warm-up again)."""
        self._rows.clear()
        self._states[:] = 0.0

    def state(self) -> dict[str, Any]:
        """Every symbol's kernel state as plain data: a restarted stream host loads it
        (``load_state``) and goes on with the same features instead of starting cold. The
        numbers travel as the bytes of little-endian float64 in base64 (exact, NaN included,
        and some hundred times cheaper to encode than a JSON list of a few thousand floats)."""
        n = len(self._rows)
        raw = np.ascontiguousarray(self._states[:n], dtype="<f8").tobytes()
        return {
            "names": list(self.names),
            "rows": dict(self._rows),
            "width": int(self._states.shape[1]),
            "states": base64.b64encode(zlib.compress(raw, 1)).decode("ascii"),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Resume from ``state()`` of a pipeline with the same features."""
        width = self._states.shape[1]
        if list(state["names"]) != list(self.names) or int(state["width"]) != width:
            raise ValueError("the saved feature state is for other features")
        rows = {str(s): int(r) for s, r in state["rows"].items()}
        if sorted(rows.values()) != list(range(len(rows))):
            raise ValueError("the saved feature state has gaps in its rows")
        raw = zlib.decompress(base64.b64decode(state["states"]))
        values = np.frombuffer(raw, dtype="<f8").reshape(len(rows), width)
        self._states = np.zeros((max(8, 2 * len(rows)), width))
        self._states[: len(rows)] = values
        self._rows = rows

    def as_dict(self, values: np.ndarray) -> dict[str, float | None]:
        """A vector from ``update`` as ``{name: value or None}``."""
        return {n: (None if v != v else float(v)) for n, v in zip(self.names, values, strict=True)}

    def _row(self, symbol: str) -> int:
        row = self._rows.get(symbol)
        if row is None:
            row = self._rows[symbol] = len(self._rows)
            if row >= self._states.shape[0]:
                grown = np.zeros((2 * self._states.shape[0], self._states.shape[1]))
                grown[:row] = self._states[:row]
                self._states = grown
        return row

    def _rows_of(self, symbols: Any) -> np.ndarray:
        """State rows of the events' symbols (new symbols get fresh rows)."""
        names = symbols.to_list() if isinstance(symbols, pl.Series) else list(symbols)
        get = self._rows.get
        rows = [get(s) for s in names]
        if None in rows:
            rows = [self._row(str(s)) for s in names]
        return np.asarray(rows, dtype=np.int64)

    def _bad_event(self, symbol: str, error: Exception) -> ValueError:
        if isinstance(error, KeyError):
            return ValueError(f"event of {symbol} lacks {error.args[0]!r}")
        return ValueError(f"event of {symbol} has a non-numeric value among {self._columns}")

    def update(self, symbol: str, event: Mapping[str, Any]) -> np.ndarray:
        """Feed one event of ``symbol``; returns every feature's value as of it."""
        if self._equal_weighted:
            raise ValueError(
                "this pipeline has factor features, which need every symbol's bar of the same "
                "instant: use update_slice (or market='given' with market_return in events)"
            )
        row = self._row(symbol)
        x = self._io
        if self._getter is not None:
            try:
                values = self._getter(event)
                if self._n_columns == 1:
                    x[0] = values
                else:
                    x[: self._n_columns] = values
            except (KeyError, TypeError, ValueError) as error:
                raise self._bad_event(symbol, error) from None
        if self._clock is not None:
            context = self._clock.context(
                event_ns(event[self._session_ts]), event_ns(event[self._stamp])
            )
            for slot, index in self._context_slots:
                x[slot] = context[index]
        if self._market_slot >= 0:
            given = event.get(MARKET_RETURN)
            x[self._market_slot] = math.nan if given is None else float(given)
        kernels.step(self._program, self._states, row, x)
        return x[self._n_inputs :].copy()

    def update_slice(self, events: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """Feed the events of several symbols at one instant (the bars of an interval, as the
        bar builder publishes them) in one compiled call; returns each symbol's vector.

        With factor features the market return of the instant is the mean log return of these
        bars' symbols (those with a previous bar), as the batch computes it over the rows
        sharing a stamp, so the slice must hold every symbol's bar of the instant.
        """
        n = len(events)
        if n == 0:
            return {}
        symbols = list(events)
        evs = list(events.values())
        inputs = np.empty((n, self._n_inputs))
        if self._getter is not None:
            getter = self._getter
            try:
                values = [getter(e) for e in evs]
                if self._n_columns == 1:
                    inputs[:, 0] = values
                else:
                    inputs[:, : self._n_columns] = values
            except (KeyError, TypeError, ValueError) as error:
                raise self._bad_event("a slice", error) from None
        if self._clock is not None or self._equal_weighted:
            stamps = [e[self._stamp] for e in evs]
            one_instant = stamps.count(stamps[0]) == n
            if self._equal_weighted and not one_instant:
                raise ValueError("a slice holds the bars of one instant: their stamps differ")
            if self._clock is not None:
                sessions = (
                    stamps
                    if self._session_ts == self._stamp
                    else [e[self._session_ts] for e in evs]
                )
                if one_instant and sessions.count(sessions[0]) == n:
                    context = self._clock.context(event_ns(sessions[0]), event_ns(stamps[0]))
                    for slot, index in self._context_slots:
                        inputs[:, slot] = context[index]
                else:
                    contexts = np.array(
                        [
                            self._clock.context(event_ns(a), event_ns(b))
                            for a, b in zip(sessions, stamps, strict=True)
                        ]
                    )
                    for slot, index in self._context_slots:
                        inputs[:, slot] = contexts[:, index]
        rows = self._rows_of(symbols)
        outputs = np.empty((n, len(self.names)))
        if self._equal_weighted:
            bounds = np.array([0, n], dtype=np.int64)
            self._step_slices(rows, inputs, outputs, bounds)
        else:
            if self._market_slot >= 0:
                given = [e.get(MARKET_RETURN) for e in evs]
                inputs[:, self._market_slot] = [math.nan if g is None else g for g in given]
            kernels.step_many(self._program, self._states, rows, inputs, outputs)
        return dict(zip(symbols, outputs, strict=True))

    def _step_slices(
        self, rows: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, bounds: np.ndarray
    ) -> None:
        kernels.step_slices(
            self._program,
            self._states,
            rows,
            inputs,
            outputs,
            bounds,
            self._close_slot,
            self._market_slot,
            self._state_size,
        )

    def update_batch(self, events: pl.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """Feed many events at once, in arrival order (a feed message, an Arrow record batch
        as a polars frame, or a mapping of column arrays): exactly ``update`` on each event in
        turn, in one compiled pass; returns one row of values per event, in input order.

        With factor features on bars the events must come in whole slices, stamps in order:
        each run of equal stamps is one instant's cross-section.
        """
        columns, n = _columns_of(events)
        out = np.empty((n, len(self.names)))
        if n == 0:
            return out
        missing = [c for c in ("symbol", *self._columns, self._stamp) if c not in columns]
        if self._clock is not None and self._session_ts not in columns:
            missing.append(self._session_ts)
        if self._market_slot >= 0 and not self._equal_weighted and MARKET_RETURN not in columns:
            missing.append(MARKET_RETURN)
        if missing:
            raise ValueError(f"events lack column(s): {', '.join(missing)}")
        inputs = np.empty((n, self._n_inputs))
        for i, c in enumerate(self._columns):
            inputs[:, i] = _float_array(columns[c])
        stamp_ns = _ns_array(columns[self._stamp])
        one_instant = stamp_ns[0] == stamp_ns[-1] and stamp_ns.min() == stamp_ns.max()
        if self._clock is not None:
            session_ns = (
                stamp_ns
                if self._session_ts == self._stamp
                else _ns_array(columns[self._session_ts])
            )
            if one_instant and session_ns.min() == session_ns.max():  # a slice of bars
                context = self._clock.context(int(session_ns[0]), int(stamp_ns[0]))
                for slot, index in self._context_slots:
                    inputs[:, slot] = context[index]
            else:
                contexts = self._clock.contexts(session_ns, stamp_ns)
                for slot, index in self._context_slots:
                    inputs[:, slot] = contexts[:, index]
        symbols = columns["symbol"]
        rows = self._rows_of(symbols)
        if self._equal_weighted:
            if one_instant:
                bounds = np.array([0, n], dtype=np.int64)
            else:
                step = np.diff(stamp_ns)
                if (step < 0).any():
                    raise ValueError("bars of a batch must come in time order, slice after slice")
                bounds = np.concatenate([[0], np.flatnonzero(step) + 1, [n]]).astype(np.int64)
            for a, b in itertools.pairwise(bounds.tolist()):
                if len(set(rows[a:b].tolist())) != b - a:
                    raise ValueError("a slice holds one bar per symbol: a symbol repeats")
            self._step_slices(rows, inputs, out, bounds)
        else:
            if self._market_slot >= 0:
                inputs[:, self._market_slot] = _float_array(columns[MARKET_RETURN])
            kernels.step_many(self._program, self._states, rows, inputs, out)
        return out


def _columns_of(events: pl.DataFrame | Mapping[str, Any]) -> tuple[Mapping[str, Any], int]:
    if isinstance(events, pl.DataFrame):
        return {c: events.get_column(c) for c in events.columns}, events.height
    lengths = {len(v) for v in events.values()}
    if len(lengths) > 1:
        raise ValueError("event columns differ in length")
    return events, lengths.pop() if lengths else 0


def _ns_array(values: Any) -> np.ndarray:
    """UTC epoch nanoseconds of a column of time stamps (datetimes or integers)."""
    if isinstance(values, pl.Series):
        if isinstance(values.dtype, pl.Datetime):
            tz = values.dtype.time_zone
            if tz is not None and tz != "UTC":
                values = values.dt.convert_time_zone("UTC")
            return values.dt.epoch("ns").to_numpy()
        return values.cast(pl.Int64).to_numpy()
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[ns]").astype(np.int64)
    if array.dtype == object:
        return np.asarray([event_ns(v) for v in array], dtype=np.int64)
    return array.astype(np.int64)


def _float_array(values: Any) -> np.ndarray:
    """A column as float64, nulls (None) as NaN."""
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).fill_null(math.nan).to_numpy()
    array = np.asarray(values)
    if array.dtype == object:
        return np.asarray([math.nan if v is None else v for v in array], dtype=np.float64)
    return array.astype(np.float64, copy=False)


# -- default feature sets ---------------------------------------------------------------------


def bar_features() -> list[Feature]:
    """The default feature set over 1-minute (or any) bars."""
    return [
        LogReturn(1),
        LogReturn(5),
        LogReturn(15),
        LogReturn(60),
        CloseToCloseVol(20),
        ParkinsonVol(20),
        GarmanKlassVol(20),
        YangZhangVol(20),
        RSI(14),
        MACD(output="line"),
        MACD(output="signal"),
        MACD(output="histogram"),
        ATR(14),
        VwapDistance(),
        VolumeZScore(20),
        MinutesSinceOpen(),
        TimeOfDay("sin"),
        TimeOfDay("cos"),
        SessionPhaseCode(),
        MarketBeta(60),
        ResidualMomentum(20, 60),
        FracDiff(0.4, 1e-4),
    ]


def quote_features() -> list[Feature]:
    """The default feature set over L1 quotes."""
    return [
        RelativeSpread(),
        Microprice(relative=True),
        OrderFlowImbalance(1),
        OrderFlowImbalance(100),
        MinutesSinceOpen(),
        SessionPhaseCode(),
    ]


def trade_features() -> list[Feature]:
    """The default feature set over trades (ticks)."""
    return [
        LogReturn(1, "price"),
        LogReturn(50, "price"),
        TradeSignImbalance(50),
        TradeSignImbalance(50, sign="tick_rule"),
        VwapDistance(price="price", value_price="price", volume="size"),
        VolumeZScore(50, "size"),
        RSI(14, "price"),
        MinutesSinceOpen(),
        SessionPhaseCode(),
    ]
