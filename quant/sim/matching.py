"""A BIST-like exchange: call auctions, continuous price-time matching, bands, halts, close.

``MatchingEngine`` implements the ``Venue`` protocol for many symbols. It is driven by time, not
by a loop: every call first brings the engine up to the current time (``clock.now_ns()`` for
``submit``, the ``ts_ns`` argument for the others, or an explicit ``on_time(ts_ns)``), running
whatever the session timetable and the circuit breakers scheduled in between, in time order:

========================  ==================================================================
phase (``TradingCalendar``)  what the engine does
========================  ==================================================================
CLOSED                    rejects orders (OUTSIDE_SESSION); at the end of the session every
                          open DAY order is EXPIRED
OPENING_AUCTION           collects orders (no trades; the book may cross)
OPENING_UNCROSS           uncrosses at its start (``quant.sim.auction`` over every price of
                          the tick grid, band = daily band, reference = base price; prints
                          "O"); takes no orders while the exchange computes the open
CONTINUOUS                price-time matching; the single-stock circuit breaker halts a symbol
                          into a call auction ("H" uncross when it ends)
CLOSING_PRICE_PUBLICATION  halts still running are uncrossed; the closing band (±3% of the last
                          price, inside the daily band) is set; no orders
CLOSING_AUCTION           collects orders inside the closing band
CLOSING_UNCROSS           uncrosses at its start (closing band, reference = last price; prints
                          "K"); the closing price is the uncross price, or the last price
                          when the auction does not trade; no orders
TRADES_AT_CLOSE           limit orders at the closing price only, matched at that price ("T")
========================  ==================================================================

Half days come from the calendar: the same sequence, with continuous trading ending at 12:30.

**Order entry** never raises. Every refusal is an ``ExecutionReport`` with status REJECTED and a
``RejectCode``: a structural problem (``Order.problems()``, a non-finite price, a quantity that
is not a whole number of lots) is INVALID_ORDER; an id seen before is DUPLICATE_ORDER_ID; a
symbol the engine does not list is UNKNOWN_SYMBOL; a price off the tick grid is OFF_TICK;
outside the daily band (the closing band in the closing auction, or anything but the closing
price in trades at close) is OUTSIDE_BAND; a phase that takes no orders, a symbol with no
reference price today, IOC/FOK in a call phase, or a non-limit order in trades at close is
OUTSIDE_SESSION. During a circuit-breaker halt the symbol is in a call auction: DAY limit and
market-to-limit orders join it; market, IOC and FOK orders need a counterparty *now*, which a
halted book cannot give, so they are rejected TRADING_HALTED.

**Order types.** A market order trades what it can at once and the unfilled rest is cancelled
(BIST market orders are fill-and-kill); in a call phase it joins the auction with top priority
and its unfilled rest is cancelled at the uncross. A market-to-limit order trades at the best
opposite price only and its rest becomes a limit at that price (no opposite order: cancelled);
in a call phase it joins as a market order and its rest becomes a limit at the uncross price.
IOC cancels the unfilled rest; FOK trades in full or not at all.

**Circuit breaker.** In continuous trading a trade at a price that moved at least the rule's
fraction (``CircuitBreakers``, 5%) from the static reference (the day's last auction price, else
the base price) does not happen: the symbol halts, the incoming order's rest joins the halt
auction if it may rest (DAY limit, market-to-limit) and is cancelled otherwise, and the call
auction runs for the rule's length (capped at the end of continuous trading), then uncrosses
with reference = last trade price. Its price becomes the new static reference.

**Reports and state.** Each order has an ``OrderState`` inside the engine and every report that
changes it is applied through ``OrderState.apply``, so an illegal transition is impossible
rather than merely unlikely. Calls return every report they caused, for any order (a submit
returns the makers' fills too; an advance in time returns auction fills and expiries).

Two kinds of report answer a *request* instead of changing an order, because the order state
machine has no status for them: a successful ``replace`` returns a report with the order's
unchanged status, ``reason`` starting with "replaced" and the new ``leaves_qty``; a refused cancel
or replace returns a report with the order's current status and a ``reject_code`` (an unknown
order id gets status REJECTED). These are recorded in the order's history but are not state
transitions: a mirror ``OrderState`` must skip them (``is_request_answer(report)``), and
``status(client_order_id)`` always has the venue's view, including the replaced order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from quant.clock import Clock, SimulatedClock
from quant.data.schema import TradeCondition
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
from quant.market.bands import Band, PriceBand
from quant.market.breakers import CircuitBreakers
from quant.market.calendar import ISTANBUL, SessionPhase, TradingCalendar
from quant.market.instrument import Instrument
from quant.market.ticks import PRICE_SCALE, from_units, to_units
from quant.sim.auction import AuctionOrder, uncross
from quant.sim.book import Match, OrderBook

FeeCallback = Callable[[str, Side, int, float, str], float]
"""``fee_model(symbol, side, qty, price, liquidity) -> fees in TRY`` for one execution."""

FeeModelLike = Any
"""A ``FeeCallback``, or an object with ``fee(symbol, side, qty, price, liquidity, ts_ns)`` and
optionally ``on_fill(symbol, side, qty, price, ts_ns)`` (the shape of ``quant.sim.costs``
fee models, whose tiered commissions must hear about every fill)."""

MAKER, TAKER, AUCTION = "maker", "taker", "auction"

ENTRY_PHASES = frozenset(
    {
        SessionPhase.OPENING_AUCTION,
        SessionPhase.CONTINUOUS,
        SessionPhase.CLOSING_AUCTION,
        SessionPhase.TRADES_AT_CLOSE,
    }
)
"""Phases in which the exchange takes new orders, cancels and replaces. The uncross windows are
not among them: BIST takes no orders while it computes and prints an auction price."""

CALL_PHASES = frozenset({SessionPhase.OPENING_AUCTION, SessionPhase.CLOSING_AUCTION})

_MAX_PRICE = 1e12
_KURUS = Decimal("0.01")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(moment: datetime) -> int:
    """An aware datetime as UTC nanoseconds (exact, no float seconds)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _td_ns(td: timedelta) -> int:
    return td // timedelta(microseconds=1) * 1000


def round_fee(fee: float) -> float:
    """Fees as the venue charges them: TRY to the kuruş, half up (an invoice, not a bank)."""
    return float(Decimal(repr(float(fee))).quantize(_KURUS, rounding=ROUND_HALF_UP))


class Fees:
    """Charges executions through a pluggable fee model (see ``FeeModelLike``); None is free."""

    __slots__ = ("_call", "_fee", "_on_fill")

    def __init__(self, fee_model: FeeModelLike | None) -> None:
        method = getattr(fee_model, "fee", None)
        self._fee = method if callable(method) else None
        on_fill = getattr(fee_model, "on_fill", None) if self._fee is not None else None
        self._on_fill = on_fill if callable(on_fill) else None
        self._call = fee_model if self._fee is None and callable(fee_model) else None
        if fee_model is not None and self._fee is None and self._call is None:
            raise TypeError(f"{fee_model!r} is neither a fee callback nor a fee model")

    def charge(
        self, symbol: str, side: Side, qty: int, price: float, liquidity: str, ts_ns: int
    ) -> float:
        """The fee of one execution, rounded to the kuruş; stateful models book the fill."""
        if self._fee is not None:
            fee = round_fee(self._fee(symbol, side, qty, price, liquidity, ts_ns))
            if self._on_fill is not None:
                self._on_fill(symbol, side, qty, price, ts_ns)
            return fee
        if self._call is not None:
            return round_fee(self._call(symbol, side, qty, price, liquidity))
        return 0.0


def exchange_check(
    order: Order,
    *,
    instrument: Instrument,
    day: date,
    phase: SessionPhase,
    band: Band | None,
    halted: bool = False,
    closing_price: float | None = None,
) -> tuple[RejectCode, str] | None:
    """The stateless exchange checks of one order; None if the exchange would take it.

    Shared by the matching engine and the fill simulators so that a bar backtest, a replay and
    the event-driven engine refuse the same orders. ``band`` is the band in force for the phase
    (the closing band in the closing auction); ``closing_price`` is the only price allowed in
    trades at close. Duplicate ids and unknown symbols need the venue's state and are checked by
    the venue.
    """
    if (
        not isinstance(order.side, Side)
        or not isinstance(order.order_type, OrderType)
        or not isinstance(order.time_in_force, TimeInForce)
    ):
        return RejectCode.INVALID_ORDER, "side, order type and time in force must be the enums"
    problems = order.problems()
    if problems:
        return RejectCode.INVALID_ORDER, "; ".join(problems)
    price = order.limit_price
    if price is not None and not (math.isfinite(price) and price < _MAX_PRICE):
        return RejectCode.INVALID_ORDER, f"limit price {price!r} is not a usable price"
    if order.quantity % instrument.lot_size:
        return (
            RejectCode.INVALID_ORDER,
            f"quantity {order.quantity} is not a whole number of {instrument.lot_size}-share lots",
        )
    if phase not in ENTRY_PHASES:
        return RejectCode.OUTSIDE_SESSION, f"the exchange takes no orders in the {phase} phase"
    immediate = order.time_in_force is not TimeInForce.DAY
    if phase in CALL_PHASES and immediate:
        return RejectCode.OUTSIDE_SESSION, f"{order.time_in_force} orders need continuous trading"
    if halted and (immediate or order.order_type is OrderType.MARKET):
        return (
            RejectCode.TRADING_HALTED,
            f"{order.symbol} is halted in a call auction: {order.order_type}"
            f"/{order.time_in_force} orders cannot execute now",
        )
    if phase is SessionPhase.TRADES_AT_CLOSE and order.order_type is not OrderType.LIMIT:
        return RejectCode.OUTSIDE_SESSION, "trades at close take limit orders only"
    if price is not None:
        if not instrument.tick_table.is_on_tick(price, day):
            tick = instrument.tick_table.tick_size(price, day)
            return RejectCode.OFF_TICK, f"{price} is not on the {tick} tick grid"
        if phase is SessionPhase.TRADES_AT_CLOSE:
            if closing_price is None or to_units(price) != to_units(closing_price):
                return (
                    RejectCode.OUTSIDE_BAND,
                    f"trades at close execute at the closing price {closing_price} only",
                )
        elif band is not None and not band.contains(price):
            which = "closing" if phase is SessionPhase.CLOSING_AUCTION else "daily"
            return (
                RejectCode.OUTSIDE_BAND,
                f"{price} is outside the {which} band [{band.lower}, {band.upper}]",
            )
    return None


def is_request_answer(report: ExecutionReport) -> bool:
    """True for a report that answers a cancel/replace request without changing the order's
    status (a replace acknowledgement or a refusal): mirrors must not ``apply`` it."""
    if report.status is OrderStatus.REJECTED:
        return report.reject_code is RejectCode.INVALID_ORDER and report.reason.startswith(
            "unknown order"
        )
    return report.last_qty == 0 and (
        report.reason.startswith("replaced") or report.reject_code is not None
    )


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One execution on the exchange's tape."""

    ts_ns: int
    symbol: str
    price: float
    qty: int
    condition: TradeCondition
    buy_id: str
    sell_id: str
    aggressor: int
    """1 buy, -1 sell, 0 auction (as in the TRADES schema)."""


@dataclass(slots=True)
class _Working:
    state: OrderState
    limit: int | None
    """Current limit in units (a market-to-limit order gets one when it converts)."""
    seq: int
    notional: int = 0
    """Sum of fill price units x quantity: the exact average price."""

    @property
    def leaves(self) -> int:
        return self.state.leaves_qty


@dataclass(slots=True)
class _Symbol:
    instrument: Instrument
    book: OrderBook
    band: Band | None = None
    closing_band: Band | None = None
    base: int = 0
    cb_ref: int = 0
    stop_up: int | None = None
    stop_down: int | None = None
    last: int | None = None
    close: int | None = None
    halt_end: int | None = None
    halts: int = 0
    collected: list[_Working] = field(default_factory=list)
    """Market and market-to-limit orders collected for an auction (limits rest on the book)."""

    @property
    def trading(self) -> bool:
        return self.band is not None


class MatchingEngine:
    """A simulated BIST exchange for many symbols (implements ``quant.execution.venue.Venue``).

    Call ``start_session(day, reference_prices)`` once per trading day with each symbol's
    previous close (the band's base), then drive it with ``on_time(ts_ns)`` and the ``Venue``
    calls. Everything is deterministic given the calls and their times.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        clock: Clock | None = None,
        calendar: TradingCalendar | None = None,
        bands: PriceBand | None = None,
        breakers: CircuitBreakers | None = None,
        fee_model: FeeModelLike | None = None,
        name: str = "SIM",
    ) -> None:
        self.name = name
        self.clock: Clock = clock if clock is not None else SimulatedClock()
        self.calendar = calendar if calendar is not None else TradingCalendar()
        self.bands = bands if bands is not None else PriceBand()
        self.breakers = breakers if breakers is not None else CircuitBreakers()
        self.fee_model = fee_model
        self._fees = Fees(fee_model)
        self._symbols: dict[str, _Symbol] = {
            i.symbol: _Symbol(i, OrderBook(i.symbol)) for i in instruments
        }
        self._orders: dict[str, _Working] = {}
        self._open: dict[str, _Working] = {}
        self._halted: dict[str, int] = {}
        """Halted symbols and when their call auction uncrosses."""
        """Open orders in entry order: what expires at the end of the day."""
        self.prints: list[TradePrint] = []
        """The day's tape (cleared by ``start_session``)."""
        self._day: date | None = None
        self._timeline: list[tuple[int, SessionPhase]] = []
        self._next = 0
        self._phase = SessionPhase.CLOSED
        self._continuous_end = 0
        self._now = 0
        self._exec_n = 0
        self._venue_n = 0

    # -- session and time -----------------------------------------------------------------

    @property
    def day(self) -> date | None:
        return self._day

    @property
    def now_ns(self) -> int:
        return self._now

    @property
    def phase(self) -> SessionPhase:
        """The market phase at the engine's current time (a halted symbol is in CONTINUOUS
        with ``is_halted`` true)."""
        return self._phase

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def start_session(
        self, day: date, reference_prices: Mapping[str, float]
    ) -> list[ExecutionReport]:
        """Open ``day``: bands from each symbol's previous close, fresh books and tape.

        A session still running is first played to its end (its orders expire), and the
        engine forgets the previous session's orders (``status`` no longer knows them). Symbols
        without a reference price do not trade today (their orders are rejected
        OUTSIDE_SESSION); a reference price for a symbol the engine does not list, or one that
        is not a positive finite number, is a setup error (ValueError).
        """
        out: list[ExecutionReport] = []
        if self._day is not None and self._next < len(self._timeline):
            out += self._advance(self._timeline[-1][0])
        unknown = sorted(set(reference_prices) - set(self._symbols))
        bad = sorted(s for s, p in reference_prices.items() if not (math.isfinite(p) and p > 0))
        if unknown or bad:
            raise ValueError(f"reference prices: unknown symbols {unknown}, invalid prices {bad}")
        self._day = day
        self.prints = []
        self._halted.clear()
        # Every order of the last session is terminal now and its reports went out; forgetting
        # them keeps a years-long backtest's memory flat. Client order ids must be unique
        # within a session (as FIX ClOrdIDs are per trading day).
        self._orders.clear()
        self._open.clear()
        info = self.calendar.session(day)
        self._timeline = []
        if info is not None:
            for w in info.windows:
                self._timeline.append((to_ns(datetime.combine(day, w.start, ISTANBUL)), w.phase))
            end = to_ns(datetime.combine(day, info.windows[-1].end, ISTANBUL))
            self._timeline.append((end, SessionPhase.CLOSED))
            self._continuous_end = to_ns(info.bounds(SessionPhase.CONTINUOUS)[1])
        self._next = 0
        self._phase = SessionPhase.CLOSED
        for sym, st in self._symbols.items():
            st.book.clear()
            st.collected.clear()
            st.closing_band = None
            st.last = st.close = st.halt_end = None
            st.halts = 0
            ref = reference_prices.get(sym)
            if ref is None or info is None:
                st.band = None
                continue
            st.band = self.bands.daily(ref, day)
            st.base = to_units(st.band.reference)
            self._set_cb_reference(st, st.base)
        return out

    def on_time(self, ts_ns: int | None = None) -> list[ExecutionReport]:
        """Advance to ``ts_ns`` (default: the clock), running the auctions, halt ends and expiry
        scheduled up to and including that instant, in time order."""
        return self._advance(self.clock.now_ns() if ts_ns is None else ts_ns)

    def _advance(self, ts: int) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        ts = max(ts, self._now)
        while True:
            t_phase = self._timeline[self._next][0] if self._next < len(self._timeline) else None
            t_halt = min(self._halted.values(), default=None)
            if t_halt is not None and t_halt <= ts and (t_phase is None or t_halt <= t_phase):
                self._now = max(self._now, t_halt)
                for sym in sorted(s for s, end in self._halted.items() if end == t_halt):
                    out += self._end_halt(self._symbols[sym])
                continue
            if t_phase is not None and t_phase <= ts:
                self._now = max(self._now, t_phase)
                phase = self._timeline[self._next][1]
                self._next += 1
                out += self._enter(phase)
                continue
            break
        self._now = ts
        return out

    def _enter(self, phase: SessionPhase) -> list[ExecutionReport]:
        self._phase = phase
        out: list[ExecutionReport] = []
        day = self._day
        assert day is not None
        trading = [s for s in self._symbols.values() if s.trading]
        if phase is SessionPhase.OPENING_UNCROSS:
            for st in trading:
                price = self._uncross(st, st.base, st.band, TradeCondition.OPENING_AUCTION, out)
                if price is not None:
                    self._set_cb_reference(st, price)
        elif phase is SessionPhase.CLOSING_PRICE_PUBLICATION:
            for st in trading:
                if st.halt_end is not None:
                    out += self._end_halt(st)
                last = st.last if st.last is not None else st.base
                st.closing_band = self.bands.closing(from_units(last), day, daily=st.band)
        elif phase is SessionPhase.CLOSING_UNCROSS:
            for st in trading:
                last = st.last if st.last is not None else st.base
                price = self._uncross(
                    st, last, st.closing_band, TradeCondition.CLOSING_AUCTION, out
                )
                st.close = price if price is not None else last
        elif phase is SessionPhase.CLOSED:
            out += self._expire_all()
        return out

    # -- the Venue protocol ---------------------------------------------------------------

    def submit(self, order: Order) -> list[ExecutionReport]:
        """Accept or reject ``order`` at the clock's time; immediate executions follow."""
        out = self._advance(self.clock.now_ns())
        ts = self._now
        oid = order.client_order_id
        if not isinstance(oid, str) or not isinstance(order.symbol, str):
            reason = "client order id and symbol must be strings"
            self._reject(OrderState(order), RejectCode.INVALID_ORDER, reason, out)
            return out
        if oid and oid in self._orders:
            state = OrderState(order)
            self._reject(state, RejectCode.DUPLICATE_ORDER_ID, f"order id {oid} is in use", out)
            return out
        st = self._symbols.get(order.symbol)
        reject: tuple[RejectCode, str] | None
        problems = order.problems() if st is None or not st.trading else []
        if problems:
            reject = RejectCode.INVALID_ORDER, "; ".join(problems)
        elif st is None:
            reject = RejectCode.UNKNOWN_SYMBOL, f"{order.symbol!r} is not listed"
        elif not st.trading or self._day is None:
            reject = RejectCode.OUTSIDE_SESSION, f"{order.symbol} does not trade today"
        else:
            reject = exchange_check(
                order,
                instrument=st.instrument,
                day=self._day,
                phase=self._phase,
                band=self._band_for(st),
                halted=st.halt_end is not None,
                closing_price=from_units(st.close) if st.close is not None else None,
            )
        w = _Working(OrderState(order), None, 0)
        if oid:
            self._orders[oid] = w
        if reject is not None:
            self._reject(w.state, reject[0], reject[1], out)
            return out
        assert st is not None
        self._venue_n += 1
        w.state.venue_order_id = f"{self.name}-{self._venue_n}"
        w.seq = st.book.next_seq()
        if order.order_type is OrderType.LIMIT:
            assert order.limit_price is not None
            w.limit = to_units(order.limit_price)
        self._emit(w, OrderStatus.ACCEPTED, ts, out)
        self._open[oid] = w
        if self._phase in CALL_PHASES or st.halt_end is not None:
            self._collect(st, w, ts)
        else:
            self._execute(st, w, ts, out)
        return out

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        out = self._advance(ts_ns)
        w = self._orders.get(client_order_id)
        if w is None:
            out.append(self._unknown(client_order_id))
            return out
        self._cancel(w, out)
        return out

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        """Cancel every open order (of ``symbol`` if given), oldest first."""
        out = self._advance(ts_ns)
        for w in list(self._open.values()):
            if symbol is None or w.state.order.symbol == symbol:
                self._cancel(w, out)
        return out

    def _cancel(self, w: _Working, out: list[ExecutionReport]) -> None:
        if not w.state.status.is_open:
            self._refuse(w, RejectCode.INVALID_ORDER, f"cannot cancel: order is {w.state.status}")
            out.append(w.state.history[-1])
            return
        if self._phase not in ENTRY_PHASES:
            self._refuse(w, RejectCode.OUTSIDE_SESSION, f"no cancels in the {self._phase} phase")
            out.append(w.state.history[-1])
            return
        st = self._symbols[w.state.order.symbol]
        self._take_off(st, w)
        self._emit(w, OrderStatus.CANCELLED, self._now, out, reason="cancelled on request")

    def replace(
        self,
        client_order_id: str,
        ts_ns: int,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> list[ExecutionReport]:
        """Change the total quantity and/or the limit price of an open order.

        ``quantity`` is the new total (filled shares included), as in FIX. A lower quantity at
        the same price keeps time priority; a new price or a higher quantity loses it. A new
        price that crosses the book in continuous trading executes at once, as a new order
        would.
        """
        out = self._advance(ts_ns)
        w = self._orders.get(client_order_id)
        if w is None:
            out.append(self._unknown(client_order_id))
            return out
        state = w.state
        order = state.order
        refusal: tuple[RejectCode, str] | None = None
        if not state.status.is_open:
            refusal = RejectCode.INVALID_ORDER, f"cannot replace: order is {state.status}"
        elif quantity is None and limit_price is None:
            refusal = RejectCode.INVALID_ORDER, "a replace must change quantity or price"
        elif limit_price is not None and w.limit is None:
            refusal = RejectCode.INVALID_ORDER, f"a {order.order_type} order has no price to change"
        elif quantity is not None and (not isinstance(quantity, int) or isinstance(quantity, bool)):
            refusal = RejectCode.INVALID_ORDER, f"quantity {quantity!r} is not a whole number"
        elif quantity is not None and quantity <= state.filled_qty:
            refusal = (
                RejectCode.INVALID_ORDER,
                f"new quantity {quantity} must exceed the {state.filled_qty} already filled",
            )
        st = self._symbols[order.symbol]
        new_limit = w.limit
        if refusal is None:
            price = limit_price if limit_price is not None else None
            if price is None and w.limit is not None:
                price = from_units(w.limit)
            # Check the amended terms as a fresh limit order would be checked.
            probe = dataclasses.replace(
                order,
                quantity=quantity if quantity is not None else order.quantity,
                order_type=OrderType.LIMIT if w.limit is not None else order.order_type,
                limit_price=price if w.limit is not None else None,
                time_in_force=TimeInForce.DAY,
            )
            assert self._day is not None
            refusal = exchange_check(
                probe,
                instrument=st.instrument,
                day=self._day,
                phase=self._phase,
                band=self._band_for(st),
                closing_price=from_units(st.close) if st.close is not None else None,
            )
            if price is not None:
                new_limit = to_units(price)
        if refusal is not None:
            self._refuse(w, refusal[0], f"replace refused: {refusal[1]}")
            out.append(state.history[-1])
            return out
        new_qty = quantity if quantity is not None else order.quantity
        new_leaves = new_qty - state.filled_qty
        lost = True
        if order.client_order_id in st.book:
            lost = st.book.amend(order.client_order_id, new_leaves, new_limit, self._now)
        else:  # a market or market-to-limit order collected for an auction
            lost = new_leaves > w.leaves
            if lost:
                w.seq = st.book.next_seq()
                st.collected.remove(w)
                st.collected.append(w)
        state.order = dataclasses.replace(order, quantity=new_qty)
        w.limit = new_limit
        if order.order_type is OrderType.LIMIT and new_limit is not None:
            state.order = dataclasses.replace(state.order, limit_price=from_units(new_limit))
        self._record(
            w,
            ExecutionReport(
                client_order_id=order.client_order_id,
                status=state.status,
                ts_ns=self._now,
                symbol=order.symbol,
                side=order.side,
                venue_order_id=state.venue_order_id,
                cum_qty=state.filled_qty,
                leaves_qty=new_leaves,
                avg_price=self._avg(w),
                reason="replaced" + (" (time priority lost)" if lost else " (time priority kept)"),
            ),
        )
        out.append(state.history[-1])
        # A new price that crosses the book executes now, as a new order at that price would.
        if (
            new_limit is not None
            and order.client_order_id in st.book
            and st.halt_end is None
            and self._phase in (SessionPhase.CONTINUOUS, SessionPhase.TRADES_AT_CLOSE)
        ):
            opp = st.book.best(order.side.opposite)
            if opp is not None and (
                opp <= new_limit if order.side is Side.BUY else opp >= new_limit
            ):
                st.book.cancel(order.client_order_id)
                self._execute(st, w, self._now, out)
        return out

    def status(self, client_order_id: str) -> OrderState | None:
        w = self._orders.get(client_order_id)
        return None if w is None else w.state

    # -- queries --------------------------------------------------------------------------

    def book(self, symbol: str) -> OrderBook:
        return self._symbols[symbol].book

    def is_halted(self, symbol: str) -> bool:
        return self._symbols[symbol].halt_end is not None

    def halt_end_ns(self, symbol: str) -> int | None:
        return self._symbols[symbol].halt_end

    def band(self, symbol: str) -> Band | None:
        """The band orders of ``symbol`` are checked against now (closing band at the close)."""
        return self._band_for(self._symbols[symbol])

    def last_price(self, symbol: str) -> float | None:
        last = self._symbols[symbol].last
        return None if last is None else from_units(last)

    def closing_price(self, symbol: str) -> float | None:
        close = self._symbols[symbol].close
        return None if close is None else from_units(close)

    def reference_price(self, symbol: str) -> float:
        """The circuit breaker's static reference (last auction price, else the base price)."""
        return from_units(self._symbols[symbol].cb_ref)

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return [
            w.state for w in self._open.values() if symbol is None or w.state.order.symbol == symbol
        ]

    # -- internals: matching --------------------------------------------------------------

    def _band_for(self, st: _Symbol) -> Band | None:
        if self._phase in (
            SessionPhase.CLOSING_PRICE_PUBLICATION,
            SessionPhase.CLOSING_AUCTION,
            SessionPhase.CLOSING_UNCROSS,
        ):
            return st.closing_band or st.band
        return st.band

    def _set_cb_reference(self, st: _Symbol, ref: int) -> None:
        """Set the static reference and the first prices that trip the breaker either way."""
        st.cb_ref = ref
        day = self._day
        assert day is not None
        pct = self.breakers.rule_on(day).single_stock_move_pct
        ref_f = from_units(ref)

        def tripped(u: int) -> bool:
            return u > 0 and self.breakers.single_stock_triggered(from_units(u), ref_f, day)

        up = math.ceil(ref * (1 + pct)) - 2
        while not tripped(up):
            up += 1
        down = math.floor(ref * (1 - pct)) + 2
        while down > 0 and not tripped(down):
            down -= 1
        st.stop_up, st.stop_down = up, down

    def _collect(self, st: _Symbol, w: _Working, ts: int) -> None:
        """Hold an order for the coming uncross: limits on the (possibly crossed) book."""
        order = w.state.order
        if w.limit is not None:
            st.book.add(order.client_order_id, order.side, w.limit, w.leaves, ts)
            w.seq = st.book.get(order.client_order_id).seq  # type: ignore[union-attr]
        else:
            st.collected.append(w)

    def _execute(self, st: _Symbol, w: _Working, ts: int, out: list[ExecutionReport]) -> None:
        """Match an incoming order in continuous trading or trades at close."""
        order = w.state.order
        side, book = order.side, st.book
        tac = self._phase is SessionPhase.TRADES_AT_CLOSE
        continuous = self._phase is SessionPhase.CONTINUOUS
        if order.order_type is OrderType.MARKET_TO_LIMIT and w.limit is None:
            best = book.best(side.opposite)
            if best is None:
                self._emit(
                    w,
                    OrderStatus.CANCELLED,
                    ts,
                    out,
                    reason="market-to-limit order found no opposite orders",
                )
                return
            w.limit = best
        limit = w.limit
        stop = (st.stop_up if side is Side.BUY else st.stop_down) if continuous else None
        qty = w.leaves
        halt = False
        if order.time_in_force is TimeInForce.FOK:
            available = book.executable_qty(side, limit, stop, cap=qty)
            if available < qty:
                halt = (
                    stop is not None and book.executable_qty(side, limit, None, cap=qty) > available
                )
                if halt:
                    self._halt(st, ts)
                self._emit(
                    w,
                    OrderStatus.CANCELLED,
                    ts,
                    out,
                    reason="fill-or-kill order could not be filled in full"
                    + (" before the circuit breaker" if halt else ""),
                )
                return
        price = st.close if tac else None
        matches = book.match(side, qty, limit, order.client_order_id, stop, price)
        if matches:
            cond = TradeCondition.TRADES_AT_CLOSE if tac else TradeCondition.CONTINUOUS
            self._fills(st, w, matches, ts, cond, out)
        if w.leaves and stop is not None:
            nxt = book.best(side.opposite)
            if nxt is not None and (
                limit is None or (nxt <= limit if side is Side.BUY else nxt >= limit)
            ):
                halt = True
                self._halt(st, ts)
        if not w.leaves:
            return
        if order.order_type is OrderType.MARKET or order.time_in_force is not TimeInForce.DAY:
            reason = (
                "halted by the circuit breaker"
                if halt
                else "market order: no more liquidity"
                if order.order_type is OrderType.MARKET
                else f"{order.time_in_force}: unfilled rest cancelled"
            )
            self._emit(w, OrderStatus.CANCELLED, ts, out, reason=reason)
            return
        assert w.limit is not None
        book.add(order.client_order_id, side, w.limit, w.leaves, ts)

    def _fills(
        self,
        st: _Symbol,
        taker: _Working,
        matches: list[Match],
        ts: int,
        cond: TradeCondition,
        out: list[ExecutionReport],
    ) -> None:
        side = taker.state.order.side
        sym = st.instrument.symbol
        for m in matches:
            maker = self._orders[m.maker_id]
            self._fill(taker, m.qty, m.price, ts, TAKER, out)
            self._fill(maker, m.qty, m.price, ts, MAKER, out)
            buy, sell = (m.taker_id, m.maker_id) if side is Side.BUY else (m.maker_id, m.taker_id)
            self.prints.append(
                TradePrint(ts, sym, from_units(m.price), m.qty, cond, buy, sell, side.sign)
            )
            st.last = m.price

    def _fill(
        self, w: _Working, qty: int, price: int, ts: int, liquidity: str, out: list[ExecutionReport]
    ) -> None:
        order = w.state.order
        w.notional += price * qty
        done = w.state.filled_qty + qty == order.quantity
        fees = self._fees.charge(order.symbol, order.side, qty, from_units(price), liquidity, ts)
        self._emit(
            w,
            OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
            ts,
            out,
            last_qty=qty,
            last_price=price,
            fees=fees,
            liquidity=liquidity,
        )

    def _uncross(
        self,
        st: _Symbol,
        reference: int,
        band: Band | None,
        cond: TradeCondition,
        out: list[ExecutionReport],
    ) -> int | None:
        """Run the call auction of ``st`` and settle its market/market-to-limit orders."""
        book, ts = st.book, self._now
        orders = [
            AuctionOrder(r.order_id, r.side, r.qty, r.price, r.seq)
            for side in (Side.BUY, Side.SELL)
            for r in book.orders(side)
        ]
        orders += [
            AuctionOrder(w.state.order.client_order_id, w.state.order.side, w.leaves, None, w.seq)
            for w in st.collected
        ]
        lower = to_units(band.lower) if band is not None else None
        upper = to_units(band.upper) if band is not None else None
        assert self._day is not None
        grid = st.instrument.tick_table.schedule_on(self._day)
        result = uncross(orders, reference, lower, upper, grid)
        price = result.price
        sym = st.instrument.symbol
        for f in result.fills:
            assert price is not None
            for oid in (f.buy_id, f.sell_id):
                if oid in book:
                    book.fill(oid, f.qty)
                self._fill(self._orders[oid], f.qty, price, ts, AUCTION, out)
            self.prints.append(
                TradePrint(ts, sym, from_units(price), f.qty, cond, f.buy_id, f.sell_id, 0)
            )
        if price is not None:
            st.last = price
        for w in st.collected:
            if not w.leaves:
                continue
            order = w.state.order
            if order.order_type is OrderType.MARKET_TO_LIMIT and price is not None:
                w.limit = price
                book.add(order.client_order_id, order.side, price, w.leaves, ts)
            else:
                reason = (
                    "market order: unexecuted in the auction"
                    if order.order_type is OrderType.MARKET
                    else "market-to-limit order: the auction found no price"
                )
                self._emit(w, OrderStatus.CANCELLED, ts, out, reason=reason)
        st.collected.clear()
        return price

    def _halt(self, st: _Symbol, ts: int) -> None:
        if st.halt_end is not None:
            return
        assert self._day is not None
        length = _td_ns(self.breakers.rule_on(self._day).single_stock_auction)
        end = min(ts + length, self._continuous_end)
        if end > ts:
            st.halt_end = end
            st.halts += 1
            self._halted[st.instrument.symbol] = end

    def _end_halt(self, st: _Symbol) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        st.halt_end = None
        self._halted.pop(st.instrument.symbol, None)
        ref = st.last if st.last is not None else st.cb_ref
        price = self._uncross(st, ref, st.band, TradeCondition.HALT_AUCTION, out)
        if price is not None:
            self._set_cb_reference(st, price)
        return out

    def _take_off(self, st: _Symbol, w: _Working) -> None:
        oid = w.state.order.client_order_id
        if st.book.cancel(oid) is None and w in st.collected:
            st.collected.remove(w)

    def _expire_all(self) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for w in list(self._open.values()):
            self._take_off(self._symbols[w.state.order.symbol], w)
            self._emit(w, OrderStatus.EXPIRED, self._now, out, reason="day order expired")
        for st in self._symbols.values():
            st.book.clear()
            st.collected.clear()
            st.halt_end = None
        self._halted.clear()
        return out

    # -- internals: reports ---------------------------------------------------------------

    @staticmethod
    def _avg(w: _Working) -> float:
        filled = w.state.filled_qty
        return w.notional / filled / PRICE_SCALE if filled else 0.0

    def _emit(
        self,
        w: _Working,
        status: OrderStatus,
        ts: int,
        out: list[ExecutionReport],
        *,
        last_qty: int = 0,
        last_price: int = 0,
        fees: float = 0.0,
        liquidity: str = "",
        reason: str = "",
        reject_code: RejectCode | None = None,
    ) -> None:
        """Build a report, apply it to the order's state (the state machine guards it), keep
        the open-order index in step, and hand it out."""
        state = w.state
        order = state.order
        cum = state.filled_qty + last_qty
        self._exec_n += 1
        report = ExecutionReport(
            client_order_id=order.client_order_id,
            status=status,
            ts_ns=ts,
            symbol=order.symbol,
            side=order.side if isinstance(order.side, Side) else None,
            exec_id=f"{self.name}-E{self._exec_n}",
            venue_order_id=state.venue_order_id,
            last_qty=last_qty,
            last_price=from_units(last_price) if last_qty else 0.0,
            cum_qty=cum,
            leaves_qty=0 if status.is_terminal else order.quantity - cum,
            avg_price=w.notional / cum / PRICE_SCALE if cum else 0.0,
            fees=fees,
            reject_code=reject_code,
            reason=reason,
            liquidity=liquidity,
        )
        state.apply(report)
        if status.is_terminal:
            self._open.pop(order.client_order_id, None)
        out.append(report)

    def _reject(
        self, state: OrderState, code: RejectCode, reason: str, out: list[ExecutionReport]
    ) -> None:
        self._emit(
            _Working(state, None, 0),
            OrderStatus.REJECTED,
            self._now,
            out,
            reject_code=code,
            reason=reason,
        )

    def _refuse(self, w: _Working, code: RejectCode, reason: str) -> None:
        """Answer a cancel/replace request the venue will not carry out (no state change)."""
        state = w.state
        self._record(
            w,
            ExecutionReport(
                client_order_id=state.order.client_order_id,
                status=state.status,
                ts_ns=self._now,
                symbol=state.order.symbol,
                side=state.order.side,
                venue_order_id=state.venue_order_id,
                cum_qty=state.filled_qty,
                leaves_qty=state.leaves_qty,
                avg_price=self._avg(w),
                reject_code=code,
                reason=reason,
            ),
        )

    def _record(self, w: _Working, report: ExecutionReport) -> None:
        self._exec_n += 1
        report = dataclasses.replace(report, exec_id=f"{self.name}-E{self._exec_n}")
        w.state.history.append(report)

    def _unknown(self, client_order_id: str) -> ExecutionReport:
        self._exec_n += 1
        return ExecutionReport(
            client_order_id=client_order_id,
            status=OrderStatus.REJECTED,
            ts_ns=self._now,
            exec_id=f"{self.name}-E{self._exec_n}",
            reject_code=RejectCode.INVALID_ORDER,
            reason=f"unknown order id {client_order_id!r}",
        )
