"""Parity on a local Ray: a recorded synthetic day replayed through the actors (feed, stream
processor, risk guard, router, paper venue) against the backtest of the same day.

The lake holds 30 sessions of 1-minute bars (warm-up: closes, bands, ADV, volatility, feature
history) and the trades of the last one. The signal model is the momentum rule on 5-minute
research bars with positions of 30% of equity each, so the exposure limits bind during the day:
the risk layer's decisions are part of what must agree, not only the fills.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

from actors import parity  # noqa: E402
from actors import pipeline as pl_  # noqa: E402

MODEL = {
    "kind": "momentum",
    "scale": 400.0,
    "params": {"bar_interval": "5m", "prob_threshold": 0.55, "position_weight": 0.3},
}


@pytest.fixture(scope="module")
def recorded_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A lake with 30 sessions of bars for 10 symbols and the trades of the last session."""
    from quant.data.ingest import ingest_synthetic
    from quant.data.lake import Lake
    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    root = tmp_path_factory.mktemp("parity-lake") / "lake"
    market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=10, n_sessions=30, seed=5, trades_per_day=600)
    )
    ingest_synthetic(market, Lake(root), tick_sessions=1)
    return root, market.sessions()[-1]


@pytest.fixture
def pipeline_name(ray_session: None) -> Iterator[str]:
    name = f"parity-{uuid.uuid4().hex[:6]}"
    yield name
    if pl_.running_actors(name):
        pl_.stop(name)


def test_a_replayed_day_reproduces_its_backtest(
    recorded_day: tuple[Path, object], pipeline_name: str, tmp_path: Path
) -> None:
    lake, day = recorded_day
    config = pl_.lake_replay_config(
        lake,
        day,  # type: ignore[arg-type]
        tmp_path / "journal.sqlite",
        pipeline=pipeline_name,
        model=MODEL,
        batch_rows=300,
        max_in_flight=2,
        router={"timeout_s": 5.0},
    )
    # the day's history reached the venue and risk inputs: bands, ADV and volatility
    assert set(config.previous_closes) == set(config.symbols)
    assert set(config.adv) == set(config.symbols)
    assert config.volatility and config.warmup is not None

    live, reference, report = parity.replay_parity(config)

    assert not pl_.running_actors(pipeline_name), "the replay left actors running"
    assert report.orders_live > 20 and report.fills_live > 50, report.headline()
    assert report.identical_share >= parity.PARITY_TARGET, report.headline()
    assert report.passed
    # every difference (if any) is explained, with the values on both sides where they exist
    for d in report.differences:
        assert d.cause in parity.CAUSES, d
        assert d.live is not None or d.backtest is not None
    # the risk layer bound on this day, on both sides alike
    rejections = report.info["risk_rejections"]
    assert rejections["backtest"], "position sizes should make the exposure limits bind"
    assert rejections["live"] == rejections["backtest"]
    # the model scored the same research bars to the same probabilities
    predictions = report.info["predictions"]
    assert predictions["matched"] == predictions["live"] == predictions["backtest"] > 0
    assert predictions["identical"] == predictions["matched"]
    # every fill came from a bar after its order's decision, on both sides
    decided = dict(zip(live.orders["client_order_id"], live.orders["ts_ns"], strict=True))
    assert all(
        ts > decided[cid]
        for cid, ts in zip(live.fills["client_order_id"], live.fills["ts_ns"], strict=True)
    )
    assert reference.result.error is None

    json_path, html_path = parity.write_parity(report, tmp_path / "reports")
    assert json_path.exists() and "Parity" in html_path.read_text()
