"""Orders, the order state machine, the venue protocol and execution algorithms."""

from quant.execution.orders import (
    ALLOWED_TRANSITIONS,
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
from quant.execution.venue import Venue

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ExecutionReport",
    "IllegalTransition",
    "Order",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "RejectCode",
    "Side",
    "TimeInForce",
    "Venue",
]
