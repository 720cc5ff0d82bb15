"""FIX 4.4 <-> the order records of ``quant.execution.orders``: tags, enums, prices, times.

Pure functions over QuickFIX ``Message`` objects, shared by the client (``FixVenue``) and the
simulated exchange (``FixExchange``) so both ends speak the same dialect:

* prices travel as decimal strings (``Decimal(repr(price))``), never as a C double QuickFIX
  formats, so a price on the tick grid arrives exactly on it and an off-tick price arrives
  exactly off it (and is refused by the exchange's rules, not by rounding);
* quantities are whole shares: a quantity with a fraction does not parse as an order;
* times are UTC nanoseconds, written as FIX UTCTimestamps with nine fractional digits;
* a refusal carries our ``RejectCode`` as the prefix of Text (58, ``"OFF_TICK: ..."``) next to
  the closest standard OrdRejReason (103) / CxlRejReason (102), so the code survives the trip.

QuickFIX aborts the process when ``getField`` misses a tag, so every read goes through
``field()``, which checks ``isSetField`` first.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import quickfix as fix

from quant.execution.orders import OrderStatus, OrderType, RejectCode, Side, TimeInForce

# -- tags -----------------------------------------------------------------------------------
AVG_PX, CL_ORD_ID, COMMISSION, COMM_TYPE, CUM_QTY = 6, 11, 12, 13, 14
EXEC_ID, LAST_PX, LAST_QTY, MSG_TYPE, ORDER_ID, ORDER_QTY = 17, 31, 32, 35, 37, 38
ORD_STATUS, ORD_TYPE, ORIG_CL_ORD_ID, PRICE, SIDE, SYMBOL, TEXT = 39, 40, 41, 44, 54, 55, 58
TIME_IN_FORCE, TRANSACT_TIME, CXL_REJ_REASON, ORD_REJ_REASON = 59, 60, 102, 103
TEST_REQ_ID, EXEC_TYPE, LEAVES_QTY, CXL_REJ_RESPONSE_TO = 112, 150, 151, 434
SECONDARY_CL_ORD_ID, MASS_CANCEL_REQUEST_TYPE, MASS_CANCEL_RESPONSE = 526, 530, 531
MASS_CANCEL_REJECT_REASON, TOTAL_AFFECTED_ORDERS, USERNAME, PASSWORD = 532, 533, 553, 554
ORD_STATUS_REQ_ID, LAST_LIQUIDITY_IND, RAW_DATA, NEW_PASSWORD = 790, 851, 96, 925

SECRET_TAGS = frozenset({PASSWORD, NEW_PASSWORD, RAW_DATA})
"""Tags whose values are credentials: masked in every message log."""

NOT_APPLICABLE = "[N/A]"
"""FIX's placeholder for a required field the sender cannot know (a symbol in a status
request for an order the client has forgotten since a restart)."""

# -- enums ----------------------------------------------------------------------------------
SIDE_TO_FIX = {Side.BUY: "1", Side.SELL: "2"}
SIDE_FROM_FIX = {v: k for k, v in SIDE_TO_FIX.items()}
ORD_TYPE_TO_FIX = {OrderType.MARKET: "1", OrderType.LIMIT: "2", OrderType.MARKET_TO_LIMIT: "K"}
ORD_TYPE_FROM_FIX = {v: k for k, v in ORD_TYPE_TO_FIX.items()}
TIF_TO_FIX = {TimeInForce.DAY: "0", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
TIF_FROM_FIX = {v: k for k, v in TIF_TO_FIX.items()}
ORD_STATUS_TO_FIX = {
    OrderStatus.NEW: "A",  # pending new: the exchange has not decided yet
    OrderStatus.ACCEPTED: "0",
    OrderStatus.PARTIALLY_FILLED: "1",
    OrderStatus.FILLED: "2",
    OrderStatus.CANCELLED: "4",
    OrderStatus.REJECTED: "8",
    OrderStatus.EXPIRED: "C",
}
ORD_STATUS_FROM_FIX = {v: k for k, v in ORD_STATUS_TO_FIX.items()}

EXEC_NEW, EXEC_CANCELED, EXEC_REPLACED, EXEC_REJECTED = "0", "4", "5", "8"
EXEC_EXPIRED, EXEC_TRADE, EXEC_ORDER_STATUS = "C", "F", "I"

LIQUIDITY_TO_FIX = {"maker": "1", "taker": "2", "auction": "4"}
LIQUIDITY_FROM_FIX = {v: k for k, v in LIQUIDITY_TO_FIX.items()}

REJECT_CODE_TO_FIX = {
    RejectCode.UNKNOWN_SYMBOL: "1",
    RejectCode.OUTSIDE_SESSION: "2",
    RejectCode.TRADING_HALTED: "2",
    RejectCode.ORDER_SIZE: "3",
    RejectCode.NOTIONAL: "3",
    RejectCode.DUPLICATE_ORDER_ID: "6",
    RejectCode.INVALID_ORDER: "11",
}
"""RejectCode -> OrdRejReason (103); everything else is 99 (Other) with the code in Text."""
ORD_REJ_FALLBACK = {
    "1": RejectCode.UNKNOWN_SYMBOL,
    "2": RejectCode.OUTSIDE_SESSION,
    "3": RejectCode.ORDER_SIZE,
    "5": RejectCode.INVALID_ORDER,
    "6": RejectCode.DUPLICATE_ORDER_ID,
    "11": RejectCode.INVALID_ORDER,
    "13": RejectCode.INVALID_ORDER,
}
CXL_UNKNOWN_ORDER, CXL_DUPLICATE, CXL_OTHER, CXL_TOO_LATE = "1", "6", "99", "0"

_CODE_PREFIX = re.compile(r"^([A-Z_]+): (.*)$", re.S)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CodecError(ValueError):
    """A field that cannot be turned into our records (wrong type, fraction of a share)."""


def field(message: fix.Message, tag: int) -> str | None:
    """The value of ``tag`` in the body, or None (never QuickFIX's aborting FieldNotFound)."""
    return message.getField(tag) if message.isSetField(tag) else None


def header_field(message: fix.Message, tag: int) -> str | None:
    header = message.getHeader()
    return header.getField(tag) if header.isSetField(tag) else None


def msg_type(message: fix.Message) -> str:
    return header_field(message, MSG_TYPE) or ""


def new_message(kind: str) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(MSG_TYPE, kind)
    return message


def format_price(price: float) -> str:
    """A price as the shortest decimal that reads back as the same float (``10.25``)."""
    if not isinstance(price, int | float) or isinstance(price, bool) or not math.isfinite(price):
        raise CodecError(f"price {price!r} is not a finite number")
    text = format(Decimal(repr(float(price))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_price(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CodecError(f"price {text!r} is not a decimal") from None
    if not value.is_finite():
        raise CodecError(f"price {text!r} is not finite")
    return float(value)


def format_qty(quantity: int) -> str:
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise CodecError(f"quantity {quantity!r} is not a whole number of shares")
    return str(quantity)


def parse_qty(text: str | None, default: int = 0) -> int:
    """A FIX Qty as whole shares: ``"100"`` and ``"100.0"`` are 100, ``"100.5"`` is an error."""
    if text is None:
        return default
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CodecError(f"quantity {text!r} is not a number") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise CodecError(f"quantity {text!r} is not a whole number of shares")
    return int(value)


def format_time(ts_ns: int) -> str:
    """UTC nanoseconds as a FIX UTCTimestamp with nine fractional digits (exact)."""
    seconds, nanos = divmod(int(ts_ns), 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y%m%d-%H:%M:%S}.{nanos:09d}"


def parse_time(text: str | None) -> int:
    """A FIX UTCTimestamp (0 to 9 fractional digits) as UTC nanoseconds; None -> 0."""
    if not text:
        return 0
    whole, _, frac = text.partition(".")
    try:
        moment = datetime.strptime(whole, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise CodecError(f"timestamp {text!r} is not a FIX UTCTimestamp") from None
    if frac and not (frac.isdigit() and len(frac) <= 9):
        raise CodecError(f"timestamp {text!r} has a bad fraction")
    seconds = (moment - _EPOCH).days * 86_400 + (moment - _EPOCH).seconds
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0") or 0)


def reject_text(code: RejectCode, reason: str) -> str:
    return f"{code.value}: {reason}"


def parse_reject_text(text: str | None, fallback: RejectCode) -> tuple[RejectCode, str]:
    """``"OFF_TICK: 10.013 is not ..."`` -> (OFF_TICK, reason); unknown prefix -> fallback."""
    if text:
        m = _CODE_PREFIX.match(text)
        if m and m.group(1) in RejectCode.__members__:
            return RejectCode(m.group(1)), m.group(2)
    return fallback, text or ""


def redact(raw: str) -> str:
    """A FIX message string with every credential field's value replaced by ``***``."""
    parts = raw.split("\x01")
    for i, part in enumerate(parts):
        tag, eq, _ = part.partition("=")
        if eq and tag.isdigit() and int(tag) in SECRET_TAGS:
            parts[i] = f"{tag}=***"
    return "|".join(p for p in parts if p) if parts else raw
