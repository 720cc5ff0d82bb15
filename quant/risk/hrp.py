"""Hierarchical Risk Parity, as López de Prado published it.

López de Prado, "Building Diversified Portfolios that Outperform Out of Sample", Journal of
Portfolio Management 42(4), 2016; *Advances in Financial Machine Learning*, chapter 16. HRP
allocates without inverting the covariance matrix, so it stays stable where mean-variance
weights explode (near-singular covariance, many assets, short history):

1. Tree clustering: correlation distance ``d_ij = sqrt((1 - rho_ij) / 2)``, then the Euclidean
   distance between the *columns* of ``d`` (``d~_ij = ||d_i - d_j||``: two assets are close when
   they are similarly distant from everything else), then single-linkage clustering on ``d~``.
2. Quasi-diagonalisation: order the assets as the leaves of the dendrogram, left to right, so
   similar assets sit next to each other and the covariance matrix becomes nearly block
   diagonal.
3. Recursive bisection: split the ordered list in halves (by position, as in the paper, not by
   the tree), give each half the inverse-variance portfolio of its members, and split the
   parent's weight between the halves in inverse proportion to those portfolios' variances.

The second step of (1) is the original's and is where implementations differ: PyPortfolioOpt's
``HRPOpt`` and skfolio cluster on ``d`` itself (skfolio also defaults to Ward linkage and
optimal leaf ordering). ``cluster_on="distance"`` gives that variant for comparison.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.cluster.hierarchy as sch
from scipy.spatial.distance import pdist, squareform


def _to_pandas(returns: Any) -> pd.DataFrame:
    if isinstance(returns, pd.DataFrame):
        return returns
    if hasattr(returns, "to_pandas") and hasattr(returns, "columns"):  # polars
        return returns.to_pandas()
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"returns must be 2-D (observations x assets), got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"asset_{i}" for i in range(arr.shape[1])])


def correlation_distance(corr: np.ndarray) -> np.ndarray:
    """``sqrt((1 - rho) / 2)``, a proper metric on correlations (0 for rho = 1, 1 for -1)."""
    return np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, 1.0))


def quasi_diagonal_order(link: np.ndarray) -> list[int]:
    """Leaves of a scipy linkage matrix, left child before right (the paper's getQuasiDiag)."""
    n = link.shape[0] + 1
    order: list[int] = []
    stack = [2 * n - 2]
    while stack:
        node = stack.pop()
        if node < n:
            order.append(node)
        else:
            left, right = link[node - n, 0], link[node - n, 1]
            stack.append(int(right))
            stack.append(int(left))
    return order


def _cluster_variance(cov: np.ndarray, items: list[int]) -> float:
    """Variance of the inverse-variance portfolio of ``items``."""
    sub = cov[np.ix_(items, items)]
    ivp = 1.0 / np.diag(sub)
    ivp /= ivp.sum()
    return float(ivp @ sub @ ivp)


def recursive_bisection(cov: np.ndarray, order: list[int]) -> np.ndarray:
    """HRP weights from a covariance matrix and a quasi-diagonal order (the paper's
    getRecBipart)."""
    w = np.ones(cov.shape[0])
    clusters = [order]
    while clusters:
        clusters = [
            c[a:b]
            for c in clusters
            for a, b in ((0, len(c) // 2), (len(c) // 2, len(c)))
            if len(c) > 1
        ]
        for i in range(0, len(clusters), 2):
            left, right = clusters[i], clusters[i + 1]
            v_left = _cluster_variance(cov, left)
            v_right = _cluster_variance(cov, right)
            alpha = 1.0 - v_left / (v_left + v_right)
            w[left] *= alpha
            w[right] *= 1.0 - alpha
    return w


def hrp_weights(
    returns: Any,
    *,
    linkage: str = "single",
    cluster_on: Literal["distance_of_distances", "distance"] = "distance_of_distances",
) -> pd.Series:
    """Hierarchical Risk Parity weights (long only, summing to one), indexed by asset.

    ``returns``: a pandas or polars DataFrame (columns are assets) or a 2-D array. Rows with any
    missing value are dropped so that correlation and covariance come from the same
    observations (pairwise estimates need not be positive semi-definite). Sample covariance
    (ddof=1) and Pearson correlation. Defaults reproduce the original algorithm; ``linkage`` and
    ``cluster_on="distance"`` select the variants other libraries use.
    """
    df = _to_pandas(returns)
    names = [str(c) for c in df.columns]
    x = df.to_numpy(dtype=np.float64)
    x = x[~np.isnan(x).any(axis=1)]
    n_assets = x.shape[1]
    if n_assets == 0:
        raise ValueError("returns have no assets")
    if n_assets == 1:
        return pd.Series([1.0], index=names, name="hrp")
    if x.shape[0] < 2:
        raise ValueError(f"need at least two complete observations, got {x.shape[0]}")
    cov = np.cov(x, rowvar=False, ddof=1)
    variances = np.diag(cov)
    if np.any(variances <= 0) or not np.all(np.isfinite(variances)):
        flat = [names[i] for i in np.flatnonzero(~(variances > 0))]
        raise ValueError(f"assets with zero or undefined variance cannot be weighted: {flat}")
    sd = np.sqrt(variances)
    corr = np.clip(cov / np.outer(sd, sd), -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    dist = correlation_distance(corr)
    if cluster_on == "distance_of_distances":
        condensed = pdist(dist, metric="euclidean")
    elif cluster_on == "distance":
        condensed = squareform(dist, checks=False)
    else:
        raise ValueError(
            f"cluster_on must be 'distance_of_distances' or 'distance': {cluster_on!r}"
        )
    link = sch.linkage(condensed, method=linkage)
    order = quasi_diagonal_order(link)
    w = recursive_bisection(cov, order)
    return pd.Series(w, index=names, name="hrp")
