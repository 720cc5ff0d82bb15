"""Features: hand-computed values for every estimator and indicator, in both modes; the FFD
weights against the AFML recurrence and the binomial series; RSI/MACD/ATR against talipp (an
independent incremental TA library); calendar context against ``TradingCalendar.phase_at``;
null warm-ups; and the pipeline's refusals."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from scipy.special import binom

from quant.features import (
    ATR,
    MACD,
    PHASE_CODES,
    PHASES,
    RSI,
    CloseToCloseVol,
    FeaturePipeline,
    FracDiff,
    GarmanKlassVol,
    LogReturn,
    MarketBeta,
    Microprice,
    MinutesSinceOpen,
    OrderFlowImbalance,
    ParkinsonVol,
    RelativeSpread,
    ResidualMomentum,
    SessionClock,
    SessionPhaseCode,
    TimeOfDay,
    TradeSignImbalance,
    VolumeZScore,
    VwapDistance,
    YangZhangVol,
    bar_features,
    ffd_weights,
    quote_features,
    trade_features,
    yang_zhang_k,
)
from quant.features.calendar_features import to_ns
from quant.market.calendar import ISTANBUL, SessionPhase, TradingCalendar

T0 = datetime(2024, 1, 3, 7, 0, tzinfo=UTC)
"""10:00 in Istanbul on a Wednesday session: continuous trading."""
MINUTE = timedelta(minutes=1)


def make_bars(rows, symbol: str = "X", start: datetime = T0, vwap=None) -> pl.DataFrame:
    """Bars from (open, high, low, close, volume) tuples, one per minute."""
    ts = [start + i * MINUTE for i in range(len(rows))]
    o, h, lo, c, v = (list(col) for col in zip(*rows, strict=True))
    return pl.DataFrame(
        {
            "ts": ts,
            "ts_end": [t + MINUTE for t in ts],
            "symbol": [symbol] * len(rows),
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
            "vwap": vwap if vwap is not None else c,
            "trade_count": [1] * len(rows),
        },
        schema_overrides={"volume": pl.Int64},
    )


def closes_frame(closes, symbol: str = "X") -> pl.DataFrame:
    return make_bars([(c, c, c, c, 100) for c in closes], symbol)


def both(feature, frame: pl.DataFrame, **options) -> list[float | None]:
    """The feature's values in batch mode, after checking the stream gives the same ones, row
    for row, through the single-feature ``FeatureStream`` (nulls identical)."""
    batch = feature.batch(frame, **options).to_list()
    stream = feature.stream(**options)
    streamed = []
    for row in frame.sort("symbol", *(c for c in ("ts_end", "ts") if c in frame.columns)).rows(
        named=True
    ):
        streamed.append(stream.update(**row))
    assert len(batch) == len(streamed)
    for i, (a, b) in enumerate(zip(batch, streamed, strict=True)):
        assert (a is None) == (b is None), f"row {i}: batch {a} stream {b}"
        if a is not None:
            assert a == pytest.approx(b, rel=1e-12, abs=1e-15), f"row {i}"
    return batch


def approx(values, expected, rel=1e-12, abs_=1e-15):
    assert len(values) == len(expected)
    for i, (a, b) in enumerate(zip(values, expected, strict=True)):
        if b is None:
            assert a is None, f"row {i}: expected null, got {a}"
        else:
            assert a is not None, f"row {i}: expected {b}, got null"
            assert a == pytest.approx(b, rel=rel, abs=abs_), f"row {i}"


# ------------------------------------------------------------------------------ returns


def test_log_return_over_horizons():
    closes = [100.0, 101.0, 99.0, 102.0, 103.5]
    frame = closes_frame(closes)
    assert LogReturn(1).batch(frame.drop("symbol")).to_list()[1] == math.log(1.01)
    approx(
        both(LogReturn(1), frame), [None] + [math.log(b / a) for a, b in itertools.pairwise(closes)]
    )
    approx(both(LogReturn(3), frame), [None] * 3 + [math.log(102.0 / 100.0), math.log(103.5 / 101)])


# ------------------------------------------------------------------------------ volatility

# three bars plus one: windows of 3
OHLC = [
    (100.0, 101.0, 99.5, 100.5, 1000),
    (100.6, 102.0, 100.2, 101.8, 1500),
    (101.7, 101.9, 100.1, 100.4, 900),
    (100.2, 100.9, 99.0, 99.4, 1200),
]


def test_close_to_close_vol_by_hand():
    frame = make_bars(OHLC)
    c = [r[3] for r in OHLC]
    r = [math.log(b / a) for a, b in itertools.pairwise(c)]
    # the first window of three returns needs four bars
    approx(both(CloseToCloseVol(3), frame), [None, None, None, statistics.stdev(r)])


def test_parkinson_vol_by_hand():
    frame = make_bars(OHLC)
    u = [math.log(h / lo) ** 2 for _, h, lo, _, _ in OHLC]
    expected = [math.sqrt(sum(u[i - 2 : i + 1]) / (4 * 3 * math.log(2))) for i in (2, 3)]
    approx(both(ParkinsonVol(3), frame), [None, None, *expected])


def test_garman_klass_vol_by_hand():
    frame = make_bars(OHLC)
    terms = [
        0.5 * math.log(h / lo) ** 2 - (2 * math.log(2) - 1) * math.log(c / o) ** 2
        for o, h, lo, c, _ in OHLC
    ]
    expected = [math.sqrt(sum(terms[i - 2 : i + 1]) / 3) for i in (2, 3)]
    approx(both(GarmanKlassVol(3), frame), [None, None, *expected])


def test_yang_zhang_vol_by_hand():
    frame = make_bars(OHLC)
    n = 3
    o = [r[0] for r in OHLC]
    h = [r[1] for r in OHLC]
    lo = [r[2] for r in OHLC]
    c = [r[3] for r in OHLC]
    overnight = [math.log(o[i] / c[i - 1]) for i in (1, 2, 3)]
    open_close = [math.log(c[i] / o[i]) for i in (1, 2, 3)]
    rs = [
        math.log(h[i] / c[i]) * math.log(h[i] / o[i])
        + math.log(lo[i] / c[i]) * math.log(lo[i] / o[i])
        for i in (1, 2, 3)
    ]
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    assert yang_zhang_k(n) == pytest.approx(k)
    var = (
        statistics.variance(overnight)
        + k * statistics.variance(open_close)
        + (1 - k) * (sum(rs) / n)
    )
    approx(both(YangZhangVol(n), frame), [None, None, None, math.sqrt(var)])


def test_flat_bars_have_exactly_zero_volatility_after_moves():
    """Windows of identical bars after moving ones: exactly 0 in both modes (polars' sliding
    sums alone would leave ~1e-21 of rounding, ~3e-11 after the square root)."""
    moving = [(100.0, 101.3, 98.7, 100.9, 500), (100.8, 102.2, 100.1, 101.7, 700)] * 6
    flat = [(101.0, 101.0, 101.0, 101.0, 300)] * 8
    frame = make_bars(moving + flat)
    for feature in (CloseToCloseVol(5), ParkinsonVol(5), GarmanKlassVol(5), YangZhangVol(5)):
        values = both(feature, frame)
        assert values[-1] == 0.0, feature
        assert values[len(moving) + 2] > 0.0, feature
    # constant volume: the z-score is undefined, hence null (not 0, not NaN)
    assert both(VolumeZScore(5), frame)[-1] is None


# ------------------------------------------------------------------------------ indicators


def wilder_rsi(closes: list[float], n: int) -> list[float | None]:
    """Wilder's RSI from its definition, in plain Python."""
    out: list[float | None] = [None] * len(closes)
    changes = [b - a for a, b in itertools.pairwise(closes)]
    gain = sum(max(d, 0.0) for d in changes[:n]) / n
    loss = sum(max(-d, 0.0) for d in changes[:n]) / n
    out[n] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    for i in range(n, len(changes)):
        gain = (gain * (n - 1) + max(changes[i], 0.0)) / n
        loss = (loss * (n - 1) + max(-changes[i], 0.0)) / n
        out[i + 1] = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
    return out


# StockCharts' worked 14-day RSI example (the "cs-rsi" spreadsheet); its averages are rounded
# to cents along the way, so its RSIs sit within 0.1 of the exact ones.
STOCKCHARTS_CLOSES = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61,
    46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45, 45.78, 45.35,
    44.03, 44.18, 44.22, 44.57, 43.42, 42.66, 43.13,
]  # fmt: skip
STOCKCHARTS_RSI = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
    41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]  # fmt: skip


def test_rsi_matches_wilders_definition_and_the_stockcharts_example():
    values = both(RSI(14), closes_frame(STOCKCHARTS_CLOSES))
    approx(values, wilder_rsi(STOCKCHARTS_CLOSES, 14), rel=1e-12)
    # first value: gains 3.34 and losses 1.40 over the first 14 changes
    assert values[14] == pytest.approx(100 * 3.34 / (3.34 + 1.40), rel=1e-12)
    for ours, published in zip(values[14:], STOCKCHARTS_RSI, strict=True):
        assert abs(ours - published) < 0.1


def test_rsi_is_100_without_losses():
    values = both(RSI(3), closes_frame([10.0, 11.0, 12.0, 12.0, 13.0]))
    assert values == [None, None, None, 100.0, 100.0]


def random_walk(n: int, seed: int = 5, start: float = 100.0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    closes = start * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    rows = []
    prev = start
    for c in closes:
        o = prev * math.exp(rng.normal(0, 0.0005))
        h = max(o, c) * math.exp(abs(rng.normal(0, 0.001)))
        lo = min(o, c) * math.exp(-abs(rng.normal(0, 0.001)))
        rows.append((o, h, lo, float(c), int(rng.integers(1, 5000))))
        prev = c
    return rows


def test_macd_matches_talipp():
    from talipp.indicators import MACD as TalippMACD

    rows = random_walk(300)
    frame = make_bars(rows)
    closes = [r[3] for r in rows]
    ref = list(TalippMACD(12, 26, 9, input_values=closes))
    expected = {
        "line": [None if v is None else v.macd for v in ref],
        "signal": [None if v is None or v.signal is None else v.signal for v in ref],
        "histogram": [None if v is None or v.histogram is None else v.histogram for v in ref],
    }
    for output, reference in expected.items():
        values = both(MACD(12, 26, 9, output=output), frame)
        approx(values, reference, rel=1e-9, abs_=1e-12)
    assert expected["line"].index(next(v for v in expected["line"] if v is not None)) == 25
    assert expected["signal"].index(next(v for v in expected["signal"] if v is not None)) == 33


def test_atr_matches_talipp_and_a_hand_case():
    from talipp.indicators import ATR as TalippATR
    from talipp.ohlcv import OHLCV

    rows = random_walk(200, seed=9)
    ref = list(TalippATR(14, input_values=[OHLCV(o, h, lo, c, v) for o, h, lo, c, v in rows]))
    approx(both(ATR(14), make_bars(rows)), ref, rel=1e-12)
    # hand: TR = 1.5 (H-L), max(1.8, |102-100.5|, |100.2-100.5|) = 1.8, max(1.8, 1.5, 0.3)...
    tr = [1.5, 1.8, max(101.9 - 100.1, abs(101.9 - 101.8), abs(100.1 - 101.8))]
    expected = [None, (tr[0] + tr[1]) / 2, ((tr[0] + tr[1]) / 2) * 0.5 + tr[2] * 0.5]
    approx(both(ATR(2), make_bars(OHLC[:3])), expected)


def test_rsi_agrees_with_talipp_once_the_seed_has_decayed():
    """talipp seeds its averages with n - 1 changes instead of Wilder's n; the difference
    decays as (13/14)^k, below 1e-12 after 400 bars."""
    from talipp.indicators import RSI as TalippRSI

    rows = random_walk(900, seed=2)
    closes = [r[3] for r in rows]
    ours = both(RSI(14), closes_frame(closes))
    ref = list(TalippRSI(14, input_values=closes))
    assert ours[:14] == [None] * 14 and ref[13] is None and ref[14] is not None
    approx(ours[400:], ref[400:], rel=1e-9)


def test_vwap_distance_resets_each_istanbul_session():
    day1 = make_bars(
        [(10.0, 10.0, 10.0, 10.0, 100), (11.0, 11.0, 11.0, 11.0, 300)], vwap=[10.0, 11.0]
    )
    day2 = make_bars(
        [(20.0, 20.0, 20.0, 20.0, 200), (21.0, 21.0, 21.0, 21.0, 200)],
        start=T0 + timedelta(days=1),
        vwap=[20.0, 22.0],
    )
    frame = pl.concat([day1, day2])
    vwap_1 = (10 * 100 + 11 * 300) / 400
    vwap_2 = (20 * 200 + 22 * 200) / 400
    expected = [0.0, 11 / vwap_1 - 1, 0.0, 21 / vwap_2 - 1]
    approx(both(VwapDistance(), frame), expected)


def test_volume_z_score_by_hand():
    volumes = [100, 300, 200, 600, 50]
    frame = make_bars([(10.0, 10.0, 10.0, 10.0, v) for v in volumes])
    expected = [None, None] + [
        (volumes[i] - statistics.mean(volumes[i - 2 : i + 1]))
        / statistics.stdev(volumes[i - 2 : i + 1])
        for i in (2, 3, 4)
    ]
    approx(both(VolumeZScore(3), frame), expected)


# ------------------------------------------------------------------------------ quotes, trades


def make_quotes(rows, symbol: str = "Q") -> pl.DataFrame:
    ts = [T0 + i * timedelta(seconds=1) for i in range(len(rows))]
    b, bs, a, az = (list(c) for c in zip(*rows, strict=True))
    return pl.DataFrame(
        {
            "ts": ts,
            "symbol": [symbol] * len(rows),
            "bid_price": b,
            "bid_size": bs,
            "ask_price": a,
            "ask_size": az,
            "seq": list(range(len(rows))),
        },
        schema_overrides={"bid_size": pl.Int64, "ask_size": pl.Int64},
    )


QUOTES = [
    (10.00, 500, 10.02, 400),
    (10.00, 700, 10.02, 400),  # bid size up 200: e = +700 - 500 = +200
    (10.01, 300, 10.02, 100),  # bid up: +300; ask size down 300 at same price: -100 + 400
    (10.01, 300, 10.03, 800),  # ask up (cancelled level): + previous ask size 100
    (10.00, 900, 10.03, 800),  # bid down: - previous bid size 300
    (10.00, 900, 10.01, 50),  # ask down: - new ask size 50
]


def test_order_flow_imbalance_by_hand():
    """Each case of Cont, Kukanov and Stoikov's e_n."""
    e = [None, 700 - 500, 300 + (-100 + 400), 100, -300, -50]
    frame = make_quotes(QUOTES)
    approx(both(OrderFlowImbalance(1), frame), e)
    approx(
        both(OrderFlowImbalance(3), frame),
        [None, None, None, 200 + 600 + 100, 600 + 100 - 300, 100 - 300 - 50],
    )


def test_spread_and_microprice_by_hand():
    frame = make_quotes(QUOTES[:3])
    mids = [(b + a) / 2 for b, _, a, _ in QUOTES[:3]]
    spreads = [(a - b) / m for (b, _, a, _), m in zip(QUOTES[:3], mids, strict=True)]
    approx(both(RelativeSpread(), frame), spreads)
    micro = [(b * az + a * bs) / (bs + az) for b, bs, a, az in QUOTES[:3]]
    approx(both(Microprice(relative=False), frame), micro)
    approx(both(Microprice(), frame), [p / m - 1 for p, m in zip(micro, mids, strict=True)])
    # 500 on the bid, 400 on the ask: the microprice leans to the ask (less depth there)
    assert micro[0] > mids[0]


def make_trades(prices, sizes, sides, symbol: str = "T") -> pl.DataFrame:
    ts = [T0 + i * timedelta(seconds=1) for i in range(len(prices))]
    return pl.DataFrame(
        {
            "ts": ts,
            "symbol": [symbol] * len(prices),
            "price": prices,
            "size": sizes,
            "seq": list(range(len(prices))),
            "side": sides,
            "condition": ["C"] * len(prices),
        },
        schema_overrides={"size": pl.Int64, "side": pl.Int8},
    )


def test_trade_sign_imbalance_by_hand():
    prices = [10.0, 10.01, 10.01, 10.0, 10.0, 10.02]
    sizes = [100, 200, 300, 400, 100, 50]
    sides = [1, 1, -1, -1, 0, 1]
    frame = make_trades(prices, sizes, sides)
    signed = [s * q for s, q in zip(sides, sizes, strict=True)]
    expected = [None, None] + [
        sum(signed[i - 2 : i + 1]) / sum(sizes[i - 2 : i + 1]) for i in range(2, 6)
    ]
    approx(both(TradeSignImbalance(3), frame), expected)
    approx(
        both(TradeSignImbalance(3, weighted=False), frame),
        [None, None] + [sum(sides[i - 2 : i + 1]) / 3 for i in range(2, 6)],
    )
    # tick rule: signs null, +1, +1 (zero tick), -1, -1 (zero tick), +1
    ticks = [None, 1, 1, -1, -1, 1]
    expected_tick = [None, None, None] + [
        sum(ticks[j] * sizes[j] for j in range(i - 2, i + 1)) / sum(sizes[i - 2 : i + 1])
        for i in (3, 4, 5)
    ]
    approx(both(TradeSignImbalance(3, sign="tick_rule"), frame), expected_tick)


# ------------------------------------------------------------------------------ FFD


def test_ffd_weights_follow_the_afml_recurrence():
    w = ffd_weights(0.5, threshold=0.03)
    assert w.tolist() == [1.0, -0.5, -0.125, -0.0625, -0.0390625]  # |w_5| = 0.02734 < 0.03
    for d in (0.2, 0.4, 0.7):
        w = ffd_weights(d, threshold=1e-4)
        for k in range(1, w.size):
            assert w[k] == pytest.approx(-w[k - 1] * (d - k + 1) / k, rel=1e-15)
        # the binomial series of (1 - B)^d: w_k = (-1)^k C(d, k)
        np.testing.assert_allclose(w, [(-1) ** k * binom(d, k) for k in range(w.size)], rtol=1e-10)
        assert abs(w[-1]) >= 1e-4
        assert abs(-w[-1] * (d - w.size + 1) / w.size) < 1e-4
    assert ffd_weights(0.4, 1e-4).size == 282


def test_ffd_values_by_hand_and_refusals():
    closes = [100.0, 101.0, 99.5, 102.0, 103.0, 101.0]
    w = ffd_weights(0.5, threshold=0.05)  # [1, -0.5, -0.125, -0.0625]
    x = [math.log(c) for c in closes]
    expected = [None] * 3 + [sum(w[k] * x[i - k] for k in range(w.size)) for i in (3, 4, 5)]
    feature = FracDiff(0.5, threshold=0.05)
    assert feature.width == 4
    approx(both(feature, closes_frame(closes)), expected)
    level = FracDiff(0.5, threshold=0.05, log=False)
    approx(
        both(level, closes_frame(closes)),
        [None] * 3 + [sum(w[k] * closes[i - k] for k in range(4)) for i in (3, 4, 5)],
    )
    with pytest.raises(ValueError, match="d must be > 0"):
        FracDiff(0.0)
    with pytest.raises(ValueError, match="exceeds"):
        ffd_weights(0.05, threshold=1e-9, max_width=1000)


# ------------------------------------------------------------------------------ market factor


def factor_frame() -> tuple[pl.DataFrame, list[float]]:
    """Three symbols: A and B random, C = 2 x the market each bar."""
    rng = np.random.default_rng(11)
    n = 30
    ra = rng.normal(0, 0.01, n)
    rb = rng.normal(0, 0.01, n)
    # C's return r_c solves r_c = 2 (r_a + r_b + r_c) / 3, i.e. r_c = 2 (r_a + r_b)
    rc = 2 * (ra + rb)
    frames = []
    for symbol, r in (("A", ra), ("B", rb), ("C", rc)):
        closes = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
        frames.append(closes_frame(closes.tolist(), symbol))
    market = [(a + b + c) / 3 for a, b, c in zip(ra, rb, rc, strict=True)]
    return pl.concat(frames), market


def test_market_return_beta_and_residual_momentum_by_hand():
    frame, market = factor_frame()
    pipeline = FeaturePipeline([MarketBeta(5), ResidualMomentum(3, 5), LogReturn(1)])
    out = pipeline.batch(frame)
    replay = pipeline.replay(frame)
    np.testing.assert_allclose(
        out.select(pipeline.names).to_numpy().astype(float),
        replay.select(pipeline.names).to_numpy().astype(float),
        rtol=1e-9,
        atol=1e-15,
    )  # NaN (null) in the same places, values equal
    wide = out.pivot(on="symbol", index="ts", values=["beta_5", "log_return_1"])
    r = {s: wide[f"log_return_1_{s}"].to_list()[1:] for s in "ABC"}
    for t, m in enumerate(market):
        assert (r["A"][t] + r["B"][t] + r["C"][t]) / 3 == pytest.approx(m, rel=1e-12)
    # C moves exactly twice the market: beta 2, and no residual once its beta is known
    c = out.filter(pl.col("symbol") == "C")
    betas = c["beta_5"].to_list()
    assert betas[:5] == [None] * 5
    approx(betas[5:], [2.0] * (len(betas) - 5), rel=1e-9)
    resid = c["residual_momentum_3_5"].to_list()
    assert resid[:8] == [None] * 8
    approx(resid[8:], [0.0] * (len(resid) - 8), abs_=1e-12)
    # A's beta is the OLS slope over its last five bars, by hand
    a_ret = r["A"]
    x, y = market[-5:], a_ret[-5:]
    slope = np.polyfit(x, y, 1)[0]
    assert out.filter(pl.col("symbol") == "A")["beta_5"][-1] == pytest.approx(slope, rel=1e-9)
    # residual momentum of A: sum of r - beta_{t-1} m over its last three bars
    a_beta = out.filter(pl.col("symbol") == "A")["beta_5"].to_list()
    resid_a = [
        a_ret[t - 1] - a_beta[t - 1] * market[t - 1] for t in range(len(a_beta) - 3, len(a_beta))
    ]
    expected = sum(resid_a)
    got = out.filter(pl.col("symbol") == "A")["residual_momentum_3_5"][-1]
    assert got == pytest.approx(expected, rel=1e-9)


def test_market_given_takes_the_callers_market_return():
    frame, market = factor_frame()
    a = frame.filter(pl.col("symbol") == "A").with_columns(market_return=pl.Series([None, *market]))
    feature = MarketBeta(5)
    batch = FeaturePipeline([feature], market="given").batch(a)
    equal = FeaturePipeline([feature]).batch(frame).filter(pl.col("symbol") == "A")
    np.testing.assert_allclose(
        batch["beta_5"].to_numpy()[5:], equal["beta_5"].to_numpy()[5:], rtol=1e-12
    )
    both(feature, a, market="given")


# ------------------------------------------------------------------------------ calendar


def test_session_phase_matches_trading_calendar_phase_at():
    cal = TradingCalendar()
    days = [date(2024, 1, 3), date(2024, 4, 9), date(2024, 4, 10), date(2024, 1, 6)]
    assert cal.is_half_day(date(2024, 4, 9)) and not cal.is_session(date(2024, 4, 10))
    stamps = []
    for d in days:
        start = datetime.combine(d, datetime.min.time(), ISTANBUL).replace(hour=9)
        stamps += [start + timedelta(seconds=30 * i) for i in range(2 * 60 * 10)]
    stamps.append(datetime(2024, 1, 3, 9, 55, tzinfo=ISTANBUL))  # exact window boundaries
    stamps.append(datetime(2024, 1, 3, 18, 10, tzinfo=ISTANBUL))
    stamps.sort()  # the values come back in time order
    utc = [s.astimezone(UTC) for s in stamps]
    frame = pl.DataFrame(
        {
            "ts": utc,
            "symbol": ["P"] * len(utc),
            "price": [10.0] * len(utc),
            "size": [1] * len(utc),
            "seq": list(range(len(utc))),
            "side": [0] * len(utc),
        }
    )
    codes = both(SessionPhaseCode(), frame)
    expected = [PHASE_CODES[cal.phase_at(s)] for s in utc]
    assert [int(c) for c in codes] == expected
    seen = {PHASES[int(c)] for c in codes}
    assert seen == set(SessionPhase)  # every phase, closed included, is exercised
    assert PHASE_CODES[SessionPhase.CLOSED] == 0 and PHASE_CODES[SessionPhase.CONTINUOUS] == 3
    minutes = both(MinutesSinceOpen(), frame)
    for s, m in zip(stamps, minutes, strict=True):
        info = cal.session(s.date())
        if info is None or not info.first_order_time <= s <= info.last_trade_time:
            assert m is None
        else:
            assert m == pytest.approx((s - info.first_order_time).total_seconds() / 60)


def test_time_of_day_is_istanbul_clock_on_the_unit_circle():
    noon = datetime(2024, 1, 3, 12, 0, tzinfo=ISTANBUL).astimezone(UTC)
    frame = make_trades([10.0, 10.0], [1, 1], [0, 0]).with_columns(
        ts=pl.Series([noon, noon + timedelta(hours=6)]).dt.replace_time_zone("UTC")
    )
    sin = both(TimeOfDay("sin"), frame)
    cos = both(TimeOfDay("cos"), frame)
    approx(sin, [math.sin(math.pi), math.sin(1.5 * math.pi)], abs_=1e-12)
    approx(cos, [-1.0, math.cos(1.5 * math.pi)], abs_=1e-12)
    assert both(MinutesSinceOpen(), frame) == [140.0, 500.0]  # from 09:40 to 12:00, 18:00
    late = frame.with_columns(ts=pl.col("ts") + timedelta(hours=1))  # 13:00, 19:00 (closed)
    assert both(MinutesSinceOpen(), late) == [200.0, None]


def test_session_clock_follows_clock_changes():
    """Istanbul kept daylight saving until 2016: local time, day and the vectorised offsets
    must follow zoneinfo across a change (2015-10-25 04:00 EEST -> 03:00 EET)."""
    clock = SessionClock()
    tz = ZoneInfo("Europe/Istanbul")
    start = datetime(2015, 10, 24, 20, 0, tzinfo=UTC)
    instants = [start + timedelta(minutes=17 * i) for i in range(200)]
    for moment in instants:
        local = moment.astimezone(tz).replace(tzinfo=None)
        expected = to_ns(local.replace(tzinfo=UTC))
        assert clock.local_ns(to_ns(moment)) == expected
    frame = pl.DataFrame({"ts": instants}).with_columns(pl.col("ts").dt.cast_time_unit("ns"))
    out = clock.annotate(frame, "ts", "ts", ["time_of_day", "session"])
    for moment, tod, session in zip(instants, out["time_of_day"], out["session"], strict=True):
        local = moment.astimezone(tz)
        assert tod == local.hour * 60 + local.minute + local.second / 60
        assert session == (local.date() - date(1970, 1, 1)).days


# ------------------------------------------------------------------------------ warm-up


def test_warm_up_is_null_for_exactly_the_documented_rows_in_both_modes():
    rows = random_walk(400, seed=4)
    frame = make_bars(rows)
    leading = {
        "log_return_1": 1,
        "log_return_60": 60,
        "rv_cc_20": 20,
        "rv_parkinson_20": 19,
        "rv_gk_20": 19,
        "rv_yz_20": 20,
        "rsi_14": 14,
        "macd_12_26_9": 25,
        "macd_signal_12_26_9": 33,
        "macd_hist_12_26_9": 33,
        "atr_14": 13,
        "vwap_distance": 0,
        "volume_z_20": 19,
        "beta_60": 60,
        "residual_momentum_20_60": 80,
        "ffd_0.4_0.0001": 281,
    }
    pipeline = FeaturePipeline(bar_features())
    for out in (pipeline.batch(frame), pipeline.replay(frame)):
        for name, n in leading.items():
            col = out[name]
            assert col.dtype == pl.Float64
            assert col[:n].null_count() == n, name
            assert col[n:].null_count() == 0, name
            assert not col.is_nan().any(), name


def test_streams_return_none_then_floats_and_vectors_use_nan():
    stream = RSI(3).stream()
    values = [stream.update(ts=T0, ts_end=T0 + MINUTE, close=c) for c in (1.0, 2.0, 1.5, 1.7)]
    assert values[:3] == [None, None, None] and isinstance(values[3], float)
    feats = FeaturePipeline([LogReturn(1), RSI(3)]).stream()
    vec = feats.update("X", {"close": 10.0, "ts": 0, "ts_end": 60})
    assert np.isnan(vec).all()
    assert feats.as_dict(vec) == {"log_return_1": None, "rsi_3": None}
    vec = feats.update("X", {"close": 11.0, "ts": 60, "ts_end": 120})
    assert feats.as_dict(vec)["log_return_1"] == pytest.approx(math.log(1.1))
    assert feats.symbols == ("X",)


# ------------------------------------------------------------------------------ refusals


def test_pipeline_refusals():
    with pytest.raises(ValueError, match="unique"):
        FeaturePipeline([LogReturn(1), LogReturn(1)])
    with pytest.raises(ValueError, match="at least one"):
        FeaturePipeline([])
    with pytest.raises(ValueError, match="bars"):
        FeaturePipeline([MarketBeta(10)], source="quotes")
    with pytest.raises(ValueError, match="missing column"):
        FeaturePipeline([ATR(3)]).batch(closes_frame([1.0, 2.0]).drop("high"))
    with pytest.raises(ValueError, match="integer >= 2"):
        CloseToCloseVol(1)
    with pytest.raises(ValueError, match="fast < slow"):
        MACD(26, 12)
    stream = FeaturePipeline([MarketBeta(3)]).stream()
    with pytest.raises(ValueError, match="update_slice"):
        stream.update("X", {"close": 1.0, "ts": 0, "ts_end": 60})
    with pytest.raises(ValueError, match="stamps differ"):
        stream.update_slice(
            {"A": {"close": 1.0, "ts": 0, "ts_end": 60}, "B": {"close": 1.0, "ts": 0, "ts_end": 61}}
        )
    with pytest.raises(ValueError, match="non-numeric"):
        FeaturePipeline([LogReturn(1)]).stream().update("X", {"close": "12,5", "ts_end": 1})
    stream = FeaturePipeline([LogReturn(1)]).stream()  # a missing value (None) is a null
    stream.update("X", {"close": 10.0, "ts_end": 1})
    assert np.isnan(stream.update("X", {"close": None, "ts_end": 2})).all()
    with pytest.raises(ValueError, match="lacks 'high'"):
        FeaturePipeline([ATR(3)]).stream().update("X", {"low": 1.0, "close": 1.0, "ts_end": 1})


def test_default_sets_have_unique_names_and_plain_params():
    for features, source in (
        (bar_features(), "bars"),
        (quote_features(), "quotes"),
        (trade_features(), "trades"),
    ):
        pipeline = FeaturePipeline(features, source=source)
        assert len(set(pipeline.names)) == len(features)
    assert MACD(output="signal").params == {
        "fast": 12,
        "slow": 26,
        "signal": 9,
        "output": "signal",
        "column": "close",
    }
    assert FracDiff().name == "ffd_0.4_0.0001"
    assert to_ns(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005_000


def test_features_benchmark_runs_end_to_end(tmp_path):
    """The benchmark script on a tiny market: every mode measured, figures written (timings
    are not asserted: the machine is shared)."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "features_bench.py"
    spec = importlib.util.spec_from_file_location("features_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "features.json"
    argv = ["--symbols", "2", "--sessions", "1", "--tick-days", "1", "--repeat", "1"]
    report = bench.main([*argv, "--batch", "64", "--json", str(out)])
    written = json.loads(out.read_text())
    assert written["command"].startswith("python benchmarks/features_bench.py --symbols 2")
    assert set(written["results"]) == {"bars", "quotes", "trades"}
    for figures in written["results"].values():
        assert figures["rows"] > 0
        assert set(figures["ns_per_row"]) == {"vectorised", "events", "batches"}
        assert all(v > 0 for v in figures["ns_per_row"].values())
    assert report["met"].keys() == {"events", "batches"}
