"""Value at Risk, expected shortfall and the Kupiec backtest of VaR breaches.

Sign convention: VaR and ES are **losses, reported as positive fractions** of the portfolio
value over one period of the input returns: a 95% one-day VaR of 0.021 means a one-day loss
worse than 2.1% is expected on 5% of days. (A negative figure means even the tail quantile is a
gain.) ``confidence`` is the VaR level (0.95, 0.99); the tail probability is ``1 - confidence``.

Estimators, all from simple periodic returns with NaNs dropped:

- historical: the ``confidence`` quantile of the losses ``-r``; ``method`` is numpy's quantile
  method: ``"linear"`` (default) interpolates as ``np.percentile`` and empyrical do,
  ``"inverted_cdf"`` gives the textbook ``inf{l : F_L(l) >= confidence}`` that skfolio uses.
- historical ES: the mean loss over the worst ``1 - confidence`` of the probability mass, with
  the boundary observation weighted fractionally (Acerbi and Tasche 2002; Rockafellar and
  Uryasev 2002), so it is continuous in ``confidence`` and coherent.
- parametric (Gaussian): ``sigma * z_c - mu`` and ES ``sigma * phi(z_c) / (1 - c) - mu``, with
  the sample mean and the sample standard deviation (ddof=1).
- Cornish-Fisher ("modified") VaR: the Gaussian quantile corrected for skewness ``S`` and excess
  kurtosis ``K`` (Favre and Galeano 2002; PerformanceAnalytics' ``VaR(method="modified")``):
  ``z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3z) K / 24 - (2z^3 - 5z) S^2 / 36`` with ``z`` the
  left-tail normal quantile, and moment estimates as PerformanceAnalytics takes them (sample
  standard deviation, skewness and excess kurtosis from the biased central moments).

``kupiec_pof`` tests whether the number of breaches is consistent with the VaR level
(Kupiec 1995, proportion of failures): ``LR = -2 ln[(1-p)^(T-x) p^x] + 2 ln[(1-x/T)^(T-x)
(x/T)^x]``, asymptotically chi-square with one degree of freedom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats


def _clean(returns: Any) -> np.ndarray:
    if hasattr(returns, "to_numpy"):
        returns = returns.to_numpy()
    arr = np.asarray(returns, dtype=np.float64).reshape(-1)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        raise ValueError("no returns to estimate from")
    return arr


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def historical_var(returns: Any, confidence: float = 0.95, method: str = "linear") -> float:
    """Historical VaR: the ``confidence`` quantile of the losses (positive = loss)."""
    _check_confidence(confidence)
    losses = -_clean(returns)
    return float(np.quantile(losses, confidence, method=method))


def historical_es(returns: Any, confidence: float = 0.95) -> float:
    """Historical expected shortfall: mean loss over the worst ``1 - confidence`` of the mass.

    With ``k = (1 - confidence) * n`` observations in the tail, the ``floor(k)`` worst losses
    count fully and the next one with weight ``k - floor(k)``.
    """
    _check_confidence(confidence)
    losses = np.sort(-_clean(returns))[::-1]
    k = (1.0 - confidence) * losses.size
    # Absorb float noise in k (0.05 * 100 = 5.000000000000004) so an integral tail is integral.
    k_round = round(k)
    if abs(k - k_round) < 1e-9 * max(1.0, k):
        k = float(k_round)
    if k < 1e-12:
        return float(losses[0])
    full = math.floor(k)
    total = losses[:full].sum()
    if full < losses.size:
        total += (k - full) * losses[full]
    return float(total / k)


def _moments(returns: Any, mu: float | None, sigma: float | None) -> tuple[float, float]:
    if mu is None or sigma is None:
        r = _clean(returns)
        if sigma is None and r.size < 2:
            raise ValueError("need at least two returns to estimate a standard deviation")
        mu = float(r.mean()) if mu is None else mu
        sigma = float(r.std(ddof=1)) if sigma is None else sigma
    if sigma < 0:
        raise ValueError(f"sigma must be non-negative, got {sigma}")
    return float(mu), float(sigma)


def parametric_var(
    returns: Any = None,
    confidence: float = 0.95,
    *,
    mu: float | None = None,
    sigma: float | None = None,
) -> float:
    """Gaussian VaR ``sigma * z_c - mu`` (``mu``/``sigma`` estimated from ``returns`` unless
    given)."""
    _check_confidence(confidence)
    mu, sigma = _moments(returns, mu, sigma)
    return float(sigma * stats.norm.ppf(confidence) - mu)


def parametric_es(
    returns: Any = None,
    confidence: float = 0.95,
    *,
    mu: float | None = None,
    sigma: float | None = None,
) -> float:
    """Gaussian expected shortfall ``sigma * phi(z_c) / (1 - c) - mu``."""
    _check_confidence(confidence)
    mu, sigma = _moments(returns, mu, sigma)
    z = stats.norm.ppf(confidence)
    return float(sigma * stats.norm.pdf(z) / (1.0 - confidence) - mu)


def sample_skew_kurtosis(returns: Any) -> tuple[float, float]:
    """Skewness and excess kurtosis from the biased central moments (m3/m2^1.5, m4/m2^2 - 3)."""
    r = _clean(returns)
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if m2 == 0:
        return 0.0, 0.0
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2 - 3.0)


def cornish_fisher_var(
    returns: Any = None,
    confidence: float = 0.95,
    *,
    mu: float | None = None,
    sigma: float | None = None,
    skew: float | None = None,
    excess_kurtosis: float | None = None,
) -> float:
    """Cornish-Fisher (modified) VaR: the Gaussian VaR with the quantile corrected for skewness
    and excess kurtosis. Moments not given are estimated from ``returns``."""
    _check_confidence(confidence)
    mu, sigma = _moments(returns, mu, sigma)
    if skew is None or excess_kurtosis is None:
        s_hat, k_hat = sample_skew_kurtosis(returns)
        skew = s_hat if skew is None else skew
        excess_kurtosis = k_hat if excess_kurtosis is None else excess_kurtosis
    z = float(stats.norm.ppf(1.0 - confidence))
    z_cf = (
        z
        + (z**2 - 1.0) * skew / 6.0
        + (z**3 - 3.0 * z) * excess_kurtosis / 24.0
        - (2.0 * z**3 - 5.0 * z) * skew**2 / 36.0
    )
    return float(-(mu + sigma * z_cf))


def var_breaches(returns: Any, var: float | Any) -> np.ndarray:
    """Boolean array: True where the loss exceeded the VaR forecast (``-r > VaR``).

    ``var`` is one number or one forecast per period (aligned with ``returns``). Periods with a
    missing return or forecast are not counted as breaches; drop them before testing.
    """
    if hasattr(returns, "to_numpy"):
        returns = returns.to_numpy()
    if hasattr(var, "to_numpy"):
        var = var.to_numpy()
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    v = np.broadcast_to(np.asarray(var, dtype=np.float64), r.shape)
    with np.errstate(invalid="ignore"):
        return -r > v


@dataclass(frozen=True, slots=True)
class KupiecResult:
    """Kupiec's proportion-of-failures test of a VaR model."""

    observations: int
    breaches: int
    expected_rate: float
    """``1 - confidence``: the breach rate a correct VaR model has."""
    observed_rate: float
    lr: float
    """Likelihood-ratio statistic, asymptotically chi-square(1) under a correct model."""
    p_value: float

    @property
    def expected_breaches(self) -> float:
        return self.expected_rate * self.observations

    def rejects(self, significance: float = 0.05) -> bool:
        """True if the model is rejected at ``significance`` (too many or too few breaches)."""
        return self.p_value < significance


def _xlogy(x: float, y: float) -> float:
    """``x * log(y)`` with ``0 * log(0) = 0`` (the likelihood of an impossible-but-unseen event)."""
    return 0.0 if x == 0 else x * math.log(y)


def kupiec_pof(
    breaches: Any, observations: int | None = None, confidence: float = 0.99
) -> KupiecResult:
    """Kupiec's POF test.

    ``breaches`` is either a count (then ``observations`` is required) or a boolean array of
    per-period breaches (e.g. from ``var_breaches``), whose length is the number of
    observations.
    """
    _check_confidence(confidence)
    if np.ndim(breaches) == 0:
        if observations is None:
            raise ValueError("a breach count needs the number of observations")
        x, t = int(breaches), int(observations)
    else:
        flags = np.asarray(breaches, dtype=bool).reshape(-1)
        x, t = int(flags.sum()), int(flags.size)
        if observations is not None and observations != t:
            raise ValueError(f"{t} breach flags but observations={observations}")
    if t <= 0 or not 0 <= x <= t:
        raise ValueError(f"need 0 <= breaches <= observations and observations > 0, got {x}, {t}")
    p = 1.0 - confidence
    rate = x / t
    log_null = _xlogy(t - x, 1.0 - p) + _xlogy(x, p)
    log_alt = _xlogy(t - x, 1.0 - rate) + _xlogy(x, rate)
    lr = max(-2.0 * (log_null - log_alt), 0.0)
    return KupiecResult(
        observations=t,
        breaches=x,
        expected_rate=p,
        observed_rate=rate,
        lr=lr,
        p_value=float(stats.chi2.sf(lr, df=1)),
    )
