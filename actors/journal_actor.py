"""``JournalActor``: the single writer of the pipeline's SQLite journal (``actors.journal``).

One actor owns the file, so every other actor (on any node) reaches the journal through it and
SQLite sees one writer. Calls are forwarded to a ``Journal`` method by name (``call``), or
several in one transaction (``batch``: one fsync for a burst of reports). Every method it
forwards is idempotent in the journal's own terms (idempotency keys, the outbox's
compare-and-set claims), so Ray may retry a call after the actor restarts
(``max_task_retries``): a retried write writes nothing twice.

State: the journal file is the state; a restarted actor just reopens it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.journal import Journal

ALLOWED = frozenset(
    {
        "append",
        "append_many",
        "record_signal",
        "record_risk_decision",
        "record_report",
        "record_reports",
        "record_positions",
        "events",
        "last_seq",
        "stage_order",
        "mark_sent",
        "was_sent",
        "unsent",
        "in_doubt",
        "staged_order",
        "offset",
        "dead_letters",
        "set_checkpoint",
        "checkpoint",
        "rebuild",
        "reconcile",
    }
)
"""The ``Journal`` methods other actors may call (``consume`` takes a callable: not remote)."""


class JournalActor:
    """Hosts one ``Journal`` (see the module docstring)."""

    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.journal = Journal(path, synchronous=synchronous)
        self.calls = 0

    def ready(self) -> bool:
        return True

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``journal.<method>(*args, **kwargs)`` for a method in ``ALLOWED``."""
        if method not in ALLOWED:
            raise ValueError(f"journal method {method!r} is not callable remotely")
        self.calls += 1
        return getattr(self.journal, method)(*args, **kwargs)

    def batch(self, calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> list[Any]:
        """Several calls in one transaction (all or nothing, one fsync)."""
        for method, _, _ in calls:
            if method not in ALLOWED:
                raise ValueError(f"journal method {method!r} is not callable remotely")
        self.calls += len(calls)
        with self.journal.transaction():
            return [getattr(self.journal, m)(*a, **k) for m, a, k in calls]

    def status(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "last_seq": self.journal.last_seq(),
            "calls": self.calls,
            "journal_mode": self.journal.journal_mode,
            "dead_letters": len(self.journal.dead_letters()),
        }
