"""Back-adjustment for splits, bonus and rights issues and cash dividends, by hand and by pandas."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import polars as pl
import pytest

from quant.data.corporate_actions import (
    adjust_bars,
    adjust_trades,
    adjustment_factors,
    trading_day,
    validate_actions,
)
from quant.data.schema import polars_schema

DAYS = [date(2024, 5, d) for d in (2, 3, 6, 7, 8)]


def bars(closes: list[float], symbol: str = "AKBNK", volume: int = 100) -> pl.DataFrame:
    """One intraday-length bar per day (10:00-10:01 Istanbul, 07:00 UTC)."""
    opens = [datetime(d.year, d.month, d.day, 7, tzinfo=UTC) for d in DAYS[: len(closes)]]
    return pl.DataFrame(
        {
            "ts": opens,
            "ts_end": [t + timedelta(minutes=1) for t in opens],
            "symbol": symbol,
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": volume,
            "vwap": closes,
            "trade_count": 5,
        }
    ).cast(dict(polars_schema("bars")))


def action(kind: str, ex: date, *, ratio=None, price=None, amount=None, symbol="AKBNK"):
    return {
        "symbol": symbol,
        "ex_date": ex,
        "kind": kind,
        "ratio": ratio,
        "price": price,
        "amount": amount,
    }


def actions(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=polars_schema("corporate_actions"))


EX = date(2024, 5, 6)  # rows of 2 and 3 May are before it


def test_two_for_one_split_halves_prices_and_doubles_volumes_before_the_ex_date():
    out = adjust_bars(bars([40.0, 42.0, 21.0, 22.0]), actions(action("split", EX, ratio=2.0)))
    assert out.get_column("close").to_list() == [20.0, 21.0, 21.0, 22.0]
    assert out.get_column("high").to_list() == [20.5, 21.5, 22.0, 23.0]
    assert out.get_column("vwap").to_list() == [20.0, 21.0, 21.0, 22.0]
    assert out.get_column("volume").to_list() == [200, 200, 100, 100]
    assert out.get_column("trade_count").to_list() == [5, 5, 5, 5]


def test_fifty_percent_bonus_issue():
    out = adjust_bars(bars([30.0, 30.0, 20.0]), actions(action("bonus", EX, ratio=1.5)))
    assert out.get_column("close").to_list() == pytest.approx([20.0, 20.0, 20.0])
    assert out.get_column("volume").to_list() == [150, 150, 100]


def test_rights_issue_one_new_per_two_old_at_ten_with_close_twenty():
    """TERP = (20 + 0.5 * 10) / 1.5 = 16.667; factor = TERP / 20 = 0.8333."""
    factors = adjustment_factors(
        actions(action("rights", EX, ratio=0.5, price=10.0)), bars([18.0, 20.0])
    )
    row = factors.row(0, named=True)
    assert row["reference_close"] == 20.0
    assert row["price_factor"] == pytest.approx(16.6667 / 20.0, abs=1e-5)
    assert row["volume_factor"] == 1.0
    out = adjust_bars(
        bars([18.0, 20.0, 16.7]), actions(action("rights", EX, ratio=0.5, price=10.0))
    )
    assert out.get_column("close").to_list() == pytest.approx([15.0, 16.666667, 16.7])
    assert out.get_column("volume").to_list() == [100, 100, 100]


def test_cash_dividend_factor_is_one_minus_dividend_over_cum_close():
    out = adjust_bars(bars([19.0, 20.0, 19.0]), actions(action("dividend", EX, amount=1.0)))
    assert out.get_column("close").to_list() == pytest.approx([19.0 * 0.95, 20.0 * 0.95, 19.0])


def test_factors_compound_over_every_later_ex_date():
    acts = actions(
        action("dividend", date(2024, 5, 3), amount=2.0),  # P = 40 (2 May): factor 0.95
        action("split", EX, ratio=2.0),  # factor 0.5
    )
    out = adjust_bars(bars([40.0, 42.0, 21.0]), acts)
    assert out.get_column("close").to_list() == pytest.approx([40.0 * 0.95 * 0.5, 21.0, 21.0])


def test_same_day_bonus_and_rights_follow_the_bist_formula():
    """(P + r*S) / (1 + r + b): 100 old shares get 50 bonus and 50 rights shares at 10."""
    acts = actions(action("bonus", EX, ratio=1.5), action("rights", EX, ratio=0.5, price=10.0))
    row = adjustment_factors(acts, bars([20.0, 20.0])).row(0, named=True)
    assert row["price_factor"] == pytest.approx(12.5 / 20.0)
    assert row["volume_factor"] == 1.5


def test_adjust_trades_scales_prices_and_sizes_using_the_last_trade_as_close():
    times = [
        datetime(2024, 5, 3, 7, tzinfo=UTC),
        datetime(2024, 5, 3, 14, tzinfo=UTC),
        datetime(2024, 5, 6, 7, tzinfo=UTC),
    ]
    trades = pl.DataFrame(
        {
            "ts": times,
            "symbol": "AKBNK",
            "price": [19.0, 20.0, 19.5],
            "size": [10, 30, 10],
            "seq": [0, 1, 0],
            "side": 0,
            "condition": "C",
        }
    ).cast(dict(polars_schema("trades")))
    out = adjust_trades(
        trades, actions(action("dividend", EX, amount=1.0), action("split", EX, ratio=2.0))
    )
    # P = 20 (last trade of 3 May): dividend 0.95, split 0.5 -> combined (20 - 1) / 20 / 2
    assert out.get_column("price").to_list() == pytest.approx([19.0 * 0.475, 20.0 * 0.475, 19.5])
    assert out.get_column("size").to_list() == [20, 60, 10]


def test_lazy_frames_stay_lazy():
    out = adjust_bars(bars([40.0, 42.0, 21.0]).lazy(), actions(action("split", EX, ratio=2.0)))
    assert isinstance(out, pl.LazyFrame)
    assert out.collect().get_column("close").to_list() == [20.0, 21.0, 21.0]


def test_other_symbols_and_actions_before_all_data_change_nothing():
    acts = actions(
        action("split", EX, ratio=2.0, symbol="GARAN"),
        action("dividend", date(2020, 1, 2), amount=1.0),
    )
    frame = bars([40.0, 42.0, 21.0])
    assert adjust_bars(frame, acts).equals(frame)


def test_a_dividend_without_a_close_before_it_cannot_adjust_older_rows():
    frame = bars([40.0, 42.0, 21.0])
    closes = frame.filter(pl.col("ts").dt.date() >= EX)  # no close before the ex-date
    with pytest.raises(ValueError, match="no close before the ex-date"):
        adjust_bars(frame, actions(action("dividend", EX, amount=1.0)), closes=closes)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (action("merger", EX, ratio=2.0), "unknown kind"),
        (action("split", EX, ratio=0.0), "ratio must be a number > 0"),
        (action("split", EX), "ratio must be a number > 0"),
        (action("bonus", EX, ratio=0.5), "bonus ratio is shares after/before"),
        (action("rights", EX, ratio=0.5), "subscription price > 0"),
        (action("dividend", EX, amount=-1.0), "amount > 0"),
    ],
)
def test_invalid_actions_are_refused_by_name(row, message):
    with pytest.raises(ValueError, match=message) as error:
        validate_actions(actions(row))
    assert "AKBNK 2024-05-06" in str(error.value)


def test_two_actions_of_a_kind_on_one_day_are_refused():
    with pytest.raises(ValueError, match="more than one action"):
        validate_actions(
            actions(action("dividend", EX, amount=1.0), action("dividend", EX, amount=2.0))
        )


def test_a_dividend_or_rights_price_not_below_the_close_is_refused():
    with pytest.raises(ValueError, match="not below the close before the ex-date"):
        adjust_bars(bars([20.0, 20.0, 1.0]), actions(action("dividend", EX, amount=20.0)))
    with pytest.raises(ValueError, match="not below the close before the ex-date"):
        adjust_bars(bars([20.0, 20.0, 21.0]), actions(action("rights", EX, ratio=1.0, price=25.0)))


def test_trading_day_of_a_daily_bar_stamped_at_istanbul_midnight_is_its_own_date():
    opened = datetime(2024, 5, 5, 21, tzinfo=UTC)  # 6 May 00:00 Istanbul
    frame = pl.DataFrame({"ts": [opened], "ts_end": [opened + timedelta(days=1)]})
    assert frame.select(trading_day(frame.columns)).item() == date(2024, 5, 6)
    assert pl.DataFrame({"ts": [opened]}).select(trading_day(["ts"])).item() == date(2024, 5, 5)


def test_matches_a_yahoo_style_pandas_computation():
    """Yahoo/CRSP: adjusted close(t) = close(t) x prod over ex-dates E > t of the event's
    multiplier; a dividend's multiplier is 1 - D / close(day before E), a split's is 1 / ratio."""
    dates = pd.bdate_range("2024-01-01", periods=40)
    closes = pd.Series([100 + (i % 7) * 1.5 - i * 0.3 for i in range(40)], index=dates)
    events = [("dividend", dates[8], 2.5), ("split", dates[20], 4.0), ("dividend", dates[31], 0.8)]

    multiplier = pd.Series(1.0, index=dates)
    for kind, ex, value in events:
        if kind == "dividend":
            multiplier[ex] *= 1.0 - value / closes[closes.index < ex].iloc[-1]
        else:
            multiplier[ex] /= value
    later = multiplier[::-1].cumprod()[::-1].shift(-1).fillna(1.0)  # product over E > t
    expected = (closes * later).to_numpy()

    frame = (
        pl.DataFrame(
            {
                "ts": [datetime(d.year, d.month, d.day, 7, tzinfo=UTC) for d in dates],
                "symbol": "XYZ",
                "close": closes.to_numpy(),
            }
        )
        .with_columns(
            ts=pl.col("ts").cast(pl.Datetime("ns", "UTC")),
            ts_end=pl.col("ts").cast(pl.Datetime("ns", "UTC")) + timedelta(hours=8),
            open=pl.col("close"),
            high=pl.col("close"),
            low=pl.col("close"),
            vwap=pl.col("close"),
            volume=pl.lit(1000, pl.Int64),
            trade_count=pl.lit(1, pl.Int64),
        )
        .select(polars_schema("bars").names())
    )
    acts = actions(
        *[
            action(
                k, e.date(), symbol="XYZ", **({"amount": v} if k == "dividend" else {"ratio": v})
            )
            for k, e, v in events
        ]
    )
    out = adjust_bars(frame, acts)
    assert out.get_column("close").to_numpy() == pytest.approx(expected, rel=1e-12)
