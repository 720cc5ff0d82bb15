"""Backtest benchmark (issue 3, "Speed and memory"): our engine beside backtrader and vectorbt.

**Speed.** One moving-average crossover (fast 10 / slow 20 simple averages of the closes, long
only, a fixed quantity; decided at bar ``t``'s close, a market order filled at bar ``t+1``'s
open; the definition of ``quant.strategies.MovingAverageCrossover``) on two data sets, in four
engines, side by side in one run:

- *daily*: the real daily closes of one stock from a registry package (skfolio's
  ``load_sp500_dataset()``, AAPL, 1990-2022, 8,313 bars, adjusted USD closes with 3 decimals).
  The data set has closes only, so every engine gets **close-only bars** (open = high = low =
  close): a fill at the next bar's open is a fill at the next close. Volume is not in the data;
  the bars carry 10^12 shares so our participation cap never binds (the other two ignore
  volume).
- *minute*: one year (250 sessions) of 1-minute synthetic BIST bars, symbol SYN01 of
  ``SyntheticMarket(SyntheticMarketConfig(n_symbols=2, n_sessions=250, seed=7))`` (about
  120,000 bars, the size ENVIRONMENT.md measured backtrader on). Raw prices; the market's
  corporate actions are not given to any engine, so all see the same bar sequence. The
  quantity is below the smallest bar volume (checked), so our participation cap never binds.

The engines:

- ``event``: ``quant.sim.backtest.run_backtest`` on a polars frame of bars, settings for
  apples-to-apples: ``session_rules="bars"`` (the bar sequence is the market), ``costs="none"``,
  ``max_participation=1.0``, no intraday marks, no TCA, risk limits that cannot bind (no collar,
  fat-finger, order-to-trade or exposure limits); daily data also ``calendar=None``, one fixed
  tick of 0.001 (the data's own grid: its prices have 3 decimals) and no price bands. The daily
  frame is streamed a year of sessions at a time (``FrameBarSource(chunk_sessions=250)``, as
  ``LakeBarSource`` reads daily bars); the engine's default for frames, 5 sessions a chunk, is
  timed too (``event_default_chunks``).
- ``fast``: ``quant.sim.fast.run_fast``, same settings (the same engine, visiting only the bars
  where something can happen).
- Our timed calls end when the fills are read, as vectorbt's end at its order records: the
  result's figures (``stats``) and derived frames (equity, daily, round trips, TCA) are
  computed when first read (``quant.sim.result.Deferred``), as vectorbt computes its returns
  and stats when asked. ``event_full`` and ``fast_full`` time the same runs with every result
  field read, for the record.
- ``backtrader`` 1.9.78: ``cerebro.run(runonce=True)``, no commission, ``set_coc(False)``
  (market orders fill at the next bar's open). Its stock ``SMA`` + ``CrossOver`` compute the
  averages in floats, and on tick-grid prices the two averages are often *exactly* equal (ties);
  float noise then breaks the tie one way or the other and adds trades that no exact
  computation has. So the compared backtrader run uses ``ExactCrossOver``, backtrader's own
  ``CrossOver`` rule (a tie never crosses; a cross is a change from the last non-zero sign)
  computed on integer price units in an indicator with a vectorised ``once``; the stock
  indicators are timed as well (``backtrader_stock``), with how far their trades differ.
- ``vectorbt`` 1.2.0 (numba engine): ``Portfolio.from_signals`` with the entries and exits of
  the same rule computed here on integer price units (vectorbt's own crossing helpers fire
  after a tie without a real cross), shifted one bar, and ``price=open``, so orders fill at
  the next bar's open. Its warm time is measured: the first call in a process compiles numba
  for seconds (its ``warmup_seconds``); each timed call computes the rolling sums and
  the signals, simulates, and reads the order records.

Each engine's native input (a polars frame, a pandas frame, numpy arrays) is prepared before
the timing; the timed call goes from that input to the list of trades. Every engine runs once
untimed (imports, compilation, the calendar), then ``--repeat`` times, interleaved (event,
fast, backtrader, vectorbt, event, ...) so a busy spell on the shared machine hits all of
them; figures are the best and the median. The trades of every run (bar of the fill, signed
quantity, price) must be identical across the four engines: the script exits 1 if not.

**Memory.** A 30-symbol, 1-minute synthetic lake (``SyntheticMarket(...).iter_minute_bars()``
written with ``Lake.write``, with its corporate actions; 1,250 sessions from 2021-01-04, built
once and cached under ``var/bench/lake/``) is backtested as ``smart-trader backtest`` does (BIST
costs, exchange session rules, intraday marks, TCA) with the cross-sectional momentum strategy,
over its first 250 sessions (about 3.6 million bars) and over all 1,250. Each run is a child
process of its own (this script re-invoked with ``--child memory``) that reports its peak
resident memory (``VmHWM``, see ``_peak_rss_bytes``) and its resident memory along the way.

Run: ``.venv/bin/python benchmarks/backtest_bench.py`` (``--quick`` for small sizes,
``--skip-memory`` for the speed part only). Figures go to ``var/bench/backtest_bench.json``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "var" / "bench"

FAST, SLOW = 10, 20
QUANTITY = 50
INITIAL_CASH = 1e9
"""Cash enough that no engine ever refuses an order for funds."""
PRICE_UNITS = 10_000
"""Integer price units per currency unit (``quant.market.ticks.PRICE_SCALE``)."""
DAILY_SYMBOL = "AAPL"
DAILY_TICK = 0.001
DAILY_VOLUME = 10**12
DAILY_CHUNK_SESSIONS = 250
SEED = 7
MINUTE_MARKET_SYMBOLS = 2
"""``SyntheticMarketConfig(n_symbols=1, n_sessions=250, seed=7)`` raises in the synthetic
market's daily simulation ("cannot round a non-positive or non-finite price: 0.0" from
``PriceBand.closing``); the minute data set is the first symbol of a two-symbol market."""
MINUTE_SYMBOL = "SYN01"
YEAR_SESSIONS = 250
QUICK_SESSIONS = 10
QUICK_DAILY_BARS = 1500

MEMORY_SYMBOLS = 30
MEMORY_START = date(2021, 1, 4)
"""Early enough for 1,250 XIST sessions before the calendar's end (a year after today)."""
MEMORY_SESSIONS_SHORT = 250
MEMORY_SESSIONS_LONG = 1250
QUICK_MEMORY = (30, 10, 30)
"""``--quick``: symbols, short and long sessions."""
MEMORY_STRATEGY = "momentum"
LAKE_VERSION = 1
"""Bump when the lake's recipe changes, so a cached lake is not reused."""

GOALS = {
    "event_vs_backtrader": 10.0,
    "fast_vs_vectorbt": 2.0,
    "memory_peak_gb": 1.5,
    "memory_long_vs_short": 1.25,
}
"""``memory_long_vs_short``: "about the same" peak, read as at most 25% above the short run's."""

ENGINES = ("event", "fast", "backtrader", "vectorbt")
"""The engines whose trades must be identical; the first is the reference."""
EXTRA_ENGINES = ("event_default_chunks", "event_full", "fast_full", "backtrader_stock")
"""Also timed, for the record: not part of the equality check (see the module docstring)."""

Fill = tuple[int, int, float]
"""(index of the bar whose open filled it, signed quantity, price)."""


# -- data --------------------------------------------------------------------------------------


class DataSet:
    """One symbol's bars, in every engine's native form (built before any timing)."""

    def __init__(self, name: str, description: str, bars: Any, daily: bool) -> None:
        import pandas as pd

        self.name = name
        self.description = description
        self.daily = daily
        self.bars = bars.sort("ts")
        self.n = self.bars.height
        self.symbol = str(self.bars["symbol"][0])
        self.ts_ns = self.bars["ts"].dt.epoch("ns").to_numpy()
        self.ts_end_ns = self.bars["ts_end"].dt.epoch("ns").to_numpy()
        self.open = self.bars["open"].to_numpy().copy()
        self.close = self.bars["close"].to_numpy().copy()
        frame = self.bars.select("ts", "open", "high", "low", "close", "volume").to_pandas()
        frame.index = pd.DatetimeIndex(frame.pop("ts").dt.tz_localize(None), name="datetime")
        self.pandas = frame
        """backtrader's input: OHLCV with a naive UTC DatetimeIndex (bar open times)."""
        self.open_series = pd.Series(self.open, index=frame.index, name="open")
        self.close_series = pd.Series(self.close, index=frame.index, name="close")
        self.min_volume = int(self.bars["volume"].min())

    def facts(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "symbol": self.symbol,
            "bars": self.n,
            "first_bar": _iso(int(self.ts_ns[0])),
            "last_bar": _iso(int(self.ts_ns[-1])),
            "min_volume": self.min_volume,
            "close_min": float(self.close.min()),
            "close_max": float(self.close.max()),
            "exact_ties": int(exact_ties(self.close, FAST, SLOW)),
        }


def daily_data(limit: int | None = None) -> DataSet:
    """AAPL's daily closes from skfolio as close-only daily bars (UTC midnight to midnight)."""
    import numpy as np
    import polars as pl
    from skfolio.datasets import load_sp500_dataset

    from quant.data.schema import DataKind, conform

    prices = load_sp500_dataset()[DAILY_SYMBOL].dropna()
    if limit is not None:
        prices = prices.iloc[-limit:]
    close = prices.to_numpy(dtype=float)
    ts = pl.Series("ts", prices.index.to_numpy().astype("datetime64[ns]")).dt.replace_time_zone(
        "UTC"
    )
    n = close.size
    frame = pl.DataFrame(
        {
            "ts": ts,
            "ts_end": ts.dt.offset_by("1d"),
            "symbol": [DAILY_SYMBOL] * n,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": np.full(n, DAILY_VOLUME, dtype=np.int64),
            "vwap": close,
            "trade_count": np.ones(n, dtype=np.int64),
        }
    )
    description = (
        f"skfolio load_sp500_dataset() {DAILY_SYMBOL} adjusted daily closes as close-only bars "
        "(open = high = low = close; a fill at the next open is a fill at the next close)"
    )
    return DataSet("daily", description, conform(frame, DataKind.BARS), daily=True)


def minute_data(sessions: int) -> DataSet:
    """One symbol's 1-minute synthetic BIST bars (raw prices, no corporate actions applied)."""
    import polars as pl

    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    config = SyntheticMarketConfig(n_symbols=MINUTE_MARKET_SYMBOLS, n_sessions=sessions, seed=SEED)
    bars = SyntheticMarket(config).minute_bars().filter(pl.col("symbol") == MINUTE_SYMBOL)
    description = (
        f"SyntheticMarket(n_symbols={MINUTE_MARKET_SYMBOLS}, n_sessions={sessions}, seed={SEED})"
        f".minute_bars(), symbol {MINUTE_SYMBOL}, raw prices, corporate actions not applied"
    )
    data = DataSet("minute", description, bars, daily=False)
    if data.min_volume < QUANTITY:
        raise RuntimeError(
            f"a bar of {MINUTE_SYMBOL} trades {data.min_volume} shares, less than the order "
            f"quantity {QUANTITY}: our participation cap would bind and backtrader's would not"
        )
    return data


# -- the crossover rule, exactly ---------------------------------------------------------------


def _window_difference(close: Any, fast: int, slow: int) -> Any:
    """``fast_sum x slow - slow_sum x fast`` on integer price units (0 before ``slow`` bars):
    its sign is the sign of SMA(fast) - SMA(slow), with ties exact."""
    import numpy as np

    units = np.rint(np.asarray(close) * PRICE_UNITS).astype(np.int64)
    n = units.size
    sums = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(units, out=sums[1:])
    diff = np.zeros(n, dtype=np.int64)
    k = np.arange(slow - 1, n)
    diff[k] = (sums[k + 1] - sums[k + 1 - fast]) * slow - (sums[k + 1] - sums[k + 1 - slow]) * fast
    return diff


def exact_ties(close: Any, fast: int, slow: int) -> int:
    """Bars (after the warm-up) where the two averages are exactly equal."""
    diff = _window_difference(close, fast, slow)
    return int((diff[slow - 1 :] == 0).sum())


def crossings(close: Any, fast: int, slow: int) -> tuple[Any, Any]:
    """Boolean arrays: the bars where SMA(fast) crosses above / below SMA(slow).

    backtrader's ``CrossOver`` rule: a cross is a bar whose sign of ``fast - slow`` differs from
    the last non-zero sign before it; a tie never crosses by itself.
    """
    import numpy as np

    sign = np.sign(_window_difference(close, fast, slow))
    n = sign.size
    index = np.arange(n)
    last = np.maximum.accumulate(np.where(sign != 0, index, -1))
    before = np.concatenate(([-1], last[:-1]))
    previous = np.where(before >= 0, sign[np.maximum(before, 0)], 0)
    return (sign > 0) & (previous < 0), (sign < 0) & (previous > 0)


# -- the engines -------------------------------------------------------------------------------


def _relaxed_risk() -> Any:
    from quant.risk.limits import RiskLimits

    return RiskLimits(
        price_collar_pct=None,
        fat_finger_price_pct=None,
        fat_finger_adv_pct=None,
        max_order_to_trade_ratio=None,
        max_gross_exposure_pct=None,
        max_net_exposure_pct=None,
    )


def engine_config(daily: bool) -> Any:
    """Our engine set up as backtrader and vectorbt work (see the module docstring)."""
    from quant.sim.backtest import BacktestConfig

    settings: dict[str, Any] = {
        "session_rules": "bars",
        "costs": "none",
        "max_participation": 1.0,
        "mark_interval_minutes": None,
        "tca": False,
        "risk": _relaxed_risk(),
        "initial_cash": INITIAL_CASH,
        "name": "backtest_bench",
    }
    if daily:
        settings.update(calendar=None, tick_size=DAILY_TICK, price_bands=False)
    return BacktestConfig(**settings)


def _strategy() -> Any:
    from quant.strategies import MovingAverageCrossover

    return MovingAverageCrossover(FAST, SLOW, quantity=QUANTITY, adjust_for_actions=False)


def _our_fills(data: DataSet, result: Any) -> list[Fill]:
    """The fills as (bar index, signed quantity, price), found by their time stamp (a fill is
    stamped at the close of the bar whose open filled it)."""
    import numpy as np
    import polars as pl

    if result.error is not None:
        raise RuntimeError(f"our backtest stopped: {result.error}")
    cols = result.fills.select(pl.col("ts").dt.epoch("ns"), "side", "quantity", "price")
    ts = cols["ts"].to_numpy()
    k = np.searchsorted(data.ts_end_ns, ts)
    inside = np.minimum(k, data.n - 1)
    bad = np.flatnonzero((k >= data.n) | (data.ts_end_ns[inside] != ts))
    if bad.size:
        raise RuntimeError(f"a fill at {_iso(int(ts[bad[0]]))} is not at the close of a bar")
    signed = cols["side"].cast(pl.Int64) * cols["quantity"]
    return list(zip(k.tolist(), signed.to_list(), cols["price"].to_list(), strict=True))


def _source(data: DataSet, default_chunks: bool = False) -> Any:
    from quant.sim.backtest import FrameBarSource

    if data.daily and not default_chunks:
        return FrameBarSource(data.bars, chunk_sessions=DAILY_CHUNK_SESSIONS)
    return data.bars  # run_backtest wraps a frame in FrameBarSource's defaults


def _materialise(result: Any) -> Any:
    """Read every field of a result: the figures and derived frames are computed on first
    read (``quant.sim.result.Deferred``), so this times all of them too."""
    for name in (
        "equity",
        "daily",
        "orders",
        "fills",
        "round_trips",
        "tca",
        "tca_by_strategy",
        "stats",
    ):
        getattr(result, name)
    return result


def run_event(data: DataSet, default_chunks: bool = False, full: bool = False) -> list[Fill]:
    from quant.sim.backtest import run_backtest

    result = run_backtest(
        engine_config(data.daily), _strategy(), _source(data, default_chunks=default_chunks)
    )
    return _our_fills(data, _materialise(result) if full else result)


def run_fast_path(data: DataSet, full: bool = False) -> list[Fill]:
    from quant.sim.fast import run_fast

    result = run_fast(engine_config(data.daily), _strategy(), _source(data))
    return _our_fills(data, _materialise(result) if full else result)


def _backtrader_classes() -> tuple[type, type]:
    """``ExactCrossOver`` (the indicator) and ``Crossover`` (the strategy), built on import."""
    import itertools

    import backtrader as bt

    class ExactCrossOver(bt.Indicator):
        """backtrader's ``CrossOver`` rule on the SMAs of integer price units (+1 up, -1 down).

        ``once`` computes the whole line in one pass (runonce mode); ``next`` is the same rule
        bar by bar for the event mode.
        """

        lines = ("cross",)
        params = (("fast", FAST), ("slow", SLOW))

        def __init__(self) -> None:
            self.addminperiod(self.p.slow)
            self._sign = 0

        def _step(self, diff: int) -> float:
            if diff == 0:
                return 0.0
            sign = 1 if diff > 0 else -1
            previous, self._sign = self._sign, sign
            return float(sign) if previous and previous != sign else 0.0

        def once(self, start: int, end: int) -> None:
            fast, slow = self.p.fast, self.p.slow
            src = self.data.array
            dst = self.lines.cross.array
            units = [round(x * PRICE_UNITS) for x in itertools.islice(src, 0, end)]
            sums = list(itertools.accumulate(units, initial=0))
            step = self._step
            for i in range(start, end):
                fast_sum = sums[i + 1] - sums[i + 1 - fast]
                slow_sum = sums[i + 1] - sums[i + 1 - slow]
                dst[i] = step(fast_sum * slow - slow_sum * fast)

        def next(self) -> None:
            window = [round(x * PRICE_UNITS) for x in self.data.get(size=self.p.slow)]
            fast_sum, slow_sum = sum(window[-self.p.fast :]), sum(window)
            self.lines.cross[0] = self._step(fast_sum * self.p.slow - slow_sum * self.p.fast)

    class Crossover(bt.Strategy):
        """Long ``quantity`` on a cross up, flat on a cross down (market orders)."""

        params = (("exact", True), ("quantity", QUANTITY))

        def __init__(self) -> None:
            close = self.data.close
            if self.p.exact:
                self.cross = ExactCrossOver(close)
            else:
                fast = bt.ind.SMA(close, period=FAST)
                slow = bt.ind.SMA(close, period=SLOW)
                self.cross = bt.ind.CrossOver(fast, slow)
            self.fills: list[tuple[int, int, float, float]] = []

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                # The execution bits hold the prices as executed; ``executed.price`` is an
                # average (price x size / size), which float arithmetic can move by an ulp.
                for bit in order.executed.exbits:
                    self.fills.append(
                        (
                            len(self.data) - 1,  # the bar being processed: the fill's bar
                            int(bit.size),
                            float(bit.price),
                            float(bit.dt),
                        )
                    )

        def next(self) -> None:
            cross = self.cross[0]
            if cross > 0 and not self.position:
                self.buy(size=self.p.quantity)
            elif cross < 0 and self.position:
                self.close()

    return ExactCrossOver, Crossover


_BT: tuple[type, type] | None = None


def run_backtrader(data: DataSet, exact: bool = True) -> list[Fill]:
    import backtrader as bt

    global _BT
    if _BT is None:
        _BT = _backtrader_classes()
    _, crossover = _BT
    cerebro = bt.Cerebro(stdstats=False)
    if data.daily:
        feed = bt.feeds.PandasData(dataname=data.pandas, timeframe=bt.TimeFrame.Days)
    else:
        feed = bt.feeds.PandasData(
            dataname=data.pandas, timeframe=bt.TimeFrame.Minutes, compression=1
        )
    cerebro.adddata(feed)
    cerebro.addstrategy(crossover, exact=exact)
    cerebro.broker.setcash(INITIAL_CASH)
    cerebro.broker.setcommission(commission=0.0)
    cerebro.broker.set_coc(False)
    (strategy,) = cerebro.run(runonce=True)
    return _check_backtrader_times(data, strategy.fills)


def _check_backtrader_times(
    data: DataSet, fills: list[tuple[int, int, float, float]]
) -> list[Fill]:
    """The bar index of each fill, checked against backtrader's own execution time stamp."""
    import backtrader as bt

    slack = timedelta(days=1) if data.daily else timedelta(seconds=1)
    out: list[Fill] = []
    for k, size, price, dt in fills:
        when = bt.num2date(dt)
        bar = data.pandas.index[k].to_pydatetime()
        if not timedelta(0) <= when - bar < slack:
            raise RuntimeError(f"backtrader fill at {when} is not on bar {k} ({bar})")
        out.append((k, size, price))
    return out


def run_vectorbt(data: DataSet) -> list[Fill]:
    import numpy as np
    import vectorbt as vbt

    up, down = crossings(data.close, FAST, SLOW)
    entries = np.zeros_like(up)
    exits = np.zeros_like(down)
    entries[1:] = up[:-1]  # decided at t's close, filled at t+1's open
    exits[1:] = down[:-1]
    portfolio = vbt.Portfolio.from_signals(
        data.close_series,
        entries,
        exits,
        price=data.open_series,
        size=QUANTITY,
        size_type="amount",
        direction="longonly",
        init_cash=INITIAL_CASH,
        fees=0.0,
        slippage=0.0,
    )
    records = portfolio.orders.values
    signs = np.where(records["side"] == 0, 1, -1)
    signed = signs * records["size"].round().astype(np.int64)
    return list(
        zip(
            records["idx"].tolist(),
            signed.tolist(),
            records["price"].astype(np.float64).tolist(),
            strict=True,
        )
    )


RUNNERS: dict[str, Callable[[DataSet], list[Fill]]] = {
    "event": run_event,
    "fast": run_fast_path,
    "backtrader": run_backtrader,
    "vectorbt": run_vectorbt,
    "event_default_chunks": lambda data: run_event(data, default_chunks=True),
    "event_full": lambda data: run_event(data, full=True),
    "fast_full": lambda data: run_fast_path(data, full=True),
    "backtrader_stock": lambda data: run_backtrader(data, exact=False),
}


# -- speed -------------------------------------------------------------------------------------


def _time(run: Callable[[DataSet], list[Fill]], data: DataSet) -> tuple[float, list[Fill]]:
    gc.collect()
    started = time.perf_counter()
    fills = run(data)
    return time.perf_counter() - started, fills


def _first_difference(a: list[Fill], b: list[Fill]) -> str:
    for k, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"fill {k}: {x} vs {y}"
    return f"{len(a)} fills vs {len(b)}"


def measure_speed(data: DataSet, engines: Sequence[str], repeat: int) -> dict[str, Any]:
    """Warm every engine up, then time them ``repeat`` times, interleaved; check the trades."""
    samples: dict[str, list[float]] = {e: [] for e in engines}
    trades: dict[str, list[Fill]] = {}
    problems: list[str] = []
    cold: dict[str, float] = {}

    def record(engine: str, fills: list[Fill]) -> None:
        if engine not in trades:
            trades[engine] = fills
        elif fills != trades[engine]:
            problems.append(f"{engine} gave different trades on another run")

    for engine in engines:  # untimed warm-up (vectorbt's is its cold, compiling call)
        seconds, fills = _time(RUNNERS[engine], data)
        cold[engine] = seconds
        record(engine, fills)
        print(f"  {data.name:<6} warm-up {engine:<20} {seconds:8.3f} s", file=sys.stderr)
    for _ in range(repeat):
        for engine in engines:
            seconds, fills = _time(RUNNERS[engine], data)
            samples[engine].append(seconds)
            record(engine, fills)
            print(f"  {data.name:<6} {engine:<28} {seconds:8.3f} s", file=sys.stderr)

    reference = trades[ENGINES[0]]
    identical = {e: trades[e] == reference for e in engines}
    compared = [e for e in ENGINES if e in engines]
    for engine in compared:
        if not identical[engine]:
            problems.append(
                f"{engine} trades differ from {ENGINES[0]}'s: "
                f"{_first_difference(reference, trades[engine])}"
            )
    figures: dict[str, Any] = {}
    for engine in engines:
        best, median = min(samples[engine]), statistics.median(samples[engine])
        figures[engine] = {
            "samples_seconds": samples[engine],
            "best_seconds": best,
            "median_seconds": median,
            "bars_per_second_best": data.n / best,
            "bars_per_second_median": data.n / median,
            "warmup_seconds": cold[engine],
            "fills": len(trades[engine]),
            "trades_identical_to_event": identical[engine],
        }
    buys = [f for f in reference if f[1] > 0]
    return {
        "data": data.facts(),
        "engines": figures,
        "trades": {
            "compared_engines": compared,
            "identical": all(identical[e] for e in compared) and not problems,
            "fills": len(reference),
            "round_trips": sum(1 for f in reference if f[1] < 0),
            "open_at_end": len(buys) - sum(1 for f in reference if f[1] < 0),
            "first_fills": [_describe_fill(data, f) for f in reference[:4]],
            "last_fill": _describe_fill(data, reference[-1]) if reference else None,
            "problems": problems,
            "backtrader_stock_differs_by": _difference_count(
                reference, trades.get("backtrader_stock")
            ),
        },
    }


def _difference_count(reference: list[Fill], other: list[Fill] | None) -> dict[str, int] | None:
    if other is None:
        return None
    mine, theirs = set(reference), set(other)
    return {"fills": len(other), "only_ours": len(mine - theirs), "only_theirs": len(theirs - mine)}


def _describe_fill(data: DataSet, fill: Fill) -> dict[str, Any]:
    k, qty, price = fill
    return {"bar": k, "bar_open_time": _iso(int(data.ts_ns[k])), "quantity": qty, "price": price}


def speed_ratios(figures: dict[str, Any]) -> dict[str, float]:
    e = figures["engines"]
    return {
        "event_vs_backtrader_best": e["event"]["bars_per_second_best"]
        / e["backtrader"]["bars_per_second_best"],
        "event_vs_backtrader_median": e["event"]["bars_per_second_median"]
        / e["backtrader"]["bars_per_second_median"],
        "fast_vs_vectorbt_best": e["fast"]["best_seconds"] / e["vectorbt"]["best_seconds"],
        "fast_vs_vectorbt_median": e["fast"]["median_seconds"] / e["vectorbt"]["median_seconds"],
        "event_vs_backtrader_stock_best": e["event"]["bars_per_second_best"]
        / e["backtrader_stock"]["bars_per_second_best"]
        if "backtrader_stock" in e
        else math.nan,
    }


# -- memory ------------------------------------------------------------------------------------


def lake_root(directory: Path, symbols: int, sessions: int) -> Path:
    return directory / "lake" / f"syn{symbols}-s{sessions}-seed{SEED}-v{LAKE_VERSION}"


def ensure_lake(root: Path, symbols: int, sessions: int) -> dict[str, Any]:
    """The cached synthetic lake (built once; ``.complete`` marks a finished build)."""
    from quant.data.lake import Lake
    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    marker = root / ".complete"
    market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=symbols, n_sessions=sessions, seed=SEED, start=MEMORY_START)
    )
    days = market.sessions()
    built = None
    if not marker.exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        lake = Lake(root)
        rows = 0
        for chunk in market.iter_minute_bars():
            rows += lake.write("bars", chunk).rows_written
            print(f"  lake: {rows:,} bars written", file=sys.stderr)
        lake.write("corporate_actions", market.corporate_actions())
        built = time.perf_counter() - started
        marker.write_text(json.dumps({"bars": rows, "seconds": built}) + "\n")
    info = json.loads(marker.read_text())
    files = [p for p in root.rglob("*.parquet")]
    return {
        "path": str(root),
        "symbols": symbols,
        "sessions": sessions,
        "first_day": str(days[0]),
        "last_day": str(days[-1]),
        "days": [str(d) for d in days],
        "bars": info["bars"],
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "built_seconds_now": built,
        "built_seconds_first": info["seconds"],
    }


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """Peak resident memory of this process image (``VmHWM``).

    Not ``ru_maxrss``: Linux carries the high-water mark of the image replaced by ``exec``
    into it, so a child forked from this (large) benchmark process would report the parent's
    size. ``VmHWM`` belongs to the current address space only.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: KiB


def child_memory(args: argparse.Namespace) -> dict[str, Any]:
    """One backtest over the lake, as ``smart-trader backtest`` runs it; memory as it goes."""
    from quant.data.lake import Lake
    from quant.sim.backtest import BacktestConfig, run_backtest
    from quant.strategies import make_strategy

    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    config = BacktestConfig(start=start, end=end, name=args.strategy)
    strategy = make_strategy(args.strategy)
    rss_before = _rss_bytes()
    trail: list[int] = []
    result = None

    def progress(day: date) -> None:
        trail.append(_rss_bytes())

    started = time.perf_counter()
    result = run_backtest(config, strategy, Lake(args.lake), progress=progress)
    seconds = time.perf_counter() - started
    n = len(trail)
    return {
        "strategy": args.strategy,
        "start": args.start,
        "end": args.end,
        "seconds": seconds,
        "bars": int(result.extra["bars"]),
        "bars_per_second": result.extra["bars"] / seconds,
        "sessions": int(result.extra["sessions"]),
        "symbols": len(result.extra["symbols"]),
        "orders": result.orders.height,
        "fills": result.fills.height,
        "error": result.error,
        "rss_before_bytes": rss_before,
        "rss_after_bytes": _rss_bytes(),
        "peak_rss_bytes": _peak_rss_bytes(),
        "rss_by_decile_bytes": [trail[min(n - 1, n * k // 10)] for k in range(1, 11)] if n else [],
    }


def run_child(arguments: list[str]) -> dict[str, Any]:
    """This script in a fresh Python process; its last stdout line is its JSON figures."""
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child {arguments} failed:\n{done.stderr.strip()[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_memory(args: argparse.Namespace) -> dict[str, Any]:
    symbols, short, long = args.memory_symbols, args.memory_short, args.memory_long
    root = lake_root(Path(args.dir), symbols, long)
    lake = ensure_lake(root, symbols, long)
    days = [date.fromisoformat(d) for d in lake.pop("days")]
    runs = {}
    for label, n in (("short", short), ("long", long)):
        end = days[n] if n < len(days) else days[-1] + timedelta(days=1)
        figures = run_child(
            [
                "--child",
                "memory",
                "--lake",
                str(root),
                "--start",
                str(days[0]),
                "--end",
                str(end),
                "--strategy",
                args.memory_strategy,
            ]
        )
        figures["sessions_asked"] = n
        runs[label] = figures
        print(
            f"  memory {label:<5} {figures['sessions']} sessions, {figures['bars']:,} bars: "
            f"peak {_gb(figures['peak_rss_bytes']):.2f} GB in {figures['seconds']:.1f} s",
            file=sys.stderr,
        )
    return {"lake": lake, "runs": runs}


# -- the run -----------------------------------------------------------------------------------


def _gb(n: float) -> float:
    return n / 1e9


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("backtrader", "vectorbt", "numba", "numpy", "pandas", "polars", "skfolio"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def goals(speed: dict[str, Any], memory: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for name, figures in speed.items():
        ratios = figures["ratios"]
        n = figures["data"]["bars"]
        out.append(
            {
                "what": f"{name}: event engine bars/s vs backtrader ({n:,} bars)",
                "ratio": ratios["event_vs_backtrader_best"],
                "ratio_median": ratios["event_vs_backtrader_median"],
                "goal": f">= {GOALS['event_vs_backtrader']:g}x",
                "met": ratios["event_vs_backtrader_best"] >= GOALS["event_vs_backtrader"],
            }
        )
        out.append(
            {
                "what": f"{name}: fast path wall time vs vectorbt warm ({n:,} bars)",
                "ratio": ratios["fast_vs_vectorbt_best"],
                "ratio_median": ratios["fast_vs_vectorbt_median"],
                "goal": f"<= {GOALS['fast_vs_vectorbt']:g}x",
                "met": ratios["fast_vs_vectorbt_best"] <= GOALS["fast_vs_vectorbt"],
            }
        )
        out.append(
            {
                "what": f"{name}: trades identical in event, fast, backtrader, vectorbt",
                "fills": figures["trades"]["fills"],
                "goal": "identical",
                "met": figures["trades"]["identical"],
            }
        )
    if memory is not None:
        short, long = memory["runs"]["short"], memory["runs"]["long"]
        limit = GOALS["memory_peak_gb"]
        out.append(
            {
                "what": f"memory: {short['sessions']} sessions, {short['bars']:,} bars",
                "peak_gb": _gb(short["peak_rss_bytes"]),
                "goal": f"< {limit:g} GB",
                "met": _gb(short["peak_rss_bytes"]) < limit,
            }
        )
        ratio = long["peak_rss_bytes"] / short["peak_rss_bytes"]
        out.append(
            {
                "what": f"memory: {long['sessions']} sessions, {long['bars']:,} bars",
                "peak_gb": _gb(long["peak_rss_bytes"]),
                "ratio": ratio,
                "goal": f"< {limit:g} GB and <= {GOALS['memory_long_vs_short']:g}x the short run",
                "met": _gb(long["peak_rss_bytes"]) < limit
                and ratio <= GOALS["memory_long_vs_short"],
            }
        )
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = list(os.getloadavg())
    print("preparing data", file=sys.stderr)
    sets = [daily_data(args.daily_bars), minute_data(args.sessions)]
    engines = [*ENGINES, *EXTRA_ENGINES]
    speed = {}
    for data in sets:
        wanted = [e for e in engines if data.daily or e != "event_default_chunks"]
        figures = measure_speed(data, wanted, args.repeat)
        figures["ratios"] = speed_ratios(figures)
        speed[data.name] = figures
    memory = None if args.skip_memory else measure_memory(args)
    result = {
        "benchmark": "backtest_bench",
        "issue": 3,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(["python benchmarks/backtest_bench.py", *args.argv]).strip(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
            "note": "shared with other jobs: best and median of the repeats",
        },
        "versions": _versions(),
        "strategy": {
            "rule": (
                f"SMA({FAST}) vs SMA({SLOW}) of the closes, backtrader's CrossOver rule on "
                "integer price units; long only; market order at bar t's close, filled at bar "
                "t+1's open"
            ),
            "fast": FAST,
            "slow": SLOW,
            "quantity": QUANTITY,
            "initial_cash": INITIAL_CASH,
        },
        "repeat": args.repeat,
        "speed": speed,
        "memory": memory,
    }
    result["goals"] = goals(speed, memory)
    result["trades_identical"] = all(f["trades"]["identical"] for f in speed.values())
    return result


def table(result: dict[str, Any]) -> str:
    """The figures as Markdown: per engine and data set, then the goals."""
    speed = result["speed"]
    names = list(speed)
    head = "| engine | " + " | ".join(
        f"{n} ({speed[n]['data']['bars']:,} bars): best / median s, bars/s (best)" for n in names
    )
    lines = [head + " | fills |", "|---|" + "---|" * len(names) + "---|"]
    labels = {
        "event": "ours, event engine (`run_backtest`)",
        "event_default_chunks": "ours, event engine, frame in default 5-session chunks",
        "event_full": "ours, event engine, every result field read (figures, all frames)",
        "fast_full": "ours, fast path, every result field read (figures, all frames)",
        "fast": "ours, fast path (`run_fast`)",
        "backtrader": "backtrader 1.9.78, runonce, exact CrossOver",
        "backtrader_stock": "backtrader 1.9.78, runonce, stock SMA + CrossOver (floats)",
        "vectorbt": "vectorbt 1.2.0 `from_signals`, warm (incl. signals)",
    }
    for engine in [*ENGINES, *EXTRA_ENGINES]:
        cells, fills = [], []
        for n in names:
            e = speed[n]["engines"].get(engine)
            if e is None:
                cells.append("")
                continue
            cells.append(
                f"{e['best_seconds']:.3f} / {e['median_seconds']:.3f} s, "
                f"{e['bars_per_second_best']:,.0f}"
            )
            mark = "" if e["trades_identical_to_event"] else " (differ)"
            fills.append(f"{e['fills']}{mark}")
        lines.append(f"| {labels[engine]} | " + " | ".join(cells) + f" | {' / '.join(fills)} |")
    lines += ["", "| goal | measured | target | met? |", "|---|---|---|---|"]
    verdict = {True: "yes", False: "**no**"}
    for g in result["goals"]:
        if "ratio_median" in g:
            measured = f"{g['ratio']:.2f}x (median {g['ratio_median']:.2f}x)"
        elif "peak_gb" in g:
            measured = f"peak {g['peak_gb']:.2f} GB" + (
                f" ({g['ratio']:.2f}x the short run)" if "ratio" in g else ""
            )
        else:
            measured = f"{g['fills']} fills"
        lines.append(f"| {g['what']} | {measured} | {g['goal']} | {verdict[g['met']]} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--skip-memory", action="store_true", help="the speed part only")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per engine")
    parser.add_argument(
        "--sessions", type=int, default=None, help=f"minute data sessions ({YEAR_SESSIONS})"
    )
    parser.add_argument("--daily-bars", type=int, default=None, help="last N daily bars (all)")
    parser.add_argument("--memory-symbols", type=int, default=None)
    parser.add_argument("--memory-short", type=int, default=None, help="sessions (250)")
    parser.add_argument("--memory-long", type=int, default=None, help="sessions (1250)")
    parser.add_argument("--memory-strategy", default=MEMORY_STRATEGY)
    parser.add_argument("--dir", default=str(DEFAULT_DIR), help="cache (the lake) and figures")
    parser.add_argument(
        "--out", default=None, help="JSON figures (default DIR/backtest_bench.json)"
    )
    parser.add_argument("--child", choices=["memory"], help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    if args.sessions is None:
        args.sessions = QUICK_SESSIONS if quick else YEAR_SESSIONS
    if args.daily_bars is None and quick:
        args.daily_bars = QUICK_DAILY_BARS
    defaults = (
        QUICK_MEMORY if quick else (MEMORY_SYMBOLS, MEMORY_SESSIONS_SHORT, MEMORY_SESSIONS_LONG)
    )
    for name, value in zip(
        ("memory_symbols", "memory_short", "memory_long"), defaults, strict=True
    ):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if (
        args.repeat < 1
        or args.sessions < 1
        or (args.daily_bars is not None and args.daily_bars < 60)
    ):
        parser.error("need --repeat >= 1, --sessions >= 1 and --daily-bars >= 60")
    if not 1 <= args.memory_short <= args.memory_long:
        parser.error("need 1 <= --memory-short <= --memory-long")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (or, with ``--child``, one memory run) and return the figures.

    Exits with status 1 (after writing the figures) when the engines' trades differ.
    """
    args = parse_args(argv)
    if args.child:
        figures = child_memory(args)
        print(json.dumps(figures))
        return figures
    result = measure(args)
    out = Path(args.out) if args.out else Path(args.dir) / "backtest_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    for name, figures in result["speed"].items():
        t = figures["trades"]
        state = "identical" if t["identical"] else "NOT IDENTICAL"
        print(f"\n{name}: {t['fills']} fills ({t['round_trips']} round trips), trades {state}")
        for problem in t["problems"]:
            print(f"  {problem}")
    print(f"\nfigures: {out}")
    if not result["trades_identical"]:
        raise SystemExit(1)
    return result


if __name__ == "__main__":
    main()
