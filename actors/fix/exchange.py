"""A simulated exchange behind a real FIX 4.4 acceptor on 127.0.0.1.

``FixExchange`` is what a broker's FIX gateway looks like from the outside, with the simulator's
``MatchingEngine`` (or any ``Venue``) inside: a QuickFIX ``SocketAcceptor`` that authenticates
the Logon (Username 553 / Password 554; a bad pair is answered with a Logout giving the reason),
takes NewOrderSingle (D), OrderCancelRequest (F), OrderCancelReplaceRequest (G),
OrderMassCancelRequest (q) and OrderStatusRequest (H), and answers with ExecutionReports (8),
OrderCancelRejects (9) and an OrderMassCancelReport (r).

**ClOrdIDs.** Every D, F, G and q carries a new ClOrdID; one used before on this exchange is
refused (FIX semantics: the exchange never acts twice on the same ClOrdID), and the exchange
counts what it received (``orders_received``) and refused (``duplicates``): the fault tests
prove "a venue never sees a duplicate order" by these counters. Cancels and replaces chain
ClOrdIDs (OrigClOrdID -> ClOrdID); the inner venue knows an order by the first ClOrdID of its
chain (our ``Order.client_order_id``), which every report echoes as SecondaryClOrdID (526), so a
client that lost its chain (a restart) still knows which order a report is about.

**Answers.** Each inner-venue report becomes one message: ACCEPTED -> ExecType New, a fill ->
Trade (LastQty/LastPx/CumQty/LeavesQty/AvgPx, fees as Commission, maker/taker/auction as
LastLiquidityInd), CANCELLED, EXPIRED, REJECTED (OrdRejReason plus our ``RejectCode`` in Text),
a replace acknowledgement -> Replaced, and a refused cancel/replace -> OrderCancelReject.
Reports are sent to the session that entered the order; the simulator keeps no outbound queue
for a session that is logged out (``PersistMessages=N``), which is fine for a simulator and
exactly what the client's reconciliation (status requests) is for.

One member firm per exchange is the model: a mass cancel cancels every open order.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import logging
import threading
import time as _time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import quickfix as fix
from pydantic import SecretStr

from actors.fix import codec as c
from actors.fix.session import (
    MessageLog,
    SessionSpec,
    bind_loopback,
    claim_session,
    listeners_snapshot,
    release_session,
)
from quant.clock import Clock
from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderStatus,
    RejectCode,
)
from quant.execution.venue import Venue
from quant.sim.matching import MatchingEngine, is_request_answer, to_ns

log = logging.getLogger(__name__)

EXCHANGE_COMP_ID = "BISTSIM"
CLIENT_COMP_ID = "SMARTTRADER"


class SessionClock:
    """The wall clock moved onto a trading day: ``start_ns`` at construction, then advancing
    with the monotonic clock. Lets a live simulated exchange trade continuously whatever the
    hour here (the engine's session timetable would otherwise close it at night)."""

    def __init__(self, start_ns: int) -> None:
        self._start = int(start_ns)
        self._t0 = _time.monotonic_ns()

    def now_ns(self) -> int:
        return self._start + (_time.monotonic_ns() - self._t0)


def synthetic_engine(
    *,
    n_symbols: int = 3,
    seed: int = 7,
    day: date | None = None,
    at: time = time(11, 0),
    clock: Clock | None = None,
    market: Any = None,
) -> MatchingEngine:
    """A ``MatchingEngine`` listing the synthetic market's instruments, its session open on
    ``day`` (default: the market's first session) with each symbol's previous close as the band
    reference, running on a ``SessionClock`` that starts at ``at`` (Istanbul) that day.

    ``market``: a ``SyntheticMarket`` to list (default: ``n_symbols`` of seed ``seed``), e.g.
    the one a test's feed replays, so orders priced off that feed are inside the bands."""
    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
    from quant.market.calendar import ISTANBUL

    if market is None:
        market = SyntheticMarket(
            SyntheticMarketConfig(n_symbols=n_symbols, n_sessions=5, seed=seed)
        )
    day = day if day is not None else market.sessions()[0]
    refs = market.daily_reference(day, day)
    reference = dict(zip(refs["symbol"].to_list(), refs["previous_close"].to_list(), strict=True))
    start = to_ns(datetime.combine(day, at, ISTANBUL))
    engine = MatchingEngine(
        market.instruments(),
        clock=clock if clock is not None else SessionClock(start),
        calendar=market.calendar,
        bands=market.bands,
        breakers=market.breakers,
        name=EXCHANGE_COMP_ID,
    )
    engine.start_session(day, reference)
    engine.on_time()
    return engine


@dataclass(slots=True)
class _Request:
    """The request being answered: which ids the answer's messages carry."""

    kind: str
    cl_ord_id: str
    orig_cl_ord_id: str = ""
    root: str = ""
    session: Any = None


class FixExchange:
    """A simulated exchange on ``127.0.0.1:port`` speaking FIX 4.4 (see the module docstring).

    ``users`` maps each Username to its password; ``venue`` is the market inside (default:
    ``synthetic_engine()``). Use as a context manager or call ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        users: Mapping[str, SecretStr | str],
        venue: Venue | None = None,
        port: int = 0,
        comp_id: str = EXCHANGE_COMP_ID,
        client_comp_ids: Sequence[str] = (CLIENT_COMP_ID,),
        heartbeat_s: int = 1,
    ) -> None:
        self.venue: Venue = venue if venue is not None else synthetic_engine()
        self.comp_id = comp_id
        self.client_comp_ids = tuple(client_comp_ids)
        self.data_dir = Path(data_dir)
        self.port = port
        self.heartbeat_s = heartbeat_s
        self._users = {u: p if isinstance(p, SecretStr) else SecretStr(p) for u, p in users.items()}
        self.orders_received: list[str] = []
        """ClOrdIDs of every NewOrderSingle that arrived, in order (duplicates included)."""
        self.duplicates: list[str] = []
        """ClOrdIDs refused because they had been used before (any message type)."""
        self.messages_received: Counter[str] = Counter()
        """Application messages received, by MsgType."""
        self.logons = 0
        """Logons accepted: credentials that checked out."""
        self.logouts_requested = 0
        """Logout messages received: a counterparty that logged out cleanly (a dropped
        connection ends the session without one)."""
        self.refused_logons: list[str] = []
        """Why each refused Logon was refused (never the credentials)."""
        self._seen: set[str] = set()
        self._refused: dict[str, str] = {}
        self._root: dict[str, str] = {}
        self._latest: dict[str, str] = {}
        self._owner: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._acceptor: Any = None
        self._app: _ExchangeApp | None = None
        self._log: MessageLog | None = None
        self._claimed: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> int:
        """Listen on ``127.0.0.1:port`` (a free port when 0); returns the port."""
        if self._acceptor is not None:
            return self.port
        specs = [
            SessionSpec(self.comp_id, client, self.data_dir, heartbeat_s=self.heartbeat_s)
            for client in self.client_comp_ids
        ]
        claimed: list[str] = []
        try:
            for spec in specs:
                claim_session(spec.session_id)
                claimed.append(spec.session_id)
        except RuntimeError:
            for sid in claimed:
                release_session(sid)
            raise
        self._claimed = claimed
        settings = specs[0].settings(initiator=False)
        for spec in specs[1:]:
            extra = fix.SessionSettings()
            extra.setFromString(spec.settings_text(initiator=False))
            for sid in extra.getSessions():
                settings.set(sid, extra.get(sid))
        self._log = MessageLog(specs[0].log_dir, f"exchange-{self.comp_id}")
        self._app = _ExchangeApp(self)
        self._acceptor = fix.SocketAcceptor(self._app, fix.FileStoreFactory(settings), settings)
        before = listeners_snapshot()
        self._acceptor.start()
        try:
            self.port = bind_loopback(before, self.port)
        except Exception:
            self.stop()
            raise
        self._log.event(f"listening on 127.0.0.1:{self.port}")
        return self.port

    def stop(self) -> None:
        """Log every session out and close the listener (idempotent)."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.stop()
        for sid in self._claimed:
            release_session(sid)
        self._claimed = []
        if self._log is not None:
            self._log.event("stopped")
            self._log.close()

    def __enter__(self) -> FixExchange:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def is_running(self) -> bool:
        return self._acceptor is not None

    # -- time -----------------------------------------------------------------------------

    def advance(self, ts_ns: int | None = None) -> list[ExecutionReport]:
        """Bring the inner venue to ``ts_ns`` (default: its clock) and send what that caused
        (auction fills, halt ends, expiries) to the order owners; returns those reports."""
        on_time = getattr(self.venue, "on_time", None)
        if on_time is None:
            return []
        with self._lock:
            reports = on_time(ts_ns)
            for report in reports:
                self._send_report(report, None)
        return reports

    # -- logon ----------------------------------------------------------------------------

    def check_logon(self, message: fix.Message, session: Any) -> bool:
        """Check Username/Password of an incoming Logon; a refused session is remembered so
        that its Logon answer goes out as a Logout with the reason (``refuse_logon``)."""
        username = c.field(message, c.USERNAME)
        password = c.field(message, c.PASSWORD)
        expected = self._users.get(username or "")
        ok = (
            expected is not None
            and password is not None
            and hmac.compare_digest(expected.get_secret_value().encode(), password.encode())
        )
        key = session.toString()
        if ok:
            # Counted here, before the Logon answer goes out: QuickFIX calls ``onLogon`` only
            # after sending it, so a client could see itself logged on before the count moved.
            self._refused.pop(key, None)
            self.logons += 1
            return True
        reason = "invalid username or password"
        self._refused[key] = reason
        self.refused_logons.append(reason)
        self.event(f"logon refused for {key}: {reason}")
        return False

    def refuse_logon(self, message: fix.Message, session: Any) -> None:
        """Turn the Logon answer to a refused session into a Logout carrying the reason.

        QuickFIX's own way, raising ``RejectLogon`` from ``fromAdmin``, aborts the process in
        this Python binding (the C++ exception crosses a ``noexcept`` director), so the
        refusal is made here, where the answer is about to be sent.
        """
        reason = self._refused.get(session.toString())
        if reason is None or c.msg_type(message) != "A":
            return
        message.getHeader().setField(c.MSG_TYPE, "5")
        for tag in (98, 108, 141, 383, 464, 789, 1137):  # Logon-only fields
            if message.isSetField(tag):
                message.removeField(tag)
        message.setField(c.TEXT, reason)

    def is_refused(self, session: Any) -> bool:
        return session.toString() in self._refused

    def on_logon(self, session: Any) -> None:
        if self.is_refused(session):
            return
        self.event(f"logon {session.toString()}")

    def on_logout(self, session: Any) -> None:
        self._refused.pop(session.toString(), None)
        self.event(f"logout {session.toString()}")

    def event(self, text: str) -> None:
        if self._log is not None:
            self._log.event(text)

    def record(self, direction: str, message: fix.Message) -> None:
        if self._log is not None:
            self._log.message(direction, message)

    # -- requests -------------------------------------------------------------------------

    def on_message(self, message: fix.Message, session: Any) -> None:
        kind = c.msg_type(message)
        self.messages_received[kind] += 1
        handler = {
            "D": self._new_order,
            "F": self._cancel,
            "G": self._replace,
            "q": self._mass_cancel,
            "H": self._status,
        }.get(kind)
        if handler is None:
            self._business_reject(message, session, f"message type {kind} is not supported")
            return
        with self._lock:
            handler(message, session)

    def _fresh_id(self, cl_ord_id: str) -> bool:
        if cl_ord_id in self._seen:
            self.duplicates.append(cl_ord_id)
            return False
        self._seen.add(cl_ord_id)
        return True

    def _new_order(self, message: fix.Message, session: Any) -> None:
        cl = c.field(message, c.CL_ORD_ID) or ""
        self.orders_received.append(cl)
        req = _Request("D", cl, root=cl, session=session)
        if not self._fresh_id(cl):
            self._send_reject(req, message, RejectCode.DUPLICATE_ORDER_ID, f"ClOrdID {cl} was used")
            return
        try:
            order = _decode_order(message)
        except (c.CodecError, KeyError) as exc:
            self._send_reject(req, message, RejectCode.INVALID_ORDER, str(exc))
            return
        self._root[cl] = cl
        self._latest[cl] = cl
        self._owner[cl] = session
        try:
            reports = self.venue.submit(order)
        except Exception as exc:  # the inner venue failed: answer, never leave the client guessing
            log.exception("exchange: the inner venue failed on order %s", cl)
            self._send_reject(
                req, message, RejectCode.VENUE, f"exchange error ({type(exc).__name__})"
            )
            return
        for report in reports:
            self._send_report(report, req)

    def _cancel(self, message: fix.Message, session: Any) -> None:
        req = self._chained("F", message, session)
        if not self._fresh_id(req.cl_ord_id):
            self._send_cancel_reject(req, None, RejectCode.DUPLICATE_ORDER_ID, "duplicate ClOrdID")
            return
        for report in self.venue.cancel(req.root, self._now()):
            self._send_report(report, req)

    def _replace(self, message: fix.Message, session: Any) -> None:
        req = self._chained("G", message, session)
        if not self._fresh_id(req.cl_ord_id):
            self._send_cancel_reject(req, None, RejectCode.DUPLICATE_ORDER_ID, "duplicate ClOrdID")
            return
        try:
            qty_text = c.field(message, c.ORDER_QTY)
            quantity = c.parse_qty(qty_text) if qty_text is not None else None
            price = c.parse_price(c.field(message, c.PRICE))
        except c.CodecError as exc:
            self._send_cancel_reject(req, None, RejectCode.INVALID_ORDER, str(exc))
            return
        for report in self.venue.replace(req.root, self._now(), quantity, price):
            self._send_report(report, req)

    def _mass_cancel(self, message: fix.Message, session: Any) -> None:
        cl = c.field(message, c.CL_ORD_ID) or ""
        kind = c.field(message, c.MASS_CANCEL_REQUEST_TYPE) or ""
        symbol = c.field(message, c.SYMBOL)
        answer = c.new_message("r")
        answer.setField(c.CL_ORD_ID, cl)
        answer.setField(c.ORDER_ID, f"{self.comp_id}-MC{next(self._ids)}")
        answer.setField(c.MASS_CANCEL_REQUEST_TYPE, kind or "7")
        reports: list[ExecutionReport] = []
        if not self._fresh_id(cl):
            answer.setField(c.MASS_CANCEL_RESPONSE, "0")
            answer.setField(c.MASS_CANCEL_REJECT_REASON, "99")
            answer.setField(
                c.TEXT, c.reject_text(RejectCode.DUPLICATE_ORDER_ID, "duplicate ClOrdID")
            )
        elif kind not in ("1", "7") or (kind == "1" and not symbol):
            answer.setField(c.MASS_CANCEL_RESPONSE, "0")
            answer.setField(c.MASS_CANCEL_REJECT_REASON, "99")
            text = "only MassCancelRequestType 1 (with Symbol) and 7 are supported"
            answer.setField(c.TEXT, c.reject_text(RejectCode.INVALID_ORDER, text))
        else:
            reports = self.venue.cancel_all(self._now(), symbol if kind == "1" else None)
            answer.setField(c.MASS_CANCEL_RESPONSE, kind)
            cancelled = sum(r.status is OrderStatus.CANCELLED for r in reports)
            answer.setField(c.TOTAL_AFFECTED_ORDERS, str(cancelled))
        req = _Request("q", cl, session=session)
        for report in reports:
            self._send_report(report, req)
        fix.Session.sendToTarget(answer, session)

    def _status(self, message: fix.Message, session: Any) -> None:
        cl = c.field(message, c.CL_ORD_ID) or ""
        root = self._root.get(cl, cl)
        state = self.venue.status(root)
        er = c.new_message("8")
        er.setField(c.ORDER_ID, (state.venue_order_id if state else "") or "NONE")
        er.setField(c.EXEC_ID, f"{self.comp_id}-S{next(self._ids)}")
        er.setField(c.EXEC_TYPE, c.EXEC_ORDER_STATUS)
        req_id = c.field(message, c.ORD_STATUS_REQ_ID)
        if req_id:
            er.setField(c.ORD_STATUS_REQ_ID, req_id)
        er.setField(c.CL_ORD_ID, self._latest.get(root, cl))
        er.setField(c.SECONDARY_CL_ORD_ID, root)
        er.setField(c.TRANSACT_TIME, c.format_time(self._now()))
        if state is None:
            er.setField(c.ORD_STATUS, "8")
            er.setField(c.ORD_REJ_REASON, "5")
            er.setField(c.SYMBOL, c.field(message, c.SYMBOL) or c.NOT_APPLICABLE)
            er.setField(c.SIDE, c.field(message, c.SIDE) or "1")
            for tag in (c.LEAVES_QTY, c.CUM_QTY, c.AVG_PX):
                er.setField(tag, "0")
            text = c.reject_text(RejectCode.INVALID_ORDER, f"unknown order id {cl!r}")
            er.setField(c.TEXT, text)
        else:
            _fill_order_fields(er, state.order)
            er.setField(c.ORD_STATUS, c.ORD_STATUS_TO_FIX[state.status])
            er.setField(c.CUM_QTY, str(state.filled_qty))
            er.setField(c.LEAVES_QTY, str(state.leaves_qty))
            er.setField(c.AVG_PX, c.format_price(state.avg_price))
            er.setField(c.COMMISSION, c.format_price(state.fees))
            er.setField(c.COMM_TYPE, "3")
            if state.reject_code is not None:
                er.setField(c.TEXT, c.reject_text(state.reject_code, state.reason))
        fix.Session.sendToTarget(er, session)

    def _chained(self, kind: str, message: fix.Message, session: Any) -> _Request:
        cl = c.field(message, c.CL_ORD_ID) or ""
        orig = c.field(message, c.ORIG_CL_ORD_ID) or ""
        root = self._root.get(orig, orig)
        return _Request(kind, cl, orig, root, session)

    # -- answers --------------------------------------------------------------------------

    def _now(self) -> int:
        clock = getattr(self.venue, "clock", None)
        return clock.now_ns() if clock is not None else _time.time_ns()

    def _send_report(self, report: ExecutionReport, req: _Request | None) -> None:
        root = report.client_order_id
        about_request = req is not None and req.kind in ("F", "G") and root == req.root
        if about_request and is_request_answer(report) and not report.reason.startswith("replaced"):
            assert req is not None
            self._send_cancel_reject(req, report, report.reject_code, report.reason)
            return
        if req is not None and req.kind == "q" and is_request_answer(report):
            req = _Request("q", self._latest.get(root, root), root=root)
            self._send_cancel_reject(req, report, report.reject_code, report.reason)
            return
        er = c.new_message("8")
        cl = self._latest.get(root, root)
        if (
            about_request
            and req is not None
            and (report.status is OrderStatus.CANCELLED or report.reason.startswith("replaced"))
        ):
            er.setField(c.ORIG_CL_ORD_ID, cl)
            cl = req.cl_ord_id
            self._root[cl] = root
            self._latest[root] = cl
        er.setField(c.CL_ORD_ID, cl)
        er.setField(c.SECONDARY_CL_ORD_ID, root)
        er.setField(c.ORDER_ID, report.venue_order_id or "NONE")
        er.setField(c.EXEC_ID, report.exec_id or f"{self.comp_id}-X{next(self._ids)}")
        er.setField(c.EXEC_TYPE, _exec_type(report))
        er.setField(c.ORD_STATUS, c.ORD_STATUS_TO_FIX[report.status])
        state = self.venue.status(root)
        order = state.order if state is not None else None
        if order is not None:
            _fill_order_fields(er, order)
        else:
            er.setField(c.SYMBOL, report.symbol or c.NOT_APPLICABLE)
            er.setField(c.SIDE, c.SIDE_TO_FIX.get(report.side, "1") if report.side else "1")
        er.setField(c.CUM_QTY, str(report.cum_qty))
        er.setField(c.LEAVES_QTY, str(report.leaves_qty))
        er.setField(c.AVG_PX, c.format_price(report.avg_price))
        er.setField(c.TRANSACT_TIME, c.format_time(report.ts_ns))
        if report.last_qty:
            er.setField(c.LAST_QTY, str(report.last_qty))
            er.setField(c.LAST_PX, c.format_price(report.last_price))
            er.setField(c.COMMISSION, c.format_price(report.fees))
            er.setField(c.COMM_TYPE, "3")
            if report.liquidity in c.LIQUIDITY_TO_FIX:
                er.setField(c.LAST_LIQUIDITY_IND, c.LIQUIDITY_TO_FIX[report.liquidity])
        if report.status is OrderStatus.REJECTED and report.reject_code is not None:
            er.setField(c.ORD_REJ_REASON, c.REJECT_CODE_TO_FIX.get(report.reject_code, "99"))
            er.setField(c.TEXT, c.reject_text(report.reject_code, report.reason))
        elif report.reason:
            er.setField(c.TEXT, report.reason)
        session = self._owner.get(root) or (req.session if req is not None else None)
        if session is not None:
            fix.Session.sendToTarget(er, session)

    def _send_reject(
        self, req: _Request, message: fix.Message, code: RejectCode, reason: str
    ) -> None:
        """Reject a NewOrderSingle the inner venue never saw (duplicate or undecodable)."""
        er = c.new_message("8")
        er.setField(c.CL_ORD_ID, req.cl_ord_id)
        er.setField(c.SECONDARY_CL_ORD_ID, req.cl_ord_id)
        er.setField(c.ORDER_ID, "NONE")
        er.setField(c.EXEC_ID, f"{self.comp_id}-X{next(self._ids)}")
        er.setField(c.EXEC_TYPE, c.EXEC_REJECTED)
        er.setField(c.ORD_STATUS, "8")
        er.setField(c.SYMBOL, c.field(message, c.SYMBOL) or c.NOT_APPLICABLE)
        er.setField(c.SIDE, c.field(message, c.SIDE) or "1")
        for tag in (c.LEAVES_QTY, c.CUM_QTY, c.AVG_PX):
            er.setField(tag, "0")
        er.setField(c.TRANSACT_TIME, c.format_time(self._now()))
        er.setField(c.ORD_REJ_REASON, c.REJECT_CODE_TO_FIX.get(code, "99"))
        er.setField(c.TEXT, c.reject_text(code, reason))
        fix.Session.sendToTarget(er, req.session)

    def _send_cancel_reject(
        self,
        req: _Request,
        report: ExecutionReport | None,
        code: RejectCode | None,
        reason: str,
    ) -> None:
        answer = c.new_message("9")
        root = req.root or req.cl_ord_id
        unknown = report is not None and report.status is OrderStatus.REJECTED
        answer.setField(c.ORDER_ID, (report.venue_order_id if report else "") or "NONE")
        answer.setField(c.CL_ORD_ID, req.cl_ord_id)
        answer.setField(c.ORIG_CL_ORD_ID, req.orig_cl_ord_id or req.cl_ord_id)
        answer.setField(c.SECONDARY_CL_ORD_ID, root)
        state = self.venue.status(root) if root else None
        status = report.status if report is not None else (state.status if state else None)
        answer.setField(c.ORD_STATUS, c.ORD_STATUS_TO_FIX[status or OrderStatus.REJECTED])
        answer.setField(c.CXL_REJ_RESPONSE_TO, "2" if req.kind == "G" else "1")
        if code is RejectCode.DUPLICATE_ORDER_ID:
            answer.setField(c.CXL_REJ_REASON, c.CXL_DUPLICATE)
        elif unknown:
            answer.setField(c.CXL_REJ_REASON, c.CXL_UNKNOWN_ORDER)
        else:
            answer.setField(c.CXL_REJ_REASON, c.CXL_OTHER)
        answer.setField(c.TRANSACT_TIME, c.format_time(self._now()))
        answer.setField(c.TEXT, c.reject_text(code or RejectCode.INVALID_ORDER, reason))
        session = req.session or self._owner.get(root)
        if session is not None:
            fix.Session.sendToTarget(answer, session)

    def _business_reject(self, message: fix.Message, session: Any, reason: str) -> None:
        answer = c.new_message("j")
        answer.setField(45, c.header_field(message, 34) or "0")  # RefSeqNum
        answer.setField(372, c.msg_type(message))  # RefMsgType
        answer.setField(380, "3")  # BusinessRejectReason: unsupported message type
        answer.setField(c.TEXT, reason)
        fix.Session.sendToTarget(answer, session)


def _exec_type(report: ExecutionReport) -> str:
    if report.reason.startswith("replaced") and not report.last_qty:
        return c.EXEC_REPLACED
    if report.last_qty:
        return c.EXEC_TRADE
    return {
        OrderStatus.ACCEPTED: c.EXEC_NEW,
        OrderStatus.CANCELLED: c.EXEC_CANCELED,
        OrderStatus.EXPIRED: c.EXEC_EXPIRED,
        OrderStatus.REJECTED: c.EXEC_REJECTED,
    }.get(report.status, c.EXEC_ORDER_STATUS)


def _fill_order_fields(message: fix.Message, order: Order) -> None:
    message.setField(c.SYMBOL, order.symbol)
    message.setField(c.SIDE, c.SIDE_TO_FIX.get(order.side, "1"))
    if isinstance(order.quantity, int) and not isinstance(order.quantity, bool):
        message.setField(c.ORDER_QTY, str(order.quantity))
    message.setField(c.ORD_TYPE, c.ORD_TYPE_TO_FIX.get(order.order_type, "2"))
    message.setField(c.TIME_IN_FORCE, c.TIF_TO_FIX.get(order.time_in_force, "0"))
    if order.limit_price is not None:
        with contextlib.suppress(c.CodecError):
            message.setField(c.PRICE, c.format_price(order.limit_price))


def _decode_order(message: fix.Message) -> Order:
    """A NewOrderSingle as an ``Order`` (CodecError for what cannot be one)."""
    side = c.SIDE_FROM_FIX.get(c.field(message, c.SIDE) or "")
    if side is None:
        raise c.CodecError(f"unsupported Side {c.field(message, c.SIDE)!r}")
    order_type = c.ORD_TYPE_FROM_FIX.get(c.field(message, c.ORD_TYPE) or "")
    if order_type is None:
        raise c.CodecError(f"unsupported OrdType {c.field(message, c.ORD_TYPE)!r}")
    tif = c.TIF_FROM_FIX.get(c.field(message, c.TIME_IN_FORCE) or "0")
    if tif is None:
        raise c.CodecError(f"unsupported TimeInForce {c.field(message, c.TIME_IN_FORCE)!r}")
    quantity = c.parse_qty(c.field(message, c.ORDER_QTY))
    if quantity < 0:
        raise c.CodecError(f"OrderQty {quantity} is negative")
    return Order(
        client_order_id=c.field(message, c.CL_ORD_ID) or "",
        symbol=c.field(message, c.SYMBOL) or "",
        side=side,
        quantity=quantity,
        order_type=order_type,
        limit_price=c.parse_price(c.field(message, c.PRICE)),
        time_in_force=tif,
        ts_ns=c.parse_time(c.field(message, c.TRANSACT_TIME)),
    )


class _ExchangeApp(fix.Application):
    """QuickFIX callbacks; every exception is caught and logged here, because one escaping into
    QuickFIX's thread takes the whole process down."""

    def __init__(self, exchange: FixExchange) -> None:
        super().__init__()
        self.exchange = exchange

    def onCreate(self, session: Any) -> None:
        pass

    def onLogon(self, session: Any) -> None:
        self.exchange.on_logon(session)

    def onLogout(self, session: Any) -> None:
        self.exchange.on_logout(session)

    def toAdmin(self, message: fix.Message, session: Any) -> None:
        try:
            self.exchange.refuse_logon(message, session)
            self.exchange.record("OUT", message)
        except Exception:
            log.exception("exchange: toAdmin failed")

    def toApp(self, message: fix.Message, session: Any) -> None:
        self.exchange.record("OUT", message)

    def fromAdmin(self, message: fix.Message, session: Any) -> None:
        try:
            self.exchange.record("IN", message)
            if c.msg_type(message) == "A":
                self.exchange.check_logon(message, session)
            elif c.msg_type(message) == "5":
                self.exchange.logouts_requested += 1
        except Exception:
            log.exception("exchange: fromAdmin failed")

    def fromApp(self, message: fix.Message, session: Any) -> None:
        self.exchange.record("IN", message)
        if self.exchange.is_refused(session):
            return  # never act for a session whose logon was refused
        try:
            self.exchange.on_message(message, session)
        except Exception:
            log.exception("exchange: failed to process a %s message", c.msg_type(message))


__all__ = [
    "CLIENT_COMP_ID",
    "EXCHANGE_COMP_ID",
    "FixExchange",
    "SessionClock",
    "synthetic_engine",
]
