"""Latency and queue-position models, and the trade/quote replay that uses them: tiny tapes whose
fill timing is worked out by hand for the risk-averse and the probabilistic queue."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.execution.orders import Order, OrderStatus, OrderType, RejectCode, Side, TimeInForce
from quant.market import Band
from quant.sim.fills import MarketEvent, ReplayFillSimulator
from quant.sim.latency import ConstantLatency, NormalLatency
from quant.sim.queue import (
    LogProbability,
    PowerProbability,
    ProbabilisticQueue,
    QueuePosition,
    RiskAverseQueue,
    consume,
    filled_qty,
)

B, S = Side.BUY, Side.SELL
T0 = 1_704_265_200_000_000_000  # 2024-01-03 10:00 Istanbul
SEC = 10**9


def sec(x: float) -> int:
    return T0 + round(x * SEC)


def tape(
    trades: list[tuple[float, float, int, int]] | None = None,
    quotes: list[tuple[float, float, int, float, int]] | None = None,
    symbol: str = "AAA",
    condition: str = "C",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Trades (t, price, size, aggressor) and quotes (t, bid, bid size, ask, ask size)."""
    trades, quotes = trades or [], quotes or []
    ts = pl.Datetime("ns", "UTC")
    tr = pl.DataFrame(
        {
            "ts": pl.Series([sec(t[0]) for t in trades], dtype=pl.Int64).cast(ts),
            "symbol": [symbol] * len(trades),
            "price": pl.Series([t[1] for t in trades], dtype=pl.Float64),
            "size": pl.Series([t[2] for t in trades], dtype=pl.Int64),
            "seq": pl.Series(range(len(trades)), dtype=pl.Int64),
            "side": pl.Series([t[3] for t in trades], dtype=pl.Int8),
            "condition": [condition] * len(trades),
        }
    )
    qu = pl.DataFrame(
        {
            "ts": pl.Series([sec(q[0]) for q in quotes], dtype=pl.Int64).cast(ts),
            "symbol": [symbol] * len(quotes),
            "bid_price": pl.Series([q[1] for q in quotes], dtype=pl.Float64),
            "bid_size": pl.Series([q[2] for q in quotes], dtype=pl.Int64),
            "ask_price": pl.Series([q[3] for q in quotes], dtype=pl.Float64),
            "ask_size": pl.Series([q[4] for q in quotes], dtype=pl.Int64),
            "seq": pl.Series(range(len(quotes)), dtype=pl.Int64),
        }
    )
    return tr, qu


# -- latency ------------------------------------------------------------------------------


def test_constant_latency() -> None:
    lat = ConstantLatency(entry=2_000_000, feed=500_000)
    assert (lat.entry_ns(T0), lat.feed_ns(T0)) == (2_000_000, 500_000)
    with pytest.raises(ValueError):
        ConstantLatency(entry=-1)


def test_normal_latency_is_seeded_truncated_and_has_its_moments() -> None:
    a = NormalLatency(1_000_000, 200_000, 300_000, 50_000, seed=5)
    b = NormalLatency(1_000_000, 200_000, 300_000, 50_000, seed=5)
    entry = np.array([a.entry_ns(0) for _ in range(20_000)])
    assert entry.tolist() == [b.entry_ns(0) for _ in range(20_000)]
    assert entry.mean() == pytest.approx(1_000_000, rel=0.01)
    assert entry.std() == pytest.approx(200_000, rel=0.03)
    # Feed draws come from their own stream: reading market data does not move order delays.
    c = NormalLatency(1_000_000, 200_000, 300_000, 50_000, seed=5)
    for _ in range(777):
        c.feed_ns(0)
    assert [c.entry_ns(0) for _ in range(100)] == entry[:100].tolist()
    wide = NormalLatency(100, 1_000, seed=1, floor_ns=10)
    assert min(wide.entry_ns(0) for _ in range(5000)) == 10


# -- queue models -------------------------------------------------------------------------


def test_risk_averse_queue_moves_only_on_trades() -> None:
    q = RiskAverseQueue()
    pos = q.new_order(500)
    q.on_depth(pos, 500, 800)  # joins behind us
    q.on_depth(pos, 800, 600)  # cancels: assumed behind us
    assert pos.front == 500
    q.on_depth(pos, 600, 300)  # the level is now smaller than our queue: at most 300 ahead
    assert pos.front == 300
    q.on_trade(pos, 250)
    assert (pos.front, filled_qty(pos)) == (50, 0)
    q.on_trade(pos, 80)
    assert filled_qty(pos) == 30
    consume(pos, 30)
    assert pos.front == 0


def test_probabilistic_queue_split_matches_the_formula() -> None:
    # front 500, back 300, a 200-share cancel, f(x) = x**2:
    #   p = 300² / (300² + 500²) = 0.2647  (share of the decrease behind us)
    #   front' = 500 - (1 - p) x 200 + min(300 - p x 200, 0) = 352.94
    q = ProbabilisticQueue(PowerProbability(2))
    pos = QueuePosition(front=500)
    q.on_depth(pos, 800, 600)
    p = 300**2 / (300**2 + 500**2)
    assert pos.front == pytest.approx(500 - (1 - p) * 200)
    assert pos.front == pytest.approx(352.941, abs=1e-3)
    # A decrease fully explained by trades does not move us twice.
    q.on_trade(pos, 100)
    before = pos.front
    q.on_depth(pos, 600, 500)
    assert pos.front == before and pos.cum_trade == 0
    # Log variant: p = ln(1 + back) / (ln(1 + back) + ln(1 + front)).
    lq = ProbabilisticQueue(LogProbability())
    pos = QueuePosition(front=100)
    lq.on_depth(pos, 1000, 900)
    p = math.log1p(900) / (math.log1p(900) + math.log1p(100))
    assert pos.front == pytest.approx(100 - (1 - p) * 100)
    # A cancel can bring us to the front, never fill us.
    pos = QueuePosition(front=10)
    q.on_depth(pos, 10, 0)
    assert pos.front == 0 and filled_qty(pos) == 0


# -- replay -------------------------------------------------------------------------------

# The hand-made tape. One buy of 100 @ 10.00 is sent at 0.5 s and, with 1 s of entry latency,
# reaches the exchange at 1.5 s, when 500 shares show at 10.00.
#
#  t    event                       risk-averse front        probabilistic front (x**2)
#  0    quote 10.00 x 500 / 10.02
#  1.5  our order arrives           500                      500
#  2    quote 10.00 x 800           500 (joined behind)      500
#  3    quote 10.00 x 600           500 (cancels behind)     352.94 (see the formula test)
#  4    sell 400 @ 10.00            100                      -47.06 -> fill 47
#  5    quote 10.00 x 200           100                      (decrease = the trade: no move)
#  6    sell 150 @ 10.00            -50 -> fill 50           fill the last 53
#  6.5  buy 300 @ 10.02             (buyer-initiated: not our queue)
#  7    sell 10 @ 9.99              trades through: fill the last 50
HAND_TRADES = [(4, 10.00, 400, -1), (6, 10.00, 150, -1), (6.5, 10.02, 300, 1), (7, 9.99, 10, -1)]
HAND_QUOTES = [
    (0, 10.00, 500, 10.02, 400),
    (2, 10.00, 800, 10.02, 400),
    (3, 10.00, 600, 10.02, 400),
    (5, 10.00, 200, 10.02, 400),
]


def _replay(queue, **kw):
    sim = ReplayFillSimulator(queue, latency=ConstantLatency(entry=SEC), **kw)
    sim.submit(Order("bid", "AAA", B, 100, OrderType.LIMIT, 10.00), sec(0.5))
    return sim, sim.run(*tape(HAND_TRADES, HAND_QUOTES))


def test_replay_risk_averse_queue_hand_tape() -> None:
    sim, out = _replay(RiskAverseQueue())
    assert [(r.status, r.ts_ns) for r in out if not r.last_qty] == [
        (OrderStatus.ACCEPTED, sec(1.5))
    ]
    assert [(r.ts_ns, r.last_qty, r.last_price, r.liquidity) for r in out if r.last_qty] == [
        (sec(6), 50, 10.00, "maker"),
        (sec(7), 50, 10.00, "maker"),
    ]
    assert sim.status("bid").status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_replay_probabilistic_queue_hand_tape() -> None:
    sim, out = _replay(ProbabilisticQueue(PowerProbability(2)))
    assert [(r.ts_ns, r.last_qty, r.last_price) for r in out if r.last_qty] == [
        (sec(4), 47, 10.00),
        (sec(6), 53, 10.00),
    ]
    assert sim.status("bid").status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_replay_entry_latency_decides_which_trades_the_order_sees() -> None:
    # Sent at 3.9 s: with no latency it is on the book before the 4 s sell and is behind 600;
    # with 0.2 s it arrives at 4.1 s, after that print, behind the 200 shown at 5 s.
    trades = [(4, 10.00, 650, -1), (6, 10.00, 250, -1)]
    quotes = [(0, 10.00, 600, 10.02, 400), (5, 10.00, 200, 10.02, 400)]
    for entry, expected in [(0, [(sec(4), 50), (sec(6), 50)]), (SEC // 5, [(sec(6), 50)])]:
        sim = ReplayFillSimulator(RiskAverseQueue(), latency=ConstantLatency(entry=entry))
        sim.submit(Order("bid", "AAA", B, 100, OrderType.LIMIT, 10.00), sec(3.9))
        out = sim.run(*tape(trades, quotes))
        assert [(r.ts_ns, r.last_qty) for r in out if r.last_qty] == expected, entry


def test_replay_feed_latency_delays_what_the_strategy_sees() -> None:
    seen: list[tuple[str, int, int]] = []

    def strategy(event: MarketEvent, sim: ReplayFillSimulator) -> None:
        seen.append((event.kind, event.ts_ns, event.local_ts_ns))
        if event.kind == "trade" and not sim.status("chase"):
            # React to the first print: a buy at the ask, sent on seeing it.
            sim.submit(Order("chase", "AAA", B, 100, OrderType.LIMIT, 10.02), event.local_ts_ns)

    sim = ReplayFillSimulator(RiskAverseQueue(), latency=ConstantLatency(entry=SEC, feed=SEC // 2))
    out = sim.run(*tape(HAND_TRADES[:1], HAND_QUOTES), on_market=strategy)
    assert seen[:2] == [("quote", sec(0), sec(0.5)), ("quote", sec(2), sec(2.5))]
    # The 4 s print is seen at 4.5 s; the order reaches the exchange at 5.5 s and takes the
    # ask shown by the 5 s quote.
    fill = next(r for r in out if r.last_qty)
    assert (fill.ts_ns, fill.last_qty, fill.last_price, fill.liquidity) == (
        sec(5.5),
        100,
        10.02,
        "taker",
    )


def test_replay_marketable_ioc_fok_and_a_quote_crossing_a_resting_sell() -> None:
    quotes = [(0, 10.00, 500, 10.02, 150), (3, 10.05, 100, 10.07, 100)]
    sim = ReplayFillSimulator(RiskAverseQueue())
    sim.submit(Order("ioc", "AAA", B, 200, OrderType.LIMIT, 10.02, TimeInForce.IOC), sec(1))
    sim.submit(Order("fok", "AAA", B, 200, OrderType.LIMIT, 10.02, TimeInForce.FOK), sec(1))
    sim.submit(Order("ask", "AAA", S, 100, OrderType.LIMIT, 10.04), sec(1))
    sim.submit(Order("mkt", "AAA", S, 700, OrderType.MARKET), sec(1))
    out = sim.run(*tape([], quotes))
    by = {oid: [(r.status, r.last_qty, r.last_price) for r in out if r.client_order_id == oid]
          for oid in ("ioc", "fok", "ask", "mkt")}  # fmt: skip
    A, P, F, C = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                  OrderStatus.CANCELLED)  # fmt: skip
    assert by["ioc"] == [(A, 0, 0.0), (P, 150, 10.02), (C, 0, 0.0)]  # takes the 150 shown
    assert by["fok"] == [(A, 0, 0.0), (C, 0, 0.0)]  # 150 shown < 200
    assert by["mkt"] == [(A, 0, 0.0), (P, 500, 10.00), (C, 0, 0.0)]  # the bid's 500, rest gone
    # The 10.04 offer rests better than the 10.02 ask... until the bid lifts to 10.05 at 3 s.
    assert by["ask"] == [(A, 0, 0.0), (F, 100, 10.04)]


def test_replay_rejects_and_ignores_auction_prints() -> None:
    bands = {"AAA": Band(9.00, 11.00, 10.00)}
    sim = ReplayFillSimulator(RiskAverseQueue(), bands=bands)
    sim.submit(Order("off", "AAA", B, 100, OrderType.LIMIT, 10.005), sec(1))
    sim.submit(Order("far", "AAA", B, 100, OrderType.LIMIT, 11.50), sec(1))
    sim.submit(Order("ok", "AAA", B, 100, OrderType.LIMIT, 10.00), sec(1))
    sim.submit(Order("ok", "AAA", B, 100, OrderType.LIMIT, 10.00), sec(1.5))
    trades, quotes = tape([(2, 9.90, 1000, 0)], [(0, 10.00, 10, 10.02, 10)], condition="O")
    out = sim.run(trades, quotes)
    codes = [(r.client_order_id, r.reject_code) for r in out if r.status is OrderStatus.REJECTED]
    assert codes == [
        ("off", RejectCode.OFF_TICK),
        ("far", RejectCode.OUTSIDE_BAND),
        ("ok", RejectCode.DUPLICATE_ORDER_ID),
    ]
    assert sim.status("ok").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    assert not any(r.last_qty for r in out)  # the auction print at 9.90 fills nothing
    (expired,) = sim.expire_all(sec(30_000))
    assert (expired.client_order_id, expired.status) == ("ok", OrderStatus.EXPIRED)
    assert sim.expire_all(sec(30_001)) == []


def test_replay_a_synthetic_day_is_deterministic() -> None:
    market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=2, n_sessions=1, seed=4, trades_per_day=400)
    )
    day = market.sessions()[0]
    session = market.day(day)
    sym = session.reference["symbol"][0]
    first_quote = session.quotes.filter(pl.col("symbol") == sym).row(0, named=True)
    t0 = int(first_quote["ts"].timestamp() * 1e9)

    def run(queue) -> list:
        sim = ReplayFillSimulator(queue, latency=NormalLatency(2e6, 5e5, 1e6, 2e5, seed=9))
        for k in range(5):
            sim.submit(
                Order(f"b{k}", sym, B, 100, OrderType.LIMIT, first_quote["bid_price"]), t0 + k * SEC
            )
            sim.submit(
                Order(f"s{k}", sym, S, 100, OrderType.LIMIT, first_quote["ask_price"]), t0 + k * SEC
            )
        return sim.run_day(market, day, symbols=[sym])

    for queue in (RiskAverseQueue, lambda: ProbabilisticQueue(PowerProbability(3))):
        out = run(queue())
        assert out == run(queue())
        fills = [r for r in out if r.last_qty]
        assert fills, "passive orders at the touch should trade during a session"
        prices = {first_quote["bid_price"], first_quote["ask_price"]}
        assert {r.last_price for r in fills} <= prices
