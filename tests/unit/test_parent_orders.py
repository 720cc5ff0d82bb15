"""Parent orders as the router journals them: algorithm specs, slicer events through JSON, and a
restart that regenerates the same children from the journaled inputs."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest

from actors.parent_orders import (
    AlgoSpec,
    ParentSpecError,
    event_from_dict,
    event_to_dict,
    market_from_dict,
    market_to_dict,
    markets_from_bars,
    started_from_payload,
    started_payload,
    vwap_profile_params,
)
from quant.execution.algos import MarketState
from quant.execution.orders import ExecutionReport, Order, OrderStatus, OrderType, Side
from quant.execution.routing import ParentOrderSlicer, SliceEvent
from quant.market.bands import Band
from quant.market.calendar import SessionPhase
from quant.sim.strategy import Bar

MIN = 60 * 1_000_000_000
T0 = 1_704_353_400_000_000_000  # 2024-01-04 10:30 Istanbul, continuous trading
DAY = date(2024, 1, 4)


def _bar(symbol: str, ts_end: int, close: float, volume: int = 1000) -> Bar:
    return Bar(symbol, ts_end - MIN, ts_end, close, close, close, close, volume)


def _spec(**extra: object) -> AlgoSpec:
    return AlgoSpec("twap", {"slices": 4, "start_ns": T0, "end_ns": T0 + 40 * MIN, **extra})


def test_specs_build_each_algorithm_and_refuse_bad_ones() -> None:
    assert _spec().build().name == "twap"
    vwap = AlgoSpec("vwap", {"bucket_minutes": 60, "full_day": [1.0] * 24, "start_ns": 0})
    assert vwap.build().name == "vwap"
    assert AlgoSpec("pov", {"rate": 0.1, "max_slice": 500}).build().name == "pov"
    with pytest.raises(ParentSpecError, match="unknown algorithm"):
        AlgoSpec("iceberg", {}).build()
    with pytest.raises(ParentSpecError, match="missing parameter 'rate'"):
        AlgoSpec("pov", {}).build()
    with pytest.raises(ParentSpecError, match="start_ns and end_ns"):
        AlgoSpec("twap", {"slices": 2}).window()
    with pytest.raises(ParentSpecError, match="lot_size"):
        _spec(lot_size=0).context()
    with pytest.raises(ParentSpecError, match="pricing"):
        _spec(pricing={"reference": "mid"}).build()


def test_markets_and_events_survive_the_journal_round_trip() -> None:
    market = MarketState(
        DAY, last=10.5, band=Band(9.0, 11.0, 10.0), interval_volume=300, halted=False
    )
    assert market_from_dict(json.loads(json.dumps(market_to_dict(market)))) == market
    report = ExecutionReport("P-1", OrderStatus.ACCEPTED, T0, symbol="AAA", side=Side.BUY)
    for event in (SliceEvent(T0, market=market), SliceEvent(T0 + 1, report=report)):
        assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event
    parent = Order("P", "AAA", Side.SELL, 100, order_type=OrderType.MARKET, ts_ns=T0)
    payload = json.loads(json.dumps(started_payload(parent, _spec())))
    assert started_from_payload(payload) == (parent, _spec())


def test_the_bar_clock_knows_the_session_phase() -> None:
    markets = markets_from_bars([_bar("AAA", T0, 10.0, 700)], T0)
    assert markets["AAA"].phase is SessionPhase.CONTINUOUS
    assert markets["AAA"].last == 10.0 and markets["AAA"].interval_volume == 700
    night = T0 + 12 * 60 * MIN
    assert markets_from_bars([_bar("AAA", night, 10.0)], night)["AAA"].phase is (
        SessionPhase.CLOSED
    )


def test_replaying_the_journaled_inputs_regenerates_the_same_children() -> None:
    """What the router does after a restart: the events it journaled (through JSON) rebuild
    the parent, with the same children, and slicing carries on as if nothing happened."""
    parent = Order("P", "AAA", Side.BUY, 400, order_type=OrderType.MARKET, ts_ns=T0)
    spec = _spec()
    live = ParentOrderSlicer()
    live.start(parent, spec.build(), *spec.window(), spec.context())
    sent: list[Order] = []
    for minute in range(0, 25):
        ts = T0 + minute * MIN
        sent += live.on_time(ts, markets_from_bars([_bar("AAA", ts, 10.0 + minute / 10)], ts))
    fill = ExecutionReport(
        "P-1",
        OrderStatus.FILLED,
        T0 + MIN,
        symbol="AAA",
        side=Side.BUY,
        exec_id="X1",
        last_qty=100,
        last_price=10.0,
        cum_qty=100,
    )
    live.on_report(fill)
    journaled = [json.loads(json.dumps(event_to_dict(e))) for e in live.events("P")]

    restarted = ParentOrderSlicer()
    regenerated = restarted.resume(
        parent,
        spec.build(),
        *spec.window(),
        spec.context(),
        [event_from_dict(e) for e in journaled],
    )
    assert regenerated == tuple(sent)
    assert [c.client_order_id for c in sent] == ["P-1", "P-2", "P-3"]
    algo, again = live.algo("P"), restarted.algo("P")
    assert algo is not None and again is not None
    assert (again.filled, again.working, again.status) == (algo.filled, algo.working, algo.status)
    # the next slice is due at minute 30 on both: the restarted one sends the same child
    ts = T0 + 30 * MIN
    markets = markets_from_bars([_bar("AAA", ts, 11.0)], ts)
    assert restarted.on_time(ts, markets) == live.on_time(ts, markets)


# --- VWAP's volume profile from the lake --------------------------------------------------------


@pytest.fixture(scope="module")
def profile_lake(tmp_path_factory: pytest.TempPathFactory):
    """Ten synthetic sessions of one-minute bars (2024-01-02 .. 2024-01-15) in a lake."""
    from quant.data.lake import Lake
    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    bars = SyntheticMarket(SyntheticMarketConfig(n_symbols=2, n_sessions=10)).minute_bars()
    root = tmp_path_factory.mktemp("profile-lake")
    Lake(root).write("bars", bars)
    return root, bars


def test_vwap_profile_is_learned_from_the_sessions_before_the_day_only(profile_lake):
    from quant.data.corporate_actions import trading_day
    from quant.execution.algos import VolumeProfile, learn_volume_profile

    root, bars = profile_lake
    symbol = "SYN01"
    mine = bars.filter(pl.col("symbol") == symbol)
    days = sorted(mine.select(trading_day(mine.columns)).to_series().unique().to_list())
    day = days[6]
    params = vwap_profile_params(root, symbol, day, sessions=3, bucket_minutes=15)
    assert params["profile_sessions"] == 3 and params["bucket_minutes"] == 15
    # the same profile as learned by hand from the three sessions before the day
    window = mine.filter(trading_day(mine.columns).is_in(days[3:6]))
    expected = learn_volume_profile(window, "15m")
    np.testing.assert_allclose(params["full_day"], expected.full_day, rtol=0, atol=1e-15)
    np.testing.assert_allclose(params["half_day"], expected.half_day, rtol=0, atol=1e-15)
    # a VWAP built from the params slices with that profile
    algo = AlgoSpec("vwap", {**params, "start_ns": T0, "end_ns": T0 + 60 * MIN}).build()
    assert isinstance(algo.volume_profile, VolumeProfile)
    np.testing.assert_allclose(algo.volume_profile.full_day, expected.full_day, atol=1e-15)
    json.dumps(params)  # journaled with the parent: plain JSON


def test_vwap_profile_ignores_the_future(profile_lake, tmp_path):
    """A lake whose day and later sessions hold other volumes gives the same profile."""
    from quant.data.corporate_actions import trading_day
    from quant.data.lake import Lake

    root, bars = profile_lake
    days = sorted(bars.select(trading_day(bars.columns)).to_series().unique().to_list())
    day = days[5]
    future = trading_day(bars.columns) >= day
    changed = bars.with_columns(
        pl.when(future).then(pl.col("volume") * 97 % 1013 + 1).otherwise(pl.col("volume"))
    )
    Lake(tmp_path).write("bars", changed)
    got = vwap_profile_params(tmp_path, "SYN02", day, sessions=4)
    same = vwap_profile_params(root, "SYN02", day, sessions=4)
    for key in ("full_day", "half_day"):  # equal up to the order of a float sum
        np.testing.assert_allclose(got[key], same[key], rtol=0, atol=1e-15)
    # while a window that reaches the changed sessions does see them
    moved = vwap_profile_params(tmp_path, "SYN02", days[7], sessions=4)
    kept = vwap_profile_params(root, "SYN02", days[7], sessions=4)
    assert np.abs(np.subtract(moved["full_day"], kept["full_day"])).max() > 1e-4


def test_vwap_profile_errors_name_the_problem(profile_lake):
    root, _ = profile_lake
    with pytest.raises(ParentSpecError, match="no volume profile for SYN01 before 2024-01-02"):
        vwap_profile_params(root, "SYN01", date(2024, 1, 2))
    with pytest.raises(ParentSpecError, match="unknown symbol"):
        vwap_profile_params(root, "THYAO", date(2024, 1, 10))
    with pytest.raises(ParentSpecError, match="sessions must be >= 1"):
        vwap_profile_params(root, "SYN01", date(2024, 1, 10), sessions=0)
