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

from quant.data.lake import Lake
from quant.market.instrument import Instrument
from quant.sim.backtest import (
    BacktestConfig,
    BacktestEngine,
    BarSource,
    HaltWindow,
    _Session,
    _sessions,
    _StrategyFailure,
    action_events,
    source_for,
)
from quant.sim.result import BacktestResult
from quant.sim.strategy import Bar, TargetPositionStrategy

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
    engine = BacktestEngine(
        config, strategy, source, instruments=instruments, halts=halts, progress=progress
    )
    return _FastDriver(engine, strategy).run()


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
