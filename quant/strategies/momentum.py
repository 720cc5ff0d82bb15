"""Cross-sectional momentum: hold the recent winners, rebalanced every session.

After Jegadeesh and Titman (1993), "Returns to buying winners and selling losers", J. Finance
48(1), with overlapping holding periods:

* **Formation.** At the close of every ``rebalance``-th session, symbols are ranked by their
  return over the last ``lookback`` sessions (session closes, rescaled across corporate actions
  so a split is not a loss). Symbols without ``lookback`` sessions of history are not ranked.
  The ``top_k`` best form a new *cohort* (and, with ``long_short``, the ``top_k`` worst its
  short side). Within a cohort each side is weighted equally or by inverse volatility
  (``weighting="inverse_vol"``: 1 / standard deviation of the daily returns over the lookback),
  each side summing to 1.
* **Holding.** A cohort is held for ``holding`` rebalances: the portfolio is the average of the
  last ``holding`` cohorts (each 1 / holding of the capital), so ``holding=1`` is a plain
  rebalance into the latest winners and ``holding=5`` with daily rebalancing turns over a fifth
  of the book a day.
* **Orders.** Target shares are ``floor(weight x gross x equity / close)`` (integer shares;
  ``gross`` < 1 keeps a cash buffer against the open moving away from the close). A change
  worth less than ``min_trade`` x equity is not traded (drift is not worth its costs), unless
  it closes the position. Orders are
  sent at the session end, so they trade at the next session's open. Sells go first; buys go
  when the sells are done (the purchase needs their proceeds: on BIST they count at once
  through T+2 netting, but only once they are executed), each buy cut to the buying power then.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from datetime import date
from typing import Any

from quant.execution.orders import ExecutionReport, Side
from quant.sim.strategy import Bar, CorporateActionEvent, Strategy, StrategyContext


class CrossSectionalMomentum(Strategy):
    """Top-k momentum portfolio with overlapping holding periods (see the module docstring)."""

    name = "momentum"

    def __init__(
        self,
        lookback: int = 20,
        holding: int = 1,
        top_k: int = 5,
        rebalance: int = 1,
        long_short: bool = False,
        weighting: str = "equal",
        gross: float = 0.95,
        min_trade: float = 0.002,
        strategy_id: str | None = None,
    ) -> None:
        super().__init__(strategy_id)
        if lookback < 1 or holding < 1 or top_k < 1 or rebalance < 1:
            raise ValueError("lookback, holding, top_k and rebalance must be at least 1")
        if weighting not in ("equal", "inverse_vol"):
            raise ValueError(f"weighting must be 'equal' or 'inverse_vol', got {weighting!r}")
        if not 0 < gross <= 2:
            raise ValueError(f"gross must be in (0, 2], got {gross}")
        self.lookback = lookback
        self.holding = holding
        self.top_k = top_k
        self.rebalance = rebalance
        self.long_short = long_short
        self.weighting = weighting
        self.gross = gross
        if not 0 <= min_trade < 1:
            raise ValueError(f"min_trade must be in [0, 1), got {min_trade}")
        self.min_trade = min_trade
        self._closes: dict[str, deque[float]] = {}
        self._today: dict[str, float] = {}
        self._cohorts: deque[dict[str, float]] = deque(maxlen=holding)
        self._sessions = 0
        self._pending_buys: dict[str, int] = {}
        self._selling: set[str] = set()

    def parameters(self) -> dict[str, Any]:
        return {
            "lookback": self.lookback,
            "holding": self.holding,
            "top_k": self.top_k,
            "rebalance": self.rebalance,
            "long_short": self.long_short,
            "weighting": self.weighting,
            "gross": self.gross,
            "min_trade": self.min_trade,
        }

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self._today[bar.symbol] = bar.close

    def on_corporate_action(self, ctx: StrategyContext, event: CorporateActionEvent) -> None:
        history = self._closes.get(event.symbol)
        if history and math.isfinite(event.price_factor):
            self._closes[event.symbol] = deque(
                (c * event.price_factor for c in history), maxlen=history.maxlen
            )

    def on_session_end(self, ctx: StrategyContext, day: date) -> None:
        for symbol, close in sorted(self._today.items()):
            history = self._closes.get(symbol)
            if history is None:
                history = self._closes[symbol] = deque(maxlen=self.lookback + 1)
            history.append(close)
        self._today.clear()
        self._sessions += 1
        if (self._sessions - 1) % self.rebalance:
            return
        cohort = self._form_cohort()
        if cohort is None:
            return
        self._cohorts.append(cohort)
        self._trade_to(ctx, self._weights())

    # ------------------------------------------------------------------------- portfolio

    def _form_cohort(self) -> dict[str, float] | None:
        scores: list[tuple[float, str]] = []
        vols: dict[str, float] = {}
        for symbol, history in self._closes.items():
            if len(history) < self.lookback + 1 or history[0] <= 0:
                continue
            closes = list(history)
            scores.append((closes[-1] / closes[0] - 1.0, symbol))
            rets = [b / a - 1.0 for a, b in itertools.pairwise(closes) if a > 0]
            if len(rets) >= 2:
                mean = sum(rets) / len(rets)
                vols[symbol] = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
        if len(scores) < self.top_k * (2 if self.long_short else 1):
            return None
        # ties broken by symbol so the choice is deterministic
        ranked = sorted(scores, key=lambda x: (-x[0], x[1]))
        winners = [s for _, s in ranked[: self.top_k]]
        cohort = self._side_weights(winners, vols, 1.0)
        if self.long_short:
            losers = [s for _, s in ranked[-self.top_k :]]
            for symbol, w in self._side_weights(losers, vols, -1.0).items():
                cohort[symbol] = cohort.get(symbol, 0.0) + w
        return cohort

    def _side_weights(self, names: list[str], vols: dict[str, float], sign: float):
        if self.weighting == "inverse_vol":
            inv = {s: 1.0 / vols[s] for s in names if vols.get(s, 0.0) > 0}
            if len(inv) == len(names):
                total = sum(inv.values())
                return {s: sign * inv[s] / total for s in names}
        return {s: sign / len(names) for s in names}

    def _weights(self) -> dict[str, float]:
        weights: dict[str, float] = {}
        for cohort in self._cohorts:
            for symbol, w in cohort.items():
                weights[symbol] = weights.get(symbol, 0.0) + w / self.holding
        return weights

    def _trade_to(self, ctx: StrategyContext, weights: dict[str, float]) -> None:
        """Orders toward the target shares: sells now, buys once the sells are done.

        Orders still open from earlier rebalances count toward the targets (an order waiting
        for the next open is not cancelled and re-sent every session); those that now point
        the other way are cancelled first.
        """
        self._pending_buys = {}
        self._selling = set()
        equity = ctx.equity
        floor_value = self.min_trade * equity
        working = {o.order.symbol for o in ctx.open_orders()}
        sells: list[tuple[str, int]] = []
        for symbol in sorted(set(weights) | set(ctx.positions()) | working):
            price = ctx.last_price(symbol)
            if price is None or price <= 0:
                continue
            w = weights.get(symbol, 0.0)
            shares = math.floor(abs(w) * self.gross * equity / price)
            target = shares if w >= 0 else -shares
            desired = target - ctx.position(symbol)
            pending = ctx.open_quantity(symbol)
            if pending and pending * desired <= 0:
                ctx.cancel_all(symbol)
                pending = 0
            diff = desired - pending
            if pending and diff * pending < 0:
                continue  # the open order overshoots a little: the next rebalance corrects it
            if diff == 0 or (target != 0 and abs(diff) * price < floor_value):
                continue  # nothing to do, or a drift not worth its costs
            if diff < 0:
                sells.append((symbol, -diff))
            else:
                self._pending_buys[symbol] = diff
        for symbol, qty in sells:
            report = ctx.submit(ctx.market_order(symbol, Side.SELL, qty))
            if not report.status.is_terminal:
                self._selling.add(report.client_order_id)
        for state in ctx.open_orders():
            if state.order.side is Side.SELL:
                self._selling.add(state.order.client_order_id)
        if not self._selling:
            self._send_buys(ctx)

    def _send_buys(self, ctx: StrategyContext) -> None:
        buys, self._pending_buys = self._pending_buys, {}
        budget = ctx.buying_power
        for symbol, qty in sorted(buys.items()):
            price = ctx.last_price(symbol)
            if price is None or price <= 0:
                continue
            affordable = math.floor(max(budget, 0.0) / price)
            qty = min(qty, affordable)
            if qty <= 0:
                continue
            report = ctx.submit(ctx.market_order(symbol, Side.BUY, qty))
            if not report.status.is_terminal or report.last_qty:
                budget -= qty * price

    def _order_done(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        if report.client_order_id in self._selling and report.status.is_terminal:
            self._selling.discard(report.client_order_id)
            if not self._selling and self._pending_buys:
                self._send_buys(ctx)

    def on_fill(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        self._order_done(ctx, report)

    def on_order_update(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        self._order_done(ctx, report)
