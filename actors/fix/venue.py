"""``FixVenue``: the ``Venue`` protocol over a FIX 4.4 order-entry session (QuickFIX initiator).

**Synchronous answers over an asynchronous protocol.** FIX has no request/response pairing, but
a session is ordered: the exchange handles one message completely (sending every report it
caused) before it reads the next. So each call sends its request followed by a TestRequest
(1) with a fresh TestReqID, and the Heartbeat (0) echoing that id closes the answer: every
report between the request and that Heartbeat is what the call returns, in order, exactly as
``MatchingEngine`` returns every report a call caused (the ack or reject, immediate fills,
the makers' fills). Reports that arrive while no call is outstanding (auction fills, expiries)
go to ``on_report``. Each report is delivered once, either returned or called back. Calls are
serialised (one outstanding request), which is what an order router does anyway.

**Failures are venue errors, never hangs.** Not logged on -> ``VenueUnavailable`` (nothing
sent); the session drops or no closing Heartbeat arrives within ``timeout_s`` ->
``TransientVenueError(maybe_received=True)``: the request may have reached the exchange, so
the router must ask ``status`` before sending it again.

**Credentials** are secret references resolved by ``cluster.secrets.SecretResolver`` when the
Logon is built (``toAdmin``), so a rotated password is used at the next logon; they are checked
once in ``start`` to fail fast, and never logged (``session.MessageLog`` masks them,
``PersistMessages=N`` keeps the Logon out of the store).

**Order ids.** A NewOrderSingle's ClOrdID is the order's ``client_order_id``; a cancel or
replace gets a new ClOrdID ``<client_order_id>~<random>`` chained by OrigClOrdID, and reports
are mapped back through the SecondaryClOrdID the exchange echoes, so callers only ever see
their own ids.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import quickfix as fix

from actors.fix import codec as c
from actors.fix.exchange import CLIENT_COMP_ID, EXCHANGE_COMP_ID
from actors.fix.session import MessageLog, SessionSpec, claim_session, release_session
from cluster.secrets import SecretError, SecretRef, SecretResolver
from quant.execution.orders import (
    ExecutionReport,
    Order,
    OrderState,
    OrderStatus,
    OrderType,
    RejectCode,
    Side,
)
from quant.execution.routing import TransientVenueError, VenueUnavailable

log = logging.getLogger(__name__)

ReportCallback = Callable[[ExecutionReport], None]


@dataclass(slots=True)
class _Pending:
    """One outstanding request: the messages received until its closing Heartbeat."""

    token: str
    messages: list[fix.Message] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    failure: str = ""


class FixVenue:
    """A FIX 4.4 client venue (implements ``quant.execution.venue.Venue``)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username_ref: str | SecretRef,
        password_ref: str | SecretRef,
        resolver: SecretResolver,
        data_dir: Path,
        sender_comp_id: str = CLIENT_COMP_ID,
        target_comp_id: str = EXCHANGE_COMP_ID,
        on_report: ReportCallback | None = None,
        timeout_s: float = 5.0,
        heartbeat_s: int = 1,
        name: str = "FIX",
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.username_ref = SecretRef.parse(username_ref)
        self.password_ref = SecretRef.parse(password_ref)
        self.resolver = resolver
        self.on_report = on_report
        self.timeout_s = timeout_s
        self.spec = SessionSpec(sender_comp_id, target_comp_id, Path(data_dir), heartbeat_s)
        self.logon_error: str = ""
        """Why the last logon failed or the session ended (the exchange's Logout text)."""
        self._logged_on = threading.Event()
        self._ended = threading.Event()
        self._refused = False
        """The exchange answered our Logon with a Logout: a refusal, not a dropped link."""
        self._request_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: _Pending | None = None
        self._orders: dict[str, Order] = {}
        self._latest: dict[str, str] = {}
        self._root: dict[str, str] = {}
        self._tokens = itertools.count(1)
        self._initiator: Any = None
        self._session_id: Any = None
        self._log: MessageLog | None = None
        self._claimed = False

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        resolver: SecretResolver,
        data_dir: Path,
        on_report: ReportCallback | None = None,
        name: str = "FIX",
    ) -> FixVenue:
        """From ``cluster.config.FixVenueSettings`` (``settings.venues.fix``)."""
        return cls(
            host=settings.host,
            port=settings.port,
            username_ref=settings.username_ref,
            password_ref=settings.password_ref,
            resolver=resolver,
            data_dir=data_dir,
            sender_comp_id=settings.sender_comp_id,
            target_comp_id=settings.target_comp_id,
            on_report=on_report,
            timeout_s=settings.timeout_s,
            heartbeat_s=settings.heartbeat_s,
            name=name,
        )

    def __repr__(self) -> str:
        return (
            f"FixVenue(name={self.name!r}, {self.spec.sender_comp_id}->{self.spec.target_comp_id}"
            f" at {self.host}:{self.port}, logged_on={self.is_logged_on})"
        )

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def is_logged_on(self) -> bool:
        return self._logged_on.is_set()

    def start(self, timeout_s: float | None = None) -> None:
        """Connect and log on; ``VenueUnavailable`` if the logon is refused or times out."""
        if self._initiator is not None and self.is_logged_on:
            return
        try:  # fail fast on a reference that cannot be resolved (names the ref, not a value)
            self.resolver.resolve_secret(self.username_ref)
            self.resolver.resolve_secret(self.password_ref)
        except SecretError as exc:
            raise VenueUnavailable(f"{self.name}: logon credentials unavailable: {exc}") from None
        claim_session(self.spec.session_id)
        self._claimed = True
        settings = self.spec.settings(initiator=True, host=self.host, port=self.port)
        self._session_id = settings.getSessions()[0] if settings.getSessions() else None
        self._log = MessageLog(self.spec.log_dir, f"venue-{self.spec.sender_comp_id}")
        self._ended.clear()
        self._refused = False
        self.logon_error = ""
        self._initiator = fix.SocketInitiator(
            _VenueApp(self), fix.FileStoreFactory(settings), settings
        )
        self._initiator.start()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        while time.monotonic() < deadline:
            if self._logged_on.wait(0.05):
                return
            if self._ended.is_set():
                break
        reason = self.logon_error or f"no logon within {timeout_s or self.timeout_s}s"
        self.stop()
        raise VenueUnavailable(f"{self.name}: logon to {self.host}:{self.port} failed: {reason}")

    def stop(self) -> None:
        """Log out and stop the session thread (idempotent)."""
        initiator, self._initiator = self._initiator, None
        if initiator is not None:
            initiator.stop()
        if self._claimed:
            release_session(self.spec.session_id)
            self._claimed = False
        self._logged_on.clear()
        self._fail_pending("venue stopped")
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> FixVenue:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the Venue protocol ---------------------------------------------------------------

    def submit(self, order: Order) -> list[ExecutionReport]:
        """Send a NewOrderSingle; returns the ack or reject and whatever executed at once."""
        try:
            message = self._new_order_single(order)
        except c.CodecError as exc:  # cannot even be written as FIX: refuse, do not raise
            return [self._local_reject(order, f"not sent: {exc}")]
        self._orders[order.client_order_id] = order
        self._root[order.client_order_id] = order.client_order_id
        return self._reports(self._request(message))

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        message = c.new_message("F")
        self._chain(message, client_order_id, "C", ts_ns)
        order = self._orders.get(client_order_id)
        if order is not None and isinstance(order.quantity, int):
            message.setField(c.ORDER_QTY, str(order.quantity))
        return self._reports(self._request(message))

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        message = c.new_message("q")
        message.setField(c.CL_ORD_ID, f"MC~{uuid.uuid4().hex[:16]}")
        message.setField(c.MASS_CANCEL_REQUEST_TYPE, "1" if symbol else "7")
        if symbol:
            message.setField(c.SYMBOL, symbol)
        message.setField(c.TRANSACT_TIME, c.format_time(ts_ns or time.time_ns()))
        return self._reports(self._request(message))

    def replace(
        self,
        client_order_id: str,
        ts_ns: int,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> list[ExecutionReport]:
        """Send an OrderCancelReplaceRequest; an omitted quantity or price stays unchanged."""
        message = c.new_message("G")
        try:
            if quantity is not None:
                message.setField(c.ORDER_QTY, c.format_qty(quantity))
            if limit_price is not None:
                message.setField(c.PRICE, c.format_price(limit_price))
        except c.CodecError as exc:
            return [self._refusal(client_order_id, f"replace not sent: {exc}")]
        self._chain(message, client_order_id, "R", ts_ns)
        order = self._orders.get(client_order_id)
        kind = order.order_type if order is not None else OrderType.LIMIT
        message.setField(c.ORD_TYPE, c.ORD_TYPE_TO_FIX[kind])
        return self._reports(self._request(message))

    def status(self, client_order_id: str) -> OrderState | None:
        """The exchange's view of the order (None if it does not know it)."""
        message = c.new_message("H")
        message.setField(c.CL_ORD_ID, self._latest.get(client_order_id, client_order_id))
        message.setField(c.ORD_STATUS_REQ_ID, f"ST~{uuid.uuid4().hex[:16]}")
        self._instrument(message, client_order_id)
        for answer in self._request(message):
            if c.msg_type(answer) == "8" and c.field(answer, c.EXEC_TYPE) == c.EXEC_ORDER_STATUS:
                return self._order_state(answer)
        return None

    # -- requests -------------------------------------------------------------------------

    def _request(self, message: fix.Message) -> list[fix.Message]:
        with self._request_lock:
            if not self.is_logged_on or self._session_id is None:
                raise VenueUnavailable(f"{self.name}: FIX session is not logged on")
            pending = _Pending(f"{self.name}-{next(self._tokens)}-{uuid.uuid4().hex[:8]}")
            with self._state_lock:
                self._pending = pending
            try:
                if not fix.Session.sendToTarget(message, self._session_id):
                    raise VenueUnavailable(f"{self.name}: FIX session dropped before sending")
                probe = c.new_message("1")
                probe.setField(c.TEST_REQ_ID, pending.token)
                if not fix.Session.sendToTarget(probe, self._session_id):
                    raise TransientVenueError(
                        f"{self.name}: FIX session dropped after sending", maybe_received=True
                    )
                if not pending.done.wait(self.timeout_s):
                    raise TransientVenueError(
                        f"{self.name}: no answer within {self.timeout_s}s", maybe_received=True
                    )
                if pending.failure:
                    raise TransientVenueError(
                        f"{self.name}: {pending.failure} before the answer", maybe_received=True
                    )
                return pending.messages
            finally:
                with self._state_lock:
                    self._pending = None

    def _fail_pending(self, why: str) -> None:
        with self._state_lock:
            pending = self._pending
        if pending is not None:
            pending.failure = why
            pending.done.set()

    # -- callbacks (QuickFIX thread) ------------------------------------------------------

    def _logon_fields(self, message: fix.Message) -> None:
        try:
            message.setField(c.USERNAME, self.resolver.resolve(self.username_ref))
            message.setField(c.PASSWORD, self.resolver.resolve(self.password_ref))
        except SecretError as exc:
            self.logon_error = f"logon credentials unavailable: {exc}"
            self._event(self.logon_error)

    def _on_admin(self, message: fix.Message) -> None:
        kind = c.msg_type(message)
        if kind == "0":
            token = c.field(message, c.TEST_REQ_ID)
            with self._state_lock:
                pending = self._pending
            if pending is not None and token == pending.token:
                pending.done.set()
        elif kind == "5" and not self.is_logged_on:
            self._refused = True
            text = c.field(message, c.TEXT)
            if text:
                self.logon_error = text

    def _on_app(self, message: fix.Message) -> None:
        with self._state_lock:
            pending = self._pending
            if pending is not None:  # QuickFIX owns ``message``: keep a copy
                pending.messages.append(fix.Message(message))
                return
        if self.on_report is None:
            return
        for report in self._reports([message]):
            try:
                self.on_report(report)
            except Exception:
                log.exception("%s: on_report callback failed", self.name)

    def _on_logon(self) -> None:
        self._refused = False
        self._logged_on.set()
        self._event("logged on")

    def _on_logout(self) -> None:
        was = self.is_logged_on
        if not was and self._refused and self._session_id is not None:
            # Refused: QuickFIX would reconnect at once with the same credentials (and leave
            # that socket open when stopped mid-connect). Disabling the session stops it.
            # A link that merely dropped (the exchange going down as we logged on) is left to
            # QuickFIX, which reconnects every ReconnectInterval until the exchange is back.
            session = fix.Session.lookupSession(self._session_id)
            if session is not None:
                session.logout()
        self._logged_on.clear()
        self._ended.set()
        self._fail_pending("FIX session logged out")
        self._event("logged out" if was else f"logon failed: {self.logon_error or 'no reason'}")

    def _event(self, text: str) -> None:
        if self._log is not None:
            self._log.event(text)

    def _record(self, direction: str, message: fix.Message) -> None:
        if self._log is not None:
            self._log.message(direction, message)

    # -- encoding -------------------------------------------------------------------------

    def _new_order_single(self, order: Order) -> fix.Message:
        if not isinstance(order.side, Side):
            raise c.CodecError(f"side {order.side!r} is not a Side")
        if order.order_type not in c.ORD_TYPE_TO_FIX:
            raise c.CodecError(f"order type {order.order_type!r} is not supported")
        if order.time_in_force not in c.TIF_TO_FIX:
            raise c.CodecError(f"time in force {order.time_in_force!r} is not supported")
        if not isinstance(order.client_order_id, str) or not isinstance(order.symbol, str):
            raise c.CodecError("client order id and symbol must be strings")
        message = c.new_message("D")
        message.setField(c.CL_ORD_ID, order.client_order_id)
        message.setField(c.SYMBOL, order.symbol)
        message.setField(c.SIDE, c.SIDE_TO_FIX[order.side])
        message.setField(c.ORDER_QTY, c.format_qty(order.quantity))
        message.setField(c.ORD_TYPE, c.ORD_TYPE_TO_FIX[order.order_type])
        message.setField(c.TIME_IN_FORCE, c.TIF_TO_FIX[order.time_in_force])
        if order.limit_price is not None:
            message.setField(c.PRICE, c.format_price(order.limit_price))
        message.setField(c.TRANSACT_TIME, c.format_time(order.ts_ns or time.time_ns()))
        return message

    def _chain(self, message: fix.Message, client_order_id: str, tag: str, ts_ns: int) -> None:
        new_id = f"{client_order_id}~{tag}{uuid.uuid4().hex[:12]}"
        self._root[new_id] = client_order_id
        message.setField(c.ORIG_CL_ORD_ID, self._latest.get(client_order_id, client_order_id))
        message.setField(c.CL_ORD_ID, new_id)
        message.setField(c.SECONDARY_CL_ORD_ID, client_order_id)
        message.setField(c.TRANSACT_TIME, c.format_time(ts_ns or time.time_ns()))
        self._instrument(message, client_order_id)

    def _instrument(self, message: fix.Message, client_order_id: str) -> None:
        """Symbol and Side (required by FIX) from the order this venue sent, or FIX's "[N/A]"
        for an order it does not remember (the exchange finds orders by ClOrdID)."""
        order = self._orders.get(client_order_id)
        message.setField(c.SYMBOL, order.symbol if order else c.NOT_APPLICABLE)
        side = order.side if order is not None and isinstance(order.side, Side) else Side.BUY
        message.setField(c.SIDE, c.SIDE_TO_FIX[side])

    # -- decoding -------------------------------------------------------------------------

    def _reports(self, messages: list[fix.Message]) -> list[ExecutionReport]:
        out = []
        for message in messages:
            kind = c.msg_type(message)
            try:
                if kind == "8" and c.field(message, c.EXEC_TYPE) != c.EXEC_ORDER_STATUS:
                    out.append(self._execution_report(message))
                elif kind == "9":
                    out.append(self._cancel_reject(message))
                elif kind == "r":
                    self._event(f"mass cancel report: {c.redact(message.toString())}")
                elif kind == "j":
                    self._event(f"business reject: {c.field(message, c.TEXT)}")
            except c.CodecError as exc:  # a malformed answer is logged, not raised
                log.error("%s: undecodable %s message: %s", self.name, kind, exc)
        return out

    def _root_of(self, message: fix.Message) -> str:
        secondary = c.field(message, c.SECONDARY_CL_ORD_ID)
        if secondary:
            return secondary
        cl = c.field(message, c.CL_ORD_ID) or ""
        return self._root.get(cl, cl)

    def _execution_report(self, message: fix.Message) -> ExecutionReport:
        root = self._root_of(message)
        exec_type = c.field(message, c.EXEC_TYPE) or ""
        status = c.ORD_STATUS_FROM_FIX.get(c.field(message, c.ORD_STATUS) or "")
        if status is None:
            raise c.CodecError(f"unknown OrdStatus {c.field(message, c.ORD_STATUS)!r}")
        text = c.field(message, c.TEXT) or ""
        code: RejectCode | None = None
        if exec_type == c.EXEC_REJECTED:
            fallback = c.ORD_REJ_FALLBACK.get(c.field(message, c.ORD_REJ_REASON) or "")
            code, text = c.parse_reject_text(text, fallback or RejectCode.VENUE)
        cl = c.field(message, c.CL_ORD_ID) or ""
        if exec_type in (c.EXEC_REPLACED, c.EXEC_CANCELED) and cl:
            self._latest[root] = cl
            self._root[cl] = root
        if exec_type == c.EXEC_REPLACED:
            self._remember_terms(root, message)
        last_qty = c.parse_qty(c.field(message, c.LAST_QTY))
        return ExecutionReport(
            client_order_id=root,
            status=status,
            ts_ns=c.parse_time(c.field(message, c.TRANSACT_TIME)),
            symbol=c.field(message, c.SYMBOL) or "",
            side=c.SIDE_FROM_FIX.get(c.field(message, c.SIDE) or ""),
            exec_id=c.field(message, c.EXEC_ID) or "",
            venue_order_id=_order_id(message),
            last_qty=last_qty,
            last_price=(c.parse_price(c.field(message, c.LAST_PX)) or 0.0) if last_qty else 0.0,
            cum_qty=c.parse_qty(c.field(message, c.CUM_QTY)),
            leaves_qty=c.parse_qty(c.field(message, c.LEAVES_QTY)),
            avg_price=c.parse_price(c.field(message, c.AVG_PX)) or 0.0,
            fees=(c.parse_price(c.field(message, c.COMMISSION)) or 0.0) if last_qty else 0.0,
            reject_code=code,
            reason=text,
            liquidity=c.LIQUIDITY_FROM_FIX.get(c.field(message, c.LAST_LIQUIDITY_IND) or "", ""),
        )

    def _cancel_reject(self, message: fix.Message) -> ExecutionReport:
        """An OrderCancelReject in the matching engine's shape of a refused request: the
        order's unchanged status plus a reject code (``is_request_answer`` recognises it)."""
        root = self._root_of(message)
        status = c.ORD_STATUS_FROM_FIX.get(c.field(message, c.ORD_STATUS) or "")
        reason_code = c.field(message, c.CXL_REJ_REASON)
        fallback = (
            RejectCode.INVALID_ORDER if reason_code == c.CXL_UNKNOWN_ORDER else RejectCode.VENUE
        )
        code, text = c.parse_reject_text(c.field(message, c.TEXT), fallback)
        order = self._orders.get(root)
        return ExecutionReport(
            client_order_id=root,
            status=status if status is not None else OrderStatus.REJECTED,
            ts_ns=c.parse_time(c.field(message, c.TRANSACT_TIME)),
            symbol=order.symbol if order else "",
            side=order.side if order else None,
            venue_order_id=_order_id(message),
            reject_code=code,
            reason=text,
        )

    def _order_state(self, message: fix.Message) -> OrderState | None:
        status = c.ORD_STATUS_FROM_FIX.get(c.field(message, c.ORD_STATUS) or "")
        if status is None or (
            status is OrderStatus.REJECTED and c.field(message, c.ORD_REJ_REASON) == "5"
        ):
            return None
        root = self._root_of(message)
        order = Order(
            client_order_id=root,
            symbol=c.field(message, c.SYMBOL) or "",
            side=c.SIDE_FROM_FIX.get(c.field(message, c.SIDE) or "", Side.BUY),
            quantity=c.parse_qty(c.field(message, c.ORDER_QTY)),
            order_type=c.ORD_TYPE_FROM_FIX.get(
                c.field(message, c.ORD_TYPE) or "2", OrderType.LIMIT
            ),
            limit_price=c.parse_price(c.field(message, c.PRICE)),
            time_in_force=c.TIF_FROM_FIX.get(c.field(message, c.TIME_IN_FORCE) or "0")
            or c.TIF_FROM_FIX["0"],
            ts_ns=self._orders[root].ts_ns if root in self._orders else 0,
        )
        self._orders.setdefault(root, order)
        code = None
        reason = ""
        if c.field(message, c.TEXT):
            code, reason = c.parse_reject_text(c.field(message, c.TEXT), RejectCode.VENUE)
        return OrderState(
            order=order,
            status=status,
            filled_qty=c.parse_qty(c.field(message, c.CUM_QTY)),
            avg_price=c.parse_price(c.field(message, c.AVG_PX)) or 0.0,
            fees=c.parse_price(c.field(message, c.COMMISSION)) or 0.0,
            venue_order_id=_order_id(message),
            reject_code=code,
            reason=reason,
        )

    def _remember_terms(self, root: str, message: fix.Message) -> None:
        import dataclasses

        order = self._orders.get(root)
        if order is None:
            return
        quantity = c.field(message, c.ORDER_QTY)
        price = c.field(message, c.PRICE)
        self._orders[root] = dataclasses.replace(
            order,
            quantity=c.parse_qty(quantity) if quantity is not None else order.quantity,
            limit_price=c.parse_price(price) if price is not None else order.limit_price,
        )

    def _local_reject(self, order: Order, reason: str) -> ExecutionReport:
        return ExecutionReport(
            client_order_id=order.client_order_id if isinstance(order.client_order_id, str) else "",
            status=OrderStatus.REJECTED,
            ts_ns=order.ts_ns if isinstance(order.ts_ns, int) else 0,
            symbol=order.symbol if isinstance(order.symbol, str) else "",
            side=order.side if isinstance(order.side, Side) else None,
            reject_code=RejectCode.INVALID_ORDER,
            reason=reason,
        )

    def _refusal(self, client_order_id: str, reason: str) -> ExecutionReport:
        order = self._orders.get(client_order_id)
        return ExecutionReport(
            client_order_id=client_order_id,
            status=OrderStatus.ACCEPTED,
            ts_ns=0,
            symbol=order.symbol if order else "",
            side=order.side if order else None,
            reject_code=RejectCode.INVALID_ORDER,
            reason=reason,
        )


def _order_id(message: fix.Message) -> str:
    value = c.field(message, c.ORDER_ID) or ""
    return "" if value == "NONE" else value


class _VenueApp(fix.Application):
    """QuickFIX callbacks for ``FixVenue``; nothing may escape into QuickFIX's thread."""

    def __init__(self, venue: FixVenue) -> None:
        super().__init__()
        self.venue = venue

    def onCreate(self, session: Any) -> None:
        pass

    def onLogon(self, session: Any) -> None:
        self.venue._on_logon()

    def onLogout(self, session: Any) -> None:
        self.venue._on_logout()

    def toAdmin(self, message: fix.Message, session: Any) -> None:
        try:
            if c.msg_type(message) == "A":
                self.venue._logon_fields(message)
            self.venue._record("OUT", message)
        except Exception:
            log.exception("%s: toAdmin failed", self.venue.name)

    def toApp(self, message: fix.Message, session: Any) -> None:
        self.venue._record("OUT", message)

    def fromAdmin(self, message: fix.Message, session: Any) -> None:
        try:
            self.venue._record("IN", message)
            self.venue._on_admin(message)
        except Exception:
            log.exception("%s: fromAdmin failed", self.venue.name)

    def fromApp(self, message: fix.Message, session: Any) -> None:
        try:
            self.venue._record("IN", message)
            self.venue._on_app(message)
        except Exception:
            log.exception("%s: fromApp failed", self.venue.name)
