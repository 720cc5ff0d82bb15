"""Moving-average crossover: long when the fast average crosses above the slow one.

The definition (the benchmark compares it trade for trade with backtrader and vectorbt):

* At the close of each bar the strategy updates a ``fast``-bar and a ``slow``-bar simple moving
  average of the symbol's closes. They are compared exactly: prices are on the tick grid, so
  the averages are kept as integer sums of price units (1/10,000 TRY) and
  ``fast_sum x slow`` is compared with ``slow_sum x fast``; no float rounding can create or hide
  a cross.
* A **cross** happens on the bar where the sign of ``fast - slow`` differs from its last
  non-zero sign (backtrader's ``CrossOver``: a tie never crosses by itself, and the first sign
  after the warm-up of ``slow`` bars only sets the state). There is no trade before the first
  cross, even if the fast average starts above the slow one.
* Cross up: target ``+size``; cross down: target 0 (``long_only``) or ``-size``. ``size`` is
  ``quantity`` shares, or ``floor(target_notional / close)`` at the crossing bar.
* Orders: ``TargetPositionStrategy`` sends the difference between the target and the position
  as a DAY market order at the crossing bar's close; the engine fills it at the **next bar's
  open** of the symbol (never on the crossing bar). With no next bar there is no fill.
* Corporate actions (prices are raw): with ``adjust_for_actions`` the stored closes are
  rescaled by the action's price factor (``round(units x factor)``) so a split is not a
  signal, and the target scales with the position. Without it the averages see raw prices.

``signal_targets`` computes the same targets for a whole frame with numpy (cumulative integer
sums), which is what the fast path uses; a test checks that both give identical arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quant.market.ticks import PRICE_SCALE
from quant.sim.strategy import (
    Bar,
    CorporateActionEvent,
    SignalTargets,
    StrategyContext,
    TargetPositionStrategy,
    inlined_on_bar,
    scale_shares,
)

_SCALE = PRICE_SCALE


@dataclass(slots=True)
class _MAState:
    buf: list[int]
    """Ring buffer of the last ``slow`` closes, in price units."""
    n: int = 0
    fast_sum: int = 0
    slow_sum: int = 0
    sign: int = 0
    """Last non-zero sign of fast - slow (0 before the first)."""
    extra: dict[str, Any] = field(default_factory=dict)


class MovingAverageCrossover(TargetPositionStrategy):
    """Fast/slow simple moving-average crossover (see the module docstring)."""

    name = "ma_crossover"

    def __init__(
        self,
        fast: int = 10,
        slow: int = 20,
        quantity: int | None = None,
        target_notional: float | None = None,
        long_only: bool = True,
        adjust_for_actions: bool = True,
        strategy_id: str | None = None,
    ) -> None:
        super().__init__(strategy_id)
        if not (isinstance(fast, int) and isinstance(slow, int) and 1 <= fast < slow):
            raise ValueError(f"need 1 <= fast < slow, got fast={fast}, slow={slow}")
        if quantity is not None and target_notional is not None:
            raise ValueError("give quantity or target_notional, not both")
        if quantity is None and target_notional is None:
            quantity = 100
        if quantity is not None and (not isinstance(quantity, int) or quantity <= 0):
            raise ValueError(f"quantity must be a positive whole number, got {quantity!r}")
        if target_notional is not None and not target_notional > 0:
            raise ValueError(f"target_notional must be positive, got {target_notional!r}")
        self.fast = fast
        self.slow = slow
        self.quantity = quantity
        self.target_notional = target_notional
        self.long_only = long_only
        self.adjust_for_actions = adjust_for_actions
        self._state: dict[str, _MAState] = {}
        self._own_target = type(self).target_on_bar is MovingAverageCrossover.target_on_bar
        """``on_bar`` inlines ``target_on_bar`` unless a subclass overrides it."""

    def parameters(self) -> dict[str, Any]:
        return {
            "fast": self.fast,
            "slow": self.slow,
            "quantity": self.quantity,
            "target_notional": self.target_notional,
            "long_only": self.long_only,
            "adjust_for_actions": self.adjust_for_actions,
        }

    def _size(self, close: float) -> int:
        if self.quantity is not None:
            return self.quantity
        return math.floor(self.target_notional / close) if close > 0 else 0  # type: ignore[operator]

    def target_on_bar(self, ctx: StrategyContext, bar: Bar) -> int | None:
        # The hot path (every bar): state in a list, locals only, integer arithmetic.
        st = self._state.get(bar.symbol)
        if st is None:
            st = self._state[bar.symbol] = _MAState([0] * self.slow)
        slow = self.slow
        fast = self.fast
        u = round(bar.close * _SCALE)
        k = st.n
        buf = st.buf
        i = k % slow
        ssum = st.slow_sum + u - buf[i] if k >= slow else st.slow_sum + u
        fsum = st.fast_sum + u - buf[(k - fast) % slow] if k >= fast else st.fast_sum + u
        buf[i] = u
        st.n = k + 1
        st.slow_sum = ssum
        st.fast_sum = fsum
        if k + 1 < slow:
            return None
        diff = fsum * slow - ssum * fast
        if diff == 0:
            return None
        sign = 1 if diff > 0 else -1
        previous = st.sign
        if previous == sign:
            return None
        st.sign = sign
        if previous == 0:
            return None
        if sign > 0:
            return self._size(bar.close)
        return 0 if self.long_only else -self._size(bar.close)

    @inlined_on_bar
    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        """``TargetPositionStrategy.on_bar`` with ``target_on_bar`` inlined (the same steps,
        one Python call less on every bar)."""
        if not self._own_target:
            TargetPositionStrategy.on_bar(self, ctx, bar)
            return
        symbol = bar.symbol
        st = self._state.get(symbol)
        if st is None:
            st = self._state[symbol] = _MAState([0] * self.slow)
        slow = self.slow
        fast = self.fast
        close = bar.close
        u = round(close * _SCALE)
        k = st.n
        buf = st.buf
        i = k % slow
        ssum = st.slow_sum + u - buf[i] if k >= slow else st.slow_sum + u
        fsum = st.fast_sum + u - buf[(k - fast) % slow] if k >= fast else st.fast_sum + u
        buf[i] = u
        st.n = k + 1
        st.slow_sum = ssum
        st.fast_sum = fsum
        if k + 1 < slow:
            return
        diff = fsum * slow - ssum * fast
        if diff == 0:
            return
        sign = 1 if diff > 0 else -1
        previous = st.sign
        if previous == sign:
            return
        st.sign = sign
        if previous == 0:
            return
        target = self._size(close) if sign > 0 else 0 if self.long_only else -self._size(close)
        targets = self.targets
        if target != targets.get(symbol, 0):
            targets[symbol] = target
            self.rebalance(ctx, symbol)

    def on_corporate_action(self, ctx: StrategyContext, event: CorporateActionEvent) -> None:
        super().on_corporate_action(ctx, event)
        if not self.adjust_for_actions or not math.isfinite(event.price_factor):
            return
        st = self._state.get(event.symbol)
        if st is None or st.n == 0:
            return
        _rescale(st, self.fast, self.slow, event.price_factor)

    # --------------------------------------------------------------------------- vectorised

    def signal_targets(self, bars: pl.DataFrame, actions: pl.DataFrame) -> SignalTargets:
        """Targets for every row of ``bars`` (sorted by symbol, then time; a ``day`` column),
        identical to feeding the rows to ``target_on_bar`` one by one with the actions of
        ``actions`` (``symbol, ex_date, price_factor, share_factor``) delivered before the first
        bar of their ex-date."""
        n = bars.height
        target = np.zeros(n, dtype=np.int64)
        decide = np.zeros(n, dtype=bool)
        if n == 0:
            return SignalTargets(target, decide)
        symbols = bars["symbol"]
        closes = bars["close"].to_numpy()
        days = bars["day"]
        units = np.rint(closes * PRICE_SCALE).astype(np.int64)
        runs = symbols.rle().struct.unnest()
        start = 0
        for length, symbol in runs.iter_rows():
            end = start + length
            acts = actions.filter(pl.col("symbol") == symbol).sort("ex_date")
            events = []
            if acts.height:
                sym_days = days.slice(start, length)
                for row in acts.iter_rows(named=True):
                    e = int(sym_days.search_sorted(row["ex_date"], side="left"))
                    events.append((e, float(row["price_factor"]), float(row["share_factor"])))
            t, d = self._symbol_targets(units[start:end], closes[start:end], events)
            target[start:end] = t
            decide[start:end] = d
            start = end
        return SignalTargets(target, decide)

    def _symbol_targets(
        self, u: np.ndarray, closes: np.ndarray, events: list[tuple[int, float, float]]
    ) -> tuple[np.ndarray, np.ndarray]:
        fast, slow = self.fast, self.slow
        m = u.size
        cs = np.concatenate([[0], np.cumsum(u)])
        k = np.arange(m)
        fsum = np.zeros(m, dtype=np.int64)
        ssum = np.zeros(m, dtype=np.int64)
        if m >= slow:  # the windows ending at bars slow-1 .. m-1, as slices of the sums
            fsum[slow - 1 :] = cs[slow:] - cs[slow - fast : m + 1 - fast]
            ssum[slow - 1 :] = cs[slow:] - cs[: m + 1 - slow]
        if self.adjust_for_actions:
            self._adjust_windows(u, events, fsum, ssum)
        diff = fsum * slow - ssum * fast
        sign = np.sign(diff)
        sign[: slow - 1] = 0
        # last non-zero sign before each bar (0 if none)
        idx = np.where(sign != 0, k, -1)
        last_idx = np.maximum.accumulate(idx)
        prev_idx = np.concatenate([[-1], last_idx[:-1]])
        prev_sign = np.where(prev_idx >= 0, sign[np.maximum(prev_idx, 0)], 0)
        cross_up = (sign > 0) & (prev_sign < 0)
        cross_down = (sign < 0) & (prev_sign > 0)
        crosses = np.flatnonzero(cross_up | cross_down)
        share_events = [(e, sf) for e, _, sf in events if sf != 1.0]
        if not share_events:
            return self._targets_at_crosses(crosses, cross_up, closes, m)
        # walk the crosses and the share events in order (few of each)
        points = sorted(
            [(int(c), 1, 0.0) for c in crosses] + [(e, 0, sf) for e, sf in share_events]
        )  # at one bar the action (kind 0, before the session) precedes the cross (kind 1)
        target = np.zeros(m, dtype=np.int64)
        decide = np.zeros(m, dtype=bool)
        current = 0
        position = 0
        for at, kind, sf in points:
            if at >= m:
                continue
            target[position:at] = current
            position = at
            if kind == 0:
                current = scale_shares(current, sf)
                continue
            if cross_up[at]:
                new = self._size(float(closes[at]))
            else:
                new = 0 if self.long_only else -self._size(float(closes[at]))
            if new != current:
                decide[at] = True
            current = new
        target[position:] = current
        return target, decide

    def _targets_at_crosses(
        self, crosses: np.ndarray, cross_up: np.ndarray, closes: np.ndarray, m: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The walk over the crosses without share events, in arrays: the target after each
        cross holds until the next one, and a cross decides when it changes the target."""
        if crosses.size == 0:
            return np.zeros(m, dtype=np.int64), np.zeros(m, dtype=bool)
        up = cross_up[crosses]
        if self.quantity is not None:
            size = np.full(crosses.size, self.quantity, dtype=np.int64)
        else:
            size = np.array([self._size(float(c)) for c in closes[crosses]], dtype=np.int64)
        down = np.zeros(crosses.size, dtype=np.int64) if self.long_only else -size
        new = np.where(up, size, down)
        before = np.concatenate([[0], new[:-1]]).astype(np.int64)
        decide = np.zeros(m, dtype=bool)
        decide[crosses] = new != before
        seg = np.searchsorted(crosses, np.arange(m), side="right") - 1
        target = np.where(seg >= 0, new[np.maximum(seg, 0)], 0).astype(np.int64)
        return target, decide

    def _adjust_windows(
        self,
        u: np.ndarray,
        events: list[tuple[int, float, float]],
        fsum: np.ndarray,
        ssum: np.ndarray,
    ) -> None:
        """Recompute the windows that hold closes from before an ex-date, rescaled in the same
        order and with the same rounding as ``_rescale`` applies them bar by bar.

        A window with one ex-date inside adds the rounding-exact adjustments of its pre-event
        closes (a cumulative sum); a window spanning several ex-dates (two actions within
        ``slow`` bars) is rebuilt value by value, rescaled in event order.
        """
        fast, slow = self.fast, self.slow
        priced = sorted((e, pf) for e, pf, _ in events if math.isfinite(pf) and e > 0)
        if not priced:
            return
        m = u.size
        starts = np.array([e for e, _ in priced])
        several: set[int] = set()
        for e, pf in priced:
            lo_k, hi_k = max(e, slow - 1), min(e + slow - 1, m)
            if lo_k >= hi_k:
                continue
            kk = np.arange(lo_k, hi_k)
            # events inside each window (kk - slow + 1, kk]
            inside = np.searchsorted(starts, kk, side="right") - np.searchsorted(
                starts, kk - slow + 1, side="right"
            )
            several.update(kk[inside > 1].tolist())
            single = kk[inside == 1]
            if single.size == 0:
                continue
            first = max(e - slow + 1, 0)
            raw = u[first:e]
            delta = np.rint(raw * pf).astype(np.int64) - raw
            prefix = np.concatenate([[0], np.cumsum(delta)])  # prefix[j - first]
            whole = prefix[e - first]
            slow_lo = np.clip(single - slow + 1, first, e) - first
            fast_lo = np.clip(single - fast + 1, first, e) - first
            ssum[single] += whole - prefix[slow_lo]
            fsum[single] += whole - prefix[fast_lo]
        for kk in sorted(several):
            lo = kk - slow + 1
            values = []
            for j in range(lo, kk + 1):
                v = int(u[j])
                for e, pf in priced:
                    if j < e <= kk:
                        v = round(v * pf)
                values.append(v)
            ssum[kk] = sum(values)
            fsum[kk] = sum(values[-fast:])


def _rescale(st: _MAState, fast: int, slow: int, factor: float) -> None:
    """Multiply the stored closes by ``factor`` (rounded to price units) and redo the sums."""
    buf = st.buf
    count = min(st.n, slow)
    newest = st.n - 1
    for j in range(count):
        i = (newest - j) % slow
        buf[i] = round(buf[i] * factor)
    st.slow_sum = sum(buf[(newest - j) % slow] for j in range(count))
    st.fast_sum = sum(buf[(newest - j) % slow] for j in range(min(st.n, fast)))
