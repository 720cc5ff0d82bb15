"""The reference strategies: the moving-average crossover (against a hand-worked path and
against backtrader) and cross-sectional momentum (selection, weights, sells before buys)."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant.data.schema import conform, polars_schema
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.sim.backtest import BacktestConfig, FrameBarSource, action_events, run_backtest
from quant.sim.strategy import Bar, CorporateActionEvent
from quant.strategies import (
    STRATEGIES,
    CrossSectionalMomentum,
    MovingAverageCrossover,
    make_strategy,
)

NS = 1_000_000_000


def daily(symbol: str, opens: list[float], closes: list[float], start=date(2023, 1, 2)):
    """Daily bars (UTC midnight to midnight) on consecutive weekdays."""
    days, day = [], start
    while len(days) < len(closes):
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    rows = []
    for d, o, c in zip(days, opens, closes, strict=True):
        ts = datetime(d.year, d.month, d.day, tzinfo=UTC)
        hi, lo = max(o, c), min(o, c)
        rows.append((ts, ts + timedelta(days=1), symbol, o, hi, lo, c, 1_000_000, c, 100))
    frame = pl.DataFrame(
        rows,
        schema=["ts", "ts_end", "symbol", "open", "high", "low", "close", "volume", "vwap", "n"],
        orient="row",
    ).rename({"n": "trade_count"})
    return conform(frame.with_columns(pl.col("ts", "ts_end").dt.cast_time_unit("ns")), "bars")


def plain(**kw) -> BacktestConfig:
    """Costs off, no calendar: the bar sequence is the market (as in backtrader)."""
    base = {
        "costs": "none",
        "calendar": None,
        "session_rules": "bars",
        "max_participation": 1.0,
        "price_bands": False,
        "mark_interval_minutes": None,
        "tca": False,
    }
    base.update(kw)
    return BacktestConfig(**base)


def trades(result) -> list[tuple[int, int, float]]:
    """(bar index by fill day, signed quantity, price) of every fill."""
    first = result.daily["day"][0]
    out = []
    for ts, side, qty, price in result.fills.select("ts", "side", "quantity", "price").rows():
        day = (ts - timedelta(days=1)).date()  # fills are stamped at the bar's close
        out.append((np.busday_count(first, day), side * qty, price))
    return out


# --------------------------------------------------------------------------- MA crossover


def test_registry_knows_both_reference_strategies() -> None:
    assert set(STRATEGIES) == {"ma_crossover", "momentum"}
    assert isinstance(make_strategy("ma_crossover", fast=3, slow=7), MovingAverageCrossover)
    with pytest.raises(ValueError, match="known strategies: ma_crossover, momentum"):
        make_strategy("nope")
    with pytest.raises(ValueError, match="fast < slow"):
        MovingAverageCrossover(fast=5, slow=5)
    with pytest.raises(ValueError, match="not both"):
        MovingAverageCrossover(quantity=1, target_notional=10.0)


CLOSES = [10.0, 10.0, 10.0, 12.0, 14.0, 12.0, 10.0, 8.0, 10.0, 12.0, 14.0, 15.0]
OPENS = [c + 0.5 for c in CLOSES]


def test_crossover_on_a_hand_worked_path_long_only() -> None:
    # SMA(2) - SMA(3) from bar 2: 0, +1/3, +1, +1/3, -1, -1, -1/3, +1, +1, ...
    # bar 3 only sets the state (no cross before it); bar 6 crosses down (flat already: no
    # trade); bar 9 crosses up: buy, filled at bar 10's open.
    result = run_backtest(
        plain(), MovingAverageCrossover(2, 3, quantity=7), FrameBarSource(daily("X", OPENS, CLOSES))
    )
    assert trades(result) == [(10, 7, 14.5)]


def test_crossover_on_a_hand_worked_path_long_short() -> None:
    result = run_backtest(
        plain(risk={"allow_short": True}),
        MovingAverageCrossover(2, 3, quantity=7, long_only=False),
        FrameBarSource(daily("X", OPENS, CLOSES)),
    )
    assert trades(result) == [(7, -7, 8.5), (10, 14, 14.5)]
    assert result.round_trips["pnl"].to_list() == [pytest.approx(7 * (8.5 - 14.5))]


def test_a_tie_keeps_the_state_and_only_a_change_of_sign_crosses() -> None:
    # SMA(2) - SMA(3) from bar 2: +1/2, +1/3, 0, +1/6, +1/6, -1/2, -1/3, 0, +1/6, +1/2, +1/2
    # "+, 0, +" (bars 3-5) is no cross; "-, 0, +" (bars 8-10) crosses up at bar 10
    closes = [10.0, 11.0, 12.0, 12.0, 12.0, 13.0, 12.0, 11.0, 11.0, 11.0, 12.0, 13.0, 14.0]
    result = run_backtest(
        plain(risk={"allow_short": True}),
        MovingAverageCrossover(2, 3, quantity=1, long_only=False),
        FrameBarSource(daily("X", [c + 0.25 for c in closes], closes)),
    )
    assert trades(result) == [(8, -1, 11.25), (11, 2, 13.25)]


def test_a_signal_on_the_last_bar_never_fills() -> None:
    result = run_backtest(
        plain(),
        MovingAverageCrossover(2, 3, quantity=7),
        FrameBarSource(daily("X", OPENS[:10], CLOSES[:10])),  # the cross up is on bar 9
    )
    assert result.fills.height == 0
    assert result.orders["status"].to_list() == ["cancelled"]
    assert "ended before the next session" in result.orders["reason"][0]


def _reference_crosses(closes: np.ndarray, fast: int, slow: int) -> tuple[list, bool]:
    """Crossings computed independently with pandas rolling means (floats)."""
    import pandas as pd

    s = pd.Series(closes)
    diff = (s.rolling(fast).mean() - s.rolling(slow).mean()).to_numpy()
    tie = bool(np.any(np.abs(diff[slow - 1 :]) < 1e-9))
    out, last = [], 0.0
    for k in range(slow - 1, len(closes)):
        d = diff[k]
        if d > 0 and last < 0:
            out.append((k, 1))
        elif d < 0 and last > 0:
            out.append((k, -1))
        if d != 0:
            last = d
    return out, tie


def test_crossover_trades_match_backtrader_with_costs_off() -> None:
    bt = pytest.importorskip("backtrader")
    import pandas as pd

    rng = random.Random(42)
    closes, opens, price = [], [], 15.0
    for _ in range(400):
        opens.append(round(price + rng.choice([-0.02, -0.01, 0.0, 0.01, 0.02]), 2))
        price = round(min(max(price + rng.gauss(0, 0.15), 10.5), 19.5), 2)
        closes.append(price)
    crosses, tie = _reference_crosses(np.array(closes), 5, 20)
    assert not tie and len(crosses) > 10  # the premise: no exact ties, many crossings
    frame = daily("X", opens, closes)
    ours = run_backtest(plain(), MovingAverageCrossover(5, 20, quantity=100), FrameBarSource(frame))

    class Cross(bt.Strategy):
        def __init__(self) -> None:
            fast = bt.ind.SMA(self.data.close, period=5)
            slow = bt.ind.SMA(self.data.close, period=20)
            self.cross = bt.ind.CrossOver(fast, slow)
            self.fills: list[tuple[date, int, float]] = []

        def notify_order(self, order) -> None:
            if order.status == order.Completed:
                when = bt.num2date(order.executed.dt).date()
                self.fills.append((when, int(order.executed.size), order.executed.price))

        def next(self) -> None:
            if self.cross > 0 and not self.position:
                self.buy(size=100)
            elif self.cross < 0 and self.position:
                self.close()

    df = frame.select("ts", "open", "high", "low", "close", "volume").to_pandas()
    df = df.set_index(pd.DatetimeIndex(df["ts"].dt.tz_localize(None))).drop(columns="ts")
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(Cross)
    cerebro.broker.setcash(1_000_000.0)
    (strategy,) = cerebro.run()
    theirs = strategy.fills
    mine = [
        ((ts - timedelta(days=1)).date(), side * qty, price)
        for ts, side, qty, price in ours.fills.select("ts", "side", "quantity", "price").rows()
    ]
    assert len(mine) == len(theirs) > 10
    for (d1, q1, p1), (d2, q2, p2) in zip(mine, theirs, strict=True):
        assert (d1, q1) == (d2, q2)
        assert p1 == pytest.approx(p2, abs=1e-9)
    # and both agree with the independent pandas computation of the crossings
    ups = [k + 1 for k, sign in crosses if sign > 0]
    assert [i for i, (_, q, _) in enumerate(mine) if q > 0] == list(range(0, len(mine), 2))
    first = frame["ts"][0].date()
    buy_bars = [np.busday_count(first, d) for d, q, _ in mine if q > 0]
    assert set(buy_bars) <= set(ups)


def _sequential_targets(
    strategy: MovingAverageCrossover, bars: pl.DataFrame, events: pl.DataFrame
) -> np.ndarray:
    """Targets from feeding the rows one by one (with the actions before their ex-date)."""
    out = np.zeros(bars.height, dtype=np.int64)
    k = 0
    for (symbol,), part in bars.group_by("symbol", maintain_order=True):
        acts = events.filter(pl.col("symbol") == symbol).sort("ex_date").rows(named=True)
        target = 0
        for row in part.iter_rows(named=True):
            while acts and acts[0]["ex_date"] <= row["day"]:
                a = acts.pop(0)
                strategy.targets[symbol] = target
                strategy.on_corporate_action(
                    None,  # type: ignore[arg-type]
                    CorporateActionEvent(
                        symbol,
                        a["ex_date"],
                        "x",
                        None,
                        None,
                        None,
                        a["price_factor"],
                        a["share_factor"],
                    ),
                )
                target = strategy.targets.get(symbol, 0)
            bar = Bar(
                symbol,
                0,
                0,
                row["open"],
                row["high"],
                row["low"],
                row["close"],
                row["volume"],
                row["vwap"],
                row["trade_count"],
            )
            new = strategy.target_on_bar(None, bar)  # type: ignore[arg-type]
            if new is not None:
                target = new
            out[k] = target
            k += 1
    return out


@pytest.mark.parametrize(
    "params",
    [
        {"fast": 3, "slow": 8, "quantity": 10},
        {"fast": 5, "slow": 40, "target_notional": 25_000.0, "long_only": False},
    ],
)
def test_vectorised_targets_equal_the_bar_by_bar_targets(params) -> None:
    m = SyntheticMarket(
        SyntheticMarketConfig(
            n_symbols=4, n_sessions=12, seed=8, splits_per_year=60, dividends_per_year=40
        )
    )
    bars = m.minute_bars().with_columns(pl.col("ts").dt.date().alias("day")).sort("symbol", "ts")
    # actions priced as the engine prices them, including two within one window
    actions = m.corporate_actions()
    extra = pl.DataFrame(
        {
            "symbol": [bars["symbol"][0]],
            "ex_date": [bars["day"].unique().sort()[3]],
            "kind": ["split"],
            "ratio": [3.0],
            "price": [None],
            "amount": [None],
        }
    ).cast(dict(polars_schema("corporate_actions")))
    actions = pl.concat([actions, extra]).unique(["symbol", "ex_date", "kind"])
    last: dict[str, float] = {}
    rows = []
    for (day,), part in bars.group_by("day", maintain_order=True):
        due = actions.filter(pl.col("ex_date") == day)
        for _, symbol, pf, sf, _ in action_events(due, last):
            rows.append((symbol, day, pf, sf))
        last.update(dict(part.group_by("symbol").agg(pl.col("close").last()).iter_rows()))
    events = pl.DataFrame(
        rows, schema=["symbol", "ex_date", "price_factor", "share_factor"], orient="row"
    )
    assert events.height >= 3 and (events["share_factor"] != 1.0).any()
    vectorised = MovingAverageCrossover(**params).signal_targets(bars, events)
    sequential = _sequential_targets(MovingAverageCrossover(**params), bars, events)
    assert np.count_nonzero(sequential) > 100
    np.testing.assert_array_equal(vectorised.target, sequential)
    changes = np.flatnonzero(vectorised.decide)
    assert changes.size > 5


# ---------------------------------------------------------------------------- momentum


def _momentum_market() -> pl.DataFrame:
    """Four symbols: A rises fast, B rises slowly then falls, C is flat then rises, D falls."""
    n = 12
    a = [100.0 * 1.03**k for k in range(n)]
    b = [100.0 * 1.01**k for k in range(6)] + [
        100.0 * 1.01**5 * 0.97 ** (k - 5) for k in range(6, n)
    ]
    c = [100.0] * 6 + [100.0 * 1.04 ** (k - 5) for k in range(6, n)]
    d = [100.0 * 0.98**k for k in range(n)]
    frames = []
    for name, path in (("A", a), ("B", b), ("C", c), ("D", d)):
        closes = [round(p, 2) for p in path]
        frames.append(daily(name, closes, closes))
    return pl.concat(frames)


def test_momentum_buys_the_top_k_at_the_next_open_with_equal_weights() -> None:
    data = _momentum_market()
    strat = CrossSectionalMomentum(lookback=3, top_k=2, holding=1, gross=0.9, min_trade=0.0)
    result = run_backtest(plain(), strat, FrameBarSource(data))
    first = result.fills.sort("ts").head(2)
    assert first["symbol"].to_list() == ["A", "B"]
    assert (first["side"] == 1).all()
    # decided at the close of the 4th session (closes known for 4 days = lookback + 1)
    closes = data.filter(pl.col("ts").dt.date() == date(2023, 1, 5)).sort("symbol")
    close = dict(closes.select("symbol", "close").iter_rows())
    expected = [math.floor(0.5 * 0.9 * 1_000_000 / close[s]) for s in ("A", "B")]
    assert first["quantity"].to_list() == expected
    assert first["ts"].dt.date().to_list() == [date(2023, 1, 7)] * 2  # 6 Jan's bar closes


def test_momentum_sells_before_it_buys_when_the_leaders_change() -> None:
    data = _momentum_market()
    strat = CrossSectionalMomentum(lookback=3, top_k=2, holding=1, gross=0.9, min_trade=0.0)
    result = run_backtest(plain(), strat, FrameBarSource(data))
    b_sell = result.fills.filter((pl.col("symbol") == "B") & (pl.col("side") == -1))
    c_buy = result.fills.filter((pl.col("symbol") == "C") & (pl.col("side") == 1))
    assert b_sell.height >= 1 and c_buy.height >= 1
    # the purchase waits for the sale's execution, one bar later on daily bars
    assert c_buy["ts"].min() > b_sell["ts"].min()
    assert result.stats["rejects"] == 0
    # never more invested than the equity: no short cash
    assert result.equity["cash"].min() >= 0


def test_momentum_inverse_volatility_weights_and_overlapping_cohorts() -> None:
    strat = CrossSectionalMomentum(
        lookback=4, top_k=2, holding=2, weighting="inverse_vol", min_trade=0.0
    )
    history = {
        "A": [100.0, 102.0, 101.0, 105.0, 110.0],  # +10%, volatile
        "B": [100.0, 101.0, 102.0, 103.0, 104.0],  # +4%, calm
        "C": [100.0, 100.5, 100.0, 100.5, 101.0],  # +1%
    }
    for name, closes in history.items():
        strat._closes[name] = __import__("collections").deque(closes, maxlen=5)
    cohort = strat._form_cohort()
    assert cohort is not None and set(cohort) == {"A", "B"}

    def vol(xs: list[float]) -> float:
        r = np.diff(xs) / np.array(xs[:-1])
        return float(np.std(r, ddof=1))

    inv = {s: 1 / vol(history[s]) for s in ("A", "B")}
    total = sum(inv.values())
    assert cohort["A"] == pytest.approx(inv["A"] / total)
    assert cohort["B"] == pytest.approx(inv["B"] / total)
    strat._cohorts.append({"C": 1.0})
    strat._cohorts.append(cohort)
    weights = strat._weights()
    assert weights["C"] == pytest.approx(0.5)
    assert weights["A"] + weights["B"] == pytest.approx(0.5)


def test_momentum_long_short_has_a_short_side() -> None:
    strat = CrossSectionalMomentum(lookback=2, top_k=1, long_short=True)
    for name, closes in {"A": [1.0, 1.1, 1.2], "B": [1.0, 1.0, 1.0], "C": [1.0, 0.9, 0.8]}.items():
        strat._closes[name] = __import__("collections").deque(closes, maxlen=3)
    assert strat._form_cohort() == {"A": 1.0, "C": -1.0}
