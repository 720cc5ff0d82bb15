"""The live ``StrategyContext``: what a strategy sees in the stream processor, and how it acts.

The same ``quant.sim.strategy.StrategyContext`` interface as the backtest's, so a research
strategy runs unchanged: reads are answered from state kept here (positions and cash from the
fills the router reports, open orders from every execution report, last prices and bands from
the bars the processor builds, the session phase from the BIST calendar); ``submit`` and the
cancels go through callables the host injects (the RiskGuard and OrderRouter actors, or
in-process objects in a test), so this module has no Ray in it.

Event time: the context's clock is the close of the bar being processed, as in the backtest,
which is what makes a replayed day reproduce the backtest's decisions.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from quant.execution.orders import (
    ExecutionReport,
    IllegalTransition,
    Order,
    OrderState,
    OrderStatus,
    RejectCode,
)
from quant.market.bands import Band, PriceBand
from quant.market.calendar import ISTANBUL, SessionPhase, TradingCalendar
from quant.market.instrument import Instrument
from quant.sim.matching import is_request_answer
from quant.sim.portfolio import _fill_amount as fill_amount
from quant.sim.portfolio import _money as money
from quant.sim.strategy import StrategyContext

SubmitFn = Callable[[Order, dict[str, Any]], ExecutionReport]
"""``submit(order, account_view) -> report``: risk, then router, then venue."""
CancelFn = Callable[[str | None, str | None], list[ExecutionReport] | None]
"""``cancel(client_order_id, symbol) -> reports``: one order (by id) or all (of a symbol).
None: the host sends the cancel later (with the slice's orders, ``LiveContext.cancelling``)."""

_NO_MARKET_PHASES = frozenset({SessionPhase.CLOSING_UNCROSS, SessionPhase.TRADES_AT_CLOSE})
"""As the backtest: a market order sent in these phases can only be refused."""


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


class SessionWindows:
    """The BIST phases of one day as ``(start_ns, end_ns, phase)``, from the XIST calendar."""

    def __init__(self, day: date, calendar: str | None = "XIST") -> None:
        self.windows: list[tuple[int, int, SessionPhase]] = []
        self.first_order_ns: int | None = None
        self.last_trade_ns: int | None = None
        if calendar is None:
            return
        try:
            info = TradingCalendar(calendar).session(day)
        except ValueError:
            return
        self.windows = [
            (
                _ns(datetime.combine(day, w.start, ISTANBUL)),
                _ns(datetime.combine(day, w.end, ISTANBUL)),
                w.phase,
            )
            for w in info.windows
        ]
        self.first_order_ns = _ns(info.first_order_time)
        self.last_trade_ns = _ns(info.last_trade_time)
        self._starts = [w[0] for w in self.windows]

    def phase_at(self, ts_ns: int) -> SessionPhase | None:
        if not self.windows:
            return None
        i = bisect.bisect_right(self._starts, ts_ns) - 1
        if i >= 0 and self.windows[i][0] <= ts_ns < self.windows[i][1]:
            return self.windows[i][2]
        return SessionPhase.CLOSED


class LiveContext(StrategyContext):
    """A strategy's account and market view in the live host (see the module docstring)."""

    def __init__(
        self,
        strategy_id: str,
        symbols: list[str],
        day: date,
        *,
        initial_cash: float,
        submit: SubmitFn,
        cancel: CancelFn,
        calendar: str | None = "XIST",
        previous_closes: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(strategy_id)
        self._instruments = {s: Instrument(s) for s in symbols}
        self._day = day
        self.now = 0
        self.session = SessionWindows(day, calendar)
        self.last: dict[str, float] = dict(previous_closes or {})
        self.bands: dict[str, Band] = {}
        rule = PriceBand()
        for symbol, close in (previous_closes or {}).items():
            if close > 0:
                try:
                    self.bands[symbol] = rule.daily(close, day)
                except ValueError:
                    continue
        self.pos: dict[str, int] = {}
        self._cash = float(initial_cash)
        self.initial_cash = float(initial_cash)
        self.orders: dict[str, OrderState] = {}
        """Orders sent and not finished, by client order id."""
        self.cancelling: set[str] = set()
        """Orders whose cancel the host has queued, not yet answered: the strategy and the
        account view see them as cancelled already (as the backtest's cancel is immediate),
        while their reports (a fill that raced the cancel) still apply to the book until the
        venue's answer finishes them, or ``cancel_failed`` puts them back."""
        self.finished: list[OrderState] = []
        self.fills: list[ExecutionReport] = []
        self.seen_exec: set[str] = set()
        self.halted: set[str] = set()
        self._submit = submit
        self._cancel = cancel

    # --- time and market ----------------------------------------------------------------------

    def now_ns(self) -> int:
        return self.now

    @property
    def day(self) -> date:
        return self._day

    def phase(self) -> SessionPhase | None:
        return self.session.phase_at(self.now)

    def accepts_market_orders(self, symbol: str) -> bool:
        if symbol in self.halted:
            return False
        phase = self.session.phase_at(self.now)
        if phase is None or (
            self.session.last_trade_ns is not None and self.now >= self.session.last_trade_ns
        ):
            return True
        return phase not in _NO_MARKET_PHASES

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return self._instruments

    def last_price(self, symbol: str) -> float | None:
        return self.last.get(symbol)

    def band(self, symbol: str) -> Band | None:
        return self.bands.get(symbol)

    # --- account ------------------------------------------------------------------------------

    def position(self, symbol: str) -> int:
        return self.pos.get(symbol, 0)

    def positions(self) -> dict[str, int]:
        return {s: q for s, q in self.pos.items() if q}

    @property
    def cash(self) -> float:
        return self._cash

    @property
    def equity(self) -> float:
        return self._cash + sum(q * self.last.get(s, 0.0) for s, q in self.pos.items())

    @property
    def buying_power(self) -> float:
        """Cash (to the kuruş) less what open buy orders reserve at their limit or the last
        price: the backtest's rule (T+2 sale proceeds count, as BIST brokers net them)."""
        bp = round(self._cash, 2)
        for st in self._working():
            if st.order.side.sign > 0:
                price = st.order.limit_price or self.last.get(st.order.symbol) or 0.0
                bp -= (st.order.quantity - st.filled_qty) * price
        return bp

    def _working(self) -> list[OrderState]:
        """Open orders not being cancelled: what the strategy and the risk guard count."""
        if not self.cancelling:
            return list(self.orders.values())
        return [st for cid, st in self.orders.items() if cid not in self.cancelling]

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return [st for st in self._working() if symbol is None or st.order.symbol == symbol]

    def open_quantity(self, symbol: str) -> int:
        return sum(
            st.order.side.sign * st.leaves_qty
            for st in self._working()
            if st.order.symbol == symbol
        )

    def account_view(self, symbol: str | None = None) -> dict[str, Any]:
        """What the RiskGuard needs to check an order (plain data: it crosses processes)."""
        buys: dict[str, int] = {}
        sells: dict[str, int] = {}
        for st in self._working():
            book = buys if st.order.side.sign > 0 else sells
            book[st.order.symbol] = book.get(st.order.symbol, 0) + st.leaves_qty
        return {
            "day": self._day.isoformat(),
            "now_ns": self.now,
            "last_prices": dict(self.last),
            "bands": {s: (b.lower, b.upper, b.reference) for s, b in self.bands.items()},
            "positions": self.positions(),
            "open_buy": buys,
            "open_sell": sells,
            "equity": self.equity,
            "buying_power": self.buying_power,
            "halted": sorted(self.halted),
        }

    # --- orders -------------------------------------------------------------------------------

    def submit(self, order: Order) -> ExecutionReport:
        try:
            report = self._submit(order, self.account_view(order.symbol))
        except Exception as exc:
            return ExecutionReport(
                client_order_id=getattr(order, "client_order_id", ""),
                status=OrderStatus.REJECTED,
                ts_ns=self.now,
                symbol=getattr(order, "symbol", ""),
                reject_code=RejectCode.VENUE,
                reason=f"the order could not be routed: {type(exc).__name__}: {exc}",
            )
        if report.status is not OrderStatus.REJECTED and isinstance(order, Order):
            state = self.orders.get(order.client_order_id) or OrderState(order)
            self.orders[order.client_order_id] = state
            self._apply(state, report)
        return report

    def cancel(self, client_order_id: str) -> ExecutionReport | None:
        if client_order_id not in self.orders or client_order_id in self.cancelling:
            return None
        answer = self._cancel(client_order_id, None)
        if answer is None:
            self.cancelling.add(client_order_id)
            return None
        reports = self.apply_reports(answer)
        return reports[-1] if reports else None

    def cancel_all(self, symbol: str | None = None) -> list[ExecutionReport]:
        ids = self.cancellable(symbol)
        if not ids:
            return []
        answer = self._cancel(None, symbol)
        if answer is None:
            self.cancelling.update(ids)
            return []
        return self.apply_reports(answer)

    def cancellable(self, symbol: str | None = None) -> list[str]:
        """The open orders (of ``symbol``) a cancel-all is about, by client order id."""
        return [
            cid
            for cid, st in self.orders.items()
            if cid not in self.cancelling and (symbol is None or st.order.symbol == symbol)
        ]

    def cancel_failed(self, client_order_id: str) -> None:
        """The venue did not cancel the order (it had filled, or could not be reached): it
        counts as working again until a report finishes it."""
        self.cancelling.discard(client_order_id)

    # --- reports from the router ----------------------------------------------------------------

    def apply_reports(self, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        """Apply the router's reports (fills, cancels, expiries) to orders, positions and cash;
        returns those that changed something (a report seen before is ignored)."""
        applied = []
        for r in reports:
            state = self.orders.get(r.client_order_id)
            if state is not None and self._apply(state, r):
                applied.append(r)
        return applied

    def _apply(self, state: OrderState, r: ExecutionReport) -> bool:
        key = report_key(r)
        if key in self.seen_exec or is_request_answer(r):  # a refused cancel changes nothing
            return False
        if r.status is OrderStatus.NEW and state.status is OrderStatus.NEW:
            return False
        try:
            state.apply(r)
        except IllegalTransition:
            return False
        self.seen_exec.add(key)
        if r.last_qty:
            sign = state.order.side.sign
            self.pos[state.order.symbol] = self.pos.get(state.order.symbol, 0) + sign * r.last_qty
            # the cash a fill moves, to the kuruş, exactly as the backtest's portfolio books it
            self._cash = round(
                self._cash + fill_amount(sign, r.last_qty, r.last_price, money(r.fees)), 2
            )
            self.fills.append(r)
        if state.status.is_terminal:
            self.orders.pop(state.order.client_order_id, None)
            self.cancelling.discard(state.order.client_order_id)
            self.finished.append(state)
        return True


def report_key(r: ExecutionReport) -> str:
    """The identity of a report (the journal's idempotency key): the same report delivered
    twice, by the router's answer and by the journal, is applied once."""
    if r.exec_id:
        return f"{r.client_order_id}:{r.exec_id}:{r.status}:{r.cum_qty}"
    return f"{r.client_order_id}::{r.status}:{r.cum_qty}:{r.leaves_qty}:{r.last_qty}:{r.ts_ns}"
