"""Almgren-Chriss: the mean-variance optimal liquidation trajectory with linear impact.

From R. Almgren and N. Chriss, "Optimal execution of portfolio transactions", Journal of Risk 3
(2000). Trade X shares over T in N periods of τ = T/N; holdings x_0 = X, ..., x_N = 0 and trades
n_k = x_{k-1} - x_k. With permanent impact g(v) = γv, temporary impact h(v) = ε sgn(v) + ηv,
and arithmetic Brownian prices with volatility σ, a static trajectory costs (their eq. for E and
V, with η̃ = η − γτ/2):

    E = ½γX² + ε Σ|n_k| + (η̃/τ) Σ n_k²,        V = σ² τ Σ_{k=1}^{N} x_k²

and minimising E + λV gives

    x_j = X sinh(κ(T − t_j)) / sinh(κT),   cosh(κτ) = 1 + λσ²τ²/(2η̃)

(the discrete-time κ; κ² → λσ²/η as τ → 0). Larger λ means larger κ and a trajectory that
front-loads the selling to cut risk; λ → 0 gives the straight line x_j = X(1 − t_j/T), i.e. TWAP.

Units must agree: with T in some time unit, σ is in TRY per share per √unit, η in
TRY per share per (share per unit), γ in TRY per share per share, λ in 1/TRY.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quant.execution.algos.base import ScheduledAlgorithm, check_positive, even_times
from quant.execution.algos.pricing import PricingPolicy

HOUR_NS = 3_600 * 10**9


@dataclass(frozen=True)
class ACTrajectory:
    """An Almgren-Chriss trajectory with its expected cost and variance."""

    times: np.ndarray
    """t_0 = 0, ..., t_N = T."""
    holdings: np.ndarray
    """x_0 = X, ..., x_N = 0."""
    trades: np.ndarray
    """n_1, ..., n_N (shares traded in period k, between t_{k-1} and t_k)."""
    kappa: float
    expected_cost: float
    variance: float

    def objective(self, lam: float) -> float:
        """The mean-variance objective E + λV that the optimal trajectory minimises."""
        return self.expected_cost + lam * self.variance


def ac_kappa(tau: float, sigma: float, eta: float, gamma: float, lam: float) -> float:
    """κ of the discrete-time optimum: cosh(κτ) = 1 + λσ²τ²/(2η̃), η̃ = η − γτ/2."""
    eta_tilde = eta - 0.5 * gamma * tau
    if not eta_tilde > 0:
        raise ValueError(
            f"η̃ = η − γτ/2 = {eta_tilde:g} must be positive (temporary impact must dominate "
            "half the permanent impact over one period); use more slices or a larger η"
        )
    return math.acosh(1.0 + lam * sigma**2 * tau**2 / (2.0 * eta_tilde)) / tau


def ac_cost(
    holdings: Sequence[float] | np.ndarray,
    tau: float,
    sigma: float,
    eta: float,
    gamma: float,
    epsilon: float = 0.0,
) -> tuple[float, float]:
    """Expected cost E and variance V of any static trajectory ``holdings`` (x_0 ... x_N = 0)."""
    x = np.asarray(holdings, dtype=np.float64)
    n = x[:-1] - x[1:]
    eta_tilde = eta - 0.5 * gamma * tau
    expected = 0.5 * gamma * x[0] ** 2 + epsilon * np.abs(n).sum() + eta_tilde / tau * (n @ n)
    variance = sigma**2 * tau * float(x[1:] @ x[1:])
    return float(expected), float(variance)


def almgren_chriss_trajectory(
    X: float,
    T: float,
    n: int,
    sigma: float,
    eta: float,
    gamma: float,
    lam: float,
    epsilon: float = 0.0,
) -> ACTrajectory:
    """The optimal holdings x_0..x_N, trades n_1..n_N, κ, E and V (see the module doc).

    Raises ``ValueError`` for parameters outside the model (a research function, not the
    trading path: the ``AlmgrenChriss`` algorithm turns the error into an ``INVALID`` status).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    for name, value in (("T", T), ("eta", eta)):
        check_positive(name, value)
    for name, value in (("X", X), ("sigma", sigma), ("gamma", gamma), ("lam", lam)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be non-negative, got {value!r}")
    tau = T / n
    kappa = ac_kappa(tau, sigma, eta, gamma, lam)
    times = np.arange(n + 1, dtype=np.float64) * tau
    times[-1] = T
    holdings = X * _sinh_ratio(kappa, T - times, T)
    holdings[0], holdings[-1] = X, 0.0
    expected, variance = ac_cost(holdings, tau, sigma, eta, gamma, epsilon)
    return ACTrajectory(times, holdings, holdings[:-1] - holdings[1:], kappa, expected, variance)


def _sinh_ratio(kappa: float, a: np.ndarray, b: float) -> np.ndarray:
    """sinh(κa)/sinh(κb) without overflow for large κ and with the linear limit a/b at κ → 0."""
    kb = kappa * b
    if kb < 1e-8:
        return a / b
    ka = kappa * a
    # sinh(p)/sinh(q) = e^{p-q} (1 - e^{-2p}) / (1 - e^{-2q})
    return np.exp(ka - kb) * (-np.expm1(-2 * ka)) / (-math.expm1(-2 * kb))


class AlmgrenChriss(ScheduledAlgorithm):
    """Slices following the Almgren-Chriss optimal trajectory over the window.

    The window is split into ``n_slices`` periods of τ; trade n_k is due at the start of period
    k. ``time_unit_ns`` is the time unit of ``sigma`` and ``eta`` (default: one hour, so
    ``sigma`` is TRY per share per √hour). ``epsilon`` (fixed cost per share: half spread plus
    fees) changes E only, not the trajectory.
    """

    name = "almgren_chriss"

    def __init__(
        self,
        risk_aversion: float,
        sigma: float,
        eta: float,
        gamma: float,
        n_slices: int,
        epsilon: float = 0.0,
        time_unit_ns: int = HOUR_NS,
        pricing: PricingPolicy | None = None,
    ) -> None:
        if not isinstance(n_slices, int) or n_slices < 1:
            raise ValueError(f"n_slices must be a positive integer, got {n_slices!r}")
        check_positive("eta", eta)
        check_positive("time_unit_ns", time_unit_ns)
        for name, value in (("risk_aversion", risk_aversion), ("sigma", sigma), ("gamma", gamma)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be non-negative, got {value!r}")
        self.risk_aversion = risk_aversion
        self.sigma = sigma
        self.eta = eta
        self.gamma = gamma
        self.n_slices = n_slices
        self.epsilon = epsilon
        self.time_unit_ns = time_unit_ns
        self.trajectory: ACTrajectory | None = None
        super().__init__(pricing)

    def _slices(self) -> tuple[Sequence[int], Sequence[float]] | str:
        assert self._parent is not None
        horizon = (self._end - self._start) / self.time_unit_ns
        try:
            self.trajectory = almgren_chriss_trajectory(
                float(self._parent.quantity),
                horizon,
                self.n_slices,
                self.sigma,
                self.eta,
                self.gamma,
                self.risk_aversion,
                self.epsilon,
            )
        except ValueError as exc:
            return f"Almgren-Chriss parameters: {exc}"
        weights = np.clip(self.trajectory.trades, 0.0, None)
        return even_times(self._start, self._end, self.n_slices), weights.tolist()
