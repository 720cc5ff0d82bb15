"""Features: one definition each, computed vectorised over history (polars) and incrementally
on a stream (compiled kernels), with identical values and no look-ahead.

Build a ``FeaturePipeline`` from features (or a default set: ``bar_features()``,
``quote_features()``, ``trade_features()``), call ``batch(frame)`` for research and
``stream()`` for the live stream processor.
"""

from quant.features.base import (
    CONTEXT,
    MARKET_RETURN,
    MINUTES_SINCE_OPEN,
    PHASE,
    SESSION,
    TIME_OF_DAY,
    Feature,
    FeatureStream,
    Source,
)
from quant.features.calendar_features import (
    PHASE_CODES,
    PHASES,
    MinutesSinceOpen,
    SessionClock,
    SessionPhaseCode,
    TimeOfDay,
)
from quant.features.factor import MarketBeta, ResidualMomentum, with_market_return
from quant.features.fracdiff import FracDiff, ffd_weights
from quant.features.indicators import ATR, MACD, RSI, VolumeZScore, VwapDistance
from quant.features.microstructure import (
    Microprice,
    OrderFlowImbalance,
    RelativeSpread,
    TradeSignImbalance,
)
from quant.features.pipeline import (
    FeaturePipeline,
    StreamingFeatures,
    bar_features,
    quote_features,
    trade_features,
)
from quant.features.returns import LogReturn
from quant.features.volatility import (
    CloseToCloseVol,
    GarmanKlassVol,
    ParkinsonVol,
    YangZhangVol,
    yang_zhang_k,
)

__all__ = [
    "ATR",
    "CONTEXT",
    "MACD",
    "MARKET_RETURN",
    "MINUTES_SINCE_OPEN",
    "PHASE",
    "PHASES",
    "PHASE_CODES",
    "RSI",
    "SESSION",
    "TIME_OF_DAY",
    "CloseToCloseVol",
    "Feature",
    "FeaturePipeline",
    "FeatureStream",
    "FracDiff",
    "GarmanKlassVol",
    "LogReturn",
    "MarketBeta",
    "Microprice",
    "MinutesSinceOpen",
    "OrderFlowImbalance",
    "ParkinsonVol",
    "RelativeSpread",
    "ResidualMomentum",
    "SessionClock",
    "SessionPhaseCode",
    "Source",
    "StreamingFeatures",
    "TimeOfDay",
    "TradeSignImbalance",
    "VolumeZScore",
    "VwapDistance",
    "YangZhangVol",
    "bar_features",
    "ffd_weights",
    "quote_features",
    "trade_features",
    "with_market_return",
    "yang_zhang_k",
]
