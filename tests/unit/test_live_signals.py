"""``LivePredictionStrategy``: predictions taken as they are made give the targets the
research strategy gives with all of them known up front (the backtest's side of the parity)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from actors.signals import LivePredictionStrategy
from quant.research.signals import PredictionStrategy
from quant.sim.strategy import Bar

MIN = 60_000_000_000
T0 = 1_704_265_200_000_000_000  # 2024-01-03 07:00 UTC


class _Ctx:
    """Just what ``target_on_bar`` reads."""


def _predictions(seed: int = 3) -> list[tuple[str, int, float, float, int]]:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(40):  # one research bar every 5 minutes, three symbols each
        for symbol in ("AAA", "BBB", "CCC"):
            p_up = float(rng.uniform(0.2, 0.8))
            rows.append((symbol, T0 + k * 5 * MIN, p_up, 1.0 - p_up, T0 + (k + 2) * 5 * MIN))
    return rows


def _targets(strategy: PredictionStrategy) -> list[int | None]:
    out = []
    for minute in range(0, 40 * 5 + 10):
        for symbol in ("AAA", "BBB", "CCC"):
            ts = T0 + minute * MIN
            bar = Bar(symbol, ts, ts + MIN, 10.0, 10.2, 9.9, 10.0 + minute / 1000, 1_000)
            out.append(strategy.target_on_bar(_Ctx(), bar))
    return out


def test_predictions_added_research_bar_by_research_bar_give_the_upfront_targets():
    rows = _predictions()
    upfront = PredictionStrategy(
        pl.DataFrame(
            rows,
            schema=["symbol", "ts", "p_up", "p_down", "expires"],
            orient="row",
        ),
        0.55,
        position_notional=50_000.0,
    )
    live = LivePredictionStrategy(0.55, position_notional=50_000.0)
    for k in range(0, len(rows), 3):  # as the stream processor does, at each research bar
        live.extend(rows[k : k + 3])
    assert live.n_predictions == len(rows)
    assert live.predictions().height == len(rows)
    targets = _targets(live)
    assert targets == _targets(upfront)
    assert any(t not in (None, 0) for t in targets)  # the predictions do move the targets


def test_a_prediction_not_after_the_held_ones_is_refused_and_changes_nothing():
    rows = _predictions()
    live = LivePredictionStrategy(0.55, position_notional=50_000.0)
    live.extend(rows[:30])
    with pytest.raises(ValueError, match="not after the last one held"):
        live.extend([rows[3], ("ZZZ", T0, 0.5, 0.5, T0 + MIN)])
    assert live.n_predictions == 30
    assert "ZZZ" not in live._signals
    with pytest.raises(ValueError, match="outside"):
        live.extend([("AAA", T0 + 10_000 * MIN, 1.5, 0.0, T0 + 10_001 * MIN)])
    assert live.n_predictions == 30


def _as_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "symbol": pl.String,
            "ts": pl.Int64,
            "p_up": pl.Float64,
            "p_down": pl.Float64,
            "expires": pl.Int64,
        },
        orient="row",
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_research_bars_rows_are_indexed_as_a_frame_of_them_is(seed: int):
    """The live strategy indexes each research bar's rows without a frame; unsorted rows,
    several per symbol and missing expiries give what the frame path gives."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in rng.permutation(12):
        for symbol in ("CCC", "AAA", "BBB")[: 1 + k % 3]:
            p_up = float(rng.uniform(0, 1))
            expires = None if k % 4 == 0 else T0 + (int(k) + 3) * MIN
            rows.append((symbol, T0 + int(k) * MIN, p_up, float(rng.uniform(0, 1 - p_up)), expires))
    strategy = LivePredictionStrategy(0.55, position_notional=50_000.0, long_only=seed % 2 == 0)
    by_rows = strategy._index_rows(rows)
    by_frame = strategy._index(_as_frame(rows))
    assert list(by_rows) == list(by_frame)
    for symbol, signals in by_frame.items():
        for field in ("ts", "side", "expires"):
            expected = getattr(signals, field)
            got = getattr(by_rows[symbol], field)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("AAA", T0, 1.2, 0.0, None)], "1 prediction.s. hold a probability outside"),
        ([("AAA", T0, float("nan"), 0.1, None)], "outside \\[0, 1\\]"),
        ([("AAA", T0, 0.6, 0.1, T0 - 1)], "1 prediction.s. expire before they are made"),
        (
            [("BBB", T0, 0.6, 0.1, None), ("AAA", T0, 0.6, 0.1, None)] * 2,
            "4 predictions share a symbol and time, e.g. AAA at 2024-01-03T07:00",
        ),
        ([("AAA", float(T0), 0.6, 0.1, None)], "ts must be epoch nanoseconds"),
    ],
)
def test_bad_rows_are_refused_with_the_frame_paths_reason(rows: list[tuple], message: str):
    strategy = LivePredictionStrategy(0.55, position_notional=50_000.0)
    with pytest.raises(ValueError, match=message):
        strategy._index_rows(rows)
    if not isinstance(rows[0][1], float):  # a frame cannot even hold a float time stamp
        with pytest.raises(ValueError, match=message):
            strategy._index(_as_frame(rows))
