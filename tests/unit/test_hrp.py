"""HRP against established implementations on real returns (skfolio's S&P 500 prices).

The original algorithm clusters on the Euclidean distance between columns of the correlation
distance matrix. skfolio is configured to that variant (single linkage, no optimal leaf
ordering, variance as risk, and a distance estimator that returns the distance of distances);
the ``cluster_on="distance"`` variant is checked against PyPortfolioOpt's ``HRPOpt`` (single
linkage on the correlation distance itself) and against skfolio set up the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy.spatial.distance import pdist, squareform

from quant.risk import hrp_weights
from quant.risk.hrp import quasi_diagonal_order


@pytest.fixture(scope="module")
def sp500_returns() -> pd.DataFrame:
    from skfolio.datasets import load_sp500_dataset
    from skfolio.preprocessing import prices_to_returns

    returns = prices_to_returns(load_sp500_dataset())
    assert returns.shape == (8312, 20) and not returns.isna().any().any()
    return returns


def _skfolio_weights(returns: pd.DataFrame, distance_of_distances: bool) -> pd.Series:
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.distance import PearsonDistance
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    class DistanceOfDistances(PearsonDistance):
        """Pearson angular distance sqrt((1 - rho) / 2), then the Euclidean distance between
        its columns, as in López de Prado (2016)."""

        def fit(self, X: object, y: object = None) -> DistanceOfDistances:
            super().fit(X)
            self.distance_ = squareform(pdist(self.distance_, "euclidean"), checks=False)
            return self

    distance = DistanceOfDistances() if distance_of_distances else PearsonDistance()
    clustering = HierarchicalClustering(linkage_method=LinkageMethod.SINGLE)
    model = HierarchicalRiskParity(
        distance_estimator=distance,
        seriation_estimator=HierarchicalSeriation(
            hierarchical_clustering_estimator=clustering, optimal_ordering=False
        ),
    )
    model.fit(returns)
    return pd.Series(model.weights_, index=returns.columns)


def test_original_hrp_matches_skfolio_configured_to_the_paper(sp500_returns: pd.DataFrame) -> None:
    ours = hrp_weights(sp500_returns)
    ref = _skfolio_weights(sp500_returns, distance_of_distances=True)
    assert list(ours.index) == list(sp500_returns.columns)
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), atol=1e-8, rtol=0)
    assert ours.sum() == pytest.approx(1.0, abs=1e-12)
    assert (ours > 0).all()


def test_distance_variant_matches_pyportfolioopt_and_skfolio(sp500_returns: pd.DataFrame) -> None:
    from pypfopt import HRPOpt

    ours = hrp_weights(sp500_returns, cluster_on="distance")
    pypfopt = pd.Series(HRPOpt(returns=sp500_returns).optimize(linkage_method="single"))
    skf = _skfolio_weights(sp500_returns, distance_of_distances=False)
    np.testing.assert_allclose(ours.to_numpy(), pypfopt[ours.index].to_numpy(), atol=1e-8, rtol=0)
    np.testing.assert_allclose(ours.to_numpy(), skf.to_numpy(), atol=1e-8, rtol=0)


def test_the_two_variants_differ_on_this_data(sp500_returns: pd.DataFrame) -> None:
    # Otherwise the cross-checks above could not tell the original from the variant.
    original = hrp_weights(sp500_returns)
    variant = hrp_weights(sp500_returns, cluster_on="distance")
    assert np.abs(original - variant).max() > 0.01


def test_polars_and_numpy_inputs_give_the_same_weights(sp500_returns: pd.DataFrame) -> None:
    sub = sp500_returns.iloc[-1000:, :8]
    ref = hrp_weights(sub)
    from_polars = hrp_weights(pl.from_pandas(sub))
    np.testing.assert_allclose(from_polars.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-15)
    assert list(from_polars.index) == list(sub.columns)
    from_numpy = hrp_weights(sub.to_numpy())
    np.testing.assert_allclose(from_numpy.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-15)


def test_rows_with_gaps_are_dropped_together(sp500_returns: pd.DataFrame) -> None:
    sub = sp500_returns.iloc[-500:, :5].copy()
    gappy = sub.copy()
    gappy.iloc[10, 2] = np.nan
    expected = hrp_weights(sub.drop(sub.index[10]))
    np.testing.assert_allclose(hrp_weights(gappy).to_numpy(), expected.to_numpy(), atol=1e-15)


def test_two_assets_get_inverse_variance_weights() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, [0.01, 0.03], size=(500, 2))
    w = hrp_weights(pd.DataFrame(x, columns=["A", "B"]))
    inv = 1 / x.var(axis=0, ddof=1)
    np.testing.assert_allclose(w.to_numpy(), inv / inv.sum(), rtol=1e-12)


def test_block_structure_splits_risk_between_clusters() -> None:
    # Two independent blocks of three similar assets with equal variance: only if the tree puts
    # each block together does the first bisection split the blocks and give each about half.
    rng = np.random.default_rng(11)
    f = rng.normal(0, 0.01, size=(2000, 2))
    noise = rng.normal(0, 0.002, size=(2000, 6))
    x = np.repeat(f, 3, axis=1) + noise
    w = hrp_weights(pd.DataFrame(x, columns=list("abcdef")))
    assert w[list("abc")].sum() == pytest.approx(0.5, abs=0.03)
    link_order = quasi_diagonal_order(np.array([[0, 1, 0.1, 2], [2, 3, 0.2, 3]], dtype=float))
    assert link_order == [2, 0, 1]


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="zero or undefined variance"):
        hrp_weights(pd.DataFrame({"a": [0.01, -0.02, 0.03], "flat": [0.0, 0.0, 0.0]}))
    with pytest.raises(ValueError, match="cluster_on"):
        hrp_weights(pd.DataFrame({"a": [0.01, -0.02], "b": [0.02, 0.01]}), cluster_on="x")  # type: ignore[arg-type]
    assert hrp_weights(pd.DataFrame({"only": [0.01, 0.02]})).to_dict() == {"only": 1.0}
