"""Report sections of a research sweep: out-of-sample results, the trials, the SHAP summary.

A tearsheet takes extra sections as ``(title, html)`` pairs (``render_tearsheet(...,
extra_sections=...)``); :func:`research_sections` builds them from what a sweep produced, so
the reader of one page sees the backtest and the research that chose the model:

- **Out-of-sample results**: how the winner was chosen and how much of it survives the search
  (deflated Sharpe ratio with N trials, the expected maximum Sharpe ratio of N unskilled
  trials, PBO), its per-fold walk-forward metrics after costs, and its stitched out-of-sample
  equity next to every other completed trial's.
- **Sweep trials**: every trial, best first, with its status and figures.
- **SHAP summary**: mean |SHAP| per feature and a beeswarm of the registered model.

Every number comes from the objects passed in (a ``Selection``, ``TrialResult``s, an
``Explanation``); nothing here reads the clock or recomputes a metric differently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl

from quant.models.explanations import Explanation, shap_summary_figure
from quant.report.figures import figure_html
from quant.report.tables import esc, format_number, html_table
from quant.research.evaluate import TrialResult
from quant.research.selection import Selection

SECTION_OOS = "Out-of-sample results (walk-forward)"
SECTION_TRIALS = "Sweep trials"
SECTION_SHAP = "SHAP summary"
RESEARCH_SECTION_TITLES = (SECTION_OOS, SECTION_TRIALS, SECTION_SHAP)

MAX_SHAP_FEATURES = 20

_FOLD_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("fold", "fold", "int"),
    ("test_start", "test from", "text"),
    ("test_end", "test to", "text"),
    ("n_train", "train samples", "int"),
    ("n_test", "test samples", "int"),
    ("accuracy", "accuracy", "pct"),
    ("log_loss", "log loss", "ratio"),
    ("sharpe_annual", "Sharpe (annual)", "ratio"),
    ("total_return", "return", "pct"),
    ("trades", "trades", "int"),
    ("fees", "fees (TRY)", "try"),
)

_TRIAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("tune_trial_id", "trial", "text"),
    ("status", "status", "text"),
    ("score", "score (annual Sharpe)", "ratio"),
    ("total_return", "OOS return", "pct"),
    ("trades", "trades", "int"),
    ("folds_done", "folds", "int"),
    ("params", "parameters", "params"),
)


def _muted(text: str) -> str:
    return f'<p class="muted">{esc(text)}</p>'


def _cell(value: Any, kind: str) -> str:
    if kind == "text":
        return "–" if value is None else str(value)
    if kind == "params":
        return _params_text(value)
    return format_number(value, kind)


def _params_text(value: Any, keep: Sequence[str] | None = None) -> str:
    """The searched parameters of a trial, compactly (``name=value`` pairs)."""
    if value is None:
        return "–"
    params = json.loads(value) if isinstance(value, str) else dict(value)
    names = keep if keep is not None else sorted(params)
    parts = []
    for name in names:
        if name not in params:
            continue
        parts.append(f"{name}={_value_text(params[name])}")
    return ", ".join(parts)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "/".join(_value_text(v) for v in value)
    return str(value)


def _figure_rows(rows: Sequence[tuple[str, Any, str]]) -> str:
    body = "".join(
        f'<tr><th>{esc(label)}</th><td class="num">{esc(_cell(value, kind))}</td></tr>'
        for label, value, kind in rows
    )
    return f'<table class="metrics"><tbody>{body}</tbody></table>'


def oos_equity_figure(
    winner: TrialResult, others: Sequence[TrialResult] = (), title: str | None = None
) -> go.Figure:
    """Growth of 1 TRY over the stitched out-of-sample days: the winner in colour, every other
    completed trial in grey (what the selection chose among)."""
    fig = go.Figure()
    for k, trial in enumerate(others):
        if not trial.days:
            continue
        fig.add_trace(
            go.Scatter(
                x=np.array(trial.days),
                y=np.cumprod(1.0 + np.asarray(trial.returns, dtype=float)),
                mode="lines",
                line={"color": "#c4c9d2", "width": 1},
                name=f"other trials ({len(others)})",
                legendgroup="others",
                showlegend=k == 0,
                hovertemplate=f"{trial.trial_id}: %{{y:.4f}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=np.array(winner.days),
            y=np.cumprod(1.0 + np.asarray(winner.returns, dtype=float)),
            mode="lines",
            line={"color": "#1f5fbf", "width": 2},
            name=f"selected trial {winner.trial_id}",
            hovertemplate="%{x}: %{y:.4f}<extra></extra>",
        )
    )
    fig.add_hline(y=1.0, line_color="#667085", line_width=1)
    fig.update_layout(
        template="plotly_white",
        height=380,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        title={
            "text": title or "Out-of-sample equity after costs (growth of 1)",
            "font": {"size": 14},
        },
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )
    fig.update_yaxes(title_text="growth of 1")
    return fig


def oos_section(
    selection: Selection,
    results: Sequence[TrialResult] = (),
    *,
    searched: Sequence[str] | None = None,
    note: str | None = None,
) -> str:
    """The selection and the winner's walk-forward folds (see the module docstring).

    ``results`` are the completed trials (the winner among them) for the equity chart;
    ``searched`` names the parameters shown for the winner (default: all of them).
    """
    best = selection.best
    pbo = selection.pbo
    rows: list[tuple[str, Any, str]] = [
        ("selected trial", best.trial_id, "text"),
        ("trials tried (N)", selection.n_trials, "int"),
        ("out-of-sample days (aligned across trials)", selection.aligned_days, "int"),
        ("Sharpe ratio, annualised, after costs", best.sharpe_annual, "ratio"),
        ("Sharpe ratio, daily", best.sharpe, "ratio"),
        ("expected max daily Sharpe of N unskilled trials", selection.expected_max_sharpe, "ratio"),
        ("deflated Sharpe ratio (P[true Sharpe > 0])", selection.deflated_sharpe, "ratio"),
        ("probability of backtest overfitting (PBO)", pbo, "ratio"),
        ("out-of-sample return", best.total_return, "pct"),
        ("trades", best.trades, "int"),
        ("fees (TRY)", best.fees, "try"),
        ("accuracy", best.accuracy, "pct"),
    ]
    parts = [
        _muted(
            f"{best.cv.replace('_', '-')} evaluation: {best.n_splits} test folds, embargo "
            f"{best.pct_embargo:.2%} of the sessions, costs {best.costs}, backtests on "
            f"{best.backtest_bars} bars. The trial with the best out-of-sample Sharpe ratio is "
            "selected; its deflated Sharpe ratio accounts for the N trials tried."
        )
    ]
    if note:
        parts.append(f"<p>{esc(note)}</p>")
    parts.append(_figure_rows(rows))
    if pbo is None and selection.pbo_note:
        parts.append(_muted(f"PBO not computed: {selection.pbo_note}"))
    chosen = _params_text(best.params.model_dump(mode="json"), searched)
    parts.append(f"<h3>Selected parameters</h3><p>{esc(chosen)}</p>")
    fold_rows = [
        [_cell(getattr(f, key), kind) for key, _, kind in _FOLD_COLUMNS] for f in best.folds
    ]
    numeric = [kind not in ("text",) for _, _, kind in _FOLD_COLUMNS]
    parts.append("<h3>Per fold (out of sample)</h3>")
    parts.append(
        '<div class="scroll">'
        + html_table([label for _, label, _ in _FOLD_COLUMNS], fold_rows, numeric)
        + "</div>"
    )
    others = [r for r in results if r is not best]
    if best.days:
        parts.append(figure_html(oos_equity_figure(best, others), "research-oos-equity"))
    return "".join(parts)


def trials_section(
    trials: pl.DataFrame, *, searched: Sequence[str] | None = None, note: str | None = None
) -> str:
    """Every trial of the sweep, in the order given (best first), with its parameters."""
    header = [label for _, label, _ in _TRIAL_COLUMNS]
    rows = []
    for row in trials.iter_rows(named=True):
        cells = []
        for key, _, kind in _TRIAL_COLUMNS:
            value = row.get(key)
            cells.append(_params_text(value, searched) if kind == "params" else _cell(value, kind))
        rows.append(cells)
    numeric = [kind not in ("text", "params") for _, _, kind in _TRIAL_COLUMNS]
    parts = [_muted(note)] if note else []
    parts.append('<div class="scroll">' + html_table(header, rows, numeric) + "</div>")
    return "".join(parts)


def shap_section(
    explanation: Explanation, *, max_features: int = MAX_SHAP_FEATURES, note: str | None = None
) -> str:
    """Mean |SHAP| bars, a beeswarm and the importance table of ``explanation``."""
    parts = [
        _muted(
            f"{explanation.method} over {len(explanation.values):,} samples; values explain the "
            f"{explanation.output}."
        )
    ]
    if note:
        parts.append(_muted(note))
    bar = shap_summary_figure(explanation, "bar", max_features, "Mean |SHAP| per feature")
    swarm = shap_summary_figure(
        explanation, "beeswarm", max_features, "SHAP value per sample (colour: feature value)"
    )
    parts.append(figure_html(bar, "research-shap-bar"))
    parts.append(figure_html(swarm, "research-shap-beeswarm"))
    imp = explanation.global_importance().head(max_features)
    rows = [
        [name, format_number(value, "plain")]
        for name, value in zip(imp["feature"], imp["mean_abs_shap"], strict=True)
    ]
    parts.append(html_table(["feature", "mean |SHAP|"], rows, [False, True]))
    return "".join(parts)


def research_sections(
    selection: Selection,
    trials: pl.DataFrame,
    results: Sequence[TrialResult] = (),
    explanation: Explanation | None = None,
    *,
    searched: Sequence[str] | None = None,
    notes: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """``(title, html)`` pairs for ``render_tearsheet(extra_sections=...)``.

    ``notes`` maps a section title to a sentence shown at its top (e.g. which model was
    registered, that the market is synthetic). No SHAP section without an explanation.
    """
    notes = dict(notes or {})
    sections = [
        (
            SECTION_OOS,
            oos_section(selection, results, searched=searched, note=notes.get(SECTION_OOS)),
        ),
        (SECTION_TRIALS, trials_section(trials, searched=searched, note=notes.get(SECTION_TRIALS))),
    ]
    if explanation is not None:
        sections.append((SECTION_SHAP, shap_section(explanation, note=notes.get(SECTION_SHAP))))
    return sections


__all__ = [
    "RESEARCH_SECTION_TITLES",
    "SECTION_OOS",
    "SECTION_SHAP",
    "SECTION_TRIALS",
    "oos_equity_figure",
    "oos_section",
    "research_sections",
    "shap_section",
    "trials_section",
]
