from smarttrader.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_MARKET_TO_LIMIT: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_DAY: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IOC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_FOK: _ClassVar[TimeInForce]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_NEW: _ClassVar[OrderStatus]
    ORDER_STATUS_ACCEPTED: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELLED: _ClassVar[OrderStatus]
    ORDER_STATUS_REJECTED: _ClassVar[OrderStatus]
    ORDER_STATUS_EXPIRED: _ClassVar[OrderStatus]

class RejectCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_CODE_UNSPECIFIED: _ClassVar[RejectCode]
    REJECT_CODE_INVALID_ORDER: _ClassVar[RejectCode]
    REJECT_CODE_DUPLICATE_ORDER_ID: _ClassVar[RejectCode]
    REJECT_CODE_UNKNOWN_SYMBOL: _ClassVar[RejectCode]
    REJECT_CODE_ORDER_SIZE: _ClassVar[RejectCode]
    REJECT_CODE_NOTIONAL: _ClassVar[RejectCode]
    REJECT_CODE_PRICE_COLLAR: _ClassVar[RejectCode]
    REJECT_CODE_OFF_TICK: _ClassVar[RejectCode]
    REJECT_CODE_OUTSIDE_BAND: _ClassVar[RejectCode]
    REJECT_CODE_POSITION_LIMIT: _ClassVar[RejectCode]
    REJECT_CODE_EXPOSURE: _ClassVar[RejectCode]
    REJECT_CODE_THROTTLE: _ClassVar[RejectCode]
    REJECT_CODE_ORDER_TO_TRADE_RATIO: _ClassVar[RejectCode]
    REJECT_CODE_FAT_FINGER: _ClassVar[RejectCode]
    REJECT_CODE_TRADING_HALTED: _ClassVar[RejectCode]
    REJECT_CODE_KILL_SWITCH: _ClassVar[RejectCode]
    REJECT_CODE_OUTSIDE_SESSION: _ClassVar[RejectCode]
    REJECT_CODE_DRAWDOWN: _ClassVar[RejectCode]
    REJECT_CODE_INSUFFICIENT_FUNDS: _ClassVar[RejectCode]
    REJECT_CODE_SHORT_SALE: _ClassVar[RejectCode]
    REJECT_CODE_VENUE: _ClassVar[RejectCode]
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_MARKET: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_MARKET_TO_LIMIT: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_DAY: TimeInForce
TIME_IN_FORCE_IOC: TimeInForce
TIME_IN_FORCE_FOK: TimeInForce
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_NEW: OrderStatus
ORDER_STATUS_ACCEPTED: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_CANCELLED: OrderStatus
ORDER_STATUS_REJECTED: OrderStatus
ORDER_STATUS_EXPIRED: OrderStatus
REJECT_CODE_UNSPECIFIED: RejectCode
REJECT_CODE_INVALID_ORDER: RejectCode
REJECT_CODE_DUPLICATE_ORDER_ID: RejectCode
REJECT_CODE_UNKNOWN_SYMBOL: RejectCode
REJECT_CODE_ORDER_SIZE: RejectCode
REJECT_CODE_NOTIONAL: RejectCode
REJECT_CODE_PRICE_COLLAR: RejectCode
REJECT_CODE_OFF_TICK: RejectCode
REJECT_CODE_OUTSIDE_BAND: RejectCode
REJECT_CODE_POSITION_LIMIT: RejectCode
REJECT_CODE_EXPOSURE: RejectCode
REJECT_CODE_THROTTLE: RejectCode
REJECT_CODE_ORDER_TO_TRADE_RATIO: RejectCode
REJECT_CODE_FAT_FINGER: RejectCode
REJECT_CODE_TRADING_HALTED: RejectCode
REJECT_CODE_KILL_SWITCH: RejectCode
REJECT_CODE_OUTSIDE_SESSION: RejectCode
REJECT_CODE_DRAWDOWN: RejectCode
REJECT_CODE_INSUFFICIENT_FUNDS: RejectCode
REJECT_CODE_SHORT_SALE: RejectCode
REJECT_CODE_VENUE: RejectCode

class Order(_message.Message):
    __slots__ = ("client_order_id", "symbol", "side", "quantity", "order_type", "limit_price_units", "time_in_force", "strategy_id", "ts_ns")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_UNITS_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    symbol: str
    side: _common_pb2.Side
    quantity: int
    order_type: OrderType
    limit_price_units: int
    time_in_force: TimeInForce
    strategy_id: str
    ts_ns: int
    def __init__(self, client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., quantity: _Optional[int] = ..., order_type: _Optional[_Union[OrderType, str]] = ..., limit_price_units: _Optional[int] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ..., strategy_id: _Optional[str] = ..., ts_ns: _Optional[int] = ...) -> None: ...

class ExecutionReport(_message.Message):
    __slots__ = ("exec_id", "client_order_id", "venue_order_id", "symbol", "side", "status", "last_quantity", "last_price_units", "cum_quantity", "cum_notional_units", "avg_price", "leaves_quantity", "fees_units", "reject_code", "reject_reason", "ts_ns")
    EXEC_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    VENUE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LAST_PRICE_UNITS_FIELD_NUMBER: _ClassVar[int]
    CUM_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CUM_NOTIONAL_UNITS_FIELD_NUMBER: _ClassVar[int]
    AVG_PRICE_FIELD_NUMBER: _ClassVar[int]
    LEAVES_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FEES_UNITS_FIELD_NUMBER: _ClassVar[int]
    REJECT_CODE_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    exec_id: str
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: _common_pb2.Side
    status: OrderStatus
    last_quantity: int
    last_price_units: int
    cum_quantity: int
    cum_notional_units: int
    avg_price: float
    leaves_quantity: int
    fees_units: int
    reject_code: RejectCode
    reject_reason: str
    ts_ns: int
    def __init__(self, exec_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., venue_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Side, str]] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., last_quantity: _Optional[int] = ..., last_price_units: _Optional[int] = ..., cum_quantity: _Optional[int] = ..., cum_notional_units: _Optional[int] = ..., avg_price: _Optional[float] = ..., leaves_quantity: _Optional[int] = ..., fees_units: _Optional[int] = ..., reject_code: _Optional[_Union[RejectCode, str]] = ..., reject_reason: _Optional[str] = ..., ts_ns: _Optional[int] = ...) -> None: ...

class RiskReject(_message.Message):
    __slots__ = ("client_order_id", "symbol", "strategy_id", "code", "message", "ts_ns")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    symbol: str
    strategy_id: str
    code: RejectCode
    message: str
    ts_ns: int
    def __init__(self, client_order_id: _Optional[str] = ..., symbol: _Optional[str] = ..., strategy_id: _Optional[str] = ..., code: _Optional[_Union[RejectCode, str]] = ..., message: _Optional[str] = ..., ts_ns: _Optional[int] = ...) -> None: ...
