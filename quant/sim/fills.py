"""Fill models at two fidelity levels, sharing the matching engine's exchange rules.

**Bars** (``BarFillModel``): the backtest holds working orders and shows the model each new bar
(OHLCV) of a symbol; the model decides what filled during that bar. A market order fills at the
bar's open (through an optional slippage hook, rounded adversely onto the tick grid and kept in
the band); a limit order fills when the bar trades *through* its price (a buy needs a low below
the limit, a sell a high above it; ``fill_on_touch`` relaxes that to touching), at the open if the
bar opened beyond the limit, else at the limit. Each side of each bar can absorb at most
``max_participation`` x bar volume of our orders, taken in the order given (the caller's
priority); what is left carries to the next bar as a partial fill. IOC orders cancel what this
bar could not fill; FOK orders fill in full on one bar or are cancelled. Deterministic.

**Trades and quotes** (``ReplayFillSimulator``): replays a day's continuous trades and L1 quotes
against our orders with an order-entry/market-data ``LatencyModel`` and a ``QueueModel``, after
hftbacktest's ``PartialFillExchange``: a resting buy fills in full when a sell trade prints
below its price or the best ask comes down to it; a sell trade *at* its price advances the queue
and whatever trades beyond the quantity ahead fills us. A marketable order takes the displayed
best price up to its displayed size. As in hftbacktest our orders have no market impact, which
holds only for orders small against the displayed liquidity.

Both answer with ``ExecutionReport``s that they have applied to the given ``OrderState``s, so
the caller's states are always consistent with what was reported.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
    TimeInForce,
)
from quant.market.bands import Band
from quant.market.calendar import SessionPhase
from quant.market.instrument import Instrument
from quant.market.ticks import BIST_SHARE_TICKS, PRICE_SCALE, RoundingMode, TickSizeTable, to_units
from quant.sim.latency import ConstantLatency, LatencyModel
from quant.sim.matching import MAKER, TAKER, FeeModelLike, Fees, exchange_check
from quant.sim.queue import QueueModel, QueuePosition, consume, filled_qty, level_seen

SlippageHook = Callable[[Side, int, float, "BarView"], float]
"""``slippage(side, qty, price, bar) -> price`` for a market order filling at ``price``."""

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NS_PER_DAY = 86_400 * 10**9


def utc_day(ts_ns: int) -> date:
    """The UTC date of a time stamp (the Istanbul trading day: BIST trades 06:40-15:10 UTC)."""
    return date.fromordinal(_EPOCH_ORDINAL + ts_ns // _NS_PER_DAY)


@dataclass(slots=True)
class BarView:
    """One OHLCV bar as the fill model sees it (mutable so a caller can reuse one instance)."""

    symbol: str
    ts_ns: int
    """Bar open (inclusive), UTC ns."""
    ts_end_ns: int
    """Bar close (exclusive): fills are stamped here, when the bar is known."""
    open: float
    high: float
    low: float
    close: float
    volume: int
    vwap: float = 0.0


def accept(state: OrderState, ts_ns: int, venue_order_id: str = "") -> ExecutionReport:
    """Acknowledge ``state``'s order (NEW -> ACCEPTED) and return the report."""
    order = state.order
    # positional: the fields in declaration order (keywords cost more on this hot path)
    report = ExecutionReport(
        order.client_order_id,
        OrderStatus.ACCEPTED,
        ts_ns,
        order.symbol,
        order.side,
        "",
        venue_order_id,
        0,
        0.0,
        0,
        order.quantity,
    )
    state.apply(report)
    return report


def _terminal(
    state: OrderState, status: OrderStatus, ts_ns: int, reason: str, exec_id: str = ""
) -> ExecutionReport:
    order = state.order
    report = ExecutionReport(
        client_order_id=order.client_order_id,
        status=status,
        ts_ns=ts_ns,
        symbol=order.symbol,
        side=order.side,
        exec_id=exec_id,
        venue_order_id=state.venue_order_id,
        cum_qty=state.filled_qty,
        leaves_qty=0,
        avg_price=state.avg_price,
        reason=reason,
    )
    state.apply(report)
    return report


def _fill(
    state: OrderState,
    qty: int,
    price: float,
    ts_ns: int,
    liquidity: str,
    fees: float,
    exec_id: str,
) -> ExecutionReport:
    order = state.order
    cum = state.filled_qty + qty
    avg = (state.avg_price * state.filled_qty + price * qty) / cum
    report = ExecutionReport(  # positional, in declaration order (see ``accept``)
        order.client_order_id,
        OrderStatus.FILLED if cum == order.quantity else OrderStatus.PARTIALLY_FILLED,
        ts_ns,
        order.symbol,
        order.side,
        exec_id,
        state.venue_order_id,
        qty,
        price,
        cum,
        order.quantity - cum,
        avg,
        fees,
        None,
        "",
        liquidity,
    )
    state.apply(report)
    return report


class BarFillModel:
    """Decides which working orders of a symbol filled during a bar, and how much."""

    def __init__(
        self,
        max_participation: float = 0.1,
        slippage: SlippageHook | None = None,
        fee_model: FeeModelLike | None = None,
        fill_on_touch: bool = False,
        ticks: TickSizeTable = BIST_SHARE_TICKS,
        name: str = "BAR",
    ) -> None:
        if not 0 < max_participation <= 1:
            raise ValueError("max_participation must be in (0, 1]")
        self.max_participation = max_participation
        self.slippage = slippage
        self.fee_model = fee_model
        self._fees = Fees(fee_model)
        self.fill_on_touch = fill_on_touch
        self.ticks = ticks
        self.name = name
        self._mtl_limits: dict[str, float] = {}
        """Market-to-limit orders that converted: the limit they became."""
        self._n = 0

    def submit(
        self,
        state: OrderState,
        ts_ns: int,
        *,
        instrument: Instrument,
        band: Band | None,
        day: date | None = None,
    ) -> ExecutionReport:
        """Run the exchange's entry checks on a NEW order and accept or reject it.

        The same ``exchange_check`` as the matching engine (continuous trading), so a bar
        backtest refuses exactly the orders the exchange would.
        """
        order = state.order
        reject = exchange_check(
            order,
            instrument=instrument,
            day=day if day is not None else utc_day(ts_ns),
            phase=SessionPhase.CONTINUOUS,
            band=band,
        )
        if reject is None:
            self._n += 1
            return accept(state, ts_ns, f"{self.name}-{self._n}")
        report = ExecutionReport(
            client_order_id=order.client_order_id,
            status=OrderStatus.REJECTED,
            ts_ns=ts_ns,
            symbol=order.symbol,
            side=order.side if isinstance(order.side, Side) else None,
            reject_code=reject[0],
            reason=reject[1],
        )
        state.apply(report)
        return report

    def fill_on_bar(
        self, orders: Sequence[OrderState], bar: BarView, band: Band | None = None
    ) -> list[ExecutionReport]:
        """Fill ``orders`` (open orders of ``bar.symbol``; others are skipped) on ``bar``.

        Reports are stamped ``bar.ts_end_ns`` and already applied to the states.
        """
        out: list[ExecutionReport] = []
        if not orders:
            return out
        volume = bar.volume
        # 1e-9 absorbs float noise (0.29 x 100 is 28.999999999999996, not 29).
        cap = int(self.max_participation * volume + 1e-9) if volume > 0 else 0
        room = [0, cap, cap]  # indexed by side: 1 buy, -1 sell
        ts = bar.ts_end_ns
        symbol = bar.symbol
        touch = self.fill_on_touch
        for state in orders:
            status = state.status
            if status is not OrderStatus.ACCEPTED and status is not OrderStatus.PARTIALLY_FILLED:
                if self._mtl_limits:
                    self._mtl_limits.pop(state.order.client_order_id, None)
                continue
            order = state.order
            if order.symbol != symbol:
                continue
            side = order.side
            otype = order.order_type
            if otype is OrderType.LIMIT:
                limit: float | None = order.limit_price
            elif otype is OrderType.MARKET_TO_LIMIT:
                limit = self._mtl_limits.get(order.client_order_id)
            else:
                limit = None
            tif = order.time_in_force
            if limit is None:
                price = bar.open
                liquidity = TAKER
                reached = True
            elif side is Side.BUY:
                reached = bar.low < limit or (touch and bar.low <= limit)
                price = bar.open if bar.open < limit else limit
                liquidity = MAKER
            else:
                reached = bar.high > limit or (touch and bar.high >= limit)
                price = bar.open if bar.open > limit else limit
                liquidity = MAKER
            leaves = order.quantity - state.filled_qty
            available = room[side]
            qty = (leaves if leaves < available else available) if reached else 0
            if qty < leaves and tif is TimeInForce.FOK:
                out.append(self._kill(state, ts, "fill-or-kill: the bar could not fill it"))
                continue
            if qty <= 0:
                if tif is TimeInForce.IOC:
                    out.append(self._kill(state, ts, "immediate-or-cancel: nothing filled"))
                continue
            if limit is None and self.slippage is not None:
                price = self._slip(side, qty, price, bar, band)
            room[side] = available - qty
            fees = self._fees.charge(symbol, side, qty, price, liquidity, ts)
            self._n += 1
            out.append(_fill(state, qty, price, ts, liquidity, fees, f"{self.name}-{self._n}"))
            if otype is OrderType.MARKET_TO_LIMIT and limit is None:
                self._mtl_limits[order.client_order_id] = price
            if qty < leaves and tif is TimeInForce.IOC:
                out.append(self._kill(state, ts, "immediate-or-cancel: unfilled rest cancelled"))
            if state.status.is_terminal:
                self._mtl_limits.pop(order.client_order_id, None)
        return out

    def _slip(self, side: Side, qty: int, price: float, bar: BarView, band: Band | None) -> float:
        assert self.slippage is not None
        raw = self.slippage(side, qty, price, bar)
        if not (math.isfinite(raw) and raw > 0):
            return price
        mode = RoundingMode.UP if side is Side.BUY else RoundingMode.DOWN
        slipped = self.ticks.round_to_tick(raw, utc_day(bar.ts_ns), mode)
        if band is not None:
            slipped = min(max(slipped, band.lower), band.upper)
        return slipped

    def _kill(self, state: OrderState, ts: int, reason: str) -> ExecutionReport:
        self._n += 1
        self._mtl_limits.pop(state.order.client_order_id, None)
        return _terminal(state, OrderStatus.CANCELLED, ts, reason, f"{self.name}-{self._n}")

    def expire(self, orders: Iterable[OrderState], ts_ns: int) -> list[ExecutionReport]:
        """End of session: every open order expires (BIST DAY orders do not carry over)."""
        out = []
        for state in orders:
            if state.status.is_open:
                self._n += 1
                self._mtl_limits.pop(state.order.client_order_id, None)
                out.append(
                    _terminal(
                        state,
                        OrderStatus.EXPIRED,
                        ts_ns,
                        "day order expired",
                        f"{self.name}-{self._n}",
                    )
                )
        return out


# -- trade and quote replay ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """A trade or an L1 quote as the strategy sees it, ``local_ts_ns`` after the feed delay."""

    kind: str
    """"trade" or "quote"."""
    symbol: str
    ts_ns: int
    """Exchange time stamp."""
    local_ts_ns: int
    price: float = 0.0
    size: int = 0
    side: int = 0
    bid_price: float = 0.0
    bid_size: int = 0
    ask_price: float = 0.0
    ask_size: int = 0


@dataclass(slots=True)
class _L1:
    bid: int = 0
    bid_size: int = 0
    ask: int = 0
    ask_size: int = 0
    seen: bool = False


@dataclass(slots=True)
class _Resting:
    state: OrderState
    limit: int
    pos: QueuePosition
    visible: int | None
    """Displayed quantity at our price at the last quote (None: level not visible in L1)."""


@dataclass(order=True, slots=True)
class _Action:
    ts: int
    seq: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False)


class ReplayFillSimulator:
    """Replays trades and L1 quotes against our orders with latency and queue position.

    Orders and cancels are scheduled with ``submit``/``cancel`` at their local send time (or
    from the ``on_market`` callback while ``run`` replays); the exchange sees them
    ``entry_ns`` later. At equal time stamps market events come first (an order arriving at t
    sees the book of t) and a quote before a trade (the data's quote at a trade's time stamp is
    the one the trade met). Only continuous-trading prints (condition "C") fill resting orders;
    auction prints and halts are not simulated at this level.
    """

    def __init__(
        self,
        queue_model: QueueModel,
        latency: LatencyModel | None = None,
        fee_model: FeeModelLike | None = None,
        instruments: Iterable[Instrument] | None = None,
        bands: Mapping[str, Band] | None = None,
        name: str = "REPLAY",
    ) -> None:
        self.queue_model = queue_model
        self.latency: LatencyModel = latency if latency is not None else ConstantLatency()
        self.fee_model = fee_model
        self._fees = Fees(fee_model)
        self.instruments = {i.symbol: i for i in instruments} if instruments is not None else None
        self.bands = dict(bands) if bands is not None else {}
        self.name = name
        self._states: dict[str, OrderState] = {}
        self._resting: dict[str, list[_Resting]] = {}
        self._l1: dict[str, _L1] = {}
        self._actions: list[_Action] = []
        self._seq = itertools.count()
        self._n = 0
        self._out: list[ExecutionReport] = []
        self._now = 0

    # -- requests -------------------------------------------------------------------------

    def submit(self, order: Order, ts_ns: int) -> None:
        """Send ``order`` at local time ``ts_ns``; it reaches the exchange after entry latency."""
        arrive = ts_ns + self.latency.entry_ns(ts_ns)
        heapq.heappush(self._actions, _Action(arrive, next(self._seq), "new", order))

    def cancel(self, client_order_id: str, ts_ns: int) -> None:
        arrive = ts_ns + self.latency.entry_ns(ts_ns)
        heapq.heappush(self._actions, _Action(arrive, next(self._seq), "cancel", client_order_id))

    def status(self, client_order_id: str) -> OrderState | None:
        return self._states.get(client_order_id)

    # -- replay ---------------------------------------------------------------------------

    def run(
        self,
        trades: pl.DataFrame,
        quotes: pl.DataFrame,
        on_market: Callable[[MarketEvent, ReplayFillSimulator], None] | None = None,
        until_ns: int | None = None,
    ) -> list[ExecutionReport]:
        """Replay ``trades`` (TRADES schema) and ``quotes`` (QUOTES schema) in time order and
        return every report, in the order they happened. Orders still pending after the last
        event are processed at their arrival times (up to ``until_ns`` if given)."""
        self._out = []
        cols = _merge(trades, quotes)
        ts, kind, sym, price, size, side = (cols[k] for k in ("ts", "kind", "sym", "p", "q", "s"))
        bidp, bids, askp, asks, names = (
            cols["bp"],
            cols["bq"],
            cols["ap"],
            cols["aq"],
            cols["names"],
        )
        n = len(ts)
        i = 0
        actions = self._actions
        feed = self.latency.feed_ns
        inf = math.inf
        while True:
            t_mkt = ts[i] if i < n else inf
            t_act = actions[0].ts if actions else inf
            if t_mkt == inf and t_act == inf:
                break
            if t_act < t_mkt:
                if until_ns is not None and t_act > until_ns:
                    break
                act = heapq.heappop(actions)
                self._now = max(self._now, act.ts)
                self._do(act, on_market)
                continue
            if until_ns is not None and t_mkt > until_ns:
                break
            t = ts[i]
            self._now = t
            symbol = names[sym[i]]
            if kind[i] == 0:
                self._on_quote(symbol, t, bidp[i], bids[i], askp[i], asks[i])
            else:
                self._on_trade(symbol, t, price[i], size[i], side[i])
            if on_market is not None:
                event = (
                    MarketEvent(
                        "quote",
                        symbol,
                        t,
                        0,
                        bid_price=bidp[i] / PRICE_SCALE,
                        bid_size=bids[i],
                        ask_price=askp[i] / PRICE_SCALE,
                        ask_size=asks[i],
                    )
                    if kind[i] == 0
                    else MarketEvent(
                        "trade", symbol, t, 0, price[i] / PRICE_SCALE, size[i], side[i]
                    )
                )
                heapq.heappush(actions, _Action(t + feed(t), next(self._seq), "md", event))
            i += 1
        return self._out

    def run_day(
        self,
        market: Any,
        day: date,
        symbols: Sequence[str] | None = None,
        on_market: Callable[[MarketEvent, ReplayFillSimulator], None] | None = None,
    ) -> list[ExecutionReport]:
        """Replay one session of a ``SyntheticMarket`` (or anything with ``.day(d).trades`` and
        ``.quotes``), optionally for some symbols only, with its bands."""
        session = market.day(day)
        trades, quotes = session.trades, session.quotes
        if symbols is not None:
            trades = trades.filter(pl.col("symbol").is_in(list(symbols)))
            quotes = quotes.filter(pl.col("symbol").is_in(list(symbols)))
        for row in session.reference.iter_rows(named=True):
            self.bands.setdefault(
                row["symbol"],
                Band(row["band_lower"], row["band_upper"], row["previous_close"]),
            )
        return self.run(trades, quotes, on_market)

    def _do(self, act: _Action, on_market: Callable[..., None] | None) -> None:
        if act.kind == "md":
            if on_market is not None:
                ev: MarketEvent = act.payload
                on_market(
                    MarketEvent(
                        ev.kind,
                        ev.symbol,
                        ev.ts_ns,
                        act.ts,
                        ev.price,
                        ev.size,
                        ev.side,
                        ev.bid_price,
                        ev.bid_size,
                        ev.ask_price,
                        ev.ask_size,
                    ),
                    self,
                )
        elif act.kind == "new":
            self._arrive(act.payload, act.ts)
        else:
            self._cancel(act.payload, act.ts)

    # -- exchange side --------------------------------------------------------------------

    def _exec_id(self) -> str:
        self._n += 1
        return f"{self.name}-{self._n}"

    def _reject(self, state: OrderState, code: RejectCode, reason: str, ts: int) -> None:
        report = ExecutionReport(
            client_order_id=state.order.client_order_id,
            status=OrderStatus.REJECTED,
            ts_ns=ts,
            symbol=state.order.symbol,
            side=state.order.side if isinstance(state.order.side, Side) else None,
            exec_id=self._exec_id(),
            reject_code=code,
            reason=reason,
        )
        state.apply(report)
        self._out.append(report)

    def _arrive(self, order: Order, ts: int) -> None:
        state = OrderState(order)
        oid = order.client_order_id
        if oid and oid in self._states:
            self._reject(state, RejectCode.DUPLICATE_ORDER_ID, f"order id {oid} is in use", ts)
            return
        if oid:
            self._states[oid] = state
        instrument = (
            self.instruments.get(order.symbol)
            if self.instruments is not None
            else Instrument(order.symbol)
            if _valid_symbol(order.symbol)
            else None
        )
        if instrument is None:
            problems = order.problems()
            if problems:
                self._reject(state, RejectCode.INVALID_ORDER, "; ".join(problems), ts)
            else:
                self._reject(
                    state, RejectCode.UNKNOWN_SYMBOL, f"{order.symbol!r} is not listed", ts
                )
            return
        reject = exchange_check(
            order,
            instrument=instrument,
            day=utc_day(ts),
            phase=SessionPhase.CONTINUOUS,
            band=self.bands.get(order.symbol),
        )
        if reject is not None:
            self._reject(state, reject[0], reject[1], ts)
            return
        self._out.append(accept(state, ts, f"{self.name}-{oid}"))
        l1 = self._l1.get(order.symbol)
        side = order.side
        buy = side is Side.BUY
        limit = to_units(order.limit_price) if order.limit_price is not None else None
        if l1 is not None and l1.seen:
            opp, opp_size = (l1.ask, l1.ask_size) if buy else (l1.bid, l1.bid_size)
            if order.order_type is OrderType.MARKET_TO_LIMIT and opp_size <= 0:
                self._finish(state, OrderStatus.CANCELLED, ts, "no opposite orders")
                return
            if order.order_type is not OrderType.LIMIT:
                limit = None if order.order_type is OrderType.MARKET else opp
            marketable = opp_size > 0 and (limit is None or (opp <= limit if buy else opp >= limit))
            if marketable:
                if order.time_in_force is TimeInForce.FOK and opp_size < order.quantity:
                    self._finish(state, OrderStatus.CANCELLED, ts, "fill-or-kill: not enough shown")
                    return
                qty = min(order.quantity, opp_size)
                self._emit_fill(state, qty, opp, ts, TAKER)
        elif order.order_type is not OrderType.LIMIT:
            self._finish(state, OrderStatus.CANCELLED, ts, "no quote to execute against")
            return
        if not state.status.is_open:
            return
        if (
            order.order_type is OrderType.MARKET
            or order.time_in_force is not TimeInForce.DAY
            or limit is None
        ):
            self._finish(state, OrderStatus.CANCELLED, ts, "unfilled rest cancelled")
            return
        visible = _visible(l1, side, limit)
        pos = self.queue_model.new_order(math.inf if visible is None else visible)
        self._resting.setdefault(order.symbol, []).append(_Resting(state, limit, pos, visible))

    def expire_all(self, ts_ns: int) -> list[ExecutionReport]:
        """End of session: every order still working expires (BIST DAY orders do not carry
        over to the next day)."""
        out = []
        for symbol in sorted(self._resting):
            for r in self._resting[symbol]:
                out.append(
                    _terminal(
                        r.state, OrderStatus.EXPIRED, ts_ns, "day order expired", self._exec_id()
                    )
                )
        self._resting.clear()
        return out

    def _cancel(self, client_order_id: str, ts: int) -> None:
        state = self._states.get(client_order_id)
        if state is None or not state.status.is_open:
            # Too late (the fill went out already) or never arrived: the order's own reports
            # say what happened to it, and a cancel changes nothing.
            return
        book = self._resting.get(state.order.symbol, [])
        self._resting[state.order.symbol] = [r for r in book if r.state is not state]
        self._finish(state, OrderStatus.CANCELLED, ts, "cancelled on request")

    def _finish(self, state: OrderState, status: OrderStatus, ts: int, reason: str) -> None:
        self._out.append(_terminal(state, status, ts, reason, self._exec_id()))

    def _emit_fill(self, state: OrderState, qty: int, price: int, ts: int, liq: str) -> None:
        p = price / PRICE_SCALE
        fees = self._fees.charge(state.order.symbol, state.order.side, qty, p, liq, ts)
        self._out.append(_fill(state, qty, p, ts, liq, fees, self._exec_id()))

    def _on_quote(self, symbol: str, ts: int, bid: int, bid_size: int, ask: int, ask_size: int):
        l1 = self._l1.get(symbol)
        if l1 is None:
            l1 = self._l1[symbol] = _L1()
        l1.bid, l1.bid_size, l1.ask, l1.ask_size, l1.seen = bid, bid_size, ask, ask_size, True
        book = self._resting.get(symbol)
        if not book:
            return
        keep = []
        for r in book:
            side = r.state.order.side
            crossed = (
                (ask_size > 0 and ask <= r.limit)
                if side is Side.BUY
                else (bid_size > 0 and bid >= r.limit)
            )
            if crossed:
                self._emit_fill(r.state, r.state.leaves_qty, r.limit, ts, MAKER)
                continue
            visible = _visible(l1, side, r.limit)
            if visible is not None:
                if r.visible is None:
                    level_seen(r.pos, visible)
                else:
                    self.queue_model.on_depth(r.pos, r.visible, visible)
            r.visible = visible
            keep.append(r)
        self._resting[symbol] = keep

    def _on_trade(self, symbol: str, ts: int, price: int, size: int, side: int) -> None:
        book = self._resting.get(symbol)
        if not book:
            return
        keep = []
        for r in book:
            buy = r.state.order.side is Side.BUY
            # A buy rests on the bid: only sell-initiated (or unknown-side) trades reach it.
            against = side != (1 if buy else -1)
            through = against and (price < r.limit if buy else price > r.limit)
            if through:
                self._emit_fill(r.state, r.state.leaves_qty, r.limit, ts, MAKER)
                continue
            if against and price == r.limit:
                self.queue_model.on_trade(r.pos, size)
                qty = min(filled_qty(r.pos), size, r.state.leaves_qty)
                if qty > 0:
                    consume(r.pos, qty)
                    self._emit_fill(r.state, qty, r.limit, ts, MAKER)
            if r.state.status.is_open:
                keep.append(r)
        self._resting[symbol] = keep


def _visible(l1: _L1 | None, side: Side, limit: int) -> int | None:
    """Displayed quantity at ``limit`` on our side: the L1 size at the best price, zero when we
    are better than the best price, unknown (None) when we are behind it."""
    if l1 is None or not l1.seen:
        return None
    if side is Side.BUY:
        if l1.bid_size <= 0 or l1.bid < limit:
            return 0
        return l1.bid_size if l1.bid == limit else None
    if l1.ask_size <= 0 or l1.ask > limit:
        return 0
    return l1.ask_size if l1.ask == limit else None


def _valid_symbol(symbol: object) -> bool:
    try:
        Instrument(symbol)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _merge(trades: pl.DataFrame, quotes: pl.DataFrame) -> dict[str, Any]:
    """Trades (continuous only) and quotes as one time-ordered set of plain Python lists."""
    trades = trades.filter(pl.col("condition") == "C")
    names = sorted(set(trades["symbol"].to_list()) | set(quotes["symbol"].to_list()))
    code = {s: k for k, s in enumerate(names)}

    def ns(frame: pl.DataFrame) -> np.ndarray:
        return frame["ts"].dt.epoch("ns").to_numpy().astype(np.int64)

    def units(s: pl.Series) -> np.ndarray:
        return np.rint(s.to_numpy().astype(np.float64) * PRICE_SCALE).astype(np.int64)

    nt, nq = trades.height, quotes.height
    zeros_t, zeros_q = np.zeros(nt, np.int64), np.zeros(nq, np.int64)
    ts = np.concatenate([ns(trades), ns(quotes)])
    kind = np.concatenate([np.ones(nt, np.int64), zeros_q])
    seq = np.concatenate([trades["seq"].to_numpy(), quotes["seq"].to_numpy()]).astype(np.int64)
    order = np.lexsort((seq, kind, ts))  # time, then quote before trade, then sequence

    def col(a: np.ndarray, b: np.ndarray) -> list[int]:
        return np.concatenate([a, b])[order].tolist()

    sym = np.array([code[s] for s in trades["symbol"].to_list()], np.int64)
    qsym = np.array([code[s] for s in quotes["symbol"].to_list()], np.int64)
    return {
        "names": names,
        "ts": ts[order].tolist(),
        "kind": kind[order].tolist(),
        "sym": col(sym, qsym),
        "p": col(units(trades["price"]), zeros_q),
        "q": col(trades["size"].to_numpy().astype(np.int64), zeros_q),
        "s": col(trades["side"].to_numpy().astype(np.int64), zeros_q),
        "bp": col(zeros_t, units(quotes["bid_price"])),
        "bq": col(zeros_t, quotes["bid_size"].to_numpy().astype(np.int64)),
        "ap": col(zeros_t, units(quotes["ask_price"])),
        "aq": col(zeros_t, quotes["ask_size"].to_numpy().astype(np.int64)),
    }


__all__ = [
    "BarFillModel",
    "BarView",
    "MarketEvent",
    "ReplayFillSimulator",
    "SlippageHook",
    "accept",
    "utc_day",
]
