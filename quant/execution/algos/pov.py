"""POV (percentage of volume): trade a fixed share of what the market trades.

Each event adds ``rate`` × (market volume since the previous event) to an entitlement; a child
is sent when the entitlement reaches ``min_slice`` shares, for the entitlement in whole lots and
at most ``max_slice``. Fractions of a lot carry over, so over many events the children add up to
``rate`` × the observed volume to within one lot. The rate is a share of total market volume,
own executions included (they are in the market's prints); volume is read from
``MarketState.cumulative_volume`` (differences between events; a drop means a new day) or,
when that is None, from ``interval_volume``.

Only continuous-trading volume inside the window counts: volume printed before the start, in
auctions or around a halt moves the baseline but earns nothing, because continuous children
cannot take part in it.

Policy when the market is quiet: POV follows the market and does not promise completion. By
default (``catch_up=False``) participation is a cap, not a debt: the entitlement never exceeds
``max_slice``, so volume the algorithm could not take part in (a child already at the cap,
children still working) is forgone, and the window may end with quantity unfilled (status
``EXPIRED``, the rest for the caller to decide, e.g. the closing auction). With
``catch_up=True`` the shortfall is kept as a debt and paid in later children of at most
``max_slice`` each, which raises the realised rate after a lull.
"""

from __future__ import annotations

import math

from quant.execution.algos.base import ExecutionAlgorithm, MarketState
from quant.execution.algos.pricing import PricingPolicy


class POV(ExecutionAlgorithm):
    """Participate at ``rate`` (0 < rate ≤ 1) of market volume, children in [min, max] shares."""

    name = "pov"

    def __init__(
        self,
        rate: float,
        min_slice: int = 1,
        max_slice: int | None = None,
        catch_up: bool = False,
        pricing: PricingPolicy | None = None,
    ) -> None:
        if not (math.isfinite(rate) and 0 < rate <= 1):
            raise ValueError(f"participation rate must be in (0, 1], got {rate!r}")
        if not isinstance(min_slice, int) or min_slice < 1:
            raise ValueError(f"min_slice must be a positive integer, got {min_slice!r}")
        if max_slice is not None and (not isinstance(max_slice, int) or max_slice < min_slice):
            raise ValueError(f"max_slice must be an integer ≥ min_slice, got {max_slice!r}")
        self.rate = float(rate)
        self.min_slice = min_slice
        self.max_slice = max_slice
        self.catch_up = catch_up
        super().__init__(pricing)

    @property
    def market_volume(self) -> int:
        """Market volume observed while participating (continuous trading, in the window)."""
        return self._market_volume

    @property
    def entitlement(self) -> float:
        """Shares earned by observed volume and not yet sent."""
        return self._entitled

    def _reset(self) -> None:
        super()._reset()
        self._last_cum: int | None = None
        self._entitled = 0.0
        self._market_volume = 0

    def _observe(self, ts_ns: int, market: MarketState, active: bool) -> None:
        volume = 0
        if market.cumulative_volume is not None:
            cum = int(market.cumulative_volume)
            if self._last_cum is not None:
                volume = cum - self._last_cum if cum >= self._last_cum else cum
            self._last_cum = cum
        elif market.interval_volume is not None:
            volume = max(int(market.interval_volume), 0)
        if not active or volume <= 0:
            return
        self._market_volume += volume
        self._entitled += self.rate * volume
        if not self.catch_up and self.max_slice is not None:
            self._entitled = min(self._entitled, float(self.max_slice))

    def _due(self, ts_ns: int, market: MarketState) -> int:
        lot = self._ctx.lot_size
        qty = math.floor(self._entitled / lot + 1e-9) * lot
        if self.max_slice is not None:
            qty = min(qty, self.max_slice // lot * lot)
        if qty < self.min_slice and qty < self.remaining - self._working:
            return 0  # too small to send, unless it is the parent's last piece
        return qty

    def _consumed(self, qty: int) -> None:
        self._entitled = max(self._entitled - qty, 0.0)
