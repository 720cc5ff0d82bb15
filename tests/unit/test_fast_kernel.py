"""The fast path's array kernel gives the event engine's result, and stands aside otherwise."""

from __future__ import annotations

import polars as pl
import pytest

import quant.sim.fast as fast
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.risk.limits import RiskLimits
from quant.sim.backtest import BacktestConfig, FrameBarSource, run_backtest
from quant.sim.fast import run_fast
from quant.strategies import MovingAverageCrossover

_RELAXED = RiskLimits(
    price_collar_pct=None,
    fat_finger_price_pct=None,
    fat_finger_adv_pct=None,
    max_order_to_trade_ratio=None,
    max_gross_exposure_pct=None,
    max_net_exposure_pct=None,
    allow_short=True,
)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    """Three symbols, 8 sessions of minute bars (no corporate actions given), with volumes
    lifted so the participation cap does not bind at full participation."""
    m = SyntheticMarket(SyntheticMarketConfig(n_symbols=3, n_sessions=8, seed=11))
    return m.minute_bars().with_columns(pl.col("volume") + 1_000)


def _config(**kw) -> BacktestConfig:
    settings = dict(
        session_rules="bars",
        costs="none",
        max_participation=1.0,
        mark_interval_minutes=None,
        tca=False,
        risk=_RELAXED,
        initial_cash=10_000_000.0,
    )
    settings.update(kw)
    return BacktestConfig(**settings)


def _strategy() -> MovingAverageCrossover:
    return MovingAverageCrossover(fast=5, slow=15, quantity=100, long_only=False)


def _spy(monkeypatch) -> list[bool]:
    """Records whether each ``run_fast`` call ended in the kernel (True) or fell back."""
    used: list[bool] = []
    kernel = fast._kernel

    def spy(engine, strategy):
        result = kernel(engine, strategy)
        used.append(result is not None)
        return result

    monkeypatch.setattr(fast, "_kernel", spy)
    return used


def _same(event, quick) -> None:
    assert event.error is None and quick.error is None
    for name in ("fills", "orders", "daily", "equity", "round_trips", "tca"):
        assert getattr(quick, name).equals(getattr(event, name)), name
    assert quick.extra == event.extra
    assert quick.stats.keys() == event.stats.keys()
    for key, value in event.stats.items():
        assert quick.stats[key] == value or (
            value != value and quick.stats[key] != quick.stats[key]
        )


def test_the_kernel_gives_the_engines_result_on_several_symbols(bars, monkeypatch) -> None:
    used = _spy(monkeypatch)
    cfg = _config()
    event = run_backtest(cfg, _strategy(), FrameBarSource(bars))
    quick = run_fast(cfg, _strategy(), FrameBarSource(bars))
    assert used == [True]
    assert event.fills.height > 50
    assert (event.fills["side"] == -1).any() and event.fills["symbol"].n_unique() == 3
    _same(event, quick)


def test_the_kernel_prices_money_like_the_portfolio(bars, monkeypatch) -> None:
    """Cash rounding to the kuruş on a cash amount with cents, positions marked at closes."""
    used = _spy(monkeypatch)
    cfg = _config(initial_cash=1_234_567.89)
    event = run_backtest(cfg, _strategy(), FrameBarSource(bars))
    quick = run_fast(cfg, _strategy(), FrameBarSource(bars))
    assert used == [True]
    _same(event, quick)
    # cross-check: final equity = cash + sum of signed fill values reversed + marked positions
    fills = event.fills
    value = (fills["side"].cast(pl.Float64) * fills["quantity"] * fills["price"]).sum()
    assert quick.equity["cash"][-1] == pytest.approx(1_234_567.89 - value, abs=0.01 * fills.height)


@pytest.mark.parametrize(
    "change",
    [
        {"costs": "bist"},
        {"session_rules": "exchange"},
        {"mark_interval_minutes": 30},
        {"tca": True},
        {"risk": RiskLimits(allow_short=True)},
        {"max_participation": 0.05},
        {"risk": _RELAXED.model_copy(update={"allow_short": False})},
        {"initial_cash": 1_000.0},
    ],
)
def test_outside_its_scope_the_kernel_falls_back_to_the_engine(bars, monkeypatch, change) -> None:
    used = _spy(monkeypatch)
    cfg = _config(**change)
    quick = run_fast(cfg, _strategy(), FrameBarSource(bars))
    event = run_backtest(cfg, _strategy(), FrameBarSource(bars))
    assert used in ([], [False])
    assert quick.fills.equals(event.fills)
    assert quick.orders.equals(event.orders)
    assert quick.daily.equals(event.daily)
