"""Out-of-sample probabilities as a trading strategy, for the backtest engine and its fast path.

``PredictionStrategy`` turns a frame of predictions into target positions:

* a prediction is ``(symbol, ts, p_up, p_down)`` and optionally ``expires``: made at ``ts``
  (the close of the research bar its features were computed on), valid until ``expires``;
* its **side** is +1 when ``p_up > threshold`` and ``p_up >= p_down``, -1 when
  ``p_down > threshold`` and ``p_down > p_up`` (0 instead when ``long_only``), else 0 (flat);
* it takes effect on the **next bar**: the first backtest bar of the symbol that *opens* at
  or after ``ts``. The strategy decides at that bar's close and the engine fills the order on
  a later bar (never the deciding one), so no price after the decision is used, and the
  prediction, known at ``ts``, is older than every bar it acts on;
* the latest prediction rules: at a bar the side is that of the last prediction made at or
  before the bar's open, or 0 once the bar opens at or after that prediction's ``expires``
  (no ``expires``: until the next prediction);
* where the side changes the target becomes ``side x floor(position_notional / close)`` at the
  deciding bar's close (whole shares); where it does not, the target is kept (a fresh
  prediction on the same side renews the expiry without resizing, so it does not trade);
  splits and bonus issues scale the target as ``TargetPositionStrategy`` does.

``target_on_bar`` (the event engine) and ``signal_targets`` (the fast path, vectorised) give
the same targets; a test compares them bar for bar and fill for fill.

In research, the expiry is the label's ``t1``: the first research-bar close at which the
triple barrier was touched. That is known at ``t1`` from prices up to ``t1`` (a profit-take or
stop-loss order would close the trade there), so exiting then looks at nothing later.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from quant.sim.strategy import (
    Bar,
    SignalTargets,
    StrategyContext,
    TargetPositionStrategy,
    scale_shares,
)

NEVER = np.iinfo(np.int64).max
"""Expiry of a prediction that never expires."""


@dataclass(frozen=True, slots=True)
class SymbolSignals:
    """One symbol's predictions in time order: when each takes effect, its side, its expiry."""

    ts: np.ndarray
    side: np.ndarray
    expires: np.ndarray


def _ns(column: pl.Series, what: str, fill: int | None = None) -> np.ndarray:
    """UTC epoch nanoseconds of a datetime or integer column (nulls: ``fill``, or an error)."""
    if isinstance(column.dtype, pl.Datetime):
        if column.dtype.time_zone is None:
            raise ValueError(f"predictions' {what} must be UTC time stamps, got naive datetimes")
        values = column.dt.convert_time_zone("UTC").dt.epoch("ns")
    elif column.dtype.is_integer():
        values = column.cast(pl.Int64)
    else:
        raise ValueError(
            f"predictions' {what} must be datetimes or epoch nanoseconds, not {column.dtype}"
        )
    if values.null_count():
        if fill is None:
            raise ValueError(f"predictions' {what} has {values.null_count()} missing value(s)")
        values = values.fill_null(fill)
    return values.to_numpy()


def _duplicates(count: int, symbol: str, ts: int) -> ValueError:
    return ValueError(
        f"{count} predictions share a symbol and time, e.g. {symbol} at "
        f"{np.datetime64(int(ts), 'ns')}"
    )


def prediction_sides(
    p_up: np.ndarray, p_down: np.ndarray, threshold: float, long_only: bool
) -> np.ndarray:
    """+1 / -1 / 0 per prediction (see the module docstring)."""
    up = (p_up > threshold) & (p_up >= p_down)
    down = (p_down > threshold) & (p_down > p_up)
    side = np.where(up, 1, np.where(down, 0 if long_only else -1, 0))
    return side.astype(np.int8)


class PredictionStrategy(TargetPositionStrategy):
    """Trade the side of the latest prediction of each symbol (see the module docstring)."""

    name = "prediction"

    def __init__(
        self,
        predictions: pl.DataFrame,
        threshold: float = 0.55,
        *,
        position_notional: float = 50_000.0,
        long_only: bool = True,
        strategy_id: str | None = None,
    ) -> None:
        super().__init__(strategy_id)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        if not position_notional > 0 or not math.isfinite(position_notional):
            raise ValueError(
                f"position_notional must be a positive amount, got {position_notional}"
            )
        missing = [c for c in ("symbol", "ts", "p_up", "p_down") if c not in predictions.columns]
        if missing:
            raise ValueError(f"predictions lack column(s): {', '.join(missing)}")
        self.threshold = float(threshold)
        self.position_notional = float(position_notional)
        self.long_only = bool(long_only)
        self.n_predictions = predictions.height
        self._signals = self._index(predictions)
        self._cursor: dict[str, int] = {}
        self._side: dict[str, int] = {}

    def parameters(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "position_notional": self.position_notional,
            "long_only": self.long_only,
            "predictions": self.n_predictions,
        }

    def _index(self, predictions: pl.DataFrame) -> dict[str, SymbolSignals]:
        frame = predictions
        probs = frame.select(pl.col("p_up", "p_down").cast(pl.Float64))
        ts = _ns(frame["ts"], "ts")
        if "expires" in frame.columns:
            expires = _ns(frame["expires"], "expires", fill=NEVER)
        else:
            expires = np.full(ts.shape, NEVER, dtype=np.int64)
        side = self._sides(probs["p_up"].to_numpy(), probs["p_down"].to_numpy(), ts, expires)
        table = pl.DataFrame(
            {"symbol": frame["symbol"].cast(pl.String), "ts": ts, "side": side, "expires": expires}
        ).sort("symbol", "ts", maintain_order=True)
        dupes = table.filter(pl.struct("symbol", "ts").is_duplicated())
        if dupes.height:
            row = dupes.row(0, named=True)
            raise _duplicates(dupes.height, row["symbol"], row["ts"])
        out = {}
        for (symbol,), group in table.group_by("symbol", maintain_order=True):
            out[str(symbol)] = SymbolSignals(
                group["ts"].to_numpy(), group["side"].to_numpy(), group["expires"].to_numpy()
            )
        return out

    def _index_rows(
        self, rows: Sequence[tuple[str, int, float, float, int | None]]
    ) -> dict[str, SymbolSignals]:
        """``_index`` of a few ``(symbol, ts, p_up, p_down, expires)`` rows (epoch ns), as
        the live strategy receives them at each research bar: the same checks and result
        without building a frame (a frame's fixed cost was most of a research bar's)."""
        n = len(rows)
        for r in rows:
            for what, value in (("ts", r[1]), ("expires", r[4])):
                if not isinstance(value, int | np.integer) and not (
                    what == "expires" and value is None
                ):
                    raise ValueError(
                        f"predictions' {what} must be epoch nanoseconds, got {value!r}"
                    )
        symbols = [str(r[0]) for r in rows]
        ts = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n)
        p_up = np.fromiter((r[2] for r in rows), dtype=np.float64, count=n)
        p_down = np.fromiter((r[3] for r in rows), dtype=np.float64, count=n)
        expires = np.fromiter(
            (NEVER if r[4] is None else r[4] for r in rows), dtype=np.int64, count=n
        )
        side = self._sides(p_up, p_down, ts, expires)
        order = sorted(range(n), key=lambda i: (symbols[i], int(ts[i])))  # stable
        keys = [(symbols[i], int(ts[i])) for i in order]
        repeated = {k for k, nxt in itertools.pairwise(keys) if k == nxt}
        if repeated:
            first = next(k for k in keys if k in repeated)
            raise _duplicates(sum(k in repeated for k in keys), *first)
        out: dict[str, SymbolSignals] = {}
        start = 0
        for end in range(1, n + 1):
            if end == n or keys[end][0] != keys[start][0]:
                at = np.asarray(order[start:end], dtype=np.intp)
                out[keys[start][0]] = SymbolSignals(ts[at], side[at], expires[at])
                start = end
        return out

    def _sides(
        self, p_up: np.ndarray, p_down: np.ndarray, ts: np.ndarray, expires: np.ndarray
    ) -> np.ndarray:
        """Each prediction's side, once its probabilities and expiry are checked."""
        bad = ~(np.isfinite(p_up) & np.isfinite(p_down)) | (p_up < 0) | (p_up > 1)
        bad |= (p_down < 0) | (p_down > 1)
        if bad.any():
            raise ValueError(f"{int(bad.sum())} prediction(s) hold a probability outside [0, 1]")
        if (expires < ts).any():
            raise ValueError(
                f"{int((expires < ts).sum())} prediction(s) expire before they are made"
            )
        return prediction_sides(p_up, p_down, self.threshold, self.long_only)

    def _size(self, close: float) -> int:
        return math.floor(self.position_notional / close) if close > 0 else 0

    # -- event engine ----------------------------------------------------------------------

    def target_on_bar(self, ctx: StrategyContext, bar: Bar) -> int | None:
        signals = self._signals.get(bar.symbol)
        if signals is None:
            return None
        t = bar.ts_ns
        k = self._cursor.get(bar.symbol, 0)
        ts = signals.ts
        while k < ts.size and ts[k] <= t:
            k += 1
        self._cursor[bar.symbol] = k
        side = 0
        if k > 0 and signals.expires[k - 1] > t:
            side = int(signals.side[k - 1])
        if side == self._side.get(bar.symbol, 0):
            return None
        self._side[bar.symbol] = side
        return side * self._size(bar.close)

    # -- fast path -------------------------------------------------------------------------

    def signal_targets(self, bars: pl.DataFrame, actions: pl.DataFrame) -> SignalTargets:
        """Targets for every row of ``bars`` (sorted by symbol, then ``ts``; ``symbol, ts, close,
        day`` are read),
        identical to ``target_on_bar`` bar by bar with ``actions`` (``symbol, ex_date,
        price_factor, share_factor``) applied before the first bar of their ex-date."""
        n = bars.height
        target = np.zeros(n, dtype=np.int64)
        decide = np.zeros(n, dtype=bool)
        if n == 0:
            return SignalTargets(target, decide)
        opens = bars["ts"].dt.epoch("ns").to_numpy()
        closes = bars["close"].to_numpy()
        runs = bars["symbol"].rle().struct.unnest()
        start = 0
        for length, symbol in runs.iter_rows():
            end = start + length
            signals = self._signals.get(symbol)
            if signals is not None:
                events: list[tuple[int, float]] = []
                acts = actions.filter(pl.col("symbol") == symbol) if actions.height else actions
                if acts.height:
                    days = bars["day"].slice(start, length)
                    for row in acts.sort("ex_date").iter_rows(named=True):
                        if float(row["share_factor"]) != 1.0:
                            at = int(days.search_sorted(row["ex_date"], side="left"))
                            events.append((at, float(row["share_factor"])))
                t, d = self._symbol_targets(signals, opens[start:end], closes[start:end], events)
                target[start:end] = t
                decide[start:end] = d
            start = end
        return SignalTargets(target, decide)

    def _symbol_targets(
        self,
        signals: SymbolSignals,
        opens: np.ndarray,
        closes: np.ndarray,
        share_events: list[tuple[int, float]],
    ) -> tuple[np.ndarray, np.ndarray]:
        m = opens.size
        # the prediction in effect at each bar: the last one made at or before its open
        k = np.searchsorted(signals.ts, opens, side="right") - 1
        live = (k >= 0) & (signals.expires[np.maximum(k, 0)] > opens)
        side = np.where(live, signals.side[np.maximum(k, 0)], 0).astype(np.int64)
        previous = np.concatenate(([0], side[:-1]))
        changes = np.flatnonzero(side != previous)
        points = sorted([(int(c), 1, 0.0) for c in changes] + [(e, 0, f) for e, f in share_events])
        target = np.zeros(m, dtype=np.int64)
        decide = np.zeros(m, dtype=bool)
        current = 0
        position = 0
        for at, kind, factor in points:  # an action (kind 0) precedes a signal at the same bar
            if at >= m:
                continue
            target[position:at] = current
            position = at
            if kind == 0:
                current = scale_shares(current, factor)
                continue
            new = int(side[at]) * self._size(float(closes[at]))
            if new != current:
                decide[at] = True
            current = new
        target[position:] = current
        return target, decide
