"""``FixLink``: a ``FixVenue`` as the order router holds it, connected on demand.

``FixVenue.start`` gives up (and stops its initiator) when the exchange is not there at logon
time, and a FIX venue must not make a router that starts before it, or while it is down, fail.
So the link starts the session lazily: at construction (quickly, failure allowed) and again
before a request when the session is not running, at most every ``retry_s`` seconds. Once the
session runs, QuickFIX itself reconnects after a drop; while it is logged out every request is
refused with ``VenueUnavailable`` (nothing sent), which opens the router's circuit breaker.

Reports the exchange sends outside a request (fills of resting orders, expiries) arrive on
QuickFIX's thread; the link queues them and the router takes them (``take_reports``) on its own
thread, so the router's book is only ever touched by one thread.

Credentials: the link is given the settings' secret *references* and a ``SecretResolver``; the
values are read when the Logon is built, inside the process that holds the session.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from actors.fix.venue import FixVenue
from quant.execution.orders import ExecutionReport, Order, OrderState
from quant.execution.routing import VenueUnavailable


class FixLink:
    """A lazily connected ``FixVenue`` implementing ``Venue`` (see the module docstring)."""

    def __init__(
        self,
        settings: Any,
        *,
        resolver: Any,
        data_dir: Path,
        name: str = "fix",
        logon_timeout_s: float = 2.0,
        retry_s: float = 1.0,
    ) -> None:
        self.name = name
        self.logon_timeout_s = logon_timeout_s
        self.retry_s = retry_s
        self._reports: deque[ExecutionReport] = deque()
        self._lock = threading.Lock()
        self.venue = FixVenue.from_settings(
            settings,
            resolver=resolver,
            data_dir=Path(data_dir),
            on_report=self._on_report,
            name=name,
        )
        self._next_try = 0.0
        self.starts = 0
        self.last_error = ""
        self.connect()

    # -- session ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The session is started (logged on, or QuickFIX is reconnecting it)."""
        return self.venue._initiator is not None

    @property
    def logged_on(self) -> bool:
        return self.venue.is_logged_on

    def connect(self) -> bool:
        """Start the session if it is not running and a try is due; True when running."""
        if self.running:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self.retry_s
        try:
            self.venue.start(timeout_s=self.logon_timeout_s)
        except VenueUnavailable as exc:
            self.last_error = str(exc)
            return False
        self.starts += 1
        self.last_error = ""
        return True

    def _ensure(self) -> None:
        if not self.connect():
            raise VenueUnavailable(
                f"{self.name}: FIX session is not running ({self.last_error or 'retrying'})"
            )

    def close(self) -> None:
        self.venue.stop()

    # -- unsolicited reports ----------------------------------------------------------------

    def _on_report(self, report: ExecutionReport) -> None:
        with self._lock:
            self._reports.append(report)

    def take_reports(self) -> list[ExecutionReport]:
        """Reports received outside a request since the last call, in arrival order."""
        with self._lock:
            out = list(self._reports)
            self._reports.clear()
        return out

    # -- the Venue protocol -----------------------------------------------------------------

    def submit(self, order: Order) -> list[ExecutionReport]:
        self._ensure()
        return self.venue.submit(order)

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]:
        self._ensure()
        return self.venue.cancel(client_order_id, ts_ns)

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]:
        self._ensure()
        return self.venue.cancel_all(ts_ns, symbol)

    def replace(
        self,
        client_order_id: str,
        ts_ns: int,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> list[ExecutionReport]:
        self._ensure()
        return self.venue.replace(client_order_id, ts_ns, quantity, limit_price)

    def status(self, client_order_id: str) -> OrderState | None:
        self._ensure()
        return self.venue.status(client_order_id)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "endpoint": f"{self.venue.host}:{self.venue.port}",
            "running": self.running,
            "logged_on": self.logged_on,
            "starts": self.starts,
            "last_error": self.last_error or self.venue.logon_error,
        }
