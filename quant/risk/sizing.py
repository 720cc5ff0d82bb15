"""Position sizing: volatility targeting and fractional Kelly.

Sizing turns a view (a signal, an edge) into an amount at risk. Both rules here are deliberately
simple and well understood: volatility targeting makes every position contribute about the same
risk whatever the instrument's volatility; Kelly says how much of the book an edge deserves, and a
fraction of it (half by default) trades a little growth for much less drawdown and for robustness
to an overestimated edge, which every estimated edge is.

Conventions: returns are simple periodic returns (daily by default, 252 periods a year), the
standard deviation is the sample one (ddof=1), NaNs are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

TRADING_DAYS = 252


def _as_returns(returns: Any) -> np.ndarray:
    """1-D float array of returns without NaNs (numpy, pandas or polars input)."""
    if hasattr(returns, "to_numpy"):
        returns = returns.to_numpy()
    arr = np.asarray(returns, dtype=np.float64).reshape(-1)
    return arr[~np.isnan(arr)]


def annualised_volatility(returns: Any, periods_per_year: int = TRADING_DAYS) -> float:
    """Sample standard deviation of periodic returns times ``sqrt(periods_per_year)``."""
    r = _as_returns(returns)
    if r.size < 2:
        raise ValueError(f"need at least two returns to estimate volatility, got {r.size}")
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def vol_target_weight(
    returns_or_sigma: float | Sequence[float] | Any,
    target_annual_vol: float = 0.10,
    max_leverage: float = 1.0,
    periods_per_year: int = TRADING_DAYS,
) -> float:
    """Weight (fraction of equity) that scales a position to ``target_annual_vol``.

    ``returns_or_sigma`` is either the annualised volatility (a number) or a series of periodic
    returns to estimate it from. The weight is ``target / sigma`` capped at ``max_leverage``;
    a zero-volatility series gets the cap, since any size of it meets the target.
    """
    if not target_annual_vol > 0:
        raise ValueError(f"target_annual_vol must be positive, got {target_annual_vol}")
    if not max_leverage > 0:
        raise ValueError(f"max_leverage must be positive, got {max_leverage}")
    if isinstance(returns_or_sigma, int | float | np.floating | np.integer):
        sigma = float(returns_or_sigma)
        if sigma < 0 or not math.isfinite(sigma):
            raise ValueError(f"volatility must be a non-negative number, got {sigma}")
    else:
        sigma = annualised_volatility(returns_or_sigma, periods_per_year)
    if sigma == 0:
        return float(max_leverage)
    return float(min(target_annual_vol / sigma, max_leverage))


def kelly_fraction(win_prob: float, win_loss_ratio: float, fraction: float = 0.5) -> float:
    """Fractional Kelly stake for a bet won with ``win_prob`` paying ``win_loss_ratio`` : 1.

    Full Kelly is ``p - (1 - p) / b``; the result is ``fraction`` of it, and 0 when there is no
    edge (the bet is declined, never reversed: the other side of a bet is a different bet).
    """
    if not 0 <= win_prob <= 1:
        raise ValueError(f"win_prob must be in [0, 1], got {win_prob}")
    if not win_loss_ratio > 0:
        raise ValueError(f"win_loss_ratio must be positive, got {win_loss_ratio}")
    if not fraction >= 0:
        raise ValueError(f"fraction must be non-negative, got {fraction}")
    full = win_prob - (1.0 - win_prob) / win_loss_ratio
    return float(fraction * max(full, 0.0))


def kelly_leverage(
    mu: float,
    sigma: float,
    fraction: float = 0.5,
    risk_free: float = 0.0,
    max_leverage: float | None = None,
) -> float:
    """Fractional continuous-time Kelly leverage ``fraction * (mu - r) / sigma**2``.

    ``mu``, ``risk_free`` and ``sigma`` must share one periodicity (e.g. all annual). The
    result is signed (negative: short) and capped at ``±max_leverage`` when given.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    f = fraction * (mu - risk_free) / sigma**2
    if max_leverage is not None:
        f = max(-max_leverage, min(max_leverage, f))
    return float(f)


def kelly_weights(
    mu: Sequence[float] | np.ndarray,
    cov: Sequence[Sequence[float]] | np.ndarray,
    fraction: float = 0.5,
    risk_free: float = 0.0,
) -> np.ndarray:
    """Fractional multi-asset Kelly weights ``fraction * inv(cov) @ (mu - r)``."""
    mu_arr = np.asarray(mu, dtype=np.float64)
    cov_arr = np.asarray(cov, dtype=np.float64)
    if cov_arr.shape != (mu_arr.size, mu_arr.size):
        raise ValueError(f"cov has shape {cov_arr.shape}, expected ({mu_arr.size}, {mu_arr.size})")
    return fraction * np.linalg.solve(cov_arr, mu_arr - risk_free)


def shares_for_weight(weight: float, equity: float, price: float, lot_size: int = 1) -> int:
    """Whole lots worth at most ``|weight| * equity`` at ``price``, signed like ``weight``.

    Rounds towards zero so a sized order never exceeds the intended exposure.
    """
    if not price > 0:
        raise ValueError(f"price must be positive, got {price}")
    if lot_size < 1:
        raise ValueError(f"lot_size must be a positive integer, got {lot_size}")
    lots = math.floor(abs(weight) * equity / (price * lot_size) + 1e-9)
    return int(math.copysign(lots * lot_size, weight)) if lots else 0
