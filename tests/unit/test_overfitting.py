"""PSR, DSR and PBO: the published worked example, independent implementations, and CSCV cases
whose answer is known (a dominant strategy, pure noise, a matrix worked by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

import quant.metrics as qm

INSTALL_HINT = "install the testdata extra: .venv/bin/pip install -e '.[dev,testdata]'"


def _skfolio_measures():
    try:
        import skfolio.measures as sm
        from skfolio.datasets import load_sp500_dataset
    except ImportError:
        pytest.fail(f"skfolio is not installed: {INSTALL_HINT}")
    return sm, load_sp500_dataset


@pytest.fixture(scope="module")
def sp500():
    sm, load = _skfolio_measures()
    returns = load().pct_change().iloc[1:]
    return sm, returns


# --------------------------------------------------------------------------- DSR


def test_deflated_sharpe_reproduces_the_2014_paper_example():
    """Bailey and López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection
    Bias, Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5), numerical
    example: the best of N = 100 trials has an annualised Sharpe ratio of 2.5 over five years of
    daily returns (T = 1,250), the trials' annualised Sharpe ratios have variance 1/2, and the
    returns have skewness -3 and kurtosis 10. The paper reports SR0 ≈ 0.1132 (per period) and
    DSR ≈ 0.9004. Five years in 1,250 observations means the paper annualises with 250 days, so
    the per-period inputs are SR = 2.5 / sqrt(250) and V = 0.5 / 250. Recomputed by hand from
    the formulas: Z⁻¹(0.99) = 2.32635, Z⁻¹(1 - 1/(100e)) = 2.67965,
    SR0 = sqrt(0.002) x (0.42278 x 2.32635 + 0.57722 x 2.67965) = 0.113172; with SR = 0.158114,
    z = 0.044942 x sqrt(1249) / sqrt(1 + 3 x 0.158114 + 9/4 x 0.025) = 1.28382, Φ(z) = 0.90040.
    """
    periods = 250
    sr = 2.5 / math.sqrt(periods)
    variance = 0.5 / periods
    sr0 = qm.expected_max_sharpe(100, variance)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert sr0 * math.sqrt(periods) == pytest.approx(1.7894, abs=5e-5)  # annualised SR0
    dsr = qm.deflated_sharpe_ratio(
        sharpe=sr, n_trials=100, sharpe_variance=variance, n_obs=1250, skewness=-3, kurtosis=10
    )
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # the same example annualised with 252 days moves the answer off the published one
    alt = qm.deflated_sharpe_ratio(2.5 / math.sqrt(252), 100, 0.5 / 252, 1250, -3, 10)
    assert abs(alt - 0.9004) > 5e-4


def test_deflated_sharpe_is_psr_against_the_expected_maximum():
    sr, n, v, t, g3, g4 = 0.08, 50, 0.001, 750, -0.5, 6.0
    sr0 = qm.expected_max_sharpe(n, v)
    assert qm.deflated_sharpe_ratio(sr, n, v, t, g3, g4) == pytest.approx(
        qm.probabilistic_sharpe_ratio_from_stats(sr, t, g3, g4, benchmark_sharpe=sr0)
    )
    # more trials raise the bar; one trial (or identical trials) means no selection at all
    assert qm.deflated_sharpe_ratio(sr, 1000, v, t, g3, g4) < qm.deflated_sharpe_ratio(
        sr, 10, v, t, g3, g4
    )
    assert qm.deflated_sharpe_ratio(sr, 1, v, t, g3, g4) == pytest.approx(
        qm.probabilistic_sharpe_ratio_from_stats(sr, t, g3, g4)
    )
    assert qm.expected_max_sharpe(20, 0.0) == 0.0
    with pytest.raises(ValueError):
        qm.expected_max_sharpe(0.5, v)
    with pytest.raises(ValueError):
        qm.expected_max_sharpe(10, -1.0)


def test_expected_max_sharpe_against_skfolio_and_simulation():
    sm, _ = _skfolio_measures()
    for n, v in [(2, 1.0), (10, 0.25), (100, 0.5 / 250), (1000, 0.01), (37.5, 0.3)]:
        ours = qm.expected_max_sharpe(n, v)
        assert ours == pytest.approx(sm.expected_max_sharpe_ratio(n, math.sqrt(v)), rel=1e-12)
    # it approximates E[max of N standard normals], computed here exactly by quadrature of
    # x N phi(x) Phi(x)^(N-1): it overstates slightly (a conservative bar), less as N grows
    for n, rel in [(10, 0.025), (100, 0.01), (1000, 0.005)]:
        exact = quad(lambda x, n=n: x * n * norm.pdf(x) * norm.cdf(x) ** (n - 1), -12, 12)[0]
        approx = qm.expected_max_sharpe(n, 1.0)
        assert exact < approx < exact * (1 + rel)
    assert quad(lambda x: x * 100 * norm.pdf(x) * norm.cdf(x) ** 99, -12, 12)[0] == (
        pytest.approx(2.50759, abs=1e-5)  # the tabulated expected maximum of 100 normals
    )


def test_deflated_sharpe_from_trials_matches_skfolio(sp500):
    sm, returns = sp500
    window = returns["2008":"2012"]
    trials = np.array([qm.sharpe_ratio(window[c], periods_per_year=1) for c in window])
    best = window.columns[int(np.argmax(trials))]
    ours = qm.deflated_sharpe_ratio_from_trials(window[best], trials)
    theirs = sm.deflated_sharpe_ratio(window[best].to_numpy(), trials)
    assert ours == pytest.approx(theirs, rel=1e-10)
    assert ours < qm.probabilistic_sharpe_ratio(window[best])  # selection costs confidence


# --------------------------------------------------------------------------- PSR


def test_psr_matches_skfolio_on_real_returns(sp500):
    sm, returns = sp500
    for sym in ["AAPL", "JPM", "XOM", "GE"]:
        for span in [slice(None), slice("2008", "2009")]:
            r = returns[sym].loc[span]
            assert qm.probabilistic_sharpe_ratio(r) == pytest.approx(
                sm.probabilistic_sharpe_ratio(r.to_numpy()), rel=1e-10
            )
            bench = 0.02
            assert qm.probabilistic_sharpe_ratio(r, benchmark_sharpe=bench) == pytest.approx(
                sm.probabilistic_sharpe_ratio(r.to_numpy(), benchmark_sharpe_ratio=bench),
                rel=1e-10,
            )


def test_psr_formula_matches_quantstats_given_its_moment_estimators(sp500):
    """quantstats' PSR uses pandas' bias-corrected skewness and kurtosis where we (and skfolio,
    and the paper) use population moments; fed the same moments, the formula must agree."""
    try:
        import quantstats as qs
    except ImportError:
        pytest.fail(f"quantstats is not installed: {INSTALL_HINT}")
    _, returns = sp500
    for sym in ["AAPL", "GE"]:
        r = returns[sym]["2008":"2009"]
        sr = qm.sharpe_ratio(r, periods_per_year=1)
        ours = qm.probabilistic_sharpe_ratio_from_stats(sr, len(r), r.skew(), r.kurt() + 3)
        assert ours == pytest.approx(qs.stats.probabilistic_sharpe_ratio(r), rel=1e-10)


def test_psr_properties():
    # at the benchmark the probability is one half
    assert qm.probabilistic_sharpe_ratio_from_stats(0.1, 500, -1.0, 8.0, 0.1) == 0.5
    # normal returns: the denominator is Lo's sqrt(1 + SR^2 / 2)
    sr, t = 0.05, 1000
    lo = norm.cdf(sr * math.sqrt(t - 1) / math.sqrt(1 + sr**2 / 2))
    assert qm.probabilistic_sharpe_ratio_from_stats(sr, t) == pytest.approx(lo, rel=1e-12)
    # negative skew and fat tails lower the confidence in a positive Sharpe ratio
    assert qm.probabilistic_sharpe_ratio_from_stats(sr, t, -2.0, 12.0) < lo
    # a non-positive variance factor is reported as undefined, not as a probability
    assert math.isnan(qm.probabilistic_sharpe_ratio_from_stats(1.0, 100, 5.0, 3.0))
    assert math.isnan(qm.probabilistic_sharpe_ratio([0.01, 0.02]))


def test_minimum_track_record_length_inverts_psr():
    sr, g3, g4 = 0.1, -1.0, 7.0
    n = qm.minimum_track_record_length(sr, g3, g4, confidence=0.95)
    assert qm.probabilistic_sharpe_ratio_from_stats(sr, n, g3, g4) == pytest.approx(0.95)
    assert qm.minimum_track_record_length(0.01, benchmark_sharpe=0.02) == math.inf


# --------------------------------------------------------------------------- PBO


def test_pbo_of_a_hand_worked_matrix():
    """S = 4 one-row blocks, N = 4 strategies, performance = mean. Worked by hand:

    train {0,1}: sums [3,7,2,1] best 1; test {2,3}: [9,7,2,2] rank of 1 = 3 → ω 3/5, λ ln 1.5
    train {0,2}: [10,5,3,0] best 0; test {1,3}: [2,9,1,3] rank 2 → ω 2/5, λ ln(2/3)
    train {0,3}: [1,8,3,2] best 1; test {1,2}: [11,6,1,1] rank 3 → ω 3/5
    train {1,2}: [11,6,1,1] best 0; test {0,3}: [1,8,3,2] rank 1 → ω 1/5, λ ln(1/4)
    train {1,3}: [2,9,1,3] best 1; test {0,2}: [10,5,3,0] rank 3 → ω 3/5
    train {2,3}: [9,7,2,2] best 0; test {0,1}: [3,7,2,1] rank 3 → ω 3/5
    (test {2,3} ties strategies 2 and 3 at 2: they share rank 1.5.) PBO = 2/6.
    """
    m = np.array([[1, 3, 2, 0], [2, 4, 0, 1], [9, 2, 1, 0], [0, 5, 1, 2]], dtype=float)
    res = qm.probability_of_backtest_overfitting(
        m, n_submatrices=4, performance=lambda x: x.mean(axis=0)
    )
    assert res.n_combinations == 6 and res.rows_dropped == 0
    assert res.best_in_sample.tolist() == [1, 0, 1, 0, 1, 0]
    np.testing.assert_allclose(res.relative_ranks, [0.6, 0.4, 0.6, 0.2, 0.6, 0.6])
    np.testing.assert_allclose(res.logits, np.log([1.5, 2 / 3, 1.5, 0.25, 1.5, 1.5]), rtol=1e-12)
    assert res.pbo == pytest.approx(2 / 6)
    # in-sample means of the chosen strategy, and its out-of-sample means
    np.testing.assert_allclose(res.in_sample_performance, [3.5, 5, 4, 5.5, 4.5, 4.5])
    np.testing.assert_allclose(res.out_of_sample_performance, [3.5, 1, 3, 0.5, 2.5, 1.5])
    assert res.prob_oos_loss == 0.0


def test_pbo_sharpe_fast_path_equals_the_generic_path():
    rng = np.random.default_rng(3)
    m = rng.normal(0.0003, 0.01, size=(403, 12)) + rng.normal(0, 0.002, size=(1, 12))
    fast = qm.probability_of_backtest_overfitting(m, n_submatrices=8)
    slow = qm.probability_of_backtest_overfitting(
        m,
        n_submatrices=8,
        performance=lambda x: x.mean(axis=0) / x.std(axis=0, ddof=1),
    )
    assert fast.rows_dropped == 3  # 403 = 8 x 50 + 3 oldest rows
    assert fast.n_combinations == math.comb(8, 4)
    np.testing.assert_array_equal(fast.best_in_sample, slow.best_in_sample)
    np.testing.assert_allclose(fast.logits, slow.logits, rtol=1e-12)
    np.testing.assert_allclose(fast.in_sample_performance, slow.in_sample_performance, rtol=1e-9)
    # combinations come in itertools order: the first trains on blocks 0-3 of the trimmed matrix
    first = m[3:][: 4 * 50]
    sharpe = first.mean(axis=0) / first.std(axis=0, ddof=1)
    assert fast.best_in_sample[0] == int(np.argmax(sharpe))


def test_pbo_near_zero_when_one_strategy_dominates():
    rng = np.random.default_rng(11)
    m = rng.normal(0.0, 0.01, size=(1600, 20))
    m[:, 7] += 0.004  # a daily Sharpe of 0.4 against pure noise
    res = qm.probability_of_backtest_overfitting(m, n_submatrices=16)
    assert res.n_combinations == 12_870
    assert res.pbo < 0.01
    assert (res.best_in_sample == 7).mean() > 0.99
    assert np.median(res.logits) == pytest.approx(math.log(20 / 21 / (1 / 21)))


def test_pbo_about_one_half_for_pure_noise():
    """With no skill the winner's out-of-sample rank is uniform: P(λ ≤ 0) = 10/20 for N = 20.
    One matrix is a noisy draw (the combinations share data), so average over seeds."""
    pbos = [
        qm.probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0.0, 0.01, size=(480, 20)), n_submatrices=8
        ).pbo
        for seed in range(30)
    ]
    assert 0.4 < float(np.mean(pbos)) < 0.6
    assert max(pbos) > 0.5  # noise often looks overfit


def test_pbo_rejects_bad_input():
    m = np.zeros((64, 4))
    with pytest.raises(ValueError, match="even"):
        qm.probability_of_backtest_overfitting(m, n_submatrices=5)
    with pytest.raises(ValueError, match="T x N"):
        qm.probability_of_backtest_overfitting(np.zeros(64))
    with pytest.raises(ValueError, match="two strategy"):
        qm.probability_of_backtest_overfitting(np.zeros((64, 1)))
    with pytest.raises(ValueError, match="too few"):
        qm.probability_of_backtest_overfitting(np.zeros((10, 3)), n_submatrices=16)
    bad = np.ones((64, 3))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        qm.probability_of_backtest_overfitting(bad, n_submatrices=4)
