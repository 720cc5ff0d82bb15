"""``actors.parity.compare``: hand-made live and backtest runs that differ in known ways, and the
causes the comparison gives them (no Ray: the comparison reads frames)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from actors.parity import (
    CAUSES,
    backtest_fills,
    backtest_orders,
    compare,
    compare_predictions,
    parity_html,
    write_parity,
)
from actors.pipeline import FILL_COLUMNS, ORDER_COLUMNS

T0 = 1_700_000_000_000_000_000
MIN = 60_000_000_000


def order(
    cid: str,
    symbol: str = "SYN01",
    side: str = "BUY",
    quantity: int = 100,
    t: int = 0,
    status: str = "filled",
    reject_code: str | None = None,
    limit_price: float | None = None,
) -> dict[str, Any]:
    return {
        "client_order_id": cid,
        "symbol": symbol,
        "side": side,
        "quantity": quantity,
        "limit_price": limit_price,
        "ts_ns": T0 + t * MIN,
        "status": status,
        "filled": quantity if status == "filled" else 0,
        "avg_price": 10.0,
        "reject_code": reject_code,
        "reason": "" if reject_code is None else f"{reject_code} reason",
    }


def fill(
    cid: str, qty: int, price: float, t: int, symbol: str = "SYN01", side: str = "BUY"
) -> dict[str, Any]:
    return {
        "client_order_id": cid,
        "symbol": symbol,
        "side": side,
        "last_qty": qty,
        "last_price": price,
        "fees": 0.5,
        "ts_ns": T0 + t * MIN,
    }


def run(orders: list[dict[str, Any]], fills: list[dict[str, Any]]) -> tuple[pl.DataFrame, ...]:
    return (
        pl.DataFrame(orders or None, schema=ORDER_COLUMNS),
        pl.DataFrame(fills or None, schema=FILL_COLUMNS),
    )


BASE_ORDERS = [
    order("live-000001", t=0),
    order("live-000002", symbol="SYN02", side="SELL", quantity=50, t=1),
]
BASE_FILLS = [
    fill("live-000001", 60, 10.0, 1),
    fill("live-000001", 40, 10.05, 2),
    fill("live-000002", 50, 20.0, 2, symbol="SYN02", side="SELL"),
]


def test_identical_runs_are_fully_identical() -> None:
    report = compare(run(BASE_ORDERS, BASE_FILLS), run(BASE_ORDERS, BASE_FILLS))
    assert report.differences == []
    assert report.identical_share == 1.0 and report.passed
    assert (report.orders_matched, report.fills_matched) == (2, 3)
    assert report.compared == 5


def test_a_different_fill_price_and_a_partial_fill_get_their_causes() -> None:
    live_fills = [
        fill("live-000001", 60, 10.0, 1),
        fill("live-000001", 40, 10.1, 2),  # priced differently
        fill("live-000002", 30, 20.0, 2, symbol="SYN02", side="SELL"),  # smaller fill
        fill("live-000002", 20, 20.0, 3, symbol="SYN02", side="SELL"),  # then the rest
    ]
    report = compare(run(BASE_ORDERS, live_fills), run(BASE_ORDERS, BASE_FILLS))
    causes = [(d.kind, d.cause) for d in report.differences]
    assert ("fill", "fill_price") in causes
    assert causes.count(("fill", "partial_fill")) == 2  # 30 vs 50, and a fill only live has
    price = next(d for d in report.differences if d.cause == "fill_price")
    assert price.live is not None and price.backtest is not None
    assert (price.live["last_price"], price.backtest["last_price"]) == (10.1, 10.05)
    assert report.orders_identical == 2
    assert report.fills_identical == 1
    assert report.identical_share == pytest.approx(3 / 6)
    assert not report.passed


def test_risk_and_funds_rejections_on_one_side_only() -> None:
    live = [
        order("live-000001", t=0, status="rejected", reject_code="INSUFFICIENT_FUNDS"),
        order("live-000002", symbol="SYN02", side="SELL", quantity=50, t=1),
    ]
    back = [
        order("live-000001", t=0),
        order(
            "live-000002",
            symbol="SYN02",
            side="SELL",
            quantity=50,
            t=1,
            status="rejected",
            reject_code="EXPOSURE",
        ),
    ]
    back_fills = [fill("live-000001", 100, 10.0, 1)]
    live_fills = [fill("live-000002", 50, 20.0, 2, symbol="SYN02", side="SELL")]
    report = compare(run(live, live_fills), run(back, back_fills))
    by_symbol = {(d.kind, d.symbol): d for d in report.differences}
    funds = by_symbol[("order", "SYN01")]
    assert funds.cause == "funds" and "live side only" in funds.detail
    assert funds.live is not None and funds.live["reject_code"] == "INSUFFICIENT_FUNDS"
    risk = by_symbol[("order", "SYN02")]
    assert risk.cause == "risk_state" and "EXPOSURE" in risk.detail
    # the fills of those orders inherit the order's cause
    assert by_symbol[("fill", "SYN01")].cause == "funds"
    assert by_symbol[("fill", "SYN02")].cause == "risk_state"
    assert report.identical == 0


def test_orders_only_one_side_sent_and_the_ids_that_drift_after_them() -> None:
    live = [
        order("live-000001", t=0),
        order("live-000002", symbol="SYN03", t=1, status="cancelled"),  # live only
        order("live-000003", symbol="SYN02", side="SELL", quantity=50, t=1),
    ]
    back = [
        order("live-000001", t=0),
        order("live-000002", symbol="SYN02", side="SELL", quantity=50, t=1),
        order("live-000003", symbol="SYN04", t=5, status="cancelled"),  # backtest only
    ]
    live_fills = [fill("live-000001", 100, 10.0, 1)]
    report = compare(run(live, live_fills), run(back, live_fills))
    causes = sorted((d.cause, d.symbol) for d in report.differences)
    assert causes == [("missing_in_backtest", "SYN03"), ("missing_in_live", "SYN04")]
    # the SYN02 sell matched by time, symbol and side although its id shifted by one
    assert report.orders_matched == 2 and report.orders_identical == 2
    assert report.id_mismatches == 1


def test_a_different_quantity_and_late_ticks() -> None:
    live = [order("live-000001", quantity=90, t=0), order("live-000002", symbol="SYN05", t=3)]
    back = [order("live-000001", quantity=100, t=0)]
    report = compare(run(live, []), run(back, []), dropped_symbols={"SYN05"})
    causes = {d.symbol: d.cause for d in report.differences}
    assert causes == {"SYN01": "quantity", "SYN05": "late_tick"}
    quantity = next(d for d in report.differences if d.symbol == "SYN01")
    assert quantity.live is not None and quantity.backtest is not None
    assert (quantity.live["quantity"], quantity.backtest["quantity"]) == (90, 100)


def test_every_cause_is_explained_and_the_report_renders(tmp_path: Path) -> None:
    live_fills = [*BASE_FILLS[:2], fill("live-000002", 50, 20.0, 4, symbol="SYN02", side="SELL")]
    report = compare(
        run(BASE_ORDERS, live_fills), run(BASE_ORDERS, BASE_FILLS), day=date(2024, 2, 12)
    )
    assert [d.cause for d in report.differences] == ["fill_time"]
    assert all(d.cause in CAUSES for d in report.differences)
    html = parity_html(report)
    assert "fill_time" in html
    assert "80.00%" in html  # 4 of 5 identical
    json_path, html_path = write_parity(report, tmp_path)
    data = json.loads(json_path.read_text())
    assert data["identical_share"] == pytest.approx(0.8) and data["passed"] is False
    assert data["causes"] == {"fill_time": 1}
    assert data["differences"][0]["live"]["ts_ns"] == T0 + 4 * MIN
    assert html_path.read_text().startswith("<!doctype html>")


def test_nothing_to_compare_is_said_plainly() -> None:
    report = compare(run([], []), run([], []))
    assert report.compared == 0 and report.passed
    assert "no orders on either side" in report.headline()


def test_backtest_frames_convert_to_the_replay_columns() -> None:
    from quant.sim.result import FILL_SCHEMA, ORDER_SCHEMA

    ts = pl.Series([T0], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
    orders = pl.DataFrame(
        {
            "client_order_id": ["live-000001"],
            "strategy_id": ["live"],
            "symbol": ["SYN01"],
            "side": [-1],
            "quantity": [10],
            "order_type": ["market"],
            "limit_price": [None],
            "ts": ts,
            "status": ["filled"],
            "filled_qty": [10],
            "avg_price": [5.0],
            "fees": [0.1],
            "reject_code": [None],
            "reason": [None],
        },
        schema_overrides={k: v for k, v in ORDER_SCHEMA.items() if k != "ts"},
    )
    fills = pl.DataFrame(
        {
            "ts": ts,
            "client_order_id": ["live-000001"],
            "symbol": ["SYN01"],
            "side": [-1],
            "quantity": [10],
            "price": [5.0],
            "fees": [0.1],
            "liquidity": ["taker"],
        },
        schema_overrides={k: v for k, v in FILL_SCHEMA.items() if k != "ts"},
    )
    o = backtest_orders(orders).row(0, named=True)
    assert (o["side"], o["ts_ns"], o["filled"], o["reason"]) == ("SELL", T0, 10, "")
    f = backtest_fills(fills).row(0, named=True)
    assert (f["side"], f["last_qty"], f["last_price"], f["ts_ns"]) == ("SELL", 10, 5.0, T0)


def test_predictions_agree_within_a_hair() -> None:
    live = pl.DataFrame({"symbol": ["A", "A", "B"], "ts": [1, 2, 1], "p_up": [0.5, 0.6, 0.7]})
    batch = pl.DataFrame({"symbol": ["A", "A", "B"], "ts": [1, 2, 1], "p_up": [0.5, 0.61, 0.7]})
    got = compare_predictions(live, batch)
    assert got["matched"] == 3 and got["identical"] == 2
    assert got["max_abs_diff"] == pytest.approx(0.01)
