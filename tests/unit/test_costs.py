"""Cost models against hand arithmetic and the closed forms of Almgren and Chriss (2000)."""

import math
from datetime import UTC, date, datetime

import pytest

from quant.execution.orders import Side
from quant.market import BIST_SHARE_TICKS
from quant.sim.costs import (
    AlmgrenChrissImpact,
    CommissionModel,
    CommissionTier,
    CompositeFeeModel,
    CompositeSlippage,
    CostModel,
    ExchangeFeeModel,
    FeeModel,
    FixedBpsSlippage,
    MarketConditions,
    NoSlippage,
    SlippageModel,
    SpreadSlippage,
    SquareRootImpact,
    TierState,
    ZeroFees,
    bist_default_costs,
    bist_default_fees,
    incremental_fee,
    no_costs,
    round_adverse,
    round_kurus,
)

DAY = date(2024, 3, 4)


def ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000_000


# --------------------------------------------------------------------------------- fees


def test_worked_example_1000_shares_at_45_20() -> None:
    # value 1,000 × 45.20 = 45,200.00 TRY
    # exchange fee 0.003%: 45,200 × 0.00003 = 1.356 -> 1.36; BSMV 5% of 1.36 = 0.068 -> 0.07
    exchange = ExchangeFeeModel()
    assert exchange.fee("THYAO", Side.BUY, 1000, 45.20) == pytest.approx(1.43, abs=1e-12)
    # commission 2 bp: 45,200 × 0.0002 = 9.04; BSMV 5% of 9.04 = 0.452 -> 0.45
    commission = CommissionModel(2.0, bsmv_rate=0.05)
    assert commission.fee("THYAO", Side.BUY, 1000, 45.20) == pytest.approx(9.49, abs=1e-12)
    # total 1.43 + 9.49 = 10.92, the same for a sale (the fee is per side)
    fees = bist_default_fees(commission_bps=2.0)
    assert fees.fee("THYAO", Side.BUY, 1000, 45.20) == pytest.approx(10.92, abs=1e-12)
    assert fees.fee("THYAO", Side.SELL, 1000, 45.20) == pytest.approx(10.92, abs=1e-12)


def test_commission_without_bsmv_and_scaling() -> None:
    m = CommissionModel(2.0)
    assert m.fee("X", Side.BUY, 1000, 45.20) == pytest.approx(9.04, abs=1e-12)
    # 4 bp on 123 × 87.35 = 10,744.05 -> 4.29762 -> 4.30
    assert CommissionModel(4.0).fee("X", Side.SELL, 123, 87.35) == pytest.approx(4.30, abs=1e-12)


def test_minimum_commission_per_order() -> None:
    m = CommissionModel(2.0, minimum=5.0, bsmv_rate=0.05)
    # 100 × 10.00 = 1,000; 2 bp = 0.20 < 5.00 -> 5.00; BSMV 0.25 -> 5.25
    assert m.fee("X", Side.BUY, 100, 10.00) == pytest.approx(5.25, abs=1e-12)
    # above the minimum the rate applies: 100,000 × 50.00 = 5,000,000 × 0.0002 = 1,000 + 50 BSMV
    assert m.fee("X", Side.BUY, 100_000, 50.00) == pytest.approx(1050.0, abs=1e-9)
    assert m.fee("X", Side.BUY, 0, 50.00) == 0.0


def test_half_kurus_rounds_up() -> None:
    # 15 × 25.00 = 375.00; 2 bp = 0.075 exactly: half up gives 0.08. Python's round() on the
    # float 0.075 (just below it in binary) gives 0.07: the fee model must not.
    assert round(375.0 * 0.0002, 2) == 0.07
    assert CommissionModel(2.0).fee("X", Side.BUY, 15, 25.00) == pytest.approx(0.08, abs=1e-12)
    # 3 × 25.00 = 75.00; 2 bp = 0.015 -> 0.02
    assert CommissionModel(2.0).fee("X", Side.BUY, 3, 25.00) == pytest.approx(0.02, abs=1e-12)
    # just under half a kuruş rounds down: 74 × 1.00 × 0.0002 = 0.0148 -> 0.01
    assert CommissionModel(2.0).fee("X", Side.BUY, 74, 1.00) == pytest.approx(0.01, abs=1e-12)
    assert round_kurus(0.005) == 0.01
    assert round_kurus(0.0049999) == 0.0
    assert round_kurus(2.675) == 2.68  # float 2.675 is 2.67499999...: decimal half up


def test_bsmv_is_on_the_rounded_fee() -> None:
    # Each invoice line is rounded on its own and BSMV is taxed on the rounded fee.
    # 1,000 × 16.50 = 16,500: fee 0.495 -> 0.50; BSMV 5% of 0.50 = 0.025 -> 0.03; total 0.53.
    # (Rounding the unrounded total 0.495 × 1.05 = 0.51975 would give 0.52.)
    assert ExchangeFeeModel().fee("X", Side.BUY, 1000, 16.50) == pytest.approx(0.53, abs=1e-12)
    # 10 × 50.00 = 500: fee 0.015 -> 0.02; BSMV 0.001 -> 0.00; total 0.02
    assert ExchangeFeeModel().fee("X", Side.BUY, 10, 50.00) == pytest.approx(0.02, abs=1e-12)
    # 100 × 100.0 = 10,000: fee 0.30; BSMV 0.015 -> 0.02; total 0.32
    assert ExchangeFeeModel().fee("X", Side.BUY, 100, 100.0) == pytest.approx(0.32, abs=1e-12)


def test_commission_tiers_follow_month_to_date_value() -> None:
    tiers = (CommissionTier(1_000_000, 1.5), CommissionTier(5_000_000, 1.0))
    m = CommissionModel(2.0, tiers=tiers)
    march = ns(2024, 3, 5, 8)
    # nothing traded yet this month: base 2 bp on 400,000 = 80.00
    assert m.fee("X", Side.BUY, 10_000, 40.00, ts_ns=march) == pytest.approx(80.0)
    m.on_fill("X", Side.BUY, 10_000, 40.00, march)
    assert m.state == TierState("2024-03", 400_000.0)
    # 400,000 traded: still base
    assert m.rate_bps(ts_ns=march) == 2.0
    m.on_fill("X", Side.SELL, 20_000, 40.00, march)  # +800,000 -> 1,200,000
    assert m.rate_bps(ts_ns=march) == 1.5
    assert m.fee("X", Side.BUY, 10_000, 40.00, ts_ns=march) == pytest.approx(60.0)
    m.on_fill("X", Side.BUY, 100_000, 40.00, march)  # +4,000,000 -> 5,200,000
    assert m.fee("X", Side.BUY, 10_000, 40.00, ts_ns=march) == pytest.approx(40.0)
    # a fee asked for in April prices at month-to-date 0 without touching the state ...
    april = ns(2024, 4, 1, 8)
    assert m.fee("X", Side.BUY, 10_000, 40.00, ts_ns=april) == pytest.approx(80.0)
    assert m.state.month == "2024-03"
    # ... and the first April fill resets the state
    m.on_fill("X", Side.BUY, 1_000, 40.00, april)
    assert m.state == TierState("2024-04", 40_000.0)
    # month boundary is Istanbul time: 2024-03-31 21:30 UTC is 1 April 00:30 in Istanbul
    assert m.month_to_date(ns(2024, 3, 31, 21, 30)) == 40_000.0
    restored = CommissionModel(2.0, tiers=tiers, state=TierState.from_dict(m.state.to_dict()))
    assert restored.state == m.state


def test_composite_and_zero_fees_and_protocols() -> None:
    comp = CompositeFeeModel([CommissionModel(2.0), ExchangeFeeModel(bsmv_rate=0.0)])
    # 9.04 + 1.36
    assert comp.fee("X", Side.BUY, 1000, 45.20) == pytest.approx(10.40, abs=1e-12)
    assert ZeroFees().fee("X", Side.BUY, 1000, 45.20) == 0.0
    for m in (comp, ZeroFees(), CommissionModel(1.0), ExchangeFeeModel()):
        assert isinstance(m, FeeModel)
    for s in (NoSlippage(), SpreadSlippage(), FixedBpsSlippage(3), SquareRootImpact()):
        assert isinstance(s, SlippageModel)


def test_maker_rates() -> None:
    m = CommissionModel(2.0, maker_bps=1.0)
    assert m.fee("X", Side.BUY, 1000, 45.20, liquidity="maker") == pytest.approx(4.52)
    assert m.fee("X", Side.BUY, 1000, 45.20, liquidity="taker") == pytest.approx(9.04)


def test_incremental_fee_charges_the_minimum_once_per_order() -> None:
    m = CommissionModel(2.0, minimum=5.0)
    # an order of 3 fills of 100 @ 10.00: whole order 3,000 × 2 bp = 0.60 -> minimum 5.00
    first = incremental_fee(m, "X", Side.BUY, 0, 0.0, 100, 10.00)
    second = incremental_fee(m, "X", Side.BUY, 100, 1000.0, 100, 10.00)
    third = incremental_fee(m, "X", Side.BUY, 200, 2000.0, 100, 10.00)
    assert (first, second, third) == (5.0, 0.0, 0.0)
    # above the minimum, the parts add up to the fee of the whole order
    m2 = bist_default_fees()
    parts = [
        incremental_fee(m2, "X", Side.SELL, 0, 0.0, 333, 45.20),
        incremental_fee(m2, "X", Side.SELL, 333, 333 * 45.20, 333, 45.22),
        incremental_fee(m2, "X", Side.SELL, 666, 333 * 45.20 + 333 * 45.22, 334, 45.24),
    ]
    value = 333 * 45.20 + 333 * 45.22 + 334 * 45.24
    whole = m2.fee("X", Side.SELL, 1000, value / 1000)
    assert sum(parts) == pytest.approx(whole, abs=1e-9)


# ----------------------------------------------------------------------------- slippage

MKT = MarketConditions(mid=45.20, spread=0.04, volatility=0.02, adv=1_000_000, bar_volume=5_000)


def test_spread_and_fixed_slippage() -> None:
    assert SpreadSlippage().price(Side.BUY, 100, 45.20, MKT) == pytest.approx(45.22)
    assert SpreadSlippage().price(Side.SELL, 100, 45.20, MKT) == pytest.approx(45.18)
    # unknown spread: the fallback half spread in bp of the reference (5 bp of 45.20 = 0.0226)
    unknown = MarketConditions()
    assert SpreadSlippage(5.0).price(Side.BUY, 1, 45.20, unknown) == pytest.approx(45.2226)
    assert SpreadSlippage().price(Side.BUY, 1, 45.20, unknown) == pytest.approx(45.20)
    assert FixedBpsSlippage(10).price(Side.BUY, 1, 45.20, MKT) == pytest.approx(45.2452)
    assert FixedBpsSlippage(10).price(Side.SELL, 1, 45.20, MKT) == pytest.approx(45.1548)
    assert NoSlippage().price(Side.SELL, 1, 45.20, MKT) == 45.20


def test_square_root_impact_against_the_formula() -> None:
    # Y = 0.5, σ = 2% a day, Q = 10,000 of ADV 1,000,000: 0.5 × 0.02 × sqrt(0.01) = 0.001 = 10 bp
    m = SquareRootImpact(coefficient=0.5)
    assert m.impact(10_000, MKT) == pytest.approx(0.001)
    assert m.price(Side.BUY, 10_000, 45.20, MKT) == pytest.approx(45.2452)
    assert m.price(Side.SELL, 10_000, 45.20, MKT) == pytest.approx(45.1548)
    # four times the size, twice the impact (the square-root law)
    assert m.impact(40_000, MKT) == pytest.approx(2 * m.impact(10_000, MKT))
    # Y = 1, σ = 3%, Q = 250,000 of ADV 4,000,000: 0.03 × 0.25 = 0.0075
    big = MarketConditions(volatility=0.03, adv=4_000_000)
    assert SquareRootImpact(1.0).impact(250_000, big) == pytest.approx(0.0075)
    # capped at the band; no ADV -> the cap, not zero
    assert SquareRootImpact(1.0).impact(10**9, big) == pytest.approx(0.10)
    assert SquareRootImpact(1.0).impact(100, MarketConditions(volatility=0.02)) == 0.10
    assert m.impact(0, MKT) == 0.0


def test_adverse_rounding_to_the_tick() -> None:
    # 45.2452 on the 0.02 grid: a buy rounds up to 45.26, a sell of 45.1548 down to 45.14
    assert round_adverse(45.2452, Side.BUY, BIST_SHARE_TICKS, DAY) == pytest.approx(45.26)
    assert round_adverse(45.1548, Side.SELL, BIST_SHARE_TICKS, DAY) == pytest.approx(45.14)
    # on the grid already: unchanged either way
    assert round_adverse(45.22, Side.BUY, BIST_SHARE_TICKS, DAY) == pytest.approx(45.22)
    assert round_adverse(45.22, Side.SELL, BIST_SHARE_TICKS, DAY) == pytest.approx(45.22)
    # across a tier boundary: 49.99 up lands on 50.00
    assert round_adverse(49.99, Side.BUY, BIST_SHARE_TICKS, DAY) == pytest.approx(50.00)


def test_cost_model_bundle() -> None:
    slippage = CompositeSlippage([SpreadSlippage(), FixedBpsSlippage(10)])
    costs = CostModel(bist_default_fees(), slippage)
    # 45.20 + 0.02 (half spread) + 0.0452 (10 bp) = 45.2652 -> up to 45.28 on the 0.02 grid
    raw = costs.fill_price(Side.BUY, 1000, 45.20, MKT)
    assert raw == pytest.approx(45.2652)
    assert costs.fill_price(Side.BUY, 1000, 45.20, MKT, BIST_SHARE_TICKS, DAY) == pytest.approx(
        45.28
    )
    assert costs.fill_price(Side.SELL, 1000, 45.20, MKT, BIST_SHARE_TICKS, DAY) == pytest.approx(
        45.12  # 45.20 - 0.02 - 0.0452 = 45.1348 -> down to 45.12
    )
    assert costs.fee("X", Side.BUY, 1000, 45.20) == pytest.approx(10.92)
    with pytest.raises(ValueError, match="trading day"):
        costs.fill_price(Side.BUY, 1, 45.20, MKT, BIST_SHARE_TICKS)
    zero = no_costs()
    assert zero.fill_price(Side.BUY, 1000, 45.20, MKT) == 45.20
    assert zero.fee("X", Side.BUY, 1000, 45.20) == 0.0
    default = bist_default_costs()
    # half spread 0.02 + sqrt impact 0.5 × 0.02 × sqrt(10,000 / 1e6) × 45.20 = 0.0452
    assert default.fill_price(Side.BUY, 10_000, 45.20, MKT) == pytest.approx(45.2652)
    assert default.fee("X", Side.BUY, 1000, 45.20) == pytest.approx(10.92)


# ------------------------------------------------------------------------ Almgren-Chriss

# The worked example of Almgren and Chriss (2000), section 4: X = 10^6 shares, S0 = 50,
# σ = 0.95 TRY/share/day^0.5 (30% a year), T = 5 days in N = 5 intervals, ε = 0.0625,
# η = 2.5e-6, γ = 2.5e-7, λ = 2e-6.
X, SIGMA, T, N, TAU = 1e6, 0.95, 5.0, 5, 1.0
EPS, ETA, GAMMA, LAM = 0.0625, 2.5e-6, 2.5e-7, 2e-6
AC = AlmgrenChrissImpact(eta=ETA, gamma=GAMMA, epsilon=EPS, tau=TAU)
ETA_T = ETA - 0.5 * GAMMA * TAU  # η̃


def test_almgren_chriss_impacts() -> None:
    # 20,000 shares in one day: h = 0.0625 + 2.5e-6 × 20,000 = 0.1125 TRY/share
    assert AC.temporary_impact(20_000) == pytest.approx(0.1125)
    assert AC.price(Side.SELL, 20_000, 50.0, MarketConditions()) == pytest.approx(49.8875)
    assert AC.price(Side.BUY, 20_000, 50.0, MarketConditions()) == pytest.approx(50.1125)
    # in half a day the rate doubles: 0.0625 + 2.5e-6 × 40,000 = 0.1625
    assert AC.temporary_impact(20_000, tau=0.5) == pytest.approx(0.1625)
    # permanent: γ·n = 2.5e-7 × 20,000 = 0.005 TRY
    assert AC.permanent_impact(20_000) == pytest.approx(0.005)


def test_almgren_chriss_linear_trajectory_closed_form() -> None:
    twap = [X * (1 - k / N) for k in range(N + 1)]
    # E = ½γX² + εX + η̃X²/T = 125,000 + 62,500 + 475,000 = 662,500
    expected = 0.5 * GAMMA * X**2 + EPS * X + ETA_T * X**2 / T
    assert expected == pytest.approx(662_500.0)
    assert AC.expected_cost(twap) == pytest.approx(expected, rel=1e-12)
    # V = ⅓σ²X²T(1 - 1/N)(1 - 1/(2N))
    variance = SIGMA**2 * X**2 * T * (1 - 1 / N) * (1 - 1 / (2 * N)) / 3
    assert AC.cost_variance(twap, SIGMA) == pytest.approx(variance, rel=1e-12)


def test_almgren_chriss_optimal_trajectory_closed_form() -> None:
    # κ from cosh(κτ) = 1 + κ̃²τ²/2, κ̃² = λσ²/η̃; x_j = X sinh(κ(T - t_j)) / sinh(κT)
    kappa = math.acosh(1 + LAM * SIGMA**2 / ETA_T * TAU**2 / 2) / TAU
    optimal = [X * math.sinh(kappa * (T - j * TAU)) / math.sinh(kappa * T) for j in range(N + 1)]
    closed_e = (
        0.5 * GAMMA * X**2
        + EPS * X
        + ETA_T
        * X**2
        * math.tanh(0.5 * kappa * TAU)
        * (TAU * math.sinh(2 * kappa * T) + 2 * T * math.sinh(kappa * TAU))
        / (2 * TAU**2 * math.sinh(kappa * T) ** 2)
    )
    closed_v = (
        0.5
        * SIGMA**2
        * X**2
        * (TAU * math.sinh(kappa * T) * math.cosh(kappa * (T - TAU)) - T * math.sinh(kappa * TAU))
        / (math.sinh(kappa * T) ** 2 * math.sinh(kappa * TAU))
    )
    assert AC.expected_cost(optimal) == pytest.approx(closed_e, rel=1e-10)
    assert AC.cost_variance(optimal, SIGMA) == pytest.approx(closed_v, rel=1e-10)
    # the optimal trajectory trades some expected cost for less variance than TWAP
    twap = [X * (1 - k / N) for k in range(N + 1)]
    assert AC.expected_cost(optimal) > AC.expected_cost(twap)
    assert AC.cost_variance(optimal, SIGMA) < AC.cost_variance(twap, SIGMA)
    opt_u = AC.expected_cost(optimal) + LAM * AC.cost_variance(optimal, SIGMA)
    twap_u = AC.expected_cost(twap) + LAM * AC.cost_variance(twap, SIGMA)
    assert opt_u < twap_u


def test_almgren_chriss_needs_a_trajectory() -> None:
    with pytest.raises(ValueError):
        AC.expected_cost([X])
