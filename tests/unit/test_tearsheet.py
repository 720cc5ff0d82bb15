"""The HTML tearsheet: self-contained, atomic, every section present, numbers from quant.metrics.

The result rendered here is a real (small) run: a 10/30-day moving-average crossover on AAPL's
daily closes from skfolio's S&P 500 data set, filled at the close with 5 bp slippage and 5 bp
fees, with its TCA computed by ``quant.metrics.order_tca``. The headline figures are checked
against ``quant.metrics`` (parsed back from the HTML) and, for the main ratios, against
empyrical-reloaded as an independent reference.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import empyrical
import numpy as np
import polars as pl
import pytest
from skfolio.datasets import load_sp500_dataset

from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
)
from quant.metrics import (
    cagr,
    hit_ratio,
    max_drawdown,
    order_tca,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    tca_by_strategy,
)
from quant.report import (
    SECTION_TITLES,
    headline_metrics,
    headline_stats,
    monthly_table,
    reject_counts,
    render_tearsheet,
    tearsheet,
    write_tearsheet,
)
from quant.report.figures import MAX_PLOT_POINTS, downsample_indices
from quant.report.tearsheet import ERROR_HEADING, SYNTHETIC_BANNER

NS = 1_000_000_000
INITIAL_CASH = 1_000_000.0
FEE_RATE = 0.0005
SLIPPAGE = 0.0005


@dataclass
class FakeResult:
    """Has every attribute of ``BacktestResult`` the tearsheet reads."""

    equity: pl.DataFrame
    daily: pl.DataFrame
    orders: pl.DataFrame
    fills: pl.DataFrame
    round_trips: pl.DataFrame
    tca: pl.DataFrame
    tca_by_strategy: pl.DataFrame
    stats: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    synthetic: bool = False
    strategy: str = "ma_crossover"


# --------------------------------------------------------------------------- fixtures


def _close_ns(day: date) -> int:
    """15:00 UTC = 18:00 Istanbul, the BIST close."""
    return int(datetime(day.year, day.month, day.day, 15).timestamp()) * NS


def _utc(values: list[int]) -> pl.Series:
    return pl.Series(values, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))


EMPTY_ORDERS = pl.DataFrame(
    schema={
        "client_order_id": pl.String,
        "strategy_id": pl.String,
        "symbol": pl.String,
        "side": pl.Int8,
        "quantity": pl.Int64,
        "order_type": pl.String,
        "limit_price": pl.Float64,
        "ts": pl.Datetime("ns", "UTC"),
        "status": pl.String,
        "filled_qty": pl.Int64,
        "avg_price": pl.Float64,
        "fees": pl.Float64,
        "reject_code": pl.String,
        "reason": pl.String,
    }
)
EMPTY_FILLS = pl.DataFrame(
    schema={
        "ts": pl.Datetime("ns", "UTC"),
        "client_order_id": pl.String,
        "symbol": pl.String,
        "side": pl.Int8,
        "quantity": pl.Int64,
        "price": pl.Float64,
        "fees": pl.Float64,
        "liquidity": pl.String,
    }
)
EMPTY_ROUND_TRIPS = pl.DataFrame(
    schema={
        "symbol": pl.String,
        "side": pl.Int8,
        "quantity": pl.Int64,
        "entry_ts": pl.Datetime("ns", "UTC"),
        "exit_ts": pl.Datetime("ns", "UTC"),
        "entry_price": pl.Float64,
        "exit_price": pl.Float64,
        "pnl": pl.Float64,
        "return": pl.Float64,
    }
)


def _crossover_run(symbol: str = "AAPL", start: str = "2018-01-01", end: str = "2020-12-31"):
    """A long-only 10/30 MA crossover traded at the close: the frames a backtest would return."""
    prices = load_sp500_dataset()[symbol].loc[start:end]
    days = [ts.date() for ts in prices.index]
    close = np.round(prices.to_numpy(dtype=float), 2)
    fast = prices.rolling(10).mean().to_numpy()
    slow = prices.rolling(30).mean().to_numpy()
    cash, shares = INITIAL_CASH, 0
    entry: dict[str, Any] = {}
    marks, orders, reports, order_rows, fill_rows, trips = [], [], [], [], [], []
    for i, (day, px) in enumerate(zip(days, close, strict=True)):
        ts = _close_ns(day)
        want_long = bool(fast[i] > slow[i]) if not math.isnan(slow[i]) else False
        side = Side.BUY if want_long and shares == 0 else None
        if not want_long and shares > 0:
            side = Side.SELL
        traded = 0.0
        if side is not None:
            fill_px = round(px * (1 + SLIPPAGE * side.sign), 2)
            qty = int(0.95 * cash / fill_px) if side is Side.BUY else shares
            fee = round(qty * fill_px * FEE_RATE, 2)
            coid = f"o{len(orders) + 1}"
            order = Order(coid, symbol, side, qty, OrderType.MARKET, ts_ns=ts, strategy_id="ma")
            orders.append(order)
            reports.append(
                ExecutionReport(
                    coid,
                    OrderStatus.FILLED,
                    ts + 1,
                    symbol=symbol,
                    side=side,
                    exec_id=f"x{coid}",
                    last_qty=qty,
                    last_price=fill_px,
                    cum_qty=qty,
                    avg_price=fill_px,
                    fees=fee,
                    liquidity="taker",
                )
            )
            order_rows.append(
                (
                    coid,
                    "ma",
                    symbol,
                    side.sign,
                    qty,
                    "market",
                    None,
                    ts,
                    "filled",
                    qty,
                    fill_px,
                    fee,
                    None,
                    "",
                )
            )
            fill_rows.append((ts + 1, coid, symbol, side.sign, qty, fill_px, fee, "taker"))
            traded = qty * fill_px
            if side is Side.BUY:
                cash -= qty * fill_px + fee
                shares = qty
                entry = {"ts": ts + 1, "price": fill_px, "fee": fee}
            else:
                cash += qty * fill_px - fee
                pnl = (fill_px - entry["price"]) * qty - entry["fee"] - fee
                trips.append(
                    (
                        symbol,
                        1,
                        qty,
                        entry["ts"],
                        ts + 1,
                        entry["price"],
                        fill_px,
                        pnl,
                        pnl / (entry["price"] * qty),
                    )
                )
                shares = 0
        mv = shares * px
        marks.append((ts, cash, mv, cash + mv, abs(mv), mv, traded))

    # Two orders risk refused: they never reach the book but count in TCA and rejects.
    for k, (code, reason) in enumerate(
        [(RejectCode.OUTSIDE_BAND, "limit 999.99 above the band"), (RejectCode.OFF_TICK, "tick")]
    ):
        ts = _close_ns(days[40 + k])
        coid = f"r{k + 1}"
        orders.append(
            Order(coid, symbol, Side.BUY, 10, OrderType.LIMIT, 999.99, ts_ns=ts, strategy_id="ma")
        )
        reports.append(
            ExecutionReport(
                coid, OrderStatus.REJECTED, ts, symbol=symbol, reject_code=code, reason=reason
            )
        )
        order_rows.append(
            (
                coid,
                "ma",
                symbol,
                1,
                10,
                "limit",
                999.99,
                ts,
                "rejected",
                0,
                None,
                0.0,
                str(code),
                reason,
            )
        )

    eq = pl.DataFrame(
        marks,
        schema=["ts", "cash", "market_value", "equity", "gross_exposure", "net_exposure", "tr"],
        orient="row",
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    equity_values = eq["equity"].to_numpy()
    prev = np.concatenate(([INITIAL_CASH], equity_values[:-1]))
    daily = pl.DataFrame(
        {
            "day": pl.Series(days, dtype=pl.Date),
            "equity": equity_values,
            "returns": equity_values / prev - 1.0,
            "gross_exposure": eq["gross_exposure"],
            "net_exposure": eq["net_exposure"],
            "turnover": eq["tr"] / eq["equity"],
        }
    )
    orders_frame = pl.DataFrame(order_rows, schema=EMPTY_ORDERS.schema, orient="row")
    fills_frame = pl.DataFrame(fill_rows, schema=EMPTY_FILLS.schema, orient="row")
    trips_frame = pl.DataFrame(trips, schema=EMPTY_ROUND_TRIPS.schema, orient="row")
    bars = pl.DataFrame(
        {
            "ts": _utc([_close_ns(d) - 8 * 3600 * NS for d in days]),
            "ts_end": _utc([_close_ns(d) for d in days]),
            "symbol": [symbol] * len(days),
            "close": close,
            "volume": [5_000_000] * len(days),
            "vwap": close,
        }
    )
    tca = order_tca(orders, reports, bars=bars)
    return FakeResult(
        equity=eq.drop("tr"),
        daily=daily,
        orders=orders_frame,
        fills=fills_frame,
        round_trips=trips_frame,
        tca=tca,
        tca_by_strategy=tca_by_strategy(tca),
        config={
            "symbols": [symbol],
            "costs": {"commission_bp": 5.0, "slippage_bp": 5.0},
            "start": start,
            "end": end,
        },
    )


@pytest.fixture(scope="module")
def run() -> FakeResult:
    return _crossover_run()


def _metric_values(page: str) -> dict[str, float]:
    """The headline table parsed back from the HTML: key -> exact value (data-value)."""
    rows = re.findall(r'<tr data-key="([a-z_0-9]+)">.*?data-value="([^"]*)"', page)
    return {key: float(value) for key, value in rows}


def _plot_data(page: str, div_id: str) -> list[dict[str, Any]]:
    """The traces plotly will draw in ``div_id`` (the JSON handed to ``Plotly.newPlot``)."""
    marker = f'Plotly.newPlot(                        "{div_id}",'
    start = page.index(marker) + len(marker)
    data, _ = json.JSONDecoder().raw_decode(page[start:].lstrip())
    return data


def _array(value: Any) -> np.ndarray:
    """A plotly JSON array (plain list or base64 typed array) as numpy."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return (
            arr.reshape([int(s) for s in str(value["shape"]).split(",")])
            if "shape" in value
            else arr
        )
    return np.asarray(value, dtype=float)


# --------------------------------------------------------------------------- writing


def test_write_creates_the_file_atomically(run: FakeResult, tmp_path: Path) -> None:
    path = tmp_path / "reports" / "tearsheet.html"
    written = write_tearsheet(run, path)
    assert written == path
    assert path.read_text(encoding="utf-8") == render_tearsheet(run)
    assert sorted(p.name for p in path.parent.iterdir()) == ["tearsheet.html"]
    assert path.stat().st_mode & 0o777 == 0o644  # readable by whoever serves the report


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(
    run: FakeResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tearsheet.html"
    path.write_text("previous tearsheet", encoding="utf-8")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_tearsheet(run, path)
    assert path.read_text(encoding="utf-8") == "previous tearsheet"
    assert [p.name for p in tmp_path.iterdir()] == ["tearsheet.html"]


def test_page_is_self_contained_with_one_plotly_bundle(run: FakeResult) -> None:
    from plotly.offline import get_plotlyjs

    page = render_tearsheet(run)
    bundle = get_plotlyjs()
    assert page.count(bundle) == 1
    # Outside the bundle (whose code builds links at run time, e.g. to plotly.com), nothing
    # refers to the network.
    own = page.replace(bundle, "")
    assert not re.search(r"<script[^>]*\bsrc\s*=", own, re.I)
    assert not re.search(r"<link\b", own, re.I)
    assert not re.search(r"https?://", own, re.I)
    assert page.count("plotly.js v") == 1
    # Six charts drawn by that one bundle.
    assert page.count("Plotly.newPlot(") == 6
    # Bundle (~4.8 MB) plus a few hundred kB of data and tables at most.
    assert len(page.encode()) - len(bundle.encode()) < 600_000


def test_every_section_title_is_on_the_page(run: FakeResult) -> None:
    page = render_tearsheet(run)
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in page
    assert "<td>ma_crossover</td>" in page
    assert "<td>AAPL</td>" in page
    assert "2018-01-02 to 2020-12-31 (756 sessions)" in page
    assert "commission_bp=5.0, slippage_bp=5.0" in page


class _TagBalance(HTMLParser):
    """Checks that every element is closed, in order (void elements aside)."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


@pytest.mark.parametrize("flags", [{}, {"synthetic": True, "error": "x < y & 'z'"}])
def test_markup_is_balanced(run: FakeResult, flags: dict[str, Any]) -> None:
    from plotly.offline import get_plotlyjs

    page = render_tearsheet(replace(run, **flags), extra_sections=[("Extra", "<p>ok</p>")])
    checker = _TagBalance()
    checker.feed(page.replace(get_plotlyjs(), ""))
    checker.close()
    assert checker.problems == []
    assert checker.stack == []


def test_render_is_deterministic(run: FakeResult) -> None:
    assert render_tearsheet(run) == render_tearsheet(run)


# --------------------------------------------------------------------------- banner and errors


@pytest.mark.parametrize("synthetic", [True, False])
def test_synthetic_banner_iff_synthetic(run: FakeResult, synthetic: bool) -> None:
    page = render_tearsheet(replace(run, synthetic=synthetic))
    assert ('id="synthetic-banner"' in page) is synthetic
    assert ("[SYNTHETIC]</title>" in page) is synthetic
    assert (f">{SYNTHETIC_BANNER}:" in page) is synthetic


@pytest.mark.parametrize("error", [None, "strategy 'ma' raised ZeroDivisionError in on_bar"])
def test_error_box_iff_error(run: FakeResult, error: str | None) -> None:
    page = render_tearsheet(replace(run, error=error))
    assert ('id="run-error"' in page) is (error is not None)
    assert (ERROR_HEADING in page) is (error is not None)
    if error:
        assert "strategy &#x27;ma&#x27; raised ZeroDivisionError in on_bar" in page


# --------------------------------------------------------------------------- numbers


def test_headline_numbers_equal_quant_metrics(run: FakeResult) -> None:
    values = _metric_values(render_tearsheet(run))
    r = run.daily["returns"].to_numpy()
    assert values["total_return"] == pytest.approx(run.daily["equity"][-1] / INITIAL_CASH - 1)
    assert values["sharpe_ratio"] == sharpe_ratio(r)
    assert values["sortino_ratio"] == sortino_ratio(r)
    assert values["max_drawdown"] == max_drawdown(r)
    assert values["cagr"] == cagr(r)
    pnl = run.round_trips["pnl"].to_numpy()
    assert values["trade_hit_ratio"] == hit_ratio(pnl)
    assert values["trade_profit_factor"] == profit_factor(pnl)
    # Independent reference: empyrical-reloaded on the same daily returns.
    assert values["sharpe_ratio"] == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-12)
    assert values["sortino_ratio"] == pytest.approx(empyrical.sortino_ratio(r), rel=1e-12)
    assert values["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-12)
    assert values["annual_volatility"] == pytest.approx(empyrical.annual_volatility(r), rel=1e-12)
    assert values["calmar_ratio"] == pytest.approx(empyrical.calmar_ratio(r), rel=1e-12)
    # The table holds exactly the figures headline_metrics exposes.
    assert values == {m.key: float(m.value) for m in headline_metrics(run)}


def test_trading_counts_fees_exposure_and_turnover(run: FakeResult) -> None:
    stats = headline_stats(run)
    n_fills = run.fills.height
    assert n_fills >= 6  # the crossover really traded
    assert stats["fills"] == n_fills
    assert stats["orders"] == n_fills + 2
    assert stats["rejects"] == 2
    assert stats["round_trips"] == run.round_trips.height == n_fills // 2
    assert stats["fees"] == pytest.approx(round(float(run.fills["fees"].sum()), 2))
    # Turnover: the engine's daily turnover (value traded / equity) averaged, x252.
    traded = float((run.fills["quantity"] * run.fills["price"]).sum())
    assert stats["turnover"] > 252 * traded / run.daily["equity"].max() / run.daily.height
    turnover = run.daily["turnover"].sum() / run.daily.height * 252
    assert stats["turnover"] == pytest.approx(turnover, rel=1e-12)
    eq = run.equity
    gross = (eq["gross_exposure"] / eq["equity"]).mean()
    assert stats["gross_exposure"] == pytest.approx(gross, rel=1e-12)
    assert stats["net_exposure"] == pytest.approx(gross, rel=1e-12)  # long only
    assert 0.0 < stats["gross_exposure"] < 1.0


def test_stats_from_the_backtest_win(run: FakeResult) -> None:
    stats = {"sharpe_ratio": np.float64(1.2345), "orders": np.int64(7)}
    values = _metric_values(render_tearsheet(replace(run, stats=stats)))
    assert values["sharpe_ratio"] == 1.2345
    assert values["orders"] == 7
    assert values["sortino_ratio"] == sortino_ratio(run.daily["returns"])


def test_monthly_heat_map_compounds_daily_returns_per_month() -> None:
    # Jan 2024: +1%, -2%, +3% -> 1.01 * 0.98 * 1.03 - 1 = 0.019494
    # Feb 2024: +5%            -> 0.05
    # Jan 2025: -10%, +10%     -> 0.9 * 1.1 - 1 = -0.01
    rows = [
        (date(2024, 1, 2), 0.01),
        (date(2024, 1, 3), -0.02),
        (date(2024, 1, 31), 0.03),
        (date(2024, 2, 1), 0.05),
        (date(2025, 1, 2), -0.10),
        (date(2025, 1, 3), 0.10),
    ]
    r = np.array([v for _, v in rows])
    equity = INITIAL_CASH * np.cumprod(1 + r)
    ts = _utc([_close_ns(d) for d, _ in rows])
    result = FakeResult(
        equity=pl.DataFrame(
            {
                "ts": ts,
                "cash": equity,
                "market_value": 0.0,
                "equity": equity,
                "gross_exposure": 0.0,
                "net_exposure": 0.0,
            }
        ),
        daily=pl.DataFrame(
            {
                "day": pl.Series([d for d, _ in rows], dtype=pl.Date),
                "equity": equity,
                "returns": r,
                "gross_exposure": 0.0,
                "net_exposure": 0.0,
                "turnover": 0.0,
            }
        ),
        orders=EMPTY_ORDERS,
        fills=EMPTY_FILLS,
        round_trips=EMPTY_ROUND_TRIPS,
        tca=pl.DataFrame(),
        tca_by_strategy=pl.DataFrame(),
    )
    table = monthly_table(result)
    assert table["year"].to_list() == [2024, 2025]
    assert table["Jan"].to_list() == pytest.approx([1.01 * 0.98 * 1.03 - 1, 0.9 * 1.1 - 1])
    assert table["Feb"].to_list() == [pytest.approx(0.05), None]
    assert table["Mar"].to_list() == [None, None]
    assert table["year_total"].to_list() == pytest.approx(
        [1.01 * 0.98 * 1.03 * 1.05 - 1, 0.9 * 1.1 - 1]
    )
    # The heat map drawn on the page carries the same numbers (year x 13 columns).
    (heat,) = _plot_data(render_tearsheet(result), "chart-monthly")
    assert heat["type"] == "heatmap"
    assert heat["y"] == ["2024", "2025"]
    assert heat["x"][:2] == ["Jan", "Feb"] and heat["x"][-1] == "Year"
    z = _array(heat["z"])
    assert z.shape == (2, 13)
    assert z[0, 0] == pytest.approx(0.019494, abs=1e-12)
    assert z[0, 1] == pytest.approx(0.05)
    assert z[1, 0] == pytest.approx(-0.01)
    assert np.isnan(z[1, 1]) and np.isnan(z[0, 2])
    assert heat["text"][0][0] == "1.9%" and heat["text"][1][0] == "-1.0%"


def test_reject_counts_by_code(run: FakeResult) -> None:
    counts = reject_counts(run.orders)
    assert counts["reject_code"].to_list() == ["OFF_TICK", "OUTSIDE_BAND"]
    assert counts["orders"].to_list() == [1, 1]
    assert counts["share"].to_list() == pytest.approx([1 / run.orders.height] * 2)
    page = render_tearsheet(run)
    assert "limit 999.99 above the band" in page


def test_tca_tables_render_every_column(run: FakeResult) -> None:
    page = render_tearsheet(run)
    for column in run.tca_by_strategy.columns:
        assert f"<th>{column}</th>" in page
    for column in ("is_bp", "vwap_slippage_bp", "fees_try", "fill_rate"):
        assert f"<td>{column}</td>" in page  # a row of the per-order summary
    assert f"Per order: all {run.tca.height} orders (by total_shortfall_try)" in page
    # The strategy's fees in TRY, formatted as money.
    fees = run.tca_by_strategy["fees_try"][0]
    assert f'<td class="num">{fees:,.2f}</td>' in page


def test_long_tca_shows_the_costliest_orders(
    run: FakeResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tearsheet, "MAX_TCA_ORDER_ROWS", 3)
    page = render_tearsheet(run)
    n = run.tca.height
    assert f"Per order: the 3 costliest of {n} orders (by total_shortfall_try)" in page
    per_order = page.split("costliest of")[1].split("</details>")[0]
    worst = run.tca.sort("total_shortfall_try", descending=True)["client_order_id"].head(3)
    shown = re.findall(r"<tr><td>([a-z0-9]+)</td>", per_order)
    assert shown == worst.to_list()


# --------------------------------------------------------------------------- edge cases


def _empty_like(run: FakeResult) -> FakeResult:
    return replace(
        run,
        orders=EMPTY_ORDERS,
        fills=EMPTY_FILLS,
        round_trips=EMPTY_ROUND_TRIPS,
        tca=run.tca.clear(),
        tca_by_strategy=run.tca_by_strategy.clear(),
    )


def test_no_trades(run: FakeResult) -> None:
    flat = _empty_like(run)
    cash = np.full(run.daily.height, INITIAL_CASH)
    flat = replace(
        flat,
        equity=run.equity.with_columns(
            cash=cash, market_value=0.0, equity=cash, gross_exposure=0.0, net_exposure=0.0
        ),
        daily=run.daily.with_columns(equity=cash, returns=0.0, turnover=0.0),
    )
    page = render_tearsheet(flat)
    values = _metric_values(page)
    assert values["round_trips"] == 0 and values["rejects"] == 0 and values["fees"] == 0
    assert values["total_return"] == 0.0 and values["turnover"] == 0.0
    assert math.isnan(values["sharpe_ratio"]) and math.isnan(values["trade_hit_ratio"])
    assert "No round trip was closed." in page
    assert "No order was rejected." in page
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in page


def test_single_day(run: FakeResult) -> None:
    one = replace(_empty_like(run), equity=run.equity.head(1), daily=run.daily.head(1), config={})
    page = render_tearsheet(one)
    values = _metric_values(page)
    assert values["total_return"] == pytest.approx(float(run.daily["returns"][0]))
    assert math.isnan(values["sharpe_ratio"])
    assert "Needs at least 63 sessions; the run has 1." in page
    assert "(1 sessions)" in page
    assert "not stated in the run configuration" in page
    assert page.count("Plotly.newPlot(") == 4  # equity, underwater, monthly, exposure


def test_error_before_the_first_session(run: FakeResult) -> None:
    nothing = replace(
        _empty_like(run),
        equity=run.equity.clear(),
        daily=run.daily.clear(),
        error="strategy 'ma' raised KeyError('AAPL') in on_start",
    )
    page = render_tearsheet(nothing)
    assert 'id="run-error"' in page
    assert "Plotly.newPlot(" not in page
    assert "no data" in page
    assert math.isnan(_metric_values(page)["total_return"])


def test_empty_tca(run: FakeResult) -> None:
    page = render_tearsheet(replace(run, tca=pl.DataFrame(), tca_by_strategy=pl.DataFrame()))
    tca_html = page.split('<section id="transaction-cost-analysis">')[1].split("</section>")[0]
    assert tca_html.count("No orders.") == 2


# --------------------------------------------------------------------------- extras and size


def test_extra_sections_are_added_in_order(run: FakeResult) -> None:
    extras = [("SHAP values", "<p>feature importance here</p>"), ("Out of sample", "<p>OOS</p>")]
    page = render_tearsheet(run, title="My run", extra_sections=extras)
    assert "<title>My run</title>" in page
    i_rejects = page.index("<h2>Rejects by code</h2>")
    i_shap = page.index("<h2>SHAP values</h2><p>feature importance here</p>")
    i_oos = page.index("<h2>Out of sample</h2><p>OOS</p>")
    assert i_rejects < i_shap < i_oos < page.index("<h2>Configuration</h2>")


def test_extra_section_loading_from_the_network_is_refused(run: FakeResult) -> None:
    snippet = '<script src="https://cdn.example.com/lib.js"></script>'
    with pytest.raises(ValueError, match="self-contained"):
        render_tearsheet(run, extra_sections=[("Bad", snippet)])


def test_long_intraday_curve_is_thinned_for_plotting(run: FakeResult) -> None:
    # 60,000 one-minute marks: the chart keeps at most MAX_PLOT_POINTS, including the trough.
    n = 60_000
    rng = np.random.default_rng(7)
    equity = INITIAL_CASH * np.cumprod(1 + rng.normal(0, 2e-4, n))
    ts = _utc([_close_ns(date(2024, 1, 2)) + i * 60 * NS for i in range(n)])
    frame = pl.DataFrame(
        {
            "ts": ts,
            "cash": equity,
            "market_value": 0.0,
            "equity": equity,
            "gross_exposure": 0.0,
            "net_exposure": 0.0,
        }
    )
    page = render_tearsheet(replace(run, equity=frame))
    (trace,) = _plot_data(page, "chart-equity")
    y = _array(trace["y"])
    assert len(trace["x"]) == y.size <= MAX_PLOT_POINTS
    assert y.min() == equity.min() and y.max() == equity.max()
    assert y[0] == equity[0] and y[-1] == equity[-1]
    assert "60,000 marks thinned" in page


def test_downsample_indices_keep_extremes_of_every_series() -> None:
    rng = np.random.default_rng(3)
    a = np.cumsum(rng.normal(size=12_345))
    b = np.cumsum(rng.normal(size=12_345))
    b[100] = np.nan
    idx = downsample_indices(a, b, max_points=1_000)
    assert idx.size <= 1_000
    assert np.all(np.diff(idx) > 0)
    assert idx[0] == 0 and idx[-1] == a.size - 1
    for s in (a, b):
        assert np.nanargmin(s) in idx and np.nanargmax(s) in idx
    assert np.array_equal(downsample_indices(a[:999], max_points=1_000), np.arange(999))
    with pytest.raises(ValueError):
        downsample_indices(a, b[:10])


def test_times_are_shown_in_istanbul(run: FakeResult) -> None:
    (trace,) = _plot_data(render_tearsheet(run), "chart-equity")
    first = datetime.fromisoformat(trace["x"][0])
    assert first == datetime(2018, 1, 2, 18, 0) == datetime(2018, 1, 2, 15) + timedelta(hours=3)


def test_renders_the_engines_backtest_result(run: FakeResult, tmp_path: Path) -> None:
    from quant.sim.result import BacktestResult, round_trips

    result = BacktestResult(
        equity=run.equity,
        daily=run.daily,
        orders=run.orders,
        fills=run.fills,
        round_trips=round_trips(run.fills),
        tca=run.tca,
        tca_by_strategy=run.tca_by_strategy,
        stats={"fees": 1.0, "rejects": 5.0},
        config={"costs": "bist_default"},
        synthetic=True,
        strategy="ma_crossover",
        extra={"symbols": ["AAPL"]},
    )
    # The engine's round trips are the fixture's (same fills, same PnL net of fees).
    assert result.round_trips["pnl"].to_list() == pytest.approx(run.round_trips["pnl"].to_list())
    page = render_tearsheet(result)
    values = _metric_values(page)
    assert values["fees"] == 1.0 and values["rejects"] == 5.0  # the engine's figures win
    assert values["sharpe_ratio"] == sharpe_ratio(run.daily["returns"])
    assert "<td>AAPL</td>" in page and "<td>bist_default</td>" in page
    # A result saved to disk and read back renders to the same page.
    assert render_tearsheet(BacktestResult.load(result.save(tmp_path / "run"))) == page
