"""A batch of orders checked by the risk guard sees the views the one-order path would give.

The stream processor's book counts every order of a slice as open from its submission; when
the guard rejects one, the later orders of the batch must be checked as if it had never been
open (``_without``): its open quantity and buying-power reservation come out of their views.
"""

from __future__ import annotations

from actors.risk_guard import _without
from quant.execution.orders import Order, OrderType, Side


def _order(cid: str, symbol: str, side: Side, qty: int, limit: float | None = None) -> Order:
    return Order(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        quantity=qty,
        order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET,
        limit_price=limit,
        ts_ns=1,
    )


VIEW = {
    "day": "2024-01-04",
    "last_prices": {"AAA": 10.0, "BBB": 20.0},
    "open_buy": {"AAA": 150, "BBB": 10},
    "open_sell": {"BBB": 40},
    "buying_power": 1_000.0,
    "equity": 5_000.0,
}


def test_no_rejects_leave_the_view_as_it_is() -> None:
    assert _without(VIEW, []) is VIEW


def test_a_rejected_buy_gives_back_its_quantity_and_reservation() -> None:
    view = _without(VIEW, [_order("a", "AAA", Side.BUY, 100)])
    assert view["open_buy"] == {"AAA": 50, "BBB": 10}
    assert view["buying_power"] == 1_000.0 + 100 * 10.0  # at the last price (a market order)
    assert view["open_sell"] == VIEW["open_sell"]
    assert VIEW["open_buy"]["AAA"] == 150, "the caller's view is not changed"


def test_limit_buys_reserve_at_their_limit_and_sells_reserve_nothing() -> None:
    rejected = [_order("b", "BBB", Side.BUY, 10, 19.5), _order("c", "BBB", Side.SELL, 40)]
    view = _without(VIEW, rejected)
    assert view["open_buy"] == {"AAA": 150}
    assert view["open_sell"] == {}
    assert view["buying_power"] == 1_000.0 + 10 * 19.5
    assert view["equity"] == VIEW["equity"]
