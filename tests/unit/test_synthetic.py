"""The synthetic BIST market obeys the market's rules and shows the stylised facts it claims."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant.data.schema import DataKind, polars_schema
from quant.data.synthetic import SyntheticDay, SyntheticMarket, SyntheticMarketConfig
from quant.market import (
    BIST_SHARE_TICKS,
    ISTANBUL,
    CircuitBreakers,
    PriceBand,
    SessionPhase,
    TradingCalendar,
)

CAL = TradingCalendar()
BANDS = PriceBand()
BREAKERS = CircuitBreakers()
HALF_DAY = date(2024, 4, 9)
RAMADAN = [date(2024, 4, 10), date(2024, 4, 11), date(2024, 4, 12)]

# Eight sessions around the 2024 Ramadan holiday: 2024-04-09 is a half day, 10-12 are closed.
SMALL = SyntheticMarketConfig(
    n_symbols=6,
    start=date(2024, 4, 3),
    n_sessions=8,
    seed=11,
    trades_per_day=400,
    splits_per_year=150.0,
    dividends_per_year=150.0,
)


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(SMALL)


@pytest.fixture(scope="module")
def days(market: SyntheticMarket) -> list[SyntheticDay]:
    return list(market.iter_days())


@pytest.fixture(scope="module")
def stormy() -> SyntheticMarket:
    """Volatile enough that circuit breakers trip on most days."""
    config = SyntheticMarketConfig(
        n_symbols=5,
        start=date(2024, 3, 4),
        n_sessions=3,
        seed=5,
        trades_per_day=300,
        idio_vol=(0.9, 1.0),
    )
    return SyntheticMarket(config)


def _windows(day: date) -> dict[SessionPhase, tuple[datetime, datetime]]:
    """Phase windows of ``day`` as UTC datetimes."""
    info = CAL.session(day)
    assert info is not None
    return {w.phase: tuple(x.astimezone(UTC) for x in info.bounds(w.phase)) for w in info.windows}


def _lit(moment: datetime) -> pl.Expr:
    return pl.lit(moment, dtype=pl.Datetime("ns", "UTC"))


def _in(ts: pl.Expr, window: tuple[datetime, datetime]) -> pl.Expr:
    return (ts >= _lit(window[0])) & (ts < _lit(window[1]))


def _expected_previous_close(market: SyntheticMarket, day: date, closes: pl.DataFrame):
    """The previous session's closing print adjusted for the ex-date's corporate action."""
    actions = market.corporate_actions().filter(pl.col("ex_date") == day)
    frame = closes.join(actions, on="symbol", how="left")
    return frame.select(
        "symbol",
        pl.when(pl.col("kind") == "dividend")
        .then(pl.col("close") - pl.col("amount"))
        .when(pl.col("kind").is_in(["split", "bonus"]))
        .then(pl.col("close") / pl.col("ratio"))
        .otherwise(pl.col("close"))
        .alias("expected"),
    )


# --- configuration, universe, calendar ------------------------------------------------------


def test_bad_config_is_rejected_with_reasons() -> None:
    with pytest.raises(ValueError, match=r"n_symbols.*price_min"):
        SyntheticMarketConfig(n_symbols=0, price_min=-1.0)
    with pytest.raises(ValueError, match="GARCH"):
        SyntheticMarketConfig(garch_alpha=0.5, garch_beta=0.6)


def test_everything_is_labelled_synthetic(market: SyntheticMarket) -> None:
    instruments = market.instruments()
    assert [i.symbol for i in instruments] == market.symbols
    assert all(i.symbol.startswith("SYN") for i in instruments)
    assert all("synthetic" in i.name.lower() for i in instruments)
    assert all(i.sector in SMALL.sectors for i in instruments)
    assert market.metadata["synthetic"] == "true"
    assert market.metadata["seed"] == str(SMALL.seed)


def test_default_universe_spans_every_tick_tier() -> None:
    market = SyntheticMarket(SyntheticMarketConfig(n_sessions=1))
    first = market.sessions()[0]
    opens = market.daily_reference()["open"].to_numpy()
    assert len(market.symbols) == 30
    ticks = set(BIST_SHARE_TICKS.tick_sizes(opens, first).tolist())
    tiers = {t.tick for t in BIST_SHARE_TICKS.schedule_on(first).tiers}
    assert ticks == tiers
    assert 4.5 <= opens.min() < 6 and opens.max() >= 2500


def test_sessions_follow_the_xist_calendar(market: SyntheticMarket) -> None:
    sessions = market.sessions()
    assert sessions == CAL.sessions(SMALL.start, date(2024, 4, 30))[: SMALL.n_sessions]
    assert HALF_DAY in sessions and CAL.is_half_day(HALF_DAY)
    for holiday in RAMADAN:
        assert not CAL.is_session(holiday)
        assert holiday not in sessions
        with pytest.raises(ValueError, match="not a XIST session"):
            market.day(holiday)
    with pytest.raises(ValueError, match="outside the synthetic market"):
        market.day(date(2024, 6, 3))


def test_too_many_sessions_for_the_calendar_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="calendar has only"):
        SyntheticMarket(SyntheticMarketConfig(start=date(2027, 11, 1), n_sessions=100))


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_market_other_seed_other_market(
    market: SyntheticMarket, days: list[SyntheticDay]
) -> None:
    again = SyntheticMarket(SMALL)
    # A fresh instance asked for the days in reverse order gives the same days: no hidden state.
    for d in reversed(days):
        other = again.day(d.day)
        assert other.trades.equals(d.trades)
        assert other.quotes.equals(d.quotes)
        assert other.halts == d.halts
    assert again.minute_bars().equals(market.minute_bars())
    assert again.corporate_actions().equals(market.corporate_actions())

    different = SyntheticMarket(SyntheticMarketConfig(**{**SMALL.__dict__, "seed": 12}))
    assert not different.day(days[0].day).trades.equals(days[0].trades)
    assert not different.minute_bars().equals(market.minute_bars())


def test_a_symbol_day_does_not_depend_on_the_horizon() -> None:
    """The latent path of (seed, symbol, day) is the same in a longer market."""
    short = SyntheticMarket(SyntheticMarketConfig(**{**SMALL.__dict__, "n_sessions": 3}))
    d = short.sessions()[2]
    longer = SyntheticMarket(SMALL)
    assert short.day(d).trades.equals(longer.day(d).trades)


# --- ticks, bands, phases -------------------------------------------------------------------


def test_frames_have_the_lake_schemas(days: list[SyntheticDay]) -> None:
    for d in days:
        assert d.trades.schema == polars_schema(DataKind.TRADES)
        assert d.quotes.schema == polars_schema(DataKind.QUOTES)
        assert d.synthetic


def test_every_price_is_on_the_tick_grid(days: list[SyntheticDay]) -> None:
    for d in days:
        assert BIST_SHARE_TICKS.on_tick_mask(d.trades["price"].to_numpy(), d.day).all()
        for side in ("bid_price", "ask_price"):
            assert BIST_SHARE_TICKS.on_tick_mask(d.quotes[side].to_numpy(), d.day).all()


def test_every_price_is_inside_the_daily_band_of_the_previous_close(
    market: SyntheticMarket, days: list[SyntheticDay]
) -> None:
    previous: pl.DataFrame | None = None
    for d in days:
        ref = d.reference
        if previous is not None:
            expected = _expected_previous_close(market, d.day, previous)
            got = ref.join(expected, on="symbol")
            assert np.allclose(got["previous_close"], got["expected"], rtol=0, atol=1e-9)
        bands = pl.DataFrame(
            [
                {"symbol": s, "lower": b.lower, "upper": b.upper}
                for s, p in zip(ref["symbol"], ref["previous_close"], strict=True)
                for b in [BANDS.daily(p, d.day)]
            ]
        )
        trades = d.trades.join(bands, on="symbol")
        assert trades.filter(
            (pl.col("price") < pl.col("lower")) | (pl.col("price") > pl.col("upper"))
        ).is_empty()
        quotes = d.quotes.join(bands, on="symbol")
        assert quotes.filter(
            (pl.col("bid_price") < pl.col("lower")) | (pl.col("ask_price") > pl.col("upper"))
        ).is_empty()
        # the previous close for the next session is this session's closing print
        previous = d.trades.filter(pl.col("condition") == "K").select(
            "symbol", pl.col("price").alias("close")
        )


def test_trades_only_in_trading_phases(days: list[SyntheticDay]) -> None:
    expected = {
        "O": SessionPhase.OPENING_UNCROSS,
        "C": SessionPhase.CONTINUOUS,
        "H": SessionPhase.CONTINUOUS,
        "K": SessionPhase.CLOSING_UNCROSS,
        "T": SessionPhase.TRADES_AT_CLOSE,
    }
    for d in days:
        windows = _windows(d.day)
        trades = d.trades
        assert set(trades["condition"].unique()) <= set(expected)
        for condition, phase in expected.items():
            rows = trades.filter(pl.col("condition") == condition)
            assert rows.filter(~_in(pl.col("ts"), windows[phase])).is_empty()
        for phase in (SessionPhase.OPENING_AUCTION, SessionPhase.CLOSING_AUCTION):
            assert trades.filter(_in(pl.col("ts"), windows[phase])).is_empty()
        # the calendar agrees, on a sample that covers every condition
        sample = pl.concat(
            [trades.filter(pl.col("condition") == c).head(20) for c in expected]
        ).sample(n=40, seed=1, with_replacement=True)
        for ts, condition in sample.select("ts", "condition").iter_rows():
            phase = CAL.phase_at(ts)
            assert phase.trades_allowed and phase is expected[condition]


def test_one_opening_and_one_closing_print_per_symbol_day(days: list[SyntheticDay]) -> None:
    for d in days:
        trades = d.trades
        for condition in ("O", "K"):
            counts = trades.filter(pl.col("condition") == condition).group_by("symbol").len()
            assert counts.height == SMALL.n_symbols and (counts["len"] == 1).all()
        opens = trades.filter(pl.col("condition") == "O").join(d.reference, on="symbol")
        assert (opens["price"] == opens["open"]).all()
        closes = trades.filter(pl.col("condition") == "K").join(d.reference, on="symbol")
        assert (closes["price"] == closes["close"]).all()
        at_close = trades.filter(pl.col("condition") == "T").join(closes, on="symbol")
        assert (at_close["price"] == at_close["price_right"]).all()


def test_closing_print_is_inside_the_closing_band(days: list[SyntheticDay]) -> None:
    for d in days:
        last = (
            d.trades.filter(pl.col("condition") == "C")
            .group_by("symbol")
            .agg(pl.col("price").sort_by("ts").last().alias("last"))
            .join(d.reference, on="symbol")
        )
        assert (last["last"] == last["last_continuous"]).all()
        for row in last.iter_rows(named=True):
            daily = BANDS.daily(row["previous_close"], d.day)
            closing = BANDS.closing(row["last"], d.day, daily)
            assert closing.contains(row["close"])


def test_sequence_numbers_and_timestamps_increase(days: list[SyntheticDay]) -> None:
    for d in days:
        for frame, strict in ((d.trades, False), (d.quotes, True)):
            check = frame.group_by("symbol").agg(
                (pl.col("seq").diff().drop_nulls() == 1).all().alias("seq"),
                (pl.col("ts").diff().drop_nulls().dt.total_nanoseconds() >= int(strict))
                .all()
                .alias("ts"),
                (pl.col("seq").first() == 0).alias("first"),
            )
            assert check["seq"].all() and check["ts"].all() and check["first"].all()


def test_quotes_are_l1_a_few_ticks_wide_during_continuous_trading(
    days: list[SyntheticDay],
) -> None:
    for d in days:
        q = d.quotes
        assert (q["bid_price"] < q["ask_price"]).all()
        assert (q["bid_size"] > 0).all() and (q["ask_size"] > 0).all()
        assert q.filter(~_in(pl.col("ts"), _windows(d.day)[SessionPhase.CONTINUOUS])).is_empty()
        bid = q["bid_price"].to_numpy()
        ticks = BIST_SHARE_TICKS.tick_sizes(bid, d.day)
        width = np.rint((q["ask_price"].to_numpy() - bid) / ticks)
        assert width.min() >= 1 and width.max() <= SMALL.max_spread_ticks + 1
        assert 1.2 < width.mean() < 3.5


def test_continuous_trades_hit_the_bid_or_lift_the_ask(days: list[SyntheticDay]) -> None:
    for d in days:
        trades = d.trades.filter(pl.col("condition") == "C").sort("symbol", "ts")
        joined = trades.join_asof(
            d.quotes.sort("symbol", "ts"),
            on="ts",
            by="symbol",
            strategy="backward",
            check_sortedness=False,
        )
        assert joined["bid_price"].null_count() == 0
        buys, sells = joined.filter(pl.col("side") == 1), joined.filter(pl.col("side") == -1)
        assert buys.height + sells.height == joined.height
        assert (buys["price"] == buys["ask_price"]).all()
        assert (sells["price"] == sells["bid_price"]).all()
        auctions = d.trades.filter(pl.col("condition").is_in(["O", "K", "H"]))
        assert (auctions["side"] == 0).all()


def test_half_day_closes_at_half_past_twelve(market: SyntheticMarket) -> None:
    day = market.day(HALF_DAY)
    assert day.half_day
    windows = _windows(HALF_DAY)
    continuous = windows[SessionPhase.CONTINUOUS]
    closes_at = continuous[1].astimezone(ISTANBUL)
    assert (closes_at.hour, closes_at.minute) == (12, 30)
    c = day.trades.filter(pl.col("condition") == "C")
    assert c["ts"].max() < continuous[1] and c["ts"].min() >= continuous[0]
    closing = day.trades.filter(pl.col("condition") == "K")
    assert closing.filter(~_in(pl.col("ts"), windows[SessionPhase.CLOSING_UNCROSS])).is_empty()
    # 150 continuous minutes: 151 latent boundaries per symbol
    assert day.latent.group_by("symbol").len()["len"].to_list() == [151] * SMALL.n_symbols
    full = market.day(date(2024, 4, 8))
    assert full.latent.group_by("symbol").len()["len"].to_list() == [481] * SMALL.n_symbols
    assert day.trades.height < full.trades.height
    bars = market.minute_bars(HALF_DAY, HALF_DAY)
    assert bars["ts_end"].max() <= windows[SessionPhase.TRADES_AT_CLOSE][1]


# --- halts ----------------------------------------------------------------------------------


def test_circuit_breaker_halts_stop_trading_and_end_in_an_auction(
    stormy: SyntheticMarket,
) -> None:
    n_halts = 0
    for d in stormy.iter_days():
        rule = BREAKERS.rule_on(d.day)
        bars = stormy.minute_bars(d.day, d.day)
        for h in d.halts:
            n_halts += 1
            assert h.end - h.start == timedelta(minutes=5) == rule.single_stock_auction
            assert BREAKERS.single_stock_triggered(h.trigger_price, h.reference, d.day)
            mine = d.trades.filter(pl.col("symbol") == h.symbol)
            inside = (pl.col("ts") > _lit(h.start)) & (pl.col("ts") < _lit(h.end))
            assert mine.filter(inside).is_empty()
            assert d.quotes.filter((pl.col("symbol") == h.symbol) & inside).is_empty()
            uncross = mine.filter(pl.col("condition") == "H").filter(pl.col("ts") == h.end)
            assert uncross["price"].to_list() == [h.uncross_price]
            # before the halt, no trade moved 5% from the reference
            before = mine.filter(
                (pl.col("condition") == "C")
                & (pl.col("ts") < _lit(h.start))
                & (pl.col("ts") >= _lit(h.start - timedelta(minutes=3)))
            )
            assert not any(
                BREAKERS.single_stock_triggered(p, h.reference, d.day) for p in before["price"]
            )
            halted_bars = bars.filter(
                (pl.col("symbol") == h.symbol)
                & (pl.col("ts") >= _lit(h.start))
                & (pl.col("ts") < _lit(h.end))
            )
            assert halted_bars.is_empty()
        h_prints = d.trades.filter(pl.col("condition") == "H")
        assert h_prints.height == len(d.halts)
    assert n_halts >= 3


def test_rule_changes_inside_the_horizon_are_followed() -> None:
    """The tick table changed on 2023-08-28 and the halt auction grew to 10 minutes on
    2025-09-01: each day uses the rules in force that day."""
    ticks = SyntheticMarket(
        SyntheticMarketConfig(
            n_symbols=8, start=date(2023, 8, 24), n_sessions=3, seed=2, trades_per_day=200
        )
    )
    for d in ticks.iter_days():
        prices = d.trades["price"].to_numpy()
        assert BIST_SHARE_TICKS.on_tick_mask(prices, d.day).all()
        expensive = prices[prices > 1000]
        assert expensive.size
        on_old_grid = BIST_SHARE_TICKS.on_tick_mask(expensive, date(2023, 8, 25))
        on_new_grid = BIST_SHARE_TICKS.on_tick_mask(expensive, date(2023, 8, 28))
        if d.day < date(2023, 8, 28):
            assert on_old_grid.all() and not on_new_grid.all()
        else:
            assert on_new_grid.all()
    halts = SyntheticMarket(
        SyntheticMarketConfig(
            n_symbols=6,
            start=date(2025, 8, 28),
            n_sessions=4,
            seed=5,
            trades_per_day=200,
            idio_vol=(0.9, 1.0),
        )
    )
    lengths: dict[bool, set[timedelta]] = {False: set(), True: set()}
    for d in halts.iter_days():
        lengths[d.day >= date(2025, 9, 1)] |= {h.end - h.start for h in d.halts}
    assert lengths == {False: {timedelta(minutes=5)}, True: {timedelta(minutes=10)}}


def test_breakers_can_be_switched_off() -> None:
    config = SyntheticMarketConfig(
        n_symbols=5,
        start=date(2024, 3, 4),
        n_sessions=3,
        seed=5,
        trades_per_day=300,
        idio_vol=(0.9, 1.0),
        circuit_breakers=False,
    )
    market = SyntheticMarket(config)
    for d in market.iter_days():
        assert d.halts == []
        assert d.trades.filter(pl.col("condition") == "H").is_empty()


# --- stylised facts -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def month_of_bars() -> pl.DataFrame:
    market = SyntheticMarket(SyntheticMarketConfig(n_symbols=20, n_sessions=20, seed=3))
    bars = market.minute_bars()
    local = pl.col("ts").dt.convert_time_zone("Europe/Istanbul")
    return bars.with_columns(
        local.dt.date().alias("day"),
        (local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32) - 600).alias(
            "minute"
        ),
    ).filter((pl.col("minute") >= 0) & (pl.col("minute") < 480))


def test_intraday_activity_is_u_shaped(month_of_bars: pl.DataFrame) -> None:
    profile = month_of_bars.group_by("minute").agg(
        pl.col("trade_count").sum(), pl.col("volume").sum()
    )
    first = profile.filter(pl.col("minute") < 60).mean()
    midday = profile.filter((pl.col("minute") >= 120) & (pl.col("minute") < 360)).mean()
    last = profile.filter(pl.col("minute") >= 420).mean()
    for column in ("trade_count", "volume"):
        assert first[column][0] > 1.3 * midday[column][0]
        assert last[column][0] > 1.3 * midday[column][0]


def test_absolute_one_minute_returns_cluster(month_of_bars: pl.DataFrame) -> None:
    returns = (
        month_of_bars.sort("symbol", "ts")
        .with_columns(pl.col("close").log().diff().over("symbol", "day").alias("r"))
        .drop_nulls("r")
        # Without the intraday seasonality and each symbol-day's own scale, what is left is
        # the clustering of the stochastic intraday variance (lag 1 also carries bid-ask
        # bounce, so the deseasonalised check looks at lags 2 to 10).
        .with_columns(
            (
                pl.col("r").abs()
                / pl.col("r").abs().mean().over("minute")
                / pl.col("r").abs().mean().over("symbol", "day")
            ).alias("a")
        )
    )

    def acf(x: np.ndarray, lag: int) -> float:
        x = np.abs(x) - np.abs(x).mean()
        return float((x[:-lag] * x[lag:]).sum() / (x * x).sum())

    raw, scaled = returns["r"].to_numpy(), returns["a"].to_numpy()
    assert acf(raw, 1) > 4 / np.sqrt(raw.size)
    assert np.mean([acf(scaled, lag) for lag in range(2, 11)]) > 2.5 / np.sqrt(scaled.size)


def test_absolute_daily_returns_cluster() -> None:
    """GARCH(1,1) and the calm/volatile regimes make big days follow big days."""
    market = SyntheticMarket(SyntheticMarketConfig(n_sessions=250, seed=3))
    ref = market.daily_reference()
    closes = ref.pivot(on="symbol", index="day", values="close").drop("day").to_numpy()
    moves = np.abs(np.diff(np.log(closes), axis=0))
    moves = np.where(moves < 0.095, moves, np.median(moves))  # corporate-action gaps out
    x = moves - moves.mean(axis=0)
    acf1 = (x[:-1] * x[1:]).sum() / (x * x).sum()
    assert acf1 > 4 / np.sqrt(x.size)
    assert ref.filter(pl.col("regime") == "volatile").height > 0


def test_market_factor_moves_symbols_together() -> None:
    market = SyntheticMarket(SyntheticMarketConfig(n_symbols=8, n_sessions=60, seed=4))
    ref = market.daily_reference()
    closes = ref.pivot(on="symbol", index="day", values="close").drop("day").to_numpy()
    returns = np.diff(np.log(closes), axis=0)
    ok = np.abs(returns) < 0.09  # leave out corporate-action gaps
    corr = np.corrcoef(np.where(ok, returns, 0.0).T)
    assert corr[np.triu_indices(8, 1)].mean() > 0.15
    assert set(ref["regime"].unique()) <= {"calm", "volatile"}


# --- the fast path --------------------------------------------------------------------------


def _check_reference(ref: pl.DataFrame, market: SyntheticMarket) -> None:
    """Bands come from the previous close, adjusted on ex-dates, exactly as ``PriceBand`` says."""
    sessions = market.sessions()
    previous = ref.select(
        pl.col("day").replace_strict(dict(itertools.pairwise(sessions)), default=None),
        "symbol",
        "close",
    ).drop_nulls("day")
    for day, frame in previous.group_by("day"):
        expected = _expected_previous_close(market, day[0], frame.drop("day"))
        got = ref.filter(pl.col("day") == day[0]).join(expected, on="symbol")
        assert np.allclose(got["previous_close"], got["expected"], rtol=0, atol=1e-9)
    for row in ref.iter_rows(named=True):
        band = BANDS.daily(row["previous_close"], row["day"])
        assert (band.lower, band.upper) == (row["band_lower"], row["band_upper"])
        assert band.contains(row["open"]) and band.contains(row["close"])
        closing = BANDS.closing(row["last_continuous"], row["day"], band)
        assert closing.contains(row["close"])


def _check_bars(bars: pl.DataFrame, market: SyntheticMarket) -> None:
    assert bars.schema == polars_schema(DataKind.BARS)
    assert bars.filter(
        (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("vwap") < pl.col("low") - 1e-9)
        | (pl.col("vwap") > pl.col("high") + 1e-9)
        | (pl.col("volume") <= 0)
        | (pl.col("trade_count") <= 0)
        | (pl.col("ts_end") - pl.col("ts") != timedelta(minutes=1))
    ).is_empty()
    local_day = pl.col("ts").dt.convert_time_zone("Europe/Istanbul").dt.date()
    bars = bars.with_columns(local_day.alias("day"))
    sessions = set(market.sessions())
    assert set(bars["day"].unique().to_list()) <= sessions
    ref = market.daily_reference()
    _check_reference(ref, market)
    joined = bars.join(ref, on=["day", "symbol"])
    assert joined.height == bars.height
    assert joined.filter(
        (pl.col("low") < pl.col("band_lower")) | (pl.col("high") > pl.col("band_upper"))
    ).is_empty()
    windows = pl.DataFrame(
        [
            {
                "day": d,
                "cont_start": w[SessionPhase.CONTINUOUS][0],
                "cont_end": w[SessionPhase.CONTINUOUS][1],
                "open_start": w[SessionPhase.OPENING_UNCROSS][0],
                "open_end": w[SessionPhase.OPENING_UNCROSS][1],
                "close_start": w[SessionPhase.CLOSING_UNCROSS][0],
                "close_end": w[SessionPhase.TRADES_AT_CLOSE][1],
            }
            for d in market.sessions()
            for w in [_windows(d)]
        ]
    ).with_columns(pl.exclude("day").dt.convert_time_zone("UTC"))
    timed = bars.join(windows, on="day")
    continuous = (pl.col("ts") >= pl.col("cont_start")) & (pl.col("ts_end") <= pl.col("cont_end"))
    opening = (pl.col("ts") >= pl.col("open_start")) & (pl.col("ts") < pl.col("open_end"))
    closing = (pl.col("ts") >= pl.col("close_start")) & (pl.col("ts") < pl.col("close_end"))
    assert timed.filter(~(continuous | opening | closing)).is_empty()
    # one opening bar per symbol-day
    opens = timed.filter(opening).group_by("day", "symbol").len()
    assert opens.height == len(sessions) * len(market.symbols) and (opens["len"] == 1).all()
    for (day,), frame in bars.group_by("day"):
        for column in ("open", "high", "low", "close"):
            assert BIST_SHARE_TICKS.on_tick_mask(frame[column].to_numpy(), day).all(), day


def test_fast_bars_obey_ticks_bands_and_sessions(market: SyntheticMarket) -> None:
    bars = market.minute_bars()
    _check_bars(bars, market)
    assert bars.equals(
        pl.concat(list(market.iter_minute_bars(sessions_per_chunk=3))).sort("symbol", "ts")
    )
    part = market.minute_bars(date(2024, 4, 8), HALF_DAY)
    assert part.equals(
        bars.filter(
            pl.col("ts")
            .dt.convert_time_zone("Europe/Istanbul")
            .dt.date()
            .is_in([date(2024, 4, 8), HALF_DAY])
        )
    )


@pytest.mark.parametrize(("which", "index"), [("market", 3), ("market", 4), ("stormy", 1)])
def test_bars_and_ticks_describe_the_same_market(
    which: str, index: int, request: pytest.FixtureRequest
) -> None:
    market: SyntheticMarket = request.getfixturevalue(which)
    d = market.day(market.sessions()[index])
    if which == "stormy":
        assert d.halts  # the halt uncross prints are part of what must agree
    bars = market.minute_bars(d.day, d.day)
    # The latent path at minute boundaries is the same whichever way it is computed.
    latent = market.latent().filter(
        pl.col("ts").dt.convert_time_zone("Europe/Istanbul").dt.date() == d.day
    )
    assert latent.equals(d.latent.sort("symbol", "ts"))
    # Trade counts per minute agree exactly, and so do the auction prints.
    ticks = (
        d.trades.with_columns(pl.col("ts").dt.truncate("1m").alias("minute"))
        .group_by("symbol", "minute")
        .agg(pl.len().alias("n"), pl.col("size").sum().alias("volume"))
    )
    joined = bars.join(ticks, left_on=["symbol", "ts"], right_on=["symbol", "minute"], how="full")
    assert joined["n"].null_count() == 0 and joined["trade_count"].null_count() == 0
    assert (joined["n"] == joined["trade_count"]).all()
    auctions = d.trades.filter(pl.col("condition").is_in(["O", "K"])).with_columns(
        pl.col("ts").dt.truncate("1m")
    )
    same = auctions.join(bars, on=["symbol", "ts"])
    assert same.height == auctions.height
    assert (same["price"] == same["close"]).all() and (same["size"] == same["volume"]).all()
    # The last continuous minute closes at the day's last continuous trade.
    cont_end = _windows(d.day)[SessionPhase.CONTINUOUS][1]
    last_bar = bars.filter(pl.col("ts_end") == cont_end).join(d.reference, on="symbol")
    assert last_bar.height == len(market.symbols)
    assert (last_bar["close"] == last_bar["last_continuous"]).all()
    # Bars' closes track the latent price within a few ticks (not exactly: other draws).
    cont = bars.join(
        d.latent.with_columns((pl.col("ts") - timedelta(minutes=1)).cast(pl.Datetime("ns", "UTC"))),
        on=["symbol", "ts"],
    )
    ticks_away = (cont["close"] - cont["mid"]).abs() / BIST_SHARE_TICKS.tick_sizes(
        cont["close"].to_numpy(), d.day
    )
    assert np.median(ticks_away.to_numpy()) < 3


@pytest.mark.slow
def test_a_year_of_minute_bars_for_thirty_symbols() -> None:
    market = SyntheticMarket()
    bars = market.minute_bars()
    assert len(market.sessions()) == 250 and len(market.symbols) == 30
    assert bars.height > 2_500_000
    _check_bars(bars, market)
    days = set(bars["ts"].dt.convert_time_zone("Europe/Istanbul").dt.date().unique().to_list())
    assert days == set(market.sessions())
    assert not days & set(CAL.holidays(date(2024, 1, 1), date(2024, 12, 31)))


# --- corporate actions ----------------------------------------------------------------------


def test_corporate_actions_move_raw_prices_on_the_ex_date(
    market: SyntheticMarket, days: list[SyntheticDay]
) -> None:
    actions = market.corporate_actions()
    assert actions.schema == polars_schema(DataKind.CORPORATE_ACTIONS)
    kinds = set(actions["kind"])
    assert "dividend" in kinds and kinds & {"split", "bonus"}
    by_day = {d.day: d for d in days}
    sessions = market.sessions()
    for row in actions.iter_rows(named=True):
        today = by_day[row["ex_date"]]
        yesterday = by_day[sessions[sessions.index(row["ex_date"]) - 1]]
        prev_close = yesterday.trades.filter(
            (pl.col("symbol") == row["symbol"]) & (pl.col("condition") == "K")
        )["price"].item()
        opening = today.trades.filter(
            (pl.col("symbol") == row["symbol"]) & (pl.col("condition") == "O")
        )["price"].item()
        if row["kind"] == "dividend":
            assert 0 < row["amount"] < prev_close
            theoretical = prev_close - row["amount"]
        else:
            assert row["ratio"] > 1
            theoretical = prev_close / row["ratio"]
        reference = today.reference.filter(pl.col("symbol") == row["symbol"])
        assert reference["previous_close"].item() == pytest.approx(theoretical, abs=1e-9)
        band = BANDS.daily(theoretical, row["ex_date"])
        assert band.contains(opening)
        if row["kind"] != "dividend":
            # a raw gap the unadjusted band would never have allowed
            assert opening < BANDS.daily(prev_close, row["ex_date"]).lower


# --- the vectorised tick rounding added for the generator -----------------------------------


@pytest.mark.parametrize("day", [date(2023, 8, 25), date(2023, 8, 28)])
@pytest.mark.parametrize("mode", ["up", "down", "nearest"])
def test_round_to_tick_array_matches_the_scalar_rule(day: date, mode: str) -> None:
    rng = np.random.default_rng(0)
    edges = [
        19.99,
        20.0,
        20.01,
        49.99,
        49.98,
        50.0,
        99.95,
        99.97,
        100.0,
        249.9,
        250.0,
        499.75,
        499.8,
        500.0,
        999.5,
        1000.0,
        2499.0,
        2499.5,
        2500.0,
        2501.0,
        0.01,
        0.004,
    ]
    prices = np.concatenate(
        [np.exp(rng.uniform(np.log(0.005), np.log(5000), 3000)), edges, np.array(edges) * 1.000001]
    )
    prices = np.concatenate([prices, np.round(prices, 2)])
    prices = prices[prices > 0]
    vector = BIST_SHARE_TICKS.round_to_tick_array(prices, day, mode)
    scalar = np.array([BIST_SHARE_TICKS.round_to_tick(p, day, mode) for p in prices])
    assert np.array_equal(vector, scalar)
    assert BIST_SHARE_TICKS.on_tick_mask(vector, day).all()
    grid = BIST_SHARE_TICKS.round_to_tick_array(np.array([[49.99, 50.01], [2499.9, 2500.1]]), day)
    assert grid.shape == (2, 2)
    with pytest.raises(ValueError):
        BIST_SHARE_TICKS.round_to_tick_array(np.array([1.0, -1.0]), day)


def test_a_one_symbol_market_simulates_a_year_with_positive_prices() -> None:
    """Regression: a one-symbol market (priced at ``price_min``, below ``split_min_price``)
    used to get every split of the market and every dividend, and its price reached zero
    (``PriceBand.closing`` refused "a non-positive price: 0.0")."""
    config = SyntheticMarketConfig(n_symbols=1, n_sessions=250, seed=7)
    market = SyntheticMarket(config)
    daily = market.daily_reference()
    assert daily.height == 250
    assert daily["close"].min() > 0 and daily["band_lower"].min() > 0
    assert all(
        BIST_SHARE_TICKS.is_on_tick(p, d)
        for p, d in zip(daily["close"].to_list(), daily["day"].to_list(), strict=True)
    )
    actions = market.corporate_actions()
    # no symbol is priced at split_min_price or more: no splits or bonus issues (as documented)
    assert set(actions["kind"].to_list()) <= {"dividend"}
    assert actions.height > 0
