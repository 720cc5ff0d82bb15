"""QuickFIX plumbing shared by both ends: settings, the data dictionary, a redacting message
log, and the loopback-only listener.

**No secret reaches a file.** QuickFIX's ``FileLog`` writes every message verbatim and its
``FileStore`` keeps every sent message (the Logon included) for resends, so a password in
Logon (554) would land on disk twice. Neither end gives QuickFIX a log factory (QuickFIX then
logs nothing); ``MessageLog`` writes the messages and session events instead, from the
application callbacks, with credential tags masked (``codec.redact``). ``PersistMessages=N``
keeps message bodies out of the store (only sequence numbers persist): a resend request is then
answered with a gap fill, which is what an order-entry session wants anyway, since replaying
hours-old orders is worse than losing them.

**Loopback only.** QuickFIX 1.15's ``SocketAcceptor`` binds its port on every interface and has
no setting to choose the address. ``bind_loopback`` lets it bind an ephemeral port, then
replaces that listening descriptor in place (``dup2``) with a socket bound to
``127.0.0.1:<port>``, and waits until the all-interfaces socket is gone (the acceptor's select
loop lets go of it within a second), so when the exchange reports itself started the only
listener is on loopback.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
import sysconfig
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import quickfix as fix

from actors.fix.codec import redact

log = logging.getLogger(__name__)

BEGIN_STRING = "FIX.4.4"


def data_dictionary_path() -> Path:
    """FIX44.xml as shipped by the installed QuickFIX (under the environment's ``share/``)."""
    try:
        files = importlib.metadata.files("quickfix-ssl") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == "FIX44.xml":
            path = Path(str(f.locate())).resolve()
            if path.is_file():
                return path
    path = Path(sysconfig.get_path("data")) / "share" / "quickfix" / "FIX44.xml"
    if path.is_file():
        return path
    raise FileNotFoundError("FIX44.xml not found: is quickfix-ssl installed in this environment?")


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """One FIX 4.4 session as QuickFIX settings text."""

    sender_comp_id: str
    target_comp_id: str
    data_dir: Path
    """Stores under ``data_dir/store``, our message logs under ``data_dir/log``."""
    heartbeat_s: int = 1
    reset_on_logon: bool = True
    reconnect_s: int = 1

    @property
    def session_id(self) -> str:
        return f"{BEGIN_STRING}:{self.sender_comp_id}->{self.target_comp_id}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    def settings_text(self, *, initiator: bool, host: str = "", port: int = 0) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        yn = "Y" if self.reset_on_logon else "N"
        lines = [
            "[DEFAULT]",
            f"ConnectionType={'initiator' if initiator else 'acceptor'}",
            f"FileStorePath={self.store_dir}",
            "PersistMessages=N",
            f"DataDictionary={data_dictionary_path()}",
            "UseDataDictionary=Y",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            f"HeartBtInt={self.heartbeat_s}",
            f"ResetOnLogon={yn}",
            f"ResetOnLogout={yn}",
            f"ResetOnDisconnect={yn}",
            "SocketNodelay=Y",
            "SocketReuseAddress=Y",
            "TimestampPrecision=9",
            "LogonTimeout=5",
            "LogoutTimeout=2",
        ]
        if initiator:
            lines += [
                f"SocketConnectHost={host}",
                f"SocketConnectPort={port}",
                f"ReconnectInterval={self.reconnect_s}",
            ]
        else:
            lines.append("SocketAcceptPort=0")
        lines += [
            "[SESSION]",
            f"BeginString={BEGIN_STRING}",
            f"SenderCompID={self.sender_comp_id}",
            f"TargetCompID={self.target_comp_id}",
        ]
        return "\n".join(lines) + "\n"

    def settings(self, *, initiator: bool, host: str = "", port: int = 0) -> fix.SessionSettings:
        settings = fix.SessionSettings()
        settings.setFromString(self.settings_text(initiator=initiator, host=host, port=port))
        return settings


_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


def claim_session(session_id: str) -> None:
    """Reserve a session id for this process. QuickFIX keeps one process-wide registry of
    sessions keyed by BeginString:Sender->Target, and two live sessions with the same id send
    each other's messages (and crash on teardown), so a second one is refused here."""
    with _ACTIVE_LOCK:
        if session_id in _ACTIVE:
            raise RuntimeError(f"FIX session {session_id} is already running in this process")
        _ACTIVE.add(session_id)


def release_session(session_id: str) -> None:
    with _ACTIVE_LOCK:
        _ACTIVE.discard(session_id)


class MessageLog:
    """Messages in and out plus session events, one line each, credentials masked.

    Written from the QuickFIX callbacks (``toAdmin``/``fromAdmin``/``toApp``/``fromApp``), so
    what it shows is what the application saw; a Logon is logged after ``toAdmin`` filled in
    the credentials, and with them masked.
    """

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}.messages.log"
        self._file = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def message(self, direction: str, message: fix.Message) -> None:
        self._write(f"{direction} {redact(message.toString())}")

    def event(self, text: str) -> None:
        self._write(f"EVENT {text}")
        log.info("fix: %s", text)

    def _write(self, line: str) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.write(f"{time.time_ns()} {line}\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _listeners() -> dict[int, tuple[str, int]]:
    """This process's listening TCP sockets: fd -> (address, port)."""
    return {
        c.fd: (c.laddr.ip, c.laddr.port)
        for c in psutil.Process().net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.fd >= 0
    }


def listeners_snapshot() -> dict[int, tuple[str, int]]:
    return _listeners()


def bind_loopback(before: dict[int, tuple[str, int]], port: int = 0, timeout_s: float = 5.0) -> int:
    """Move the listener QuickFIX opened since ``before`` onto ``127.0.0.1:port``; returns the
    port (a free one when ``port`` is 0). See the module docstring for why."""
    opened = {fd: addr for fd, addr in _listeners().items() if fd not in before}
    if len(opened) != 1:
        raise RuntimeError(f"expected one new listening socket from QuickFIX, found {opened}")
    ((fd, (_, wild_port)),) = opened.items()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        bound = sock.getsockname()[1]
        os.dup2(sock.fileno(), fd)
    finally:
        sock.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # System-wide: after dup2 the old socket has no descriptor, only select's reference.
        if not any(
            c.laddr.port == wild_port and c.status == psutil.CONN_LISTEN
            for c in psutil.net_connections("tcp")
        ):
            return bound
        time.sleep(0.05)
    raise RuntimeError(f"the all-interfaces listener on port {wild_port} did not close")
