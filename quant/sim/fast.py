"""The vectorised fast path: the event engine's fills, visiting only the bars that matter.

A signal-driven strategy (``TargetPositionStrategy``) only acts where its target changes; the
event engine still walks every bar to find those places. Here the targets of the whole history
come from the strategy's vectorised ``signal_targets`` (numpy over the price arrays), and the
*same* ``BacktestEngine`` is driven through its session, timer, fill and order methods on a
sparse set of bars: the bars where a target changes, and the bars of symbols that have working
orders. Everything that decides a fill (risk checks, routing and phases, the fill model,
slippage, fees, the portfolio, corporate actions, expiries, the strategy's own ``rebalance``)
is the engine's code, so the fills are the event engine's fills, not an approximation of them;
a test runs both on the same data and compares the fills list, with costs on and off.

What is not visited is reconstructed exactly where something reads it: before a decision or a
timed event (an intraday mark, an order entering at a later phase) the last prices of the
symbols with positions or orders are set as of that moment; at the session end every symbol's
last price is its close, as in the event engine.

Scope: a ``TargetPositionStrategy`` that acts only through its target (it must not override
``on_bar``, ``on_fill``, ``on_order_update``, ``on_session_start``, ``on_session_end`` or
``rebalance``), with ``signal_targets`` implemented. The history is loaded at once (the
targets need it whole), so memory grows with the range, unlike the streaming event engine.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from numba import njit

from quant.data.lake import Lake
from quant.execution.orders import OrderStatus, OrderType
from quant.market.instrument import Instrument
from quant.metrics.tca import TCA_COLUMNS, tca_by_strategy
from quant.sim.backtest import (
    BacktestConfig,
    BacktestEngine,
    BarSource,
    FrameBarSource,
    HaltWindow,
    SessionRules,
    _Session,
    _sessions,
    _StrategyFailure,
    action_events,
    session_times,
    session_times_cache,
    source_for,
    summary_figures,
)
from quant.sim.costs import TAKER
from quant.sim.result import (
    DAILY_SCHEMA,
    EQUITY_SCHEMA,
    FILL_SCHEMA,
    ORDER_SCHEMA,
    ROUND_TRIP_SCHEMA,
    TS,
    BacktestResult,
    Deferred,
)
from quant.sim.strategy import Bar, TargetPositionStrategy, is_inlined_on_bar

_FIXED = ("on_bar", "on_fill", "on_order_update", "on_session_start", "on_session_end", "rebalance")


def check_fast_strategy(strategy: object) -> TargetPositionStrategy:
    """``strategy`` if the fast path can run it exactly, else ``TypeError`` saying why."""
    if not isinstance(strategy, TargetPositionStrategy):
        raise TypeError(
            f"the fast path runs TargetPositionStrategy subclasses, not {type(strategy).__name__}"
        )
    overridden = [
        name
        for name in _FIXED
        if getattr(type(strategy), name) is not getattr(TargetPositionStrategy, name)
        and not (name == "on_bar" and is_inlined_on_bar(getattr(type(strategy), name)))
    ]
    if overridden:
        raise TypeError(
            f"{type(strategy).__name__} overrides {', '.join(overridden)}: the fast path cannot "
            "reproduce what it does on every bar; use run_backtest"
        )
    if type(strategy).signal_targets is TargetPositionStrategy.signal_targets:
        raise TypeError(f"{type(strategy).__name__} has no vectorised signal_targets")
    return strategy


def run_fast(
    config: BacktestConfig,
    strategy: TargetPositionStrategy,
    data: Lake | str | Path | pl.DataFrame | BarSource,
    *,
    instruments: Iterable[Instrument] | None = None,
    halts: Iterable[HaltWindow] = (),
    corporate_actions: pl.DataFrame | None = None,
    progress: Callable[[date], None] | None = None,
) -> BacktestResult:
    """Backtest a signal-driven strategy on the fast path (same result as ``run_backtest``)."""
    check_fast_strategy(strategy)
    source = source_for(data, config, corporate_actions)
    halts = list(halts)
    instruments = list(instruments) if instruments is not None else None

    def engine() -> BacktestEngine:
        return BacktestEngine(
            config, strategy, source, instruments=instruments, halts=halts, progress=progress
        )

    if progress is None and _kernel_applies(config, strategy, halts):
        result = _kernel(engine(), strategy)
        if result is not None:
            return result
    return _FastDriver(engine(), strategy).run()


class _Arrays:
    """The history in processing order as numpy columns (sliced per session)."""

    def __init__(
        self, ordered: pl.DataFrame, names: dict[str, str], target: np.ndarray, decide: np.ndarray
    ) -> None:
        self.names = sorted(names)
        code = {name: k for k, name in enumerate(self.names)}
        self.code = ordered["symbol"].replace_strict(code, return_dtype=pl.Int32).to_numpy()
        self.names = [names[x] for x in self.names]
        rid = ordered["_rid"].to_numpy()
        self.target = target[rid]
        self.decide = decide[rid]
        self.ts = ordered["ts"].dt.epoch("ns").to_numpy()
        self.te = ordered["ts_end"].dt.epoch("ns").to_numpy()
        self.open = ordered["open"].to_numpy()
        self.high = ordered["high"].to_numpy()
        self.low = ordered["low"].to_numpy()
        self.close = ordered["close"].to_numpy()
        self.volume = ordered["volume"].to_numpy()
        self.vwap = ordered["vwap"].to_numpy()
        self.trades = ordered["trade_count"].to_numpy()
        self.cumv = ordered["_cumv"].to_numpy()


class _FastDriver:
    def __init__(self, engine: BacktestEngine, strategy: TargetPositionStrategy) -> None:
        self.e = engine
        self.strategy = strategy

    def run(self) -> BacktestResult:
        e = self.e
        try:
            e.start()
            # the whole history in processing order (the engine's order of events): chunks
            # come in time order, so sorting each one puts the whole in order without the
            # memory of one big sort
            chunks = [c.sort("day", "ts_end", maintain_order=True) for c in e.source.chunks()]
            if chunks:
                ordered = (
                    pl.concat(chunks, how="vertical_relaxed")
                    .with_row_index("_rid")
                    .with_columns(pl.col("volume").cum_sum().over("day", "symbol").alias("_cumv"))
                )
                del chunks
                sessions = list(_sessions(ordered, e._names, as_lists=False, presorted=True))
                target, decide = self._targets(ordered, sessions)
                arrays = _Arrays(ordered, e._names, target, decide)
                del ordered, target, decide
                offset = 0
                for session in sessions:
                    self._session(session, arrays, offset)
                    offset += session.n
        except _StrategyFailure as failure:
            e.error = failure.message
        return e.finish()

    def _targets(
        self, bars: pl.DataFrame, sessions: list[_Session]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Targets and decision points per row id, with the corporate actions placed and
        priced exactly as the engine will deliver them."""
        e = self.e
        last = dict(e.last)
        applied = e._applied_through
        events = []
        actions = e._actions
        ex_dates = sorted(actions["ex_date"].to_list()) if actions.height else []
        for s in sessions:
            lo = bisect.bisect_right(ex_dates, applied) if applied is not None else 0
            if lo < bisect.bisect_right(ex_dates, s.day):
                due = actions.filter(pl.col("ex_date") <= s.day)
                if applied is not None:
                    due = due.filter(pl.col("ex_date") > applied)
                for _, symbol, pf, sf, _ in action_events(due, last):
                    events.append((symbol, s.day, pf, sf))
            applied = s.day
            last.update(s.closes)
        frame = pl.DataFrame(
            events,
            schema={
                "symbol": pl.String,
                "ex_date": pl.Date,
                "price_factor": pl.Float64,
                "share_factor": pl.Float64,
            },
            orient="row",
        )
        columns = ("_rid", "symbol", "ts", "open", "high", "low", "close", "volume", "day")
        ordered = bars.select(columns).sort("symbol", "ts")
        signals = self.strategy.signal_targets(ordered, frame)
        rid = ordered["_rid"].to_numpy()
        del ordered
        target = np.zeros(bars.height, dtype=np.int64)
        decide = np.zeros(bars.height, dtype=bool)
        target[rid] = signals.target
        decide[rid] = signals.decide
        return target, decide

    def _session(self, s: _Session, a: _Arrays, offset: int) -> None:
        e = self.e
        strategy = self.strategy
        ctx = e.ctx
        e.open_session(s)
        n = s.n
        window = slice(offset, offset + n)
        tgt = a.target[window]
        dec = a.decide[window]
        ts, te_arr = a.ts[window], a.te[window]
        te = te_arr.tolist()
        op, hi, lo, cl = a.open[window], a.high[window], a.low[window], a.close[window]
        vo, vw, tc, cv = a.volume[window], a.vwap[window], a.trades[window], a.cumv[window]
        row_symbol = a.code[window]
        order = np.argsort(row_symbol, kind="stable")
        cut = np.flatnonzero(np.diff(row_symbol[order])) + 1
        positions: dict[str, list[int]] = {
            a.names[int(row_symbol[g[0]])]: g.tolist() for g in np.split(order, cut) if g.size
        }
        names = a.names
        open_last = dict(e.last)
        heap = np.flatnonzero(dec).tolist()
        heapq.heapify(heap)
        queued: dict[str, int] = {}
        cursor = -1

        def refresh(p: int) -> None:
            """Last prices of the symbols that matter, as of the bars before position ``p``."""
            wanted = {n for n, q in e.pos.items() if q} | set(e.open_q)
            for name in wanted:
                idx = positions.get(name)
                k = bisect.bisect_left(idx, p) - 1 if idx else -1
                if k >= 0:
                    e.last[name] = float(cl[idx[k]])
                elif name in open_last:
                    e.last[name] = open_last[name]

        def schedule(after: int) -> None:
            """Queue the next bar of every symbol that has working orders."""
            for name, states in e.working.items():
                if not states:
                    continue
                q = queued.get(name)
                if q is not None and q > after:
                    continue
                idx = positions.get(name)
                if not idx:
                    continue
                k = bisect.bisect_right(idx, after)
                if k < len(idx):
                    queued[name] = idx[k]
                    heapq.heappush(heap, idx[k])

        schedule(cursor)
        t_end = s.t_end
        while True:
            nxt = heap[0] if heap else None
            timer = e.next_timer
            if nxt is not None and nxt <= cursor:
                heapq.heappop(heap)
                continue
            if nxt is None and timer > t_end:
                break
            if nxt is None or timer < te[nxt]:
                x = int(timer)
                p = bisect.bisect_right(te, x)
                refresh(p)
                e.fire_timers(x, inclusive=True)
                schedule(max(cursor, p - 1))
                continue
            i = heapq.heappop(heap)
            t = te[i]
            e.clock.advance_to(t)
            name = names[row_symbol[i]]
            if queued.get(name) == i:
                del queued[name]
            bar = Bar(
                name,
                int(ts[i]),
                t,
                float(op[i]),
                float(hi[i]),
                float(lo[i]),
                float(cl[i]),
                int(vo[i]),
                float(vw[i]),
                int(tc[i]),
            )
            if e.working.get(name):
                e.fill_bars(name, bar, int(cv[i]))
            e.last[name] = bar.close
            if dec[i]:
                refresh(i + 1)
                strategy.targets[name] = int(tgt[i])
                try:
                    strategy.rebalance(ctx, name)
                except _StrategyFailure:
                    raise
                except Exception as exc:
                    raise _StrategyFailure(e._blame("on_bar", name, t, exc)) from exc
            cursor = i
            schedule(cursor)
        for name, close in s.closes.items():
            e.last[name] = close
        e.bars_processed += s.n
        e.close_session()


# ------------------------------------------------------------------------------ the kernel
#
# The simple case in arrays: bars-mode market orders toward a target, every order filled
# whole at the next bar of its symbol (checked: participation, funds, lots, limits), no
# costs, no corporate actions, halts, guards, marks or TCA. Then an order's life is known
# without running it: decided at bar t's close for ``target - previous target`` shares,
# filled at bar t+1's open. Anything outside that returns None and the engine-driving path
# runs instead, so the kernel never gives a result the engine would not.

_KERNEL_HOOKS = ("on_start", "on_stop", "on_session_start", "on_session_end", "rebalance")
_RISK_OFF = (
    "max_order_notional",
    "fat_finger_adv_pct",
    "fat_finger_notional",
    "max_position_notional",
    "max_symbol_exposure_pct",
    "max_sector_gross_pct",
    "max_sector_net_pct",
    "max_gross_exposure_pct",
    "max_net_exposure_pct",
    "max_orders_per_window",
    "max_order_to_trade_ratio",
)
"""Limits the kernel does not evaluate: any of them set sends the run to the engine."""
_PRICE_UNITS = 10_000
_BIG_PRICE = 1e11
"""Below this a price with at most 4 decimals is its own shortest repr (money is exact)."""


@njit(cache=True)
def _traded_per_session(session: np.ndarray, value: np.ndarray, n_sessions: int) -> np.ndarray:
    """Sequential per-session sums, as the engine adds them fill by fill."""
    out = np.zeros(n_sessions)
    for k in range(value.size):
        out[session[k]] += value[k]
    return out


@njit(cache=True)
def _round_trips(
    sym: np.ndarray, side: np.ndarray, qty: np.ndarray, price: np.ndarray, n_symbols: int
) -> tuple[np.ndarray, ...]:
    """``RoundTripTracker.on_fill`` over the fills (no fees), returning closed trips as
    (fill index of entry, fill index of exit, symbol, side, entered, entry value, exited,
    exit value) columns."""
    position = np.zeros(n_symbols, np.int64)
    t_side = np.zeros(n_symbols, np.int64)
    t_entry = np.full(n_symbols, -1, np.int64)
    entered = np.zeros(n_symbols, np.int64)
    exited = np.zeros(n_symbols, np.int64)
    entry_value = np.zeros(n_symbols)
    exit_value = np.zeros(n_symbols)
    n = sym.size
    o_entry = np.empty(n, np.int64)
    o_exit = np.empty(n, np.int64)
    o_sym = np.empty(n, np.int64)
    o_side = np.empty(n, np.int64)
    o_entered = np.empty(n, np.int64)
    o_ev = np.empty(n)
    o_exited = np.empty(n, np.int64)
    o_xv = np.empty(n)
    m = 0
    for k in range(n):
        s = sym[k]
        sd = side[k]
        q = position[s]
        left = qty[k]
        p = price[k]
        while left:
            if q == 0 or t_entry[s] < 0:
                t_side[s] = sd
                t_entry[s] = k
                entered[s] = 0
                exited[s] = 0
                entry_value[s] = 0.0
                exit_value[s] = 0.0
            if sd == t_side[s]:
                entered[s] += left
                entry_value[s] += left * p
                q += sd * left
                left = 0
            else:
                take = min(left, abs(q))
                exited[s] += take
                exit_value[s] += take * p
                q += sd * take
                left -= take
                if q == 0:
                    o_entry[m] = t_entry[s]
                    o_exit[m] = k
                    o_sym[m] = s
                    o_side[m] = t_side[s]
                    o_entered[m] = entered[s]
                    o_ev[m] = entry_value[s]
                    o_exited[m] = exited[s]
                    o_xv[m] = exit_value[s]
                    m += 1
                    t_entry[s] = -1
        position[s] = q
    return (
        o_entry[:m],
        o_exit[:m],
        o_sym[:m],
        o_side[:m],
        o_entered[:m],
        o_ev[:m],
        o_exited[:m],
        o_xv[:m],
    )


def _kernel_applies(
    config: BacktestConfig, strategy: TargetPositionStrategy, halts: list[HaltWindow]
) -> bool:
    """The static half of the kernel's scope (the data-dependent half is in ``_kernel``)."""
    if SessionRules(config.session_rules) is not SessionRules.BARS or config.costs != "none":
        return False
    if halts or config.tca or config.mark_interval_minutes is not None:
        return False
    if (
        config.drawdown_reduce_at is not None
        or config.drawdown_halt_at is not None
        or config.daily_loss_pct is not None
    ):
        return False
    risk = config.risk
    if any(getattr(risk, name) is not None for name in _RISK_OFF):
        return False
    if risk.check_buying_power and not config.use_unsettled_proceeds:
        return False
    cash = float(config.initial_cash)
    if round(cash * 100) / 100 != cash or cash >= 1e13:
        return False
    cls = type(strategy)
    if any(getattr(cls, h) is not getattr(TargetPositionStrategy, h) for h in _KERNEL_HOOKS):
        return False
    return not any(strategy.targets.values())


def _const(value: object, n: int, dtype: pl.DataType) -> pl.Series:
    """``n`` copies of ``value`` (``pl.repeat`` has a fixed cost of a query)."""
    return pl.Series([value] * n, dtype=dtype)


def _non_decreasing(a: np.ndarray) -> bool:
    return bool(a.size < 2 or (a[1:] >= a[:-1]).all())


def _bars_of(source: BarSource) -> pl.DataFrame:
    """The history sorted by symbol then time."""
    if isinstance(source, FrameBarSource):
        frame = source.frame
    else:
        chunks = list(source.chunks())
        if not chunks:
            return pl.DataFrame()
        frame = pl.concat(chunks, how="vertical_relaxed")
    if frame["symbol"].is_sorted() and frame["ts"].is_sorted():
        return frame  # (symbol, ts) in order already: the stable sort would not move a row
    return frame.sort("symbol", "ts", maintain_order=True)


def _actions_in_sessions(source: BarSource, names: dict[str, str], last_day: date) -> bool:
    """Whether a corporate action would reach the portfolio or the strategy during the run
    (actions the warm-up already consumed do not)."""
    actions = source.corporate_actions()
    if actions.height == 0:
        return False
    actions = actions.filter(pl.col("symbol").is_in(list(names)))
    if actions.height == 0:
        return False
    due = actions.filter(pl.col("ex_date") <= last_day)
    if due.height == 0:
        return False
    warm = source.warmup()
    if warm.height == 0:
        return True
    return bool((due["ex_date"] > warm["day"].max()).any())


def _session_ends(
    engine: BacktestEngine, days: list[date], first_ts: np.ndarray, last_te: np.ndarray
) -> np.ndarray:
    """Each session's end (the close mark's time), as ``open_session`` computes it."""
    t0 = first_ts.astype(np.int64).copy()
    t_end = last_te.astype(np.int64).copy()
    cal = engine.calendar
    if cal is not None:
        cache = session_times_cache(cal)
        for k, day in enumerate(days):
            info = session_times(cal, day, cache)
            if info is not None:
                t0[k] = min(info.first_order_ns, int(t0[k]))
                t_end[k] = max(info.last_trade_ns, int(t_end[k]))
    return np.maximum.accumulate(np.maximum(t_end, t0))


def _kernel(engine: BacktestEngine, strategy: TargetPositionStrategy) -> BacktestResult | None:
    """The whole run in arrays, or None when the run is outside the kernel's scope."""
    config = engine.config
    source = engine.source
    bars = _bars_of(source)
    if bars.height == 0:
        return None
    names = sorted(engine._names)
    code = {name: k for k, name in enumerate(names)}
    n_symbols = len(names)
    day_series = bars["day"]
    day_int = day_series.cast(pl.Int32).to_numpy()
    if _non_decreasing(day_int):
        days_int = day_int[np.concatenate(([True], day_int[1:] != day_int[:-1]))]
    else:
        days_int = np.unique(day_int)
    if _actions_in_sessions(source, engine._names, day_series.max()):
        return None
    columns = ("symbol", "ts", "open", "high", "low", "close", "volume", "day")
    empty_actions = pl.DataFrame(
        schema={
            "symbol": pl.String,
            "ex_date": pl.Date,
            "price_factor": pl.Float64,
            "share_factor": pl.Float64,
        }
    )
    signals = strategy.signal_targets(bars.select(columns), empty_actions)
    target = np.asarray(signals.target, dtype=np.int64)
    decide = np.asarray(signals.decide, dtype=bool)

    if n_symbols == 1:
        sym = np.zeros(bars.height, dtype=np.int64)
    else:
        sym = bars["symbol"].replace_strict(code, return_dtype=pl.Int64).to_numpy()
    te = bars["ts_end"].dt.epoch("ns").to_numpy()
    ts = bars["ts"].dt.epoch("ns").to_numpy()
    opens = bars["open"].to_numpy()
    closes = bars["close"].to_numpy()
    volume = bars["volume"].to_numpy()
    n = sym.size
    session = np.searchsorted(days_int, day_int)
    # processing order: by day, close time, then the source's order (symbol)
    if _non_decreasing(session) and _non_decreasing(te):
        rank = np.arange(n)  # already in processing order (one symbol, say): lexsort's answer
    else:
        order = np.lexsort((te, session))
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)

    # orders: where a decision moves the target off the previous one (the position, as every
    # earlier order has filled by the time the symbol's next bar is decided on)
    d = np.flatnonzero(decide)
    tgt = target[d]
    prev = np.zeros_like(tgt)
    if d.size:
        prev[1:] = tgt[:-1]
        new_symbol = np.ones(d.size, bool)
        new_symbol[1:] = sym[d[1:]] != sym[d[:-1]]
        prev[new_symbol] = 0
    sends = tgt != prev
    r = d[sends]
    delta = (tgt - prev)[sends]
    tgt = tgt[sends]
    # in the order the engine sends them
    by_time = np.argsort(rank[r], kind="stable")
    r, delta, tgt = r[by_time], delta[by_time], tgt[by_time]
    side = np.where(delta > 0, 1, -1).astype(np.int64)
    qty = np.abs(delta)
    osym = sym[r]
    f = r + 1
    has_fill = f < n
    has_fill[has_fill] = sym[f[has_fill]] == osym[has_fill]
    fr = f[has_fill]

    # the checks that would change an order's fate: fall back rather than guess
    risk = config.risk
    if not risk.allow_short and (tgt < 0).any():
        return None
    lots = np.array([engine.instruments[s].lot_size for s in names], dtype=np.int64)
    if (qty % lots[osym]).any():
        return None
    if risk.max_order_quantity is not None and (qty > risk.max_order_quantity).any():
        return None
    if risk.max_position_shares is not None and (np.abs(tgt) > risk.max_position_shares).any():
        return None
    fq = qty[has_fill]
    cap = (config.max_participation * volume[fr] + 1e-9).astype(np.int64)
    cap[volume[fr] <= 0] = 0
    if (fq > cap).any():
        return None
    price = opens[fr]
    if not (np.isfinite(price).all() and (price > 0).all() and (price < _BIG_PRICE).all()):
        return None
    units = np.round(price * _PRICE_UNITS).astype(np.int64)
    if (units / _PRICE_UNITS != price).any():
        return None
    if fq.size and (fq.max() > (2**62) // max(int(units.max()), 1)):
        return None

    # fills in the engine's order, cash in kuruş (half up, exact), as the portfolio books it
    fside = side[has_fill]
    fsym = osym[has_fill]
    fpos = rank[fr]
    fill_order = np.argsort(fpos, kind="stable")
    fpos = fpos[fill_order]
    gross_units = fq * units
    kurus = (gross_units + 50) // 100
    amount = -fside * kurus
    cash0 = round(float(config.initial_cash) * 100)
    cum_kurus = cash0 + np.cumsum(amount[fill_order])

    if risk.check_buying_power and (side > 0).any():
        # funds at each buy: the cash after the fills before it, less other symbols' open
        # buys (bounded by their largest buy at their highest close)
        buys = side > 0
        before = np.searchsorted(fpos, rank[r[buys]])
        cash_at = np.where(before > 0, cum_kurus[np.maximum(before - 1, 0)], cash0) / 100.0
        value = qty[buys] * closes[r[buys]]
        bound = np.zeros(n_symbols)
        top_close = np.zeros(n_symbols)
        np.maximum.at(top_close, sym, closes)
        np.maximum.at(bound, osym[buys], qty[buys] * top_close[osym[buys]])
        others = bound.sum() - bound[osym[buys]]
        if (value + others > cash_at * (1 - 1e-9) - 1.0).any():
            return None

    # sessions: close marks at each session's end
    n_sessions = days_int.size
    per_session = np.bincount(session, minlength=n_sessions)
    end_pos = np.cumsum(per_session) - 1
    first_ts = np.full(n_sessions, np.iinfo(np.int64).max)
    np.minimum.at(first_ts, session, ts)
    last_te = np.full(n_sessions, np.iinfo(np.int64).min)
    np.maximum.at(last_te, session, te)
    days = day_series.unique().sort().to_list()
    t_end = _session_ends(engine, days, first_ts, last_te)
    fill_session = session[fr][fill_order]
    n_fills = fpos.size
    cash_end = np.searchsorted(fpos, end_pos, side="right")
    cash_k = np.where(cash_end > 0, cum_kurus[np.maximum(cash_end - 1, 0)], cash0) / 100.0
    mv = np.zeros(n_sessions)
    gross = np.zeros(n_sessions)
    fq_sorted = fq[fill_order]
    fside_sorted = fside[fill_order]
    fsym_sorted = fsym[fill_order]
    signed = fside_sorted * fq_sorted
    starts = np.searchsorted(sym, np.arange(n_symbols))
    stops = np.searchsorted(sym, np.arange(n_symbols), side="right")
    _, first_fill = np.unique(fsym_sorted, return_index=True)
    held_order = np.unique(fsym_sorted)[np.argsort(first_fill)]
    for s in held_order.tolist():
        mine = fsym_sorted == s
        qpath = np.cumsum(signed[mine])
        k = np.searchsorted(fpos[mine], end_pos, side="right")
        q = np.where(k > 0, qpath[np.maximum(k - 1, 0)], 0)
        rows = np.arange(starts[s], stops[s])
        j = np.searchsorted(session[rows], np.arange(n_sessions), side="right") - 1
        px = np.where(j >= 0, closes[rows[np.maximum(j, 0)]], 0.0)
        v = q * px
        mv = mv + v
        gross = gross + np.abs(v)
    equity = cash_k + mv
    prev_eq = np.concatenate(([float(config.initial_cash)], equity[:-1]))
    fill_price = price[fill_order]
    traded = _traded_per_session(fill_session, fq_sorted * fill_price, n_sessions)

    # frames
    sid = strategy.strategy_id
    n_orders = r.size
    # f"{sid}-{k:06d}" for k = 1..n, as StrategyContext.next_order_id makes them
    if n_orders < 4096:  # (a Python list is quicker for few; polars for many)
        ids = [f"{sid}-{k:06d}" for k in range(1, n_orders + 1)]
        ids_series = pl.Series("client_order_id", ids, dtype=pl.String)
    else:
        ids_series = pl.select(
            (
                pl.lit(f"{sid}-")
                + pl.int_range(1, n_orders + 1, dtype=pl.Int64).cast(pl.String).str.zfill(6)
            ).alias("client_order_id")
        ).to_series()
    fill_of_order = np.flatnonzero(has_fill)[fill_order]
    fills = pl.DataFrame(
        {
            "ts": pl.Series(te[fr][fill_order]).cast(TS),
            "client_order_id": ids_series.gather(fill_of_order),
            "symbol": pl.Series(fsym_sorted).replace_strict(
                dict(enumerate(names)), return_dtype=pl.String
            ),
            "side": pl.Series(fside_sorted, dtype=pl.Int8),
            "quantity": pl.Series(fq_sorted, dtype=pl.Int64),
            "price": pl.Series(fill_price, dtype=pl.Float64),
            "fees": pl.Series(np.zeros(n_fills), dtype=pl.Float64),
            "liquidity": _const(TAKER, n_fills, pl.String),
        },
        schema=FILL_SCHEMA,
    )
    last_session_end = int(t_end[-1])
    status = _const(str(OrderStatus.FILLED), n_orders, pl.String)
    reason = _const(_FILLED_REASON, n_orders, pl.String)
    unfilled = np.flatnonzero(~has_fill)
    if unfilled.size:
        # no later bar of the symbol: held off-session at the end, or working and expired
        held = te[r[unfilled]] >= last_session_end
        status = status.scatter(
            unfilled,
            pl.Series(
                np.where(held, str(OrderStatus.CANCELLED), str(OrderStatus.EXPIRED)).tolist(),
                dtype=pl.String,
            ),
        )
        reason = reason.scatter(
            unfilled,
            pl.Series(np.where(held, _CANCELLED_AT_END, _EXPIRED_AT_END).tolist(), dtype=pl.String),
        )
    avg = np.full(n_orders, np.nan)
    avg[has_fill] = (0.0 + fill_price[np.argsort(fill_order)] * fq) / fq
    orders = pl.DataFrame(
        {
            "client_order_id": ids_series,
            "strategy_id": _const(str(sid), n_orders, pl.String),
            "symbol": pl.Series(osym).replace_strict(
                dict(enumerate(names)), return_dtype=pl.String
            ),
            "side": pl.Series(side, dtype=pl.Int8),
            "quantity": pl.Series(qty, dtype=pl.Int64),
            "order_type": _const(str(OrderType.MARKET), n_orders, pl.String),
            "limit_price": _const(None, n_orders, pl.Float64),
            "ts": pl.Series(te[r]).cast(TS),
            "status": status,
            "filled_qty": pl.Series(np.where(has_fill, qty, 0), dtype=pl.Int64),
            "avg_price": pl.Series(avg, dtype=pl.Float64, nan_to_null=True),
            "fees": pl.Series(np.zeros(n_orders), dtype=pl.Float64),
            "reject_code": _const(None, n_orders, pl.String),
            "reason": reason,
        },
        schema=ORDER_SCHEMA,
    )

    def daily() -> pl.DataFrame:
        return pl.DataFrame(
            {
                "day": days,
                "equity": equity,
                "returns": equity / prev_eq - 1.0,
                "gross_exposure": gross,
                "net_exposure": mv,
                "turnover": traded / prev_eq,
            },
            schema=DAILY_SCHEMA,
        )

    def equity_frame() -> pl.DataFrame:
        return pl.DataFrame(
            {
                "ts": pl.Series(t_end).cast(TS),
                "cash": cash_k,
                "market_value": mv,
                "equity": equity,
                "gross_exposure": gross,
                "net_exposure": mv,
            },
            schema=EQUITY_SCHEMA,
        )

    def trips() -> pl.DataFrame:
        e_in, e_out, t_sym, t_side, entered, ev, exited, xv = _round_trips(
            fsym_sorted, fside_sorted, fq_sorted, fill_price, n_symbols
        )
        fill_ts = te[fr][fill_order]
        entry_price = ev / entered
        exit_price = xv / exited
        cost = ev * (exited / entered)
        pnl = t_side * (xv - cost) - 0.0
        return pl.DataFrame(
            {
                "symbol": pl.Series(t_sym).replace_strict(
                    dict(enumerate(names)), return_dtype=pl.String
                ),
                "side": pl.Series(t_side, dtype=pl.Int8),
                "quantity": pl.Series(entered, dtype=pl.Int64),
                "entry_ts": pl.Series(fill_ts[e_in]).cast(TS),
                "exit_ts": pl.Series(fill_ts[e_out]).cast(TS),
                "entry_price": entry_price,
                "exit_price": exit_price,
                "pnl": pnl,
                "return": np.where(cost != 0, pnl / np.where(cost != 0, cost, 1.0), np.nan),
            },
            schema=ROUND_TRIP_SCHEMA,
        )

    final = {}
    for s_code, t in zip(sym[d].tolist(), target[d].tolist(), strict=True):
        final[names[s_code]] = t
    strategy.targets.update(final)
    engine.days = days
    engine.traded = traded.tolist()
    engine.bars_processed = n
    return _assemble(
        engine, Deferred(equity_frame), Deferred(daily), orders, fills, Deferred(trips)
    )


_FILLED_REASON = ""
_EXPIRED_AT_END = "day order expired"
_CANCELLED_AT_END = "the backtest ended before the next session"


def _assemble(
    engine: BacktestEngine,
    equity: Deferred,
    daily: Deferred,
    orders: pl.DataFrame,
    fills: pl.DataFrame,
    trips: Deferred,
) -> BacktestResult:
    """The ``BacktestResult`` the engine's ``_result`` builds, from the kernel's frames."""
    strategy = engine.strategy
    initial = float(engine.config.initial_cash)
    scalars = engine._stat_scalars()
    result = BacktestResult(
        equity=equity,
        daily=daily,
        orders=orders,
        fills=fills,
        round_trips=trips,
        tca=Deferred(lambda: pl.DataFrame(schema=TCA_COLUMNS)),
        tca_by_strategy=Deferred(lambda: tca_by_strategy(result.tca)),
        stats=Deferred(
            lambda: summary_figures(
                result.daily, orders, fills, result.round_trips, initial, scalars
            )
        ),
        config=engine._config_record(),
        error=None,
        synthetic=bool(engine.source.synthetic),
        strategy=strategy.name,
        name=engine.config.name or strategy.name,
        extra={**engine._extra(), "risk_events": []},
    )
    return result
