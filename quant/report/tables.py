"""HTML tables for reports: polars frames rendered with formats that follow the column names.

A report shows frames whose exact columns it does not own (the TCA frame grows as TCA grows),
so formats come from naming conventions rather than a fixed schema: ``*_bp`` are basis points,
``*_try`` and fees / PnL are TRY amounts, ``*rate`` and ``return`` are fractions shown as
percent, prices get two decimals (the finest BIST tick is 0.01 TRY), integers get thousands
separators, times are shown in the exchange's time zone. Every cell is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import polars as pl

EXCHANGE_TIME_ZONE = "Europe/Istanbul"
"""Times in reports are Istanbul wall-clock times: what a BIST trader reads on the screen."""

MISSING = "–"
"""What an unknown value (null, NaN) shows as; an empty cell would read as 'nothing happened'."""

_PRICE_COLUMNS = frozenset(
    {
        "price",
        "avg_price",
        "limit_price",
        "arrival_price",
        "interval_vwap",
        "entry_price",
        "exit_price",
        "last_price",
        "vwap",
        "close",
        "open",
        "high",
        "low",
    }
)
_TRY_COLUMNS = frozenset({"fees", "pnl", "cash", "equity", "market_value", "notional"})
_PERCENT_COLUMNS = frozenset({"return", "returns", "weight"})


def esc(value: Any) -> str:
    """HTML-escaped text of ``value`` (None gives an empty string)."""
    return html.escape("" if value is None else str(value))


def column_kind(name: str) -> str:
    """The display kind a column's name implies: bp, try, pct, price or plain."""
    n = name.lower()
    if n.endswith("_bp"):
        return "bp"
    if n.endswith("_try") or n in _TRY_COLUMNS:
        return "try"
    if n.endswith("rate") or n in _PERCENT_COLUMNS:
        return "pct"
    if n in _PRICE_COLUMNS:
        return "price"
    return "plain"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: Any, kind: str) -> str:
    """``value`` formatted as ``kind`` (bp, try, pct, price, ratio, times, int or plain)."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if kind == "int" or (isinstance(value, int) and kind in ("plain", "try", "price")):
        return f"{int(value):,}"
    v = float(value)
    if kind == "bp":
        text = f"{v:,.1f}"
    elif kind in ("try", "price"):
        text = f"{v:,.2f}"
    elif kind == "pct":
        text = f"{v * 100:,.2f}%"
    elif kind == "ratio":
        text = f"{v:,.2f}"
    elif kind == "times":
        text = f"{v:,.2f}×"
    elif abs(v) >= 1000:
        text = f"{v:,.0f}"
    elif abs(v) >= 1:
        text = f"{v:,.2f}"
    else:
        text = f"{v:.4g}"
    # A tiny negative that rounds to zero reads as a loss: show it as plain zero.
    if text.startswith("-") and not any(c in "123456789" for c in text):
        text = text[1:]
    return text


def format_cell(value: Any, column: str, time_zone: str = EXCHANGE_TIME_ZONE) -> str:
    """One cell of ``column`` as display text (not escaped)."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            from zoneinfo import ZoneInfo

            value = value.astimezone(ZoneInfo(time_zone))
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if column.lower() == "side" and isinstance(value, int) and not isinstance(value, bool):
        return {1: "BUY", -1: "SELL"}.get(value, str(value))
    if isinstance(value, bool | int | float):
        return format_number(value, column_kind(column))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[bool] | None = None,
    css_class: str = "data",
) -> str:
    """A table from display strings (escaped here); ``numeric`` columns are right-aligned."""
    numeric = list(numeric) if numeric is not None else [False] * len(header)
    parts = [f'<table class="{esc(css_class)}"><thead><tr>']
    parts += [f"<th>{esc(h)}</th>" for h in header]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>")
        for cell, is_num in zip(row, numeric, strict=True):
            parts.append(f'<td class="num">{esc(cell)}</td>' if is_num else f"<td>{esc(cell)}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def frame_to_html(
    frame: pl.DataFrame,
    max_rows: int | None = None,
    time_zone: str = EXCHANGE_TIME_ZONE,
    css_class: str = "data",
) -> str:
    """Every column of ``frame`` as an HTML table, formatted by :func:`format_cell`.

    With ``max_rows`` only the first rows are shown; the caller decides which rows come first
    and says how many were left out.
    """
    shown = frame if max_rows is None else frame.head(max_rows)
    numeric = [dtype.is_numeric() for dtype in shown.dtypes]
    rows = [
        [format_cell(v, c, time_zone) for v, c in zip(row, shown.columns, strict=True)]
        for row in shown.iter_rows()
    ]
    return html_table(shown.columns, rows, numeric, css_class)
