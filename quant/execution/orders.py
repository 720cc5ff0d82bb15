"""Orders, execution reports and the order state machine.

The same records flow through the backtest and the live actors: a strategy emits an ``Order``,
risk accepts or rejects it with a ``RejectCode``, a venue answers with ``ExecutionReport``s and an
``OrderState`` applies them, refusing any transition the order lifecycle does not allow (a fill
after a cancel, say), because a silently accepted impossible event is how positions drift.

Times are UTC nanoseconds (ints); prices are TRY on the tick grid; quantities are whole shares.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from enum import IntEnum, StrEnum
from typing import Any


class Side(IntEnum):
    BUY = 1
    SELL = -1

    @property
    def sign(self) -> int:
        return int(self)

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    MARKET_TO_LIMIT = "market_to_limit"
    """Executes at the best opposite price; an unfilled rest becomes a limit at that price."""


class TimeInForce(StrEnum):
    DAY = "day"
    IOC = "ioc"
    """Immediate or cancel: fill what can be filled now, cancel the rest."""
    FOK = "fok"
    """Fill or kill: fill everything now or nothing."""


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    # Plain attributes of each member (set below), not properties: every order reads them
    # several times on its way through the backtest and the router.
    is_terminal: bool
    """Nothing can happen to the order any more (filled, cancelled, rejected, expired)."""
    is_open: bool
    """The venue is working the order (accepted or partially filled)."""


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
for _status in OrderStatus:
    object.__setattr__(_status, "is_terminal", _status in _TERMINAL)
    object.__setattr__(
        _status, "is_open", _status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
    )
del _status

ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset({OrderStatus.ACCEPTED, OrderStatus.REJECTED}),
    OrderStatus.ACCEPTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}
"""The order lifecycle. An accepted order is the venue's; everything after is its answer."""


class RejectCode(StrEnum):
    """Why an order was refused; the same codes as ``smarttrader.v1.RejectCode`` on the wire."""

    INVALID_ORDER = "INVALID_ORDER"
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    ORDER_SIZE = "ORDER_SIZE"
    NOTIONAL = "NOTIONAL"
    PRICE_COLLAR = "PRICE_COLLAR"
    OFF_TICK = "OFF_TICK"
    OUTSIDE_BAND = "OUTSIDE_BAND"
    POSITION_LIMIT = "POSITION_LIMIT"
    EXPOSURE = "EXPOSURE"
    THROTTLE = "THROTTLE"
    ORDER_TO_TRADE_RATIO = "ORDER_TO_TRADE_RATIO"
    FAT_FINGER = "FAT_FINGER"
    TRADING_HALTED = "TRADING_HALTED"
    KILL_SWITCH = "KILL_SWITCH"
    OUTSIDE_SESSION = "OUTSIDE_SESSION"
    DRAWDOWN = "DRAWDOWN"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    SHORT_SALE = "SHORT_SALE"
    VENUE = "VENUE"


def fast_frozen_init(cls: type) -> type:
    """Give a frozen slots dataclass an ``__init__`` that stores its fields through the slot
    descriptors: the same signature, defaults and immutability as the generated one (which
    goes through ``object.__setattr__`` once per field), in about half the time. Orders and
    reports are made several times per order on the backtest's and the router's hot paths."""
    params: list[str] = []
    body: list[str] = []
    env: dict[str, Any] = {}
    for f in fields(cls):
        if f.default is not MISSING:
            env[f"_d_{f.name}"] = f.default
            params.append(f"{f.name}=_d_{f.name}")
        elif f.default_factory is not MISSING:  # pragma: no cover - none of ours has one
            raise TypeError(f"{cls.__name__}.{f.name}: default factories are not supported")
        else:
            params.append(f.name)
        env[f"_s_{f.name}"] = cls.__dict__[f.name].__set__
        body.append(f"    _s_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    namespace: dict[str, Any] = {}
    exec(source, env, namespace)  # code built from the class's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[misc]
    return cls


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class Order:
    """An instruction to trade. Immutable: changes go through the venue as a replace."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.LIMIT
    limit_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    ts_ns: int = 0
    """When the order was created (strategy time)."""
    strategy_id: str = ""
    parent_id: str | None = None
    """The parent order an execution algorithm sliced this child from."""

    def problems(self) -> list[str]:
        """Structural problems that make the order meaningless (not risk limits)."""
        found = []
        if not self.client_order_id:
            found.append("empty client order id")
        if not isinstance(self.quantity, int) or isinstance(self.quantity, bool):
            found.append(f"quantity must be a whole number of shares, got {self.quantity!r}")
        elif self.quantity <= 0:
            found.append(f"quantity must be positive, got {self.quantity}")
        if self.order_type is OrderType.LIMIT:
            if self.limit_price is None:
                found.append("a limit order needs a limit price")
            elif not self.limit_price > 0:
                found.append(f"limit price must be positive, got {self.limit_price}")
        elif self.limit_price is not None:
            found.append(f"a {self.order_type} order takes no limit price")
        return found

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """A venue's (or the risk layer's) answer about one order at one instant."""

    client_order_id: str
    status: OrderStatus
    ts_ns: int
    symbol: str = ""
    side: Side | None = None
    exec_id: str = ""
    venue_order_id: str = ""
    last_qty: int = 0
    last_price: float = 0.0
    cum_qty: int = 0
    leaves_qty: int = 0
    avg_price: float = 0.0
    fees: float = 0.0
    """Fees of this execution (TRY, venue-rounded)."""
    reject_code: RejectCode | None = None
    reason: str = ""
    liquidity: str = ""
    """"maker", "taker" or "auction" for fills."""

    @property
    def is_fill(self) -> bool:
        return self.last_qty > 0


class IllegalTransition(ValueError):
    """An execution report the order's lifecycle does not allow."""


@dataclass(slots=True)
class OrderState:
    """The life of one order as reports arrive: status, fills, average price, fees."""

    order: Order
    status: OrderStatus = OrderStatus.NEW
    filled_qty: int = 0
    avg_price: float = 0.0
    fees: float = 0.0
    venue_order_id: str = ""
    reject_code: RejectCode | None = None
    reason: str = ""
    history: list[ExecutionReport] = field(default_factory=list)

    @property
    def leaves_qty(self) -> int:
        return 0 if self.status.is_terminal else self.order.quantity - self.filled_qty

    def apply(self, report: ExecutionReport) -> None:
        """Move to the report's status, or raise ``IllegalTransition`` and change nothing."""
        if report.client_order_id != self.order.client_order_id:
            raise IllegalTransition(
                f"report for {report.client_order_id} applied to {self.order.client_order_id}"
            )
        oid = self.order.client_order_id
        if report.status not in ALLOWED_TRANSITIONS[self.status]:
            raise IllegalTransition(f"order {oid}: {self.status} -> {report.status} is not allowed")
        if report.last_qty < 0:
            raise IllegalTransition(f"negative fill quantity {report.last_qty}")
        filled = self.filled_qty + report.last_qty
        # Only fills can overfill: an order refused for a zero or negative quantity must still
        # reach REJECTED, so a report without a fill is not held to the order's quantity.
        if report.last_qty and filled > self.order.quantity:
            raise IllegalTransition(f"order {oid}: fills of {filled} exceed {self.order.quantity}")
        if report.status is OrderStatus.FILLED and filled != self.order.quantity:
            raise IllegalTransition(f"order {oid}: FILLED with {filled} of {self.order.quantity}")
        if report.status is OrderStatus.PARTIALLY_FILLED and report.last_qty == 0:
            raise IllegalTransition("a partial fill report must carry a quantity")
        if report.last_qty:
            notional = self.avg_price * self.filled_qty + report.last_price * report.last_qty
            self.avg_price = notional / filled
        self.filled_qty = filled
        self.fees += report.fees
        self.status = report.status
        if report.venue_order_id:
            self.venue_order_id = report.venue_order_id
        if report.reject_code is not None:
            self.reject_code = report.reject_code
        if report.reason:
            self.reason = report.reason
        self.history.append(report)
