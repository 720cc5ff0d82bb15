"""Event-time tick ingestion: validation, dedup, reordering, watermark, late policy, resume and
bar parity with ``time_bars``."""

from __future__ import annotations

import json
import math
import random

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from quant.data.bars import time_bars
from quant.data.stream import (
    LatePolicy,
    StreamingBarBuilder,
    Tick,
    TickRule,
    TickStreamProcessor,
    bars_frame,
)
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.data.validate import RuleCode

NS = 1_000_000_000
T0 = 1_709_625_600 * NS  # 2024-03-05 08:00 UTC, a minute boundary


def tick(seq: int, secs: float, price: float = 10.0, size: int = 100, symbol: str = "AAA"):
    return {"symbol": symbol, "ts": T0 + int(secs * NS), "seq": seq, "price": price, "size": size}


@pytest.fixture(scope="module")
def day_trades() -> pl.DataFrame:
    market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=3, n_sessions=2, trades_per_day=500, seed=11)
    )
    return market.day(market.sessions()[1]).trades


def run(proc: TickStreamProcessor, feed: pl.DataFrame, sizes: list[int]) -> list:
    bars, i, k = [], 0, 0
    while i < feed.height:
        n = sizes[k % len(sizes)]
        bars += proc.process(feed.slice(i, n)).bars
        i, k = i + n, k + 1
    return bars + proc.flush().bars


def assert_time_bars_parity(bars: list, trades: pl.DataFrame) -> None:
    keys = [(b.ts_end_ns, b.symbol) for b in bars]
    assert keys == sorted(keys)  # the backtest's merge order, across the whole stream
    got = bars_frame(bars).sort("symbol", "ts")
    want = time_bars(trades, "1m")
    assert got.schema == want.schema
    # exact on everything; VWAP is a float sum whose order polars may split across threads
    assert_frame_equal(got.drop("vwap"), want.drop("vwap"), check_exact=True)
    for a, b in zip(got["vwap"].to_list(), want["vwap"].to_list(), strict=True):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


# ------------------------------------------------------------------------------ validation


def test_malformed_ticks_are_quarantined_with_a_rule_and_counted() -> None:
    proc = TickStreamProcessor(["AAA", "BBB"], partition=["AAA"])
    rows = [
        tick(0, 1),
        tick(1, 2, price=math.nan),
        tick(2, 3, size=0),
        tick(3, 4, price=-1.0),
        {**tick(4, 5), "size": math.inf},
        tick(5, 6, symbol="ZZZ"),
        tick(6, 7, symbol="BBB"),
        {**tick(0, 8), "seq": None},
        {**tick(8, 9), "price": "ten"},
        {**tick(9, 10), "side": 7},
        {**tick(10, 11), "ts": "yesterday"},
        {**tick(11, 12), "size": 1.5},
        "not a row",
        tick(12, 13),
    ]
    out = proc.process(rows)
    rules = [q.rule for q in out.quarantined]
    assert rules == [
        TickRule.NULL,
        TickRule.NON_POSITIVE,
        TickRule.NON_POSITIVE,
        TickRule.NULL,
        TickRule.UNKNOWN_SYMBOL,
        TickRule.WRONG_SYMBOL,
        TickRule.NULL,
        TickRule.SCHEMA,
        TickRule.SCHEMA,
        TickRule.SCHEMA,
        TickRule.SCHEMA,
        TickRule.SCHEMA,
    ]
    assert "seq is missing" in out.quarantined[6].reason
    assert out.quarantined[4].row["symbol"] == "ZZZ"  # the row as received
    c = out.counts
    assert c["received"] == 14 and c["accepted"] == 2 and c["quarantined"] == 12
    assert c["quarantined.SCHEMA"] == 5 and c["quarantined.NULL"] == 3
    assert c["quarantined.NON_POSITIVE"] == 2
    assert c["quarantined.UNKNOWN_SYMBOL"] == 1 and c["quarantined.WRONG_SYMBOL"] == 1
    # the lake's words where the rule is the same
    for rule in ("SCHEMA", "NULL", "NON_POSITIVE", "DUPLICATE"):
        assert TickRule(rule).value == RuleCode(rule).value


def test_an_unreadable_batch_is_quarantined_not_raised() -> None:
    out = TickStreamProcessor().process(42)  # type: ignore[arg-type]
    assert [q.rule for q in out.quarantined] == [TickRule.SCHEMA]


def test_batches_as_frames_arrow_and_columns_agree(day_trades) -> None:
    feed = day_trades.sort("ts", "symbol", "seq").head(400)
    want = [(b.symbol, b.ts_ns, b.close, b.volume) for b in run(TickStreamProcessor(), feed, [7])]
    for batch in (feed.to_arrow(), feed.to_dict(as_series=False), feed.to_dicts()):
        proc = TickStreamProcessor()
        bars = proc.process(batch).bars + proc.flush().bars
        assert [(b.symbol, b.ts_ns, b.close, b.volume) for b in bars] == want


# ------------------------------------------------------------------------------ sequencing


def test_duplicates_by_seq_are_quarantined_and_a_new_day_restarts_seqs() -> None:
    proc = TickStreamProcessor(allowed_lateness_ns=10 * NS)
    out = proc.process([tick(0, 1), tick(1, 2), tick(1, 2.5)])
    assert [q.rule for q in out.quarantined] == [TickRule.DUPLICATE]
    out = proc.process([tick(0, 3), tick(2, 4)])  # a released seq comes again
    assert [q.rule for q in out.quarantined] == [TickRule.DUPLICATE]
    next_day = {**tick(0, 86_400), "seq": 0}
    out = proc.process([next_day])
    assert out.quarantined == [] and out.counts["quarantined.DUPLICATE"] == 2


def test_out_of_order_ticks_within_the_window_are_reordered() -> None:
    proc = TickStreamProcessor(allowed_lateness_ns=5 * NS)
    out = proc.process([tick(0, 1, 10.0), tick(2, 4, 10.2), tick(1, 2, 10.1), tick(3, 30, 10.3)])
    assert out.quarantined == [] and out.counts["reordered"] == 1
    out2 = proc.process([tick(4, 66, 10.4)])  # the watermark passes 08:01: bar one is done
    (bar,) = out.bars + out2.bars
    assert (bar.open, bar.close, bar.high, bar.volume, bar.trade_count) == (
        10.0,
        10.3,
        10.3,
        400,
        4,
    )
    assert bar.ts_end_ns == T0 + 60 * NS


@pytest.mark.parametrize("policy", [LatePolicy.DROP, LatePolicy.EMIT_LATE])
def test_late_ticks_are_counted_under_either_policy(policy: LatePolicy) -> None:
    proc = TickStreamProcessor(allowed_lateness_ns=2 * NS, late_policy=policy)
    proc.process([tick(0, 1), tick(1, 10)])
    assert proc.watermark_ns == T0 + 8 * NS
    out = proc.process([tick(2, 5, price=11.0), tick(3, 9)])  # 5 s is before the watermark
    assert out.counts["late"] == 1 and out.counts["accepted"] == 3
    if policy is LatePolicy.DROP:
        assert [q.rule for q in out.quarantined] == [TickRule.LATE] and out.late == []
    else:
        assert out.quarantined == [] and [t.price for t in out.late] == [11.0]
        assert out.counts["late_emitted"] == 1
    bars = proc.flush().bars
    assert [b.high for b in bars] == [10.0]  # a late tick never changes a bar


def test_the_buffer_is_bounded_by_forced_releases() -> None:
    proc = TickStreamProcessor(allowed_lateness_ns=3600 * NS, max_buffered=3)
    out = proc.process([tick(k, k) for k in range(10)])
    assert out.buffered == 3 and out.counts["forced_releases"] == 7
    assert proc.process([tick(10, 2)]).counts["late"] == 1  # behind the forced watermark


def test_resume_after_skips_processed_ticks() -> None:
    rows = [tick(k, k) for k in range(10)]
    first = TickStreamProcessor()
    out = first.process(rows[:6])
    assert out.last_seq == {"AAA": 4}  # seq 5 waits for the watermark
    for point in (out.last_seq["AAA"], out.positions["AAA"]):
        again = TickStreamProcessor(resume_after={"AAA": point})
        res = again.process(rows)  # the feed replays from the start
        assert res.counts["resumed_skip"] == 5 and res.counts["accepted"] == 5
        assert res.quarantined == []


def test_a_restored_snapshot_gives_the_bars_of_an_uninterrupted_run(day_trades) -> None:
    feed = day_trades.sort("ts", "symbol", "seq")
    whole = run(TickStreamProcessor(allowed_lateness_ns=NS), feed, [37])
    half = feed.height // 2
    proc = TickStreamProcessor(allowed_lateness_ns=NS)
    bars = []  # the first run crashes after half the feed (no flush)
    for i in range(0, half, 37):
        bars += proc.process(feed.slice(i, min(37, half - i))).bars
    state = json.loads(json.dumps(proc.snapshot()))  # what the actor journals
    restored = TickStreamProcessor.from_snapshot(state)
    replay = feed.slice(half - 100)  # the feed restarts a little before the checkpoint
    bars += run(restored, replay, [41])
    assert [(b.symbol, b.ts_ns, b.vwap) for b in bars] == [
        (b.symbol, b.ts_ns, b.vwap) for b in whole
    ]


# ------------------------------------------------------------------------------ bars


def test_bar_parity_with_time_bars_on_a_synthetic_day(day_trades) -> None:
    feed = day_trades.sort("ts", "symbol", "seq")  # the feed interleaves symbols in time
    rng = random.Random(5)
    sizes = [rng.randint(1, 64) for _ in range(200)]
    bars = run(TickStreamProcessor(day_trades["symbol"].unique().to_list()), feed, sizes)
    assert_time_bars_parity(bars, day_trades)
    assert {"O", "K", "T"} <= set(day_trades["condition"].unique().to_list())  # all counted


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=20),
    lateness_s=st.integers(min_value=0, max_value=120),
    shuffle_seed=st.integers(min_value=0, max_value=10_000),
)
def test_bar_parity_holds_for_any_batching_and_bounded_disorder(
    day_trades, sizes: list[int], lateness_s: int, shuffle_seed: int
) -> None:
    """Random micro-batch sizes, and ticks displaced by less than the allowed lateness: the
    bars are still exactly ``time_bars`` of the day."""
    feed = day_trades.sort("ts", "symbol", "seq")
    if lateness_s:
        rng = random.Random(shuffle_seed)
        jitter = [rng.random() * lateness_s * NS for _ in range(feed.height)]
        feed = (
            feed.with_columns(pl.Series("_at", jitter) + pl.col("ts").dt.epoch("ns"))
            .sort("_at")
            .drop("_at")
        )
    proc = TickStreamProcessor(allowed_lateness_ns=lateness_s * NS)
    bars = run(proc, feed, sizes)
    assert proc.counts["late"] == 0 and proc.counts["quarantined"] == 0
    assert_time_bars_parity(bars, day_trades)


def test_bar_builder_other_intervals() -> None:
    builder = StreamingBarBuilder("5m")
    for k, secs in enumerate((10, 200, 299, 301)):
        builder.add(Tick("AAA", T0 + secs * NS, k, 10.0 + k / 100, 100))
    (bar,) = builder.close_until(T0 + 300 * NS)
    assert (bar.ts_ns, bar.ts_end_ns, bar.trade_count) == (T0, T0 + 300 * NS, 3)
    assert [b.ts_ns for b in builder.flush()] == [T0 + 300 * NS]
