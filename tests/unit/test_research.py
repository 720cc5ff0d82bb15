"""The research pipeline: trial parameters and search spaces, the data set, the prediction
strategy, and walk-forward / CPCV evaluation (determinism, no look-ahead, resumption, bad input).

Data: a small synthetic BIST market (3 symbols, 40 sessions) resampled to 30-minute research
bars; a trial there takes about half a second.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.labels import average_uniqueness, close_series, cusum_filter, ewm_volatility
from quant.labels import triple_barrier as triple_barrier_labels
from quant.metrics import kurtosis, sharpe_ratio, skewness
from quant.research import (
    DataWindowError,
    FoldError,
    PredictionStrategy,
    ResearchDataset,
    SearchSpaceError,
    TrialParams,
    TrialResult,
    evaluate_trial,
    params_from_config,
    partial_score,
    plan_folds,
    resample_bars,
    sample_params,
    validate_space,
)
from quant.research.evaluate import evaluate_fold, fold_predictions
from quant.sim.backtest import BacktestConfig, run_backtest
from quant.sim.fast import run_fast
from quant.sim.strategy import Bar

# --------------------------------------------------------------------------- fixtures

PARAMS = TrialParams(
    bar_interval="30m",
    n_estimators=20,
    max_depth=2,
    cusum_k=1.0,
    vol_span=20,
    beta_window=20,
    momentum_window=10,
    vertical_bars=6,
    prob_threshold=0.5,
)


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(SyntheticMarketConfig(n_symbols=3, n_sessions=40, seed=1))


@pytest.fixture(scope="module")
def minute_bars(market: SyntheticMarket) -> pl.DataFrame:
    return market.minute_bars()


@pytest.fixture(scope="module")
def dataset(market: SyntheticMarket, minute_bars: pl.DataFrame) -> ResearchDataset:
    return ResearchDataset.from_frame(minute_bars, market.corporate_actions(), "30m")


@pytest.fixture(scope="module")
def walk_forward(dataset: ResearchDataset) -> tuple[TrialResult, list[int]]:
    seen: list[int] = []
    result = evaluate_trial(PARAMS, dataset, n_splits=4, on_fold=lambda f: seen.append(f.fold))
    return result, seen


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- params


def test_trial_params_round_trip_json_and_stable_id():
    p = TrialParams(pt_sl=1.5, return_windows=[1, 2], model="mlp", hidden=8)
    assert p.pt_sl == (1.5, 1.5)  # a scalar means symmetric barriers
    raw = p.model_dump(mode="json")
    again = TrialParams.model_validate(raw)
    assert again == p
    assert again.trial_id == p.trial_id
    assert len(p.trial_id) == 12
    assert TrialParams(seed=1).trial_id != TrialParams(seed=2).trial_id
    with pytest.raises(ValueError, match="whole number of minutes"):
        TrialParams(bar_interval="90s")
    with pytest.raises(ValueError, match="not understood"):
        TrialParams(bar_interval="15 minutes")
    with pytest.raises(ValueError, match="repeat"):
        TrialParams(return_windows=(1, 1))
    with pytest.raises(ValueError, match="extra"):
        TrialParams(max_dept=3)


def test_params_from_config_takes_a_sampler_config():
    p = params_from_config({"max_depth": np.int64(5), "return_windows": [2, 8], "pt_sl": 2.0})
    assert (p.max_depth, p.return_windows, p.pt_sl) == (5, (2, 8), (2.0, 2.0))
    with pytest.raises(ValueError, match=r"unknown trial parameter.*depth"):
        params_from_config({"depth": 3})


def test_validate_space_normalises_a_good_space():
    space = validate_space(
        {
            "max_depth": ("int", 2, 6),
            "n_estimators": ("int", 50, 320, 50),
            "learning_rate": ["loguniform", 0.01, 0.3],
            "model": ("choice", ["xgb", "mlp"]),
            "seed": ("fixed", 3),
        }
    )
    assert space["max_depth"] == ("int", 2, 6, 1)
    assert space["n_estimators"] == ("int", 50, 300, 50)  # the last value the grid reaches
    assert space["learning_rate"] == ("loguniform", 0.01, 0.3)
    assert space["model"] == ("choice", ["xgb", "mlp"])


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"max_depth": ("int", 6, 2)}, r"'max_depth': low 6 is above high 2"),
        ({"learning_rate": ("normal", 0.1, 0.2)}, r"'learning_rate': unknown distribution"),
        ({"model": ("choice", [])}, r"'model': the choice list is empty"),
        ({"depth": ("int", 2, 6)}, r"'depth' is not a trial parameter"),
        ({"learning_rate": ("loguniform", 0.0, 0.3)}, r"'learning_rate': 'loguniform' needs low"),
        ({"max_depth": ("int", 0, 6)}, r"'max_depth': low 0 is not a valid value"),
        ({"prob_threshold": ("uniform", 0.5, 1.5)}, r"'prob_threshold': high 1.5 is not a valid"),
        ({"max_depth": ("int", 2.5, 6)}, r"'max_depth': 'int' bounds must be integers"),
        ({"model": ("choice", ["xgb", "svm"])}, r"'model': option 'svm' is not a valid value"),
        ({"max_depth": ("int", 2)}, r"'max_depth': 'int' takes \(low, high\)"),
        ({"cusum_k": ("uniform", 1.0, float("nan"))}, r"'cusum_k': bounds must be finite"),
        ({}, r"the search space is empty"),
    ],
)
def test_validate_space_names_the_parameter_that_cannot_be_sampled(space, message):
    with pytest.raises(SearchSpaceError, match=message):
        validate_space(space)


def test_sample_params_is_seeded_and_stays_in_bounds():
    space = {
        "max_depth": ("int", 2, 6),
        "n_estimators": ("int", 50, 300, 50),
        "learning_rate": ("loguniform", 0.01, 0.3),
        "vertical_bars": ("logint", 2, 32),
        "model": ("choice", ["xgb", "mlp"]),
        "pt_sl": ("uniform", 0.5, 2.0),
    }
    draws = [sample_params(space, rng) for rng in range(50)]
    assert draws == [sample_params(space, rng) for rng in range(50)]
    assert len({d.trial_id for d in draws}) == 50
    for d in draws:
        assert 2 <= d.max_depth <= 6
        assert d.n_estimators in (50, 100, 150, 200, 250, 300)
        assert 0.01 <= d.learning_rate <= 0.3
        assert 2 <= d.vertical_bars <= 32
        assert d.pt_sl[0] == d.pt_sl[1] and 0.5 <= d.pt_sl[0] <= 2.0
    assert {d.model for d in draws} == {"xgb", "mlp"}
    assert {d.max_depth for d in draws} == {2, 3, 4, 5, 6}


# --------------------------------------------------------------------------- bars


def _minute(symbol: str, start: datetime, closes: list[float], volumes: list[int]) -> pl.DataFrame:
    n = len(closes)
    ts = [start + timedelta(minutes=k) for k in range(n)]
    return pl.DataFrame(
        {
            "ts": ts,
            "ts_end": [t + timedelta(minutes=1) for t in ts],
            "symbol": [symbol] * n,
            "open": [c - 0.01 for c in closes],
            "high": [c + 0.02 for c in closes],
            "low": [c - 0.03 for c in closes],
            "close": closes,
            "volume": volumes,
            "vwap": closes,
            "trade_count": [1] * n,
        }
    )


def test_resample_bars_aggregates_by_hand():
    start = _utc(2024, 1, 2, 7, 0)
    closes = [10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6]
    volumes = [1, 2, 3, 4, 5, 6, 7]
    bars = _minute("AAA", start, closes, volumes).filter(pl.col("close") != 10.4)  # a gap
    out = resample_bars(bars, "5m")
    assert out.height == 2
    first, second = out.row(0, named=True), out.row(1, named=True)
    assert (first["ts"], first["ts_end"]) == (start, start + timedelta(minutes=5))
    assert first["open"] == pytest.approx(9.99)
    assert first["high"] == pytest.approx(10.32)
    assert first["low"] == pytest.approx(9.97)
    assert first["close"] == 10.3  # the last minute of the interval had no trade
    assert first["volume"] == 10
    assert first["vwap"] == pytest.approx((10.0 + 10.1 * 2 + 10.2 * 3 + 10.3 * 4) / 10)
    assert first["trade_count"] == 4
    assert (second["open"], second["close"], second["volume"]) == (10.49, 10.6, 13)
    assert second["ts_end"] == start + timedelta(minutes=10)
    # bars already on the grid come back unchanged; longer bars are refused
    assert resample_bars(out, "5m").equals(out)
    with pytest.raises(ValueError, match="at least as long"):
        resample_bars(out, "1m")


# --------------------------------------------------------------------------- data set


def test_dataset_samples_are_the_labels_of_each_symbol_with_features_at_t0(dataset):
    samples = dataset.samples(PARAMS)
    events = samples.events
    assert len(samples) > 300
    assert events["t0"].is_sorted()
    assert samples.X.columns == list(samples.feature_names)
    assert set(samples.classes) == {-1, 1}  # sign mode: two classes
    # one symbol, recomputed straight from the labels module
    bars = dataset.research_bars("30m")
    sym = bars.filter(pl.col("symbol") == "SYN02").drop("day")
    close = close_series(sym)
    vol = ewm_volatility(close, span=20, min_periods=10)
    t0 = cusum_filter(close, vol * 1.0)
    labels = triple_barrier_labels(
        close,
        t0,
        target=vol * math.sqrt(6),
        pt_sl=(1.0, 1.0),
        vertical_barrier=6,
        vertical_label="sign",
    )
    labels = labels[labels["label"] != 0]
    mine = events.filter(pl.col("symbol") == "SYN02")
    assert mine["label"].to_list() == labels["label"].tolist()
    assert mine["t0"].dt.epoch("ns").to_list() == labels.index.as_unit("ns").asi8.tolist()
    assert mine["t1"].dt.epoch("ns").to_list() == labels["t1"].array.as_unit("ns").asi8.tolist()
    weights = average_uniqueness(close.index, labels["t1"]).to_numpy()
    np.testing.assert_allclose(mine["weight"].to_numpy(), weights)
    # features are the feature frame's row at (symbol, t0)
    feats = dataset.features(PARAMS)
    k = 17
    row = events.row(k, named=True)
    expected = feats.filter((pl.col("symbol") == row["symbol"]) & (pl.col("ts") == row["t0"]))
    assert expected.height == 1
    assert samples.X.row(k) == expected.select(samples.feature_names).row(0)
    # the day is the research bar's session
    assert row["day"] == row["t0"].date()


def test_research_bars_are_adjusted_for_splits_inside_the_window(dataset, market):
    split = market.corporate_actions().filter(pl.col("kind") == "split").row(0, named=True)
    raw = dataset.research_bars("30m", adjusted=False).filter(pl.col("symbol") == split["symbol"])
    adj = dataset.research_bars("30m").filter(pl.col("symbol") == split["symbol"])

    def overnight(frame: pl.DataFrame) -> float:
        before = frame.filter(pl.col("day") < split["ex_date"])["close"][-1]
        after = frame.filter(pl.col("day") == split["ex_date"])["close"][0]
        return math.log(after / before)

    assert overnight(raw) == pytest.approx(-math.log(split["ratio"]), abs=0.12)
    assert abs(overnight(adj)) < 0.12
    # and the raw bars are what the backtest trades
    assert raw["close"].to_list() != adj["close"].to_list()


def test_dataset_from_lake_reads_raw_bars_and_actions(tmp_path, market, minute_bars):
    from quant.data.lake import Lake
    from quant.data.schema import DataKind

    lake = Lake(tmp_path / "lake")
    sessions = market.sessions()
    lake.write(DataKind.BARS, minute_bars.filter(pl.col("ts").dt.date() < sessions[10]))
    lake.write(DataKind.CORPORATE_ACTIONS, market.corporate_actions())
    ds = ResearchDataset.from_lake(lake, ["SYN01", "SYN02"], sessions[0], sessions[8], "30m")
    assert ds.symbols == ["SYN01", "SYN02"]
    assert ds.sessions == sessions[:8]
    assert (
        ds.corporate_actions.height
        == market.corporate_actions().filter(pl.col("symbol").is_in(["SYN01", "SYN02"])).height
    )
    with pytest.raises(DataWindowError, match="no bars in the lake"):
        ResearchDataset.from_lake(lake, ["SYN01"], date(2030, 1, 1), date(2030, 2, 1))


# --------------------------------------------------------------------------- strategy


class _Ctx:
    """target_on_bar reads nothing from its context."""


def _bars_frame(opens_ns: list[int], closes: list[float], symbol: str = "AAA") -> pl.DataFrame:
    ts = pl.Series(opens_ns).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(opens_ns),
            "ts": ts,
            "close": closes,
            "day": [date(2024, 1, 2)] * len(opens_ns),
        }
    )


def _event_targets(strategy: PredictionStrategy, frame: pl.DataFrame) -> list[int]:
    out, current = [], 0
    for row in frame.with_columns(pl.col("ts").dt.epoch("ns")).iter_rows(named=True):
        t = row["ts"]
        bar = Bar(row["symbol"], t, t + 60_000_000_000, 0, 0, 0, row["close"], 0, 0.0)
        new = strategy.target_on_bar(_Ctx(), bar)  # type: ignore[arg-type]
        current = current if new is None else new
        out.append(current)
    return out


def test_prediction_strategy_targets_by_hand():
    opens = [100, 200, 300, 400, 500, 600, 700, 800]
    closes = [10.0, 20.0, 25.0, 40.0, 50.0, 50.0, 100.0, 20.0]
    predictions = pl.DataFrame(
        {
            "symbol": ["AAA"] * 5,
            "ts": [150, 300, 420, 600, 700],
            "p_up": [0.7, 0.8, 0.1, 0.45, 0.2],
            "p_down": [0.3, 0.2, 0.9, 0.55, 0.2],
            "expires": [10_000, 10_000, 10_000, 650, None],
        }
    )
    strat = PredictionStrategy(predictions, 0.6, position_notional=1000.0, long_only=False)
    frame = _bars_frame(opens, closes)
    signals = strat.signal_targets(frame, pl.DataFrame(schema={"symbol": pl.String}))
    # 150 -> long from the bar opening at 200 (1000 / 20 = 50 shares); 300 renews the long on
    # the bar opening at 300 (no resize); 420 -> short from 500 (1000 / 50 = 20); 600 has no
    # side over 0.6 -> flat from 600; 700 neither -> flat stays; the bar at 100 precedes all
    expected = [0, 50, 50, 50, -20, 0, 0, 0]
    assert signals.target.tolist() == expected
    assert signals.decide.tolist() == [False, True, False, False, True, True, False, False]
    fresh = PredictionStrategy(predictions, 0.6, position_notional=1000.0, long_only=False)
    assert _event_targets(fresh, frame) == expected
    # long only: the short becomes flat
    long_only = PredictionStrategy(predictions, 0.6, position_notional=1000.0)
    assert long_only.signal_targets(frame, pl.DataFrame()).target.tolist() == [
        0, 50, 50, 50, 0, 0, 0, 0,
    ]  # fmt: skip


def test_prediction_strategy_expiry_and_split():
    opens = [100, 200, 300, 400, 500]
    predictions = pl.DataFrame(
        {"symbol": ["AAA"], "ts": [100], "p_up": [0.9], "p_down": [0.1], "expires": [450]}
    )
    strat = PredictionStrategy(predictions, 0.6, position_notional=1000.0)
    frame = _bars_frame(opens, [10.0] * 5).with_columns(
        day=pl.Series([date(2024, 1, 2)] * 2 + [date(2024, 1, 3)] * 3)
    )
    actions = pl.DataFrame(
        {"symbol": ["AAA"], "ex_date": [date(2024, 1, 3)], "price_factor": [0.5],
         "share_factor": [2.0]}
    )  # fmt: skip
    signals = strat.signal_targets(frame, actions)
    # 100 shares from the bar opening at 100; a 2:1 split doubles them; expired from 500
    assert signals.target.tolist() == [100, 100, 200, 200, 0]
    assert signals.decide.tolist() == [True, False, False, False, True]


def test_prediction_strategy_refuses_bad_predictions():
    good = {"symbol": ["A"], "ts": [1], "p_up": [0.5], "p_down": [0.5]}
    with pytest.raises(ValueError, match=r"lack column.*p_down"):
        PredictionStrategy(pl.DataFrame({k: v for k, v in good.items() if k != "p_down"}))
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        PredictionStrategy(pl.DataFrame({**good, "p_up": [1.5]}))
    with pytest.raises(ValueError, match="share a symbol and time"):
        PredictionStrategy(pl.DataFrame({k: v * 2 for k, v in good.items()}))
    with pytest.raises(ValueError, match="expire before"):
        PredictionStrategy(pl.DataFrame({**good, "ts": [5], "expires": [4]}))
    with pytest.raises(ValueError, match="threshold"):
        PredictionStrategy(pl.DataFrame(good), threshold=1.0)


def test_prediction_strategy_fast_path_equals_event_engine(dataset, minute_bars):
    plan = plan_folds(PARAMS, dataset, n_splits=4)
    predictions, _, _ = fold_predictions(plan, plan.folds[1], PARAMS)
    first, last = plan.folds[1].blocks[0]
    bars = dataset.minute_window(first, last, 5)
    config = BacktestConfig(start=first, end=last + timedelta(days=1), costs="bist")

    def strategy() -> PredictionStrategy:
        return PredictionStrategy(predictions.drop("day"), 0.5, position_notional=50_000.0)

    actions = dataset.corporate_actions
    fast = run_fast(config, strategy(), bars, corporate_actions=actions)
    event = run_backtest(config, strategy(), bars, corporate_actions=actions)
    assert fast.ok and event.ok
    assert fast.fills.height > 20
    assert fast.fills.equals(event.fills)
    assert fast.daily.equals(event.daily)


def test_prediction_targets_do_not_move_when_later_bars_change(dataset):
    plan = plan_folds(PARAMS, dataset, n_splits=4)
    predictions, _, _ = fold_predictions(plan, plan.folds[0], PARAMS)
    first, last = plan.folds[0].blocks[0]
    bars = dataset.minute_window(first, last).sort("symbol", "ts")
    bars = bars.with_columns(day=pl.col("ts").dt.date())
    cut = bars["ts"].sort()[bars.height // 2]
    later = pl.col("ts") >= cut
    changed = bars.with_columns(
        pl.when(later).then(pl.col("close") * 1.37).otherwise(pl.col("close")).alias("close")
    )
    none = pl.DataFrame(
        schema={"symbol": pl.String, "ex_date": pl.Date, "share_factor": pl.Float64}
    )
    strat = PredictionStrategy(predictions.drop("day"), 0.5)
    a = strat.signal_targets(bars, none)
    b = strat.signal_targets(changed, none)
    before = ~bars.select(later).to_series().to_numpy()
    assert a.decide[before].sum() > 5
    np.testing.assert_array_equal(a.target[before], b.target[before])
    np.testing.assert_array_equal(a.decide[before], b.decide[before])
    assert not np.array_equal(a.target, b.target)  # later sizes did move


# --------------------------------------------------------------------------- evaluation


def test_evaluate_trial_walk_forward_is_deterministic(walk_forward, dataset):
    result, seen = walk_forward
    assert seen == [0, 1, 2, 3]  # on_fold after each fold, in order
    again = evaluate_trial(PARAMS, dataset, n_splits=4)
    assert again.to_dict() == result.to_dict()
    # the figures are those of the stitched daily returns
    r = np.array(result.returns)
    assert result.n_obs == len(result.days) == sum(f.test_sessions for f in result.folds)
    assert result.days == sorted(result.days) and len(set(result.days)) == len(result.days)
    assert result.sharpe == pytest.approx(sharpe_ratio(r, periods_per_year=1))
    assert result.score == pytest.approx(sharpe_ratio(r, periods_per_year=252))
    assert partial_score(result.folds) == pytest.approx(result.score)
    first_two = np.array(result.folds[0].returns + result.folds[1].returns)
    assert partial_score(result.folds[:2]) == pytest.approx(sharpe_ratio(first_two))
    assert result.folds[1].metrics()["fold_sharpe"] == result.folds[1].sharpe
    assert result.skewness == pytest.approx(skewness(r))
    assert result.kurtosis == pytest.approx(kurtosis(r))
    assert result.oos_returns.columns == ["day", "returns"]
    assert result.trades == sum(f.trades for f in result.folds) > 0
    assert result.fees > 0
    # walk-forward: each fold trains only on samples before its first test session
    plan = plan_folds(PARAMS, dataset, n_splits=4)
    for fold, res in zip(plan.folds, result.folds, strict=True):
        last_train_end = plan.samples.events["t1"][fold.train].max()
        first_test = plan.samples.events["t0"][fold.test].min()
        assert last_train_end <= first_test
        assert res.train_end < first_test
        assert res.test_start == fold.blocks[0][0]
    # JSON round trip (what a checkpoint stores)
    assert TrialResult.from_dict(result.to_dict()) == result


def test_evaluate_trial_resumes_from_completed_folds(walk_forward, dataset):
    result, _ = walk_forward
    seen: list[int] = []
    resumed = evaluate_trial(
        PARAMS,
        dataset,
        n_splits=4,
        on_fold=lambda f: seen.append(f.fold),
        completed_folds=[TrialResult.from_dict(result.to_dict()).folds[k] for k in (0, 1)],
    )
    assert seen == [2, 3]  # folds 0 and 1 were not recomputed
    assert resumed == result
    # a fold from another plan is refused
    other = result.folds[0].model_copy(update={"n_train": result.folds[0].n_train + 1})
    with pytest.raises(ValueError, match="completed fold 0 does not belong"):
        evaluate_trial(PARAMS, dataset, n_splits=4, completed_folds=[other])
    with pytest.raises(ValueError, match=r"completed folds \[7\]"):
        evaluate_trial(
            PARAMS, dataset, n_splits=4,
            completed_folds=[result.folds[0].model_copy(update={"fold": 7})],
        )  # fmt: skip


def test_evaluate_trial_cpcv_reports_path_sharpes(dataset):
    result = evaluate_trial(PARAMS, dataset, cv="cpcv", n_splits=4, backtest_bars="research")
    assert len(result.folds) == 6  # C(4, 2) splits
    assert len(result.path_sharpes) == 3  # phi = C(3, 1) paths
    assert result.days == dataset.sessions  # every session once in every path
    # every session's return on the average path is the mean over the splits testing it
    by_day: dict[date, list[float]] = {}
    for fold in result.folds:
        for d, r in zip(fold.days, fold.returns, strict=True):
            by_day.setdefault(d, []).append(r)
    assert all(len(v) == 3 for v in by_day.values())
    np.testing.assert_allclose(result.returns, [np.mean(by_day[d]) for d in result.days])
    assert {f.test_groups for f in result.folds} == {
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)
    }  # fmt: skip


def test_folds_do_not_look_ahead(dataset, minute_bars, market):
    """Change every bar after fold 1's last test session: folds 0 and 1 predict, trade and earn
    exactly the same. (Actions after that day are left out of both data sets: back-adjusting
    for them rescales earlier prices by a constant, which the scale-free features ignore only
    up to rounding.)"""
    plan = plan_folds(PARAMS, dataset, n_splits=4)
    cut_day = plan.folds[1].blocks[-1][1]
    actions = market.corporate_actions().filter(pl.col("ex_date") <= cut_day)
    base = ResearchDataset.from_frame(minute_bars, actions, "30m")
    rng = np.random.default_rng(5)
    after = pl.col("ts").dt.date() > cut_day
    factor = pl.Series(rng.uniform(0.8, 1.25, minute_bars.height))
    moved = minute_bars.with_columns(
        *[
            pl.when(after).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
            for c in ("open", "close", "vwap")
        ],
        pl.when(after).then(pl.col("volume") * 3).otherwise(pl.col("volume")).alias("volume"),
    ).with_columns(
        pl.max_horizontal("open", "high", "close").alias("high"),
        pl.min_horizontal("open", "low", "close").alias("low"),
    )
    perturbed = ResearchDataset.from_frame(moved, actions, "30m")
    plans = [plan_folds(PARAMS, d, n_splits=4) for d in (base, perturbed)]
    assert [f.blocks for f in plans[0].folds] == [f.blocks for f in plans[1].folds]
    for k in (0, 1):
        outs = [
            evaluate_fold(p, p.folds[k], PARAMS, d)
            for p, d in zip(plans, (base, perturbed), strict=True)
        ]
        (res_a, pred_a), (res_b, pred_b) = outs
        assert pred_a.height > 50
        assert pred_a.drop("expires").equals(pred_b.drop("expires"))
        # a label ending after the cut may end elsewhere, but never before it
        ends = pred_a.select("expires", e2=pred_b["expires"])
        cut_ts = datetime(cut_day.year, cut_day.month, cut_day.day, tzinfo=UTC) + timedelta(1)
        differ = ends.filter(pl.col("expires") != pl.col("e2"))
        assert (differ["expires"] >= cut_ts).all() and (differ["e2"] >= cut_ts).all()
        assert res_a.returns == res_b.returns
        assert (res_a.trades, res_a.fees, res_a.n_train) == (
            res_b.trades,
            res_b.fees,
            res_b.n_train,
        )
    # and the future did change: the last fold's features differ
    last = [p.samples.X[p.folds[3].test] for p in plans]
    assert not last[0].equals(last[1])


# --------------------------------------------------------------------------- bad input


def test_too_short_window_says_how_many_sessions_are_needed(minute_bars):
    days = minute_bars["ts"].dt.date().unique().sort()
    short = ResearchDataset.from_frame(minute_bars.filter(pl.col("ts").dt.date() <= days[7]))
    with pytest.raises(DataWindowError, match=r"needs at least 10 sessions.*the window has 8"):
        evaluate_trial(PARAMS, short, n_splits=4)
    with pytest.raises(DataWindowError, match=r"CPCV with 6 groups needs at least 12 sessions"):
        evaluate_trial(PARAMS, short, cv="cpcv", n_splits=6)
    few = TrialParams(**{**PARAMS.model_dump(), "cusum_k": 6.0})
    middling = ResearchDataset.from_frame(
        minute_bars.filter(pl.col("ts").dt.date() <= days[11]), bar_interval="30m"
    )
    with pytest.raises(FoldError, match=r"fold 0 \(test sessions .*\) has \d+ training samples"):
        evaluate_trial(few, middling, n_splits=4)


def test_a_fold_with_one_class_is_named(minute_bars):
    """Prices rise steadily for the first half of the window and fall after: the first
    walk-forward fold trains on rising prices only, whose labels are all profit-takes."""
    one = minute_bars.filter(pl.col("symbol") == "SYN02").sort("ts")
    n = one.height
    k = np.arange(n)
    wiggle = np.where(k % 2 == 0, 1.0, -1.0) * 2e-4
    drift = np.where(k < n // 2, 3e-4, -3e-4)
    path = 100.0 * np.exp(np.cumsum(drift + wiggle))
    price = pl.Series(np.round(path, 2))
    bars = one.with_columns(
        open=price, high=price + 0.01, low=price - 0.01, close=price, vwap=price
    )
    ds = ResearchDataset.from_frame(bars, bar_interval="30m")
    with pytest.raises(FoldError, match=r"fold 0 \(test sessions .*\): .* all of class \[1\]"):
        evaluate_trial(PARAMS, ds, n_splits=4)


def test_bad_arguments(dataset):
    with pytest.raises(ValueError, match="cv must be"):
        evaluate_trial(PARAMS, dataset, cv="kfold")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="costs must be"):
        evaluate_trial(PARAMS, dataset, costs="free")
    with pytest.raises(ValueError, match="n_splits"):
        evaluate_trial(PARAMS, dataset, cv="cpcv", n_splits=1)


def test_event_engine_gives_the_same_trial(walk_forward, dataset):
    result, _ = walk_forward
    assert evaluate_trial(PARAMS, dataset, n_splits=4, engine="event") == result
