"""BIST rules at their edges: tick-table boundaries, band limits, session phases, half days."""

from datetime import date, datetime, time, timedelta

import numpy as np
import pytest

from quant.market import (
    BIST_SHARE_TICKS,
    CircuitBreakers,
    Instrument,
    PriceBand,
    RoundingMode,
    SessionPhase,
    TickSchedule,
    TickSizeTable,
    TickTier,
    TradingCalendar,
)

NEW = date(2024, 1, 2)  # under the August 2023 table
OLD = date(2022, 6, 1)  # under the four-tier table


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar()


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (0.01, 0.01),
        (19.99, 0.01),
        (20.00, 0.02),
        (49.98, 0.02),
        (50.00, 0.05),
        (99.95, 0.05),
        (100.0, 0.10),
        (249.9, 0.10),
        (250.0, 0.25),
        (499.75, 0.25),
        (500.0, 0.50),
        (999.5, 0.50),
        (1000.0, 1.00),
        (2499.0, 1.00),
        (2500.0, 2.50),
        (10000.0, 2.50),
    ],
)
def test_tick_size_at_every_tier_boundary(price: float, tick: float) -> None:
    assert BIST_SHARE_TICKS.tick_size(price, NEW) == pytest.approx(tick)
    assert BIST_SHARE_TICKS.is_on_tick(price, NEW)


def test_old_table_has_four_tiers_and_is_chosen_by_date() -> None:
    assert len(BIST_SHARE_TICKS.schedule_on(OLD).tiers) == 4
    assert len(BIST_SHARE_TICKS.schedule_on(NEW).tiers) == 8
    # 300 TRY moved from 0.10 to 0.25 ticks in August 2023.
    assert BIST_SHARE_TICKS.tick_size(300.0, OLD) == pytest.approx(0.10)
    assert BIST_SHARE_TICKS.tick_size(300.0, NEW) == pytest.approx(0.25)
    assert BIST_SHARE_TICKS.is_on_tick(300.1, OLD)
    assert not BIST_SHARE_TICKS.is_on_tick(300.1, NEW)
    # The switch happens exactly on the effective date.
    switch = BIST_SHARE_TICKS.schedules[1].effective_from
    assert BIST_SHARE_TICKS.tick_size(300.0, switch - timedelta(days=1)) == pytest.approx(0.10)
    assert BIST_SHARE_TICKS.tick_size(300.0, switch) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("price", "mode", "expected"),
    [
        (49.99, RoundingMode.UP, 50.00),  # top of the 0.02 tier rounds onto the next tier
        (49.99, RoundingMode.DOWN, 49.98),
        (49.99, RoundingMode.NEAREST, 50.00),
        (19.995, RoundingMode.NEAREST, 20.00),
        (20.01, RoundingMode.DOWN, 20.00),
        (20.01, RoundingMode.UP, 20.02),
        (250.1, RoundingMode.NEAREST, 250.0),
        (250.13, RoundingMode.NEAREST, 250.25),
        (2501.0, RoundingMode.DOWN, 2500.0),
        (2501.0, RoundingMode.UP, 2502.5),
        (2499.4, RoundingMode.UP, 2500.0),
        (12.34, RoundingMode.UP, 12.34),  # already on the grid: unchanged in every mode
        (0.004, RoundingMode.DOWN, 0.01),  # never rounds to zero
    ],
)
def test_round_to_tick(price: float, mode: RoundingMode, expected: float) -> None:
    result = BIST_SHARE_TICKS.round_to_tick(price, NEW, mode)
    assert result == pytest.approx(expected, abs=1e-9)
    assert BIST_SHARE_TICKS.is_on_tick(result, NEW)


def test_round_to_tick_rejects_bad_prices() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            BIST_SHARE_TICKS.round_to_tick(bad, NEW)


def test_on_tick_mask_matches_scalar_check() -> None:
    rng = np.random.default_rng(7)
    grid = np.array([BIST_SHARE_TICKS.round_to_tick(p, NEW) for p in rng.uniform(1, 4000, 500)])
    off = grid + 0.003
    prices = np.concatenate([grid, off, [np.nan, -5.0, 0.0]])
    mask = BIST_SHARE_TICKS.on_tick_mask(prices, NEW)
    expected = [BIST_SHARE_TICKS.is_on_tick(p, NEW) if np.isfinite(p) else False for p in prices]
    assert mask.tolist() == expected
    assert mask[:500].all() and not mask[500:].any()


def test_schedule_validation() -> None:
    with pytest.raises(ValueError, match="not on the"):
        TickSchedule(date(2020, 1, 1), (TickTier(0, 0.05), TickTier(20.01, 0.1)))
    with pytest.raises(ValueError, match="no tick schedule"):
        BIST_SHARE_TICKS.schedule_on(date(1990, 1, 1))
    es = TickSizeTable.fixed(0.25)
    assert es.is_on_tick(1650.75, NEW) and not es.is_on_tick(1650.1, NEW)


def test_daily_band_rounds_inward_and_limit_is_tradable() -> None:
    band = PriceBand().daily(19.50, NEW)
    # 19.50 * 1.1 = 21.45 is off the 0.02 grid -> rounded down; 17.55 is on the 0.01 grid.
    assert band.upper == pytest.approx(21.44)
    assert band.lower == pytest.approx(17.55)
    assert band.contains(21.44) and not band.contains(21.46)
    assert band.contains(17.55) and not band.contains(17.54)
    assert BIST_SHARE_TICKS.is_on_tick(band.upper, NEW)


def test_band_base_price_is_the_rounded_previous_close() -> None:
    band = PriceBand().daily(100.04, NEW)  # base 100.0 on the 0.10 grid
    assert band.reference == pytest.approx(100.0)
    assert (band.lower, band.upper) == pytest.approx((90.0, 110.0))
    # Exactly on the limit is allowed; one tick past is not.
    assert band.contains(110.0) and not band.contains(110.1)


def test_closing_band_is_three_percent_and_inside_daily() -> None:
    pb = PriceBand()
    daily = pb.daily(100.0, NEW)
    closing = pb.closing(109.0, NEW, daily=daily)
    assert closing.lower == pytest.approx(105.8)  # 109 * 0.97 = 105.73 -> up to 105.8
    assert closing.upper == pytest.approx(110.0)  # 112.27 capped by the daily limit


@pytest.mark.parametrize(
    ("local", "phase"),
    [
        ("09:39:59", SessionPhase.CLOSED),
        ("09:40:00", SessionPhase.OPENING_AUCTION),
        ("09:54:59", SessionPhase.OPENING_AUCTION),
        ("09:55:00", SessionPhase.OPENING_UNCROSS),
        ("10:00:00", SessionPhase.CONTINUOUS),
        ("17:59:59", SessionPhase.CONTINUOUS),
        ("18:00:00", SessionPhase.CLOSING_PRICE_PUBLICATION),
        ("18:01:00", SessionPhase.CLOSING_AUCTION),
        ("18:05:00", SessionPhase.CLOSING_UNCROSS),
        ("18:08:00", SessionPhase.TRADES_AT_CLOSE),
        ("18:09:59", SessionPhase.TRADES_AT_CLOSE),
        ("18:10:00", SessionPhase.CLOSED),
    ],
)
def test_phase_edges_on_a_full_day(calendar: TradingCalendar, local: str, phase: SessionPhase):
    from quant.market import ISTANBUL

    ts = datetime.combine(NEW, time.fromisoformat(local), ISTANBUL)
    assert calendar.phase_at(ts) is phase


def test_naive_timestamps_are_utc(calendar: TradingCalendar) -> None:
    assert calendar.phase_at(datetime(2024, 1, 2, 7, 0)) is SessionPhase.CONTINUOUS  # 10:00 local
    assert calendar.phase_at(datetime(2024, 1, 2, 6, 59)) is SessionPhase.OPENING_UNCROSS


def test_half_day(calendar: TradingCalendar) -> None:
    day = date(2024, 4, 9)  # eve of Ramadan Bayram
    assert calendar.is_session(day) and calendar.is_half_day(day)
    info = calendar.session(day)
    assert info is not None and info.continuous_window.end == time(12, 30)
    from quant.market import ISTANBUL

    at = lambda hm: calendar.phase_at(datetime.combine(day, time.fromisoformat(hm), ISTANBUL))  # noqa: E731
    assert at("12:29") is SessionPhase.CONTINUOUS
    assert at("12:30") is SessionPhase.CLOSING_PRICE_PUBLICATION
    assert at("12:38") is SessionPhase.TRADES_AT_CLOSE
    assert at("12:40") is SessionPhase.CLOSED
    assert at("15:00") is SessionPhase.CLOSED


def test_holidays_and_session_counts(calendar: TradingCalendar) -> None:
    assert not calendar.is_session(date(2024, 4, 10))  # Ramadan Bayram
    assert calendar.session(date(2024, 4, 10)) is None
    assert calendar.phase_at(datetime(2024, 4, 10, 8, 0)) is SessionPhase.CLOSED
    assert calendar.session(date(2024, 1, 6)) is None  # Saturday
    sessions = calendar.sessions(date(2024, 1, 1), date(2024, 12, 31))
    assert len(sessions) == 250  # BIST.md: 250 sessions in 2024
    assert len(calendar.holidays(date(2024, 1, 1), date(2024, 12, 31))) == 12
    assert calendar.next_session(date(2024, 4, 10)) == date(2024, 4, 15)
    assert calendar.previous_session(date(2024, 4, 15)) == date(2024, 4, 9)


def test_calendar_range_is_checked(calendar: TradingCalendar) -> None:
    with pytest.raises(ValueError, match="outside the XIST calendar"):
        calendar.is_session(date(1950, 1, 1))


def test_circuit_breaker_rules_by_date() -> None:
    cb = CircuitBreakers()
    new, old = cb.rule_on(date(2025, 9, 1)), cb.rule_on(date(2025, 8, 29))
    assert new.single_stock_auction == timedelta(minutes=10)
    assert [s.drop_pct for s in new.market_wide_stages] == [0.06]
    assert [s.drop_pct for s in old.market_wide_stages] == [0.05, 0.07]
    assert cb.single_stock_triggered(105.0, 100.0, NEW)
    assert not cb.single_stock_triggered(104.9, 100.0, NEW)
    assert cb.single_stock_triggered(95.0, 100.0, NEW)


def test_instrument_validation() -> None:
    assert Instrument("AKBNK").tick_table is BIST_SHARE_TICKS
    with pytest.raises(ValueError):
        Instrument("BAD SYMBOL")
    with pytest.raises(ValueError):
        Instrument("AKBNK", lot_size=0)
