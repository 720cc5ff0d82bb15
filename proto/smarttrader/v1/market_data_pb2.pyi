from smarttrader.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TradeCondition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRADE_CONDITION_UNSPECIFIED: _ClassVar[TradeCondition]
    TRADE_CONDITION_CONTINUOUS: _ClassVar[TradeCondition]
    TRADE_CONDITION_OPENING_AUCTION: _ClassVar[TradeCondition]
    TRADE_CONDITION_CLOSING_AUCTION: _ClassVar[TradeCondition]
    TRADE_CONDITION_TRADES_AT_CLOSE: _ClassVar[TradeCondition]
    TRADE_CONDITION_HALT_AUCTION: _ClassVar[TradeCondition]
TRADE_CONDITION_UNSPECIFIED: TradeCondition
TRADE_CONDITION_CONTINUOUS: TradeCondition
TRADE_CONDITION_OPENING_AUCTION: TradeCondition
TRADE_CONDITION_CLOSING_AUCTION: TradeCondition
TRADE_CONDITION_TRADES_AT_CLOSE: TradeCondition
TRADE_CONDITION_HALT_AUCTION: TradeCondition

class Trade(_message.Message):
    __slots__ = ("ts_ns", "symbol", "price", "size", "seq", "aggressor", "condition")
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AGGRESSOR_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    ts_ns: int
    symbol: str
    price: float
    size: int
    seq: int
    aggressor: _common_pb2.Side
    condition: TradeCondition
    def __init__(self, ts_ns: _Optional[int] = ..., symbol: _Optional[str] = ..., price: _Optional[float] = ..., size: _Optional[int] = ..., seq: _Optional[int] = ..., aggressor: _Optional[_Union[_common_pb2.Side, str]] = ..., condition: _Optional[_Union[TradeCondition, str]] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("ts_ns", "symbol", "bid_price", "bid_size", "ask_price", "ask_size", "seq")
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    BID_PRICE_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_PRICE_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ts_ns: int
    symbol: str
    bid_price: float
    bid_size: int
    ask_price: float
    ask_size: int
    seq: int
    def __init__(self, ts_ns: _Optional[int] = ..., symbol: _Optional[str] = ..., bid_price: _Optional[float] = ..., bid_size: _Optional[int] = ..., ask_price: _Optional[float] = ..., ask_size: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class Bar(_message.Message):
    __slots__ = ("ts_ns", "ts_end_ns", "symbol", "open", "high", "low", "close", "volume", "vwap", "trade_count")
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    TS_END_NS_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    VWAP_FIELD_NUMBER: _ClassVar[int]
    TRADE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ts_ns: int
    ts_end_ns: int
    symbol: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    vwap: float
    trade_count: int
    def __init__(self, ts_ns: _Optional[int] = ..., ts_end_ns: _Optional[int] = ..., symbol: _Optional[str] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[int] = ..., vwap: _Optional[float] = ..., trade_count: _Optional[int] = ...) -> None: ...
