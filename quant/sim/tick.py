"""A strategy over one day of trades and L1 quotes: ``on_trade`` / ``on_quote`` in time order.

``run_tick_day(strategy, trades, quotes)`` is the trade/quote fidelity level's counterpart of
``run_backtest`` (bars): the day is replayed by a ``ReplayFillSimulator`` (order-entry and
market-data latency, a queue-position model, fills against the prints and the L1 quotes), and
the strategy sees what a live strategy sees through the same ``StrategyContext``:

* every continuous trade as a ``TradeTick`` (``on_trade``) and every quote as a
  ``QuoteTick`` (``on_quote``), in the order they reach it: exchange time plus the feed
  latency (at one exchange time a quote comes before a trade, as in the simulator);
* its execution reports (``on_fill`` for executions, ``on_order_update`` for the rest), each
  delivered before the next market event that comes after it, at the report's own time;
* ``ctx.submit`` runs the order through the ``RiskEngine`` (risk rejects come back at once
  with their code, as in the backtest) and sends it to the simulator at the strategy's local
  time; it reaches the exchange after the entry latency, so ``submit`` answers NEW ("sent")
  and the exchange's answer arrives later as a report;
* ``on_start``, ``on_session_start`` (before the first event), ``on_session_end`` (after the
  last event, when every order still working has expired: BIST DAY orders do not carry over)
  and ``on_stop``.

Fills are booked in a ``Portfolio`` (TRY cash, weekday T+2 settlement, average cost) as the
strategy hears of them. Deterministic for deterministic latency and queue models. A strategy
that raises stops the day: ``TickResult.error`` names the strategy, the callback and the
time, and everything up to that event is kept. Auctions and halts are not simulated at this
level (the simulator fills continuous trading only): ``ctx.phase()`` is None.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from quant.execution.orders import (
    ExecutionReport,
    IllegalTransition,
    Order,
    OrderState,
    OrderStatus,
    RejectCode,
    Side,
)
from quant.market.bands import Band
from quant.market.calendar import SessionPhase
from quant.market.instrument import Instrument
from quant.risk.checks import OpenQuantity, RiskContext
from quant.risk.engine import RiskEngine
from quant.risk.limits import RiskLimits
from quant.sim.fills import MarketEvent, ReplayFillSimulator, utc_day
from quant.sim.latency import LatencyModel
from quant.sim.matching import FeeModelLike
from quant.sim.portfolio import Portfolio
from quant.sim.queue import QueueModel, RiskAverseQueue
from quant.sim.strategy import QuoteTick, Strategy, StrategyContext, TradeTick

_NS = 1_000_000_000


@dataclass
class TickResult:
    """What a day of ticks produced."""

    reports: list[ExecutionReport]
    """Every report the strategy's orders got, in the order it heard them (risk rejects
    included)."""
    portfolio: Portfolio
    """Positions and cash after the day (fills booked as they were reported)."""
    trades_seen: int = 0
    quotes_seen: int = 0
    error: str | None = None
    orders: dict[str, OrderState] = field(default_factory=dict)
    """Every order sent, by client order id, with its final state as the strategy knows it."""

    @property
    def fills(self) -> list[ExecutionReport]:
        return [r for r in self.reports if r.last_qty]


class _Stop(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TickContext(StrategyContext):
    """The ``StrategyContext`` of a tick replay: positions from the reported fills, orders
    through the risk engine to the simulator, the clock at the event being delivered."""

    def __init__(
        self,
        strategy: Strategy,
        sim: ReplayFillSimulator,
        risk: RiskEngine,
        portfolio: Portfolio,
        instruments: Mapping[str, Instrument],
        day: date,
    ) -> None:
        super().__init__(strategy.strategy_id)
        self._sim = sim
        self._risk = risk
        self._portfolio = portfolio
        self._instruments = dict(instruments)
        self._day = day
        self._now = 0
        self._last: dict[str, float] = {}
        self._pos: dict[str, int] = {}
        self.states: dict[str, OrderState] = {}
        """Our view of every order sent (mirrors the reports as they are delivered)."""
        self.reports: list[ExecutionReport] = []

    # --- time ---------------------------------------------------------------------------------

    def now_ns(self) -> int:
        return self._now

    @property
    def day(self) -> date:
        return self._day

    def phase(self) -> SessionPhase | None:
        return None

    def accepts_market_orders(self, symbol: str) -> bool:
        return True

    # --- market -------------------------------------------------------------------------------

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return self._instruments

    def last_price(self, symbol: str) -> float | None:
        return self._last.get(symbol)

    def band(self, symbol: str) -> Band | None:
        return self._sim.bands.get(symbol)

    # --- account ------------------------------------------------------------------------------

    def position(self, symbol: str) -> int:
        return self._pos.get(symbol, 0)

    def positions(self) -> dict[str, int]:
        return {s: q for s, q in self._pos.items() if q}

    @property
    def cash(self) -> float:
        return self._portfolio.cash

    @property
    def equity(self) -> float:
        mv = 0.0
        for symbol, pos in self._portfolio.positions.items():
            if pos.quantity:
                price = self._last.get(symbol)
                mv += pos.quantity * (price if price is not None else pos.price)
        return self._portfolio.cash + mv

    @property
    def buying_power(self) -> float:
        bp = self._portfolio.buying_power(self._now)
        for st in self.states.values():
            if st.order.side is Side.BUY and not st.status.is_terminal:
                price = st.order.limit_price or self._last.get(st.order.symbol) or 0.0
                bp -= (st.order.quantity - st.filled_qty) * price
        return bp

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        return [
            st
            for st in self.states.values()
            if not st.status.is_terminal and (symbol is None or st.order.symbol == symbol)
        ]

    def open_quantity(self, symbol: str) -> int:
        return sum(
            (st.order.quantity - st.filled_qty) * st.order.side.sign
            for st in self.open_orders(symbol)
        )

    def _open_quantities(self) -> dict[str, OpenQuantity]:
        buy: dict[str, int] = {}
        sell: dict[str, int] = {}
        for st in self.open_orders():
            side = buy if st.order.side is Side.BUY else sell
            side[st.order.symbol] = side.get(st.order.symbol, 0) + st.order.quantity - st.filled_qty
        return {
            s: OpenQuantity(buy=buy.get(s, 0), sell=sell.get(s, 0)) for s in sorted({*buy, *sell})
        }

    # --- orders -------------------------------------------------------------------------------

    def submit(self, order: Order) -> ExecutionReport:
        now = self._now
        if not isinstance(order, Order):
            text = repr(order)[:80]
            return self._refused(
                Order("", "", Side.BUY, 0, ts_ns=now), RejectCode.INVALID_ORDER, text
            )
        oid = order.client_order_id
        if isinstance(oid, str) and oid in self.states:
            return self._refused(
                order, RejectCode.DUPLICATE_ORDER_ID, f"order id {oid!r} is already used today"
            )
        context = RiskContext(
            day=self._day,
            instruments=self._instruments,
            last_prices=self._last,
            bands=self._sim.bands,
            positions=self._pos,
            open_orders=self._open_quantities(),
            equity=self.equity,
            buying_power=self.buying_power,
        )
        try:
            decision = self._risk.check(order, context)
        except Exception as exc:  # a malformed object must not escape the trading path
            return self._refused(order, RejectCode.INVALID_ORDER, f"malformed order: {exc}")
        if not decision.accepted:
            return self._refused(
                order, decision.code or RejectCode.INVALID_ORDER, decision.reason or "refused"
            )
        self.states[oid] = OrderState(order)
        self._sim.submit(order, now)
        return ExecutionReport(
            client_order_id=oid,
            status=OrderStatus.NEW,
            ts_ns=now,
            symbol=order.symbol,
            side=order.side,
            leaves_qty=order.quantity,
            reason="sent: reaches the exchange after the order-entry latency",
        )

    def _refused(self, order: Order, code: RejectCode, reason: str) -> ExecutionReport:
        report = ExecutionReport(
            client_order_id=order.client_order_id if isinstance(order.client_order_id, str) else "",
            status=OrderStatus.REJECTED,
            ts_ns=self._now,
            symbol=order.symbol if isinstance(order.symbol, str) else "",
            side=order.side if isinstance(order.side, Side) else None,
            reject_code=code,
            reason=reason,
        )
        self.reports.append(report)
        return report

    def cancel(self, client_order_id: str) -> ExecutionReport | None:
        """Send a cancel (it reaches the exchange after the entry latency; the order's own
        reports say how it ended). None if the order is not open; else a report of its state
        now, carrying the request (it changes nothing)."""
        st = self.states.get(client_order_id)
        if st is None or st.status.is_terminal:
            return None
        self._sim.cancel(client_order_id, self._now)
        self._risk.record_cancel(client_order_id)
        return ExecutionReport(
            client_order_id=client_order_id,
            status=st.status,
            ts_ns=self._now,
            symbol=st.order.symbol,
            side=st.order.side,
            venue_order_id=st.venue_order_id,
            cum_qty=st.filled_qty,
            leaves_qty=st.order.quantity - st.filled_qty,
            avg_price=st.avg_price,
            reason="cancel sent: the exchange answers after the order-entry latency",
        )

    def cancel_all(self, symbol: str | None = None) -> list[ExecutionReport]:
        out = []
        for st in self.open_orders(symbol):
            report = self.cancel(st.order.client_order_id)
            if report is not None:
                out.append(report)
        return out


def run_tick_day(
    strategy: Strategy,
    trades: pl.DataFrame,
    quotes: pl.DataFrame,
    *,
    queue_model: QueueModel | None = None,
    latency: LatencyModel | None = None,
    fee_model: FeeModelLike | None = None,
    instruments: Iterable[Instrument] | None = None,
    bands: Mapping[str, Band] | None = None,
    risk: RiskEngine | RiskLimits | None = None,
    initial_cash: float = 1_000_000.0,
    end_ns: int | None = None,
) -> TickResult:
    """Run ``strategy`` over one session's ``trades`` (TRADES schema) and ``quotes`` (QUOTES
    schema); see the module docstring. ``queue_model`` defaults to the risk-averse queue,
    ``latency`` to none; ``end_ns`` (default: the last event) is when working orders expire.
    """
    sim = ReplayFillSimulator(
        queue_model if queue_model is not None else RiskAverseQueue(),
        latency=latency,
        fee_model=fee_model,
        instruments=instruments,
        bands=bands,
    )
    engine = risk if isinstance(risk, RiskEngine) else RiskEngine(risk)
    portfolio = Portfolio(initial_cash, calendar=None)
    first = _first_ts(trades, quotes)
    day = utc_day(first) if first is not None else date(1970, 1, 1)
    symbols = sorted(set(trades["symbol"].to_list()) | set(quotes["symbol"].to_list()))
    given = {i.symbol: i for i in instruments} if instruments is not None else None
    universe = given if given is not None else {s: Instrument(s) for s in symbols}
    ctx = TickContext(strategy, sim, engine, portfolio, universe, day)
    result = TickResult(reports=ctx.reports, portfolio=portfolio, orders=ctx.states)
    delivered = 0  # reports of ``sim._out`` handed over (``run`` starts a new list: re-read)

    def deliver() -> None:
        """Hand the strategy the reports made since the last delivery, in order."""
        nonlocal delivered
        out = sim._out
        while delivered < len(out):
            report = out[delivered]
            delivered += 1
            ctx._now = max(ctx._now, report.ts_ns)
            _book(ctx, engine, portfolio, report)
            callback = "on_fill" if report.last_qty else "on_order_update"
            _call(strategy, callback, report.symbol, ctx, report)

    def on_market(event: MarketEvent, _: ReplayFillSimulator) -> None:
        deliver()
        ctx._now = max(ctx._now, event.local_ts_ns)
        if event.kind == "trade":
            ctx._last[event.symbol] = event.price
            tick = TradeTick(event.symbol, event.ts_ns, event.price, event.size, event.side)
            result.trades_seen += 1
            _call(strategy, "on_trade", event.symbol, ctx, tick)
        else:
            quote = QuoteTick(
                event.symbol,
                event.ts_ns,
                event.bid_price,
                event.bid_size,
                event.ask_price,
                event.ask_size,
            )
            result.quotes_seen += 1
            _call(strategy, "on_quote", event.symbol, ctx, quote)

    try:
        ctx._now = first if first is not None else 0
        _call(strategy, "on_start", None, ctx)
        _call(strategy, "on_session_start", None, ctx, day)
        sim.run(trades, quotes, on_market=on_market)
        deliver()
        last = ctx._now
        end = max(end_ns if end_ns is not None else last, last)
        expired = sim.expire_all(end)
        sim._out.extend(expired)
        ctx._now = end
        deliver()
        _call(strategy, "on_session_end", None, ctx, day)
    except _Stop as stop:
        result.error = stop.message
    try:
        strategy.on_stop(ctx)
    except Exception as exc:  # the day is over; report it rather than lose the result
        if result.error is None:
            result.error = _blame(strategy, "on_stop", None, ctx.now_ns(), exc)
    return result


def _book(ctx: TickContext, risk: RiskEngine, portfolio: Portfolio, r: ExecutionReport) -> None:
    """Our side of one report: the order's state, the risk counters, the portfolio."""
    st = ctx.states.get(r.client_order_id)
    if st is not None:
        with contextlib.suppress(IllegalTransition):  # (mirrors what the simulator applied)
            st.apply(r)
    ctx.reports.append(r)
    risk.on_execution_report(r)
    if r.last_qty and r.side is not None:
        portfolio.apply_fill(r.symbol, r.side, r.last_qty, r.last_price, r.fees, r.ts_ns)
        ctx._pos[r.symbol] = portfolio.quantity(r.symbol)


def _call(strategy: Strategy, name: str, symbol: str | None, ctx: TickContext, *args: Any) -> None:
    try:
        getattr(strategy, name)(ctx, *args)
    except _Stop:
        raise
    except Exception as exc:
        raise _Stop(_blame(strategy, name, symbol, ctx.now_ns(), exc)) from exc


def _blame(
    strategy: Strategy, callback: str, symbol: str | None, ts: int, exc: BaseException
) -> str:
    moment = datetime.fromtimestamp(ts / _NS, tz=UTC).isoformat() if ts else "the start"
    about = f" for {symbol}" if symbol else ""
    return (
        f"strategy {strategy.strategy_id!r} ({type(strategy).__name__}) raised "
        f"{type(exc).__name__}: {exc} in {callback}{about} at {moment}; "
        "the replay stopped there and keeps the results up to that event"
    )


def _first_ts(trades: pl.DataFrame, quotes: pl.DataFrame) -> int | None:
    firsts = [
        int(f["ts"].dt.epoch("ns").min())  # type: ignore[arg-type]
        for f in (trades, quotes)
        if f.height
    ]
    return min(firsts) if firsts else None


__all__ = ["TickContext", "TickResult", "run_tick_day"]
