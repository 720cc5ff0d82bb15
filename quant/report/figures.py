"""Plotly figures of a tearsheet, each a small function from arrays to a ``go.Figure``.

The figures hold data only; the page embeds plotly.js once (see ``quant.report.tearsheet``), so
each figure is rendered with ``include_plotlyjs=False`` and a fixed ``div_id``: the same result
gives byte-identical HTML.

Long series are thinned for plotting by :func:`downsample_indices` (at most
``MAX_PLOT_POINTS`` points per chart): a one-year 1-minute equity curve has ~125,000 marks, which
would add megabytes of JSON and make the browser crawl, while a screen shows at most a few
thousand pixels. Thinning keeps the minimum and maximum of each bucket (and the first and last
point), so peaks and troughs, and hence the drawdowns a reader looks for, survive it. The
metrics are always computed on the full series, never on the thinned one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

MAX_PLOT_POINTS = 5_000
"""Upper bound on the points of one chart after thinning (all its lines together)."""

_TEMPLATE = "plotly_white"
_HEIGHT = 360
_GREEN = "#1a7f37"
_RED = "#c62828"
_BLUE = "#1f5fbf"
_GREY = "#667085"

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
"""Plotly config of every chart: no plotly.com link, resize with the page."""


def downsample_indices(*series: np.ndarray, max_points: int = MAX_PLOT_POINTS) -> np.ndarray:
    """Sorted row indices that keep each series' per-bucket minimum and maximum.

    All series have the same length (they share one x axis). With ``n <= max_points`` every row
    is kept. Otherwise the budget is shared between the series: each is cut into equal buckets
    whose arg-min and arg-max are kept, and the first and last rows always are; the union of
    the indices has at most ``max_points`` rows. NaN values are never chosen as extremes
    unless a whole bucket is NaN.
    """
    if not series:
        raise ValueError("downsample_indices needs at least one series")
    n = len(series[0])
    if any(len(s) != n for s in series):
        raise ValueError("all series must have the same length")
    if max_points < 4 + 2 * len(series):
        raise ValueError(f"max_points must be at least {4 + 2 * len(series)}, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    per_series = (max_points - 2) // len(series)
    n_buckets = per_series // 2
    size = -(-n // n_buckets)  # ceil: every bucket is non-empty, at most n_buckets of them
    n_rows = -(-n // size)
    keep = [np.array([0, n - 1])]
    offsets = np.arange(n_rows) * size
    for s in series:
        values = np.asarray(s, dtype=float)
        padded = np.full(n_rows * size, np.nan)
        padded[:n] = values
        grid = padded.reshape(n_rows, size)
        nan = np.isnan(grid)
        lo = np.where(nan, np.inf, grid).argmin(axis=1)
        hi = np.where(nan, -np.inf, grid).argmax(axis=1)
        keep += [offsets + lo, offsets + hi]
    idx = np.unique(np.concatenate(keep))
    return idx[idx < n]


def local_times(ts: pl.Series, time_zone: str) -> np.ndarray:
    """UTC datetimes as naive ``datetime64[s]`` wall-clock times of ``time_zone`` (for axes)."""
    if isinstance(ts.dtype, pl.Datetime):
        s = ts if ts.dtype.time_zone else ts.dt.replace_time_zone("UTC")
        s = s.dt.convert_time_zone(time_zone).dt.replace_time_zone(None)
        return s.to_numpy().astype("datetime64[s]")
    return ts.to_numpy()


def _layout(fig: go.Figure, title: str, y_title: str, y_format: str | None = None) -> go.Figure:
    fig.update_layout(
        template=_TEMPLATE,
        height=_HEIGHT,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        title={"text": title, "font": {"size": 14}},
        hovermode="x unified",
        showlegend=True,
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )
    fig.update_yaxes(title_text=y_title, tickformat=y_format)
    return fig


def equity_figure(x: np.ndarray, equity: np.ndarray, time_label: str) -> go.Figure:
    """Equity (TRY) at every mark, thinned to ``MAX_PLOT_POINTS``."""
    idx = downsample_indices(equity)
    fig = go.Figure(
        go.Scatter(
            x=x[idx],
            y=equity[idx],
            mode="lines",
            name="Equity",
            line={"color": _BLUE, "width": 1.5},
        )
    )
    fig = _layout(fig, f"Equity (TRY), {time_label}", "TRY", ",.0f")
    fig.update_layout(showlegend=False)
    return fig


def underwater_figure(days: np.ndarray, drawdown: np.ndarray) -> go.Figure:
    """Daily drawdown below the running peak, as a filled area under zero."""
    idx = downsample_indices(drawdown)
    fig = go.Figure(
        go.Scatter(
            x=days[idx],
            y=drawdown[idx],
            mode="lines",
            name="Drawdown",
            fill="tozeroy",
            line={"color": _RED, "width": 1},
        )
    )
    fig = _layout(fig, "Underwater: drawdown from the running peak", "drawdown", ".1%")
    fig.update_layout(showlegend=False)
    return fig


def monthly_heatmap_figure(table: pl.DataFrame, months: Sequence[str]) -> go.Figure:
    """Year x month heat map of compounded monthly returns, with the year's total on the right.

    ``table`` is ``quant.metrics.monthly_returns``'s frame (``year``, one column per month,
    ``year_total``). Colours are centred on zero (red loss, green gain); empty cells are months
    without data.
    """
    columns = [*months, "year_total"]
    z = np.array(
        [[np.nan if v is None else v for v in table[c].to_list()] for c in columns], dtype=float
    ).T
    labels = [*months, "Year"]
    years = [str(y) for y in table["year"].to_list()]
    text = np.where(np.isnan(z), "", np.char.mod("%.1f%%", np.nan_to_num(z) * 100.0))
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.01
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=years,
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0.0,
            zmin=-bound,
            zmax=bound,
            hovertemplate="%{y} %{x}: %{z:.2%}<extra></extra>",
            colorbar={"tickformat": ".0%"},
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(
        template=_TEMPLATE,
        height=max(160, 60 + 32 * len(years)),
        margin={"l": 60, "r": 20, "t": 30, "b": 30},
        title={"text": "Monthly returns (compounded)", "font": {"size": 14}},
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(side="top", type="category")
    return fig


def rolling_sharpe_figure(days: np.ndarray, values: np.ndarray, window: int) -> go.Figure:
    """Trailing ``window``-day annualised Sharpe ratio, with a zero line."""
    idx = downsample_indices(values)
    fig = go.Figure(
        go.Scatter(
            x=days[idx],
            y=values[idx],
            mode="lines",
            name=f"{window}-day Sharpe",
            line={"color": _BLUE, "width": 1.5},
            connectgaps=False,
        )
    )
    fig.add_hline(y=0.0, line={"color": _GREY, "width": 1, "dash": "dot"})
    fig = _layout(fig, f"Rolling Sharpe ratio ({window} trading days, annualised)", "Sharpe")
    fig.update_layout(showlegend=False)
    return fig


def exposure_figure(
    x: np.ndarray, gross: np.ndarray, net: np.ndarray, time_label: str
) -> go.Figure:
    """Gross and net exposure as fractions of equity at every mark (thinned together)."""
    idx = downsample_indices(gross, net)
    fig = go.Figure(
        [
            go.Scatter(
                x=x[idx],
                y=gross[idx],
                mode="lines",
                name="Gross",
                line={"color": _BLUE, "width": 1.5},
            ),
            go.Scatter(
                x=x[idx], y=net[idx], mode="lines", name="Net", line={"color": _GREEN, "width": 1.5}
            ),
        ]
    )
    return _layout(fig, f"Exposure (% of equity), {time_label}", "exposure", ".0%")


def trade_distribution_figure(returns: np.ndarray, pnl: np.ndarray) -> go.Figure:
    """Histograms of round-trip returns (%) and round-trip PnL (TRY), side by side."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Return per round trip", "PnL per round trip (TRY)")
    )
    bins = int(np.clip(np.sqrt(max(returns.size, 1)) * 2, 10, 80))
    fig.add_trace(
        go.Histogram(x=returns, nbinsx=bins, name="return", marker={"color": _BLUE}), row=1, col=1
    )
    fig.add_trace(
        go.Histogram(x=pnl, nbinsx=bins, name="PnL", marker={"color": _GREEN}), row=1, col=2
    )
    for col in (1, 2):
        fig.add_vline(x=0.0, line={"color": _GREY, "width": 1, "dash": "dot"}, row=1, col=col)
    fig.update_layout(
        template=_TEMPLATE,
        height=_HEIGHT,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        showlegend=False,
        bargap=0.05,
    )
    fig.update_xaxes(tickformat=".1%", row=1, col=1)
    fig.update_xaxes(tickformat=",.0f", row=1, col=2)
    fig.update_yaxes(title_text="round trips", row=1, col=1)
    return fig


def figure_html(fig: go.Figure, div_id: str) -> str:
    """The figure as a ``<div>`` plus its ``Plotly.newPlot`` call, without plotly.js itself."""
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config=PLOT_CONFIG,
        default_height=f"{int(fig.layout.height or _HEIGHT)}px",
        default_width="100%",
    )
