"""Symmetric CUSUM event filter (AFML snippet 2.4): sample bars where something happened.

Labelling every bar gives thousands of nearly identical, heavily overlapping labels. The CUSUM
filter instead emits an event when the cumulative log return since the last reset drifts more
than ``threshold`` up or down, so events mark moves of a chosen size, not the passing of time.

The snippet is applied to log prices: for each bar t (from the second on) with log return
r_t = log(p_t / p_{t-1}),

    S+_t = max(0, S+_{t-1} + r_t),  S-_t = min(0, S-_{t-1} + r_t)
    if S-_t < -h_t: event at t, S-_t = 0;  elif S+_t > h_t: event at t, S+_t = 0

with strict inequalities and the down side checked first, as in the book. The threshold may
also vary in time (a Series on the price index, e.g. a volatility estimate); it is read at t,
where it is known, so an event at t depends on prices up to t only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant.labels._series import PriceLike, as_close_series


def cusum_filter(prices: PriceLike, threshold: float | pd.Series) -> pd.DatetimeIndex | pd.Index:
    """Times of the bars at which the symmetric CUSUM of log returns crosses ``threshold``.

    ``prices``: closes of one symbol indexed by close time (``ts_end``). ``threshold``: a
    positive log-return size, or a Series on the price index (NaN there: no event can fire,
    and the sums keep running). Returns a subset of the price index, in time order.
    """
    close = as_close_series(prices)
    log_p = np.log(close.to_numpy())
    diff = np.diff(log_p)
    if isinstance(threshold, pd.Series):
        h = threshold.reindex(close.index).to_numpy(dtype=np.float64, na_value=np.nan)[1:]
        if (h <= 0).any():
            raise ValueError("CUSUM threshold must be positive")
    else:
        if not threshold > 0:
            raise ValueError(f"CUSUM threshold must be positive, got {threshold}")
        h = np.full(diff.shape, float(threshold))
    # Inherently sequential (each reset changes the path); plain floats keep the loop cheap
    # (about 1 s for a million bars).
    events: list[int] = []
    s_pos = 0.0
    s_neg = 0.0
    for i, (r, limit) in enumerate(zip(diff.tolist(), h.tolist(), strict=True)):
        s_pos = max(0.0, s_pos + r)
        s_neg = min(0.0, s_neg + r)
        if s_neg < -limit:
            s_neg = 0.0
            events.append(i + 1)
        elif s_pos > limit:
            s_pos = 0.0
            events.append(i + 1)
    return close.index[np.asarray(events, dtype=np.int64)]
