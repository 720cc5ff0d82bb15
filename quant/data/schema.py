"""Arrow schemas of everything the lake stores: the versioned contract for data at rest.

Timestamps are UTC nanoseconds (``ts``); Istanbul local time is derived when needed, never
stored. Prices are float64 TRY that sit on the tick grid (validation checks it exactly, in
integer price units); sizes and volumes are integer shares. ``ts`` of a bar is the instant it
opens and ``ts_end`` the instant it closes: a bar's values are known only at ``ts_end``.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl
import pyarrow as pa

SCHEMA_VERSION = 1

TS = pa.timestamp("ns", tz="UTC")


class DataKind(StrEnum):
    TRADES = "trades"
    QUOTES = "quotes"
    BARS = "bars"
    CORPORATE_ACTIONS = "corporate_actions"


class TradeCondition(StrEnum):
    """Which mechanism printed a trade."""

    CONTINUOUS = "C"
    OPENING_AUCTION = "O"
    CLOSING_AUCTION = "K"
    TRADES_AT_CLOSE = "T"
    HALT_AUCTION = "H"
    """Uncross of the call auction that follows a circuit-breaker halt."""


class CorporateActionKind(StrEnum):
    SPLIT = "split"
    """``ratio`` = shares after / shares before (a 2-for-1 split has ratio 2)."""
    BONUS = "bonus"
    """Bonus issue (bedelsiz): ``ratio`` = shares after / before (a 50% bonus has ratio 1.5)."""
    RIGHTS = "rights"
    """Rights issue (bedelli): ``ratio`` new shares per old share at subscription ``price``."""
    DIVIDEND = "dividend"
    """Cash dividend of ``amount`` TRY per share, gross."""


TRADES = pa.schema(
    [
        pa.field("ts", TS, nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("side", pa.int8(), nullable=False),
        pa.field("condition", pa.string(), nullable=False),
    ],
    metadata={
        "kind": DataKind.TRADES,
        "schema_version": str(SCHEMA_VERSION),
        "side": "aggressor: 1 buy, -1 sell, 0 unknown or auction",
        "seq": "per symbol and day, increasing with ts",
    },
)

QUOTES = pa.schema(
    [
        pa.field("ts", TS, nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("bid_price", pa.float64(), nullable=False),
        pa.field("bid_size", pa.int64(), nullable=False),
        pa.field("ask_price", pa.float64(), nullable=False),
        pa.field("ask_size", pa.int64(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
    ],
    metadata={"kind": DataKind.QUOTES, "schema_version": str(SCHEMA_VERSION)},
)

BARS = pa.schema(
    [
        pa.field("ts", TS, nullable=False),
        pa.field("ts_end", TS, nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.int64(), nullable=False),
        pa.field("vwap", pa.float64(), nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
    ],
    metadata={
        "kind": DataKind.BARS,
        "schema_version": str(SCHEMA_VERSION),
        "ts": "bar open (inclusive)",
        "ts_end": "bar close (exclusive); values are known only from here on",
    },
)

CORPORATE_ACTIONS = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ex_date", pa.date32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("ratio", pa.float64(), nullable=True),
        pa.field("price", pa.float64(), nullable=True),
        pa.field("amount", pa.float64(), nullable=True),
    ],
    metadata={"kind": DataKind.CORPORATE_ACTIONS, "schema_version": str(SCHEMA_VERSION)},
)

SCHEMAS: dict[DataKind, pa.Schema] = {
    DataKind.TRADES: TRADES,
    DataKind.QUOTES: QUOTES,
    DataKind.BARS: BARS,
    DataKind.CORPORATE_ACTIONS: CORPORATE_ACTIONS,
}

KEYS: dict[DataKind, tuple[str, ...]] = {
    DataKind.TRADES: ("symbol", "ts", "seq"),
    DataKind.QUOTES: ("symbol", "ts", "seq"),
    DataKind.BARS: ("symbol", "ts"),
    DataKind.CORPORATE_ACTIONS: ("symbol", "ex_date", "kind"),
}
"""Columns that identify a row: a second row with the same key is a duplicate."""


def polars_schema(kind: DataKind | str) -> pl.Schema:
    """The polars view of a lake schema (for building empty frames and casting)."""
    return pl.Schema(pl.from_arrow(SCHEMAS[DataKind(kind)].empty_table()).schema)


def conform(frame: pl.DataFrame, kind: DataKind | str) -> pl.DataFrame:
    """Select and cast ``frame`` to the lake schema of ``kind``, in schema column order.

    Raises ``ValueError`` naming every missing column, so an import never writes a partial row.
    """
    schema = polars_schema(kind)
    missing = [c for c in schema.names() if c not in frame.columns]
    if missing:
        raise ValueError(f"{DataKind(kind)} data is missing column(s): {', '.join(missing)}")
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
