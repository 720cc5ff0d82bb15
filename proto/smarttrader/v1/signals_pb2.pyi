from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_LONG: _ClassVar[Direction]
    DIRECTION_SHORT: _ClassVar[Direction]
    DIRECTION_FLAT: _ClassVar[Direction]
DIRECTION_UNSPECIFIED: Direction
DIRECTION_LONG: Direction
DIRECTION_SHORT: Direction
DIRECTION_FLAT: Direction

class Signal(_message.Message):
    __slots__ = ("symbol", "ts_ns", "model_name", "model_version", "direction", "score", "probability", "horizon_ns")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TS_NS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    HORIZON_NS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    ts_ns: int
    model_name: str
    model_version: str
    direction: Direction
    score: float
    probability: float
    horizon_ns: int
    def __init__(self, symbol: _Optional[str] = ..., ts_ns: _Optional[int] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., score: _Optional[float] = ..., probability: _Optional[float] = ..., horizon_ns: _Optional[int] = ...) -> None: ...
