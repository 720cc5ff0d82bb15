"""``PaperVenueActor``: the paper exchange (``quant.sim.paper.PaperExchange``) as its own actor.

Why an actor of its own rather than an object inside the router: the venue is the other side
of the wire. A killed ``OrderRouter`` must come back to a venue that still holds its orders,
as a real exchange would, or "no order lost or sent twice" could not even be checked. The actor
also keeps the ledger of every client order id it received (``received``), which is what the
fault tests assert on.

Clock: event time. The stream processor pushes each bar slice (``on_bars``) before the strategy
decides on it, and the venue's clock moves to the slice's close, so an order decided on bar t
fills from bar t+1, in the backtest's event order. Orders carry their decision time; cancels
come from the router stamped with *its* clock (the wall clock), which in a replay lies years
after the day being replayed: a venue on event time takes them at its own "now" (the last bar
or order it saw), as the backtest cancels at the bar being processed. A live deployment would
inject the wall clock instead (``event_time=False``), and the stamps agree.

Fault injection for tests and drills: ``set_answering(False)`` makes the venue stop answering
(every request waits ``stall_s`` and is then dropped unprocessed, as a dead link would drop
it), so the router's timeouts, retries and circuit breaker can be exercised against a real
actor; ``set_answering(True)`` brings it back.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date
from typing import Any

from actors.common import EventClock, freeze_startup_objects
from quant.execution.orders import ExecutionReport, Order, OrderState
from quant.execution.routing import answer_batch
from quant.sim.strategy import Bar


class PaperVenueActor:
    """Hosts one ``PaperExchange`` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        symbols: list[str],
        *,
        max_participation: float = 0.1,
        costs: str = "bist",
        calendar: str | None = "XIST",
        stall_s: float = 2.0,
        adv: dict[str, float] | None = None,
        volatility: dict[str, float] | None = None,
        event_time: bool = True,
    ) -> None:
        from quant.market.calendar import TradingCalendar
        from quant.market.instrument import Instrument
        from quant.sim.costs import bist_default_costs
        from quant.sim.paper import PaperExchange

        self.name = name
        self.adv = dict(adv or {})
        self.volatility = dict(volatility or {})
        """The day's market statistics for the slippage model (average daily volume and daily
        volatility as of the session's start): the backtest's impact needs the same inputs."""
        self.clock = EventClock()
        self.event_time = event_time
        self.exchange = PaperExchange(
            [Instrument(s) for s in symbols],
            self.clock,
            calendar=TradingCalendar(calendar) if calendar else None,
            costs=bist_default_costs() if costs == "bist" else None,
            max_participation=max_participation,
            name=name,
        )
        self.received: Counter[str] = Counter()
        self.received_order: list[str] = []
        self.answering = True
        self.stall_s = stall_s
        self.dropped = 0
        self.bars_seen = 0
        self._lock = threading.Lock()
        """The actor runs with several threads (a stalled request must not block the others);
        the exchange itself is used by one at a time."""
        freeze_startup_objects()

    # --- fault injection -------------------------------------------------------------------------

    def set_answering(self, answering: bool) -> bool:
        self.answering = bool(answering)
        return self.answering

    def _stalled(self) -> bool:
        if self.answering:
            return False
        time.sleep(self.stall_s)
        self.dropped += 1
        return True

    # --- Venue -----------------------------------------------------------------------------------

    def ready(self) -> bool:
        return True

    def submit(self, order: Order) -> list[ExecutionReport] | None:
        """The exchange's answer, or None when the venue is not answering (request dropped)."""
        if self._stalled():
            return None
        with self._lock:
            return self._submit(order)

    def _submit(self, order: Order) -> list[ExecutionReport]:
        self.received[order.client_order_id] += 1
        self.received_order.append(order.client_order_id)
        self.clock.advance_to(order.ts_ns)
        return self.exchange.submit(order)

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport] | None:
        if self._stalled():
            return None
        with self._lock:
            return self._cancel(client_order_id, ts_ns)

    def _cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        self._advance(ts_ns)
        return self.exchange.cancel(client_order_id, self.clock.now_ns())

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport] | None:
        if self._stalled():
            return None
        with self._lock:
            self._advance(ts_ns)
            return self.exchange.cancel_all(self.clock.now_ns(), symbol)

    def batch(self, requests: list[tuple[str, tuple[Any, ...]]]) -> list[Any] | None:
        """Several requests (``submit``, ``cancel``) in one call, answered in order, each with
        its reports or the exception it raised (``quant.execution.routing.answer_batch``): a
        bar slice's orders and cancels cost one round trip. None when not answering."""
        if self._stalled():
            return None
        with self._lock:
            return answer_batch(_Unlocked(self), requests)

    def _advance(self, request_ts_ns: int) -> None:
        """A request stamped by the router's clock moves the venue's only on the wall clock
        (see the module docstring)."""
        if not self.event_time:
            self.clock.advance_to(request_ts_ns)

    def status(self, client_order_id: str) -> OrderState | None:
        if self._stalled():
            return None
        with self._lock:
            return self.exchange.status(client_order_id)

    def open_orders(self) -> list[OrderState] | None:
        if self._stalled():
            return None
        with self._lock:
            return list(self.exchange.open_orders())

    # --- market data -----------------------------------------------------------------------------

    def on_bars(self, bars: list[Bar], ts_ns: int) -> list[ExecutionReport] | None:
        """Show the exchange a slice of bars closing at ``ts_ns``; returns what filled."""
        if self._stalled():
            return None
        with self._lock:
            self.clock.advance_to(ts_ns)
            reports: list[ExecutionReport] = []
            for bar in bars:
                reports.extend(self.exchange.on_bar(bar.symbol, bar))
            self.bars_seen += len(bars)
            return reports

    def start_session(
        self, day: date, previous_closes: dict[str, float], ts_ns: int
    ) -> list[ExecutionReport] | None:
        """Open ``day`` (bands from the previous closes; held orders enter; the ADV and
        volatility given at construction priced into slippage). Idempotent."""
        if self._stalled():
            return None
        with self._lock:
            if self.exchange.session_open and self.exchange.day == day:
                return []
            self.clock.advance_to(ts_ns)
            return self.exchange.start_session(
                day,
                previous_closes,
                adv=self.adv or None,
                volatility=self.volatility or None,
            )

    def end_session(self, ts_ns: int) -> list[ExecutionReport] | None:
        """DAY orders expire at the session's end."""
        if self._stalled():
            return None
        with self._lock:
            self.clock.advance_to(ts_ns)
            return self.exchange.end_session(self.clock.now_ns())

    # --- for tests and status --------------------------------------------------------------------

    def received_ids(self) -> dict[str, int]:
        """Every client order id this venue received, with how many times (1 unless a bug)."""
        return dict(self.received)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "answering": self.answering,
            "received": len(self.received),
            "duplicates": sorted(k for k, v in self.received.items() if v > 1),
            "dropped_requests": self.dropped,
            "bars_seen": self.bars_seen,
            "now_ns": self.clock.now_ns(),
        }


class _Unlocked:
    """The venue's request handling, for a batch that already holds the actor's lock."""

    def __init__(self, actor: PaperVenueActor) -> None:
        self.submit = actor._submit
        self.cancel = actor._cancel
