"""Execution algorithms: pure schedulers turning a parent order into child orders.

TWAP, VWAP (from a learned intraday volume profile), POV and the Almgren-Chriss optimal
trajectory share one interface (``ExecutionAlgorithm``: ``start``, ``on_time``, ``on_fill``)
driven by the host's events and clock, so the backtest and the live router run the same code.
"""

from quant.execution.algos.almgren_chriss import (
    ACTrajectory,
    AlmgrenChriss,
    ac_cost,
    ac_kappa,
    almgren_chriss_trajectory,
)
from quant.execution.algos.base import (
    AlgoContext,
    AlgoStatus,
    ExecutionAlgorithm,
    MarketState,
    ScheduledAlgorithm,
    allocate_lots,
)
from quant.execution.algos.pov import POV
from quant.execution.algos.pricing import PriceReference, PricingPolicy, child_price, step_ticks
from quant.execution.algos.twap import TWAP
from quant.execution.algos.volume_profile import (
    VolumeProfile,
    learn_volume_profile,
    scale_to_half_day,
)
from quant.execution.algos.vwap import VWAP

__all__ = [
    "POV",
    "TWAP",
    "VWAP",
    "ACTrajectory",
    "AlgoContext",
    "AlgoStatus",
    "AlmgrenChriss",
    "ExecutionAlgorithm",
    "MarketState",
    "PriceReference",
    "PricingPolicy",
    "ScheduledAlgorithm",
    "VolumeProfile",
    "ac_cost",
    "ac_kappa",
    "allocate_lots",
    "almgren_chriss_trajectory",
    "child_price",
    "learn_volume_profile",
    "scale_to_half_day",
    "step_ticks",
]
