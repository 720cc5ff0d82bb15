"""The strategy interface: what a strategy sees and what it may do, in a backtest and live.

A ``Strategy`` is driven by events (``on_bar``, ``on_trade``, ``on_quote``, ``on_fill``, session
boundaries, corporate actions); it never loops over data and never reads a clock of its own. It
acts through a ``StrategyContext``: the clock time, its positions and cash, the instruments, the
price band in force, and ``submit`` / ``cancel``. Every order goes strategy → risk → router →
venue, and ``submit`` answers with the ``ExecutionReport`` of the first step that decided: a
risk reject, the venue's reject or acknowledgement, or (status NEW) an order the router holds
until the exchange takes orders again. The backtest engine (``quant.sim.backtest``) and the live
actors implement the same context, so a strategy runs unchanged in both.

Hot path: ``on_bar`` is called for every bar (millions in a minute-bar backtest), so the bar is a
plain slots object and the context's read methods are dictionary lookups. A strategy that keeps
its state in dictionaries keyed by symbol and does O(1) work per bar costs about a microsecond.

``TargetPositionStrategy`` is the base of signal-driven strategies: they say which position they
want in each symbol and the base class trades the difference. Its behaviour is simple enough to
be reproduced exactly by the vectorised fast path (``quant.sim.fast``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)
from quant.market.bands import Band
from quant.market.calendar import SessionPhase
from quant.market.instrument import Instrument
from quant.market.ticks import RoundingMode
from quant.sim.fills import BarView


@dataclass(slots=True)
class Bar(BarView):
    """One OHLCV bar, delivered at its close (``ts_end_ns``); treat it as read-only.

    A ``BarView`` (what the fill models read) plus the trade count. Prices are raw (as printed,
    not adjusted for corporate actions), on the tick grid.
    """

    trade_count: int = 0


@dataclass(frozen=True, slots=True)
class TradeTick:
    """One print: price, size and aggressor side (1 buy, -1 sell, 0 unknown or auction)."""

    symbol: str
    ts_ns: int
    price: float
    size: int
    side: int = 0
    condition: str = "C"


@dataclass(frozen=True, slots=True)
class QuoteTick:
    """The best bid and offer (L1) at ``ts_ns``."""

    symbol: str
    ts_ns: int
    bid_price: float
    bid_size: int
    ask_price: float
    ask_size: int


@dataclass(frozen=True, slots=True)
class CorporateActionEvent:
    """A corporate action taking effect before the session of ``ex_date``.

    ``price_factor`` multiplies pre-event prices to make them comparable with post-event ones
    (``quant.data.corporate_actions``: 1/ratio for a split, (P - D)/P for a dividend, TERP/P for
    rights; NaN when no close before the ex-date was known). ``share_factor`` multiplies share
    counts (ratio for splits and bonus issues, 1 otherwise). The portfolio has already applied
    the action to positions and cash when a strategy hears of it.
    """

    symbol: str
    ex_date: date
    kind: str
    ratio: float | None
    price: float | None
    amount: float | None
    price_factor: float
    share_factor: float


class StrategyContext(ABC):
    """A strategy's window on the world and its only way to act on it.

    Implemented by the backtest engine and by the live strategy host. Read methods are cheap
    (the backtest answers them from dictionaries it keeps up to date); ``submit`` runs the
    order through risk, router and venue and returns the report of the step that decided.
    """

    strategy_id: str = ""

    def __init__(self, strategy_id: str = "") -> None:
        self.strategy_id = strategy_id
        self._order_seq = 0

    # --- time ---------------------------------------------------------------------------------

    @abstractmethod
    def now_ns(self) -> int:
        """The clock time (UTC ns): the close of the bar being processed, in a backtest."""

    @property
    @abstractmethod
    def day(self) -> date:
        """The session day being traded."""

    @abstractmethod
    def phase(self) -> SessionPhase | None:
        """The exchange phase now, or None when the runtime models no phases (bar sessions)."""

    @abstractmethod
    def accepts_market_orders(self, symbol: str) -> bool:
        """Whether a DAY market order sent now can reach the market (now, at the next phase
        that takes it, or at the next session's open) rather than being refused
        OUTSIDE_SESSION or TRADING_HALTED."""

    # --- market -------------------------------------------------------------------------------

    @property
    @abstractmethod
    def instruments(self) -> Mapping[str, Instrument]:
        """The tradable universe."""

    @abstractmethod
    def last_price(self, symbol: str) -> float | None:
        """The last traded price known (raw), or None before the first print."""

    @abstractmethod
    def band(self, symbol: str) -> Band | None:
        """The daily price band of ``symbol`` today (None when unknown)."""

    # --- account ------------------------------------------------------------------------------

    @abstractmethod
    def position(self, symbol: str) -> int:
        """Signed shares held."""

    @abstractmethod
    def positions(self) -> dict[str, int]:
        """Non-zero positions."""

    @property
    @abstractmethod
    def cash(self) -> float:
        """Trade-date cash, TRY."""

    @property
    @abstractmethod
    def equity(self) -> float:
        """Cash plus positions at their last prices, TRY."""

    @property
    @abstractmethod
    def buying_power(self) -> float:
        """TRY available for new buys: settlement-aware cash minus open buy orders."""

    @abstractmethod
    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Orders sent and not yet finished (including those the router holds)."""

    @abstractmethod
    def open_quantity(self, symbol: str) -> int:
        """Signed shares still to trade in open orders (buys minus sells)."""

    # --- orders -------------------------------------------------------------------------------

    @abstractmethod
    def submit(self, order: Order) -> ExecutionReport:
        """Send ``order`` (strategy → risk → router → venue).

        Returns the deciding report: REJECTED with the risk or venue ``RejectCode``, ACCEPTED by
        the venue, or NEW when the router holds the order until the exchange takes orders (a
        reason says when it enters). Never raises on a bad order.
        """

    @abstractmethod
    def cancel(self, client_order_id: str) -> ExecutionReport | None:
        """Cancel an open order; None if the id is not open."""

    @abstractmethod
    def cancel_all(self, symbol: str | None = None) -> list[ExecutionReport]:
        """Cancel every open order (of ``symbol``)."""

    # --- helpers (built on the primitives above) ----------------------------------------------

    def next_order_id(self) -> str:
        """A client order id unique within the run: ``{strategy_id}-{n:06d}`` (deterministic)."""
        self._order_seq += 1
        return f"{self.strategy_id}-{self._order_seq:06d}"

    def round_price(
        self, symbol: str, price: float, mode: RoundingMode | str = RoundingMode.NEAREST
    ) -> float:
        """``price`` on ``symbol``'s tick grid for today (buy limits: DOWN, sells: UP)."""
        return self.instruments[symbol].tick_table.round_to_tick(price, self.day, mode)

    def market_order(
        self, symbol: str, side: Side, quantity: int, tif: TimeInForce = TimeInForce.DAY
    ) -> Order:
        return Order(
            client_order_id=self.next_order_id(),
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=OrderType.MARKET,
            time_in_force=tif,
            ts_ns=self.now_ns(),
            strategy_id=self.strategy_id,
        )

    def limit_order(
        self,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        tif: TimeInForce = TimeInForce.DAY,
    ) -> Order:
        return Order(
            client_order_id=self.next_order_id(),
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=OrderType.LIMIT,
            limit_price=price,
            time_in_force=tif,
            ts_ns=self.now_ns(),
            strategy_id=self.strategy_id,
        )

    def buy(self, symbol: str, quantity: int, limit_price: float | None = None) -> ExecutionReport:
        """A DAY buy: market, or limit at ``limit_price`` (which must be on the grid)."""
        if limit_price is None:
            return self.submit(self.market_order(symbol, Side.BUY, quantity))
        return self.submit(self.limit_order(symbol, Side.BUY, quantity, limit_price))

    def sell(self, symbol: str, quantity: int, limit_price: float | None = None) -> ExecutionReport:
        """A DAY sell: market, or limit at ``limit_price`` (which must be on the grid)."""
        if limit_price is None:
            return self.submit(self.market_order(symbol, Side.SELL, quantity))
        return self.submit(self.limit_order(symbol, Side.SELL, quantity, limit_price))

    def order_target(self, symbol: str, target: int) -> ExecutionReport | None:
        """A market order for ``target - position - open quantity`` shares; None if zero."""
        diff = int(target) - self.position(symbol) - self.open_quantity(symbol)
        if diff == 0:
            return None
        side = Side.BUY if diff > 0 else Side.SELL
        return self.submit(self.market_order(symbol, side, abs(diff)))


class Strategy:
    """Base class: every callback is a no-op; override the ones you need.

    ``strategy_id`` tags the strategy's orders (risk counts and TCA group by it). A strategy
    must be deterministic given its events: no clock, no unseeded randomness.
    """

    name: str = "strategy"
    """The registry name (``smart-trader backtest --strategy NAME``)."""

    def __init__(self, strategy_id: str | None = None) -> None:
        self.strategy_id = strategy_id or self.name

    def parameters(self) -> dict[str, Any]:
        """The strategy's parameters, recorded with every result."""
        return {}

    def on_start(self, ctx: StrategyContext) -> None:
        """Before the first session."""

    def on_session_start(self, ctx: StrategyContext, day: date) -> None:
        """At the session's first order-entry time, after corporate actions and settlement."""

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        """At the bar's close (``bar.ts_end_ns``)."""

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        """A print in the market (tick-level runtimes: a day of trades and quotes replayed by
        ``quant.sim.tick.run_tick_day``, live feeds; bar backtests deliver bars only)."""

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        """An L1 update (tick-level runtimes, as ``on_trade``)."""

    def on_fill(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        """One of this strategy's orders traded (``report.last_qty`` at ``report.last_price``)."""

    def on_order_update(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        """Any other report on one of this strategy's orders: accepted, rejected, cancelled,
        expired. Rejects returned by ``submit`` are not repeated here."""

    def on_corporate_action(self, ctx: StrategyContext, event: CorporateActionEvent) -> None:
        """A corporate action applied before today's session (prices are raw: a strategy that
        keeps price history rescales it with ``event.price_factor``)."""

    def on_session_end(self, ctx: StrategyContext, day: date) -> None:
        """After the session's last bar, DAY expiries and the closing mark. Orders sent now
        are for the next session."""

    def on_stop(self, ctx: StrategyContext) -> None:
        """After the last session (or when the run stops on an error)."""


@dataclass(frozen=True, slots=True)
class SignalTargets:
    """Per bar (rows of a frame sorted by symbol then time): the target position the strategy
    holds after the bar, and whether the bar is a decision point (the target changed by the
    strategy's own signal, not by a corporate action rescaling it)."""

    target: np.ndarray
    decide: np.ndarray


class TargetPositionStrategy(Strategy):
    """A strategy that states a target position per symbol; the base class trades toward it.

    Rules (the fast path reproduces them exactly):

    * ``target_on_bar(ctx, bar)`` returns a new target (signed shares) or None to keep the
      current one. When the target changes and position plus open orders differ from it, the
      open orders of the symbol are cancelled and ``target - position`` is sent at once as a
      DAY market order, if the market would take one (``ctx.accepts_market_orders``);
      otherwise nothing is sent until the session end.
    * At every session end, for every symbol with a target, the difference is sent again as a
      market order for the next session: this picks up orders that expired unfilled, were
      rejected, or were decided when the market took no market orders (the closing auction's
      uncross and trades at the close).
    * A split or bonus issue scales the target with the position (``floor(|target| x ratio)``,
      as the portfolio floors the position), so a split is not mistaken for a signal.

    Subclasses implement ``target_on_bar`` and, for the fast path, ``signal_targets``: the same
    targets for a whole frame, vectorised.
    """

    def __init__(self, strategy_id: str | None = None) -> None:
        super().__init__(strategy_id)
        self.targets: dict[str, int] = {}

    def target_on_bar(self, ctx: StrategyContext, bar: Bar) -> int | None:
        """The new target after ``bar`` (None: unchanged)."""
        raise NotImplementedError

    def signal_targets(self, bars: pl.DataFrame, actions: pl.DataFrame) -> SignalTargets:
        """Vectorised ``target_on_bar`` over ``bars`` (columns ``symbol, ts, open, high, low,
        close, volume, day``; sorted by symbol and time; raw prices) with the corporate actions
        delivered before the first bar of their ``ex_date`` (``symbol, ex_date, price_factor,
        share_factor``). Needed only by the fast path."""
        raise NotImplementedError

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        target = self.target_on_bar(ctx, bar)
        if target is None:
            return
        symbol = bar.symbol
        if target != self.targets.get(symbol, 0):
            self.targets[symbol] = target
            self.rebalance(ctx, symbol)

    def rebalance(self, ctx: StrategyContext, symbol: str) -> ExecutionReport | None:
        """Trade toward the target: if position plus open orders differ from it, cancel the
        open orders (they were sent toward an older target) and send ``target - position``."""
        target = self.targets.get(symbol, 0)
        position = ctx.position(symbol)
        pending = ctx.open_quantity(symbol)
        if target == position + pending or not ctx.accepts_market_orders(symbol):
            return None
        if pending:
            ctx.cancel_all(symbol)
        diff = target - ctx.position(symbol)
        if diff == 0:
            return None
        side = Side.BUY if diff > 0 else Side.SELL
        return ctx.submit(ctx.market_order(symbol, side, abs(diff)))

    def on_session_end(self, ctx: StrategyContext, day: date) -> None:
        targets = self.targets
        if not targets:
            return
        symbols = sorted(targets) if len(targets) > 1 else targets
        if type(self).rebalance is not TargetPositionStrategy.rebalance:
            for symbol in symbols:
                self.rebalance(ctx, symbol)
            return
        # ``rebalance`` does nothing for a symbol at its target: test that here, once per
        # symbol and session, without the call
        position = ctx.position
        pending = ctx.open_quantity
        for symbol in symbols:
            if targets[symbol] != position(symbol) + pending(symbol):
                self.rebalance(ctx, symbol)

    def on_corporate_action(self, ctx: StrategyContext, event: CorporateActionEvent) -> None:
        target = self.targets.get(event.symbol)
        if target and event.share_factor != 1.0:
            self.targets[event.symbol] = scale_shares(target, event.share_factor)


def inlined_on_bar(fn: Any) -> Any:
    """Mark a ``TargetPositionStrategy`` subclass's ``on_bar`` as the base class's ``on_bar``
    with the subclass's own ``target_on_bar`` inlined (one Python call less per bar): the same
    targets and orders, so the fast path may still run the strategy."""
    fn._inlines_target_on_bar = True
    return fn


def is_inlined_on_bar(fn: Any) -> bool:
    """Whether ``fn`` was marked with ``inlined_on_bar``."""
    return bool(getattr(fn, "_inlines_target_on_bar", False))


def scale_shares(quantity: int, factor: float) -> int:
    """``quantity`` after a split or bonus issue: ``sign x floor(|quantity| x factor)``, the
    same flooring as ``Portfolio`` (a fractional share is paid out in cash)."""
    if quantity == 0:
        return 0
    sign = 1 if quantity > 0 else -1
    return sign * math.floor(abs(quantity) * factor + 1e-9)
