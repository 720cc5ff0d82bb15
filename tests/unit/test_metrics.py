"""Performance metrics: cross-checked against empyrical-reloaded and quantstats on real prices,
plus hand-computed cases for the figures those libraries define differently or not at all.

Real data: daily closes of S&P 500 stocks from skfolio's bundled dataset (1990-2022), turned
into simple returns. Conventions of each library, and how they are aligned here:

- empyrical: ``risk_free`` / ``required_return`` per period; VaR and CVaR historical;
  CAGR years = number of periods / 252.
- quantstats 0.0.86: ``rf`` is an *annual* rate that it de-annualises as
  (1 + rf) ** (1 / 252) - 1, so it gets the annual rate whose daily equivalent we pass; its
  sortino subtracts rf and uses 0 as the threshold (same as our ``required_return`` = daily rf);
  CAGR counts periods / 252 (older releases counted calendar days; 0.0.86 does not); its VaR
  is parametric (normal) and its CVaR parametric by default, ``method="historical"`` otherwise;
  its ``exposure`` rounds up to whole percent, its ``monthly_returns`` writes 0 for months with
  no data.

Tolerances are float round-off only (1e-10 relative): both libraries compute the same formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

import quant.metrics as qm

INSTALL_HINT = "install the dev and testdata extras: .venv/bin/pip install -e '.[dev,testdata]'"
RTOL = 1e-10
SYMBOLS = ["AAPL", "JPM", "XOM", "PFE"]
ANNUAL_RF = 0.03
DAILY_RF = (1 + ANNUAL_RF) ** (1 / 252) - 1


def _libs():
    try:
        import empyrical
        import quantstats
    except ImportError as exc:  # the cross-check is the point of this file: fail, don't skip
        pytest.fail(f"{exc.name} is not installed: {INSTALL_HINT}")
    return empyrical, quantstats


@pytest.fixture(scope="module")
def libs():
    return _libs()


@pytest.fixture(scope="module")
def sp500_returns() -> pd.DataFrame:
    try:
        from skfolio.datasets import load_sp500_dataset
    except ImportError:
        pytest.fail(f"skfolio is not installed: {INSTALL_HINT}")
    prices = load_sp500_dataset()[SYMBOLS]
    returns = prices.pct_change().iloc[1:]
    assert not returns.isna().any().any()
    assert len(returns) > 8000
    return returns


@pytest.fixture(params=SYMBOLS)
def stock(request, sp500_returns) -> pd.Series:
    return sp500_returns[request.param]


@pytest.fixture(params=["full", "2008-2009"])
def series(request, stock) -> pd.Series:
    """Each stock over its whole history and over the 2008-09 crisis (a losing stretch)."""
    return stock if request.param == "full" else stock["2008":"2009"]


# --------------------------------------------------------------------------- cross-checks


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-14)


def test_sharpe_matches_empyrical_and_quantstats(series, libs):
    ep, qs = libs
    ours = qm.sharpe_ratio(series.to_numpy())
    assert close(ours, ep.sharpe_ratio(series))
    assert close(ours, qs.stats.sharpe(series))
    with_rf = qm.sharpe_ratio(series, risk_free=DAILY_RF)
    assert close(with_rf, ep.sharpe_ratio(series, risk_free=DAILY_RF))
    assert close(with_rf, qs.stats.sharpe(series, rf=ANNUAL_RF, periods=252))
    assert with_rf < ours  # a positive rate lowers the excess return


def test_sortino_matches_empyrical_and_quantstats(series, libs):
    ep, qs = libs
    ours = qm.sortino_ratio(series)
    assert close(ours, ep.sortino_ratio(series))
    assert close(ours, qs.stats.sortino(series))
    mar = qm.sortino_ratio(series, required_return=DAILY_RF)
    assert close(mar, ep.sortino_ratio(series, required_return=DAILY_RF))
    assert close(mar, qs.stats.sortino(series, rf=ANNUAL_RF, periods=252))
    assert close(qm.downside_risk(series), ep.downside_risk(series))


def test_drawdowns_match_empyrical_and_quantstats(series, libs):
    ep, qs = libs
    ours = qm.max_drawdown(series)
    assert ours < 0
    assert close(ours, ep.max_drawdown(series))
    assert close(ours, qs.stats.max_drawdown(series))
    dd = qm.drawdown_series(series)
    assert isinstance(dd, pd.Series) and dd.index.equals(series.index)
    np.testing.assert_allclose(dd, ep.stats.drawdown_series(series), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dd, qs.stats.to_drawdown_series(series), rtol=0, atol=1e-12)


def test_cagr_calmar_volatility_match(series, libs):
    ep, qs = libs
    assert close(qm.cagr(series), ep.cagr(series))
    assert close(qm.cagr(series), qs.stats.cagr(series))
    assert close(qm.calmar_ratio(series), ep.calmar_ratio(series))
    assert close(qm.calmar_ratio(series), qs.stats.calmar(series))
    assert close(qm.annual_volatility(series), ep.annual_volatility(series))
    assert close(qm.annual_volatility(series), qs.stats.volatility(series))


def test_var_and_cvar_match_each_library_convention(series, libs):
    ep, qs = libs
    # historical: empyrical's definitions (and quantstats' historical CVaR)
    assert close(qm.value_at_risk(series, 0.95), ep.value_at_risk(series, cutoff=0.05))
    assert close(qm.value_at_risk(series, 0.99), ep.value_at_risk(series, cutoff=0.01))
    cvar = qm.conditional_value_at_risk(series, 0.95)
    assert close(cvar, ep.conditional_value_at_risk(series, cutoff=0.05))
    assert close(cvar, qs.stats.cvar(series, confidence=0.95, method="historical"))
    # parametric (normal): quantstats' variance-covariance VaR and closed-form ES
    var_p = qm.value_at_risk(series, 0.95, method="parametric")
    assert close(var_p, qs.stats.value_at_risk(series, confidence=0.95))
    cvar_p = qm.conditional_value_at_risk(series, 0.95, method="parametric")
    assert close(cvar_p, qs.stats.cvar(series, confidence=0.95))
    assert cvar < qm.value_at_risk(series, 0.95) < 0
    assert cvar_p < var_p < 0


def test_trading_ratios_match_quantstats(series, libs):
    _, qs = libs
    assert close(qm.hit_ratio(series), qs.stats.win_rate(series))
    assert close(qm.profit_factor(series), qs.stats.profit_factor(series))
    # quantstats rounds exposure *up* to a whole percent; ours is the exact share
    tim = qm.time_in_market(series)
    assert math.ceil(tim * 100) / 100 == qs.stats.exposure(series)
    assert 0.9 < tim <= 1.0  # real stocks have few unchanged days


def test_rolling_sharpe_matches_quantstats(stock, libs):
    _, qs = libs
    ours = qm.rolling_sharpe(stock, window=126)
    theirs = qs.stats.rolling_sharpe(stock, rolling_period=126)
    assert ours.index.equals(stock.index)
    assert ours.isna().sum() == theirs.isna().sum() == 125
    np.testing.assert_allclose(ours.to_numpy()[125:], theirs.to_numpy()[125:], rtol=1e-8)
    with_rf = qm.rolling_sharpe(stock, window=63, risk_free=DAILY_RF)
    theirs_rf = qs.stats.rolling_sharpe(stock, rf=ANNUAL_RF, rolling_period=63)
    np.testing.assert_allclose(with_rf.to_numpy()[62:], theirs_rf.to_numpy()[62:], rtol=1e-8)
    # the last value is the Sharpe ratio of the last window
    assert close(ours.iloc[-1], qm.sharpe_ratio(stock.iloc[-126:]))


def test_monthly_returns_match_quantstats(stock, libs):
    _, qs = libs
    ours = qm.monthly_returns(stock)
    theirs = qs.stats.monthly_returns(stock)
    assert ours.columns == ["year", *qm.MONTHS, "year_total"]
    assert ours["year"].to_list() == [int(y) for y in theirs.index]
    for month in qm.MONTHS:
        np.testing.assert_allclose(
            ours[month].fill_null(0.0).to_numpy(), theirs[month.upper()].to_numpy(), atol=1e-12
        )
    np.testing.assert_allclose(ours["year_total"].to_numpy(), theirs["EOY"].to_numpy(), atol=1e-12)
    # the dataset ends on 2022-12-28: every month of 2022 is present
    assert (
        ours.filter(pl.col("year") == 2022).select(qm.MONTHS).null_count().sum_horizontal()[0] == 0
    )


# --------------------------------------------------------------------------- inputs and NaN


def test_every_input_container_gives_the_same_numbers(stock):
    arr = stock.to_numpy()[:500]
    variants = [arr, arr.tolist(), pd.Series(arr), pl.Series("r", arr)]
    for fn in (qm.sharpe_ratio, qm.sortino_ratio, qm.max_drawdown, qm.cagr, qm.value_at_risk):
        values = [fn(v) for v in variants]
        assert all(v == values[0] for v in values), fn.__name__
    assert isinstance(qm.drawdown_series(pl.Series("r", arr)), pl.Series)
    assert isinstance(qm.drawdown_series(arr), np.ndarray)


def test_nan_periods_are_not_observations(stock):
    arr = stock.to_numpy()[:300].copy()
    holed = arr.copy()
    holed[[5, 50, 299]] = np.nan
    kept = holed[~np.isnan(holed)]
    for fn in (
        qm.sharpe_ratio,
        qm.sortino_ratio,
        qm.annual_volatility,
        qm.cagr,
        qm.max_drawdown,
        qm.calmar_ratio,
        qm.value_at_risk,
        qm.conditional_value_at_risk,
        qm.hit_ratio,
    ):
        assert fn(holed) == pytest.approx(fn(kept), rel=1e-12), fn.__name__
    assert qm.cagr(holed) != qm.cagr(np.nan_to_num(holed))  # NaN is not a flat period here
    # polars nulls are the same as NaN
    assert qm.sharpe_ratio(pl.Series([0.01, None, -0.02, 0.03])) == qm.sharpe_ratio(
        [0.01, -0.02, 0.03]
    )
    # series outputs stay aligned: a NaN period compounds flat
    dd = qm.drawdown_series(np.array([0.1, np.nan, -0.1]))
    np.testing.assert_allclose(dd, [0.0, 0.0, -0.1])


def test_infinite_returns_are_refused():
    with pytest.raises(ValueError, match="infinite"):
        qm.sharpe_ratio([0.01, np.inf])
    with pytest.raises(ValueError, match="one-dimensional"):
        qm.sharpe_ratio(np.zeros((3, 2)))


def test_degenerate_series_give_nan_not_errors():
    for empty in ([], [np.nan, np.nan]):
        assert math.isnan(qm.sharpe_ratio(empty))
        assert math.isnan(qm.cagr(empty))
        assert math.isnan(qm.max_drawdown(empty))
        assert math.isnan(qm.value_at_risk(empty))
    flat = [0.0] * 10
    assert math.isnan(qm.sharpe_ratio(flat))
    assert math.isnan(qm.sortino_ratio(flat))
    assert qm.max_drawdown(flat) == 0.0
    assert math.isnan(qm.calmar_ratio(flat))
    assert math.isnan(qm.hit_ratio(flat))
    assert math.isnan(qm.sharpe_ratio([0.01]))
    # never a loss: Sortino undefined (NaN), profit factor infinite
    assert math.isnan(qm.sortino_ratio([0.01, 0.02]))
    assert qm.profit_factor([0.01, 0.02]) == math.inf


# --------------------------------------------------------------------------- hand-computed


def test_hand_computed_basics():
    r = np.array([0.10, -0.05, 0.02, -0.10, 0.04])
    wealth = np.cumprod(1 + r)  # 1.1, 1.045, 1.0659, 0.95931, 0.9976824
    assert qm.total_return(r) == pytest.approx(0.9976824 - 1, abs=1e-12)
    # peak 1.1, trough 0.95931
    assert qm.max_drawdown(r) == pytest.approx(0.95931 / 1.1 - 1, abs=1e-12)
    assert qm.cagr(r, periods_per_year=5) == pytest.approx(wealth[-1] - 1, abs=1e-12)
    assert qm.cagr(r, periods_per_year=10) == pytest.approx(wealth[-1] ** 2 - 1, abs=1e-12)
    sd = math.sqrt(sum((x - 0.002) ** 2 for x in r) / 4)
    assert qm.sharpe_ratio(r, periods_per_year=1) == pytest.approx(0.002 / sd)
    assert qm.annual_volatility(r, periods_per_year=4) == pytest.approx(2 * sd)
    # downside: sqrt((0.05^2 + 0.10^2) / 5)
    assert qm.downside_risk(r, periods_per_year=1) == pytest.approx(math.sqrt(0.0125 / 5))
    assert qm.hit_ratio(r) == pytest.approx(3 / 5)
    assert qm.profit_factor(r) == pytest.approx(0.16 / 0.15)
    # historical 5% VaR of 5 points: linear interpolation between the two lowest
    assert qm.value_at_risk(r, 0.95) == pytest.approx(-0.10 + 0.2 * 0.05)
    # tail = the int((n - 1) * alpha) + 1 lowest returns
    assert qm.conditional_value_at_risk(r, 0.95) == pytest.approx(-0.10)  # 1 point
    assert qm.conditional_value_at_risk(r, 0.75) == pytest.approx((-0.10 - 0.05) / 2)  # 2
    assert qm.conditional_value_at_risk(r, 0.50) == pytest.approx((-0.10 - 0.05 + 0.02) / 3)


def test_drawdown_duration_counts_periods_under_water():
    # wealth 1.1, 0.99, 1.0395, 1.14345, 1.120581: under water at periods 1, 2 and 4
    r = [0.10, -0.10, 0.05, 0.10, -0.02]
    assert qm.drawdown_duration(r) == qm.DrawdownDuration(longest=2, current=1)
    assert qm.drawdown_duration([0.01, 0.02]) == qm.DrawdownDuration(0, 0)
    # a first-period loss counts: the starting wealth is the first peak
    assert qm.drawdown_duration([-0.01, 0.005, 0.002, 0.01]) == qm.DrawdownDuration(3, 0)


def test_drawdown_duration_against_a_plain_loop(stock):
    wealth, peak, run, longest = 1.0, 1.0, 0, 0
    for x in stock:
        wealth *= 1 + x
        peak = max(peak, wealth)
        run = run + 1 if wealth < peak else 0
        longest = max(longest, run)
    assert qm.drawdown_duration(stock) == qm.DrawdownDuration(longest, run)
    assert longest > 250  # every one of these stocks spent more than a year under water


def test_turnover_and_exposure_by_hand():
    traded = [0.0, 200_000.0, 50_000.0, 100_000.0]
    equity = [1_000_000.0, 1_000_000.0, 500_000.0, 1_000_000.0]
    assert qm.turnover(traded, equity) == pytest.approx((0 + 0.2 + 0.1 + 0.1) / 4)
    assert qm.turnover(traded, equity, periods_per_year=252) == pytest.approx(0.1 * 252)
    positions = np.array([[500_000.0, -300_000.0], [0.0, 0.0], [250_000.0, 250_000.0]])
    eq = [1_000_000.0, 1_000_000.0, 0.0]
    np.testing.assert_allclose(qm.exposure(positions, eq)[:2], [0.8, 0.0])
    assert math.isnan(qm.exposure(positions, eq)[2])  # no equity: undefined, not infinite
    np.testing.assert_allclose(qm.exposure(positions, eq, net=True)[:2], [0.2, 0.0])
    np.testing.assert_allclose(qm.exposure([-500.0, 250.0], [1000.0, 1000.0]), [0.5, 0.25])
    with pytest.raises(ValueError):
        qm.turnover([1.0, 2.0], [1.0])


def test_rolling_sharpe_window_with_a_gap():
    r = np.array([0.01, -0.01, 0.02, np.nan, 0.01, 0.0, 0.03])
    out = qm.rolling_sharpe(r, window=3, periods_per_year=1)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx(qm.sharpe_ratio(r[:3], periods_per_year=1))
    assert np.isnan(out[3:6]).all()  # every window that holds the gap
    assert out[6] == pytest.approx(qm.sharpe_ratio(r[4:7], periods_per_year=1))


def test_monthly_returns_by_hand_with_time_zone():
    # 2024-01-31 22:00 UTC is already February in Istanbul (UTC+3)
    ts = pl.Series(
        [
            "2024-01-02 07:00",
            "2024-01-31 22:00",
            "2024-02-01 07:00",
            "2024-04-01 07:00",
            "2025-01-02 07:00",
        ]
    ).str.to_datetime(time_zone="UTC")
    r = [0.10, 0.10, -0.05, 0.02, np.nan]
    utc = qm.monthly_returns(r, ts)
    assert utc["year"].to_list() == [2024]  # the 2025 row only had a NaN
    assert utc["Jan"][0] == pytest.approx(1.1 * 1.1 - 1)
    assert utc["Feb"][0] == pytest.approx(-0.05)
    assert utc["Mar"][0] is None  # no observation: null, not 0
    assert utc["year_total"][0] == pytest.approx(1.1 * 1.1 * 0.95 * 1.02 - 1)
    ist = qm.monthly_returns(r, ts, time_zone="Europe/Istanbul")
    assert ist["Jan"][0] == pytest.approx(0.10)
    assert ist["Feb"][0] == pytest.approx(1.1 * 0.95 - 1)
    # the same time stamps as UTC nanosecond integers
    ints = ts.dt.epoch("ns").to_numpy()
    assert qm.monthly_returns(r, ints).equals(utc)
    with pytest.raises(ValueError, match="time stamps"):
        qm.monthly_returns(r)


def test_summary_stats_uses_the_same_functions(stock):
    s = stock["2015":]
    stats = qm.summary_stats(s, risk_free=DAILY_RF)
    assert stats["n_periods"] == len(s)
    assert stats["sharpe_ratio"] == qm.sharpe_ratio(s, risk_free=DAILY_RF)
    assert stats["sortino_ratio"] == qm.sortino_ratio(s, required_return=DAILY_RF)
    assert stats["max_drawdown"] == qm.max_drawdown(s)
    assert stats["calmar_ratio"] == qm.calmar_ratio(s)
    assert stats["value_at_risk"] == qm.value_at_risk(s)
    assert stats["longest_drawdown_periods"] == qm.drawdown_duration(s).longest
    assert stats["kurtosis"] > 3  # daily stock returns are fat-tailed
    assert 0.0 <= stats["psr"] <= 1.0
    empty = qm.summary_stats([])
    assert empty["n_periods"] == 0 and math.isnan(empty["sharpe_ratio"])
