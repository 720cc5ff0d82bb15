"""The FIX 4.4 venue over a real socket: ``FixVenue`` (QuickFIX initiator) against
``FixExchange`` (QuickFIX acceptor on 127.0.0.1 with the matching engine inside), logon
credentials read from a real OpenBao dev server through secret references. No Ray."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

import hvac
import psutil
import pytest
from pydantic import SecretStr

from actors.fix import FixExchange, FixVenue, synthetic_engine
from cluster.secrets import SecretResolver
from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
)
from quant.execution.routing import TransientVenueError, VenueError, VenueUnavailable
from quant.market.calendar import ISTANBUL
from quant.market.ticks import BIST_SHARE_TICKS
from quant.sim.matching import MatchingEngine, is_request_answer, to_ns

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "Fx-9d1f0c7e-correct-horse"
WRONG = "Fx-wrong-battery-staple"
USER_REF = "vault:secret/data/fix/bistsim#username"
PASSWORD_REF = "vault:secret/data/fix/bistsim#password"
B, S = Side.BUY, Side.SELL


@dataclass
class Env:
    engine: MatchingEngine
    exchange: FixExchange
    venue: FixVenue
    other: FixVenue
    resolver: SecretResolver
    callbacks: list[ExecutionReport]
    root: Path
    bao: object

    def tick(self, symbol: str) -> float:
        band = self.engine.band(symbol)
        assert band is not None
        return BIST_SHARE_TICKS.tick_size(band.reference, self.engine.day)

    def ref(self, symbol: str) -> float:
        band = self.engine.band(symbol)
        assert band is not None
        return band.reference


def _open_sockets(port: int) -> list:
    """This process's sockets on ``port`` (TIME_WAIT is the kernel's, not ours)."""
    return [
        c
        for c in psutil.Process().net_connections("tcp")
        if ((c.laddr and c.laddr.port == port) or (c.raddr and c.raddr.port == port))
        and c.status != psutil.CONN_TIME_WAIT
    ]


@pytest.fixture(scope="module")
def env(openbao, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    admin = hvac.Client(url=openbao.address, token=openbao.token)
    admin.secrets.kv.v2.create_or_update_secret(
        path="fix/bistsim",
        secret={"username": "trader", "password": PASSWORD},
        mount_point="secret",
    )
    admin.secrets.kv.v2.create_or_update_secret(
        path="fix/wrong", secret={"username": "trader", "password": WRONG}, mount_point="secret"
    )
    root = tmp_path_factory.mktemp("fix")
    engine = synthetic_engine(n_symbols=3)
    exchange = FixExchange(
        root / "exchange",
        users={"trader": SecretStr(PASSWORD)},
        venue=engine,
        client_comp_ids=("SMARTTRADER", "OTHERFIRM"),
    )
    port = exchange.start()
    resolver = SecretResolver(address=openbao.address, token=openbao.token, environ={})
    callbacks: list[ExecutionReport] = []
    venue = FixVenue(
        host="127.0.0.1",
        port=port,
        username_ref=USER_REF,
        password_ref=PASSWORD_REF,
        resolver=resolver,
        data_dir=root / "venue",
        on_report=callbacks.append,
        timeout_s=5.0,
    )
    other = FixVenue(
        host="127.0.0.1",
        port=port,
        username_ref=USER_REF,
        password_ref=PASSWORD_REF,
        resolver=resolver,
        data_dir=root / "other",
        sender_comp_id="OTHERFIRM",
        name="OTHER",
    )
    try:
        venue.start()
        other.start()
        yield Env(engine, exchange, venue, other, resolver, callbacks, root, openbao)
    finally:
        venue.stop()
        other.stop()
        exchange.stop()
    assert _open_sockets(port) == [], "a socket of the FIX session is still open"


def _states(reports: list[ExecutionReport], orders: dict[str, Order]) -> dict[str, OrderState]:
    """Apply every report to a mirror ``OrderState`` (the state machine checks transitions)."""
    states = {oid: OrderState(o) for oid, o in orders.items()}
    for r in reports:
        if r.client_order_id in states and not is_request_answer(r):
            states[r.client_order_id].apply(r)
    return states


def test_logon_reads_credentials_from_openbao(env: Env) -> None:
    assert env.venue.is_logged_on and env.other.is_logged_on
    assert env.exchange.logons >= 2
    assert env.resolver.vault_reads == 1  # one read of the secret, then the TTL cache


def test_limit_order_is_acked_and_rests(env: Env) -> None:
    sym = "SYN01"
    price = round(env.ref(sym) - 5 * env.tick(sym), 2)
    order = Order("rest-1", sym, B, 100, limit_price=price)
    reports = env.venue.submit(order)
    assert [r.status for r in reports] == [OrderStatus.ACCEPTED]
    ack = reports[0]
    assert (ack.client_order_id, ack.symbol, ack.side) == ("rest-1", sym, B)
    assert (ack.cum_qty, ack.leaves_qty) == (0, 100) and ack.venue_order_id
    assert "rest-1" in env.exchange.orders_received
    state = env.venue.status("rest-1")
    assert state is not None and state.status is OrderStatus.ACCEPTED
    assert state.order.limit_price == price and state.order.quantity == 100
    assert env.engine.status("rest-1").status is OrderStatus.ACCEPTED  # the engine's own view
    env.venue.cancel("rest-1", 0)


def test_crossing_orders_fill_partially_then_fully(env: Env) -> None:
    sym = "SYN01"
    p, t = env.ref(sym), env.tick(sym)
    p2 = round(p + t, 2)
    orders = {
        "mk-1": Order("mk-1", sym, S, 100, limit_price=p),
        "mk-2": Order("mk-2", sym, S, 100, limit_price=p2),
        "tk-1": Order("tk-1", sym, B, 150, limit_price=p2),
        "tk-2": Order("tk-2", sym, B, 50, limit_price=p2),
    }
    reports = []
    for oid in ("mk-1", "mk-2"):
        reports += env.venue.submit(orders[oid])
    taker = env.venue.submit(orders["tk-1"])
    reports += taker
    own = [r for r in taker if r.client_order_id == "tk-1"]
    assert [r.status for r in own] == [
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    first, last = own[1], own[2]
    assert (first.last_qty, first.last_price, first.cum_qty, first.leaves_qty) == (100, p, 100, 50)
    assert (last.last_qty, last.last_price, last.cum_qty, last.leaves_qty) == (50, p2, 150, 0)
    assert last.avg_price == pytest.approx((100 * p + 50 * p2) / 150)
    assert first.liquidity == "taker" and first.exec_id != last.exec_id
    # the makers' fills come back in the same answer, as the matching engine returns them
    makers = {r.client_order_id: r for r in taker if r.client_order_id.startswith("mk")}
    assert makers["mk-1"].status is OrderStatus.FILLED and makers["mk-1"].liquidity == "maker"
    assert makers["mk-2"].status is OrderStatus.PARTIALLY_FILLED
    assert (makers["mk-2"].cum_qty, makers["mk-2"].leaves_qty) == (50, 50)
    reports += env.venue.submit(orders["tk-2"])
    states = _states(reports, orders)
    assert {oid: s.status for oid, s in states.items()} == dict.fromkeys(orders, OrderStatus.FILLED)
    assert states["mk-2"].avg_price == p2 and states["tk-2"].filled_qty == 50
    venue_view = env.venue.status("tk-1")
    assert venue_view is not None and venue_view.filled_qty == 150
    assert venue_view.avg_price == pytest.approx(states["tk-1"].avg_price)


def test_cancel_replace_and_status(env: Env) -> None:
    sym = "SYN01"
    p, t = env.ref(sym), env.tick(sym)
    low = round(p - 10 * t, 2)
    assert env.venue.submit(Order("cr-1", sym, B, 200, limit_price=low))[0].status is (
        OrderStatus.ACCEPTED
    )
    smaller = env.venue.replace("cr-1", 0, quantity=150)
    assert len(smaller) == 1 and smaller[0].reason == "replaced (time priority kept)"
    assert smaller[0].leaves_qty == 150 and is_request_answer(smaller[0])
    lower = round(low - t, 2)
    moved = env.venue.replace("cr-1", 0, limit_price=lower)
    assert moved[0].reason == "replaced (time priority lost)"
    state = env.venue.status("cr-1")
    assert state is not None and (state.order.quantity, state.order.limit_price) == (150, lower)
    cancelled = env.venue.cancel("cr-1", 0)
    assert [r.status for r in cancelled] == [OrderStatus.CANCELLED]
    assert cancelled[0].client_order_id == "cr-1"  # our id, though the FIX chain has three
    again = env.venue.cancel("cr-1", 0)
    assert again[0].status is OrderStatus.CANCELLED and again[0].reject_code is not None
    assert is_request_answer(again[0])
    refused = env.venue.replace("cr-1", 0, quantity=300)
    assert refused[0].reject_code is RejectCode.INVALID_ORDER and "replace" in refused[0].reason
    unknown = env.venue.cancel("never-sent", 0)
    assert unknown[0].status is OrderStatus.REJECTED and unknown[0].reason.startswith("unknown")
    assert is_request_answer(unknown[0])
    assert env.venue.status("never-sent") is None


def test_cancel_all_cancels_every_open_order_of_the_symbol(env: Env) -> None:
    sym = "SYN03"
    p, t = env.ref(sym), env.tick(sym)
    ids = ["ca-1", "ca-2", "ca-3"]
    for k, oid in enumerate(ids):
        env.venue.submit(Order(oid, sym, B, 10 * (k + 1), limit_price=round(p - (k + 2) * t, 2)))
    reports = env.venue.cancel_all(0, symbol=sym)
    assert sorted(r.client_order_id for r in reports) == ids
    assert {r.status for r in reports} == {OrderStatus.CANCELLED}
    for oid in ids:
        state = env.venue.status(oid)
        assert state is not None and state.status is OrderStatus.CANCELLED
    assert env.engine.open_orders(sym) == []


@pytest.mark.parametrize(
    ("oid", "quantity", "price", "code"),
    [
        ("bad-tick", 100, "off_tick", RejectCode.OFF_TICK),
        ("bad-band", 100, "above_band", RejectCode.OUTSIDE_BAND),
        ("bad-zero", 0, "ref", RejectCode.INVALID_ORDER),
        ("bad-neg", -5, "ref", RejectCode.INVALID_ORDER),
    ],
)
def test_exchange_rejects_bad_orders_with_the_reject_code(
    env: Env, oid: str, quantity: int, price: str, code: RejectCode
) -> None:
    sym = "SYN01"
    band = env.engine.band(sym)
    assert band is not None
    prices = {
        "off_tick": env.ref(sym) + env.tick(sym) / 2,
        "above_band": round(band.upper + 10 * env.tick(sym), 2),
        "ref": env.ref(sym),
    }
    reports = env.venue.submit(Order(oid, sym, B, quantity, limit_price=prices[price]))
    assert [r.status for r in reports] == [OrderStatus.REJECTED]
    assert reports[0].reject_code is code and reports[0].reason
    assert oid in env.exchange.orders_received  # refused by the exchange, over the wire


def test_market_and_market_to_limit_orders_travel(env: Env) -> None:
    sym = "SYN02"
    p = env.ref(sym)
    env.venue.submit(Order("mtl-mk", sym, S, 30, limit_price=p))
    mtl = env.venue.submit(Order("mtl-1", sym, B, 50, order_type=OrderType.MARKET_TO_LIMIT))
    own = [r for r in mtl if r.client_order_id == "mtl-1"]
    assert [r.status for r in own] == [OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED]
    assert own[1].last_price == p
    state = env.engine.status("mtl-1")
    assert state is not None and state.status is OrderStatus.PARTIALLY_FILLED  # rest is a limit
    env.venue.cancel("mtl-1", 0)


def test_duplicate_clordid_is_refused_and_counted(env: Env) -> None:
    sym = "SYN01"
    order = Order("dup-1", sym, B, 100, limit_price=round(env.ref(sym) - 20 * env.tick(sym), 2))
    assert env.venue.submit(order)[0].status is OrderStatus.ACCEPTED
    before = len(env.exchange.duplicates)
    again = env.venue.submit(order)
    assert [r.status for r in again] == [OrderStatus.REJECTED]
    assert again[0].reject_code is RejectCode.DUPLICATE_ORDER_ID
    assert env.exchange.duplicates[before:] == ["dup-1"]
    assert env.exchange.orders_received.count("dup-1") == 2
    state = env.engine.status("dup-1")
    assert state is not None and state.status is OrderStatus.ACCEPTED  # the original stands
    env.venue.cancel("dup-1", 0)


def test_unsolicited_fills_reach_the_callback(env: Env) -> None:
    sym = "SYN02"
    p = env.ref(sym)
    env.callbacks.clear()
    env.venue.submit(Order("cb-maker", sym, S, 40, limit_price=p))
    # another member firm's order fills ours: nothing of ours is outstanding, so it arrives
    # as an unsolicited report
    taken = env.other.submit(Order("cb-taker", sym, B, 40, limit_price=p))
    assert [r.client_order_id for r in taken] == ["cb-taker", "cb-taker"]
    done = threading.Event()
    for _ in range(100):
        if any(r.client_order_id == "cb-maker" for r in env.callbacks):
            done.set()
            break
        done.wait(0.05)
    fills = [r for r in env.callbacks if r.client_order_id == "cb-maker"]
    assert len(fills) == 1 and fills[0].status is OrderStatus.FILLED
    assert (fills[0].last_qty, fills[0].last_price, fills[0].liquidity) == (40, p, "maker")


def test_bad_credentials_are_refused_with_a_reason(env: Env) -> None:
    refused_before = len(env.exchange.refused_logons)
    bad = FixVenue(
        host="127.0.0.1",
        port=env.exchange.port,
        username_ref=USER_REF,
        password_ref="vault:secret/data/fix/wrong#password",
        resolver=env.resolver,
        data_dir=env.root / "bad",
        sender_comp_id="OTHERFIRM",
        name="BAD",
    )
    # OTHERFIRM is logged on already; log it out so this logon attempt is the only one
    env.other.stop()
    try:
        with pytest.raises(VenueUnavailable, match="invalid username or password") as info:
            bad.start(timeout_s=5)
        assert WRONG not in str(info.value)
        assert len(env.exchange.refused_logons) == refused_before + 1
        assert not bad.is_logged_on
        with pytest.raises(VenueUnavailable):
            bad.submit(Order("never", "SYN01", B, 1, limit_price=env.ref("SYN01")))
    finally:
        bad.stop()
        env.other.start()


def test_missing_secret_fails_fast_without_a_value(env: Env) -> None:
    venue = FixVenue(
        host="127.0.0.1",
        port=env.exchange.port,
        username_ref=USER_REF,
        password_ref="vault:secret/data/fix/bistsim#nope",
        resolver=env.resolver,
        data_dir=env.root / "missing",
    )
    with pytest.raises(VenueUnavailable, match="no key 'nope'") as info:
        venue.start()
    assert PASSWORD not in str(info.value)


def test_password_never_reaches_files_or_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env.other.stop()  # a fresh logon while the log is captured
    env.other.start()
    env.other.submit(Order("log-1", "SYN01", B, 1, limit_price=env.ref("SYN01") - 0.5))
    files = [f for f in env.root.rglob("*") if f.is_file()]
    assert any(f.suffix == ".log" for f in files) and any("store" in f.parts for f in files)
    for f in files:
        data = f.read_bytes()
        assert PASSWORD.encode() not in data and WRONG.encode() not in data, f
    logons = [
        line
        for f in files
        if f.name.endswith("messages.log")
        for line in f.read_text().splitlines()
        if "|35=A|" in line and "|554=" in line
    ]
    assert logons and all("|554=***|" in line for line in logons)  # logged, but masked
    assert PASSWORD not in caplog.text and "logged on" in caplog.text
    assert PASSWORD not in repr(env.venue) and PASSWORD not in repr(env.resolver)


def test_exchange_down_raises_a_venue_error_instead_of_hanging(openbao, tmp_path: Path) -> None:
    engine = synthetic_engine(n_symbols=1)
    # a second exchange in this process needs its own session ids (QuickFIX's registry is global)
    exchange = FixExchange(
        tmp_path / "x",
        users={"trader": PASSWORD},
        venue=engine,
        comp_id="BISTSIM2",
        client_comp_ids=("SMARTTRADER2",),
    )
    port = exchange.start()
    resolver = SecretResolver(address=openbao.address, token=openbao.token, environ={})
    venue = FixVenue(
        host="127.0.0.1",
        port=port,
        username_ref=USER_REF,
        password_ref=PASSWORD_REF,
        resolver=resolver,
        data_dir=tmp_path / "v",
        sender_comp_id="SMARTTRADER2",
        target_comp_id="BISTSIM2",
        timeout_s=2.0,
    )
    try:
        venue.start()
        sym = engine.symbols[0]
        ref = engine.band(sym).reference
        assert venue.submit(Order("up-1", sym, B, 10, limit_price=ref))[0].status is (
            OrderStatus.ACCEPTED
        )
        exchange.stop()
        with pytest.raises(VenueError) as info:
            venue.submit(Order("down-1", sym, B, 10, limit_price=ref))
        assert isinstance(info.value, VenueUnavailable | TransientVenueError)
        assert "down-1" not in exchange.orders_received
    finally:
        venue.stop()
        exchange.stop()
    assert _open_sockets(port) == []


def test_session_clock_puts_the_exchange_in_continuous_trading() -> None:
    engine = synthetic_engine(n_symbols=1, at=time(11, 0))
    day = engine.day
    assert day is not None
    start = to_ns(datetime.combine(day, time(11, 0), ISTANBUL))
    assert engine.clock.now_ns() >= start
    assert engine.phase.name == "CONTINUOUS"
