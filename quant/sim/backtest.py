"""The event-driven backtest engine: a strategy trading bars from the lake through risk and costs.

``run_backtest(config, strategy, source)`` replays bars session by session, in time order across
symbols, through the same objects the live system uses: ``RiskEngine`` (pre-trade checks, guards,
kill switch), the ``BarFillModel`` (exchange entry checks, fills with a volume-participation cap),
the ``CostModel`` (slippage and BIST fees) and the ``Portfolio`` (cash, T+2 settlement, marks,
corporate actions). Everything is driven by a ``SimulatedClock`` set from the data, so a run is
deterministic: the same data, configuration and strategy give the same result, bit for bit.
This engine replays bars (``on_bar``); a day of trades and quotes, with ``on_trade`` and
``on_quote``, runs through ``quant.sim.tick.run_tick_day`` (the trade/quote fidelity level).

Streaming
---------
The lake is read a few days at a time (``chunk_days``), on a background thread while the
previous chunk is processed, and each chunk is cut into sessions (trading days). Only the
current chunk, the next one and per-symbol running state are in memory, so memory stays flat
however long the history; what grows with time is what the run produces (the equity marks, the
orders and fills, which are folded into compact Arrow columns after every session).

The order of events
-------------------
For each session (trading day ``D``):

1. **Session start** (the first order-entry time, 09:40 Istanbul on BIST): settlements due are
   retired, corporate actions with ex-date ``D`` are applied to the portfolio (the lake stores raw
   prices, so trading uses raw prices and the actions move positions and cash; the strategy gets
   ``on_corporate_action`` to rescale any price history it keeps) and every order still pending
   in that symbol is cancelled (exchanges purge orders on an ex-date); the daily price bands are
   set from the previous close (adjusted for the day's action); orders held since the previous
   session enter; then ``strategy.on_session_start``.
2. **Bars**, merged across symbols in order of their close time (then symbol). For each bar,
   the working orders of its symbol are offered to the fill model first: an order decided on
   bar ``t`` can only fill on a *later* bar (at its open, or through its range for a limit),
   never on the bar it was decided on, so there is no look-ahead. Then the strategy gets
   ``on_fill`` for each execution and ``on_bar`` for the bar, at the bar's close.
   Timed events (intraday equity marks every ``mark_interval_minutes``, orders entering at a
   later phase, halts starting or ending) scheduled at time ``X`` run before the first bar
   closing after ``X``.
3. **Session end** (the last trade time, 18:10 on BIST): DAY orders expire, the portfolio is
   marked at the closing prices, the guards see the equity, ``strategy.on_session_end`` runs
   (its orders are for the next session) and the session's orders are folded into the result
   with their TCA.

When orders may enter (``session_rules``)
-----------------------------------------
``exchange`` (the default, needs a calendar): the BIST phases of ``TradingCalendar``. An order
is entered at once in a phase that takes orders (opening auction, continuous trading, closing
auction, trades at the close: the exchange's own checks then apply, e.g. trades at the close
take limit orders at the closing price only). An order sent while the exchange computes an
auction price or publishes the closing limits is held by the router and entered when the next
phase starts (a market order cannot be entered into trades at the close and is refused
OUTSIDE_SESSION). An order sent after the session's end is an off-session order (BIST brokers'
*seans dışı emir*, LEAN's market-on-open): it enters at the next session's opening auction;
IOC and FOK orders are never held. This is why a strategy on daily bars, deciding at the close,
trades at the next open.

``bars``: the bar sequence is the market, as in backtrader and vectorbt. An order sent on a
bar starts working on the next bar of its symbol, whatever phase or session that bar is in; a
DAY order expires at the end of the session in which it met its first bar. Orders sent at or
after the session's end enter at the next session. Use it to compare with those libraries or
for data that is not from BIST (``calendar=None``).

Bad orders never raise: structure, unknown symbol, halts, tick grid, band, limits and funds
are refused by ``RiskEngine.check`` with a ``RejectCode``, phase and session problems by the
router or the exchange checks, and every refusal is an order row with its code and reason.
A strategy that raises stops the run: ``BacktestResult.error`` names the strategy, the
callback, the symbol and the time, and everything up to that event is kept.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from quant.clock import SimulatedClock
from quant.data.corporate_actions import adjustment_factors, trading_day
from quant.data.lake import Lake
from quant.data.schema import DataKind, conform
from quant.data.schema import polars_schema as _polars_schema
from quant.execution.orders import (
    ExecutionReport,
    IllegalTransition,
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
)
from quant.market.bands import Band, PriceBand
from quant.market.calendar import ISTANBUL, SessionPhase, TradingCalendar
from quant.market.instrument import Instrument
from quant.market.ticks import BIST_SHARE_TICKS, TickSizeTable
from quant.metrics.performance import summary_stats
from quant.metrics.tca import TCA_COLUMNS, order_tca, tca_by_strategy
from quant.risk.checks import OpenQuantity, RiskContext
from quant.risk.engine import RiskEngine
from quant.risk.guards import DailyLossLimit, DrawdownGuard, PortfolioGuard
from quant.risk.limits import RiskLimits
from quant.sim.costs import (
    CostModel,
    MarketConditions,
    NoSlippage,
    ZeroFees,
    bist_default_costs,
    no_costs,
)
from quant.sim.fills import BarFillModel, BarView
from quant.sim.matching import ENTRY_PHASES, exchange_check
from quant.sim.portfolio import Portfolio
from quant.sim.result import (
    DAILY_SCHEMA,
    EQUITY_SCHEMA,
    FILL_SCHEMA,
    ORDER_SCHEMA,
    ROUND_TRIP_SCHEMA,
    TS,
    BacktestResult,
    Deferred,
    RoundTripTracker,
    empty,
    frame_from_rows,
)
from quant.sim.strategy import (
    Bar,
    CorporateActionEvent,
    Strategy,
    StrategyContext,
    TargetPositionStrategy,
)

polars_schema = functools.cache(_polars_schema)
"""``quant.data.schema.polars_schema``, made once per kind (a few hundred microseconds each:
it goes through an Arrow table), for the empty frames every run starts with."""

_NS = 1_000_000_000
_MINUTE_NS = 60 * _NS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INF = float("inf")
_HOLD_TARGET = {
    SessionPhase.OPENING_UNCROSS: SessionPhase.CONTINUOUS,
    SessionPhase.CLOSING_PRICE_PUBLICATION: SessionPhase.CLOSING_AUCTION,
    SessionPhase.CLOSING_UNCROSS: SessionPhase.TRADES_AT_CLOSE,
}
"""Phases that take no orders, and the phase a held order enters at."""
_NO_MARKET_PHASES = frozenset({SessionPhase.CLOSING_UNCROSS, SessionPhase.TRADES_AT_CLOSE})
"""A market order sent in these phases can only be refused (trades at the close take limits)."""


class SessionRules(StrEnum):
    EXCHANGE = "exchange"
    BARS = "bars"


class BacktestConfig(BaseModel):
    """Everything that shapes a backtest besides the data and the strategy (JSON-serialisable).

    ``start`` is the first session day (inclusive) and ``end`` the day the run stops before
    (exclusive), as for the lake; None means the first / last day stored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: date | None = None
    end: date | None = None
    symbols: list[str] | None = None
    """None: every symbol with bars in the lake."""
    initial_cash: float = Field(default=1_000_000.0, gt=0)
    costs: str = Field(default="bist", pattern="^(bist|none)$")
    """``bist``: BIST fees (2 bp commission + exchange fee, each with 5% BSMV), half a spread
    (5 bp without quotes) and square-root impact; ``none``: no fees, no slippage."""
    commission_bps: float = Field(default=2.0, ge=0)
    session_rules: SessionRules = SessionRules.EXCHANGE
    calendar: str | None = "XIST"
    """``exchange_calendars`` name for sessions, phases and settlement days; None for data from
    other markets (sessions then come from the data, settlement counts weekdays)."""
    max_participation: float = Field(default=0.1, gt=0, le=1)
    """Our fills per bar and side are capped at this fraction of the bar's volume."""
    fill_on_touch: bool = False
    """Fill limit orders when the bar touches the limit (default: it must trade through it)."""
    settlement_days: int = Field(default=2, ge=0)
    use_unsettled_proceeds: bool = True
    """Count unsettled sale proceeds in buying power (BIST brokers' T+2 netting)."""
    dividend_withholding: float = Field(default=0.15, ge=0, lt=1)
    risk: RiskLimits = Field(default_factory=RiskLimits)
    drawdown_reduce_at: float | None = Field(default=None, gt=0, le=1)
    drawdown_halt_at: float | None = Field(default=None, gt=0, le=1)
    daily_loss_pct: float | None = Field(default=None, gt=0, le=1)
    mark_interval_minutes: int | None = Field(default=30, gt=0)
    """Intraday equity marks (they also feed the guards); None: at the close only."""
    stats_lookback: int = Field(default=20, ge=2)
    """Sessions of history for the average daily volume and daily volatility that the impact
    model, the fat-finger check and TCA use."""
    default_volatility: float = Field(default=0.02, gt=0)
    """Daily volatility assumed until ``stats_lookback`` allows an estimate (3 sessions)."""
    warmup_days: int = Field(default=45, ge=0)
    """Calendar days before ``start`` read (not traded) to seed closes, bands, ADV and
    volatility."""
    tick_size: float | None = Field(default=None, gt=0)
    """None: the BIST share tick table; a number: one fixed tick (data from other markets)."""
    price_bands: bool = True
    """Apply BIST's daily price bands (±10% of the previous close)."""
    tca: bool = True
    chunk_days: int = Field(default=7, ge=1)
    """Calendar days of intraday bars read at a time (daily bars are read a year at a time)."""
    name: str | None = None


@dataclass(frozen=True, slots=True)
class HaltWindow:
    """A trading halt: one symbol (or the whole market when ``symbol`` is None) from
    ``start_ns`` (inclusive) to ``end_ns`` (exclusive)."""

    symbol: str | None
    start_ns: int
    end_ns: int


class BarSource(Protocol):
    """Where the bars come from: the lake, or a frame in memory."""

    symbols: list[str]
    synthetic: bool

    def chunks(self) -> Iterator[pl.DataFrame]:
        """Raw BARS frames with a ``day`` column (trading day), in time order; each session
        whole inside one chunk."""
        ...

    def warmup(self) -> pl.DataFrame:
        """Per symbol and day before the start: ``symbol, day, volume, close`` (may be empty)."""
        ...

    def corporate_actions(self) -> pl.DataFrame:
        """Actions of the symbols (CORPORATE_ACTIONS schema), any dates."""
        ...


def _conform_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """``conform(bars, BARS)``; a frame already in the schema (columns, order and types) is
    taken as it is, which is what ``conform`` would return (its select costs a millisecond)."""
    schema = polars_schema(DataKind.BARS)
    if bars.schema == schema:
        return bars
    return conform(bars, DataKind.BARS)


def _with_day(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(trading_day(frame.columns).alias("day"))


def _is_synthetic(symbols: Sequence[str]) -> bool:
    """The synthetic market names its symbols SYNnn (``quant.data.synthetic``)."""
    return bool(symbols) and all(s.startswith("SYN") for s in symbols)


class LakeBarSource:
    """Bars of ``symbols`` from a ``Lake``, days ``[start, end)``, streamed in chunks.

    Chunks are read on a background thread one step ahead of the engine (Parquet decoding
    releases the GIL), so reading overlaps simulation on a second core.
    """

    def __init__(
        self,
        lake: Lake,
        symbols: Sequence[str] | None = None,
        start: date | None = None,
        end: date | None = None,
        chunk_days: int = 7,
        warmup_days: int = 45,
        prefetch: bool = True,
    ) -> None:
        self.lake = lake
        # Validates symbols and range up front: unknown symbols and empty ranges fail here,
        # with the lake's one-line messages.
        if start is not None and end is not None and start >= end:
            raise ValueError(f"empty date range: --from {start} is not before --to {end}")
        try:
            probe = lake.scan(DataKind.BARS, symbols, _scan_lo(start), _scan_hi(end))
        except ValueError as exc:
            if not str(exc).startswith("no bars data"):
                raise
            names = ", ".join(symbols) if symbols is not None else "any symbol"
            raise ValueError(
                f"no bars in the lake for {names} from {start or 'the beginning'} to "
                f"{end or 'the end'} (exclusive)"
            ) from None
        self.symbols = sorted(symbols) if symbols is not None else lake.symbols(DataKind.BARS)
        if start is None or end is None:
            bounds = probe.select(
                pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi")
            ).collect()
            lo, hi = bounds.row(0)
            if lo is None:
                raise ValueError("no bars in the lake for the requested symbols and range")
            start = start or lo.date()
            end = end or hi.date() + timedelta(days=2)
        self.start, self.end = start, end
        first = probe.select("ts", "ts_end").head(1).collect()
        if first.height == 0:
            raise ValueError(
                f"no bars for {', '.join(self.symbols)} between {start} and {end} (exclusive)"
            )
        self.daily = bool((first["ts_end"][0] - first["ts"][0]) >= timedelta(hours=12))
        self.chunk = timedelta(days=366 if self.daily else chunk_days)
        self.warmup_days = warmup_days
        self.prefetch = prefetch
        self.synthetic = _is_synthetic(self.symbols)

    def _files(self, lo: date, hi: date) -> list[Path]:
        """Partition files that can hold trading days ``[lo, hi)`` (public layout of the lake:
        one file per symbol and day, or per symbol and year for daily bars). Listing them by
        name costs a stat per file, where ``Lake.scan`` lists every partition of every symbol."""
        kind = DataKind.BARS
        files = []
        if self.daily:
            years = range((lo - timedelta(days=1)).year, hi.year + 1)
            for symbol in self.symbols:
                for year in years:
                    path = self.lake.partition_path(kind, symbol, year=year)
                    if path.is_file():
                        files.append(path)
            return files
        days = [lo - timedelta(days=1) + timedelta(days=k) for k in range((hi - lo).days + 1)]
        for symbol in self.symbols:
            for day in days:
                path = self.lake.partition_path(kind, symbol, day)
                if path.is_file():
                    files.append(path)
        return files

    def _read(self, lo: date, hi: date) -> pl.DataFrame:
        names = polars_schema(DataKind.BARS).names()
        files = self._files(lo, hi)
        if not files:  # a holiday stretch
            return pl.DataFrame(schema=polars_schema(DataKind.BARS)).with_columns(
                pl.lit(None, pl.Date).alias("day")
            )
        frame = pl.scan_parquet(files, hive_partitioning=False).select(names)
        frame = frame.with_columns(trading_day(names).alias("day"))
        return frame.filter((pl.col("day") >= lo) & (pl.col("day") < hi)).collect()

    def chunks(self) -> Iterator[pl.DataFrame]:
        windows = []
        lo = self.start
        while lo < self.end:
            hi = min(lo + self.chunk, self.end)
            windows.append((lo, hi))
            lo = hi
        if not self.prefetch or len(windows) < 2:
            for lo, hi in windows:
                frame = self._read(lo, hi)
                if frame.height:
                    yield frame
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-prefetch") as pool:
            pending: Future[pl.DataFrame] = pool.submit(self._read, *windows[0])
            for k in range(len(windows)):
                frame = pending.result()
                if k + 1 < len(windows):
                    pending = pool.submit(self._read, *windows[k + 1])
                if frame.height:
                    yield frame

    def warmup(self) -> pl.DataFrame:
        schema = {"symbol": pl.String, "day": pl.Date, "volume": pl.Int64, "close": pl.Float64}
        if self.warmup_days <= 0:
            return pl.DataFrame(schema=schema)
        lo = self.start - timedelta(days=self.warmup_days)
        frame = self._read(lo, self.start)
        if frame.height == 0:
            return pl.DataFrame(schema=schema)
        return _daily_aggregates(frame).select(list(schema)).cast(schema)

    def corporate_actions(self) -> pl.DataFrame:
        return self.lake.read_corporate_actions(self.symbols)


def _scan_lo(day: date | None) -> date | None:
    # a daily bar stamped at local midnight starts on the UTC day before its trading day
    return None if day is None else day - timedelta(days=1)


def _scan_hi(day: date | None) -> date | None:
    return None if day is None else day + timedelta(days=1)


class FrameBarSource:
    """Bars held in memory (tests, benchmarks, notebooks): one BARS frame, any order."""

    def __init__(
        self,
        bars: pl.DataFrame,
        corporate_actions: pl.DataFrame | None = None,
        start: date | None = None,
        end: date | None = None,
        chunk_sessions: int | None = None,
        synthetic: bool | None = None,
    ) -> None:
        frame = _with_day(_conform_bars(bars))
        if start is not None and end is not None and start >= end:
            raise ValueError(f"empty date range: {start} is not before {end}")
        self._warm = frame.filter(pl.col("day") < start) if start is not None else frame.clear()
        if start is not None:
            frame = frame.filter(pl.col("day") >= start)
        if end is not None:
            frame = frame.filter(pl.col("day") < end)
        if frame.height == 0:
            raise ValueError("no bars in the requested range")
        # day-major, then symbol and time: a chunk is a contiguous slice (no filter per chunk),
        # and within a day the rows are in the symbol order ``_sessions`` relies on
        symbol = frame["symbol"]
        ordered = frame["day"].is_sorted() and symbol.is_sorted() and frame["ts"].is_sorted()
        # (each column non-decreasing is (day, symbol, ts) in order: nothing to sort)
        self.frame = frame if ordered else frame.sort("day", "symbol", "ts")
        symbol = symbol.set_sorted() if ordered else self.frame["symbol"]
        self.symbols = sorted(symbol.unique().to_list())
        self.synthetic = _is_synthetic(self.symbols) if synthetic is None else synthetic
        if chunk_sessions is None:  # as LakeBarSource: a year of daily bars, a week of intraday
            first = self.frame.select("ts", "ts_end").row(0)
            daily = first[1] - first[0] >= timedelta(hours=12)
            chunk_sessions = 250 if daily else 5
        self.chunk_sessions = chunk_sessions
        self.actions = (
            corporate_actions
            if corporate_actions is not None
            else pl.DataFrame(schema=polars_schema(DataKind.CORPORATE_ACTIONS))
        )

    def chunks(self) -> Iterator[pl.DataFrame]:
        # rows per day, days in order
        lengths = self.frame["day"].rle().struct.field("len").to_list()
        offset = 0
        for k in range(0, len(lengths), self.chunk_sessions):
            n = sum(lengths[k : k + self.chunk_sessions])
            yield self.frame.slice(offset, n)
            offset += n

    def warmup(self) -> pl.DataFrame:
        schema = {"symbol": pl.String, "day": pl.Date, "volume": pl.Int64, "close": pl.Float64}
        if self._warm.height == 0:
            return pl.DataFrame(schema=schema)
        return _daily_aggregates(self._warm).select(list(schema)).cast(schema)

    def corporate_actions(self) -> pl.DataFrame:
        return self.actions


def _daily_aggregates(frame: pl.DataFrame) -> pl.DataFrame:
    """Per symbol and trading day: total volume and the last close."""
    return (
        frame.sort("ts_end")
        .group_by("day", "symbol", maintain_order=True)
        .agg(pl.col("volume").sum(), pl.col("close").last())
        .sort("day", "symbol")
    )


# ------------------------------------------------------------------------------ session data


class _Chunk:
    """A chunk of bars in processing order (by day, close time, then the source's symbol
    order), as plain Python lists made once per chunk: a column to Python objects costs the
    same for one row as for a thousand plus a fixed fee, which daily bars would pay per session.

    Sessions are index ranges into these lists. ``cumv`` (the symbol's volume so far in the
    session, the bar included) is made only when asked for (slippage reads it).
    """

    __slots__ = (
        "_agg",
        "_agg_starts",
        "_day_volumes",
        "_names",
        "close",
        "cumv",
        "frame",
        "high",
        "low",
        "open",
        "symbol",
        "trade_count",
        "ts",
        "ts_end",
        "volume",
        "vwap",
    )

    def __init__(
        self,
        chunk: pl.DataFrame,
        names: Mapping[str, str],
        as_lists: bool = True,
        cumv: bool = True,
        presorted: bool = False,
    ) -> None:
        frame = chunk
        if not presorted and not (frame["day"].is_sorted() and frame["ts_end"].is_sorted()):
            # (day, close time) non-decreasing already is what the stable sort would give
            frame = frame.sort("day", "ts_end", maintain_order=True)
        if cumv and "_cumv" not in frame.columns:
            frame = frame.with_columns(
                pl.col("volume").cum_sum().over("day", "symbol").alias("_cumv")
            )
        self.frame = frame
        self._names = names
        self._day_volumes: list[dict[str, int]] | None = None
        self._agg: pl.DataFrame | None = None
        self._agg_starts: list[int] | None = None
        # one interned str object per symbol: dictionary lookups then hash once
        symbols = frame.get_column("symbol")
        if frame.height and symbols.n_unique() == 1:  # one symbol: no list of strings to read
            self.symbol: list[str] = [names[symbols[0]]] * frame.height
        else:
            self.symbol = list(map(names.__getitem__, symbols.to_list()))
        self.close: list[float] = frame["close"].to_list()
        self.volume: list[int] = frame["volume"].to_list()
        self.cumv: list[int] | None = frame["_cumv"].to_list() if "_cumv" in frame.columns else None
        self.ts: list[int] = _epoch_ns(frame["ts"])
        self.ts_end: list[int] = _epoch_ns(frame["ts_end"])
        empty: list = []
        self.open = frame["open"].to_list() if as_lists else empty
        self.high = frame["high"].to_list() if as_lists else empty
        self.low = frame["low"].to_list() if as_lists else empty
        self.vwap = frame["vwap"].to_list() if as_lists else empty
        self.trade_count = frame["trade_count"].to_list() if as_lists else empty

    def sessions(self) -> Iterator[_Session]:
        """The chunk's sessions, in order."""
        n = self.frame.height
        if n == 0:
            return
        day_num = self.frame["day"].cast(pl.Int32).to_numpy()
        cut_at = np.flatnonzero(day_num[1:] != day_num[:-1]) + 1
        cuts = cut_at.tolist()
        starts = [0, *cuts]
        stops = [*cuts, n]
        nums = [int(day_num[0]), *day_num[cut_at].tolist()]  # each session's day number
        day_of = _DAYS.get
        ts, te = self.ts, self.ts_end
        if len(starts) == n:  # one bar a session (daily bars)
            for k, num in enumerate(nums):
                day = day_of(num)
                if day is None:
                    day = _day(num)
                yield _Session(day, self, k, k, k + 1, ts[k], te[k])
            return
        for k, lo in enumerate(starts):
            hi = stops[k]
            num = nums[k]
            day = day_of(num)
            if day is None:
                day = _day(num)
            # the first bar's open: the earliest open (bars are in order of their close)
            yield _Session(
                day, self, k, lo, hi, ts[lo] if hi - lo == 1 else min(ts[lo:hi]), te[hi - 1]
            )

    def day_volumes(self, k: int) -> dict[str, int]:
        """Session ``k``'s volume per symbol (symbols in order of first bar), from one
        aggregation of the whole chunk."""
        if self._day_volumes is None:
            agg = self.frame.group_by("day", "symbol", maintain_order=True).agg(
                pl.col("volume").sum()
            )
            lengths = agg["day"].rle().struct.field("len").to_list()
            names = [self._names[x] for x in agg["symbol"].to_list()]
            volumes = agg["volume"].to_list()
            out, at = [], 0
            for n in lengths:
                out.append(dict(zip(names[at : at + n], volumes[at : at + n], strict=True)))
                at += n
            self._day_volumes = out
        return self._day_volumes[k]

    def last_bars(self, k: int) -> pl.DataFrame:
        """Session ``k``'s last bar of each symbol (volume: the symbol's whole day)."""
        if self._agg is None:
            self._agg = self.frame.group_by("day", "symbol", maintain_order=True).agg(
                pl.col("volume").sum().alias("_day_volume"), pl.all().exclude("volume").last()
            )
            lengths = self._agg["day"].rle().struct.field("len").to_list()
            self._agg_starts = [0, *itertools.accumulate(lengths)]
        starts = self._agg_starts
        assert starts is not None
        return self._agg.slice(starts[k], starts[k + 1] - starts[k])


class _Session:
    """One trading day's bars: rows ``[lo, hi)`` of a ``_Chunk`` (in processing order).

    ``volumes``, ``closes``, ``frame`` and ``last_bars`` are made when first read: most
    sessions of a long run nothing reads them.
    """

    __slots__ = (
        "_closes",
        "_k",
        "_last_bars",
        "_part",
        "_volumes",
        "chunk",
        "day",
        "first_ts",
        "hi",
        "last_ts_end",
        "lo",
        "n",
        "t0",
        "t_end",
        "windows",
    )

    _closes: dict[str, float]
    _volumes: dict[str, int]
    _part: pl.DataFrame
    _last_bars: pl.DataFrame
    t0: int
    t_end: int

    def __init__(
        self, day: date, chunk: _Chunk, k: int, lo: int, hi: int, first_ts: int, last_ts_end: int
    ) -> None:
        self.day = day
        self.chunk = chunk
        self._k = k
        self.lo = lo
        self.hi = hi
        self.n = hi - lo
        self.first_ts = first_ts
        """Open of the session's first bar and close of its last one (UTC ns)."""
        self.last_ts_end = last_ts_end
        self.windows: list[tuple[int, int, SessionPhase]] | None = None
        """Phase windows ``(start, end, phase)`` in UTC ns; None in bars mode."""
        # ``t0`` / ``t_end`` (first order-entry time, last trade time) are set when the
        # session opens; the lazily made fields below stay unset until first read (a daily
        # run makes a session per bar)

    @property
    def closes(self) -> dict[str, float]:
        """Each symbol's last close of the session (symbols in order of first bar)."""
        try:
            return self._closes
        except AttributeError:
            pass
        c, lo, hi = self.chunk, self.lo, self.hi
        self._closes = dict(zip(c.symbol[lo:hi], c.close[lo:hi], strict=True))
        return self._closes

    @property
    def volumes(self) -> dict[str, int]:
        """Each symbol's volume over the session."""
        try:
            return self._volumes
        except AttributeError:
            pass
        c, lo, hi = self.chunk, self.lo, self.hi
        if c.cumv is not None:
            self._volumes = dict(zip(c.symbol[lo:hi], c.cumv[lo:hi], strict=True))
        elif hi - lo > _LOOP_BARS:
            self._volumes = c.day_volumes(self._k)
        else:
            out: dict[str, int] = {}
            get = out.get
            for s, v in zip(c.symbol[lo:hi], c.volume[lo:hi], strict=True):
                out[s] = get(s, 0) + v
            self._volumes = out
        return self._volumes

    @property
    def frame(self) -> pl.DataFrame:
        """The session's rows of the chunk (processing order)."""
        try:
            return self._part
        except AttributeError:
            pass
        self._part = self.chunk.frame.slice(self.lo, self.n)
        return self._part

    @property
    def last_bars(self) -> pl.DataFrame:
        """The session's last bar of each symbol (for the arrival price of the next orders)."""
        try:
            return self._last_bars
        except AttributeError:
            pass
        self._last_bars = self.chunk.last_bars(self._k)
        return self._last_bars


_BAR_COLUMNS = tuple(polars_schema(DataKind.BARS).names())
_LOOP_BARS = 64
"""Sessions with more bars than this sum their volumes in one aggregation per chunk."""
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


_DAYS: dict[int, date] = {}
"""Session days by day number (days since 1970-01-01), made once per process."""


def _day(num: int) -> date:
    day = _DAYS[num] = date.fromordinal(_EPOCH_ORDINAL + num)
    return day


def _epoch_ns(column: pl.Series) -> list[int]:
    """A datetime column as UTC-ns integers (through numpy for nanosecond columns: polars'
    ``dt.epoch`` has a fixed cost of tens of microseconds, more than a daily session)."""
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_unit == "ns" and not column.has_nulls():
        return column.to_numpy().view(np.int64).tolist()
    return column.dt.epoch("ns").to_list()


def _sessions(
    chunk: pl.DataFrame, names: dict[str, str], as_lists: bool = True, presorted: bool = False
) -> Iterator[_Session]:
    """Cut a chunk into sessions sorted by close time, then symbol.

    ``as_lists=False`` leaves the per-bar lists empty except symbol, times, close and volume
    (the fast path reads the frame itself and touches only a few bars).

    The sort is stable on (day, close time): sources deliver rows symbol by symbol in symbol
    order, so bars closing together stay in symbol order without sorting strings.
    """
    return _Chunk(chunk, names, as_lists=as_lists, presorted=presorted).sessions()


def _ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """A calendar session in UTC ns: first order-entry time, last trade time, phase windows."""

    first_order_ns: int
    last_trade_ns: int
    windows: tuple[tuple[int, int, SessionPhase], ...]


_SESSION_TIMES: dict[tuple[Any, ...], dict[date, SessionTimes | None]] = {}
_SESSION_TIMES_MAX = 1 << 16
_MISSING: Any = object()


def session_times_cache(calendar: TradingCalendar) -> dict[date, SessionTimes | None]:
    """The day -> ``SessionTimes`` cache of calendars like ``calendar`` (same exchange
    calendar and timetables): shared by runs, since a sweep or a benchmark asks for the same
    days again and again."""
    key = (calendar.calendar_name, calendar.timetables)
    cache = _SESSION_TIMES.get(key)
    if cache is None:
        cache = _SESSION_TIMES[key] = {}
    return cache


def session_times(
    calendar: TradingCalendar, day: date, cache: dict[date, SessionTimes | None] | None = None
) -> SessionTimes | None:
    """``calendar.session(day)`` in UTC ns, None when the exchange is closed (or the calendar
    does not cover ``day``), through ``cache`` (default: ``session_times_cache(calendar)``)."""
    if cache is None:
        cache = session_times_cache(calendar)
    hit = cache.get(day, _MISSING)
    if hit is not _MISSING:
        return hit
    try:
        info = calendar.session(day)
    except ValueError:
        info = None
    out = None
    if info is not None:
        out = SessionTimes(
            _ns(info.first_order_time),
            _ns(info.last_trade_time),
            tuple(
                (
                    _ns(datetime.combine(day, w.start, ISTANBUL)),
                    _ns(datetime.combine(day, w.end, ISTANBUL)),
                    w.phase,
                )
                for w in info.windows
            ),
        )
    if len(cache) >= _SESSION_TIMES_MAX:
        cache.clear()
    cache[day] = out
    return out


# ------------------------------------------------------------------------------ market stats


class DailyStats:
    """Per symbol: average daily volume and daily volatility from the last ``lookback``
    completed sessions (never the current one: no look-ahead). Corporate actions rescale the
    stored history so returns across an ex-date are not distorted.

    Sessions handed over with ``defer`` are folded in only when something reads the stats
    (or rescales them): many runs never read them, and a fold needs only each symbol's last
    ``lookback + 1`` sessions, however many are pending. The result is the one a fold session
    by session gives.
    """

    def __init__(self, lookback: int = 20, universe: int = 0) -> None:
        self.lookback = lookback
        self.universe = universe
        """How many symbols there can be: a fold stops once that many have a full history."""
        self._volumes: dict[str, deque[float]] = {}
        self._closes: dict[str, deque[float]] = {}
        self._pending: list[Any] = []
        self._pending_chunk: Any = _MISSING
        """The chunk of the pending sessions (``_MISSING``: none yet)."""

    def defer(self, session: Any) -> None:
        """A completed session (with ``volumes`` and ``closes`` mappings), folded when needed.
        Sessions of an earlier chunk are folded first, so no more than two chunks are held."""
        chunk = getattr(session, "chunk", None)
        if chunk is not self._pending_chunk:
            if self._pending:
                self._fold()
            self._pending_chunk = chunk
        self._pending.append(session)

    def _fold(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        need_v, need_c = self.lookback, self.lookback + 1
        vols: dict[str, list[float]] = {}
        closes: dict[str, list[float]] = {}
        full = 0
        for s in reversed(pending):
            if type(s) is _Session and s.n == 1:
                # one bar (daily data): its volume and close, without the mappings
                ch, at = s.chunk, s.lo
                symbol = ch.symbol[at]
                cumv = ch.cumv
                volumes: Any = ((symbol, cumv[at] if cumv is not None else ch.volume[at]),)
                last_closes: Any = ((symbol, ch.close[at]),)
            else:
                volumes, last_closes = s.volumes.items(), s.closes.items()
            for symbol, v in volumes:
                got = vols.get(symbol)
                if got is None:
                    got = vols[symbol] = []
                if len(got) < need_v:
                    got.append(float(v))
            for symbol, c in last_closes:
                got = closes.get(symbol)
                if got is None:
                    got = closes[symbol] = []
                if len(got) < need_c:
                    got.append(float(c))
                    if len(got) == need_c:
                        full += 1
            if full == len(closes) and full >= self.universe:
                break  # every symbol has all the history it keeps: older sessions drop out
        for symbol in sorted(vols):
            dq = self._volumes.get(symbol)
            if dq is None:
                dq = self._volumes[symbol] = deque(maxlen=self.lookback)
            dq.extend(reversed(vols[symbol]))
        for symbol in sorted(closes):
            dq = self._closes.get(symbol)
            if dq is None:
                dq = self._closes[symbol] = deque(maxlen=self.lookback + 1)
            dq.extend(reversed(closes[symbol]))

    def end_session(self, volumes: Mapping[str, int], closes: Mapping[str, float]) -> None:
        if self._pending:
            self._fold()
        for symbol in sorted(volumes):
            dq = self._volumes.get(symbol)
            if dq is None:
                dq = self._volumes[symbol] = deque(maxlen=self.lookback)
            dq.append(float(volumes[symbol]))
        for symbol in sorted(closes):
            dq = self._closes.get(symbol)
            if dq is None:
                dq = self._closes[symbol] = deque(maxlen=self.lookback + 1)
            dq.append(float(closes[symbol]))

    def on_action(self, symbol: str, price_factor: float, share_factor: float) -> None:
        if self._pending:
            self._fold()
        if math.isfinite(price_factor) and symbol in self._closes:
            dq = self._closes[symbol]
            self._closes[symbol] = deque((c * price_factor for c in dq), maxlen=dq.maxlen)
        if share_factor != 1.0 and symbol in self._volumes:
            dq = self._volumes[symbol]
            self._volumes[symbol] = deque((v * share_factor for v in dq), maxlen=dq.maxlen)

    def adv(self, symbol: str) -> float | None:
        if self._pending:
            self._fold()
        dq = self._volumes.get(symbol)
        return sum(dq) / len(dq) if dq else None

    def volatility(self, symbol: str) -> float | None:
        """Sample standard deviation of daily simple returns (needs 2 returns)."""
        if self._pending:
            self._fold()
        dq = self._closes.get(symbol)
        if dq is None or len(dq) < 3:
            return None
        closes = list(dq)
        rets = [b / a - 1.0 for a, b in itertools.pairwise(closes) if a > 0]
        if len(rets) < 2:
            return None
        mean = sum(rets) / len(rets)
        return math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))


class SessionADV(Mapping[str, float]):
    """Average daily volume per symbol as of the session's start, computed when first read
    (the fat-finger check, impact and TCA read it; most sessions nothing does). Symbols
    without history are absent. ``freeze`` computes every symbol, so the values of the session
    that is ending survive the stats moving on; ``reset`` opens the next session."""

    __slots__ = ("_cache", "_complete", "_open", "_stats", "_symbols")

    def __init__(self, stats: DailyStats, symbols: Mapping[str, Any]) -> None:
        self._stats = stats
        self._symbols = symbols
        self._cache: dict[str, float | None] = {}
        self._open = False
        self._complete = False

    def reset(self) -> None:
        self._cache.clear()
        self._open = True
        self._complete = False

    def freeze(self) -> None:
        if self._open and not self._complete:
            for symbol in self._symbols:
                self._value(symbol)
            self._complete = True

    def _value(self, symbol: str) -> float | None:
        try:
            return self._cache[symbol]
        except KeyError:
            pass
        if not self._open or symbol not in self._symbols:
            return None
        if self._complete:
            return None
        v = self._cache[symbol] = self._stats.adv(symbol)
        return v

    def __getitem__(self, symbol: str) -> float:
        v = self._value(symbol)
        if v is None:
            raise KeyError(symbol)
        return v

    def get(self, symbol: str, default: Any = None) -> Any:  # type: ignore[override]
        v = self._value(symbol)
        return default if v is None else v

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self._value(symbol) is not None

    def __iter__(self) -> Iterator[str]:
        if not self._open:
            return iter(())
        return iter([s for s in self._symbols if self._value(s) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class SessionVolatility(Mapping[str, float]):
    """Daily volatility per symbol as of the session's start (``default`` until ``stats`` has
    an estimate), computed when first read: most sessions nothing reads it (it prices
    impact on fills and TCA), and an estimate per symbol per session cost more than a daily
    bar. Empty until the first ``reset``; ``reset`` opens the next session."""

    __slots__ = ("_cache", "_default", "_open", "_stats", "_symbols")

    def __init__(self, stats: DailyStats, symbols: Mapping[str, Any], default: float) -> None:
        self._stats = stats
        self._symbols = symbols
        self._default = default
        self._cache: dict[str, float] = {}
        self._open = False

    def reset(self) -> None:
        """A new session: forget the estimates (the stats have moved on)."""
        self._cache.clear()
        self._open = True

    def __getitem__(self, symbol: str) -> float:
        v = self._cache.get(symbol)
        if v is None:
            if not self._open or symbol not in self._symbols:
                raise KeyError(symbol)
            estimate = self._stats.volatility(symbol)
            v = self._cache[symbol] = estimate if estimate is not None else self._default
        return v

    def __iter__(self) -> Iterator[str]:
        return iter(self._symbols if self._open else ())

    def __len__(self) -> int:
        return len(self._symbols) if self._open else 0


_FLUSH_ROWS = 8192
"""Order and fill rows kept as tuples before they are folded into a frame: a frame per session
cost more than a daily session, and a thousand tiny frames hold far more memory than rows."""
_COMPACT_FRAMES = 64
"""Per-session TCA frames concatenated into one every this many."""


# ------------------------------------------------------------------------------ the engine


class _StrategyFailure(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(order=True, slots=True)
class _Timer:
    ts: int
    seq: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


@dataclass(slots=True)
class _Book:
    """The engine's records of one order."""

    state: OrderState
    seq: int
    value: float = 0.0
    """Sum of fill price x quantity (for the order-level fee)."""
    fees: float = 0.0
    """Fees charged so far."""
    met_bar: bool = False
    """It has been shown at least one bar (bars mode: it expires at this session's end)."""


class BacktestEngine:
    """One backtest run: a strategy, a configuration and a bar source.

    ``run()`` replays every bar (the event-driven path). The fast path
    (``quant.sim.fast``) drives the same engine through its session and order methods but
    visits only the bars where something can happen.
    """

    def __init__(
        self,
        config: BacktestConfig,
        strategy: Strategy,
        source: BarSource,
        *,
        instruments: Iterable[Instrument] | None = None,
        halts: Iterable[HaltWindow] = (),
        progress: Callable[[date], None] | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        """Called with each session day once it is closed (for progress bars)."""
        self.strategy = strategy
        self.source = source
        rules = SessionRules(config.session_rules)
        self.calendar = TradingCalendar(config.calendar) if config.calendar else None
        if rules is SessionRules.EXCHANGE and self.calendar is None:
            raise ValueError("session_rules 'exchange' needs a calendar (or use 'bars')")
        self.exchange_rules = rules is SessionRules.EXCHANGE
        self._session_times = (
            session_times_cache(self.calendar) if self.calendar is not None else None
        )
        self.clock = SimulatedClock()
        self.costs: CostModel = (
            bist_default_costs(config.commission_bps) if config.costs == "bist" else no_costs()
        )
        self._fees_on = not isinstance(self.costs.fees, ZeroFees)
        self._fees_track = type(self.costs.fees) is not ZeroFees
        """False: ``ZeroFees.on_fill`` keeps nothing, so fills skip the call."""
        ticks = (
            TickSizeTable.fixed(config.tick_size)
            if config.tick_size is not None
            else BIST_SHARE_TICKS
        )
        given = {i.symbol: i for i in instruments} if instruments is not None else {}
        self.instruments: dict[str, Instrument] = {
            s: given.get(s) or Instrument(s, tick_table=ticks) for s in source.symbols
        }
        self._names = {s: s for s in self.instruments}
        self.portfolio = Portfolio(
            config.initial_cash,
            settlement_days=config.settlement_days,
            calendar=self.calendar,
            use_unsettled_proceeds=config.use_unsettled_proceeds,
            dividend_withholding=config.dividend_withholding,
        )
        guards: list[PortfolioGuard] = []
        if config.drawdown_reduce_at is not None or config.drawdown_halt_at is not None:
            guards.append(DrawdownGuard(config.drawdown_reduce_at, config.drawdown_halt_at))
        if config.daily_loss_pct is not None:
            guards.append(DailyLossLimit(limit_pct=config.daily_loss_pct))
        self.risk = RiskEngine(config.risk, guards)
        slipping = not isinstance(self.costs.slippage, NoSlippage)
        self.fill_model = BarFillModel(
            max_participation=config.max_participation,
            slippage=self._slippage if slipping else None,
            fill_on_touch=config.fill_on_touch,
            ticks=ticks,
        )
        self.band_rule = PriceBand(ticks=ticks) if config.price_bands else None
        self.stats = DailyStats(config.stats_lookback, universe=len(self.instruments))
        self.halts = sorted(halts, key=lambda h: (h.start_ns, h.end_ns, h.symbol or ""))

        # market state
        self.last: dict[str, float] = {}
        self.bands: dict[str, Band] = {}
        self.adv = SessionADV(self.stats, self.instruments)
        """Average daily volume per symbol as of the session's start (computed when read)."""
        self.vol = SessionVolatility(self.stats, self.instruments, config.default_volatility)
        """Daily volatility per symbol as of the session's start (computed when read)."""
        self.halted: set[str] = set()
        self.market_halted = False
        # account and orders
        self.pos: dict[str, int] = {}
        self.open_q: dict[str, OpenQuantity] = {}
        self._books_rev = 0
        """Counts changes of ``pos`` and ``open_q`` (``_at_targets`` reuses its last answer
        while neither they nor the strategy's targets changed)."""
        self._at_targets_seen: tuple[int, dict[str, int]] | None = None
        self.books: dict[str, _Book] = {}
        """Open orders (sent, not finished), by client order id."""
        self.working: dict[str, list[OrderState]] = {}
        """Orders the venue has accepted, per symbol, in time priority."""
        self.off_session: list[OrderState] = []
        """Orders held by the router for the next session."""
        self.seen_ids: set[str] = set()
        self.finished: list[_Book] = []
        self._seq = itertools.count()
        self._timers: list[_Timer] = []
        self.next_timer: float = _INF
        self.risk_ctx = RiskContext(
            day=date(1970, 1, 1),
            instruments=self.instruments,
            last_prices=self.last,
            bands=self.bands,
            positions=self.pos,
            open_orders=self.open_q,
            adv=self.adv,
        )
        self.ctx = BacktestContext(self)
        # session state
        self.session: _Session | None = None
        self.session_open = False
        self.day: date | None = None
        self._cur_cumvol = 0
        self._actions = pl.DataFrame(schema=polars_schema(DataKind.CORPORATE_ACTIONS))
        self._applied_through: date | None = None
        self._ex_dates: list[date] = []
        self._trips = RoundTripTracker()
        self._trip_chunks: list[pl.DataFrame] = []
        # outputs
        self.days: list[date] = []
        self.traded: list[float] = []
        self._traded_today = 0.0
        self._fills: list[tuple] = []
        self._flush_due = False
        """The fill or round-trip rows reached ``_FLUSH_ROWS``: write them at the session end."""
        self._fill_chunks: list[pl.DataFrame] = []
        self._order_rows: list[tuple] = []
        self._order_chunks: list[pl.DataFrame] = []
        self._tca_chunks: list[pl.DataFrame] = []
        self._tca_recent: list[pl.DataFrame] = []
        self._stats_due: _Session | None = None
        """The last session, handed to ``stats`` at the next session's start (nothing reads
        them before), so ``vol`` stays as of the session's start for the TCA at its end."""
        self._slipping = slipping
        self._mark_interval = config.mark_interval_minutes
        self._tca_on = config.tca
        strategy_type = type(strategy)
        self._on_session_start = (
            strategy.on_session_start
            if getattr(strategy_type, "on_session_start", None) is not Strategy.on_session_start
            else None
        )
        """None when the strategy keeps the base class's no-op (nothing to call)."""
        self._on_session_end = (
            strategy.on_session_end
            if getattr(strategy_type, "on_session_end", None) is not Strategy.on_session_end
            else None
        )
        self._targets = (
            isinstance(strategy, TargetPositionStrategy)
            and strategy_type.on_session_end is TargetPositionStrategy.on_session_end
            and strategy_type.rebalance is TargetPositionStrategy.rebalance
        )
        """A ``TargetPositionStrategy`` whose session end is the base class's (re-send what is
        off target): the engine skips the call when nothing is off (``_at_targets``)."""
        self._notify_fill = getattr(strategy_type, "on_fill", None) is not Strategy.on_fill
        self._notify_update = (
            getattr(strategy_type, "on_order_update", None) is not Strategy.on_order_update
        )
        self._prev_last_bars: pl.DataFrame | None = None
        self.bars_processed = 0
        self.error: str | None = None
        self._stopped = False

    # --------------------------------------------------------------------------- the run

    def run(self) -> BacktestResult:
        """Replay every bar of the source through the strategy; returns the result."""
        try:
            self.start()
            for chunk in self.source.chunks():
                self._run_chunk(_Chunk(chunk, self._names, cumv=self._slipping))
        except _StrategyFailure as failure:
            self.error = failure.message
        return self.finish()

    def _run_chunk(self, c: _Chunk) -> None:
        """The hot loop: a few microseconds per bar, strategy included; the chunk's lists are
        bound once, and sessions are ranges of them."""
        sym, ts, te = c.symbol, c.ts, c.ts_end
        op, hi, lo, cl, vo, vw, tc = c.open, c.high, c.low, c.close, c.volume, c.vwap, c.trade_count
        cv = c.cumv
        working = self.working
        last = self.last
        clock = self.clock
        advance = clock.advance_to
        ctx = self.ctx
        on_bar = self.strategy.on_bar
        fill = self.fill_bars
        if self._plain_sessions():
            self._run_plain_chunk(c)
            return
        open_session, close_session = self.open_session, self.close_session
        done = 0  # bars of the chunk processed (counted once per chunk)
        i = -1
        try:
            for s in c.sessions():
                open_session(s)
                now = -1
                for i in range(s.lo, s.hi):
                    t = te[i]
                    if t != now:
                        if t > self.next_timer:
                            self.fire_timers(t)
                        if t < clock._now:
                            advance(t)  # (raises: simulated time cannot go backwards)
                        clock._now = t  # (``advance(t)``, inlined: bar times are ints)
                        now = t
                    symbol = sym[i]
                    bar = Bar(symbol, ts[i], t, op[i], hi[i], lo[i], cl[i], vo[i], vw[i], tc[i])
                    if symbol in working:
                        fill(symbol, bar, cv[i] if cv is not None else 0)
                    last[symbol] = cl[i]
                    try:
                        on_bar(ctx, bar)
                    except _StrategyFailure:
                        raise
                    except Exception as exc:
                        raise _StrategyFailure(self._blame("on_bar", symbol, t, exc)) from exc
                done = s.hi
                close_session()
        finally:
            # the bars up to the one being processed when it stopped (a strategy error)
            self.bars_processed += max(done, i + 1)

    # ------------------------------------------------------------------- run start and end

    def start(self) -> None:
        actions = self.source.corporate_actions()
        if actions.height:
            actions = actions.filter(pl.col("symbol").is_in(list(self.instruments)))
        self._actions = actions
        self._ex_dates = sorted(actions["ex_date"].to_list()) if actions.height else []
        warm = self.source.warmup()
        if warm.height:
            for (day,), part in warm.group_by("day", maintain_order=True):
                due = self._actions_due(day)
                for _, symbol, pf, sf, _ in (
                    action_events(due, self.last) if due is not None else ()
                ):
                    self.stats.on_action(symbol, pf, sf)
                vols = dict(zip(part["symbol"].to_list(), part["volume"].to_list(), strict=True))
                closes = dict(zip(part["symbol"].to_list(), part["close"].to_list(), strict=True))
                self.stats.end_session(vols, closes)
                for symbol, close in closes.items():
                    self.last[self._names.get(symbol, symbol)] = close
        self._call("on_start", None, self.strategy.on_start, self.ctx)

    def finish(self) -> BacktestResult:
        """Close the books (also after a strategy error) and build the result."""
        if self.session_open:  # stopped inside a session: keep a mark of where it got to
            now = self.clock.now_ns()
            self.portfolio.mark_close(self.last, now)
            self.days.append(self.session.day if self.session else date(1970, 1, 1))
            self.traded.append(self._traded_today)
            self.session_open = False
        if not self._stopped:
            self._stopped = True
            if self.error is None:
                ts = self.clock.now_ns()
                for state in list(self.off_session):
                    self.off_session.remove(state)
                    self._cancel_unentered(
                        state, ts, "the backtest ended before the next session", notify=False
                    )
                ts = self.clock.now_ns()
                for symbol in sorted(self.working):
                    states = self.working.pop(symbol)
                    if states:
                        for r in self.fill_model.expire(states, ts):
                            self._on_report(r, notify=False)
            try:
                self.strategy.on_stop(self.ctx)
            except Exception as exc:  # the run is over; report it rather than lose the result
                if self.error is None:
                    self.error = self._blame("on_stop", None, self.clock.now_ns(), exc)
        self._flush_orders(final=True)
        return self._result()

    # ------------------------------------------------------------------------- sessions

    def open_session(self, session: _Session) -> None:
        """Everything before the first bar of a session (see the module docstring).

        Runs once per session, which on daily bars is once per bar: every step that has
        nothing to do is skipped on a cheap test.
        """
        day = session.day
        self.session = session
        self.day = day
        cal = self.calendar
        first_bar = session.first_ts
        last_bar = session.last_ts_end
        info = session_times(cal, day, self._session_times) if cal is not None else None
        if info is not None:
            t0 = min(info.first_order_ns, first_bar)
            t_end = max(info.last_trade_ns, last_bar)
            if self.exchange_rules:
                session.windows = list(info.windows)
        else:
            t0, t_end = first_bar, last_bar
        clock = self.clock
        now = clock.now_ns()
        if now > t0:
            t0 = now
        session.t0 = t0
        session.t_end = t_end if t_end > t0 else t0
        if t0 != now:
            clock.advance_to(t0)
        self.session_open = True
        self._traded_today = 0.0
        portfolio = self.portfolio
        pending = portfolio._pending_keys  # (settle only when something is due)
        if pending and pending[0] <= t0:
            portfolio.settle(t0)
        self.risk_ctx.day = day
        counters = self.risk.counters
        if counters.day != day:
            if counters.orders or counters.trades:
                counters.roll_day(day)
            else:  # (what roll_day leaves: the day, nothing counted)
                counters.day = day
        # client order ids must be unique within a session (as FIX requires of ClOrdID);
        # remembering only this session's keeps memory flat over long runs
        if self.seen_ids:
            self.seen_ids = set(self.books)

        if self._ex_dates:
            due = self._actions_due(day)
        else:
            due = None
            self._applied_through = day
        adv = self.adv
        if due is not None:
            # the action callbacks see the last session's ADV, as the strategy would live
            adv.freeze()
        done = self._stats_due
        if done is not None:
            stats = self.stats
            if done.chunk is stats._pending_chunk:  # (``stats.defer``, inlined)
                stats._pending.append(done)
            else:
                stats.defer(done)
            self._stats_due = None
        if due is not None:
            self._corporate_actions(due, t0)
        # bands from the previous close (already adjusted for today's actions)
        if self.band_rule is not None:
            bands = self.bands
            bands.clear()
            rule = self.band_rule
            for symbol, close in self.last.items():
                if close > 0:
                    with contextlib.suppress(ValueError):  # no tick schedule that day
                        bands[symbol] = rule.daily(close, day)
        elif self.bands:
            self.bands.clear()
        if adv._cache or not adv._open or adv._complete:
            adv.reset()
        vol = self.vol
        if vol._cache or not vol._open:
            vol.reset()
        # timers: halts and marks of the session
        if self.halts or self._mark_interval:
            self._schedule_session_timers(session)
        # orders held since the last session enter the opening auction (or the session start)
        if self.off_session:
            held, self.off_session = self.off_session, []
            phase = SessionPhase.OPENING_AUCTION if session.windows else SessionPhase.CONTINUOUS
            for state in held:
                self._enter(state, t0, phase, notify=True)
        if self._on_session_start is not None:
            self._call("on_session_start", None, self._on_session_start, self.ctx, day)

    def _plain_sessions(self) -> bool:
        """Whether every session of the run opens and closes without the calendar, corporate
        actions, halts, intraday marks, a session-start callback or a progress callback: then
        ``_open_plain_session`` / ``_close_plain_session`` do the same as ``open_session`` /
        ``close_session`` without testing for them (on daily bars a session is a bar)."""
        return (
            self.calendar is None
            and not self._ex_dates
            and not self.halts
            and not self._mark_interval
            and self._on_session_start is None
            and self.progress is None
            and not self._timers
        )

    def _run_plain_chunk(self, c: _Chunk) -> None:
        """``_run_chunk`` for a run where ``_plain_sessions()`` holds: ``open_session`` and
        ``close_session`` inlined without the steps that cannot apply (calendar, corporate
        actions, halts, intraday marks, callbacks), and what they read bound once per chunk.
        The same steps in the same order: on daily bars a session is one bar, and its fixed
        work is most of the bar's cost."""
        sym, ts, te = c.symbol, c.ts, c.ts_end
        op, hi, lo, cl, vo, vw, tc = c.open, c.high, c.low, c.close, c.volume, c.vwap, c.trade_count
        cv = c.cumv
        working = self.working
        last = self.last
        clock = self.clock
        advance = clock.advance_to
        ctx = self.ctx
        strategy: Any = self.strategy
        on_bar = strategy.on_bar
        fill = self.fill_bars
        portfolio = self.portfolio
        mark = portfolio.mark
        risk = self.risk
        risk_ctx = self.risk_ctx
        stats = self.stats
        adv, vol = self.adv, self.vol
        bands, band_rule = self.bands, self.band_rule
        add_day, add_traded = self.days.append, self.traded.append
        on_end = self._on_session_end
        targets = self._targets
        continuous = SessionPhase.CONTINUOUS
        done = 0  # bars of the chunk processed (counted once per chunk)
        i = -1
        try:
            for s in c.sessions():
                # ---- open_session
                day = s.day
                self.session = s
                self.day = day
                t0 = s.first_ts
                now = clock._now
                if now > t0:
                    t0 = now
                s.t0 = t0
                t_close = s.last_ts_end
                if t_close < t0:
                    t_close = t0
                s.t_end = t_close
                if t0 != now:
                    advance(t0)
                self.session_open = True
                self._traded_today = 0.0
                pending = portfolio._pending_keys
                if pending and pending[0] <= t0:
                    portfolio.settle(t0)
                risk_ctx.day = day
                counters = risk.counters
                if counters.day != day:
                    if counters.orders or counters.trades:
                        counters.roll_day(day)
                    else:
                        counters.day = day
                if self.seen_ids:
                    self.seen_ids = set(self.books)
                self._applied_through = day
                prev = self._stats_due
                if prev is not None:
                    if prev.chunk is stats._pending_chunk:
                        stats._pending.append(prev)
                    else:
                        stats.defer(prev)
                    self._stats_due = None
                if band_rule is not None:
                    bands.clear()
                    for symbol, close in last.items():
                        if close > 0:
                            with contextlib.suppress(ValueError):
                                bands[symbol] = band_rule.daily(close, day)
                elif bands:
                    bands.clear()
                if adv._cache or not adv._open or adv._complete:
                    adv.reset()
                if vol._cache or not vol._open:
                    vol.reset()
                if self.off_session:
                    held, self.off_session = self.off_session, []
                    for state in held:
                        self._enter(state, t0, continuous, notify=True)
                # ---- the bars
                now = -1
                for i in range(s.lo, s.hi):
                    t = te[i]
                    if t != now:
                        if t > self.next_timer:
                            self.fire_timers(t)
                        if t < clock._now:
                            advance(t)  # (raises: simulated time cannot go backwards)
                        clock._now = t
                        now = t
                    symbol = sym[i]
                    bar = Bar(symbol, ts[i], t, op[i], hi[i], lo[i], cl[i], vo[i], vw[i], tc[i])
                    if symbol in working:
                        fill(symbol, bar, cv[i] if cv is not None else 0)
                    last[symbol] = cl[i]
                    try:
                        on_bar(ctx, bar)
                    except _StrategyFailure:
                        raise
                    except Exception as exc:
                        raise _StrategyFailure(self._blame("on_bar", symbol, t, exc)) from exc
                done = s.hi
                # ---- close_session
                if self._timers:
                    self.fire_timers(t_close, inclusive=True)
                now = clock._now
                if t_close > now:
                    advance(t_close)
                else:
                    t_close = now
                if working:
                    self._expire_session_orders(s, t_close)
                equity = mark(last, t_close, True)
                if risk.guards or risk._operator_state is not risk._state:
                    risk.on_equity(equity, t_close, day)
                else:  # (``on_equity`` without guards: it only keeps the mark)
                    risk._last_equity = float(equity)
                add_day(day)
                add_traded(self._traded_today)
                self.session_open = False
                self._stats_due = s
                if on_end is not None:
                    at_targets = False
                    if targets:  # (``_at_targets``'s reuse of its last answer, inlined)
                        seen = self._at_targets_seen
                        try:
                            at_targets = (
                                seen is not None
                                and seen[0] == self._books_rev
                                and seen[1] == strategy.targets
                            )
                        except Exception:
                            at_targets = False
                        if not at_targets:
                            at_targets = self._at_targets()
                if on_end is not None and not at_targets:
                    try:
                        on_end(ctx, day)
                    except _StrategyFailure:
                        raise
                    except Exception as exc:
                        raise _StrategyFailure(
                            self._blame("on_session_end", None, clock._now, exc)
                        ) from exc
                if self.finished or self._flush_due:
                    self._flush_orders()
                if self._tca_on:
                    self._remember_last_bars(s)
        finally:
            self.bars_processed += max(done, i + 1)

    def _schedule_session_timers(self, session: _Session) -> None:
        t0, t_end = session.t0, session.t_end
        for h in self.halts:
            if h.end_ns <= t0 or h.start_ns >= t_end:
                continue
            self._push(max(h.start_ns, t0), "halt_start", h)
            self._push(h.end_ns, "halt_end", h)
        interval = self.config.mark_interval_minutes
        if interval:
            step = interval * _MINUTE_NS
            b = (t0 // step + 1) * step
            while b < t_end:
                self._push(b, "mark", None)
                b += step

    def _push(self, ts: int, kind: str, payload: Any) -> None:
        heapq.heappush(self._timers, _Timer(ts, next(self._seq), kind, payload))
        self.next_timer = self._timers[0].ts

    def fire_timers(self, before: int, inclusive: bool = False) -> None:
        """Run the timed events scheduled before ``before`` (or at it, if ``inclusive``)."""
        timers = self._timers
        while timers and (timers[0].ts < before or (inclusive and timers[0].ts == before)):
            timer = heapq.heappop(timers)
            self.clock.advance_to(max(timer.ts, self.clock.now_ns()))
            kind = timer.kind
            if kind == "mark":
                self._mark(timer.ts)
            elif kind == "enter":
                state, phase = timer.payload
                if state.status is OrderStatus.NEW:
                    self._enter(state, timer.ts, phase, notify=True)
            elif kind == "halt_start":
                self._set_halt(timer.payload, True)
            elif kind == "halt_end":
                self._set_halt(timer.payload, False)
        self.next_timer = timers[0].ts if timers else _INF

    def _set_halt(self, halt: HaltWindow, on: bool) -> None:
        if halt.symbol is None:
            self.market_halted = on
        elif on:
            self.halted.add(halt.symbol)
        else:
            self.halted.discard(halt.symbol)
        self.risk_ctx.halted_symbols = frozenset(self.halted)
        self.risk_ctx.market_halted = self.market_halted

    def _mark(self, ts: int) -> None:
        equity = self.portfolio.mark(self.last, ts)
        self.risk.on_equity(equity, ts, self.day)

    def close_session(self) -> None:
        """Everything after the last bar of a session (see the module docstring)."""
        session = self.session
        assert session is not None
        t_end = session.t_end
        if self._timers:
            self.fire_timers(t_end, inclusive=True)
        clock = self.clock
        now = clock.now_ns()
        if t_end > now:
            clock.advance_to(t_end)
        else:
            t_end = now
        # DAY orders end with the session
        if self.working:
            self._expire_session_orders(session, t_end)
        equity = self.portfolio.mark(self.last, t_end, True)
        day = session.day
        risk = self.risk
        if risk.guards or risk._operator_state is not risk._state:
            risk.on_equity(equity, t_end, day)
        else:  # (``on_equity`` without guards: it only keeps the mark)
            risk._last_equity = float(equity)
        self.days.append(day)
        self.traded.append(self._traded_today)
        self.session_open = False
        self._stats_due = session
        on_end = self._on_session_end
        if on_end is not None and self._targets and self._at_targets():
            on_end = None  # it would find every symbol at its target and do nothing
        if on_end is not None:
            try:
                on_end(self.ctx, day)
            except _StrategyFailure:
                raise
            except Exception as exc:
                raise _StrategyFailure(
                    self._blame("on_session_end", None, clock.now_ns(), exc)
                ) from exc
        if self.finished or self._flush_due:
            self._flush_orders()
        if self._tca_on:
            self._remember_last_bars(session)
        if self.progress is not None:
            self.progress(day)

    def _at_targets(self) -> bool:
        """Whether every target of a ``TargetPositionStrategy`` (with the base class's session
        end) equals position plus open orders: its ``on_session_end`` then sends nothing, and
        this test, on the engine's own books, is cheaper than the call."""
        try:
            targets = self.strategy.targets  # type: ignore[attr-defined]
            seen = self._at_targets_seen
            if seen is not None and seen[0] == self._books_rev and seen[1] == targets:
                return True  # the same books and targets as when last found at targets
            pos = self.pos.get
            open_q = self.open_q.get
            for symbol, target in targets.items():
                q = open_q(symbol)
                if target != pos(symbol, 0) + (q.buy - q.sell if q is not None else 0):
                    return False
            self._at_targets_seen = (self._books_rev, dict(targets))
            return True
        except Exception:  # let the strategy's own call show what is wrong
            return False

    def _expire_session_orders(self, session: _Session, t_end: int) -> None:
        for symbol in sorted(self.working):
            states = self.working.get(symbol)
            if not states:
                continue
            if self.exchange_rules and session.windows is not None:
                expiring = states
            else:
                books = self.books
                expiring = [st for st in states if books[st.order.client_order_id].met_bar]
            if expiring:
                for r in self.fill_model.expire(expiring, t_end):
                    self._on_report(r)
                self._set_working(
                    symbol,
                    [st for st in self.working.get(symbol, ()) if not st.status.is_terminal],
                )

    def _remember_last_bars(self, session: _Session) -> None:
        if self.config.tca:
            self._prev_last_bars = session.last_bars.with_columns(
                pl.col("_day_volume").alias("volume")
            ).select(_BAR_COLUMNS)

    # ----------------------------------------------------------------- corporate actions

    def _actions_due(self, day: date) -> pl.DataFrame | None:
        """Actions with an ex-date after the last day processed and up to ``day`` (an ex-date
        on a day without a session takes effect before the next session); None if none."""
        dates = self._ex_dates
        if not dates:
            self._applied_through = day
            return None
        acts = self._actions
        applied = self._applied_through
        lo = bisect.bisect_right(dates, applied) if applied is not None else 0
        if lo >= bisect.bisect_right(dates, day):  # nothing due: skip the frame filters
            self._applied_through = day
            return None
        due = acts.filter(pl.col("ex_date") <= day)
        if self._applied_through is not None:
            due = due.filter(pl.col("ex_date") > self._applied_through)
        self._applied_through = day
        return due

    def _corporate_actions(self, due: pl.DataFrame, t0: int) -> None:
        """Apply the actions due before the session (``due``), one ex-date at a time."""
        for ex_date, symbol, pf, sf, rows in action_events(due, self.last):
            self.portfolio.apply_corporate_actions(rows, t0)
            kinds = rows["kind"].to_list()
            single = rows.height == 1
            event = CorporateActionEvent(
                symbol=symbol,
                ex_date=ex_date,
                kind="+".join(kinds),
                ratio=rows["ratio"][0] if single else None,
                price=rows["price"][0] if single else None,
                amount=rows["amount"][0] if single else None,
                price_factor=pf,
                share_factor=sf,
            )
            self.stats.on_action(symbol, pf, sf)
            self.pos[symbol] = self.portfolio.quantity(symbol)
            self._books_rev += 1
            if sf != 1.0:
                self._trips.on_split(t0, symbol, sf)
                if len(self._trips.rows) >= _FLUSH_ROWS:
                    self._flush_due = True
            self._cancel_symbol(symbol, t0, f"corporate action ({event.kind}) on {ex_date}")
            self._call(
                "on_corporate_action", symbol, self.strategy.on_corporate_action, self.ctx, event
            )

    def _cancel_symbol(self, symbol: str, ts: int, why: str) -> None:
        reason = f"cancelled before the session: {why}"
        for state in [st for st in self.off_session if st.order.symbol == symbol]:
            self.off_session.remove(state)
            self._cancel_unentered(state, ts, reason)
        states = self.working.get(symbol)
        if states:
            for state in list(states):
                self._cancel_working(state, ts, reason)
        self.working.pop(symbol, None)

    # -------------------------------------------------------------------------- orders

    def submit(self, order: Order) -> ExecutionReport:
        """Strategy → risk → router → venue. Never raises on a bad order."""
        now = self.clock.now_ns()
        if not isinstance(order, Order):  # not even an order: keep a record of the attempt
            text = repr(order)[:80]
            order = Order("", "", Side.BUY, 0, OrderType.MARKET, ts_ns=now)
            return self._refuse(order, now, f"not an Order: {text}")
        problem = _malformed(order)
        if problem:
            return self._refuse(order, now, problem)
        state = OrderState(order)
        book = _Book(state, next(self._seq))
        oid = order.client_order_id
        if isinstance(oid, str) and oid and (oid in self.seen_ids or oid in self.books):
            report = self._reject(
                state,
                RejectCode.DUPLICATE_ORDER_ID,
                f"order id {oid!r} is already used in this session",
                now,
            )
            self.finished.append(book)
            return report
        if isinstance(oid, str) and oid:
            self.seen_ids.add(oid)
        ctx = self.risk_ctx
        # work out only what the checks this order meets will read
        reads_equity, reads_funds = self.risk.reads_account(order)
        ctx.equity = self.equity() if reads_equity else None
        ctx.buying_power = self.buying_power(now) if reads_funds else None
        try:
            decision = self.risk.check(order, ctx)
        except Exception as exc:  # a malformed object must not escape the trading path
            report = self._reject(state, RejectCode.INVALID_ORDER, f"malformed order: {exc}", now)
            self.finished.append(book)
            return report
        if not decision.accepted:
            report = self._reject(
                state, decision.code or RejectCode.INVALID_ORDER, decision.reason, now
            )
            self.finished.append(book)
            return report
        self.books[oid] = book
        return self._route(state, now)

    def _refuse(self, order: Order, now: int, reason: str) -> ExecutionReport:
        state = OrderState(order)
        report = self._reject(state, RejectCode.INVALID_ORDER, reason, now)
        self.finished.append(_Book(state, next(self._seq)))
        return report

    def _route(self, state: OrderState, now: int) -> ExecutionReport:
        """Enter the order now, hold it for a later phase or session, or refuse it."""
        session = self.session
        order = state.order
        if session is None or not self.session_open or now >= session.t_end:
            return self._hold_off_session(state, now)
        windows = session.windows
        if windows is None:  # bars mode (or a day the calendar does not know)
            return self._enter(state, now, SessionPhase.CONTINUOUS)
        phase, later = _phase_at(windows, now)
        if phase in ENTRY_PHASES:
            return self._enter(state, now, phase)
        if phase is SessionPhase.CLOSED:
            if later is None:
                return self._hold_off_session(state, now)
            target: SessionPhase | None = later[2]
            when: int | None = later[0]
        else:
            target = _HOLD_TARGET.get(phase)
            when = _phase_start(windows, target) if target is not None else None
        if target is None or when is None or target not in ENTRY_PHASES:
            return self._finish_reject(
                state,
                RejectCode.OUTSIDE_SESSION,
                f"the exchange takes no orders in the {phase} phase",
            )
        if order.time_in_force is not TimeInForce.DAY:
            return self._finish_reject(
                state,
                RejectCode.OUTSIDE_SESSION,
                f"{order.time_in_force} orders need continuous trading now; the exchange takes no "
                f"orders in the {phase} phase",
            )
        if target is SessionPhase.TRADES_AT_CLOSE and order.order_type is not OrderType.LIMIT:
            return self._finish_reject(
                state,
                RejectCode.OUTSIDE_SESSION,
                f"sent in the {phase} phase: the next phase, trades at the close, takes limit "
                "orders at the closing price only",
            )
        return self._hold(state, when, target, now)

    def _hold(self, state: OrderState, when: int, phase: SessionPhase, now: int) -> ExecutionReport:
        self._push(when, "enter", (state, phase))
        self._update_open(state.order.symbol)
        return ExecutionReport(
            client_order_id=state.order.client_order_id,
            status=OrderStatus.NEW,
            ts_ns=now,
            symbol=state.order.symbol,
            side=state.order.side,
            leaves_qty=state.order.quantity,
            reason=f"held by the router: enters when the {phase} phase starts",
        )

    def _hold_off_session(self, state: OrderState, now: int) -> ExecutionReport:
        if state.order.time_in_force is not TimeInForce.DAY:
            return self._finish_reject(
                state,
                RejectCode.OUTSIDE_SESSION,
                "the market is closed: IOC/FOK orders cannot wait for the next session",
            )
        self.off_session.append(state)
        self._update_open(state.order.symbol)
        return ExecutionReport(
            client_order_id=state.order.client_order_id,
            status=OrderStatus.NEW,
            ts_ns=now,
            symbol=state.order.symbol,
            side=state.order.side,
            leaves_qty=state.order.quantity,
            reason="held by the router: enters at the next session's open (off-session order)",
        )

    def _enter(
        self, state: OrderState, ts: int, phase: SessionPhase, notify: bool = False
    ) -> ExecutionReport:
        """The venue takes (or refuses) the order at ``ts`` in ``phase``; ``notify`` tells the
        strategy (for held orders: ``submit`` has returned long ago)."""
        order = state.order
        symbol = order.symbol
        inst = self.instruments[symbol]
        day = self.day or date(1970, 1, 1)
        band = self.bands.get(symbol)
        if phase is not SessionPhase.CONTINUOUS:
            closing = self.last.get(symbol) if phase is SessionPhase.TRADES_AT_CLOSE else None
            if phase is SessionPhase.CLOSING_AUCTION and band is not None and self.band_rule:
                last = self.last.get(symbol)
                if last:
                    band = self.band_rule.closing(last, day, band)
            problem = exchange_check(
                order,
                instrument=inst,
                day=day,
                phase=phase,
                band=band,
                halted=symbol in self.halted or self.market_halted,
                closing_price=closing,
            )
            if problem is not None:
                report = self._reject(state, problem[0], problem[1], ts)
                self._done(state)
                self._update_open(symbol)
                if notify:
                    self._notify(report)
                return report
        elif symbol in self.halted or self.market_halted:
            problem = exchange_check(
                order, instrument=inst, day=day, phase=phase, band=band, halted=True
            )
            if problem is not None:
                report = self._reject(state, problem[0], problem[1], ts)
                self._done(state)
                self._update_open(symbol)
                if notify:
                    self._notify(report)
                return report
        report = self.fill_model.submit(state, ts, instrument=inst, band=band, day=day)
        self.risk.on_execution_report(report)
        if report.status is OrderStatus.ACCEPTED:
            self.working.setdefault(symbol, []).append(state)
        else:
            self._done(state)
        self._update_open(symbol)
        if notify:
            self._notify(report)
        return report

    def _reject(self, state: OrderState, code: RejectCode, reason: str, ts: int) -> ExecutionReport:
        order = state.order
        report = ExecutionReport(
            client_order_id=order.client_order_id if isinstance(order.client_order_id, str) else "",
            status=OrderStatus.REJECTED,
            ts_ns=ts,
            symbol=order.symbol if isinstance(order.symbol, str) else "",
            side=order.side if isinstance(order.side, Side) else None,
            reject_code=code,
            reason=reason,
        )
        try:
            state.apply(report)
        except IllegalTransition:
            # a malformed order (no usable id, a negative quantity) cannot pass the state
            # machine's own checks: record the refusal on it directly
            state.status = OrderStatus.REJECTED
            state.reject_code = code
            state.reason = reason
            state.history.append(report)
        return report

    def _finish_reject(self, state: OrderState, code: RejectCode, reason: str) -> ExecutionReport:
        report = self._reject(state, code, reason, self.clock.now_ns())
        self._done(state)
        self._update_open(state.order.symbol)
        return report

    def _cancel_unentered(
        self, state: OrderState, ts: int, reason: str, notify: bool = True
    ) -> ExecutionReport:
        """Cancel an order the router holds: the router had acknowledged it, then cancels."""
        ack = ExecutionReport(
            client_order_id=state.order.client_order_id,
            status=OrderStatus.ACCEPTED,
            ts_ns=ts,
            symbol=state.order.symbol,
            side=state.order.side,
            venue_order_id="ROUTER",
            leaves_qty=state.order.quantity,
            reason="held by the router",
        )
        state.apply(ack)
        report = ExecutionReport(
            client_order_id=state.order.client_order_id,
            status=OrderStatus.CANCELLED,
            ts_ns=ts,
            symbol=state.order.symbol,
            side=state.order.side,
            venue_order_id="ROUTER",
            reason=reason,
        )
        state.apply(report)
        self._done(state)
        self._update_open(state.order.symbol)
        if notify:
            self._notify(report)
        return report

    def _cancel_working(self, state: OrderState, ts: int, reason: str) -> ExecutionReport:
        report = ExecutionReport(
            client_order_id=state.order.client_order_id,
            status=OrderStatus.CANCELLED,
            ts_ns=ts,
            symbol=state.order.symbol,
            side=state.order.side,
            venue_order_id=state.venue_order_id,
            cum_qty=state.filled_qty,
            avg_price=state.avg_price,
            reason=reason,
        )
        state.apply(report)
        self.risk.on_execution_report(report)
        self._done(state)
        self._update_open(state.order.symbol)
        self._notify(report)
        return report

    def cancel(self, client_order_id: str) -> ExecutionReport | None:
        book = self.books.get(client_order_id)
        if book is None:
            return None
        state = book.state
        now = self.clock.now_ns()
        symbol = state.order.symbol
        if state.status is OrderStatus.NEW:
            if state in self.off_session:
                self.off_session.remove(state)
            else:  # held for a later phase: its timer finds it no longer NEW
                pass
            return self._cancel_unentered(state, now, "cancelled by the strategy")
        self.risk.record_cancel(client_order_id)
        report = self._cancel_working(state, now, "cancelled by the strategy")
        self._set_working(symbol, [s for s in self.working.get(symbol, ()) if s is not state])
        return report

    def cancel_all(self, symbol: str | None = None) -> list[ExecutionReport]:
        ids = [
            oid
            for oid, book in sorted(self.books.items(), key=lambda kv: kv[1].seq)
            if symbol is None or book.state.order.symbol == symbol
        ]
        out = []
        for oid in ids:
            report = self.cancel(oid)
            if report is not None:
                out.append(report)
        return out

    def _done(self, state: OrderState) -> None:
        book = self.books.pop(state.order.client_order_id, None)
        if book is not None:
            self.finished.append(book)
        elif state.status is OrderStatus.REJECTED:
            pass

    def _update_open(self, symbol: str) -> None:
        buy = sell = 0
        for book in self.books.values():
            st = book.state
            if st.order.symbol != symbol or st.status.is_terminal:
                continue
            leaves = st.order.quantity - st.filled_qty
            if st.order.side is Side.BUY:
                buy += leaves
            else:
                sell += leaves
        if buy or sell:
            self.open_q[symbol] = OpenQuantity(buy=buy, sell=sell)
        else:
            self.open_q.pop(symbol, None)
        self._books_rev += 1

    # --------------------------------------------------------------------------- fills

    def _slippage(self, side: Side, qty: int, price: float, bar: BarView) -> float:
        symbol = bar.symbol
        adv = self.adv.get(symbol)
        if adv is None or not adv > 0:
            adv = float(self._cur_cumvol)  # first session: the volume seen so far today
        market = MarketConditions(
            volatility=self.vol.get(symbol, self.config.default_volatility),
            adv=adv,
            bar_volume=float(bar.volume),
        )
        return self.costs.slippage.price(side, qty, price, market)

    def fill_bars(self, symbol: str, bar: Bar, cum_volume: int) -> None:
        """Offer ``symbol``'s working orders to ``bar`` and book what filled."""
        states = self.working[symbol]
        books = self.books
        for st in states:
            books[st.order.client_order_id].met_bar = True
        if symbol in self.halted or self.market_halted:
            return
        self._cur_cumvol = cum_volume
        reports = self.fill_model.fill_on_bar(states, bar, self.bands.get(symbol))
        if not reports:
            return
        for r in reports:
            self._on_report(r)
        self._set_working(
            symbol, [st for st in self.working.get(symbol, ()) if not st.status.is_terminal]
        )

    def _set_working(self, symbol: str, states: list[OrderState]) -> None:
        """``working`` holds no empty lists, so ``symbol in working`` means orders work."""
        if states:
            self.working[symbol] = states
        else:
            self.working.pop(symbol, None)

    def _on_report(self, r: ExecutionReport, notify: bool = True) -> None:
        book = self.books.get(r.client_order_id)
        if book is None:
            return
        state = book.state
        if r.last_qty:
            r = self._book_fill(book, r)
        self.risk.on_execution_report(r)
        if state.status.is_terminal:
            self._done(state)
        self._update_open(r.symbol)
        if notify and (self._notify_fill or self._notify_update):
            self._notify(r)

    def _book_fill(self, book: _Book, r: ExecutionReport) -> ExecutionReport:
        """Fees (order-level, kuruş-rounded), costs state, portfolio, fill record."""
        state = book.state
        order = state.order
        symbol, side, qty, price, ts = order.symbol, order.side, r.last_qty, r.last_price, r.ts_ns
        prev_qty = state.filled_qty - qty
        fee = 0.0
        if self._fees_on:
            # The order pays the fee of one order on all it has filled so far (the minimum
            # once, kuruş rounding once on the cumulative value); this fill pays the increase.
            liquidity = r.liquidity or "taker"
            if prev_qty == 0:
                fee = self.costs.fee(symbol, side, qty, price, liquidity, ts)
            else:
                cum = prev_qty + qty
                total = self.costs.fee(
                    symbol, side, cum, (book.value + qty * price) / cum, liquidity, ts
                )
                fee = max(round(total - book.fees, 2), 0.0)
            if fee:
                r = _with_fees(r, fee)
                state.fees = round(state.fees + fee, 2)
                history = state.history
                for k in range(len(history) - 1, -1, -1):
                    if history[k].exec_id == r.exec_id:
                        history[k] = r
                        break
            book.fees = round(book.fees + fee, 2)
        book.value += qty * price
        if self._fees_track:
            self.costs.on_fill(symbol, side, qty, price, ts)
        result = self.portfolio.apply_fill(symbol, side, qty, price, fee, ts)
        self.pos[symbol] = result.quantity_after
        self._books_rev += 1
        self._traded_today += qty * price
        self._fills.append(
            (ts, order.client_order_id, symbol, int(side), qty, price, fee, r.liquidity)
        )
        trips = self._trips
        trips.on_fill(ts, symbol, int(side), qty, price, fee)
        if len(self._fills) >= _FLUSH_ROWS or len(trips.rows) >= _FLUSH_ROWS:
            self._flush_due = True
        return r

    def _notify(self, r: ExecutionReport) -> None:
        if r.last_qty:
            if self._notify_fill:
                self._call("on_fill", r.symbol, self.strategy.on_fill, self.ctx, r)
        elif self._notify_update:
            self._call("on_order_update", r.symbol, self.strategy.on_order_update, self.ctx, r)

    # ------------------------------------------------------------------------ account

    def equity(self) -> float:
        last = self.last
        mv = 0.0
        for symbol, pos in self.portfolio.positions.items():
            q = pos.quantity
            if q:
                p = last.get(symbol)
                mv += q * (p if p is not None else pos.price)
        return self.portfolio.cash + mv

    def buying_power(self, ts: int) -> float:
        bp = self.portfolio.buying_power(ts)
        for book in self.books.values():
            st = book.state
            if st.order.side is not Side.BUY or st.status.is_terminal:
                continue
            price = st.order.limit_price or self.last.get(st.order.symbol) or 0.0
            bp -= (st.order.quantity - st.filled_qty) * price
        return bp

    # ----------------------------------------------------------------------- helpers

    def _call(self, name: str, symbol: str | None, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except _StrategyFailure:
            raise
        except Exception as exc:
            raise _StrategyFailure(self._blame(name, symbol, self.clock.now_ns(), exc)) from exc

    def _blame(self, callback: str, symbol: str | None, ts: int, exc: BaseException) -> str:
        where = ""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" ({Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})"
        moment = datetime.fromtimestamp(ts / _NS, tz=UTC).isoformat() if ts else "the start"
        about = f" for {symbol}" if symbol else ""
        return (
            f"strategy {self.strategy.strategy_id!r} ({type(self.strategy).__name__}) raised "
            f"{type(exc).__name__}: {exc}{where} in {callback}{about} at {moment}; "
            "the backtest stopped there and keeps the results up to that event"
        )

    # ------------------------------------------------------------------------ results

    def _flush_orders(self, final: bool = False) -> None:
        done = self.finished
        if final:
            done = done + sorted(self.books.values(), key=lambda b: b.seq)
        self.finished = []
        self._flush_due = False
        if self._fills and (final or len(self._fills) >= _FLUSH_ROWS):
            self._fill_chunks.append(
                frame_from_rows(self._fills, {**FILL_SCHEMA, "ts": pl.Int64}).with_columns(
                    pl.col("ts").cast(TS)
                )
            )
            self._fills = []
        # an empty frame per session costs more than the session
        # at the end the last round trips and order rows stay rows: ``_result`` makes their
        # frames when the result's ``round_trips`` / ``orders`` are first read
        if self._trips.rows and len(self._trips.rows) >= _FLUSH_ROWS:
            self._trip_chunks.append(self._trips.drain())
        if done:
            self._order_records(done)
        if self._order_rows and len(self._order_rows) >= _FLUSH_ROWS:
            schema = {"_seq": pl.Int64, **ORDER_SCHEMA, "ts": pl.Int64}
            self._order_chunks.append(
                frame_from_rows(self._order_rows, schema).with_columns(pl.col("ts").cast(TS))
            )
            self._order_rows = []
        if self._tca_recent and (final or len(self._tca_recent) >= _COMPACT_FRAMES):
            self._tca_chunks.append(pl.concat(self._tca_recent))
            self._tca_recent = []

    def _order_records(self, done: list[_Book]) -> None:
        """Finished orders as rows (and their TCA): the books, with their report histories,
        are let go session by session."""
        rows = self._order_rows
        for b in done:
            st = b.state
            o = st.order
            side = o.side if isinstance(o.side, Side) else None
            rows.append(
                (
                    b.seq,
                    str(o.client_order_id),
                    str(o.strategy_id),
                    str(o.symbol),
                    int(side) if side is not None else 0,
                    o.quantity if isinstance(o.quantity, int) else 0,
                    str(o.order_type),
                    float(o.limit_price) if isinstance(o.limit_price, (int, float)) else None,
                    int(o.ts_ns) if isinstance(o.ts_ns, int) else 0,
                    str(st.status),
                    st.filled_qty,
                    st.avg_price if st.filled_qty else None,
                    round(st.fees, 2),
                    str(st.reject_code) if st.reject_code is not None else None,
                    st.reason,
                )
            )
        if self.config.tca:
            self._tca(done)

    def _tca(self, done: list[_Book]) -> None:
        books = [b for b in done if isinstance(b.state.order.client_order_id, str)]
        books = [
            b
            for b in books
            if b.state.order.client_order_id and isinstance(b.state.order.side, Side)
        ]
        if not books:
            return
        symbols = sorted({b.state.order.symbol for b in books})
        frames = []
        if self.session is not None:
            frames.append(self.session.frame.select(_BAR_COLUMNS))
        if self._prev_last_bars is not None:
            frames.append(self._prev_last_bars)
        bars = pl.concat(frames).filter(pl.col("symbol").is_in(symbols)) if frames else None
        seen: set[str] = set()
        orders, reports = [], []
        for b in books:
            oid = b.state.order.client_order_id
            if oid in seen:  # a refused duplicate id: TCA needs unique ids
                continue
            seen.add(oid)
            orders.append(b.state.order)
            reports.extend(r for r in b.state.history if r.status is not OrderStatus.NEW)
        adv = {s: a for s, a in self.adv.items()}
        # the orders' symbols are the only ones read (estimated here, when first needed)
        vol = {s: self.vol[s] for s in symbols if s in self.vol}
        self._tca_recent.append(
            order_tca(orders, reports, bars=bars, adv=adv, daily_volatility=vol)
        )

    def _result(self) -> BacktestResult:
        """The result: fills and orders now, the figures and the derived frames when first
        read (``Deferred``; they depend only on the finished run, captured here)."""
        order_chunks, order_rows = list(self._order_chunks), list(self._order_rows)
        fills = pl.concat(self._fill_chunks) if self._fill_chunks else empty(FILL_SCHEMA)
        trip_chunks, tca_chunks = list(self._trip_chunks), self._tca_chunks
        trip_rows = list(self._trips.rows)
        curve = self.portfolio.equity_curve
        initial = float(self.config.initial_cash)
        days, traded = self.days, self.traded
        scalars = self._stat_scalars()

        def daily() -> pl.DataFrame:
            return daily_frame(curve(close_only=True), days, traded, initial)

        def equity() -> pl.DataFrame:
            frame = curve()
            return frame if frame.height else empty(EQUITY_SCHEMA)

        def orders() -> pl.DataFrame:
            chunks = order_chunks
            if order_rows:
                schema = {"_seq": pl.Int64, **ORDER_SCHEMA, "ts": pl.Int64}
                tail = frame_from_rows(order_rows, schema).with_columns(pl.col("ts").cast(TS))
                chunks = [*chunks, tail]
            return pl.concat(chunks).sort("_seq").drop("_seq") if chunks else empty(ORDER_SCHEMA)

        def trips() -> pl.DataFrame:
            chunks = trip_chunks
            if trip_rows:
                tail = RoundTripTracker()
                tail.rows = trip_rows
                chunks = [*chunks, tail.drain()]
            return pl.concat(chunks) if chunks else empty(ROUND_TRIP_SCHEMA)

        def tca() -> pl.DataFrame:
            if tca_chunks:
                return pl.concat(tca_chunks).sort("ts", "client_order_id")
            return pl.DataFrame(schema=TCA_COLUMNS)

        result = BacktestResult(
            equity=Deferred(equity),
            daily=Deferred(daily),
            orders=Deferred(orders),
            fills=fills,
            round_trips=Deferred(trips),
            tca=Deferred(tca),
            tca_by_strategy=Deferred(lambda: tca_by_strategy(result.tca)),
            stats=Deferred(
                lambda: summary_figures(
                    result.daily, result.orders, fills, result.round_trips, initial, scalars
                )
            ),
            config=self._config_record(),
            error=self.error,
            synthetic=bool(self.source.synthetic),
            strategy=self.strategy.name,
            name=self.config.name or self.strategy.name,
            extra=self._extra(),
        )
        return result

    def _config_record(self) -> dict[str, Any]:
        config = self.config.model_dump(mode="json")
        config["strategy"] = {
            "name": self.strategy.name,
            "class": type(self.strategy).__name__,
            "strategy_id": self.strategy.strategy_id,
            "parameters": self.strategy.parameters(),
        }
        return config

    def _extra(self) -> dict[str, Any]:
        return {
            "symbols": list(self.instruments),
            "first_day": str(self.days[0]) if self.days else None,
            "last_day": str(self.days[-1]) if self.days else None,
            "sessions": len(self.days),
            "bars": self.bars_processed,
            "risk_events": [e.to_dict() for e in self.risk.events],
        }

    def _stat_scalars(self) -> dict[str, float]:
        """The figures that come from the engine rather than the frames."""
        return {
            "traded_value": float(sum(self.traded)),
            "bars": float(self.bars_processed),
            "dividends": float(self.portfolio.total_dividends),
            "withholding_tax": float(self.portfolio.withholding_tax),
        }

    def _stats(
        self,
        daily: pl.DataFrame,
        orders: pl.DataFrame,
        fills: pl.DataFrame,
        trips: pl.DataFrame,
    ) -> dict[str, float]:
        return summary_figures(
            daily, orders, fills, trips, float(self.config.initial_cash), self._stat_scalars()
        )


def daily_frame(
    closes: pl.DataFrame, days: Sequence[date], traded: Sequence[float], initial_cash: float
) -> pl.DataFrame:
    """One row per session from the close marks (``Portfolio.equity_curve(close_only=True)``),
    the session days and the value traded in each."""
    n = min(len(days), closes.height)
    eq = closes["equity"].to_list()[:n]
    prev = [initial_cash, *eq[:-1]]
    return pl.DataFrame(
        {
            "day": days[:n],
            "equity": eq,
            "returns": [e / p - 1.0 if p else math.nan for e, p in zip(eq, prev, strict=True)],
            "gross_exposure": closes["gross_exposure"].to_list()[:n],
            "net_exposure": closes["net_exposure"].to_list()[:n],
            "turnover": [t / p if p else math.nan for t, p in zip(traded[:n], prev, strict=True)],
        },
        schema=DAILY_SCHEMA,
    )


def summary_figures(
    daily: pl.DataFrame,
    orders: pl.DataFrame,
    fills: pl.DataFrame,
    trips: pl.DataFrame,
    initial_cash: float,
    scalars: Mapping[str, float],
) -> dict[str, float]:
    """``BacktestResult.stats``: the return metrics of the daily returns and the run's counts."""
    returns = daily["returns"].to_numpy()
    stats: dict[str, float] = {}
    if returns.size:
        stats.update({k: float(v) for k, v in summary_stats(returns).items()})
    else:
        stats.update({"total_return": math.nan, "cagr": math.nan, "sharpe_ratio": math.nan})
        stats["max_drawdown"] = math.nan
    final = float(daily["equity"][-1]) if daily.height else initial_cash
    rejected = orders.filter(pl.col("status") == str(OrderStatus.REJECTED)).height
    wins = trips.filter(pl.col("pnl") > 0).height
    stats.update(
        {
            "initial_capital": initial_cash,
            "final_equity": final,
            "total_pnl": final - initial_cash,
            # correctly rounded: a float column's sum depends on how it is chunked
            "fees": math.fsum(fills["fees"].to_list()) if fills.height else 0.0,
            "orders": float(orders.height),
            "fills": float(fills.height),
            "rejects": float(rejected),
            "round_trips": float(trips.height),
            "win_rate": wins / trips.height if trips.height else math.nan,
            "traded_value": scalars["traded_value"],
            "avg_daily_turnover": float(daily["turnover"].mean()) if daily.height else math.nan,
            "avg_gross_exposure": float((daily["gross_exposure"] / daily["equity"]).mean())
            if daily.height
            else math.nan,
            "sessions": float(daily.height),
            "bars": scalars["bars"],
            "dividends": scalars["dividends"],
            "withholding_tax": scalars["withholding_tax"],
        }
    )
    return stats


def action_events(
    actions: pl.DataFrame, last: dict[str, float]
) -> list[tuple[date, str, float, float, pl.DataFrame]]:
    """``(ex_date, symbol, price_factor, share_factor, rows)`` per symbol and ex-date, in
    order, priced with the last close in ``last`` (NaN when there is none); ``last`` is
    rescaled by each factor, as the market opens at the theoretical ex price.

    The one place the engine and the fast path turn action rows into factors, so both see the
    same numbers.
    """
    out: list[tuple[date, str, float, float, pl.DataFrame]] = []
    if actions.height == 0:
        return out
    ordered = actions.sort("ex_date", "symbol", "kind")
    for (ex_date,), group in ordered.group_by("ex_date", maintain_order=True):
        names = sorted(set(group["symbol"].to_list()))
        known = [s for s in names if last.get(s) is not None]
        closes = pl.DataFrame(
            {
                "symbol": known,
                "date": [ex_date - timedelta(days=1)] * len(known),
                "close": [float(last[s]) for s in known],
            },
            schema={"symbol": pl.String, "date": pl.Date, "close": pl.Float64},
        )
        factors = adjustment_factors(group, closes)
        for row in factors.sort("symbol").iter_rows(named=True):
            symbol = row["symbol"]
            pf = float(row["price_factor"]) if row["price_factor"] is not None else math.nan
            sf = float(row["volume_factor"])
            if last.get(symbol) is not None and math.isfinite(pf):
                last[symbol] = last[symbol] * pf
            out.append((ex_date, symbol, pf, sf, group.filter(pl.col("symbol") == symbol)))
    return out


def _malformed(order: Order) -> str:
    """Type problems ``Order.problems()`` does not look for (it trusts the annotations)."""
    if not isinstance(order.client_order_id, str) or not isinstance(order.symbol, str):
        return "client order id and symbol must be strings"
    if not isinstance(order.side, Side):
        return f"side must be Side.BUY or Side.SELL, got {order.side!r}"
    if not isinstance(order.order_type, OrderType):
        return f"unknown order type {order.order_type!r}"
    if not isinstance(order.time_in_force, TimeInForce):
        return f"unknown time in force {order.time_in_force!r}"
    if order.limit_price is not None and not isinstance(order.limit_price, (int, float)):
        return f"limit price must be a number, got {order.limit_price!r}"
    return ""


def _with_fees(r: ExecutionReport, fees: float) -> ExecutionReport:
    """``r`` with its fees set (``dataclasses.replace`` is several times slower)."""
    return ExecutionReport(
        r.client_order_id,
        r.status,
        r.ts_ns,
        r.symbol,
        r.side,
        r.exec_id,
        r.venue_order_id,
        r.last_qty,
        r.last_price,
        r.cum_qty,
        r.leaves_qty,
        r.avg_price,
        fees,
        r.reject_code,
        r.reason,
        r.liquidity,
    )


def _phase_at(
    windows: list[tuple[int, int, SessionPhase]], ts: int
) -> tuple[SessionPhase, tuple[int, int, SessionPhase] | None]:
    """The phase at ``ts`` and the next window starting after it (None if none)."""
    starts = [w[0] for w in windows]
    i = bisect.bisect_right(starts, ts) - 1
    later = windows[i + 1] if i + 1 < len(windows) else None
    if i >= 0 and windows[i][0] <= ts < windows[i][1]:
        return windows[i][2], later
    return SessionPhase.CLOSED, later


def _phase_start(windows: list[tuple[int, int, SessionPhase]], phase: SessionPhase) -> int | None:
    for start, _, p in windows:
        if p is phase:
            return start
    return None


class BacktestContext(StrategyContext):
    """The ``StrategyContext`` of a backtest: reads the engine's state, acts through it."""

    def __init__(self, engine: BacktestEngine) -> None:
        super().__init__(engine.strategy.strategy_id)
        self._e = engine

    def now_ns(self) -> int:
        return self._e.clock.now_ns()

    @property
    def day(self) -> date:
        day = self._e.day
        if day is None:
            raise RuntimeError("no session has started yet")
        return day

    def phase(self) -> SessionPhase | None:
        s = self._e.session
        if s is None or s.windows is None:
            return None
        return _phase_at(s.windows, self.now_ns())[0]

    def accepts_market_orders(self, symbol: str) -> bool:
        e = self._e
        if e.market_halted or symbol in e.halted:
            return False
        s = e.session
        if s is None or s.windows is None or not e.session_open or self.now_ns() >= s.t_end:
            return True
        return _phase_at(s.windows, self.now_ns())[0] not in _NO_MARKET_PHASES

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return self._e.instruments

    def last_price(self, symbol: str) -> float | None:
        return self._e.last.get(symbol)

    def band(self, symbol: str) -> Band | None:
        return self._e.bands.get(symbol)

    def position(self, symbol: str) -> int:
        return self._e.pos.get(symbol, 0)

    def positions(self) -> dict[str, int]:
        return {s: q for s, q in self._e.pos.items() if q}

    @property
    def cash(self) -> float:
        return self._e.portfolio.cash

    @property
    def equity(self) -> float:
        return self._e.equity()

    @property
    def buying_power(self) -> float:
        return self._e.buying_power(self.now_ns())

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        books = sorted(self._e.books.values(), key=lambda b: b.seq)
        return [b.state for b in books if symbol is None or b.state.order.symbol == symbol]

    def open_quantity(self, symbol: str) -> int:
        q = self._e.open_q.get(symbol)
        return q.buy - q.sell if q is not None else 0

    def submit(self, order: Order) -> ExecutionReport:
        return self._e.submit(order)

    def cancel(self, client_order_id: str) -> ExecutionReport | None:
        return self._e.cancel(client_order_id)

    def cancel_all(self, symbol: str | None = None) -> list[ExecutionReport]:
        return self._e.cancel_all(symbol)


def source_for(
    data: Lake | str | Path | pl.DataFrame | BarSource,
    config: BacktestConfig,
    corporate_actions: pl.DataFrame | None = None,
) -> BarSource:
    """A ``BarSource`` for a lake (or its root path), a frame of bars, or a ready source."""
    if isinstance(data, (str, Path)):
        data = Lake(data)
    if isinstance(data, Lake):
        return LakeBarSource(
            data,
            config.symbols,
            config.start,
            config.end,
            chunk_days=config.chunk_days,
            warmup_days=config.warmup_days,
        )
    if isinstance(data, pl.DataFrame):
        bars = data
        if config.symbols is not None:
            unknown = sorted(set(config.symbols) - set(bars["symbol"].unique().to_list()))
            if unknown:
                raise ValueError(f"unknown symbol(s): {', '.join(unknown)}")
            bars = bars.filter(pl.col("symbol").is_in(config.symbols))
        return FrameBarSource(bars, corporate_actions, config.start, config.end)
    return data


def run_backtest(
    config: BacktestConfig,
    strategy: Strategy,
    data: Lake | str | Path | pl.DataFrame | BarSource,
    *,
    instruments: Iterable[Instrument] | None = None,
    halts: Iterable[HaltWindow] = (),
    corporate_actions: pl.DataFrame | None = None,
    progress: Callable[[date], None] | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` on ``data`` (a lake, a frame of bars or a ``BarSource``).

    Raises ``ValueError`` for unknown symbols, an empty range or a configuration that cannot
    run; a strategy error does not raise: it ends the run and is in ``result.error``.
    ``progress`` is called with each session day as it completes.
    """
    source = source_for(data, config, corporate_actions)
    engine = BacktestEngine(
        config, strategy, source, instruments=instruments, halts=halts, progress=progress
    )
    return engine.run()
