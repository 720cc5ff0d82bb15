"""The durable journal of the live/paper pipeline: event log, outbox, consumers, recovery.

Why it exists: actors die (a killed ``OrderRouter``, a lost node) and their memory goes with
them. Everything the pipeline must not forget is written here first, so a restarted actor can
rebuild what it knew, and an operator can reconcile it with what the venue says:

* **Event log** (``events``): every signal, risk decision, order staged/sent, order state change
  and fill, with a global sequence number. Append-only: SQLite triggers refuse ``UPDATE`` and
  ``DELETE`` on it, so history cannot be rewritten, even by another process. Producers that retry
  after a crash pass an idempotency key; a second append with the same key writes nothing and
  returns the first one's sequence number.
* **Outbox** (``outbox``, ``outbox_sends``): an order is journaled (``stage_order``) before it
  is sent, and the send is claimed (``mark_sent``) before the order is handed to a venue. The
  claim is a compare-and-set on ``(client_order_id, venue)``: it returns ``True`` once and
  ``False`` after, so a venue never sees the same client order id twice, whatever crashes and
  retries happen in between. The one exception is explicit and needs evidence: a venue that
  answered a status request saying it does not hold a claimed order (it never saw it) may be
  sent it once more (``reclaim_after_absent`` records the answer, the next claim consumes it).
  See ``Journal.mark_sent`` for the protocol.
* **Consumers** (``consumer_offsets``, ``dead_letters``): ``consume`` delivers events after a
  consumer's stored offset and advances the offset in the same SQLite transaction as the
  handler's own journal writes, so journal effects are exactly-once. A handler that raises has
  its writes rolled back and the event goes to the dead-letter table with the reason.
  Consumers in another process (an actor calling the ``JournalActor``) use ``poll`` and
  ``commit_offset``, which writes their results, dead letters and the new offset atomically and
  recognises a retried commit.
* **Checkpoints**: small named values (the stream processor's last tick sequence per symbol).
* **Recovery**: ``rebuild`` replays the journaled execution reports through ``OrderState.apply``
  (the order state machine is respected, refused reports are listed, not applied) and derives
  positions and cash; ``reconcile`` compares that with a venue's view and lists the breaks.

Durability: WAL mode with ``synchronous=FULL`` by default. In WAL mode a committed transaction
is in the WAL file in the OS page cache when ``commit`` returns, so with ``NORMAL`` it survives a
crash of *this process* (SIGKILL, actor death), but an OS crash or power loss can roll back the
last commits. The outbox's promise (never send a duplicate client order id) rests on a committed
send claim never disappearing, so the default is ``FULL``, which fsyncs the WAL on every commit
(about 0.2 ms here; batch appends with ``append_many``/``transaction`` amortise it). ``NORMAL``
is offered for throughput benchmarks and disposable paper runs.

Concurrency: one ``Journal`` holds one connection behind a re-entrant lock, so it may be shared
by threads (calls are serialised). Several processes may open the same file: WAL lets readers
proceed while one writer writes; every write transaction starts with ``BEGIN IMMEDIATE`` and
waits up to ``busy_timeout_s`` for the write lock instead of failing. A ``consume`` handler runs
inside the journal's lock and transaction on the calling thread: it may call this journal's
methods (they join the transaction), but must not wait for another thread that uses the journal.

Pure Python + sqlite3: the ``JournalActor`` hosts it; no Ray here. Time: every write takes an
explicit ``ts_ns`` where the event has one; where it does not (staging and send claims, dead
letters), the injected ``clock`` is used (the wall clock by default, since this is the live side).
"""

from __future__ import annotations

import dataclasses
import json
import operator
import sqlite3
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from quant.execution.orders import (
    ExecutionReport,
    IllegalTransition,
    Order,
    OrderState,
    Side,
)
from quant.risk.checks import RiskDecision

SCHEMA_VERSION = 1


class EventKind(StrEnum):
    """Kinds of journal events written by the typed helpers (``append`` takes any string)."""

    SIGNAL = "signal"
    RISK_DECISION = "risk_decision"
    ORDER_STAGED = "order_staged"
    """An order intent journaled before it is sent (outbox)."""
    ORDER_SENT = "order_sent"
    """A send of a staged order to a venue was claimed (outbox)."""
    ORDER_ABSENT = "order_absent"
    """A venue answered that it does not hold an order whose send to it was claimed: the
    evidence that allows one more claim of that order at that venue (``reclaim_after_absent``)."""
    ORDER_UPDATE = "order_update"
    """An execution report without a fill: accepted, cancelled, rejected, expired."""
    FILL = "fill"
    """An execution report carrying a fill (``last_qty > 0``)."""
    POSITIONS = "positions"
    """A snapshot of positions (and cash) that ``rebuild`` starts from, e.g. start-of-day."""


REPORT_KINDS = (EventKind.ORDER_UPDATE, EventKind.FILL)
ORDER_HELD = "order_held"
"""Kind of a venue's "held for a later phase" answer (status NEW, not a transition)."""
REQUEST_ANSWER = "request_answer"
"""Kind of a venue's answer to a cancel or replace that changes nothing (a refusal: "cannot
cancel: order is filled", or a replace acknowledgement): kept for the record, never applied
to an order's state (``quant.sim.matching.is_request_answer``)."""


class JournalError(RuntimeError):
    """The journal cannot do what was asked (closed, wrong mode, outbox rule broken)."""


# --------------------------------------------------------------------------------------------
# Codecs: Order, ExecutionReport, RiskDecision <-> JSON-safe dicts
# --------------------------------------------------------------------------------------------
# Generic over the dataclass fields, so a field added to Order later is journaled without
# touching this module (the round-trip test covers every field). Side is written by name
# ("BUY"/"SELL") because a journal is read by people too; other enums by value.

_Decoder = Callable[[Any], Any]
_CODECS: dict[type, tuple[tuple[str, ...], tuple[tuple[str, _Decoder], ...]]] = {}
"""Per record class: its field names, and a decoder per field resolved once from the type
hints (the journal decodes every report a consumer reads: resolving hints per value cost more
than the rest of the read)."""


def _codec(cls: type) -> tuple[tuple[str, ...], tuple[tuple[str, _Decoder], ...]]:
    codec = _CODECS.get(cls)
    if codec is None:
        hints = typing.get_type_hints(cls)
        names = tuple(f.name for f in dataclasses.fields(cls))
        codec = _CODECS[cls] = (names, tuple((n, _decoder(hints[n], n)) for n in names))
    return codec


def _encode(value: Any) -> Any:
    if isinstance(value, Side):
        return value.name
    if isinstance(value, Enum):
        return value.value
    return value


def _decoder(hint: Any, name: str) -> _Decoder:
    """How a field of type ``hint`` is read back (None always reads as None)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            return _same
        hint = options[0]
    if hint is Side:
        return _side
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    if hint is bool:
        return bool
    if hint is int:

        def whole(raw: Any) -> int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(f"{name}: expected a whole number, got {raw!r}")
            return int(raw)

        return whole
    if hint is float:
        return float
    if hint is str:
        return str
    return _same


def _same(raw: Any) -> Any:
    return raw


def _side(raw: Any) -> Side:
    return Side[raw] if isinstance(raw, str) else Side(int(raw))


def _to_dict(obj: Any) -> dict[str, Any]:
    names, _ = _codec(type(obj))
    return {n: _encode(getattr(obj, n)) for n in names}


def _from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Build ``cls`` from a dict; unknown keys are ignored, missing ones take their default."""
    _, decoders = _codec(cls)
    kwargs = {}
    for name, decode in decoders:
        if name in data:
            raw = data[name]
            kwargs[name] = None if raw is None else decode(raw)
    return cls(**kwargs)


def order_to_dict(order: Order) -> dict[str, Any]:
    """A JSON-safe dict of every field of ``order``."""
    return _to_dict(order)


def order_from_dict(data: Mapping[str, Any]) -> Order:
    return _from_dict(Order, data)


def report_to_dict(report: ExecutionReport) -> dict[str, Any]:
    """A JSON-safe dict of every field of ``report``."""
    return _to_dict(report)


def report_from_dict(data: Mapping[str, Any]) -> ExecutionReport:
    return _from_dict(ExecutionReport, data)


def decision_to_dict(decision: RiskDecision) -> dict[str, Any]:
    return _to_dict(decision)


def decision_from_dict(data: Mapping[str, Any]) -> RiskDecision:
    return _from_dict(RiskDecision, data)


def _json_default(value: Any) -> Any:
    """numpy scalars (a feature value, a quantity from an array) are written as Python ones."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot journal a {type(value).__name__}: not JSON-serialisable")


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), default=_json_default)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One event of the log as stored."""

    seq: int
    ts_ns: int
    kind: str
    key: str
    payload: dict[str, Any]
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append (``Journal.append_many``)."""

    kind: str
    key: str
    payload: Mapping[str, Any]
    ts_ns: int
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A staged order, the venue it was staged for, and the venues its send was claimed for."""

    order: Order
    venue: str
    staged_seq: int
    staged_ts_ns: int
    sent_to: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event a consumer's handler failed on, with the reason, kept for an operator."""

    consumer: str
    seq: int
    kind: str
    key: str
    reason: str
    payload: dict[str, Any]
    ts_ns: int
    """The event's own time."""
    recorded_ns: int
    """When the failure was recorded (journal clock)."""


@dataclass(frozen=True, slots=True)
class ConsumeResult:
    """What one ``consume`` call did."""

    delivered: int
    """Events the handler processed without raising."""
    dead_lettered: int
    """Events the handler raised on (now in ``dead_letters``)."""
    offset: int
    """The consumer's offset after the call (last sequence number handled)."""

    @property
    def processed(self) -> int:
        return self.delivered + self.dead_lettered


@dataclass(slots=True)
class JournalState:
    """What the journal says the book is: the input of a restarted router or risk guard."""

    orders: dict[str, OrderState] = field(default_factory=dict)
    """Every staged or reported order by client order id, rebuilt through ``OrderState.apply``."""
    positions: dict[str, int] = field(default_factory=dict)
    """Signed shares per symbol: the last ``POSITIONS`` snapshot plus fills after it."""
    cash: float = 0.0
    """Snapshot cash (0 without one) minus bought notional, plus sold notional, minus fees."""
    fees: float = 0.0
    """Fees of all applied reports."""
    risk_decisions: dict[str, RiskDecision] = field(default_factory=dict)
    sent: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Client order id -> venues its send was claimed for."""
    unsent: list[str] = field(default_factory=list)
    """Staged client order ids with no send claimed yet, in staging order."""
    consumer_offsets: dict[str, int] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    last_seq: int = 0
    """The journal's last event sequence number when the state was read."""
    problems: list[str] = field(default_factory=list)
    """Reports refused by the state machine or about unknown orders (not applied)."""

    @property
    def open_orders(self) -> dict[str, OrderState]:
        """Orders not in a terminal status (NEW ones are staged, maybe not yet at a venue)."""
        return {cid: st for cid, st in self.orders.items() if not st.status.is_terminal}


class BreakKind(StrEnum):
    MISSING_AT_VENUE = "missing_at_venue"
    """The journal has an order working at the venue (sent, not terminal); the venue does not."""
    UNKNOWN_AT_VENUE = "unknown_at_venue"
    """The venue has an order the journal does not know."""
    STATUS_MISMATCH = "status_mismatch"
    FILLED_QTY_MISMATCH = "filled_qty_mismatch"
    POSITION_MISMATCH = "position_mismatch"


@dataclass(frozen=True, slots=True)
class Break:
    """One difference between the journal and the venue, with both sides' values."""

    kind: BreakKind
    key: str
    """Client order id, or symbol for a position break."""
    journal: Any
    venue: Any
    detail: str = ""


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS events_kind_seq ON events (kind, seq);
CREATE INDEX IF NOT EXISTS events_key_kind ON events (key, kind);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;

CREATE TABLE IF NOT EXISTS outbox (
    client_order_id TEXT PRIMARY KEY,
    venue TEXT NOT NULL,
    order_json TEXT NOT NULL,
    staged_seq INTEGER NOT NULL,
    staged_ts_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_sends (
    client_order_id TEXT NOT NULL REFERENCES outbox (client_order_id),
    venue TEXT NOT NULL,
    sent_seq INTEGER NOT NULL,
    sent_ts_ns INTEGER NOT NULL,
    PRIMARY KEY (client_order_id, venue)
);

CREATE TABLE IF NOT EXISTS outbox_reclaims (
    client_order_id TEXT NOT NULL REFERENCES outbox (client_order_id),
    venue TEXT NOT NULL,
    absent_seq INTEGER NOT NULL,
    absent_ts_ns INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    resent_seq INTEGER,
    PRIMARY KEY (client_order_id, venue, absent_seq)
);

CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL,
    UNIQUE (consumer, seq)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_SYNC_MODES = ("NORMAL", "FULL", "EXTRA")


def _report_idempotency_key(report: ExecutionReport) -> str:
    """Two reports with the same key are the same venue message delivered twice.

    With an execution id the venue's own identity decides (a FIX PossDup resend may carry a new
    timestamp); status and cumulative quantity are added because simulated venues restart their
    execution-id counters. Without one, the content and time decide.
    """
    cid = report.client_order_id
    if report.exec_id:
        return f"report:{cid}:{report.exec_id}:{report.status}:{report.cum_qty}"
    return (
        f"report:{cid}::{report.status}:{report.cum_qty}:{report.leaves_qty}:"
        f"{report.last_qty}:{report.ts_ns}"
    )


class Journal:
    """The pipeline's durable memory in one SQLite file (WAL). See the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        busy_timeout_s: float = 10.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        sync = synchronous.upper()
        if sync not in _SYNC_MODES:
            raise ValueError(f"synchronous must be one of {_SYNC_MODES}, got {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        conn = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"{self.path}: cannot use WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute("PRAGMA foreign_keys=ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"{self.path}: schema version {version} is newer than {SCHEMA_VERSION}"
                )
            try:
                conn.executescript(
                    f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
                )
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    # ---------------------------------------------------------------- lifecycle and pragmas

    def close(self) -> None:
        """Close the connection (committed events are already durable). Idempotent."""
        with self._lock:
            if self._conn is not None:
                if self._depth:
                    raise JournalError("cannot close the journal inside a transaction")
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._conn

    @property
    def journal_mode(self) -> str:
        with self._lock:
            return str(self._db().execute("PRAGMA journal_mode").fetchone()[0])

    @property
    def synchronous(self) -> str:
        """The effective ``synchronous`` setting by name (SQLite reports a number)."""
        with self._lock:
            level = int(self._db().execute("PRAGMA synchronous").fetchone()[0])
        return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[level]

    # ---------------------------------------------------------------- transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic, durable commit; nests (inner levels are savepoints).

        An exception inside rolls back this level's writes and propagates.
        """
        with self._lock:
            conn = self._db()
            if self._depth == 0:
                conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    self._depth = 0
            else:
                name = f"sp{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield
                except BaseException:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (one WAL snapshot), or the current transaction's view."""
        with self._lock:
            conn = self._db()
            if self._depth:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    # ---------------------------------------------------------------- the event log

    def _insert(
        self,
        kind: str,
        key: str,
        payload: Mapping[str, Any],
        ts_ns: int,
        idempotency_key: str | None,
    ) -> int:
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"event kind must be a non-empty string, got {kind!r}")
        ts_ns = operator.index(ts_ns)  # an int of nanoseconds (numpy ints too, never floats)
        conn = self._db()
        if idempotency_key is not None:
            # Looked up first rather than INSERT .. ON CONFLICT: an ignored insert would still
            # consume an AUTOINCREMENT number and leave gaps that look like lost events.
            row = conn.execute(
                "SELECT seq FROM events WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if row is not None:
                return int(row[0])
        cur = conn.execute(
            "INSERT INTO events (ts_ns, kind, key, payload, idempotency_key)"
            " VALUES (?, ?, ?, ?, ?)",
            (ts_ns, str(kind), str(key), _dumps(dict(payload)), idempotency_key),
        )
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def append(
        self,
        kind: str,
        key: str,
        payload: Mapping[str, Any],
        ts_ns: int,
        idempotency_key: str | None = None,
    ) -> int:
        """Append one event and return its sequence number.

        With an ``idempotency_key`` already in the log nothing is written and the existing
        event's sequence number is returned (first write wins), so a producer retrying after a
        crash cannot double-write.
        """
        with self.transaction():
            return self._insert(kind, key, payload, ts_ns, idempotency_key)

    def append_many(self, events: Iterable[NewEvent]) -> list[int]:
        """Append several events in one transaction (one fsync); same rules as ``append``."""
        with self.transaction():
            return [
                self._insert(e.kind, e.key, e.payload, e.ts_ns, e.idempotency_key) for e in events
            ]

    def record_signal(
        self,
        symbol: str,
        value: float,
        ts_ns: int,
        *,
        model: str = "",
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Journal a model signal. By default a model's signal for a symbol at one event time is
        written once, so a stream processor replaying ticks after a restart does not duplicate it.
        """
        payload: dict[str, Any] = {"symbol": symbol, "value": float(value), "model": model}
        if extra:
            payload["extra"] = dict(extra)
        key = idempotency_key or f"signal:{model}:{symbol}:{ts_ns}"
        return self.append(EventKind.SIGNAL, symbol, payload, ts_ns, key)

    def record_risk_decision(
        self, order: Order, decision: RiskDecision, ts_ns: int | None = None
    ) -> int:
        """Journal the risk layer's answer about ``order`` (one decision per client order id).

        ``ts_ns`` defaults to the order's own time, so replays journal the same event.
        """
        ts = ts_ns if ts_ns is not None else (order.ts_ns or self._clock())
        payload = {"order": order_to_dict(order), "decision": decision_to_dict(decision)}
        return self.append(
            EventKind.RISK_DECISION,
            order.client_order_id,
            payload,
            ts,
            f"risk:{order.client_order_id}",
        )

    def _insert_report(self, report: ExecutionReport) -> int:
        kind = EventKind.FILL if report.is_fill else EventKind.ORDER_UPDATE
        return self._insert(
            kind,
            report.client_order_id,
            report_to_dict(report),
            report.ts_ns,
            _report_idempotency_key(report),
        )

    def record_report(self, report: ExecutionReport) -> int:
        """Journal an execution report (a ``fill`` event if it carries one, else an
        ``order_update``). A report delivered twice by the venue is written once.
        """
        with self.transaction():
            return self._insert_report(report)

    def record_reports(self, reports: Iterable[ExecutionReport]) -> list[int]:
        """Journal a venue's answer (a list of reports) in one transaction."""
        with self.transaction():
            return [self._insert_report(r) for r in reports]

    def record_venue_reports(self, reports: Iterable[ExecutionReport]) -> None:
        """Journal what a venue answered, in one transaction: state changes as reports
        (``record_reports``); its "held for a later phase" answers (status NEW) and its
        answers to cancels or replaces that change nothing, which are not state transitions,
        as their own kinds (``ORDER_HELD``, ``REQUEST_ANSWER``), keyed by order."""
        from quant.sim.matching import is_request_answer
        from quant.sim.paper import is_held

        with self.transaction():
            for r in reports:
                if is_held(r):
                    key = "held:" + _report_idempotency_key(r)
                    self._insert(ORDER_HELD, r.client_order_id, report_to_dict(r), r.ts_ns, key)
                elif is_request_answer(r):
                    key = "answer:" + _report_idempotency_key(r)
                    payload = report_to_dict(r)
                    self._insert(REQUEST_ANSWER, r.client_order_id, payload, r.ts_ns, key)
                else:
                    self._insert_report(r)

    def record_positions(
        self,
        positions: Mapping[str, int],
        ts_ns: int,
        *,
        cash: float | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Journal a positions snapshot (e.g. start-of-day holdings) that ``rebuild`` starts from;
        fills journaled after it are added to it.
        """
        clean = {}
        for symbol, qty in positions.items():
            if not isinstance(qty, int) or isinstance(qty, bool):
                raise TypeError(f"position of {symbol} must be whole shares, got {qty!r}")
            clean[str(symbol)] = qty
        payload: dict[str, Any] = {"positions": clean, "cash": cash}
        return self.append(EventKind.POSITIONS, "*", payload, ts_ns, idempotency_key)

    def _event(self, row: tuple[Any, ...]) -> JournalEvent:
        return JournalEvent(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5])

    def events(
        self,
        after: int = 0,
        *,
        kinds: Iterable[str] | None = None,
        key: str | None = None,
        limit: int | None = None,
    ) -> list[JournalEvent]:
        """Events with sequence number above ``after``, in order, optionally filtered."""
        sql = "SELECT seq, ts_ns, kind, key, payload, idempotency_key FROM events WHERE seq > ?"
        args: list[Any] = [after]
        if kinds is not None:
            kind_list = [str(k) for k in kinds]
            sql += f" AND kind IN ({','.join('?' * len(kind_list))})"
            args += kind_list
        if key is not None:
            sql += " AND key = ?"
            args.append(key)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._snapshot() as conn:
            return [self._event(r) for r in conn.execute(sql, args)]

    def last_seq(self) -> int:
        """The highest sequence number in the log (0 when empty)."""
        with self._snapshot() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    # ---------------------------------------------------------------- outbox

    def stage_order(self, order: Order, venue: str, ts_ns: int | None = None) -> bool:
        """Journal an order intent before it is sent; ``False`` if its id was already staged.

        Call this before anything can reach a venue. A client order id is staged once: a second
        call (a retry after a crash, or a bug reusing an id) writes nothing.
        """
        cid = order.client_order_id
        if not cid:
            raise ValueError("cannot stage an order without a client order id")
        if not venue:
            raise ValueError("cannot stage an order without a venue")
        ts = ts_ns if ts_ns is not None else self._clock()
        with self.transaction():
            conn = self._db()
            if conn.execute("SELECT 1 FROM outbox WHERE client_order_id = ?", (cid,)).fetchone():
                return False
            order_dict = order_to_dict(order)
            seq = self._insert(
                EventKind.ORDER_STAGED,
                cid,
                {"order": order_dict, "venue": venue},
                ts,
                f"staged:{cid}",
            )
            conn.execute(
                "INSERT INTO outbox (client_order_id, venue, order_json, staged_seq, staged_ts_ns)"
                " VALUES (?, ?, ?, ?, ?)",
                (cid, venue, _dumps(order_dict), seq, ts),
            )
            return True

    def mark_sent(self, client_order_id: str, venue: str, ts_ns: int | None = None) -> bool:
        """Claim the send of a staged order to ``venue``: ``True`` once, then ``False``, unless
        the venue has since said it does not hold the order (``reclaim_after_absent``).

        Protocol (the reason a venue never sees a duplicate client order id)::

            journal.stage_order(order, venue)
            if journal.mark_sent(order.client_order_id, venue):
                venue.submit(order)          # only the caller that won the claim sends

        Call it *before* handing the order to the venue and send only on ``True``. A crash
        between the claim and the send leaves the order in ``in_doubt()`` (claimed, no report):
        ask the venue (``status``). If it holds the order, it was sent: nothing to do. If it
        answers that it does not, record that answer with ``reclaim_after_absent``; it allows
        exactly one more claim of the id at that venue (the venue never saw it, so sending it is
        not a duplicate). Without such an answer a second claim is refused, however often it is
        asked. Marking after the send instead would reopen the window in which a restarted router
        resends an order the venue has. A claim for another venue (re-routing) is a separate
        claim; whether re-routing is safe (the first venue surely did not receive it) is the
        router's decision. Raises ``JournalError`` for an order that was never staged.
        """
        ts = ts_ns if ts_ns is not None else self._clock()
        with self.transaction():
            conn = self._db()
            self._require_staged(client_order_id)
            done = conn.execute(
                "SELECT 1 FROM outbox_sends WHERE client_order_id = ? AND venue = ?",
                (client_order_id, venue),
            ).fetchone()
            if not done:
                seq = self._insert(
                    EventKind.ORDER_SENT,
                    client_order_id,
                    {"venue": venue},
                    ts,
                    f"sent:{client_order_id}:{venue}",
                )
                conn.execute(
                    "INSERT INTO outbox_sends (client_order_id, venue, sent_seq, sent_ts_ns)"
                    " VALUES (?, ?, ?, ?)",
                    (client_order_id, venue, seq, ts),
                )
                return True
            allowance = conn.execute(
                "SELECT absent_seq FROM outbox_reclaims WHERE client_order_id = ? AND venue = ?"
                " AND resent_seq IS NULL ORDER BY absent_seq LIMIT 1",
                (client_order_id, venue),
            ).fetchone()
            if allowance is None:
                return False
            absent_seq = int(allowance[0])
            seq = self._insert(
                EventKind.ORDER_SENT,
                client_order_id,
                {"venue": venue, "after_absent": absent_seq},
                ts,
                f"sent:{client_order_id}:{venue}:after:{absent_seq}",
            )
            conn.execute(
                "UPDATE outbox_reclaims SET resent_seq = ? WHERE client_order_id = ?"
                " AND venue = ? AND absent_seq = ?",
                (seq, client_order_id, venue, absent_seq),
            )
            # the latest claim decides where a restarted router looks for the order
            conn.execute(
                "UPDATE outbox_sends SET sent_seq = ?, sent_ts_ns = ? WHERE client_order_id = ?"
                " AND venue = ?",
                (seq, ts, client_order_id, venue),
            )
            return True

    def reclaim_after_absent(
        self, client_order_id: str, venue: str, evidence: str, ts_ns: int | None = None
    ) -> bool:
        """Record that ``venue`` says it does not hold a claimed order; allows one more claim.

        ``evidence`` says what answered (e.g. "status: unknown order at BISTSIM"): it is
        journaled as an ``order_absent`` event, for the audit of why an id went to one venue
        twice. Only a venue's answer about the order itself is evidence; a timeout, a dropped
        request or a venue that is down prove nothing and must not be recorded here.

        Returns ``True`` when a further claim (``mark_sent``) is now allowed, ``False`` when
        there is nothing to reclaim (the send to ``venue`` was never claimed: the first claim
        needs no evidence). Idempotent: while an allowance is unused, recording the same answer
        again writes nothing (a retried call, or the router asking twice before it resends).
        """
        if not evidence or not isinstance(evidence, str):
            raise ValueError("reclaiming a send needs the venue's answer as evidence")
        ts = ts_ns if ts_ns is not None else self._clock()
        with self.transaction():
            conn = self._db()
            self._require_staged(client_order_id)
            claimed = conn.execute(
                "SELECT 1 FROM outbox_sends WHERE client_order_id = ? AND venue = ?",
                (client_order_id, venue),
            ).fetchone()
            if claimed is None:
                return False
            rows = conn.execute(
                "SELECT resent_seq FROM outbox_reclaims WHERE client_order_id = ? AND venue = ?",
                (client_order_id, venue),
            ).fetchall()
            if any(r[0] is None for r in rows):
                return True
            claims = len(rows) + 1
            seq = self._insert(
                EventKind.ORDER_ABSENT,
                client_order_id,
                {"venue": venue, "evidence": evidence, "claims": claims},
                ts,
                f"absent:{client_order_id}:{venue}:{claims}",
            )
            conn.execute(
                "INSERT INTO outbox_reclaims (client_order_id, venue, absent_seq, absent_ts_ns,"
                " evidence) VALUES (?, ?, ?, ?, ?)",
                (client_order_id, venue, seq, ts, evidence),
            )
            return True

    def send_claims(self, client_order_id: str) -> list[JournalEvent]:
        """The order's claims and absence answers (``order_sent``/``order_absent``), in order:
        the audit trail of every send of one client order id."""
        return self.events(
            kinds=[EventKind.ORDER_SENT, EventKind.ORDER_ABSENT], key=client_order_id
        )

    def _require_staged(self, client_order_id: str) -> None:
        staged = (
            self._db()
            .execute("SELECT 1 FROM outbox WHERE client_order_id = ?", (client_order_id,))
            .fetchone()
        )
        if staged is None:
            raise JournalError(f"order {client_order_id} was never staged: stage it first")

    def was_sent(self, client_order_id: str, venue: str | None = None) -> bool:
        """Whether a send of this id was claimed (to ``venue``, or to any venue)."""
        sql = "SELECT 1 FROM outbox_sends WHERE client_order_id = ?"
        args: tuple[str, ...] = (client_order_id,)
        if venue is not None:
            sql += " AND venue = ?"
            args += (venue,)
        with self._snapshot() as conn:
            return conn.execute(sql, args).fetchone() is not None

    def _outbox(self, where: str, args: tuple[str, ...] = ()) -> list[OutboxEntry]:
        sql = (
            "SELECT o.client_order_id, o.venue, o.order_json, o.staged_seq, o.staged_ts_ns,"
            " (SELECT group_concat(s.venue, char(31)) FROM"
            "   (SELECT venue FROM outbox_sends WHERE client_order_id = o.client_order_id"
            "    ORDER BY sent_seq) AS s)"
            f" FROM outbox AS o WHERE {where} ORDER BY o.staged_seq"
        )
        with self._snapshot() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [
            OutboxEntry(
                order=order_from_dict(json.loads(r[2])),
                venue=r[1],
                staged_seq=r[3],
                staged_ts_ns=r[4],
                sent_to=tuple(r[5].split("\x1f")) if r[5] else (),
            )
            for r in rows
        ]

    def unsent(self) -> list[OutboxEntry]:
        """Staged orders whose send was never claimed, in staging order: what a restarted router
        sends (through ``mark_sent``, so each goes out exactly once)."""
        return self._outbox(
            "NOT EXISTS (SELECT 1 FROM outbox_sends s WHERE s.client_order_id = o.client_order_id)"
        )

    def in_doubt(self) -> list[OutboxEntry]:
        """Orders whose send was claimed but no execution report was journaled: the venue may or
        may not have them. Resolve by asking the venue; resend the same id there only after it
        answered that it does not hold it (``reclaim_after_absent``)."""
        return self._outbox(
            "EXISTS (SELECT 1 FROM outbox_sends s WHERE s.client_order_id = o.client_order_id)"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.key = o.client_order_id"
            " AND e.kind IN (?, ?))",
            tuple(str(k) for k in REPORT_KINDS),
        )

    def staged_order(self, client_order_id: str) -> OutboxEntry | None:
        """The outbox entry of a staged order, or ``None``."""
        found = self._outbox("o.client_order_id = ?", (client_order_id,))
        return found[0] if found else None

    # ---------------------------------------------------------------- consumers

    def offset(self, consumer: str) -> int:
        """The last sequence number ``consumer`` handled (0 if it never consumed)."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT seq FROM consumer_offsets WHERE consumer = ?", (consumer,)
            ).fetchone()
        return int(row[0]) if row else 0

    def consume(
        self,
        consumer: str,
        handler: Callable[[JournalEvent], object],
        *,
        batch: int = 100,
        kinds: Iterable[str] | None = None,
    ) -> ConsumeResult:
        """Deliver up to ``batch`` events after ``consumer``'s offset to ``handler``, in order.

        The batch is one transaction: the handler's own writes to this journal (it may call any
        method of it, on this thread) commit together with the offset, so they happen exactly
        once. Each event runs in a savepoint: if the handler raises, that event's writes are
        rolled back, the event goes to ``dead_letters`` with the reason, and the next event is
        delivered. A crash mid-batch rolls the whole batch back and it is delivered again, so
        effects outside the journal must be idempotent; ``batch=1`` narrows that to one event.
        Call repeatedly until ``processed`` is 0 to catch up.
        """
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        kind_list = None if kinds is None else [str(k) for k in kinds]
        delivered = dead = 0
        with self.transaction():
            conn = self._db()
            row = conn.execute(
                "SELECT seq FROM consumer_offsets WHERE consumer = ?", (consumer,)
            ).fetchone()
            offset = int(row[0]) if row else 0
            sql = "SELECT seq, ts_ns, kind, key, payload, idempotency_key FROM events WHERE seq > ?"
            args: list[Any] = [offset]
            if kind_list is not None:
                sql += f" AND kind IN ({','.join('?' * len(kind_list))})"
                args += kind_list
            sql += " ORDER BY seq LIMIT ?"
            args.append(batch)
            rows = conn.execute(sql, args).fetchall()
            for r in rows:
                event = self._event(r)
                try:
                    with self.transaction():
                        handler(event)
                    delivered += 1
                except Exception as exc:  # the handler's failure is data, not our crash
                    dead += 1
                    self._dead_letter(consumer, event.seq, f"{type(exc).__name__}: {exc}")
                offset = event.seq
            if rows:
                self._set_offset(consumer, offset)
        return ConsumeResult(delivered=delivered, dead_lettered=dead, offset=offset)

    def poll(
        self, consumer: str, *, batch: int = 100, kinds: Iterable[str] | None = None
    ) -> list[JournalEvent]:
        """The next events after ``consumer``'s offset, without consuming them.

        The remote form of ``consume`` (a handler cannot cross an actor boundary): poll, process,
        then ``commit_offset`` the results in one transaction.
        """
        return self.events(self.offset(consumer), kinds=kinds, limit=batch)

    def commit_offset(
        self,
        consumer: str,
        seq: int,
        *,
        events: Iterable[NewEvent] = (),
        failed: Mapping[int, str] | None = None,
        checkpoints: Mapping[str, Any] | None = None,
    ) -> bool:
        """Advance ``consumer`` to ``seq`` together with what processing produced, atomically.

        ``events`` are appended, ``failed`` (event seq -> reason) go to the dead-letter table and
        ``checkpoints`` are stored in the same transaction as the new offset. A commit at or below
        the stored offset is a retry of one that already happened: nothing is written and
        ``False`` is returned, so a consumer retrying after a timeout cannot double-write.
        """
        with self.transaction():
            conn = self._db()
            row = conn.execute(
                "SELECT seq FROM consumer_offsets WHERE consumer = ?", (consumer,)
            ).fetchone()
            if row is not None and seq <= int(row[0]):
                return False
            for e in events:
                self._insert(e.kind, e.key, e.payload, e.ts_ns, e.idempotency_key)
            for event_seq, reason in (failed or {}).items():
                self._dead_letter(consumer, int(event_seq), reason)
            for name, value in (checkpoints or {}).items():
                self.set_checkpoint(name, value)
            self._set_offset(consumer, int(seq))
            return True

    def _set_offset(self, consumer: str, seq: int) -> None:
        self._db().execute(
            "INSERT INTO consumer_offsets (consumer, seq) VALUES (?, ?)"
            " ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
            (consumer, seq),
        )

    def _dead_letter(self, consumer: str, seq: int, reason: str) -> None:
        conn = self._db()
        row = conn.execute(
            "SELECT kind, key, payload, ts_ns FROM events WHERE seq = ?", (seq,)
        ).fetchone()
        if row is None:
            raise JournalError(f"cannot dead-letter event {seq}: no such event")
        conn.execute(
            "INSERT INTO dead_letters (consumer, seq, kind, key, reason, payload,"
            " ts_ns, recorded_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (consumer, seq) DO NOTHING",
            (consumer, seq, row[0], row[1], str(reason), row[2], row[3], self._clock()),
        )

    def dead_letters(self, consumer: str | None = None) -> list[DeadLetter]:
        """Events consumers failed on, oldest first."""
        sql = (
            "SELECT consumer, seq, kind, key, reason, payload, ts_ns, recorded_ns FROM dead_letters"
        )
        args: tuple[str, ...] = ()
        if consumer is not None:
            sql += " WHERE consumer = ?"
            args = (consumer,)
        sql += " ORDER BY id"
        with self._snapshot() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [
            DeadLetter(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows
        ]

    # ---------------------------------------------------------------- checkpoints

    def set_checkpoint(self, name: str, value: Any) -> None:
        """Store a named JSON-safe value (e.g. the last processed tick sequence of a symbol).
        Inside a ``consume`` handler or ``transaction`` it commits with the other writes."""
        with self.transaction():
            self._db().execute(
                "INSERT INTO checkpoints (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, _dumps(value)),
            )

    def checkpoint(self, name: str, default: Any = None) -> Any:
        with self._snapshot() as conn:
            row = conn.execute("SELECT value FROM checkpoints WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    # ---------------------------------------------------------------- recovery

    def rebuild(self) -> JournalState:
        """The book as the journal records it, read from one consistent snapshot.

        Orders come from their staging (or risk decision) events; the journaled execution
        reports are applied in sequence through ``OrderState.apply``, so a report the state
        machine refuses (a fill after a cancel, a report for an unknown order) is listed in
        ``problems`` and not applied. Positions are the last snapshot plus applied fills.
        """
        state = JournalState()
        kinds = [
            EventKind.RISK_DECISION,
            EventKind.ORDER_STAGED,
            EventKind.ORDER_UPDATE,
            EventKind.FILL,
            EventKind.POSITIONS,
        ]
        with self._snapshot() as conn:
            marks = ",".join("?" * len(kinds))
            rows = conn.execute(
                f"SELECT seq, kind, payload FROM events WHERE kind IN ({marks}) ORDER BY seq",
                [str(k) for k in kinds],
            ).fetchall()
            sends = conn.execute(
                "SELECT client_order_id, venue FROM outbox_sends ORDER BY sent_seq"
            ).fetchall()
            unsent = conn.execute(
                "SELECT client_order_id FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM"
                " outbox_sends s WHERE s.client_order_id = o.client_order_id)"
                " ORDER BY staged_seq"
            ).fetchall()
            offsets = conn.execute("SELECT consumer, seq FROM consumer_offsets").fetchall()
            checkpoints = conn.execute("SELECT name, value FROM checkpoints").fetchall()
            state.last_seq = int(
                conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            )

        known: dict[str, Order] = {}
        for seq, kind, text in rows:
            payload = json.loads(text)
            if kind == EventKind.ORDER_STAGED:
                order = order_from_dict(payload["order"])
                known[order.client_order_id] = order
                state.orders.setdefault(order.client_order_id, OrderState(order))
            elif kind == EventKind.RISK_DECISION:
                order = order_from_dict(payload["order"])
                known.setdefault(order.client_order_id, order)
                state.risk_decisions[order.client_order_id] = decision_from_dict(
                    payload["decision"]
                )
            elif kind == EventKind.POSITIONS:
                state.positions = {s: int(q) for s, q in payload["positions"].items() if q}
                if payload.get("cash") is not None:
                    state.cash = float(payload["cash"])
            else:
                self._apply_report(state, known, seq, report_from_dict(payload))

        state.sent = {}
        for cid, venue in sends:
            state.sent[cid] = (*state.sent.get(cid, ()), venue)
        state.unsent = [r[0] for r in unsent]
        state.consumer_offsets = {c: int(s) for c, s in offsets}
        state.checkpoints = {n: json.loads(v) for n, v in checkpoints}
        return state

    @staticmethod
    def _apply_report(
        state: JournalState, known: dict[str, Order], seq: int, report: ExecutionReport
    ) -> None:
        cid = report.client_order_id
        st = state.orders.get(cid)
        if st is None:
            order = known.get(cid)
            if order is None:
                state.problems.append(f"seq {seq}: report for unknown order {cid}")
                return
            st = state.orders[cid] = OrderState(order)
        try:
            st.apply(report)
        except IllegalTransition as exc:
            state.problems.append(f"seq {seq}: {exc}")
            return
        state.fees += report.fees
        state.cash -= report.fees
        if report.last_qty:
            symbol = st.order.symbol
            signed = st.order.side.sign * report.last_qty
            qty = state.positions.get(symbol, 0) + signed
            if qty:
                state.positions[symbol] = qty
            else:
                state.positions.pop(symbol, None)
            state.cash -= signed * report.last_price

    def reconcile(
        self,
        venue_orders: Iterable[OrderState],
        venue_positions: Mapping[str, int] | None = None,
        state: JournalState | None = None,
    ) -> list[Break]:
        """``reconcile(self.rebuild(), ...)``: the breaks between the journal and a venue."""
        return reconcile(
            state if state is not None else self.rebuild(), venue_orders, venue_positions
        )


def reconcile(
    state: JournalState,
    venue_orders: Iterable[OrderState],
    venue_positions: Mapping[str, int] | None = None,
) -> list[Break]:
    """Compare the journal's book with a venue's and list every break; fix nothing.

    ``venue_orders`` are the venue's view of orders (from ``Venue.status``). An order the journal
    has working at the venue (send claimed, not terminal) that the venue does not list is
    ``missing_at_venue``; terminal orders a venue no longer lists are not breaks, nor are staged
    orders never sent. An order the venue lists that the journal does not know is
    ``unknown_at_venue``. Orders both know are compared on status and filled quantity.
    Positions (when given) are compared per symbol, a missing symbol counting as flat.
    """
    breaks: list[Break] = []
    at_venue: dict[str, OrderState] = {}
    for vs in venue_orders:
        at_venue[vs.order.client_order_id] = vs
    for cid in sorted(state.orders):
        js = state.orders[cid]
        vs = at_venue.get(cid)
        if vs is None:
            if not js.status.is_terminal and cid in state.sent:
                breaks.append(
                    Break(
                        BreakKind.MISSING_AT_VENUE,
                        cid,
                        journal=js.status.value,
                        venue=None,
                        detail=f"sent to {', '.join(state.sent[cid])}; the venue has no record",
                    )
                )
            continue
        if vs.status != js.status:
            breaks.append(Break(BreakKind.STATUS_MISMATCH, cid, js.status.value, vs.status.value))
        if vs.filled_qty != js.filled_qty:
            breaks.append(
                Break(
                    BreakKind.FILLED_QTY_MISMATCH,
                    cid,
                    js.filled_qty,
                    vs.filled_qty,
                    detail=f"{js.order.symbol} {js.order.side.name}",
                )
            )
    for cid in sorted(set(at_venue) - set(state.orders)):
        vs = at_venue[cid]
        breaks.append(
            Break(
                BreakKind.UNKNOWN_AT_VENUE,
                cid,
                journal=None,
                venue=vs.status.value,
                detail=f"{vs.order.symbol} {vs.order.side.name} {vs.order.quantity}",
            )
        )
    if venue_positions is not None:
        for symbol in sorted({*state.positions, *venue_positions}):
            mine = state.positions.get(symbol, 0)
            theirs = int(venue_positions.get(symbol, 0))
            if mine != theirs:
                breaks.append(Break(BreakKind.POSITION_MISMATCH, symbol, mine, theirs))
    return breaks


__all__ = [
    "ORDER_HELD",
    "REPORT_KINDS",
    "REQUEST_ANSWER",
    "SCHEMA_VERSION",
    "Break",
    "BreakKind",
    "ConsumeResult",
    "DeadLetter",
    "EventKind",
    "Journal",
    "JournalError",
    "JournalEvent",
    "JournalState",
    "NewEvent",
    "OutboxEntry",
    "decision_from_dict",
    "decision_to_dict",
    "order_from_dict",
    "order_to_dict",
    "reconcile",
    "report_from_dict",
    "report_to_dict",
]
