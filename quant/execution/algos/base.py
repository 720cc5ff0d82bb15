"""The common shape of execution algorithms: pure schedulers driven by time and market events.

An execution algorithm takes one parent order and turns it into child orders over a time
window. It reads no clock and holds no connection: the host (the backtest engine, or the live
order router actor, in the manner of NautilusTrader's exec algorithms) calls

- ``start(parent, start_ns, end_ns, context)`` once,
- ``on_time(ts_ns, market)`` on every timer tick or market event, getting back the children due
  now (at most one per call, carrying everything due), and
- ``on_fill(report)`` with every execution report of a child,

so the same object gives the same children in a backtest and live, given the same events.

Quantity accounting is what keeps it safe. ``filled`` counts executed shares, ``working`` the
unexecuted rest of children that are still open; the algorithm only ever sends up to
``parent.quantity - filled - working``, so it can never over-send whatever the fills do. A child
that ends without filling completely (cancelled, expired, rejected) releases its leaves, and the
schedule sends them again at the next event: the schedule is a target for committed quantity
(filled + working), not for sent quantity.

Children are limit orders priced by a ``PricingPolicy`` on the tick grid and inside the band (see
``pricing``). Their ids are ``f"{parent.client_order_id}-{n}"`` for n = 1, 2, ... in the order
they are sent, so replaying the same events gives the same ids (idempotent retries rely on it).
No children go out outside continuous trading: in auction phases, price publication, a halt or
when closed the algorithm pauses and what falls due is sent at the next continuous-trading event.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import ClassVar

import numpy as np

from quant.execution.algos.pricing import PricingPolicy, child_price
from quant.execution.orders import ExecutionReport, Order, OrderStatus, OrderType
from quant.market.bands import Band
from quant.market.calendar import SessionInfo, SessionPhase
from quant.market.instrument import Instrument
from quant.market.ticks import BIST_SHARE_TICKS, TickSizeTable


@dataclass(frozen=True, slots=True)
class MarketState:
    """What the algorithm may know about the market at one instant (all stamped ≤ that instant).

    ``day`` picks the tick table in force. ``cumulative_volume`` is the market volume traded so
    far today and ``interval_volume`` the volume since the previous event; either may be None
    when the host does not have it. ``phase`` and ``halted`` come from the session calendar and
    the circuit breakers; children are sent only when the phase is continuous and not halted.
    """

    day: date
    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    band: Band | None = None
    cumulative_volume: int | None = None
    interval_volume: int | None = None
    phase: SessionPhase = SessionPhase.CONTINUOUS
    halted: bool = False


@dataclass(frozen=True, slots=True)
class AlgoContext:
    """What the algorithm needs to know about the instrument and the trading day."""

    lot_size: int = 1
    tick_table: TickSizeTable = BIST_SHARE_TICKS
    session: SessionInfo | None = None
    """The day's phase windows; VWAP uses it for half days and to weight continuous time only."""
    max_consecutive_rejects: int = 3
    """After this many children in a row are rejected the algorithm stops (``STOPPED``) rather
    than feed the venue the same bad order at every event (the order-to-trade ratio counts)."""

    @classmethod
    def for_instrument(
        cls, instrument: Instrument, session: SessionInfo | None = None, **kwargs: int
    ) -> AlgoContext:
        return cls(instrument.lot_size, instrument.tick_table, session, **kwargs)


class AlgoStatus(StrEnum):
    PENDING = "pending"
    """Not started, or the window has not begun."""
    RUNNING = "running"
    PAUSED = "paused"
    """Outside continuous trading or halted: due children wait for continuous trading."""
    BLOCKED = "blocked"
    """A child is due but no valid price exists (parent limit outside the band, no market)."""
    COMPLETED = "completed"
    EXPIRED = "expired"
    """The window ended with quantity unfilled; nothing more is sent."""
    STOPPED = "stopped"
    """Too many consecutive child rejects; nothing more is sent."""
    INVALID = "invalid"
    """The parent or the window cannot be executed; nothing is sent."""


def allocate_lots(total: int, weights: Sequence[float] | np.ndarray, lot: int = 1) -> list[int]:
    """Split ``total`` shares in proportion to ``weights`` into whole lots, losing nothing.

    Largest-remainder (Hamilton) allocation: each part gets the floor of its quota in lots and
    the lots left over go to the largest fractional remainders, earlier parts first on ties. The
    parts always sum to ``total`` exactly. ``total`` must be a multiple of ``lot``.
    """
    if lot < 1 or total < 0 or total % lot:
        raise ValueError(f"cannot split {total} shares into lots of {lot}")
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    lots = total // lot
    quota = w / w.sum() * lots
    base = np.floor(quota + 1e-9).astype(np.int64)
    left = lots - int(base.sum())
    # Remainders equal up to float noise tie, and ties go to the earliest part, so that weights
    # that are equal in exact arithmetic allocate exactly like equal weights.
    remainder = np.round(quota - base, 9)
    order = np.argsort(-remainder, kind="stable")
    if left > 0:
        base[order[:left]] += 1
    elif left < 0:  # float noise pushed a floor up: take back from the smallest remainders
        for i in order[::-1]:
            if left == 0:
                break
            if base[i] > 0:
                base[i] -= 1
                left += 1
    return [int(b) * lot for b in base]


@dataclass(slots=True)
class _Child:
    order: Order
    filled: int = 0
    open: bool = True


class ExecutionAlgorithm(ABC):
    """Turns a parent order into child orders over ``[start_ns, end_ns)``; see the module doc."""

    name: ClassVar[str] = "algorithm"

    def __init__(self, pricing: PricingPolicy | None = None) -> None:
        self.pricing = pricing if pricing is not None else PricingPolicy.passive()
        self._reset()

    # --- the interface the host calls ------------------------------------------------------

    def start(
        self, parent: Order, start_ns: int, end_ns: int, context: AlgoContext | None = None
    ) -> None:
        """Begin working ``parent`` over ``[start_ns, end_ns)``; restarts from scratch if called
        again. Bad input sets status ``INVALID`` with a reason instead of raising."""
        self._reset()
        self._parent = parent
        self._start, self._end = int(start_ns), int(end_ns)
        self._ctx = context if context is not None else AlgoContext()
        problems = list(parent.problems())
        if self._end <= self._start:
            problems.append(f"the window ends ({end_ns}) before it starts ({start_ns})")
        lot = self._ctx.lot_size
        if lot < 1:
            problems.append(f"lot size must be positive, got {lot}")
        elif isinstance(parent.quantity, int) and parent.quantity % lot:
            problems.append(f"quantity {parent.quantity} is not a whole number of lots of {lot}")
        if not problems:
            why = self._plan()
            if why:
                problems.append(why)
        if problems:
            self._set(AlgoStatus.INVALID, "; ".join(problems))
        else:
            self._set(AlgoStatus.PENDING, "started")

    def on_time(self, ts_ns: int, market: MarketState) -> list[Order]:
        """The child orders due at ``ts_ns`` given ``market`` (empty, or one child)."""
        parent = self._parent
        if parent is None or self._status in (AlgoStatus.INVALID, AlgoStatus.STOPPED):
            return []
        in_window = self._start <= ts_ns < self._end
        tradable = market.phase is SessionPhase.CONTINUOUS and not market.halted
        self._observe(ts_ns, market, in_window and tradable)
        if self.remaining == 0:
            self._set(AlgoStatus.COMPLETED, "")
            return []
        if ts_ns < self._start:
            self._set(AlgoStatus.PENDING, f"the window starts at {self._start}")
            return []
        if ts_ns >= self._end:
            self._set(
                AlgoStatus.EXPIRED,
                f"the window ended with {self.remaining} unfilled ({self._working} working)",
            )
            return []
        if not tradable:
            why = "trading is halted" if market.halted else f"the market is in {market.phase}"
            self._set(AlgoStatus.PAUSED, f"{why}: children wait for continuous trading")
            return []
        room = parent.quantity - self._filled - self._working
        lot = self._ctx.lot_size
        qty = min(self._due(ts_ns, market), room) // lot * lot
        if qty <= 0:
            self._set(AlgoStatus.RUNNING, "")
            return []
        price, why = child_price(
            self.pricing,
            parent,
            market.day,
            self._ctx.tick_table,
            bid=market.bid,
            ask=market.ask,
            last=market.last,
            band=market.band,
        )
        if price is None:
            self._set(AlgoStatus.BLOCKED, why)
            return []
        self._n += 1
        child = Order(
            client_order_id=f"{parent.client_order_id}-{self._n}",
            symbol=parent.symbol,
            side=parent.side,
            quantity=qty,
            order_type=OrderType.LIMIT,
            limit_price=price,
            time_in_force=self.pricing.time_in_force,
            ts_ns=ts_ns,
            strategy_id=parent.strategy_id,
            parent_id=parent.client_order_id,
        )
        self._children[child.client_order_id] = _Child(child)
        self._sent.append(child)
        self._working += qty
        self._consumed(qty)
        self._set(AlgoStatus.RUNNING, "")
        return [child]

    def on_fill(self, report: ExecutionReport) -> bool:
        """Apply a child's execution report; returns whether it concerned one of our children.

        Fills count once: a repeated ``exec_id`` or a ``cum_qty`` already counted adds nothing,
        and a fill never counts beyond the child's quantity. A terminal report (filled,
        cancelled, expired, rejected) releases the child's unfilled leaves to the schedule.
        """
        child = self._children.get(report.client_order_id)
        if child is None:
            return False
        if report.is_fill and report.exec_id:
            if report.exec_id in self._exec_ids:
                return True
            self._exec_ids.add(report.exec_id)
        if not child.open:
            return True
        fill = max(report.last_qty, 0)
        if report.cum_qty > 0:
            fill = min(fill, max(report.cum_qty - child.filled, 0))
        fill = min(fill, child.order.quantity - child.filled)
        if fill:
            child.filled += fill
            self._filled += fill
            self._working -= fill
            self._rejects_in_row = 0
        if report.status.is_terminal or child.filled == child.order.quantity:
            self._working -= child.order.quantity - child.filled
            child.open = False
        if report.status is OrderStatus.REJECTED:
            self._rejects_in_row += 1
            if self._rejects_in_row >= self._ctx.max_consecutive_rejects:
                self._set(
                    AlgoStatus.STOPPED,
                    f"{self._rejects_in_row} children rejected in a row, last: "
                    f"{report.reject_code} {report.reason}".rstrip(),
                )
        elif report.status is OrderStatus.ACCEPTED:
            self._rejects_in_row = 0
        if self.remaining == 0:
            self._set(AlgoStatus.COMPLETED, "")
        return True

    def stop(self, reason: str) -> bool:
        """Send no more children (a kill switch, a halted account, an operator's cancel); the
        working ones are the host's to cancel. False when already finished or stopped."""
        if self._parent is None or self.done or self._status is AlgoStatus.STOPPED:
            return False
        self._set(AlgoStatus.STOPPED, reason)
        return True

    # --- what the host can read ---------------------------------------------------------------

    @property
    def parent(self) -> Order | None:
        return self._parent

    @property
    def status(self) -> AlgoStatus:
        return self._status

    @property
    def reason(self) -> str:
        """Why the algorithm is in its status (empty while running normally)."""
        return self._reason

    @property
    def filled(self) -> int:
        return self._filled

    @property
    def working(self) -> int:
        """Unfilled quantity of children still open at the venue."""
        return self._working

    @property
    def remaining(self) -> int:
        """Parent quantity not yet filled (working children included)."""
        return 0 if self._parent is None else self._parent.quantity - self._filled

    @property
    def done(self) -> bool:
        """Nothing more will happen: filled, invalid, or ended/stopped with no child working."""
        if self._parent is None:
            return False
        if self._status is AlgoStatus.INVALID or self.remaining == 0:
            return True
        return self._status in (AlgoStatus.EXPIRED, AlgoStatus.STOPPED) and self._working == 0

    @property
    def children(self) -> tuple[Order, ...]:
        """Every child sent, in order."""
        return tuple(self._sent)

    @property
    def open_children(self) -> tuple[str, ...]:
        """Ids of children still working (what a router cancels when the window expires)."""
        return tuple(cid for cid, c in self._children.items() if c.open)

    @property
    def start_ns(self) -> int:
        return self._start

    @property
    def end_ns(self) -> int:
        return self._end

    # --- what an algorithm implements -------------------------------------------------------------

    def _plan(self) -> str:
        """Prepare the schedule after ``start``; return a reason to refuse the parent, or ""."""
        return ""

    def _observe(self, ts_ns: int, market: MarketState, active: bool) -> None:
        """See every event (``active``: in the window and tradable), e.g. to track volume."""
        return None

    @abstractmethod
    def _due(self, ts_ns: int, market: MarketState) -> int:
        """Shares the algorithm wants to send now, before the over-send cap and lot rounding."""

    def _consumed(self, qty: int) -> None:
        """A child of ``qty`` was sent."""
        return None

    # --- internals --------------------------------------------------------------------------

    def _reset(self) -> None:
        self._parent: Order | None = None
        self._start = 0
        self._end = 0
        self._ctx = AlgoContext()
        self._children: dict[str, _Child] = {}
        self._sent: list[Order] = []
        self._exec_ids: set[str] = set()
        self._filled = 0
        self._working = 0
        self._n = 0
        self._rejects_in_row = 0
        self._status = AlgoStatus.PENDING
        self._reason = "not started"

    def _set(self, status: AlgoStatus, reason: str) -> None:
        if self._status is AlgoStatus.STOPPED and status is not AlgoStatus.COMPLETED:
            return
        self._status, self._reason = status, reason


class ScheduledAlgorithm(ExecutionAlgorithm):
    """An algorithm whose whole schedule is fixed at start: slices of shares due at set times.

    Subclasses give the slice times and weights; the shares are split with ``allocate_lots`` so
    they sum to the parent exactly. At each event the due quantity is what the slices due so far
    add up to, less what is already filled or working, so slices missed during a pause are sent
    together at the next continuous-trading event (catch-up), but never after the window ends.
    """

    def _reset(self) -> None:
        super()._reset()
        self._times: list[int] = []
        self._cum: list[int] = []
        self._schedule: tuple[tuple[int, int], ...] = ()

    def _plan(self) -> str:
        planned = self._slices()
        if isinstance(planned, str):
            return planned
        times, weights = planned
        assert self._parent is not None
        try:
            qty = allocate_lots(self._parent.quantity, weights, self._ctx.lot_size)
        except ValueError as exc:
            return str(exc)
        pairs = sorted(
            ((int(t), q) for t, q in zip(times, qty, strict=True) if q > 0), key=lambda p: p[0]
        )
        self._times = [t for t, _ in pairs]
        self._cum = list(np.cumsum([q for _, q in pairs]).tolist())
        self._schedule = tuple(pairs)
        return ""

    @abstractmethod
    def _slices(self) -> tuple[Sequence[int], Sequence[float]] | str:
        """Slice due times (UTC ns, within the window) and their weights, or a refusal."""

    @property
    def schedule(self) -> tuple[tuple[int, int], ...]:
        """The planned slices as ``(due_ns, shares)``; the shares sum to the parent quantity."""
        return self._schedule

    def target(self, ts_ns: int) -> int:
        """Shares the schedule wants committed (filled or working) by ``ts_ns``."""
        k = bisect.bisect_right(self._times, ts_ns)
        return int(self._cum[k - 1]) if k else 0

    def _due(self, ts_ns: int, market: MarketState) -> int:
        return self.target(ts_ns) - self._filled - self._working


def even_times(start_ns: int, end_ns: int, n: int) -> list[int]:
    """``n`` due times splitting ``[start_ns, end_ns)`` evenly, the first at ``start_ns``."""
    span = end_ns - start_ns
    return [start_ns + (i * span) // n for i in range(n)]


def check_positive(name: str, value: float) -> None:
    """Configuration checks raise at construction: a mis-configured algorithm is a bug to
    surface before trading, unlike bad orders on the trading path which get a status."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive, got {value!r}")
