"""Portfolio accounting worked by hand: PnL, cash, T+2 over holidays, corporate actions."""

import json
import math
from datetime import UTC, date, datetime

import polars as pl
import pytest

from quant.data.schema import DataKind, conform
from quant.execution.orders import Side
from quant.market import ISTANBUL, TradingCalendar
from quant.sim.portfolio import Portfolio, istanbul_date

BUY, SELL = Side.BUY, Side.SELL


def ist(y: int, mo: int, d: int, h: int = 12, mi: int = 0) -> int:
    """Istanbul local time as UTC ns."""
    return int(datetime(y, mo, d, h, mi, tzinfo=ISTANBUL).timestamp()) * 1_000_000_000


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar()


def identity(pf: Portfolio) -> float:
    """equity - initial cash - (realised + unrealised - fees + dividends): must be 0."""
    return (
        pf.equity
        - pf.initial_cash
        - (pf.realised_pnl + pf.unrealised_pnl - pf.total_fees + pf.total_dividends)
    )


# ----------------------------------------------------------------------------- fills and PnL


def test_round_trip_average_cost_and_fifo() -> None:
    pf = Portfolio(100_000)
    t = ist(2024, 3, 4)
    pf.apply_fill("THYAO", BUY, 1000, 45.20, fees=10.92, ts_ns=t)
    # 100,000 - 45,200 - 10.92
    assert pf.cash == pytest.approx(54_789.08)
    pf.apply_fill("THYAO", BUY, 500, 46.00, fees=5.00, ts_ns=t)
    pos = pf.position("THYAO")
    # (45,200 + 23,000) / 1,500 = 45.4666...
    assert pos.quantity == 1500
    assert pos.avg_cost == pytest.approx(68_200 / 1500)
    assert pf.cash == pytest.approx(31_784.08)

    # partial close: 600 @ 47.00 realises (47 - 45.4667) × 600 = 28,200 - 27,280 = 920
    res = pf.apply_fill("THYAO", SELL, 600, 47.00, fees=3.00, ts_ns=t)
    assert res.realised_pnl == pytest.approx(920.0)
    assert res.quantity_after == 900
    assert pf.position("THYAO").avg_cost == pytest.approx(68_200 / 1500)  # unchanged by a sale
    # FIFO takes the 600 from the first lot (45.20): 1.80 × 600 = 1,080
    assert pf.realised_pnl_fifo == pytest.approx(1080.0)
    assert pf.cash == pytest.approx(59_981.08)
    pf.mark({"THYAO": 47.00}, t)
    assert pf.unrealised_pnl == pytest.approx((47.00 - 68_200 / 1500) * 900)
    # FIFO unrealised: 400 @ 45.20 and 500 @ 46.00 marked at 47: 720 + 500
    assert pf.unrealised_pnl_fifo == pytest.approx(1220.0)
    assert identity(pf) == pytest.approx(0.0, abs=1e-6)

    # close the rest: 900 @ 44.00 realises (44 - 45.4667) × 900 = -1,320; total -400
    pf.apply_fill("THYAO", SELL, 900, 44.00, fees=4.00, ts_ns=t)
    assert pf.quantity("THYAO") == 0
    assert pf.realised_pnl == pytest.approx(-400.0)
    assert pf.realised_pnl_fifo == pytest.approx(-400.0)  # flat: both methods agree
    assert pf.total_fees == pytest.approx(22.92)
    # 100,000 - 400 - 22.92
    assert pf.cash == pytest.approx(99_577.08)
    assert pf.equity == pytest.approx(99_577.08)
    assert pf.open_positions() == {}


def test_flip_long_to_short_and_cover() -> None:
    pf = Portfolio(10_000, settlement_days=0)
    pf.apply_fill("AKBNK", BUY, 100, 10.00, ts_ns=1)
    res = pf.apply_fill("AKBNK", SELL, 250, 12.00, ts_ns=2)
    # closes 100 (realises 2.00 × 100 = 200), opens 150 short at 12.00
    assert res.realised_pnl == pytest.approx(200.0)
    pos = pf.position("AKBNK")
    assert (pos.quantity, pos.avg_cost) == (-150, 12.00)
    assert list(pos.lots) == [[-150, 12.00]]
    # cover 50 @ 11.00: a short gains when the price falls: (11 - 12) × 50 × (-1) = 50
    res = pf.apply_fill("AKBNK", BUY, 50, 11.00, ts_ns=3)
    assert res.realised_pnl == pytest.approx(50.0)
    assert pf.position("AKBNK").quantity == -100
    assert pf.position("AKBNK").avg_cost == 12.00
    # cash 10,000 - 1,000 + 3,000 - 550 = 11,450; marked at 13: MV -1,300, unrealised -100
    assert pf.cash == pytest.approx(11_450.0)
    equity = pf.mark({"AKBNK": 13.00}, 4)
    assert pf.market_value == pytest.approx(-1300.0)
    assert pf.gross_exposure == pytest.approx(1300.0)
    assert pf.unrealised_pnl == pytest.approx(-100.0)
    assert equity == pytest.approx(10_150.0)  # 10,000 + 250 - 100
    assert identity(pf) == pytest.approx(0.0, abs=1e-9)
    # flip back short -> long in one fill: buy 300 @ 12.50 covers 100 (realises -50), 200 long
    pf.apply_fill("AKBNK", BUY, 300, 12.50, ts_ns=5)
    assert pf.position("AKBNK").quantity == 200
    assert pf.position("AKBNK").avg_cost == 12.50
    assert pf.realised_pnl == pytest.approx(200.0)


def test_fees_reduce_cash_and_bad_fills_raise() -> None:
    pf = Portfolio(1_000, settlement_days=0)
    pf.apply_fill("X", BUY, 10, 20.00, fees=1.005, ts_ns=1)  # fees to the kuruş, half up: 1.01
    assert pf.cash == pytest.approx(1_000 - 200 - 1.01)
    assert pf.total_fees == pytest.approx(1.01)
    with pytest.raises(ValueError):
        pf.apply_fill("X", BUY, 0, 20.00)
    with pytest.raises(ValueError):
        pf.apply_fill("X", BUY, 10, -1.0)
    with pytest.raises(ValueError):
        pf.apply_fill("X", BUY, 10, 20.00, fees=-1.0)
    with pytest.raises(ValueError):
        pf.apply_fill("X", BUY, 1.5, 20.00)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ settlement


def test_t_plus_2_over_the_april_2024_holidays(calendar: TradingCalendar) -> None:
    # 10-12 April 2024 (Ramazan Bayramı) are XIST holidays; 9 April is a half day
    assert calendar.holidays(date(2024, 4, 9), date(2024, 4, 16)) == [
        date(2024, 4, 10),
        date(2024, 4, 11),
        date(2024, 4, 12),
    ]
    pf = Portfolio(0, calendar=calendar)
    sale = ist(2024, 4, 9, 11, 0)
    assert pf.settlement_date(sale) == date(2024, 4, 16)
    assert pf.settlement_date(ist(2024, 4, 8)) == date(2024, 4, 15)
    assert pf.settlement_date(ist(2024, 4, 5)) == date(2024, 4, 9)  # Friday -> Tuesday
    # without a calendar only weekends count: Tuesday -> Thursday
    assert Portfolio(0).settlement_date(sale) == date(2024, 4, 11)
    assert Portfolio(0, settlement_days=0).settlement_ns(sale) == sale

    pf.apply_fill("GARAN", SELL, 100, 80.00, ts_ns=sale)
    assert pf.cash == pytest.approx(8000.0)
    assert pf.settled_cash(sale) == 0.0
    assert pf.settled_cash(ist(2024, 4, 15, 17)) == 0.0  # still unsettled after the holidays
    assert pf.settled_cash(ist(2024, 4, 16, 0)) == pytest.approx(8000.0)
    assert pf.pending_settlements() == [(date(2024, 4, 16), 8000.0, 0.0)]
    assert pf.settle(ist(2024, 4, 15, 17)) == 0.0
    assert pf.settle(ist(2024, 4, 16, 10)) == pytest.approx(8000.0)
    assert pf.pending_settlements() == []
    assert pf.settled_cash(sale) == pytest.approx(8000.0)  # nothing is pending any more


@pytest.mark.parametrize("use_unsettled", [True, False])
def test_buying_power_with_and_without_unsettled_proceeds(
    calendar: TradingCalendar, use_unsettled: bool
) -> None:
    pf = Portfolio(10_000, calendar=calendar, use_unsettled_proceeds=use_unsettled)
    pf.apply_fill("EREGL", BUY, 100, 50.00, ts_ns=ist(2024, 4, 8))  # pays 5,000 on 15 April
    pf.apply_fill("EREGL", SELL, 100, 55.00, ts_ns=ist(2024, 4, 9, 11))  # gets 5,500 on 16 April
    assert pf.cash == pytest.approx(10_500.0)

    now = ist(2024, 4, 9, 12)
    assert pf.settled_cash(now) == pytest.approx(10_000.0)  # nothing settled yet
    assert pf.pending_purchases(now) == pytest.approx(5_000.0)
    assert pf.pending_proceeds(now) == pytest.approx(5_500.0)
    # settled 10,000 - purchases 5,000 (+ proceeds 5,500 if they may be used)
    assert pf.buying_power(now) == pytest.approx(10_500.0 if use_unsettled else 5_000.0)

    after_buy_settles = ist(2024, 4, 15, 10)
    assert pf.settled_cash(after_buy_settles) == pytest.approx(5_000.0)
    assert pf.buying_power(after_buy_settles) == pytest.approx(
        10_500.0 if use_unsettled else 5_000.0
    )
    all_settled = ist(2024, 4, 16, 10)
    assert pf.settled_cash(all_settled) == pytest.approx(10_500.0)
    assert pf.buying_power(all_settled) == pytest.approx(10_500.0)


# ----------------------------------------------------------------------- corporate actions


def _action(**kw: object) -> dict[str, object]:
    row = {"symbol": "X", "ex_date": date(2024, 5, 2), "ratio": None, "price": None, "amount": None}
    row.update(kw)
    return row


def test_split_keeps_value_and_scales_quantity() -> None:
    pf = Portfolio(0, settlement_days=0)
    pf.apply_fill("X", BUY, 1000, 40.00, ts_ns=1)
    pf.mark({"X": 50.00}, 2)
    before = pf.equity
    eff = pf.apply_corporate_action(_action(kind="split", ratio=2.0))
    pos = pf.position("X")
    assert (eff.quantity_before, eff.quantity_after, eff.cash) == (1000, 2000, 0.0)
    assert (pos.quantity, pos.avg_cost, pos.last_price) == (2000, 20.00, 25.00)
    assert list(pos.lots) == [[2000, 20.00]]
    assert pf.equity == pytest.approx(before)
    assert pf.unrealised_pnl == pytest.approx(10_000.0)  # unchanged: 1,000 × (50 - 40)


def test_bonus_issue_with_cash_in_lieu_for_the_fraction() -> None:
    pf = Portfolio(0, settlement_days=0)
    pf.apply_fill("X", BUY, 333, 30.00, ts_ns=1)
    pf.mark({"X": 45.00}, 2)
    before = pf.equity
    # 50% bonus: 333 × 1.5 = 499.5 -> 499 shares and 0.5 share in cash at 45 / 1.5 = 30.00
    eff = pf.apply_corporate_action(_action(kind="bonus", ratio=1.5))
    pos = pf.position("X")
    assert eff.quantity_after == 499
    assert eff.cash == pytest.approx(15.00)
    assert pos.avg_cost == pytest.approx(20.00)
    assert pos.last_price == pytest.approx(30.00)
    assert pf.cash_in_lieu == pytest.approx(15.00)
    assert pf.realised_pnl == pytest.approx(5.00)  # 0.5 × (30 - 20)
    assert pf.equity == pytest.approx(before)  # 15 + 499 × 30 = 333 × 45
    assert sum(q for q, _ in pos.lots) == 499
    assert identity(pf) == pytest.approx(0.0, abs=1e-9)


def test_cash_dividend_long_and_short() -> None:
    pf = Portfolio(0, settlement_days=0, dividend_withholding=0.15)
    pf.apply_fill("X", BUY, 1000, 50.00, ts_ns=1)
    pf.apply_fill("Y", SELL, 200, 20.00, ts_ns=1)
    pf.mark({"X": 50.00, "Y": 20.00}, 2)
    cash0 = pf.cash
    # long: 1,000 × 1.25 = 1,250 gross, 15% withheld = 187.50, 1,062.50 credited
    eff = pf.apply_corporate_action(_action(kind="dividend", amount=1.25))
    assert eff.cash == pytest.approx(1062.50)
    assert eff.withholding == pytest.approx(187.50)
    assert pf.withholding_tax == pytest.approx(187.50)
    assert pf.position("X").last_price == pytest.approx(48.75)
    assert pf.position("X").quantity == 1000
    # short: pays the lender the gross 200 × 0.40 = 80
    eff = pf.apply_corporate_action(_action(symbol="Y", kind="dividend", amount=0.40))
    assert eff.cash == pytest.approx(-80.0)
    assert pf.cash == pytest.approx(cash0 + 1062.50 - 80.0)
    assert pf.total_dividends == pytest.approx(982.50)
    assert identity(pf) == pytest.approx(0.0, abs=1e-9)
    # a dividend on a symbol not held does nothing
    assert pf.apply_corporate_action(_action(symbol="Z", kind="dividend", amount=1.0)).cash == 0.0
    # withholding is a parameter: 10%
    pf10 = Portfolio(0, settlement_days=0, dividend_withholding=0.10)
    pf10.apply_fill("X", BUY, 1000, 50.00, ts_ns=1)
    assert pf10.apply_corporate_action(_action(kind="dividend", amount=1.25)).cash == 1125.0


def test_rights_are_not_exercised_automatically() -> None:
    pf = Portfolio(50_000, settlement_days=0)
    pf.apply_fill("X", BUY, 1000, 40.00, ts_ns=1)
    pf.mark({"X": 50.00}, 2)
    assert pf.equity == pytest.approx(60_000.0)  # 10,000 cash + 1,000 × 50
    # 0.5 new share per share at 20.00: TERP = (50 + 0.5 × 20) / 1.5 = 40.00
    eff = pf.apply_corporate_action(_action(kind="rights", ratio=0.5, price=20.00))
    assert eff.rights_shares == 500
    assert pf.position("X").quantity == 1000
    assert pf.position("X").last_price == pytest.approx(40.00)
    assert pf.equity == pytest.approx(50_000.0)  # the rights' value is not in equity yet
    assert pf.pending_rights["X"].shares == 500
    # exercising buys 500 at 20.00: cash -10,000; 1,500 shares at (40,000 + 10,000) / 1,500
    assert pf.exercise_rights("X", ts_ns=3) == 500
    pos = pf.position("X")
    assert pos.quantity == 1500
    assert pos.avg_cost == pytest.approx(50_000 / 1500)
    assert pf.cash == pytest.approx(0.0)  # 10,000 - 500 × 20
    assert pf.equity == pytest.approx(60_000.0)  # 1,500 × 40 = 1,000 × 50 + 10,000 paid
    assert pf.pending_rights == {}
    assert identity(pf) == pytest.approx(0.0, abs=1e-9)
    assert pf.exercise_rights("X", ts_ns=4) == 0
    # partial exercise and lapse
    pf2 = Portfolio(20_000, settlement_days=0)
    pf2.apply_fill("X", BUY, 1000, 40.00, ts_ns=1)
    pf2.apply_corporate_action(_action(kind="rights", ratio=0.5, price=20.00))
    assert pf2.exercise_rights("X", ts_ns=2, shares=200) == 200
    assert pf2.lapse_rights("X") == 300
    assert pf2.position("X").quantity == 1200


def test_short_compensates_rights_value() -> None:
    pf = Portfolio(0, settlement_days=0)
    pf.apply_fill("X", SELL, 100, 50.00, ts_ns=1)
    # TERP 40; each right is worth 0.5 × (40 - 20) = 10 per old share; the short pays 1,000
    eff = pf.apply_corporate_action(_action(kind="rights", ratio=0.5, price=20.00))
    assert eff.cash == pytest.approx(-1000.0)
    assert pf.equity == pytest.approx(0.0)  # 5,000 - 1,000 - 100 × 40: the short lost nothing
    assert "X" not in pf.pending_rights
    assert identity(pf) == pytest.approx(0.0, abs=1e-9)


def test_corporate_actions_from_a_schema_frame() -> None:
    frame = conform(
        pl.DataFrame(
            {
                "symbol": ["X", "X"],
                "ex_date": [date(2024, 5, 2), date(2024, 5, 2)],
                "kind": ["split", "dividend"],
                "ratio": [2.0, None],
                "price": [None, None],
                "amount": [None, 0.50],
            }
        ),
        DataKind.CORPORATE_ACTIONS,
    )
    pf = Portfolio(0, settlement_days=0, dividend_withholding=0.0)
    pf.apply_fill("X", BUY, 100, 40.00, ts_ns=1)
    effects = pf.apply_corporate_actions(frame)
    assert [e.kind for e in effects] == ["split", "dividend"]
    assert pf.quantity("X") == 200
    assert pf.cash == pytest.approx(-4000.0 + 100.0)  # 200 × 0.50 after the split
    with pytest.raises(ValueError):
        pf.apply_corporate_action(_action(kind="split", ratio=None))
    with pytest.raises(ValueError):
        pf.apply_corporate_action(_action(kind="merger", ratio=1.0))


# ----------------------------------------------------------------------- marks and curve


def test_equity_curve_identities() -> None:
    pf = Portfolio(50_000, settlement_days=0)
    pf.apply_fill("A", BUY, 100, 100.0, fees=2.0, ts_ns=ist(2024, 3, 4, 10))
    pf.apply_fill("B", SELL, 200, 20.0, fees=1.0, ts_ns=ist(2024, 3, 4, 10))
    pf.mark({"A": 101.0, "B": 19.5, "C": 7.0}, ist(2024, 3, 4, 11))
    pf.mark({"A": 99.0}, ist(2024, 3, 4, 12))  # B keeps 19.5
    pf.mark_close({"A": 102.0, "B": float("nan")}, ist(2024, 3, 4, 18, 10))  # NaN: keep 19.5
    curve = pf.equity_curve()
    assert curve.columns == [
        "ts",
        "cash",
        "market_value",
        "equity",
        "gross_exposure",
        "net_exposure",
    ]
    assert curve.schema["ts"] == pl.Datetime("ns", "UTC")
    assert curve.height == 3
    cash = 50_000 - 10_000 - 2 + 4_000 - 1
    assert curve["cash"].to_list() == pytest.approx([cash] * 3)
    assert curve["market_value"].to_list() == pytest.approx(
        [10_100 - 3_900, 9_900 - 3_900, 10_200 - 3_900]
    )
    assert curve["gross_exposure"].to_list() == pytest.approx(
        [10_100 + 3_900, 9_900 + 3_900, 10_200 + 3_900]
    )
    eq = curve["cash"] + curve["market_value"]
    assert (curve["equity"] - eq).abs().max() == 0.0
    assert (curve["net_exposure"] - curve["market_value"]).abs().max() == 0.0
    closes = pf.equity_curve(close_only=True)
    assert closes.height == 1
    assert closes["equity"][0] == pytest.approx(cash + 10_200 - 3_900)
    assert pf.equity == pytest.approx(closes["equity"][0])
    assert identity(pf) == pytest.approx(0.0, abs=1e-9)
    assert "C" not in pf.positions


def test_mark_settles_due_amounts(calendar: TradingCalendar) -> None:
    pf = Portfolio(1_000, calendar=calendar)
    pf.apply_fill("X", SELL, 10, 10.0, ts_ns=ist(2024, 4, 9, 11))
    pf.mark({"X": 10.0}, ist(2024, 4, 15, 18))
    assert len(pf.pending_settlements()) == 1
    pf.mark({"X": 10.0}, ist(2024, 4, 16, 18))
    assert pf.pending_settlements() == []


# ------------------------------------------------------------------------------ snapshots


def test_snapshot_round_trip(calendar: TradingCalendar) -> None:
    pf = Portfolio(100_000, calendar=calendar, use_unsettled_proceeds=False)
    pf.apply_fill("A", BUY, 1000, 45.20, fees=10.92, ts_ns=ist(2024, 4, 8, 11))
    pf.apply_fill("A", SELL, 400, 46.00, fees=4.00, ts_ns=ist(2024, 4, 9, 11))
    pf.apply_fill("B", SELL, 300, 20.00, fees=1.00, ts_ns=ist(2024, 4, 9, 11))
    pf.apply_corporate_action(
        {"symbol": "A", "ex_date": date(2024, 4, 9), "kind": "rights", "ratio": 0.1, "price": 30}
    )
    pf.mark_close({"A": 46.00, "B": 19.00}, ist(2024, 4, 9, 12, 40))

    data = json.loads(json.dumps(pf.to_dict(include_curve=True)))
    back = Portfolio.from_dict(data)
    assert back.to_dict(include_curve=True) == pf.to_dict(include_curve=True)
    assert back.calendar is not None and back.calendar.calendar_name == "XIST"
    now = ist(2024, 4, 15, 12)
    assert back.settled_cash(now) == pf.settled_cash(now)
    assert back.buying_power(now) == pf.buying_power(now)
    assert back.equity == pytest.approx(pf.equity)
    assert back.equity_curve().equals(pf.equity_curve())
    assert back.pending_rights == pf.pending_rights
    # both go on identically
    for p in (pf, back):
        p.apply_fill("A", SELL, 800, 47.00, fees=5.0, ts_ns=ist(2024, 4, 15, 11))
        p.exercise_rights("A", ist(2024, 4, 15, 12))
    assert back.to_dict() == pf.to_dict()
    # without the curve the snapshot stays small; the state is the same
    light = Portfolio.from_dict(pf.to_dict(), calendar=calendar)
    assert light.equity_curve().height == 0
    assert light.to_dict() == pf.to_dict()


def test_istanbul_date_of_a_late_utc_time() -> None:
    # 2024-04-09 22:30 UTC is already 10 April in Istanbul (UTC+3)
    ts = int(datetime(2024, 4, 9, 22, 30, tzinfo=UTC).timestamp()) * 10**9
    assert istanbul_date(ts) == date(2024, 4, 10)
    assert istanbul_date(ts - 2 * 3600 * 10**9) == date(2024, 4, 9)  # 20:30 UTC = 23:30 local
    assert math.isnan(Portfolio(0).position("NONE").last_price)
