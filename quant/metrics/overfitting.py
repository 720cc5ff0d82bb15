"""How much of a backtest's Sharpe ratio survives the search that found it.

A Sharpe ratio picked as the best of many trials is the maximum of a sample, inflated by the
selection itself; short and fat-tailed track records make it noisier still. These statistics
put a probability on the claim instead of a point estimate:

- **PSR** (Bailey and López de Prado 2012, *The Sharpe Ratio Efficient Frontier*, J. of Risk
  15(2)): probability that the true Sharpe ratio exceeds a benchmark given the sample length,
  skewness and kurtosis of the returns.
- **DSR** (Bailey and López de Prado 2014, *The Deflated Sharpe Ratio: Correcting for Selection
  Bias, Backtest Overfitting and Non-Normality*, J. Portfolio Management 40(5)): the PSR
  against the Sharpe ratio the best of N unskilled trials is expected to reach.
- **PBO** (Bailey, Borwein, López de Prado and Zhu 2014, *The Probability of Backtest
  Overfitting*, J. Computational Finance): by combinatorially symmetric cross-validation
  (CSCV), how often the in-sample winner ranks in the bottom half out of sample.

Conventions: every Sharpe ratio here is **per period** (not annualised): divide an annualised
ratio by sqrt(P) and a variance of annualised ratios by P. Skewness and kurtosis are population
moments of the returns, kurtosis **non-excess** (3 for normal returns), as the papers write
γ3 and γ4; ``quant.metrics.skewness`` and ``quant.metrics.kurtosis`` compute them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

from quant.metrics.performance import (
    ReturnsLike,
    _observed,
    kurtosis,
    sharpe_ratio,
    skewness,
)

EULER_MASCHERONI = 0.5772156649015329

_NAN = float("nan")


# --------------------------------------------------------------------------- PSR


def _sharpe_std_term(sharpe: float, skew: float, kurt: float) -> float:
    """1 - γ3·SR + (γ4 - 1)/4·SR²: the non-normal variance factor of the Sharpe estimate."""
    return 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe**2


def probabilistic_sharpe_ratio_from_stats(
    sharpe: float,
    n_obs: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    benchmark_sharpe: float = 0.0,
) -> float:
    """PSR(SR*) = Φ[(SR - SR*)·sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4·SR²)].

    ``sharpe`` and ``benchmark_sharpe`` per period, ``n_obs`` = T observations, ``kurtosis``
    non-excess. NaN when T < 2 or the variance factor is not positive (possible only with
    extreme skewness), rather than a probability of a negative variance.
    """
    if n_obs < 2 or not all(map(math.isfinite, (sharpe, skewness, kurtosis, benchmark_sharpe))):
        return _NAN
    factor = _sharpe_std_term(sharpe, skewness, kurtosis)
    if not factor > 0:
        return _NAN
    z = (sharpe - benchmark_sharpe) * math.sqrt(n_obs - 1) / math.sqrt(factor)
    return float(ndtr(z))


def probabilistic_sharpe_ratio(
    returns: ReturnsLike,
    benchmark_sharpe: float = 0.0,
    risk_free: float = 0.0,
) -> float:
    """PSR of a return series: probability that its true per-period Sharpe exceeds the benchmark.

    The Sharpe ratio uses the sample standard deviation (ddof=1), skewness and kurtosis are
    population moments (skfolio's ``probabilistic_sharpe_ratio`` does the same). NaN values are
    dropped; fewer than three observations give NaN.
    """
    r = _observed(returns) - risk_free
    if r.size < 3:
        return _NAN
    return probabilistic_sharpe_ratio_from_stats(
        sharpe_ratio(r, 0.0, 1),
        r.size,
        skewness(r),
        kurtosis(r),
        benchmark_sharpe,
    )


def minimum_track_record_length(
    sharpe: float,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    benchmark_sharpe: float = 0.0,
    confidence: float = 0.95,
) -> float:
    """MinTRL: observations needed for PSR(benchmark) to reach ``confidence`` (2012 paper).

    MinTRL = 1 + (1 - γ3·SR + (γ4 - 1)/4·SR²)·(Z_conf / (SR - SR*))². Inf when the observed
    Sharpe does not beat the benchmark (no track record is long enough).
    """
    if sharpe <= benchmark_sharpe:
        return float("inf")
    factor = _sharpe_std_term(sharpe, skewness, kurtosis)
    if not factor > 0:
        return _NAN
    return 1.0 + factor * (float(ndtri(confidence)) / (sharpe - benchmark_sharpe)) ** 2


# --------------------------------------------------------------------------- DSR


def expected_max_sharpe(n_trials: float, sharpe_variance: float, mean_sharpe: float = 0.0) -> float:
    """E[max SR] of N independent trials with normal Sharpe ratios (the DSR benchmark SR0).

    SR0 = mean + sqrt(V)·[(1 - γ)·Z⁻¹(1 - 1/N) + γ·Z⁻¹(1 - 1/(N·e))], γ the
    Euler-Mascheroni constant. With one trial, or no dispersion, there is no selection and the
    mean is returned. ``n_trials`` may be fractional (an effective number of trials).
    """
    if not n_trials >= 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not sharpe_variance >= 0:
        raise ValueError(f"sharpe_variance must be non-negative, got {sharpe_variance}")
    if n_trials == 1 or sharpe_variance == 0:
        return float(mean_sharpe)
    g = EULER_MASCHERONI
    z = (1.0 - g) * ndtri(1.0 - 1.0 / n_trials) + g * ndtri(1.0 - 1.0 / (n_trials * math.e))
    return float(mean_sharpe + math.sqrt(sharpe_variance) * z)


def deflated_sharpe_ratio(
    sharpe: float,
    n_trials: float,
    sharpe_variance: float,
    n_obs: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """DSR = PSR(SR0): probability that the selected strategy's true Sharpe ratio is above zero
    once the selection among ``n_trials`` is accounted for.

    Inputs, all per period: ``sharpe`` observed Sharpe ratio of the selected strategy,
    ``n_trials`` number of (independent) trials N, ``sharpe_variance`` variance V of the trials'
    Sharpe ratios, ``n_obs`` sample length T, ``skewness`` γ3 and ``kurtosis`` γ4
    (**non-excess**) of the selected strategy's returns. SR0 = ``expected_max_sharpe(N, V)``.
    A DSR of 0.95 or more is the paper's bar for a discovery at 95% confidence.
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio_from_stats(sharpe, n_obs, skewness, kurtosis, sr0)


def deflated_sharpe_ratio_from_trials(
    returns: ReturnsLike,
    trial_sharpes: ReturnsLike,
    risk_free: float = 0.0,
) -> float:
    """DSR of the selected strategy's ``returns`` given every trial's per-period Sharpe ratio.

    N = number of finite trial Sharpe ratios, V = their sample variance (ddof=1), as skfolio's
    ``deflated_sharpe_ratio`` does; what a sweep calls after choosing its best trial.
    """
    trials = _observed(trial_sharpes)
    if trials.size == 0:
        raise ValueError("trial_sharpes has no finite value")
    variance = float(np.var(trials, ddof=1)) if trials.size > 1 else 0.0
    r = _observed(returns) - risk_free
    if r.size < 3:
        return _NAN
    return deflated_sharpe_ratio(
        sharpe_ratio(r, 0.0, 1), trials.size, variance, r.size, skewness(r), kurtosis(r)
    )


# --------------------------------------------------------------------------- PBO (CSCV)


@dataclass(frozen=True)
class BacktestOverfitting:
    """What CSCV found: the PBO and, per train/test combination, how the winner fared."""

    pbo: float
    """Share of combinations whose in-sample best ranks at or below the median out of sample."""
    logits: np.ndarray
    """λ_c = ln(ω_c / (1 - ω_c)) per combination; ω_c = out-of-sample rank / (N + 1)."""
    relative_ranks: np.ndarray
    """ω_c per combination."""
    best_in_sample: np.ndarray
    """Column index of the in-sample best strategy per combination."""
    in_sample_performance: np.ndarray
    """Performance of that strategy in sample, per combination."""
    out_of_sample_performance: np.ndarray
    """Performance of that strategy out of sample, per combination."""
    n_submatrices: int
    n_combinations: int
    rows_dropped: int
    """Oldest rows left out so the T rows split into S equal blocks."""

    @property
    def prob_oos_loss(self) -> float:
        """Share of combinations whose selected strategy lost out of sample (performance < 0)."""
        return float(np.mean(self.out_of_sample_performance < 0))


PerformanceFn = Callable[[np.ndarray], np.ndarray]
"""Maps a (rows x N) block of returns to N performance figures (higher is better)."""


def probability_of_backtest_overfitting(
    returns_matrix: np.ndarray,
    n_submatrices: int = 16,
    performance: PerformanceFn | None = None,
) -> BacktestOverfitting:
    """PBO of choosing the best of N strategy configurations, by CSCV.

    ``returns_matrix`` is T x N: per-period returns of N configurations over the same T periods
    (a numpy array, or anything ``np.asarray`` turns into one, e.g. a polars/pandas frame).
    The rows are cut into ``n_submatrices`` (S, even) consecutive blocks of T // S rows; the
    oldest T mod S rows are dropped. For each of the C(S, S/2) ways to pick half of the blocks
    as the training set J (in order) and the rest as the test set J̄:

    1. the in-sample best n* maximises the performance on J (ties: lowest column);
    2. ω = rank of n* on J̄ among the N (1 = worst, N = best, ties averaged) / (N + 1);
    3. λ = logit(ω).

    PBO = share of combinations with λ ≤ 0 (n* no better than the median out of sample).
    Performance defaults to the per-period Sharpe ratio (mean / sample std); pass
    ``performance`` to rank by something else. S = 16 (12,870 combinations) is the paper's
    choice; the Sharpe path is computed from block sums, so it stays fast. NaN returns are not
    allowed (a missing period would make the blocks unequal).
    """
    m = np.asarray(returns_matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"returns_matrix must be T x N, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("returns_matrix must be finite (no NaN or inf)")
    s = int(n_submatrices)
    if s < 2 or s % 2:
        raise ValueError(f"n_submatrices must be an even number >= 2, got {n_submatrices}")
    t, n = m.shape
    if n < 2:
        raise ValueError("need at least two strategy configurations (columns)")
    block = t // s
    if block < 1 or (performance is None and block * (s // 2) < 2):
        raise ValueError(f"{t} rows are too few for {s} submatrices")
    dropped = t - block * s
    m = m[dropped:]
    blocks = m.reshape(s, block, n)
    combos = np.array(list(combinations(range(s), s // 2)), dtype=np.int64)
    n_comb = combos.shape[0]
    train_mask = np.zeros((n_comb, s), dtype=bool)
    train_mask[np.arange(n_comb)[:, None], combos] = True

    if performance is None:
        r_is, r_oos = _sharpe_by_blocks(blocks, train_mask)
    else:
        r_is = np.empty((n_comb, n))
        r_oos = np.empty((n_comb, n))
        for c in range(n_comb):
            r_is[c] = np.asarray(performance(blocks[train_mask[c]].reshape(-1, n)), dtype=float)
            r_oos[c] = np.asarray(performance(blocks[~train_mask[c]].reshape(-1, n)), dtype=float)

    # NaN performance (a constant column) ranks lowest rather than poisoning the argmax.
    r_is_clean = np.where(np.isnan(r_is), -np.inf, r_is)
    r_oos_clean = np.where(np.isnan(r_oos), -np.inf, r_oos)
    best = np.argmax(r_is_clean, axis=1)
    oos_ranks = rankdata(r_oos_clean, method="average", axis=1)
    omega = oos_ranks[np.arange(n_comb), best] / (n + 1)
    logits = np.log(omega / (1.0 - omega))
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        relative_ranks=omega,
        best_in_sample=best,
        in_sample_performance=r_is[np.arange(n_comb), best],
        out_of_sample_performance=r_oos[np.arange(n_comb), best],
        n_submatrices=s,
        n_combinations=n_comb,
        rows_dropped=dropped,
    )


def _sharpe_by_blocks(blocks: np.ndarray, train_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-period Sharpe of every column on J and J̄ for every combination, from block sums."""
    s, rows, _ = blocks.shape
    centre = blocks.mean(axis=(0, 1))  # shift-invariant variance, better conditioned sums
    x = blocks - centre
    sums = x.sum(axis=1)  # S x N
    squares = (x * x).sum(axis=1)
    half = (s // 2) * rows

    def sharpe(mask: np.ndarray) -> np.ndarray:
        w = mask.astype(float)
        s1 = w @ sums
        s2 = w @ squares
        var = np.maximum(s2 - s1 * s1 / half, 0.0) / (half - 1)
        sd = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sd > 0, (s1 / half + centre) / sd, np.nan)

    return sharpe(train_mask), sharpe(~train_mask)
