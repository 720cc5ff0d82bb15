"""The quality report of a validation run: what was checked, what failed, and a score per day.

The report is the human side of validation. The quarantine says *which rows* were rejected;
the report says *how good each symbol-day is* so that an operator can decide whether the data
is fit for research, and so that ``smart-trader data validate`` can fail a pipeline whose data
fell under a threshold.

Score of a symbol-day (in [0, 100])::

    score = 100 * clean / (rows + missing)

``rows`` are the rows received for that symbol and day, ``clean`` those that passed every rule,
and ``missing`` the expected rows with no data at all (GAP findings): minutes of intraday bars
missing from continuous trading, or, for a whole session without data between a symbol's first
and last day, the rows that day should have held (the bar slots of that session, one daily bar,
or for trades and quotes the symbol's median rows per day). The overall score is the same ratio
over all symbol-days, so a day weighs by its size. Rules a row could not be checked against (for
example the price band on a symbol's first day, which has no previous close) are counted as
``unchecked``: they do not lower the score, but they are shown so nobody mistakes "not checked"
for "passed".

The report is plain data (pydantic): it round-trips through JSON, and renders itself as a
self-contained HTML page (no external assets) that says prominently when the data is synthetic.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

DEFAULT_THRESHOLD = 95.0
"""Minimum score of every symbol-day for ``passed()`` (the CLI's default)."""

REPORT_VERSION = 1


def _ratio_score(clean: int, rows: int, missing: int) -> float:
    denominator = rows + missing
    if denominator == 0:
        return 100.0
    return 100.0 * clean / denominator


class SymbolDayQuality(BaseModel):
    """Counts and score of one symbol on one day.

    ``day`` is None for rows that could not be placed on a day (null or unreadable timestamp);
    ``symbol`` is ``"<null>"`` for rows without a symbol.
    """

    model_config = ConfigDict(frozen=True)

    symbol: str
    day: date | None
    rows: int = Field(ge=0)
    clean: int = Field(ge=0)
    rejected: dict[str, int] = Field(default_factory=dict)
    """Quarantined rows by rule code (only rules with at least one row)."""
    missing: int = Field(default=0, ge=0)
    """Expected rows with no data (GAP): missing bars, or the rows of a missing session."""
    missing_session: bool = False
    """True when the symbol has no data at all on this session (between its first and last day)."""
    unchecked: dict[str, int] = Field(default_factory=dict)
    """Rows a rule could not evaluate, by rule code (e.g. the band on a symbol's first day)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> float:
        return _ratio_score(self.clean, self.rows, self.missing)

    @property
    def quarantined(self) -> int:
        return sum(self.rejected.values())


class QualityReport(BaseModel):
    """Per symbol-day quality of one validation run, with totals, rule counts and samples."""

    model_config = ConfigDict(frozen=True)

    kind: str
    source_label: str = ""
    """Where the data came from, as the caller names it (a path, "lake", "synthetic seed 7")."""
    synthetic: bool = False
    """True when the caller says the data is synthetic; the HTML page then says so prominently."""
    rules: dict[str, str] = Field(default_factory=dict)
    """Rules that were on, code -> description, in order of precedence."""
    config: dict[str, Any] = Field(default_factory=dict)
    """Thresholds and settings of the run, so that a report explains its own numbers."""
    symbol_days: list[SymbolDayQuality] = Field(default_factory=list)
    samples: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    """A few quarantined rows per rule code (values as JSON-friendly scalars)."""
    version: int = REPORT_VERSION

    # -- totals ---------------------------------------------------------------------------------

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.symbol_days)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def clean(self) -> int:
        return sum(d.clean for d in self.symbol_days)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def quarantined(self) -> int:
        return sum(d.quarantined for d in self.symbol_days)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def missing(self) -> int:
        return sum(d.missing for d in self.symbol_days)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> float:
        """Overall score: 100 * all clean rows / (all rows + all missing expected rows)."""
        return _ratio_score(self.clean, self.rows, self.missing)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rule_counts(self) -> dict[str, int]:
        """Quarantined rows per rule, plus ``GAP`` = missing expected rows (not quarantined)."""
        counts = dict.fromkeys(self.rules, 0)
        for d in self.symbol_days:
            for rule, n in d.rejected.items():
                counts[rule] = counts.get(rule, 0) + n
        if "GAP" in counts or self.missing:
            counts["GAP"] = self.missing
        return counts

    @computed_field  # type: ignore[prop-decorator]
    @property
    def unchecked_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.symbol_days:
            for rule, n in d.unchecked.items():
                counts[rule] = counts.get(rule, 0) + n
        return counts

    @computed_field  # type: ignore[prop-decorator]
    @property
    def symbols(self) -> list[str]:
        return sorted({d.symbol for d in self.symbol_days})

    # -- verdicts -------------------------------------------------------------------------------

    def worst(self, n: int = 10) -> list[SymbolDayQuality]:
        """The ``n`` lowest-scoring symbol-days, worst first (ties by symbol and day)."""
        return sorted(self.symbol_days, key=_worst_key)[:n]

    def failing(self, threshold: float = DEFAULT_THRESHOLD) -> list[SymbolDayQuality]:
        """Symbol-days scoring under ``threshold``, worst first."""
        return [d for d in self.worst(len(self.symbol_days)) if d.score < threshold]

    def passed(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        """True when every symbol-day scores at least ``threshold``.

        A report without any row does not pass: validating nothing proves nothing, and a quality
        gate that waves through an empty input would hide a broken pipeline.
        """
        return self.rows > 0 and not self.failing(threshold)

    def summary(self, threshold: float = DEFAULT_THRESHOLD) -> str:
        """A few plain lines for a terminal."""
        label = self.source_label or "(unnamed source)"
        if self.synthetic:
            label += " [SYNTHETIC]"
        lines = [
            f"{self.kind} from {label}: {self.rows:,} rows, {self.clean:,} clean, "
            f"{self.quarantined:,} quarantined, {self.missing:,} missing expected",
            f"score {self.score:.2f} overall; {len(self.symbol_days):,} symbol-days, "
            f"{len(self.failing(threshold)):,} under {threshold:g}",
        ]
        counts = {k: v for k, v in self.rule_counts.items() if v}
        if counts:
            lines.append("rules: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        unchecked = {k: v for k, v in self.unchecked_counts.items() if v}
        if unchecked:
            lines.append("unchecked: " + ", ".join(f"{k} {v:,}" for k, v in unchecked.items()))
        lines.append("PASSED" if self.passed(threshold) else "FAILED")
        return "\n".join(lines)

    # -- serialisation --------------------------------------------------------------------------

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> QualityReport:
        """Inverse of ``to_json`` (computed totals in the text are recomputed, not trusted)."""
        return cls.model_validate_json(text)

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        return _write_atomic(Path(path), self.to_json())

    def write_html(
        self,
        path: str | os.PathLike[str],
        threshold: float = DEFAULT_THRESHOLD,
        max_rows: int = 2000,
    ) -> Path:
        """Write a self-contained HTML page; the symbol-day table holds the worst ``max_rows``."""
        return _write_atomic(Path(path), render_html(self, threshold, max_rows))


def _worst_key(d: SymbolDayQuality) -> tuple[float, str, str]:
    return (d.score, d.symbol, d.day.isoformat() if d.day else "")


def _write_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file and a rename, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- HTML -----------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2330}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.muted{color:#667085}.banner{background:#fff4ce;border:1px solid #e0b700;padding:.6rem 1rem;
margin:1rem 0;font-weight:600}.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;
font-weight:700;color:#fff}.pass{background:#1a7f37}.fail{background:#c62828}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d5dd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.good{background:#d3f9d8}.warn{background:#fff3bf}.bad{background:#ffd6d6}
code{font-size:.85rem}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _score_class(score: float, threshold: float) -> str:
    if score >= threshold:
        return "good"
    if score >= threshold - 10:
        return "warn"
    return "bad"


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)


def render_html(
    report: QualityReport, threshold: float = DEFAULT_THRESHOLD, max_rows: int = 2000
) -> str:
    """The report as one self-contained HTML page (inline CSS, no scripts, no external assets)."""
    r = report
    passed = r.passed(threshold)
    title = f"Data quality report: {r.kind}"
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="muted">Source: {_esc(r.source_label or "(unnamed source)")}</p>',
    ]
    if r.synthetic:
        parts.append(
            '<div class="banner">SYNTHETIC DATA: generated by a simulator following BIST rules,'
            " not real market data.</div>"
        )
    verdict = "PASSED" if passed else "FAILED"
    parts += [
        f'<p><span class="verdict {"pass" if passed else "fail"}">{verdict}</span> '
        f"every symbol-day must score at least {threshold:g}</p>",
        "<h2>Summary</h2><table>",
        f'<tr><th>Overall score</th><td class="num {_score_class(r.score, threshold)}">'
        f"{r.score:.2f}</td></tr>",
        f'<tr><th>Rows</th><td class="num">{r.rows:,}</td></tr>',
        f'<tr><th>Clean</th><td class="num">{r.clean:,}</td></tr>',
        f'<tr><th>Quarantined</th><td class="num">{r.quarantined:,}</td></tr>',
        f'<tr><th>Missing expected rows (GAP)</th><td class="num">{r.missing:,}</td></tr>',
        f'<tr><th>Symbols</th><td class="num">{len(r.symbols):,}</td></tr>',
        f'<tr><th>Symbol-days</th><td class="num">{len(r.symbol_days):,}</td></tr>',
        f'<tr><th>Symbol-days under {threshold:g}</th><td class="num">'
        f"{len(r.failing(threshold)):,}</td></tr>",
        "</table>",
        '<p class="muted">Score = 100 &times; clean / (rows + missing expected rows).</p>',
    ]

    # Rule counts.
    parts.append(
        "<h2>Rules</h2><table><tr><th>Code</th><th>Rule</th><th>Rows</th><th>Unchecked</th></tr>"
    )
    unchecked = r.unchecked_counts
    for code, n in r.rule_counts.items():
        desc = r.rules.get(code, "")
        parts.append(
            f"<tr><td><code>{_esc(code)}</code></td><td>{_esc(desc)}</td>"
            f'<td class="num">{n:,}</td><td class="num">{unchecked.get(code, 0):,}</td></tr>'
        )
    parts.append("</table>")
    if r.config:
        parts.append(
            "<details><summary>Settings</summary><pre>"
            f"{_esc(json.dumps(r.config, indent=2, default=str))}</pre></details>"
        )

    # Per symbol.
    per_symbol: dict[str, list[SymbolDayQuality]] = {}
    for d in r.symbol_days:
        per_symbol.setdefault(d.symbol, []).append(d)
    parts.append(
        "<h2>Symbols</h2><table><tr><th>Symbol</th><th>Days</th><th>Rows</th>"
        "<th>Clean</th><th>Missing</th><th>Worst day</th><th>Score</th></tr>"
    )
    for sym in sorted(per_symbol):
        days = per_symbol[sym]
        rows = sum(d.rows for d in days)
        clean = sum(d.clean for d in days)
        missing = sum(d.missing for d in days)
        score = _ratio_score(clean, rows, missing)
        worst = min(d.score for d in days)
        parts.append(
            f"<tr><td>{_esc(sym)}</td><td class='num'>{len(days):,}</td>"
            f"<td class='num'>{rows:,}</td><td class='num'>{clean:,}</td>"
            f"<td class='num'>{missing:,}</td>"
            f"<td class='num {_score_class(worst, threshold)}'>{worst:.2f}</td>"
            f"<td class='num {_score_class(score, threshold)}'>{score:.2f}</td></tr>"
        )
    parts.append("</table>")

    # Symbol-days, worst first.
    shown = r.worst(max_rows)
    parts.append("<h2>Symbol-days (worst first)</h2>")
    if len(r.symbol_days) > len(shown):
        parts.append(
            f'<p class="muted">Showing the worst {len(shown):,} of '
            f"{len(r.symbol_days):,} symbol-days; the JSON report has them all.</p>"
        )
    parts.append(
        "<table><tr><th>Symbol</th><th>Day</th><th>Rows</th><th>Clean</th>"
        "<th>Rejected</th><th>Missing</th><th>Unchecked</th><th>Score</th></tr>"
    )
    for d in shown:
        day = d.day.isoformat() if d.day else "(no day)"
        missing = f"{d.missing:,}" + (" (no data this session)" if d.missing_session else "")
        parts.append(
            f"<tr><td>{_esc(d.symbol)}</td><td>{_esc(day)}</td>"
            f"<td class='num'>{d.rows:,}</td><td class='num'>{d.clean:,}</td>"
            f"<td>{_esc(_counts_text(d.rejected))}</td><td class='num'>{_esc(missing)}</td>"
            f"<td>{_esc(_counts_text(d.unchecked))}</td>"
            f"<td class='num {_score_class(d.score, threshold)}'>{d.score:.2f}</td></tr>"
        )
    parts.append("</table>")

    # Samples of quarantined rows.
    parts.append("<h2>Quarantined rows: samples per rule</h2>")
    if not any(r.samples.values()):
        parts.append("<p>No row was quarantined.</p>")
    for code, rows in r.samples.items():
        if not rows:
            continue
        columns = list(rows[0])
        parts.append(f"<h3><code>{_esc(code)}</code> {_esc(r.rules.get(code, ''))}</h3><table><tr>")
        parts += [f"<th>{_esc(c)}</th>" for c in columns]
        parts.append("</tr>")
        for row in rows:
            parts.append(
                "<tr>" + "".join(f"<td>{_esc(row.get(c))}</td>" for c in columns) + "</tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
