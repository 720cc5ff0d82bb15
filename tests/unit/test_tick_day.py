"""``run_tick_day``: a strategy over a day's trades and quotes gets on_trade / on_quote in time
order, its orders go through risk to the replay simulator, fills come back as on_fill."""

from __future__ import annotations

from datetime import date

import polars as pl

from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.execution.orders import ExecutionReport, OrderStatus, RejectCode
from quant.sim.latency import ConstantLatency
from quant.sim.strategy import QuoteTick, Strategy, StrategyContext, TradeTick
from quant.sim.tick import run_tick_day

T0 = 1_704_265_200_000_000_000  # 2024-01-03 10:00 Istanbul
SEC = 10**9


def sec(x: float) -> int:
    return T0 + round(x * SEC)


def tape(
    trades: list[tuple[float, float, int, int]], quotes: list[tuple[float, float, int, float, int]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Trades (t, price, size, aggressor) and quotes (t, bid, bid size, ask, ask size) of AAA."""
    ts = pl.Datetime("ns", "UTC")
    tr = pl.DataFrame(
        {
            "ts": pl.Series([sec(t[0]) for t in trades], dtype=pl.Int64).cast(ts),
            "symbol": ["AAA"] * len(trades),
            "price": pl.Series([t[1] for t in trades], dtype=pl.Float64),
            "size": pl.Series([t[2] for t in trades], dtype=pl.Int64),
            "seq": pl.Series(range(len(trades)), dtype=pl.Int64),
            "side": pl.Series([t[3] for t in trades], dtype=pl.Int8),
            "condition": ["C"] * len(trades),
        }
    )
    qu = pl.DataFrame(
        {
            "ts": pl.Series([sec(q[0]) for q in quotes], dtype=pl.Int64).cast(ts),
            "symbol": ["AAA"] * len(quotes),
            "bid_price": pl.Series([q[1] for q in quotes], dtype=pl.Float64),
            "bid_size": pl.Series([q[2] for q in quotes], dtype=pl.Int64),
            "ask_price": pl.Series([q[3] for q in quotes], dtype=pl.Float64),
            "ask_size": pl.Series([q[4] for q in quotes], dtype=pl.Int64),
            "seq": pl.Series(range(len(quotes)), dtype=pl.Int64),
        }
    )
    return tr, qu


TRADES = [(2, 10.02, 300, 1), (4, 10.00, 500, -1)]
QUOTES = [(0, 10.00, 800, 10.02, 400), (2, 10.00, 800, 10.02, 100), (3, 10.00, 600, 10.03, 900)]


class Recorder(Strategy):
    """Buys 100 at the ask on the first print it sees; records every callback."""

    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int, int]] = []
        self.fills: list[ExecutionReport] = []
        self.updates: list[OrderStatus] = []
        self.sent: ExecutionReport | None = None

    def on_session_start(self, ctx: StrategyContext, day: date) -> None:
        self.seen.append(("start", 0, ctx.now_ns()))

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        self.seen.append(("quote", quote.ts_ns, ctx.now_ns()))

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        self.seen.append(("trade", trade.ts_ns, ctx.now_ns()))
        if self.sent is None:
            self.sent = ctx.buy(trade.symbol, 100, limit_price=10.02)

    def on_fill(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        self.fills.append(report)
        self.seen.append(("fill", report.ts_ns, ctx.now_ns()))

    def on_order_update(self, ctx: StrategyContext, report: ExecutionReport) -> None:
        self.updates.append(report.status)

    def on_session_end(self, ctx: StrategyContext, day: date) -> None:
        self.seen.append(("end", 0, ctx.now_ns()))


def test_ticks_arrive_in_time_order_after_the_feed_latency_and_orders_fill() -> None:
    strategy = Recorder()
    latency = ConstantLatency(entry=SEC // 2, feed=SEC // 10)
    result = run_tick_day(strategy, *tape(TRADES, QUOTES), latency=latency)
    assert result.error is None
    market = [(k, ts, now) for k, ts, now in strategy.seen if k in ("quote", "trade")]
    # every event, quotes before the trade at the same exchange time, each at ts + feed
    assert [(k, ts) for k, ts, _ in market] == [
        ("quote", sec(0)),
        ("quote", sec(2)),
        ("trade", sec(2)),
        ("quote", sec(3)),
        ("trade", sec(4)),
    ]
    assert all(now == ts + SEC // 10 for _, ts, now in market)
    clock = [now for _, _, now in strategy.seen]
    assert clock == sorted(clock)
    assert (result.trades_seen, result.quotes_seen) == (2, 3)
    # sent on seeing the 2 s print (at 2.1 s), at the exchange at 2.6 s: the 2 s quote shows
    # 100 at 10.02, which it takes
    assert strategy.sent is not None and strategy.sent.status is OrderStatus.NEW
    (fill,) = strategy.fills
    assert (fill.ts_ns, fill.last_qty, fill.last_price, fill.liquidity) == (
        sec(2.6),
        100,
        10.02,
        "taker",
    )
    assert strategy.updates == [OrderStatus.ACCEPTED]
    # the fill reached the strategy before the next market event (the 3 s quote at 3.1 s)
    kinds = [k for k, _, _ in strategy.seen]
    assert kinds.index("fill") == kinds.index("trade") + 1
    assert strategy.seen[-1][0] == "end"
    assert result.portfolio.quantity("AAA") == 100
    assert result.portfolio.cash == 1_000_000.0 - 1002.0
    assert result.orders[strategy.sent.client_order_id].status is OrderStatus.FILLED


class Rejected(Strategy):
    name = "rejected"

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[ExecutionReport] = []

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        if not self.answers:
            self.answers.append(ctx.buy("ZZZ", 100, limit_price=10.0))  # not in the universe
            self.answers.append(ctx.sell(quote.symbol, 100, limit_price=10.02))  # no position
            self.answers.append(ctx.buy(quote.symbol, 100, limit_price=10.005))  # off the grid


def test_risk_rejects_come_back_from_submit_and_never_reach_the_exchange() -> None:
    strategy = Rejected()
    result = run_tick_day(strategy, *tape(TRADES, QUOTES))
    assert [(r.status, r.reject_code) for r in strategy.answers] == [
        (OrderStatus.REJECTED, RejectCode.UNKNOWN_SYMBOL),
        (OrderStatus.REJECTED, RejectCode.SHORT_SALE),
        (OrderStatus.REJECTED, RejectCode.OFF_TICK),
    ]
    assert result.fills == [] and result.orders == {}


class Raises(Strategy):
    name = "raises"

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        raise RuntimeError("boom")


def test_a_strategy_that_raises_stops_the_day_with_a_message() -> None:
    result = run_tick_day(Raises(), *tape(TRADES, QUOTES))
    assert result.error is not None
    assert "'raises'" in result.error and "RuntimeError: boom" in result.error
    assert "on_trade for AAA" in result.error
    assert result.trades_seen == 1  # stopped at the first print


class Passive(Strategy):
    """Joins the bid and the offer at the first quote of each symbol, 100 shares each."""

    name = "passive"

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        if not ctx.open_orders(quote.symbol) and not ctx.position(quote.symbol):
            ctx.buy(quote.symbol, 100, limit_price=quote.bid_price)


def test_a_synthetic_day_replays_deterministically_and_expires_what_is_left() -> None:
    market = SyntheticMarket(
        SyntheticMarketConfig(n_symbols=2, n_sessions=1, seed=4, trades_per_day=400)
    )
    day = market.sessions()[0]
    session = market.day(day)

    def run() -> tuple[list[tuple], dict]:
        result = run_tick_day(Passive(), session.trades, session.quotes)
        assert result.error is None
        assert result.quotes_seen == session.quotes.height
        reports = [
            (r.client_order_id, r.status, r.ts_ns, r.last_qty, r.last_price) for r in result.reports
        ]
        return reports, result.orders

    reports, orders = run()
    assert reports == run()[0]
    assert any(qty for *_, qty, _ in reports), "bids at the touch should trade during a day"
    # nothing is left working after the session: every order ended (filled or expired)
    assert orders and all(st.status.is_terminal for st in orders.values())
