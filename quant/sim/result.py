"""What a backtest produces: equity, daily returns, orders, fills, round trips, TCA and figures.

``BacktestResult`` is the contract between the engine and everything that reads a backtest (the
tearsheet, the CLI, sweeps, the parity check): polars frames with fixed column names and types,
a dictionary of headline figures, the configuration that produced it and, when a strategy
raised, the error that stopped the run (what was computed up to that point is kept).

Conventions: time stamps are UTC ``Datetime("ns", "UTC")``; money is TRY; ``side`` is +1 buy and
-1 sell (for round trips +1 long, -1 short); daily returns are simple returns of the equity at
the session close (the first against the initial capital), which is what ``quant.metrics``
expects (252 periods a year).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

TS = pl.Datetime("ns", "UTC")

EQUITY_SCHEMA: dict[str, pl.DataType] = {
    "ts": TS,
    "cash": pl.Float64(),
    "market_value": pl.Float64(),
    "equity": pl.Float64(),
    "gross_exposure": pl.Float64(),
    "net_exposure": pl.Float64(),
}
DAILY_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Date(),
    "equity": pl.Float64(),
    "returns": pl.Float64(),
    "gross_exposure": pl.Float64(),
    "net_exposure": pl.Float64(),
    "turnover": pl.Float64(),
}
"""``turnover``: value traded during the session / equity at the start of it (two-sided)."""
ORDER_SCHEMA: dict[str, pl.DataType] = {
    "client_order_id": pl.String(),
    "strategy_id": pl.String(),
    "symbol": pl.String(),
    "side": pl.Int8(),
    "quantity": pl.Int64(),
    "order_type": pl.String(),
    "limit_price": pl.Float64(),
    "ts": TS,
    "status": pl.String(),
    "filled_qty": pl.Int64(),
    "avg_price": pl.Float64(),
    "fees": pl.Float64(),
    "reject_code": pl.String(),
    "reason": pl.String(),
}
"""One row per order the strategy sent, in the order sent; ``ts`` is when it was sent."""
FILL_SCHEMA: dict[str, pl.DataType] = {
    "ts": TS,
    "client_order_id": pl.String(),
    "symbol": pl.String(),
    "side": pl.Int8(),
    "quantity": pl.Int64(),
    "price": pl.Float64(),
    "fees": pl.Float64(),
    "liquidity": pl.String(),
}
ROUND_TRIP_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "side": pl.Int8(),
    "quantity": pl.Int64(),
    "entry_ts": TS,
    "exit_ts": TS,
    "entry_price": pl.Float64(),
    "exit_price": pl.Float64(),
    "pnl": pl.Float64(),
    "return": pl.Float64(),
}
"""A round trip runs from flat to flat in one symbol (backtrader's notion of a trade).

``quantity`` is the shares entered (after any split, in post-split shares), ``entry_price`` /
``exit_price`` the average prices of the entering / exiting fills (pre-split fills rescaled),
``pnl`` the price PnL net of the fees of those fills (dividends excluded), ``return`` = pnl /
entry value. A fill that crosses zero closes one round trip and opens the next. Positions
still open at the end are not round trips yet and are not listed."""


def empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def frame_from_rows(rows: list[tuple], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """``pl.DataFrame(rows, schema=schema, orient="row")``, built column by column (a
    transpose in Python, then one typed Series per column: a few times faster)."""
    if not rows:
        return empty(schema)
    columns = zip(*rows, strict=True)
    return pl.DataFrame(
        [
            pl.Series(name, list(col), dtype=dtype)
            for (name, dtype), col in zip(schema.items(), columns, strict=True)
        ]
    )


class Deferred:
    """A ``BacktestResult`` field computed when first read (``fn()``, once).

    The figures and the derived frames of a long run cost milliseconds to assemble, more
    than a daily backtest's own work, and many callers (a sweep reading one figure, a parity
    check reading the fills) read a few of them. ``fn`` must depend only on the finished run.
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn


class _Lazy:
    """A dataclass field that resolves a ``Deferred`` value on first read."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.key = f"_lazy_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:  # no default: the field stays required
            raise AttributeError(self.name)
        value = obj.__dict__[self.key]
        if type(value) is Deferred:
            value = obj.__dict__[self.key] = value.fn()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.key] = value


@dataclass
class BacktestResult:
    """The outcome of one backtest (see the module docstring for conventions).

    Any field given as a ``Deferred`` is computed when first read (the engine defers the
    figures and the derived frames); reading, comparing, pickling or saving a result
    resolves them, so it behaves as if they had been computed up front.
    """

    equity: pl.DataFrame = _Lazy()  # type: ignore[assignment]
    daily: pl.DataFrame = _Lazy()  # type: ignore[assignment]
    orders: pl.DataFrame = _Lazy()  # type: ignore[assignment]
    fills: pl.DataFrame = _Lazy()  # type: ignore[assignment]
    round_trips: pl.DataFrame = _Lazy()  # type: ignore[assignment]
    tca: pl.DataFrame = _Lazy()  # type: ignore[assignment]
    tca_by_strategy: pl.DataFrame = _Lazy()  # type: ignore[assignment]
    stats: dict[str, float] = _Lazy()  # type: ignore[assignment]
    config: dict[str, Any]
    error: str | None = None
    synthetic: bool = False
    strategy: str = ""
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    """Run facts that are not performance figures (sessions, bars, symbols, date range)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in _LAZY_FIELDS:
            state[f"_lazy_{name}"] = getattr(self, name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def headline(self) -> dict[str, float]:
        """The figures the CLI prints: return, CAGR, Sharpe, drawdown, trades, fees, rejects."""
        keys = (
            "total_return",
            "cagr",
            "sharpe_ratio",
            "max_drawdown",
            "round_trips",
            "fills",
            "fees",
            "rejects",
            "final_equity",
        )
        return {k: self.stats.get(k, math.nan) for k in keys}

    def to_json_summary(self) -> dict[str, Any]:
        """A JSON-safe summary (NaN and infinities become None)."""
        return _json_safe(
            {
                "name": self.name,
                "strategy": self.strategy,
                "synthetic": self.synthetic,
                "error": self.error,
                "stats": self.stats,
                "config": self.config,
                **self.extra,
                "counts": {
                    "orders": self.orders.height,
                    "fills": self.fills.height,
                    "round_trips": self.round_trips.height,
                    "sessions": self.daily.height,
                },
            }
        )

    def save(self, directory: str | Path) -> Path:
        """Write every frame as Parquet and ``summary.json``; returns the directory."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name in _FRAMES:
            frame: pl.DataFrame = getattr(self, name)
            tmp = out / f".{name}.parquet.tmp"
            frame.write_parquet(tmp)
            tmp.replace(out / f"{name}.parquet")
        tmp = out / ".summary.json.tmp"
        tmp.write_text(json.dumps(self.to_json_summary(), indent=2, default=str))
        tmp.replace(out / "summary.json")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> BacktestResult:
        """Read a result written by ``save``."""
        src = Path(directory)
        summary = json.loads((src / "summary.json").read_text())
        frames = {name: pl.read_parquet(src / f"{name}.parquet") for name in _FRAMES}
        stats = {k: (math.nan if v is None else v) for k, v in summary["stats"].items()}
        extra = {
            k: v
            for k, v in summary.items()
            if k not in ("name", "strategy", "synthetic", "error", "stats", "config", "counts")
        }
        return cls(
            **frames,
            stats=stats,
            config=summary["config"],
            error=summary["error"],
            synthetic=bool(summary["synthetic"]),
            strategy=summary["strategy"],
            name=summary.get("name", ""),
            extra=extra,
        )


_FRAMES = ("equity", "daily", "orders", "fills", "round_trips", "tca", "tca_by_strategy")
_LAZY_FIELDS = (*_FRAMES, "stats")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_safe(value.item())
    return value


@dataclass(slots=True)
class _Trip:
    side: int
    entry_ts: int
    entered: float = 0.0
    entry_value: float = 0.0
    exited: float = 0.0
    exit_value: float = 0.0
    fees: float = 0.0


class RoundTripTracker:
    """Builds round trips fill by fill, so a backtest never holds its whole fill history in
    Python objects: closed trips are drained into a frame (``drain``) as the run goes."""

    def __init__(self) -> None:
        self.position: dict[str, int] = {}
        self.open: dict[str, _Trip] = {}
        self.rows: list[tuple] = []

    def on_fill(self, ts: int, symbol: str, side: int, qty: int, price: float, fee: float) -> None:
        q = self.position.get(symbol, 0)
        left = int(qty)
        while left:
            trip = self.open.get(symbol)
            if q == 0 or trip is None:
                trip = self.open[symbol] = _Trip(side=side, entry_ts=ts)
            if side == trip.side:  # entering (or adding)
                trip.entered += left
                trip.entry_value += left * price
                trip.fees += fee * left / qty
                q += side * left
                left = 0
            else:  # exiting, possibly through zero
                take = min(left, abs(q))
                trip.exited += take
                trip.exit_value += take * price
                trip.fees += fee * take / qty
                q += side * take
                left -= take
                if q == 0:
                    self._close(symbol, trip, ts)
                    del self.open[symbol]
        self.position[symbol] = q

    def on_split(self, ts: int, symbol: str, factor: float) -> None:
        """A split or bonus issue: share counts scale (values do not), floored like the
        portfolio's position."""
        q = self.position.get(symbol, 0)
        if not q:
            return
        sign = 1 if q > 0 else -1
        self.position[symbol] = sign * math.floor(abs(q) * factor + 1e-9)
        trip = self.open[symbol]
        trip.entered *= factor
        trip.exited *= factor
        if self.position[symbol] == 0:
            self._close(symbol, trip, ts)
            del self.open[symbol]

    def _close(self, symbol: str, trip: _Trip, ts: int) -> None:
        entry_price = trip.entry_value / trip.entered if trip.entered else math.nan
        exit_price = trip.exit_value / trip.exited if trip.exited else math.nan
        # values are cash amounts, so a split in between does not distort the PnL
        cost = trip.entry_value * (trip.exited / trip.entered) if trip.entered else math.nan
        pnl = trip.side * (trip.exit_value - cost) - trip.fees
        self.rows.append(
            (
                symbol,
                trip.side,
                round(trip.entered),
                trip.entry_ts,
                ts,
                entry_price,
                exit_price,
                pnl,
                pnl / cost if cost else math.nan,
            )
        )

    def drain(self) -> pl.DataFrame:
        """The round trips closed since the last drain."""
        rows, self.rows = self.rows, []
        if not rows:
            return empty(ROUND_TRIP_SCHEMA)
        schema = {**ROUND_TRIP_SCHEMA, "entry_ts": pl.Int64, "exit_ts": pl.Int64}
        frame = frame_from_rows(rows, schema)
        return frame.with_columns(pl.col("entry_ts", "exit_ts").cast(TS))


def round_trips(
    fills: pl.DataFrame, share_events: Iterable[tuple[int, str, float]] = ()
) -> pl.DataFrame:
    """Flat-to-flat round trips from ``fills`` (``FILL_SCHEMA``, in execution order).

    ``share_events`` are ``(ts_ns, symbol, share_factor)`` of splits and bonus issues: they
    scale an open round trip's share counts (not its values) and the position, floored as the
    portfolio floors it. An event at the time of a fill comes first (actions apply before the
    session).
    """
    events: list[tuple[int, int, int, Any]] = []
    if fills.height:
        cols = fills.select(
            pl.col("ts").dt.epoch("ns"), "symbol", "side", "quantity", "price", "fees"
        )
        for k, row in enumerate(cols.iter_rows()):
            events.append((row[0], 1, k, row[1:]))
    for k, (ts, symbol, factor) in enumerate(share_events):
        events.append((ts, 0, k, (symbol, factor)))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    tracker = RoundTripTracker()
    for ts, kind, _, payload in events:
        if kind == 0:
            tracker.on_split(ts, *payload)
        else:
            symbol, side, qty, price, fee = payload
            tracker.on_fill(ts, symbol, side, qty, price, fee)
    return tracker.drain()
