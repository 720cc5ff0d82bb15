"""Sizing: volatility targeting and fractional Kelly against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import optimize

from quant.risk import (
    annualised_volatility,
    kelly_fraction,
    kelly_leverage,
    kelly_weights,
    shares_for_weight,
    vol_target_weight,
)


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return np.random.default_rng(7).normal(0.0004, 0.02, 750)


def test_vol_target_weight_from_returns_matches_pandas_sample_std(returns: np.ndarray) -> None:
    sigma = pd.Series(returns).std() * math.sqrt(252)  # pandas: ddof=1
    assert annualised_volatility(returns) == pytest.approx(sigma, rel=1e-12)
    w = vol_target_weight(returns, target_annual_vol=0.10, max_leverage=5.0)
    assert w == pytest.approx(0.10 / sigma, rel=1e-12)
    # The same series through polars, with a gap, gives the same answer.
    with_gap = pl.Series([*returns[:10], None, *returns[10:]], dtype=pl.Float64)
    assert vol_target_weight(with_gap, 0.10, 5.0) == pytest.approx(w, rel=1e-12)


def test_vol_target_weight_is_capped_and_takes_a_sigma() -> None:
    assert vol_target_weight(0.40, target_annual_vol=0.10) == pytest.approx(0.25)
    assert vol_target_weight(0.05, target_annual_vol=0.10, max_leverage=1.5) == 1.5
    assert vol_target_weight(0.0, target_annual_vol=0.10, max_leverage=2.0) == 2.0
    with pytest.raises(ValueError):
        vol_target_weight(-0.1)
    with pytest.raises(ValueError):
        vol_target_weight([0.01])


def test_kelly_fraction_closed_form_and_growth_optimum() -> None:
    assert kelly_fraction(0.6, 1.0, fraction=1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.1)  # half Kelly by default
    assert kelly_fraction(0.5, 2.0, fraction=1.0) == pytest.approx(0.25)
    assert kelly_fraction(0.4, 1.0) == 0.0  # no edge, no bet
    # Full Kelly maximises expected log growth p log(1 + b f) + (1 - p) log(1 - f).
    for p, b in [(0.55, 1.0), (0.3, 4.0), (0.7, 0.8)]:
        res = optimize.minimize_scalar(
            lambda f, p=p, b=b: -(p * math.log1p(b * f) + (1 - p) * math.log1p(-f)),
            bounds=(0.0, 0.999),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert kelly_fraction(p, b, fraction=1.0) == pytest.approx(res.x, abs=1e-6)
    with pytest.raises(ValueError):
        kelly_fraction(1.2, 1.0)


def test_continuous_kelly_maximises_growth_rate() -> None:
    mu, sigma, rf = 0.10, 0.20, 0.02
    assert kelly_leverage(mu, sigma, fraction=1.0, risk_free=rf) == pytest.approx(2.0)
    assert kelly_leverage(mu, sigma, risk_free=rf) == pytest.approx(1.0)
    assert kelly_leverage(mu, sigma, fraction=1.0, risk_free=rf, max_leverage=1.5) == 1.5
    assert kelly_leverage(-0.05, 0.2, fraction=1.0) == pytest.approx(-1.25)
    # g(f) = r + f (mu - r) - f^2 sigma^2 / 2 is maximised at the Kelly leverage.
    res = optimize.minimize_scalar(lambda f: -(rf + f * (mu - rf) - 0.5 * f**2 * sigma**2))
    assert kelly_leverage(mu, sigma, fraction=1.0, risk_free=rf) == pytest.approx(res.x, rel=1e-6)


def test_kelly_weights_solve_the_multi_asset_problem() -> None:
    mu = np.array([0.08, 0.05, 0.12])
    a = np.array([[0.2, 0.05, 0.0], [0.0, 0.15, 0.03], [0.02, 0.0, 0.25]])
    cov = a @ a.T
    w = kelly_weights(mu, cov, fraction=1.0, risk_free=0.01)
    # First-order condition of max w'(mu - r) - w' cov w / 2.
    np.testing.assert_allclose(cov @ w, mu - 0.01, rtol=1e-12)
    # Uncorrelated assets: each weight is its own continuous Kelly leverage.
    diag = np.diag([0.04, 0.09])
    np.testing.assert_allclose(
        kelly_weights([0.06, 0.03], diag, fraction=0.5),
        [kelly_leverage(0.06, 0.2), kelly_leverage(0.03, 0.3)],
    )


def test_shares_for_weight_rounds_towards_zero_in_lots() -> None:
    assert shares_for_weight(0.1, 1_000_000, 100.0) == 1_000
    assert shares_for_weight(0.1, 1_000_000, 99.95) == 1_000  # 1000.5 shares -> 1000
    assert shares_for_weight(-0.1, 1_000_000, 99.95) == -1_000
    assert shares_for_weight(0.1, 1_000_000, 99.95, lot_size=100) == 1_000
    assert shares_for_weight(0.1, 1_000_000, 101.0, lot_size=100) == 900
    assert shares_for_weight(0.00001, 1_000_000, 101.0) == 0
