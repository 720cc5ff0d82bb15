"""The paper exchange: a ``Venue`` that fills our orders against the market data pushed to it.

``PaperExchange`` is the backtest's venue side, lifted out of the loop so the live actors can
host it: the same exchange rules (``exchange_check``: session phase, tick grid, band, halts,
with sessions and phases from ``TradingCalendar``), the same ``BarFillModel`` (fill at the next
bar's open or through a limit, volume-participation cap, partial fills, IOC/FOK, the slippage
hook), the same order-level fees (``quant.sim.costs``) and the same session handling (orders
held through the no-entry phases, off-session orders entering at the next open, DAY orders
expiring at the session's end). Time comes from an injected ``Clock``: the wall clock live,
event time (a ``SimulatedClock`` set from the bars) in a replay. Nothing here sleeps or reads
the system time.

How to drive it (the backtest's order of events, which parity depends on)
-------------------------------------------------------------------------
1. ``start_session(day, previous_closes, adv=..., volatility=...)`` at the session's first
   order-entry time: bands from the previous closes, orders held since the last session enter
   the opening auction.
2. For every bar, in ``(ts_end, symbol)`` order across symbols: ``on_bar(symbol, bar)``
   *before* the strategy sees the bar. It first runs what was scheduled strictly before the
   bar's close (held orders entering the next phase, halts), then offers the symbol's working
   orders to the fill model. Fills are stamped ``bar.ts_end_ns``.
3. The strategy decides at the bar's close: ``submit`` with the clock at ``bar.ts_end_ns``.
   An order can therefore only fill on a *later* bar of its symbol, never the one it was
   decided on. ``on_bar`` also refuses to fill an order with a bar that ended before the order
   entered (a bar delivered late or twice), and ignores a bar not newer than the symbol's last
   one (counted in ``stale_bars``), so at-least-once delivery cannot double-fill.
4. ``end_session()`` after the last bar (or ``on_time(t)`` with ``t`` past the session's end,
   live): DAY orders expire. Orders sent after that wait for the next session's open.

``on_time(ts_ns)`` runs the timetable up to ``ts_ns`` without a bar (live: call it on a timer so
held orders enter and the session ends even when no bar arrives). Every call returns every
report it caused, for any order, like ``MatchingEngine``.

Where the paper exchange and the backtest must differ
-----------------------------------------------------
* Risk (limits, buying power, the kill switch) is not the venue's job: the backtest's
  ``RiskEngine`` check runs before its router; live it is the ``RiskGuard``. Parity assumes
  the same risk decisions upstream.
* The backtest knows a session's first bar and last bar in advance and stretches the session
  to them if the calendar is narrower; the paper exchange takes the calendar's times (or the
  ``t0_ns`` / ``t_end_ns`` given to ``start_session``). Identical on exchange data.
* Corporate actions: the backtest applies them to the portfolio and cancels the symbol's
  pending orders before the session; here the host passes ``purge_symbols`` to
  ``start_session`` for the second part (positions are not the venue's).
* Held orders (sent while the exchange computes an auction or after the session) are answered
  with a report of status NEW and a reason starting "held", exactly as the backtest's router
  answers them; it is not a state transition (``is_held(report)``): a mirror ``OrderState``
  must skip it, as it skips ``is_request_answer`` reports. The ACCEPTED or REJECTED report
  follows when the order enters.
* Cancels are honoured in every phase, as in the backtest (the bar model has no book to
  freeze during an uncross); ``MatchingEngine`` refuses them while it uncrosses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from quant.clock import Clock
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

# The router rules are the backtest's own: the same phase tables and lookups, not copies.
from quant.sim.backtest import (
    _HOLD_TARGET,
    _NO_MARKET_PHASES,
    BacktestConfig,
    HaltWindow,
    SessionRules,
    _phase_at,
    _phase_start,
)
from quant.sim.costs import CostModel, MarketConditions, NoSlippage, ZeroFees, bist_default_costs
from quant.sim.costs import no_costs as _no_costs
from quant.sim.fills import BarFillModel, BarView, utc_day
from quant.sim.matching import ENTRY_PHASES, exchange_check, to_ns

__all__ = ["PaperExchange", "is_held"]

_INF = math.inf
_HELD = "held by the venue"


def is_held(report: ExecutionReport) -> bool:
    """True for the answer to an order the venue holds for a later phase or session (status
    NEW): not a state transition, so a mirror ``OrderState`` must not ``apply`` it."""
    return report.status is OrderStatus.NEW and report.reason.startswith(_HELD)


@dataclass(slots=True)
class _Book:
    state: OrderState
    seq: int
    entered_ns: int | None = None
    """When the order entered the market (None while held)."""
    value: float = 0.0
    """Sum of fill price x quantity (the order-level fee's base)."""
    fees: float = 0.0
    met_bar: bool = False


@dataclass(order=True, slots=True)
class _Timer:
    ts: int
    seq: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


class PaperExchange:
    """A paper venue filling orders on pushed bars with the backtest's rules (``Venue``).

    ``calendar`` None (or ``session_rules="bars"``) runs the backtest's ``bars`` rules: no
    phases, every order enters continuous trading, and a DAY order expires at the end of the
    session in which it met its first bar.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        clock: Clock,
        *,
        calendar: TradingCalendar | None = None,
        session_rules: SessionRules | str = SessionRules.EXCHANGE,
        costs: CostModel | None = None,
        max_participation: float = 0.1,
        fill_on_touch: bool = False,
        ticks: TickSizeTable = BIST_SHARE_TICKS,
        price_bands: bool = True,
        default_volatility: float = 0.02,
        name: str = "PAPER",
    ) -> None:
        self.name = name
        self.clock = clock
        self.instruments: dict[str, Instrument] = {i.symbol: i for i in instruments}
        self.calendar = calendar
        self.exchange_rules = (
            SessionRules(session_rules) is SessionRules.EXCHANGE and calendar is not None
        )
        self.costs = costs if costs is not None else _no_costs()
        self._fees_on = not isinstance(self.costs.fees, ZeroFees)
        slipping = not isinstance(self.costs.slippage, NoSlippage)
        self.fill_model = BarFillModel(
            max_participation=max_participation,
            slippage=self._slippage if slipping else None,
            fill_on_touch=fill_on_touch,
            ticks=ticks,
            name=name,
        )
        self.band_rule = PriceBand(ticks=ticks) if price_bands else None
        self.default_volatility = default_volatility
        # market state
        self.last: dict[str, float] = {}
        self.bands: dict[str, Band] = {}
        self.adv: dict[str, float] = {}
        self.vol: dict[str, float] = {}
        self.halted: set[str] = set()
        self.market_halted = False
        self._halts: list[HaltWindow] = []
        self._cumvol: dict[str, int] = {}
        self._cur_cumvol = 0
        self._last_bar_end: dict[str, int] = {}
        self.stale_bars = 0
        """Bars ignored because they were not newer than the symbol's last bar."""
        self.bars_outside_session = 0
        self.unknown_bars = 0
        # orders
        self._books: dict[str, _Book] = {}
        """Every order of the current session (and open ones from before), by client id."""
        self.working: dict[str, list[OrderState]] = {}
        """Orders in the market, per symbol, in time priority."""
        self.off_session: list[OrderState] = []
        self._seq = itertools.count()
        self._timers: list[_Timer] = []
        # session
        self.day: date | None = None
        self.session_open = False
        self.t0 = 0
        self.t_end: float = _INF
        self.windows: list[tuple[int, int, SessionPhase]] | None = None
        self._now = 0
        self._exec_n = 0

    @classmethod
    def from_config(
        cls,
        config: BacktestConfig,
        instruments: Iterable[Instrument | str],
        clock: Clock,
        name: str = "PAPER",
    ) -> PaperExchange:
        """The venue ``BacktestEngine`` would build from ``config``: costs, participation cap,
        fill on touch, tick table, bands, calendar and session rules."""
        ticks = (
            TickSizeTable.fixed(config.tick_size)
            if config.tick_size is not None
            else BIST_SHARE_TICKS
        )
        insts = [
            i if isinstance(i, Instrument) else Instrument(i, tick_table=ticks) for i in instruments
        ]
        costs = bist_default_costs(config.commission_bps) if config.costs == "bist" else _no_costs()
        return cls(
            insts,
            clock,
            calendar=TradingCalendar(config.calendar) if config.calendar else None,
            session_rules=config.session_rules,
            costs=costs,
            max_participation=config.max_participation,
            fill_on_touch=config.fill_on_touch,
            ticks=ticks,
            price_bands=config.price_bands,
            default_volatility=config.default_volatility,
            name=name,
        )

    # -- sessions and time ------------------------------------------------------------------

    def start_session(
        self,
        day: date,
        previous_closes: Mapping[str, float],
        *,
        adv: Mapping[str, float] | None = None,
        volatility: Mapping[str, float] | None = None,
        purge_symbols: Iterable[str] = (),
        t0_ns: int | None = None,
        t_end_ns: int | None = None,
    ) -> list[ExecutionReport]:
        """Open ``day``: bands from ``previous_closes``, held orders enter the opening auction.

        ``adv`` (shares) and ``volatility`` (daily) feed the slippage model, as the backtest's
        daily statistics do (ADV persists across sessions until replaced; volatility is for
        this session, ``default_volatility`` otherwise). ``purge_symbols``: symbols with a
        corporate action today, whose pending orders are cancelled first. ``t0_ns`` /
        ``t_end_ns`` override the calendar's first order time and last trade time (needed
        without a calendar; without ``t_end_ns`` such a session ends at ``end_session``).
        """
        out: list[ExecutionReport] = []
        if self.session_open:
            out += self.end_session()
        info = None
        if self.calendar is not None:
            with contextlib.suppress(ValueError):
                info = self.calendar.session(day)
        t0 = t0_ns if t0_ns is not None else to_ns(info.first_order_time) if info else None
        t_end = t_end_ns if t_end_ns is not None else to_ns(info.last_trade_time) if info else None
        t0 = max(t0 if t0 is not None else self._clock(), self._now)
        self._now = t0
        self.day, self.t0 = day, t0
        self.t_end = max(t_end, t0) if t_end is not None else _INF
        self.windows = (
            [
                (
                    to_ns(datetime.combine(day, w.start, ISTANBUL)),
                    to_ns(datetime.combine(day, w.end, ISTANBUL)),
                    w.phase,
                )
                for w in info.windows
            ]
            if self.exchange_rules and info is not None
            else None
        )
        self.session_open = True
        # orders of earlier sessions that are finished are forgotten (ids are per session)
        self._books = {oid: b for oid, b in self._books.items() if not b.state.status.is_terminal}
        for symbol in purge_symbols:
            out += self._purge(symbol, t0, "cancelled before the session: corporate action")
        self.last.update({s: float(p) for s, p in previous_closes.items() if s in self.instruments})
        self.bands.clear()
        if self.band_rule is not None:
            for symbol, close in previous_closes.items():
                if symbol in self.instruments and close > 0:
                    with contextlib.suppress(ValueError):
                        self.bands[symbol] = self.band_rule.daily(close, day)
        if adv is not None:
            self.adv.update({s: float(a) for s, a in adv.items()})
        self.vol = dict(volatility) if volatility is not None else {}
        self._cumvol.clear()
        self._timers = []
        for h in self._halts:
            if h.end_ns > t0 and h.start_ns < self.t_end:
                self._push(max(h.start_ns, t0), "halt_start", h)
                self._push(h.end_ns, "halt_end", h)
        held, self.off_session = self.off_session, []
        phase = SessionPhase.OPENING_AUCTION if self.windows else SessionPhase.CONTINUOUS
        for state in held:
            out.append(self._enter(state, t0, phase))
        return out

    def end_session(self, ts_ns: int | None = None) -> list[ExecutionReport]:
        """Close the session: what was scheduled up to its end runs, DAY orders expire."""
        if not self.session_open:
            return []
        end = self.t_end if self.t_end != _INF else (ts_ns if ts_ns is not None else self._clock())
        out = self._fire(int(end), inclusive=True)
        t_end = max(int(end), self._now)
        self._now = t_end
        for symbol in sorted(self.working):
            states = self.working[symbol]
            if not states:
                continue
            if self.windows is not None:
                expiring = states
            else:
                expiring = [s for s in states if self._books[s.order.client_order_id].met_bar]
            if expiring:
                out += self.fill_model.expire(expiring, t_end)
                self.working[symbol] = [s for s in states if not s.status.is_terminal]
        self.session_open = False
        return out

    def on_time(self, ts_ns: int | None = None) -> list[ExecutionReport]:
        """Run everything scheduled strictly before ``ts_ns`` (default: the clock); past the
        session's end, close the session."""
        ts = self._clock() if ts_ns is None else int(ts_ns)
        out = self._fire(ts)
        if self.session_open and ts > self.t_end:
            out += self.end_session()
        self._now = max(self._now, ts)
        return out

    def add_halt(self, symbol: str | None, start_ns: int, end_ns: int) -> None:
        """A trading halt of ``symbol`` (None: the whole market) over ``[start_ns, end_ns)``:
        no fills, and market/IOC/FOK orders are refused TRADING_HALTED while it lasts."""
        halt = HaltWindow(symbol, int(start_ns), int(end_ns))
        self._halts.append(halt)
        if self.session_open and halt.end_ns > self._now and halt.start_ns < self.t_end:
            self._push(max(halt.start_ns, self._now), "halt_start", halt)
            self._push(halt.end_ns, "halt_end", halt)

    def set_halted(self, symbol: str | None, halted: bool) -> None:
        """Halt or resume ``symbol`` (None: the market) now (a status message from the feed)."""
        if symbol is None:
            self.market_halted = halted
        elif halted:
            self.halted.add(symbol)
        else:
            self.halted.discard(symbol)

    def _clock(self) -> int:
        return int(self.clock.now_ns())

    def _push(self, ts: int, kind: str, payload: Any) -> None:
        heapq.heappush(self._timers, _Timer(ts, next(self._seq), kind, payload))

    def _fire(self, before: int, inclusive: bool = False) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        timers = self._timers
        while timers and (timers[0].ts < before or (inclusive and timers[0].ts == before)):
            timer = heapq.heappop(timers)
            self._now = max(self._now, timer.ts)
            if timer.kind == "enter":
                state, phase = timer.payload
                if state.status is OrderStatus.NEW:
                    out.append(self._enter(state, timer.ts, phase))
            elif timer.kind == "halt_start":
                self.set_halted(timer.payload.symbol, True)
            elif timer.kind == "halt_end":
                self.set_halted(timer.payload.symbol, False)
        return out

    # -- market data ------------------------------------------------------------------------

    def on_bar(self, symbol: str, bar: BarView) -> list[ExecutionReport]:
        """A completed bar of ``symbol``: offer its working orders to the fill model."""
        ts = int(bar.ts_end_ns)
        if symbol not in self.instruments:
            self.unknown_bars += 1
            return []
        if ts <= self._last_bar_end.get(symbol, -1):
            self.stale_bars += 1
            return []
        self._last_bar_end[symbol] = ts
        out = self._fire(ts)
        self._now = max(self._now, ts)
        if not self.session_open:
            self.bars_outside_session += 1
            self.last[symbol] = bar.close
            return out
        cum = self._cumvol.get(symbol, 0) + int(bar.volume)
        self._cumvol[symbol] = cum
        states = self.working.get(symbol)
        if states:
            books = self._books
            for st in states:
                books[st.order.client_order_id].met_bar = True
            if not (symbol in self.halted or self.market_halted):
                eligible = states
                if any((books[s.order.client_order_id].entered_ns or 0) >= ts for s in states):
                    eligible = [
                        s for s in states if (books[s.order.client_order_id].entered_ns or 0) < ts
                    ]
                self._cur_cumvol = cum
                reports = self.fill_model.fill_on_bar(eligible, bar, self.bands.get(symbol))
                for r in reports:
                    out.append(self._book_fill(r) if r.last_qty else r)
                if reports:
                    self.working[symbol] = [s for s in states if not s.status.is_terminal]
        self.last[symbol] = bar.close
        return out

    def _slippage(self, side: Side, qty: int, price: float, bar: BarView) -> float:
        """The backtest's market conditions: ADV (today's volume so far before there is one),
        the session's daily volatility (or the default) and the bar's volume."""
        adv = self.adv.get(bar.symbol)
        if adv is None or not adv > 0:
            adv = float(self._cur_cumvol)
        market = MarketConditions(
            volatility=self.vol.get(bar.symbol, self.default_volatility),
            adv=adv,
            bar_volume=float(bar.volume),
        )
        return self.costs.slippage.price(side, qty, price, market)

    def _book_fill(self, r: ExecutionReport) -> ExecutionReport:
        """Order-level fees as the backtest charges them: the order pays one order's fee on all
        it has filled (minimum once, kuruş rounding on the cumulative value); this fill pays
        the increase."""
        book = self._books[r.client_order_id]
        state = book.state
        order = state.order
        qty, price = r.last_qty, r.last_price
        if self._fees_on:
            prev = state.filled_qty - qty
            liquidity = r.liquidity or "taker"
            if prev == 0:
                fee = self.costs.fee(order.symbol, order.side, qty, price, liquidity, r.ts_ns)
            else:
                cum = prev + qty
                total = self.costs.fee(
                    order.symbol,
                    order.side,
                    cum,
                    (book.value + qty * price) / cum,
                    liquidity,
                    r.ts_ns,
                )
                fee = max(round(total - book.fees, 2), 0.0)
            if fee:
                r = dataclasses.replace(r, fees=fee)
                state.fees = round(state.fees + fee, 2)
                history = state.history
                for k in range(len(history) - 1, -1, -1):
                    if history[k].exec_id == r.exec_id:
                        history[k] = r
                        break
            book.fees = round(book.fees + fee, 2)
        book.value += qty * price
        self.costs.on_fill(order.symbol, order.side, qty, price, r.ts_ns)
        return r

    # -- the Venue protocol -----------------------------------------------------------------

    def submit(self, order: Order) -> list[ExecutionReport]:
        """Enter, hold or refuse ``order`` at the clock's time (never raises)."""
        now = self._clock()
        out = self.on_time(now)
        now = max(now, self._now)
        if not isinstance(order, Order):
            text = repr(order)[:80]
            bad = Order("", "", Side.BUY, 0, OrderType.MARKET, ts_ns=now)
            out.append(
                self._reject(
                    OrderState(bad), RejectCode.INVALID_ORDER, f"not an Order: {text}", now
                )
            )
            return out
        state = OrderState(order)
        problem = _malformed(order)
        if problem:
            out.append(self._reject(state, RejectCode.INVALID_ORDER, problem, now))
            return out
        oid = order.client_order_id
        if oid in self._books:
            out.append(
                self._reject(
                    state,
                    RejectCode.DUPLICATE_ORDER_ID,
                    f"order id {oid!r} is already used in this session",
                    now,
                )
            )
            return out
        problems = order.problems()
        if problems:  # the fill model's state machine cannot even hold such an order
            out.append(self._reject(state, RejectCode.INVALID_ORDER, "; ".join(problems), now))
            return out
        if order.symbol not in self.instruments:
            reason = f"{order.symbol!r} is not listed"
            out.append(self._reject(state, RejectCode.UNKNOWN_SYMBOL, reason, now))
            return out
        self._books[oid] = _Book(state, next(self._seq))
        out.append(self._route(state, now))
        return out

    def _route(self, state: OrderState, now: int) -> ExecutionReport:
        """Enter now, hold for a later phase or session, or refuse (the backtest's router)."""
        order = state.order
        if not self.session_open or now >= self.t_end:
            return self._hold_off_session(state, now)
        windows = self.windows
        if windows is None:
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
            return self._reject(
                state,
                RejectCode.OUTSIDE_SESSION,
                f"the exchange takes no orders in the {phase} phase",
                now,
            )
        if order.time_in_force is not TimeInForce.DAY:
            return self._reject(
                state,
                RejectCode.OUTSIDE_SESSION,
                f"{order.time_in_force} orders need continuous trading now; the exchange takes no "
                f"orders in the {phase} phase",
                now,
            )
        if target is SessionPhase.TRADES_AT_CLOSE and order.order_type is not OrderType.LIMIT:
            return self._reject(
                state,
                RejectCode.OUTSIDE_SESSION,
                f"sent in the {phase} phase: the next phase, trades at the close, takes limit "
                "orders at the closing price only",
                now,
            )
        static = self._static_check(state)
        if static is not None:
            return static
        self._push(when, "enter", (state, target))
        return self._held(state, now, f"{_HELD}: enters when the {target} phase starts")

    def _hold_off_session(self, state: OrderState, now: int) -> ExecutionReport:
        if state.order.time_in_force is not TimeInForce.DAY:
            return self._reject(
                state,
                RejectCode.OUTSIDE_SESSION,
                "the market is closed: IOC/FOK orders cannot wait for the next session",
                now,
            )
        static = self._static_check(state)
        if static is not None:
            return static
        self.off_session.append(state)
        return self._held(
            state, now, f"{_HELD}: enters at the next session's open (off-session order)"
        )

    def _static_check(self, state: OrderState) -> ExecutionReport | None:
        """What can be refused before an order enters (structure, lots, tick grid): a broker
        validates an order it holds; band and phase are checked when it enters."""
        order = state.order
        day = self.day or utc_day(self._now)
        problem = exchange_check(
            order,
            instrument=self.instruments[order.symbol],
            day=day,
            phase=SessionPhase.CONTINUOUS,
            band=None,
        )
        if problem is None:
            return None
        return self._reject(state, problem[0], problem[1], self._now)

    def _held(self, state: OrderState, now: int, reason: str) -> ExecutionReport:
        order = state.order
        report = ExecutionReport(
            client_order_id=order.client_order_id,
            status=OrderStatus.NEW,
            ts_ns=now,
            symbol=order.symbol,
            side=order.side,
            leaves_qty=order.quantity,
            reason=reason,
        )
        state.history.append(report)
        return report

    def _enter(self, state: OrderState, ts: int, phase: SessionPhase) -> ExecutionReport:
        """The order enters the market at ``ts`` in ``phase``: exchange checks, then the fill
        model takes it (the backtest's ``_enter``)."""
        order = state.order
        symbol = order.symbol
        inst = self.instruments[symbol]
        day = self.day or date(1970, 1, 1)
        band = self.bands.get(symbol)
        halted = symbol in self.halted or self.market_halted
        if phase is not SessionPhase.CONTINUOUS or halted:
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
                halted=halted,
                closing_price=closing,
            )
            if problem is not None:
                return self._reject(state, problem[0], problem[1], ts)
        report = self.fill_model.submit(state, ts, instrument=inst, band=band, day=day)
        book = self._books.get(order.client_order_id)
        if report.status is OrderStatus.ACCEPTED:
            self.working.setdefault(symbol, []).append(state)
            if book is not None:
                book.entered_ns = ts
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
        except IllegalTransition:  # malformed beyond the state machine's own checks
            state.status = OrderStatus.REJECTED
            state.reject_code = code
            state.reason = reason
            state.history.append(report)
        return report

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        out = self.on_time(ts_ns)
        ts = max(int(ts_ns), self._now)
        book = self._books.get(client_order_id)
        if book is None:
            out.append(self._unknown(client_order_id, ts))
            return out
        out += self._cancel(book.state, ts, "cancelled on request")
        return out

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        """Cancel every open or held order (of ``symbol``), oldest first."""
        out = self.on_time(ts_ns)
        ts = max(int(ts_ns), self._now)
        for book in sorted(self._books.values(), key=lambda b: b.seq):
            st = book.state
            if symbol is not None and st.order.symbol != symbol:
                continue
            if st.status.is_open or st.status is OrderStatus.NEW:
                out += self._cancel(st, ts, "cancelled on request")
        return out

    def _cancel(self, state: OrderState, ts: int, reason: str) -> list[ExecutionReport]:
        order = state.order
        if state.status is OrderStatus.NEW:
            # held: the venue acknowledged it (as the backtest's router does), then cancels it
            if state in self.off_session:
                self.off_session.remove(state)
            ack = ExecutionReport(
                client_order_id=order.client_order_id,
                status=OrderStatus.ACCEPTED,
                ts_ns=ts,
                symbol=order.symbol,
                side=order.side,
                venue_order_id=f"{self.name}-HELD",
                leaves_qty=order.quantity,
                reason=_HELD,
            )
            state.apply(ack)
            done = self._report(state, OrderStatus.CANCELLED, ts, reason)
            return [ack, done]
        if not state.status.is_open:
            return [self._answer(state, ts, f"cannot cancel: order is {state.status}")]
        symbol = order.symbol
        self.working[symbol] = [s for s in self.working.get(symbol, []) if s is not state]
        return [self._report(state, OrderStatus.CANCELLED, ts, reason)]

    def replace(
        self,
        client_order_id: str,
        ts_ns: int,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> list[ExecutionReport]:
        """Change the total quantity and/or the limit price of an open or held order.

        ``quantity`` is the new total (filled shares included), as in FIX. A new price or a
        higher quantity loses time priority (the order goes to the back of its symbol's
        queue for the participation cap), as on BIST.
        """
        out = self.on_time(ts_ns)
        ts = max(int(ts_ns), self._now)
        book = self._books.get(client_order_id)
        if book is None:
            out.append(self._unknown(client_order_id, ts))
            return out
        state = book.state
        order = state.order
        held = state.status is OrderStatus.NEW
        refusal: str | None = None
        if not (state.status.is_open or held):
            refusal = f"cannot replace: order is {state.status}"
        elif quantity is None and limit_price is None:
            refusal = "a replace must change quantity or price"
        elif limit_price is not None and order.order_type is not OrderType.LIMIT:
            refusal = f"a {order.order_type} order has no price to change"
        elif quantity is not None and (not isinstance(quantity, int) or isinstance(quantity, bool)):
            refusal = f"quantity {quantity!r} is not a whole number"
        elif quantity is not None and quantity <= state.filled_qty:
            refusal = f"new quantity {quantity} must exceed the {state.filled_qty} already filled"
        code = RejectCode.INVALID_ORDER
        new = order
        if refusal is None:
            new = dataclasses.replace(
                order,
                quantity=quantity if quantity is not None else order.quantity,
                limit_price=limit_price if limit_price is not None else order.limit_price,
            )
            phase = SessionPhase.CONTINUOUS
            if not held and self.windows is not None:
                phase = _phase_at(self.windows, ts)[0]
                if phase not in ENTRY_PHASES:
                    phase = SessionPhase.CONTINUOUS  # the bar model freezes nothing
            band = self.bands.get(order.symbol) if not held else None
            if phase is SessionPhase.TRADES_AT_CLOSE:
                phase = SessionPhase.CONTINUOUS  # the closing price is checked at entry only
            problem = exchange_check(
                dataclasses.replace(new, time_in_force=TimeInForce.DAY),
                instrument=self.instruments[order.symbol],
                day=self.day or utc_day(ts),
                phase=phase,
                band=band,
            )
            if problem is not None:
                code, refusal = problem
        if refusal is not None:
            answer = self._answer(state, ts, f"replace refused: {refusal}", code)
            out.append(answer)
            return out
        lost = new.limit_price != order.limit_price or new.quantity > order.quantity
        state.order = new
        if lost and not held:
            states = self.working.get(order.symbol, [])
            if state in states:
                states.remove(state)
                states.append(state)
        report = ExecutionReport(
            client_order_id=order.client_order_id,
            status=state.status,
            ts_ns=ts,
            symbol=order.symbol,
            side=order.side,
            venue_order_id=state.venue_order_id,
            cum_qty=state.filled_qty,
            leaves_qty=new.quantity - state.filled_qty,
            avg_price=state.avg_price,
            reason="replaced" + (" (time priority lost)" if lost else " (time priority kept)"),
        )
        state.history.append(report)
        out.append(report)
        return out

    def status(self, client_order_id: str) -> OrderState | None:
        book = self._books.get(client_order_id)
        return None if book is None else book.state

    def _report(
        self, state: OrderState, status: OrderStatus, ts: int, reason: str
    ) -> ExecutionReport:
        self._exec_n += 1
        report = ExecutionReport(
            client_order_id=state.order.client_order_id,
            status=status,
            ts_ns=ts,
            symbol=state.order.symbol,
            side=state.order.side,
            exec_id=f"{self.name}-C{self._exec_n}",
            venue_order_id=state.venue_order_id,
            cum_qty=state.filled_qty,
            leaves_qty=0,
            avg_price=state.avg_price,
            reason=reason,
        )
        state.apply(report)
        return report

    def _answer(
        self,
        state: OrderState,
        ts: int,
        reason: str,
        code: RejectCode = RejectCode.INVALID_ORDER,
    ) -> ExecutionReport:
        """A refused request about an order: its current status and a reject code (not a
        state transition; ``is_request_answer`` is true for it)."""
        report = ExecutionReport(
            client_order_id=state.order.client_order_id,
            status=state.status,
            ts_ns=ts,
            symbol=state.order.symbol,
            side=state.order.side,
            venue_order_id=state.venue_order_id,
            cum_qty=state.filled_qty,
            leaves_qty=state.leaves_qty,
            avg_price=state.avg_price,
            reject_code=code,
            reason=reason,
        )
        state.history.append(report)
        return report

    def _unknown(self, client_order_id: str, ts: int) -> ExecutionReport:
        return ExecutionReport(
            client_order_id=client_order_id,
            status=OrderStatus.REJECTED,
            ts_ns=ts,
            reject_code=RejectCode.INVALID_ORDER,
            reason=f"unknown order id {client_order_id!r}",
        )

    def _purge(self, symbol: str, ts: int, reason: str) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for st in [s for s in self.off_session if s.order.symbol == symbol]:
            out += self._cancel(st, ts, reason)
        for st in list(self.working.get(symbol, [])):
            out += self._cancel(st, ts, reason)
        return out

    # -- queries ----------------------------------------------------------------------------

    def phase(self, ts_ns: int | None = None) -> SessionPhase | None:
        """The exchange phase at ``ts_ns`` (default: the clock); None under bar rules."""
        if self.windows is None:
            return None
        return _phase_at(self.windows, self._clock() if ts_ns is None else ts_ns)[0]

    def accepts_market_orders(self, symbol: str, ts_ns: int | None = None) -> bool:
        """Whether a DAY market order sent now reaches the market (now, at the next phase or
        the next session) rather than being refused (``StrategyContext`` semantics)."""
        if self.market_halted or symbol in self.halted:
            return False
        now = self._clock() if ts_ns is None else ts_ns
        if self.windows is None or not self.session_open or now >= self.t_end:
            return True
        return _phase_at(self.windows, now)[0] not in _NO_MARKET_PHASES

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Orders working or held (not finished), oldest first."""
        return [
            b.state
            for b in sorted(self._books.values(), key=lambda b: b.seq)
            if (symbol is None or b.state.order.symbol == symbol)
            and (b.state.status.is_open or b.state.status is OrderStatus.NEW)
        ]

    def band(self, symbol: str) -> Band | None:
        return self.bands.get(symbol)

    def last_price(self, symbol: str) -> float | None:
        return self.last.get(symbol)


def _malformed(order: Order) -> str:
    """Type problems ``Order.problems()`` does not look for (it trusts the annotations)."""
    if not isinstance(order.client_order_id, str) or not order.client_order_id:
        return "client order id must be a non-empty string"
    if not isinstance(order.symbol, str):
        return "symbol must be a string"
    if not isinstance(order.side, Side):
        return f"side must be Side.BUY or Side.SELL, got {order.side!r}"
    if not isinstance(order.order_type, OrderType):
        return f"unknown order type {order.order_type!r}"
    if not isinstance(order.time_in_force, TimeInForce):
        return f"unknown time in force {order.time_in_force!r}"
    if order.limit_price is not None and not isinstance(order.limit_price, (int, float)):
        return f"limit price must be a number, got {order.limit_price!r}"
    return ""
