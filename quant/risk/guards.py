"""Portfolio guards: equity watchers that move the trading state ACTIVE → REDUCING → HALTED.

After NautilusTrader's RiskEngine states: ACTIVE trades freely, REDUCING only lets through
orders that shrink a position, HALTED refuses everything. A guard looks at account equity as it
is marked (``update(equity, ts_ns, day)``) and says which state it wants; the ``RiskEngine``
takes the most severe of its guards and the operator's choice.

Guards latch: within their scope a guard only escalates, because a state that fell back to
ACTIVE on the first uptick would flap around its threshold and trade the book in and out of its
limit. The daily loss limit re-arms by itself at the next session day; the drawdown guard only
when an operator resets it (``reset``), which also restarts the peak from the current equity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

_ISTANBUL = ZoneInfo("Europe/Istanbul")


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    """Only orders that reduce the absolute position in their symbol are accepted."""
    HALTED = "halted"
    """Every order is rejected."""

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def most_severe(*states: TradingState) -> TradingState:
    return max(states, key=lambda s: s.severity, default=TradingState.ACTIVE)


def session_day(ts_ns: int) -> date:
    """The Istanbul calendar day of a UTC nanosecond time stamp (the BIST session day)."""
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(_ISTANBUL).date()


@runtime_checkable
class PortfolioGuard(Protocol):
    """Watches equity and asks for a trading state."""

    name: str

    @property
    def state(self) -> TradingState: ...

    @property
    def reason(self) -> str: ...

    def update(self, equity: float, ts_ns: int, day: date) -> TradingState:
        """Take a new equity mark; return the state the guard now asks for."""
        ...

    def reset(self, equity: float | None = None) -> None:
        """Re-arm after an operator decision (back to ACTIVE)."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class DrawdownGuard:
    """Peak-to-trough drawdown of equity: REDUCING at ``reduce_at``, HALTED at ``halt_at``.

    Drawdown is ``1 - equity / peak`` with the peak the highest equity seen since construction
    or the last reset; thresholds are inclusive (a drawdown of exactly ``reduce_at`` reduces).
    """

    reduce_at: float | None = 0.05
    halt_at: float | None = 0.10
    name: str = "drawdown"
    peak: float | None = None
    drawdown: float = 0.0
    _state: TradingState = TradingState.ACTIVE
    _reason: str = ""

    kind: ClassVar[str] = "drawdown"

    def __post_init__(self) -> None:
        for v in (self.reduce_at, self.halt_at):
            if v is not None and not 0 < v <= 1:
                raise ValueError(f"drawdown thresholds are fractions in (0, 1], got {v}")
        lo, hi = self.reduce_at, self.halt_at
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"reduce_at {self.reduce_at} is above halt_at {self.halt_at}")

    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    def update(self, equity: float, ts_ns: int, day: date) -> TradingState:
        if self.peak is None or equity > self.peak:
            self.peak = float(equity)
        self.drawdown = 1.0 - equity / self.peak if self.peak > 0 else 1.0
        wanted = TradingState.ACTIVE
        limit = None
        eps = 1e-12
        if self.halt_at is not None and self.drawdown + eps >= self.halt_at:
            wanted, limit = TradingState.HALTED, self.halt_at
        elif self.reduce_at is not None and self.drawdown + eps >= self.reduce_at:
            wanted, limit = TradingState.REDUCING, self.reduce_at
        if wanted.severity > self._state.severity:
            self._state = wanted
            self._reason = (
                f"drawdown {self.drawdown * 100:.4g}% from the equity peak {self.peak:,.2f} "
                f"(equity {equity:,.2f}) reached the {wanted} threshold of {limit * 100:.4g}%"
            )
        return self._state

    def reset(self, equity: float | None = None) -> None:
        self._state = TradingState.ACTIVE
        self._reason = ""
        self.peak = float(equity) if equity is not None else None
        self.drawdown = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "reduce_at": self.reduce_at,
            "halt_at": self.halt_at,
            "peak": self.peak,
            "drawdown": self.drawdown,
            "state": str(self._state),
            "reason": self._reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrawdownGuard:
        return cls(
            reduce_at=data["reduce_at"],
            halt_at=data["halt_at"],
            name=data["name"],
            peak=data["peak"],
            drawdown=data["drawdown"],
            _state=TradingState(data["state"]),
            _reason=data["reason"],
        )


@dataclass(slots=True)
class DailyLossLimit:
    """Loss since the session day's first equity mark, in percent of it and/or in TRY.

    Reaching the limit HALTs; reaching ``reduce_fraction`` of it (default half) moves to
    REDUCING first, so a strategy has room to cut risk before it is stopped. A new session day
    (Istanbul date) re-arms the guard and takes that day's first mark as the new start.
    """

    limit_pct: float | None = None
    limit_try: float | None = None
    reduce_fraction: float | None = 0.5
    name: str = "daily_loss"
    day: date | None = None
    start_equity: float | None = None
    loss: float = 0.0
    _state: TradingState = TradingState.ACTIVE
    _reason: str = ""

    kind: ClassVar[str] = "daily_loss"

    def __post_init__(self) -> None:
        if self.limit_pct is None and self.limit_try is None:
            raise ValueError("a daily loss limit needs limit_pct and/or limit_try")
        if self.limit_pct is not None and not 0 < self.limit_pct <= 1:
            raise ValueError(f"limit_pct is a fraction in (0, 1], got {self.limit_pct}")
        if self.limit_try is not None and not self.limit_try > 0:
            raise ValueError(f"limit_try must be positive, got {self.limit_try}")
        if self.reduce_fraction is not None and not 0 < self.reduce_fraction <= 1:
            raise ValueError(f"reduce_fraction is in (0, 1], got {self.reduce_fraction}")

    @property
    def state(self) -> TradingState:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    def _used(self, loss: float, start: float) -> tuple[float, str]:
        """The largest fraction of either limit used by ``loss``, and that limit's text."""
        used, text = 0.0, ""
        if self.limit_try is not None:
            used, text = loss / self.limit_try, f"{self.limit_try:,.2f} TRY"
        if self.limit_pct is not None and start > 0:
            pct_used = (loss / start) / self.limit_pct
            if pct_used > used or not text:
                used, text = pct_used, f"{self.limit_pct * 100:.4g}% of {start:,.2f} TRY"
        return used, text

    def update(self, equity: float, ts_ns: int, day: date) -> TradingState:
        if self.day != day:
            self.day = day
            self.start_equity = float(equity)
            self._state = TradingState.ACTIVE
            self._reason = ""
        start = self.start_equity if self.start_equity is not None else float(equity)
        self.loss = start - equity
        used, text = self._used(self.loss, start)
        eps = 1e-12
        wanted = TradingState.ACTIVE
        if used + eps >= 1.0:
            wanted = TradingState.HALTED
        elif self.reduce_fraction is not None and used + eps >= self.reduce_fraction:
            wanted = TradingState.REDUCING
        if wanted.severity > self._state.severity:
            self._state = wanted
            share = "the" if wanted is TradingState.HALTED else f"{self.reduce_fraction:.0%} of the"
            self._reason = (
                f"loss today {self.loss:,.2f} TRY (equity {equity:,.2f} from {start:,.2f} at the "
                f"session start) reached {share} daily loss limit of {text}"
            )
        return self._state

    def reset(self, equity: float | None = None) -> None:
        self._state = TradingState.ACTIVE
        self._reason = ""
        if equity is not None:
            self.start_equity = float(equity)
        self.loss = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "limit_pct": self.limit_pct,
            "limit_try": self.limit_try,
            "reduce_fraction": self.reduce_fraction,
            "day": self.day.isoformat() if self.day else None,
            "start_equity": self.start_equity,
            "loss": self.loss,
            "state": str(self._state),
            "reason": self._reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DailyLossLimit:
        return cls(
            limit_pct=data["limit_pct"],
            limit_try=data["limit_try"],
            reduce_fraction=data["reduce_fraction"],
            name=data["name"],
            day=date.fromisoformat(data["day"]) if data["day"] else None,
            start_equity=data["start_equity"],
            loss=data["loss"],
            _state=TradingState(data["state"]),
            _reason=data["reason"],
        )


GUARD_TYPES: dict[str, type[DrawdownGuard] | type[DailyLossLimit]] = {
    DrawdownGuard.kind: DrawdownGuard,
    DailyLossLimit.kind: DailyLossLimit,
}
"""Guard kinds a snapshot can restore (``to_dict()["kind"]``)."""


def guard_from_dict(data: Mapping[str, Any]) -> PortfolioGuard:
    try:
        cls = GUARD_TYPES[data["kind"]]
    except KeyError:
        raise ValueError(f"unknown guard kind {data.get('kind')!r}") from None
    return cls.from_dict(data)
