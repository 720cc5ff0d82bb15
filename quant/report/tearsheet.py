"""The backtest tearsheet: one self-contained HTML file a reviewer can open anywhere, offline.

One page holds everything needed to judge a run: what was run (strategy, symbols, period, cost
model; a banner when the market was synthetic; a red box when the run stopped early), the
headline figures, the equity curve, the underwater drawdown, monthly returns, rolling Sharpe,
exposure, the distribution of round-trip results, the TCA tables and the rejects by code.
Later stages add their own sections (SHAP, out-of-sample results) as HTML snippets.

Self-contained means no network at all: plotly.js (about 4.8 MB) is inlined once in the page
head and every chart is a ``<div>`` with its data; the CSS is inline. The page never reads the
clock (no "generated at"), so the same result renders to the same bytes.

Numbers come from ``quant.metrics`` over the result's daily returns (252 periods a year, sample
standard deviation; see ``quant.metrics.performance``); a figure the backtest already put in
``result.stats`` under the same key wins, so the tearsheet, the CLI and the run's JSON agree.
Charts may thin long series (``quant.report.figures``); metrics never do.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from quant.metrics import (
    MONTHS,
    TRADING_DAYS_PER_YEAR,
    drawdown_series,
    exposure,
    hit_ratio,
    monthly_returns,
    profit_factor,
    rolling_sharpe,
    summary_stats,
)
from quant.report import figures
from quant.report.tables import (
    EXCHANGE_TIME_ZONE,
    column_kind,
    esc,
    format_cell,
    format_number,
    frame_to_html,
    html_table,
)

ROLLING_SHARPE_WINDOW = 63
"""Trading days in the rolling Sharpe window: about one quarter."""

MAX_TCA_ORDER_ROWS = 50
"""Per-order TCA rows printed (the costliest first); the summary covers every order."""

# Section titles, in page order. Tests and links refer to them; keep them stable.
SECTION_METRICS = "Headline metrics"
SECTION_EQUITY = "Equity curve"
SECTION_DRAWDOWN = "Underwater drawdown"
SECTION_MONTHLY = "Monthly returns"
SECTION_ROLLING_SHARPE = "Rolling Sharpe ratio"
SECTION_EXPOSURE = "Exposure"
SECTION_TRADES = "Trade distribution"
SECTION_TCA = "Transaction cost analysis"
SECTION_REJECTS = "Rejects by code"
SECTION_CONFIG = "Configuration"
SECTION_TITLES = (
    SECTION_METRICS,
    SECTION_EQUITY,
    SECTION_DRAWDOWN,
    SECTION_MONTHLY,
    SECTION_ROLLING_SHARPE,
    SECTION_EXPOSURE,
    SECTION_TRADES,
    SECTION_TCA,
    SECTION_REJECTS,
    SECTION_CONFIG,
)

SYNTHETIC_BANNER = "SYNTHETIC DATA"
"""Text that opens the banner of a run on a synthetic market (it must never pass for real)."""

ERROR_HEADING = "The run stopped early"


class BacktestResultLike(Protocol):
    """What the tearsheet reads from a backtest result (``quant.sim.result.BacktestResult``).

    A protocol rather than the class so that the report does not depend on the engine, and a
    stored or hand-built result renders the same way. Frames (times are UTC):

    - ``equity``: ts, cash, market_value, equity, gross_exposure, net_exposure (TRY, per mark)
    - ``daily``: day, equity, returns, gross_exposure, net_exposure, turnover (per session)
    - ``orders``: client_order_id, strategy_id, symbol, side, quantity, order_type, limit_price,
      ts, status, filled_qty, avg_price, fees, reject_code, reason
    - ``fills``: ts, client_order_id, symbol, side, quantity, price, fees, liquidity
    - ``round_trips``: symbol, side, quantity, entry_ts, exit_ts, entry_price, exit_price, pnl,
      return
    - ``tca`` (``quant.metrics.order_tca``) and ``tca_by_strategy``
      (``quant.metrics.tca_by_strategy``): rendered with whatever columns they have.
    """

    @property
    def equity(self) -> pl.DataFrame: ...
    @property
    def daily(self) -> pl.DataFrame: ...
    @property
    def orders(self) -> pl.DataFrame: ...
    @property
    def fills(self) -> pl.DataFrame: ...
    @property
    def round_trips(self) -> pl.DataFrame: ...
    @property
    def tca(self) -> pl.DataFrame: ...
    @property
    def tca_by_strategy(self) -> pl.DataFrame: ...
    @property
    def stats(self) -> Mapping[str, float]: ...
    @property
    def config(self) -> Mapping[str, Any]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def synthetic(self) -> bool: ...
    @property
    def strategy(self) -> str: ...


# --------------------------------------------------------------------------- headline data


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the headline table: the number and how to show it."""

    key: str
    """Stable name (the key of ``summary_stats`` where there is one)."""
    label: str
    value: float | int
    kind: str
    """Display kind for ``quant.report.tables.format_number``: pct, ratio, times, int, try."""
    note: str = ""
    """What exactly the number is (shown as the row's tooltip)."""

    @property
    def text(self) -> str:
        return format_number(self.value, self.kind)


def _col(frame: pl.DataFrame | None, name: str) -> pl.Series | None:
    if frame is None or name not in frame.columns:
        return None
    return frame[name]


def daily_returns(result: BacktestResultLike) -> pl.Series:
    """The per-session simple returns every headline figure is computed from."""
    col = _col(result.daily, "returns")
    return col.cast(pl.Float64) if col is not None else pl.Series("returns", [], pl.Float64)


def _fees_paid(result: BacktestResultLike) -> float:
    """Fees in TRY: from the fills when there are any, else from the orders' totals."""
    for frame in (result.fills, result.orders):
        fees = _col(frame, "fees")
        if fees is not None and fees.len():
            return round(float(fees.cast(pl.Float64).fill_null(0.0).sum()), 2)
    return 0.0


def _rejected_mask(orders: pl.DataFrame) -> pl.Series:
    """Orders that ended rejected: status 'rejected' or a reject code."""
    mask = pl.Series("rejected", [False] * orders.height, pl.Boolean)
    if "status" in orders.columns:
        status = orders["status"].cast(pl.String).str.to_lowercase()
        mask = mask | status.str.ends_with("rejected").fill_null(False)
    if "reject_code" in orders.columns:
        codes = orders["reject_code"].cast(pl.String)
        mask = mask | (codes.is_not_null() & (codes != "")).fill_null(False)
    return mask


def _exposure_fractions(result: BacktestResultLike) -> tuple[np.ndarray, np.ndarray]:
    """Gross and net exposure per equity mark as fractions of equity (NaN if equity <= 0)."""
    eq = result.equity
    if eq is None or eq.height == 0 or "equity" not in eq.columns:
        return np.array([]), np.array([])
    equity = eq["equity"].cast(pl.Float64)
    gross = exposure(eq["gross_exposure"].cast(pl.Float64), equity)
    net = exposure(eq["net_exposure"].cast(pl.Float64), equity, net=True)
    return gross, net


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def headline_stats(
    result: BacktestResultLike, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> dict[str, float | int]:
    """Every figure of the headline table, keyed by name; ``result.stats`` wins on a shared key.

    ``summary_stats`` of the daily returns, plus: ``trade_hit_ratio`` and
    ``trade_profit_factor`` over round-trip PnL; ``turnover``, annualised two-sided turnover:
    the mean over sessions of the engine's ``daily.turnover`` (value traded / equity at the start
    of the session) x ``periods_per_year``; ``gross_exposure`` and ``net_exposure`` (mean over
    the equity marks of ``quant.metrics.exposure``, a fraction of equity); ``round_trips``,
    ``orders``, ``fills``, ``rejects``, ``fees`` (TRY), ``start_equity`` and ``final_equity``
    (TRY). The count and money keys are those of ``BacktestResult.headline()``, so the
    engine's own figures take precedence and the CLI and the page print the same numbers.
    """
    stats: dict[str, float | int] = dict(
        summary_stats(daily_returns(result), periods_per_year=periods_per_year)
    )
    pnl = _col(result.round_trips, "pnl")
    pnl_values = pnl.cast(pl.Float64) if pnl is not None else pl.Series([], dtype=pl.Float64)
    stats["trade_hit_ratio"] = hit_ratio(pnl_values)
    stats["trade_profit_factor"] = profit_factor(pnl_values)
    daily_turnover = _col(result.daily, "turnover")
    stats["turnover"] = (
        _nanmean(daily_turnover.cast(pl.Float64).fill_null(math.nan).to_numpy()) * periods_per_year
        if daily_turnover is not None
        else math.nan
    )
    gross, net = _exposure_fractions(result)
    stats["gross_exposure"] = _nanmean(gross)
    stats["net_exposure"] = _nanmean(net)
    stats["round_trips"] = result.round_trips.height if result.round_trips is not None else 0
    stats["orders"] = result.orders.height if result.orders is not None else 0
    stats["fills"] = result.fills.height if result.fills is not None else 0
    orders = result.orders
    stats["rejects"] = int(_rejected_mask(orders).sum()) if orders is not None else 0
    stats["fees"] = _fees_paid(result)
    equity = _col(result.equity, "equity")
    if equity is not None and equity.len():
        stats["start_equity"] = float(equity[0])
        stats["final_equity"] = float(equity[-1])
    else:
        stats["start_equity"] = stats["final_equity"] = math.nan
    if result.stats:
        stats.update(result.stats)
    return {k: _plain_number(v) for k, v in stats.items()}


def _plain_number(value: Any) -> Any:
    """numpy scalars as Python numbers, so every consumer (JSON, repr) sees plain values."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


_HEADLINE: tuple[tuple[str, str, str, str], ...] = (
    ("total_return", "Total return", "pct", "Compounded daily returns over the period"),
    ("cagr", "CAGR", "pct", "Compound annual growth rate, 252 sessions a year"),
    ("annual_volatility", "Annual volatility", "pct", "Sample std of daily returns x sqrt(252)"),
    ("sharpe_ratio", "Sharpe ratio", "ratio", "Annualised, risk-free rate 0"),
    ("sortino_ratio", "Sortino ratio", "ratio", "Annualised, target return 0"),
    ("max_drawdown", "Max drawdown", "pct", "Worst fall from a running peak, daily closes"),
    ("calmar_ratio", "Calmar ratio", "ratio", "CAGR / |max drawdown|"),
    ("hit_ratio", "Hit ratio (days)", "pct", "Winning sessions / sessions that moved"),
    ("profit_factor", "Profit factor (days)", "ratio", "Sum of daily gains / sum of daily losses"),
    ("trade_hit_ratio", "Hit ratio (trades)", "pct", "Winning round trips / round trips"),
    ("trade_profit_factor", "Profit factor (trades)", "ratio", "Round-trip gains / losses"),
    ("turnover", "Turnover (annual)", "times", "Value traded (buys + sells) / equity, x252"),
    ("gross_exposure", "Gross exposure (mean)", "pct", "Mean sum |position| / equity over marks"),
    ("net_exposure", "Net exposure (mean)", "pct", "Mean sum position / equity over marks"),
    ("time_in_market", "Time in market", "pct", "Sessions with a non-zero return"),
    ("round_trips", "Trades (round trips)", "int", "Closed round trips"),
    ("orders", "Orders", "int", "Orders sent"),
    ("fills", "Fills", "int", "Executions"),
    ("fees", "Fees paid (TRY)", "try", "Commission, exchange fee and BSMV, all fills"),
    ("rejects", "Rejects", "int", "Orders rejected by risk or the venue"),
    ("start_equity", "Start equity (TRY)", "try", "Equity at the first mark"),
    ("final_equity", "End equity (TRY)", "try", "Equity at the last mark"),
)


def headline_metrics(
    result: BacktestResultLike, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> list[Metric]:
    """The rows of the headline table, in display order (the values ``headline_stats`` gives)."""
    stats = headline_stats(result, periods_per_year)
    return [
        Metric(key, label, stats.get(key, math.nan), kind, note)
        for key, label, kind, note in _HEADLINE
    ]


def monthly_table(result: BacktestResultLike) -> pl.DataFrame:
    """``quant.metrics.monthly_returns`` of the daily returns, months cut on the session date."""
    daily = result.daily
    if daily is None or daily.height == 0:
        return monthly_returns(np.array([]), timestamps=pl.Series("day", [], pl.Date))
    return monthly_returns(daily_returns(result), timestamps=daily["day"].cast(pl.Date))


def reject_counts(orders: pl.DataFrame | None) -> pl.DataFrame:
    """Rejected orders per reject code (``reject_code``, ``orders``, ``share``, ``example``).

    ``share`` is of all orders; ``example`` is the first reason given for the code.
    """
    schema = {
        "reject_code": pl.String,
        "orders": pl.Int64,
        "share": pl.Float64,
        "example": pl.String,
    }
    if orders is None or orders.height == 0:
        return pl.DataFrame(schema=schema)
    rejected = orders.filter(_rejected_mask(orders))
    if rejected.height == 0:
        return pl.DataFrame(schema=schema)
    code = (
        pl.col("reject_code").cast(pl.String).fill_null("UNSPECIFIED")
        if "reject_code" in rejected.columns
        else pl.lit("UNSPECIFIED")
    )
    reason = pl.col("reason").cast(pl.String) if "reason" in rejected.columns else pl.lit(None)
    return (
        rejected.select(code.alias("reject_code"), reason.alias("reason"))
        .group_by("reject_code", maintain_order=True)
        .agg(pl.len().cast(pl.Int64).alias("orders"), pl.col("reason").drop_nulls().first())
        .with_columns((pl.col("orders") / orders.height).alias("share"))
        .rename({"reason": "example"})
        .select(list(schema))
        .cast(schema)
        .sort(["orders", "reject_code"], descending=[True, False])
    )


def tca_summary(tca: pl.DataFrame | None) -> pl.DataFrame:
    """Distribution of every numeric per-order TCA measure: n, mean, median, p5, p95, total.

    Rejected orders have no executions, so only orders with a value count (``n``). ``total``
    is given for amounts (TRY) and quantities, where a sum means something.
    """
    schema = {
        "measure": pl.String,
        "n": pl.Int64,
        "mean": pl.Float64,
        "median": pl.Float64,
        "p5": pl.Float64,
        "p95": pl.Float64,
        "total": pl.Float64,
    }
    if tca is None or tca.height == 0:
        return pl.DataFrame(schema=schema)
    skip = {"side"}
    rows = []
    for name, dtype in tca.schema.items():
        if not dtype.is_numeric() or name in skip:
            continue
        values = tca[name].cast(pl.Float64).fill_nan(None).drop_nulls()
        summable = name.endswith("_try") or name.endswith("qty") or name == "quantity"
        if values.len() == 0:
            rows.append((name, 0, None, None, None, None, None))
            continue
        rows.append(
            (
                name,
                values.len(),
                values.mean(),
                values.median(),
                values.quantile(0.05, interpolation="linear"),
                values.quantile(0.95, interpolation="linear"),
                float(values.sum()) if summable else None,
            )
        )
    return pl.DataFrame(rows, schema=schema, orient="row")


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem 2rem;
color:#1d2330;max-width:1200px}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #d0d5dd;padding-bottom:.2rem}h3{font-size:1rem;margin-top:1.2rem}
.muted{color:#667085;font-size:.9rem}
.synthetic{background:#fff4ce;border:2px solid #e0b700;padding:.7rem 1rem;margin:0 0 1rem;
font-weight:700;font-size:1.1rem;letter-spacing:.02em}
.error{background:#fdecea;border:2px solid #c62828;color:#8e1b1b;padding:.7rem 1rem;
margin:1rem 0}.error pre{white-space:pre-wrap;margin:.4rem 0 0;font-size:.85rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.88rem}
th,td{border:1px solid #d0d5dd;padding:.22rem .55rem;text-align:left;vertical-align:top}
th{background:#f2f4f7;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.metrics{min-width:26rem}table.metrics td.num{font-weight:600}
.neg{color:#c62828}.scroll{overflow-x:auto}nav a{margin-right:.8rem;font-size:.9rem}
details summary{cursor:pointer;margin:.4rem 0}
"""

_EXTERNAL_REF = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.I
)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _section(title: str, body: str, anchor: str | None = None) -> str:
    return f'<section id="{esc(anchor or _slug(title))}"><h2>{esc(title)}</h2>{body}</section>'


def _muted(text: str) -> str:
    return f'<p class="muted">{esc(text)}</p>'


def _metrics_html(metrics: Sequence[Metric]) -> str:
    rows = []
    for m in metrics:
        negative = isinstance(m.value, float) and m.value < 0
        cls = "num neg" if negative else "num"
        rows.append(
            f'<tr data-key="{esc(m.key)}"><th title="{esc(m.note)}">{esc(m.label)}</th>'
            f'<td class="{cls}" data-value="{esc(repr(m.value))}">{esc(m.text)}</td></tr>'
        )
    return f'<table class="metrics"><tbody>{"".join(rows)}</tbody></table>'


def _symbols(result: BacktestResultLike) -> list[str]:
    configured = (result.config or {}).get("symbols") or (getattr(result, "extra", None) or {}).get(
        "symbols"
    )
    if configured:
        return [configured] if isinstance(configured, str) else [str(s) for s in configured]
    seen: set[str] = set()
    for frame in (result.orders, result.fills, result.round_trips):
        col = _col(frame, "symbol")
        if col is not None:
            seen.update(str(s) for s in col.drop_nulls().unique().to_list())
    return sorted(seen)


def _costs_text(config: Mapping[str, Any]) -> str:
    for key in ("costs", "cost_model", "costs_model", "fees"):
        if key in config and config[key] is not None:
            return format_cell(config[key], key)
    return "not stated in the run configuration"


def _period_text(result: BacktestResultLike) -> str:
    day = _col(result.daily, "day")
    if day is not None and day.len():
        first, last = day.min(), day.max()
        return f"{first} to {last} ({day.len():,} sessions)"
    ts = _col(result.equity, "ts")
    if ts is not None and ts.len():
        return f"{format_cell(ts.min(), 'ts')} to {format_cell(ts.max(), 'ts')}"
    return "no data"


def _header_html(result: BacktestResultLike, title: str) -> str:
    config = result.config or {}
    symbols = _symbols(result)
    symbols_text = ", ".join(symbols) if symbols else "none"
    if len(symbols) > 40:
        symbols_text = f"{', '.join(symbols[:40])} … ({len(symbols)} symbols)"
    rows = [
        ("Strategy", result.strategy or "(unnamed)"),
        ("Symbols", symbols_text),
        ("Period", _period_text(result)),
        ("Costs", _costs_text(config)),
        ("Data", "SYNTHETIC market (simulated)" if result.synthetic else "recorded market data"),
    ]
    parts = []
    if result.synthetic:
        parts.append(
            f'<div class="synthetic" id="synthetic-banner">{SYNTHETIC_BANNER}: this backtest ran'
            " on a simulated market generated under BIST rules. Its figures say nothing about"
            " real trading.</div>"
        )
    parts.append(f"<h1>{esc(title)}</h1>")
    header_rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    parts.append(f'<table class="header"><tbody>{header_rows}</tbody></table>')
    if result.error:
        parts.append(
            f'<div class="error" id="run-error"><strong>{ERROR_HEADING}.</strong> Everything'
            " below covers the results up to the stop.<pre>"
            f"{esc(result.error)}</pre></div>"
        )
    return "".join(parts)


def _equity_section(result: BacktestResultLike, time_zone: str) -> str:
    eq = result.equity
    if eq is None or eq.height == 0:
        return _muted("No equity marks: the run produced no results.")
    x = figures.local_times(eq["ts"], time_zone)
    fig = figures.equity_figure(x, eq["equity"].cast(pl.Float64).to_numpy(), _tz_label(time_zone))
    note = ""
    if eq.height > figures.MAX_PLOT_POINTS:
        note = _muted(
            f"{eq.height:,} marks thinned to at most {figures.MAX_PLOT_POINTS:,} for plotting"
            " (each bucket's low and high kept); figures use every mark."
        )
    return figures.figure_html(fig, "chart-equity") + note


def _tz_label(time_zone: str) -> str:
    return "Istanbul time" if time_zone == "Europe/Istanbul" else time_zone


def _days(result: BacktestResultLike) -> np.ndarray:
    return result.daily["day"].cast(pl.Date).to_numpy()


def _drawdown_section(result: BacktestResultLike) -> str:
    if result.daily is None or result.daily.height == 0:
        return _muted("No completed session.")
    dd = np.asarray(drawdown_series(daily_returns(result).to_numpy()), dtype=float)
    return figures.figure_html(figures.underwater_figure(_days(result), dd), "chart-drawdown")


def _monthly_section(result: BacktestResultLike) -> str:
    table = monthly_table(result)
    if table.height == 0:
        return _muted("No completed session.")
    fig = figures.monthly_heatmap_figure(table, MONTHS)
    return figures.figure_html(fig, "chart-monthly")


def _rolling_section(result: BacktestResultLike, window: int, periods_per_year: float) -> str:
    n = result.daily.height if result.daily is not None else 0
    if n < window:
        return _muted(f"Needs at least {window} sessions; the run has {n}.")
    rs = rolling_sharpe(
        daily_returns(result).to_numpy(), window=window, periods_per_year=periods_per_year
    )
    fig = figures.rolling_sharpe_figure(_days(result), np.asarray(rs, dtype=float), window)
    return figures.figure_html(fig, "chart-rolling-sharpe")


def _exposure_section(result: BacktestResultLike, time_zone: str) -> str:
    gross, net = _exposure_fractions(result)
    if gross.size == 0:
        return _muted("No equity marks.")
    x = figures.local_times(result.equity["ts"], time_zone)
    fig = figures.exposure_figure(x, gross, net, _tz_label(time_zone))
    return figures.figure_html(fig, "chart-exposure")


def _trades_section(result: BacktestResultLike) -> str:
    rt = result.round_trips
    if rt is None or rt.height == 0:
        return _muted("No round trip was closed.")
    rets = rt["return"].cast(pl.Float64).to_numpy() if "return" in rt.columns else np.array([])
    pnl = rt["pnl"].cast(pl.Float64).to_numpy() if "pnl" in rt.columns else np.array([])
    if pnl.size == 0:
        return _muted("The round trips carry no PnL.")
    fig = figures.trade_distribution_figure(rets, pnl)
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    facts = [
        ("Round trips", format_number(rt.height, "int")),
        ("Winners / losers", f"{wins.size:,} / {losses.size:,}"),
        ("Mean PnL (TRY)", format_number(_nanmean(pnl), "try")),
        ("Mean winner (TRY)", format_number(_nanmean(wins), "try")),
        ("Mean loser (TRY)", format_number(_nanmean(losses), "try")),
        ("Mean return", format_number(_nanmean(rets), "pct")),
        (
            "Best / worst (TRY)",
            f"{format_number(float(np.nanmax(pnl)), 'try')} / "
            f"{format_number(float(np.nanmin(pnl)), 'try')}",
        ),
    ]
    table = html_table(["", ""], facts, [False, True], css_class="facts")
    return figures.figure_html(fig, "chart-trades") + table


def _tca_section(result: BacktestResultLike, time_zone: str) -> str:
    tca = result.tca
    by_strategy = result.tca_by_strategy
    parts = [
        _muted(
            "Costs are positive: bp of the benchmark price, signed by side. Implementation"
            " shortfall against the arrival price, slippage against interval VWAP, spread"
            " against the prevailing mid."
        ),
        "<h3>By strategy</h3>",
    ]
    if by_strategy is not None and by_strategy.height:
        parts.append(f'<div class="scroll">{frame_to_html(by_strategy, time_zone=time_zone)}</div>')
    else:
        parts.append(_muted("No orders."))
    parts.append("<h3>Per order: summary</h3>")
    if tca is None or tca.height == 0:
        parts.append(_muted("No orders."))
        return "".join(parts)
    summary = tca_summary(tca)
    rows = []
    for name, n, *values in summary.iter_rows():
        kind = column_kind(name)
        rows.append([name, format_number(n, "int"), *(format_number(v, kind) for v in values)])
    parts.append(
        html_table(
            ["measure", "orders with a value", "mean", "median", "p5", "p95", "total"],
            rows,
            [False, True, True, True, True, True, True],
        )
    )
    sort_key = next(
        (c for c in ("total_shortfall_try", "is_try", "is_bp") if c in tca.columns), None
    )
    ordered = tca.sort(sort_key, descending=True, nulls_last=True) if sort_key else tca
    shown = min(MAX_TCA_ORDER_ROWS, ordered.height)
    label = (
        f"Per order: all {ordered.height:,} orders"
        if shown == ordered.height
        else f"Per order: the {shown:,} costliest of {ordered.height:,} orders"
    )
    if sort_key:
        label += f" (by {sort_key})"
    parts.append(
        f"<details><summary>{esc(label)}</summary><div class='scroll'>"
        f"{frame_to_html(ordered, max_rows=shown, time_zone=time_zone)}</div></details>"
    )
    return "".join(parts)


def _rejects_section(result: BacktestResultLike) -> str:
    counts = reject_counts(result.orders)
    if counts.height == 0:
        return _muted("No order was rejected.")
    return frame_to_html(counts)


def _config_section(result: BacktestResultLike) -> str:
    config = result.config or {}
    text = json.dumps(config, indent=2, sort_keys=True, default=str)
    return f"<details><summary>Run configuration (JSON)</summary><pre>{esc(text)}</pre></details>"


def _plotly_bundle() -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    # A literal "</script" inside the bundle would end the element early.
    return js.replace("</script", "<\\/script")


def _check_snippet(title: str, snippet: str) -> None:
    if _EXTERNAL_REF.search(snippet):
        raise ValueError(
            f"extra section {title!r} references an external resource; the tearsheet must be "
            "self-contained (inline the data, e.g. as a data: URI)"
        )


def render_tearsheet(
    result: BacktestResultLike,
    title: str | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
    *,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
    rolling_window: int = ROLLING_SHARPE_WINDOW,
    time_zone: str = EXCHANGE_TIME_ZONE,
) -> str:
    """The tearsheet of ``result`` as one HTML page (plotly.js inlined once, no network).

    ``extra_sections`` are ``(title, html)`` pairs appended after the TCA and rejects, before
    the configuration: trusted HTML from other parts of the platform (SHAP, out-of-sample
    results). A snippet that loads anything from the network raises ``ValueError``, since the
    file must open offline. Charts show times in ``time_zone`` (Istanbul by default).
    """
    for extra_title, snippet in extra_sections:
        _check_snippet(extra_title, snippet)
    title = title or f"Backtest tearsheet: {result.strategy or '(unnamed strategy)'}"
    # The browser tab says it too, so a synthetic run cannot pass for a real one at a glance.
    tab_title = f"{title} [SYNTHETIC]" if result.synthetic else title
    metrics = headline_metrics(result, periods_per_year)
    sections = [
        (SECTION_METRICS, _metrics_html(metrics)),
        (SECTION_EQUITY, _equity_section(result, time_zone)),
        (SECTION_DRAWDOWN, _drawdown_section(result)),
        (SECTION_MONTHLY, _monthly_section(result)),
        (SECTION_ROLLING_SHARPE, _rolling_section(result, rolling_window, periods_per_year)),
        (SECTION_EXPOSURE, _exposure_section(result, time_zone)),
        (SECTION_TRADES, _trades_section(result)),
        (SECTION_TCA, _tca_section(result, time_zone)),
        (SECTION_REJECTS, _rejects_section(result)),
    ]
    used = {_slug(t) for t, _ in sections} | {_slug(SECTION_CONFIG)}
    anchored: list[tuple[str, str, str]] = [(t, b, _slug(t)) for t, b in sections]
    for i, (extra_title, snippet) in enumerate(extra_sections):
        anchor = _slug(extra_title)
        if anchor in used:
            anchor = f"{anchor}-{i + 1}"
        used.add(anchor)
        anchored.append((extra_title, snippet, anchor))
    anchored.append((SECTION_CONFIG, _config_section(result), _slug(SECTION_CONFIG)))
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for t, _, a in anchored)
    body = "".join(_section(t, b, a) for t, b, a in anchored)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(tab_title)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{_plotly_bundle()}</script></head><body>'
        f"{_header_html(result, title)}<nav>{nav}</nav>{body}</body></html>\n"
    )


def _write_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file in the same directory and a rename: a reader (a browser,
    a CI artefact upload) never sees half a tearsheet, and a failed render leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file private (0600); a report is meant to be shared and served.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_tearsheet(
    result: BacktestResultLike,
    path: str | os.PathLike[str],
    title: str | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
    **options: Any,
) -> Path:
    """Render the tearsheet and write it atomically to ``path``; returns the path.

    ``options`` are passed to :func:`render_tearsheet` (``periods_per_year``,
    ``rolling_window``, ``time_zone``). The page is rendered in full before anything is
    written, so an error leaves any previous file at ``path`` untouched.
    """
    text = render_tearsheet(result, title, extra_sections, **options)
    return _write_atomic(Path(path), text)
