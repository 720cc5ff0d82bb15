"""The vectorised fast path gives the event engine's fills, orders and equity, exactly."""

from __future__ import annotations

import polars as pl
import pytest

from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.risk.limits import RiskLimits
from quant.sim.backtest import BacktestConfig, FrameBarSource, run_backtest
from quant.sim.fast import check_fast_strategy, run_fast
from quant.sim.strategy import Bar, CorporateActionEvent, StrategyContext
from quant.strategies import CrossSectionalMomentum, MovingAverageCrossover


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Six symbols, 15 sessions of minute bars, with splits, bonus issues and dividends."""
    m = SyntheticMarket(
        SyntheticMarketConfig(
            n_symbols=6, n_sessions=15, seed=5, splits_per_year=40, dividends_per_year=20
        )
    )
    actions = m.corporate_actions()
    assert actions.height >= 2
    return m.minute_bars(), actions


def _both(cfg: BacktestConfig, make, market) -> tuple:
    bars, actions = market
    event = run_backtest(cfg, make(), FrameBarSource(bars, actions))
    fast = run_fast(cfg, make(), FrameBarSource(bars, actions))
    return event, fast


@pytest.mark.parametrize("costs", ["bist", "none"])
@pytest.mark.parametrize("rules", ["exchange", "bars"])
def test_the_fast_path_gives_the_event_engines_fills(market, costs: str, rules: str) -> None:
    cfg = BacktestConfig(costs=costs, session_rules=rules, risk=RiskLimits(allow_short=True))

    def make() -> MovingAverageCrossover:
        return MovingAverageCrossover(fast=8, slow=45, target_notional=40_000.0, long_only=False)

    event, fast = _both(cfg, make, market)
    assert event.error is None and fast.error is None
    assert event.fills.height > 100
    # partial fills (participation cap) and expiries are part of what must agree
    assert (event.orders["status"] == "cancelled").any()
    assert event.fills.height > event.orders.filter(pl.col("filled_qty") > 0).height
    assert fast.fills.equals(event.fills)
    assert fast.orders.equals(event.orders)
    assert fast.daily.equals(event.daily)
    assert fast.equity.equals(event.equity)
    assert fast.round_trips.equals(event.round_trips)
    assert fast.stats == event.stats or all(
        fast.stats[k] == event.stats[k] or (fast.stats[k] != fast.stats[k]) for k in event.stats
    )
    # the fast path really skipped bars: it only shows the engine the bars that matter
    assert fast.extra["bars"] == event.extra["bars"]


def test_the_fast_path_runs_signal_strategies_only() -> None:
    with pytest.raises(TypeError, match="TargetPositionStrategy"):
        check_fast_strategy(CrossSectionalMomentum())

    class Peeking(MovingAverageCrossover):
        def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
            super().on_bar(ctx, bar)

    with pytest.raises(TypeError, match="overrides on_bar"):
        check_fast_strategy(Peeking())
    assert check_fast_strategy(MovingAverageCrossover()) is not None


def test_a_strategy_error_stops_both_paths_at_the_same_event(market) -> None:
    class Fragile(MovingAverageCrossover):
        def on_corporate_action(self, ctx: StrategyContext, event: CorporateActionEvent) -> None:
            super().on_corporate_action(ctx, event)
            raise RuntimeError(f"cannot handle a {event.kind}")

    cfg = BacktestConfig(costs="bist")
    event, fast = _both(cfg, lambda: Fragile(fast=5, slow=20, quantity=10), market)
    assert event.error is not None
    assert "on_corporate_action" in event.error and "RuntimeError" in event.error
    assert fast.error == event.error
    assert fast.fills.equals(event.fills)
