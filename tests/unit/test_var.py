"""VaR, ES and Kupiec against closed forms, worked examples and independent libraries.

Sign convention under test: VaR and ES are positive numbers for losses. The libraries report
return quantiles (negative for losses), so their figures are negated before comparing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import integrate, stats

from quant.risk import (
    cornish_fisher_var,
    historical_es,
    historical_var,
    kupiec_pof,
    parametric_es,
    parametric_var,
    var_breaches,
)
from quant.risk.var import sample_skew_kurtosis

CONFIDENCES = (0.9, 0.95, 0.975, 0.99, 0.995)


@pytest.fixture(scope="module")
def real_returns() -> pd.DataFrame:
    """Daily returns of 20 S&P 500 stocks (skfolio's bundled prices), last ~4 years."""
    from skfolio.datasets import load_sp500_dataset
    from skfolio.preprocessing import prices_to_returns

    return prices_to_returns(load_sp500_dataset()).iloc[-1003:]


# --- historical ---------------------------------------------------------------------------------


def test_historical_var_linear_matches_empyrical(real_returns: pd.DataFrame) -> None:
    import empyrical

    for name in ("AAPL", "JPM", "XOM"):
        r = real_returns[name].to_numpy()
        for c in CONFIDENCES:
            ours = historical_var(r, c)
            ref = -empyrical.value_at_risk(r, cutoff=1 - c)
            assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_historical_var_and_es_match_skfolio(real_returns: pd.DataFrame) -> None:
    from skfolio.measures import cvar, value_at_risk

    for name in ("AAPL", "JPM", "XOM", "PFE"):
        r = real_returns[name].to_numpy()
        for c in (*CONFIDENCES, 0.9537):  # the last puts a fraction of a day in the tail
            assert historical_var(r, c, method="inverted_cdf") == pytest.approx(
                value_at_risk(r, beta=c), rel=1e-12
            )
            assert historical_es(r, c) == pytest.approx(cvar(r, beta=c), rel=1e-12)


def test_historical_es_by_hand() -> None:
    r = np.array([-5, -4, -3, -2, -1, 0, 1, 2, 3, 4], dtype=float) / 100
    assert historical_es(r, 0.8) == pytest.approx(0.045)  # mean of the 2 worst: 5% and 4%
    assert historical_es(r, 0.85) == pytest.approx((0.05 + 0.5 * 0.04) / 1.5)
    assert historical_es(r, 0.95) == pytest.approx(0.05)  # half a day in the tail: the worst
    # inf{l : F(l) >= 0.8}: eight of ten losses are <= 3%, so with two days in the tail the
    # VaR is the third-largest loss.
    assert historical_var(r, 0.8, method="inverted_cdf") == pytest.approx(0.03)
    assert historical_var(r, 0.9) == pytest.approx(-np.percentile(r, 10))
    # ES is never below VaR.
    for c in CONFIDENCES:
        assert historical_es(r, c) >= historical_var(r, c, method="inverted_cdf") - 1e-15


def test_inputs_in_any_container_and_nans_dropped(real_returns: pd.DataFrame) -> None:
    r = real_returns["AAPL"]
    ref = historical_var(r.to_numpy(), 0.99)
    assert historical_var(r, 0.99) == ref
    assert historical_var(pl.Series(r.to_numpy()), 0.99) == ref
    assert historical_var(np.append(r.to_numpy(), np.nan), 0.99) == ref
    with pytest.raises(ValueError):
        historical_var([np.nan], 0.99)
    with pytest.raises(ValueError):
        historical_var(r, 1.0)


# --- parametric ---------------------------------------------------------------------------------


def test_parametric_var_and_es_closed_form_constants() -> None:
    # Standard normal: VaR is the quantile, ES is phi(z) / (1 - c); published constants.
    assert parametric_var(mu=0.0, sigma=1.0, confidence=0.99) == pytest.approx(2.3263478740408408)
    assert parametric_var(mu=0.0, sigma=1.0, confidence=0.95) == pytest.approx(1.6448536269514722)
    assert parametric_es(mu=0.0, sigma=1.0, confidence=0.95) == pytest.approx(2.0627128075074257)
    assert parametric_es(mu=0.0, sigma=1.0, confidence=0.99) == pytest.approx(2.6652142203458076)
    # Location and scale: a 2% daily sigma and a 0.1% mean.
    assert parametric_var(mu=0.001, sigma=0.02, confidence=0.99) == pytest.approx(
        0.02 * 2.3263478740408408 - 0.001
    )


def test_parametric_es_equals_the_integral_of_the_tail() -> None:
    mu, sigma = 0.0005, 0.015
    for c in CONFIDENCES:
        q = mu + sigma * stats.norm.ppf(1 - c)
        tail_mean, _ = integrate.quad(lambda x: x * stats.norm.pdf(x, mu, sigma), -np.inf, q)
        assert parametric_es(mu=mu, sigma=sigma, confidence=c) == pytest.approx(
            -tail_mean / (1 - c), rel=1e-8
        )


def test_parametric_matches_quantstats(real_returns: pd.DataFrame) -> None:
    import quantstats.stats as qs

    for name in ("AAPL", "KO"):
        r = real_returns[name]
        for c in (0.95, 0.99):
            ref_var = -qs.value_at_risk(r, confidence=c, prepare_returns=False)
            ref_es = -qs.conditional_value_at_risk(
                r, confidence=c, prepare_returns=False, method="parametric"
            )
            assert parametric_var(r, c) == pytest.approx(ref_var, rel=1e-12)
            assert parametric_es(r, c) == pytest.approx(ref_es, rel=1e-12)


# --- Cornish-Fisher -----------------------------------------------------------------------------


def test_cornish_fisher_by_hand_on_real_returns(real_returns: pd.DataFrame) -> None:
    r = real_returns["AMD"].to_numpy()
    n = r.size
    mean = r.sum() / n
    sd = math.sqrt(((r - mean) ** 2).sum() / (n - 1))
    m2 = ((r - mean) ** 2).mean()
    skew = ((r - mean) ** 3).mean() / m2**1.5
    exkurt = ((r - mean) ** 4).mean() / m2**2 - 3
    assert (skew, exkurt) == pytest.approx(
        (stats.skew(r, bias=True), stats.kurtosis(r, fisher=True, bias=True)), rel=1e-10
    )
    assert sample_skew_kurtosis(r) == pytest.approx((skew, exkurt), rel=1e-12)
    for c in (0.95, 0.99):
        z = stats.norm.ppf(1 - c)
        z_cf = (
            z
            + (z * z - 1) * skew / 6
            + (z**3 - 3 * z) * exkurt / 24
            - (2 * z**3 - 5 * z) * skew * skew / 36
        )
        assert cornish_fisher_var(r, c) == pytest.approx(-(mean + sd * z_cf), rel=1e-12)
    # Fat tails: the modified VaR at 99% is above the Gaussian one for a stock's returns.
    assert exkurt > 1
    assert cornish_fisher_var(r, 0.99) > parametric_var(r, 0.99)


def test_cornish_fisher_without_skew_or_kurtosis_is_gaussian() -> None:
    for c in CONFIDENCES:
        assert cornish_fisher_var(
            mu=0.001, sigma=0.02, skew=0.0, excess_kurtosis=0.0, confidence=c
        ) == pytest.approx(parametric_var(mu=0.001, sigma=0.02, confidence=c), rel=1e-14)


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_cornish_fisher_recovers_chi_square_quantiles(sign: int, confidence: float) -> None:
    # X = sign * chi2(100): skew sign * sqrt(8/100), excess kurtosis 12/100. The expansion gets
    # the tail quantile to a few ten-thousandths of a standard deviation; the normal misses by
    # about a fifth of one. Checks the expansion's terms and signs against a known distribution.
    k = 100
    mu, sd = sign * k, math.sqrt(2 * k)
    skew, exkurt = sign * math.sqrt(8 / k), 12 / k
    q = stats.chi2.ppf(1 - confidence, k) if sign == 1 else -stats.chi2.ppf(confidence, k)
    true_var = -q
    cf = cornish_fisher_var(
        mu=mu, sigma=sd, skew=skew, excess_kurtosis=exkurt, confidence=confidence
    )
    gauss = parametric_var(mu=mu, sigma=sd, confidence=confidence)
    assert abs(cf - true_var) / sd < 5e-4
    assert abs(gauss - true_var) / sd > 0.05


# --- Kupiec -------------------------------------------------------------------------------------


def test_kupiec_worked_example_250_days_99pct_8_breaches() -> None:
    t, x, p = 250, 8, 0.01
    lr = -2 * ((t - x) * math.log(1 - p) + x * math.log(p)) + 2 * (
        (t - x) * math.log(1 - x / t) + x * math.log(x / t)
    )
    result = kupiec_pof(x, t, confidence=0.99)
    assert result.lr == pytest.approx(lr, rel=1e-12)
    assert result.lr == pytest.approx(7.7336, abs=1e-4)
    assert result.p_value == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-12)
    assert result.p_value == pytest.approx(0.005420, abs=1e-6)
    assert result.expected_breaches == pytest.approx(2.5)
    assert result.rejects(0.05) and result.rejects(0.01)
    assert not kupiec_pof(3, 250, 0.99).rejects(0.05)


@pytest.mark.parametrize(
    ("confidence", "t", "low", "high"),
    [
        # Jorion, Value at Risk, "model verification": 95% non-rejection regions
        # for the number of failures N, written as low < N < high.
        (0.95, 252, 6, 20),
        (0.95, 510, 16, 36),
        (0.95, 1000, 37, 65),
        (0.99, 510, 1, 11),
        (0.99, 1000, 4, 17),
    ],
)
def test_kupiec_non_rejection_regions(confidence: float, t: int, low: int, high: int) -> None:
    accepted = [x for x in range(t + 1) if not kupiec_pof(x, t, confidence).rejects(0.05)]
    assert (min(accepted), max(accepted)) == (low + 1, high - 1)


def test_kupiec_on_breach_flags_and_edges() -> None:
    rng = np.random.default_rng(5)
    r = rng.normal(0, 0.01, 1000)
    var99 = parametric_var(mu=0.0, sigma=0.01, confidence=0.99)
    flags = var_breaches(r, var99)
    assert flags.dtype == bool and flags.sum() == (r < -var99).sum()
    from_flags = kupiec_pof(flags, confidence=0.99)
    assert from_flags == kupiec_pof(int(flags.sum()), 1000, confidence=0.99)
    assert not from_flags.rejects()
    # Per-period forecasts broadcast element by element.
    forecasts = np.full(1000, var99)
    forecasts[:10] = 1.0  # nothing breaches a 100% VaR
    assert var_breaches(r, forecasts).sum() == flags[10:].sum()
    zero = kupiec_pof(0, 250, 0.99)
    assert zero.lr == pytest.approx(-2 * 250 * math.log(0.99))
    all_breached = kupiec_pof(10, 10, 0.99)
    assert all_breached.lr == pytest.approx(-2 * 10 * math.log(0.01))
    with pytest.raises(ValueError):
        kupiec_pof(5)
    with pytest.raises(ValueError):
        kupiec_pof(11, 10)
