"""The stream processor's signal chain resumes from its checkpoint with the same features.

A restarted ``StreamProcessor`` loads the streaming features' kernel state and the research
bars being built from the journal (``signals_state`` / ``signals_bars_state``, stored as JSON);
from there it must make exactly the predictions an uninterrupted processor makes, not start
its features cold.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from actors.signals import LiveSignals, MomentumSignalModel
from actors.stream_processor import (
    latency_summary,
    load_signals_bars,
    load_signals_state,
    signals_bars_state,
    signals_state,
)
from quant.data.stream import TickStreamProcessor
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.research.params import TrialParams
from quant.sim.strategy import Bar

PARAMS = TrialParams.model_validate({"bar_interval": "5m", "prob_threshold": 0.55})


def _slices() -> list[tuple[int, list[Bar]]]:
    market = SyntheticMarket(SyntheticMarketConfig(n_symbols=3, n_sessions=2, seed=3))
    day = market.sessions()[-1]
    trades = market.day(day).trades
    symbols = sorted(trades["symbol"].unique().to_list())
    ticks = TickStreamProcessor(symbols)
    out = ticks.process(trades.sort("ts", "symbol", "seq"))
    bars = [*out.bars, *ticks.flush().bars]
    by_end: dict[int, list[Bar]] = {}
    for b in bars:
        by_end.setdefault(b.ts_end_ns, []).append(b)
    return sorted(by_end.items())


def _signals() -> LiveSignals:
    return LiveSignals(MomentumSignalModel(400.0), PARAMS)


def _run(signals: LiveSignals, slices: list[tuple[int, list[Bar]]]) -> list[tuple]:
    out: list[tuple] = []
    for t, bars in slices:
        out.extend(signals.on_minute_bars(bars, t))
    return out


def test_restored_signal_chain_makes_the_same_predictions_as_an_uninterrupted_one() -> None:
    slices = _slices()
    assert len(slices) > 100
    whole = _run(_signals(), slices)
    assert len(whole) > 20

    cut = len(slices) // 2 + 2  # inside a research bar: one is being built
    first = _signals()
    before = _run(first, slices[:cut])
    assert first.builder.open, "the cut should fall inside an open research bar"
    saved = json.loads(json.dumps({"s": signals_state(first), "b": signals_bars_state(first)}))

    restored = _signals()
    load_signals_state(restored, saved["s"])
    load_signals_bars(restored, saved["b"])
    after = _run(restored, slices[cut:])
    assert before + after == whole

    cold = _signals()  # what a restart without the checkpoint would do
    cold_after = _run(cold, slices[cut:])
    assert cold_after != after


def test_feature_state_refuses_other_features() -> None:
    signals = _signals()
    state = signals.features.state()
    state["names"] = ["something_else"]
    with pytest.raises(ValueError, match="other features"):
        _signals().features.load_state(state)


def test_latency_summary_percentiles() -> None:
    assert latency_summary([]) == {"samples": 0}
    summary = latency_summary(np.arange(1, 101, dtype=float))
    assert summary["samples"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["max_ms"] == 100.0
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"]
