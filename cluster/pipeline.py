"""The jobs behind the CLI: generate, validate and the demo, with progress on a Rich console.

Kept apart from ``cli.py`` so that argument parsing stays thin and these jobs can be called
from tests, notebooks and (later) Ray jobs the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cluster.config import Settings
from quant.data.ingest import SyntheticIngest, ingest_synthetic
from quant.data.lake import Lake, parse_kind
from quant.data.quality_report import QualityReport
from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant.data.validate import ValidationConfig, validate_parquet, validate_stream


def _progress(console: Console, enabled: bool = True) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    )


@dataclass
class GenerateResult:
    """The synthetic market written to the lake, with its quality reports."""

    lake: Path
    seed: int
    symbols: list[str]
    ingest: SyntheticIngest
    reports: dict[str, dict[str, Path]] = field(default_factory=dict)
    seconds: float = 0.0

    def passed(self, threshold: float) -> bool:
        return all(r.report.passed(threshold) for r in self.ingest.results.values())

    def as_dict(self) -> dict[str, Any]:
        sessions = self.ingest.bar_sessions
        ticks = self.ingest.tick_sessions
        return {
            "synthetic": True,
            "lake": str(self.lake),
            "seed": self.seed,
            "symbols": self.symbols,
            "bar_sessions": [str(sessions[0]), str(sessions[-1]), len(sessions)],
            "tick_sessions": [str(ticks[0]), str(ticks[-1]), len(ticks)] if ticks else [],
            "corporate_actions": self.ingest.corporate_actions,
            "kinds": {k.value: r.as_dict() for k, r in self.ingest.results.items()},
            "reports": {k: {f: str(p) for f, p in v.items()} for k, v in self.reports.items()},
            "seconds": round(self.seconds, 2),
        }

    def print(self, console: Console, threshold: float) -> None:
        sessions = self.ingest.bar_sessions
        console.print(
            f"[bold]SYNTHETIC[/] BIST market, seed {self.seed}: {len(self.symbols)} symbols, "
            f"1-minute bars for {len(sessions)} sessions ({sessions[0]} to {sessions[-1]}), "
            f"ticks for the last {len(self.ingest.tick_sessions)}, "
            f"{self.ingest.corporate_actions} corporate actions, in {self.seconds:.1f} s"
        )
        table = Table(title="data quality (validated before it reached the lake)")
        for column in ("kind", "rows", "clean", "quarantined", "missing", "score", "verdict"):
            table.add_column(column, justify="left" if column in ("kind", "verdict") else "right")
        for kind, result in self.ingest.results.items():
            r = result.report
            verdict = "[green]passed[/]" if r.passed(threshold) else "[red]under threshold[/]"
            table.add_row(
                kind.value,
                f"{r.rows:,}",
                f"{r.clean:,}",
                f"{r.quarantined:,}",
                f"{r.missing:,}",
                f"{r.score:.2f}",
                verdict,
            )
        console.print(table)
        for kind, paths in self.reports.items():
            console.print(f"quality report ({kind}): {paths['html']}")
        console.print(f"lake: {self.lake}")


def generate_market(
    settings: Settings,
    *,
    symbols: int | None = None,
    sessions: int | None = None,
    tick_sessions: int | None = None,
    start: date | None = None,
    seed: int | None = None,
    show_progress: bool = True,
    console: Console,
) -> GenerateResult:
    """Generate the synthetic market into the lake through validation, with progress bars."""
    demo = settings.demo
    config = SyntheticMarketConfig(
        n_symbols=symbols if symbols is not None else demo.symbols,
        n_sessions=sessions if sessions is not None else demo.sessions,
        start=start or date.fromisoformat(demo.start),
        seed=seed if seed is not None else demo.seed,
    )
    n_ticks = tick_sessions if tick_sessions is not None else demo.tick_sessions
    if n_ticks < 0:
        raise ValueError(f"tick sessions must be zero or more, not {n_ticks}")
    market = SyntheticMarket(config)
    lake = Lake(settings.lake_path)
    n_sessions = len(market.sessions())
    n_ticks = min(n_ticks, n_sessions)
    began = time.perf_counter()
    with _progress(console, show_progress) as progress:
        tasks = {
            "bars": progress.add_task("1-minute bars (sessions)", total=n_sessions),
            "trades": progress.add_task("trades (sessions)", total=n_ticks),
            "quotes": progress.add_task("L1 quotes (sessions)", total=n_ticks),
        }
        ingest = ingest_synthetic(
            market,
            lake,
            tick_sessions=n_ticks,
            progress=lambda task, n: progress.advance(tasks[task], n),
        )
    result = GenerateResult(
        lake=lake.root,
        seed=config.seed,
        symbols=market.symbols,
        ingest=ingest,
        seconds=time.perf_counter() - began,
    )
    stamp = datetime.fromtimestamp(time.time()).strftime("%Y%m%d-%H%M%S")
    report_dir = Path(settings.reports_path) / "quality" / f"generate-{stamp}"
    for kind, outcome in ingest.results.items():
        result.reports[kind.value] = _write_report(
            outcome.report, report_dir, kind.value, settings.data.quality_threshold
        )
    return result


def _write_report(
    report: QualityReport, directory: Path, name: str, threshold: float
) -> dict[str, Path]:
    return {
        "json": report.write_json(directory / f"{name}.json"),
        "html": report.write_html(directory / f"{name}.html", threshold=threshold),
    }


@dataclass
class ValidateOutcome:
    report: QualityReport
    json_path: Path
    html_path: Path
    quarantine_path: Path | None = None


def validate_data(
    settings: Settings,
    *,
    kind: str,
    symbols: list[str] | None,
    start: date | datetime | None,
    end: date | datetime | None,
    file: Path | None,
    market_rules: bool,
    calendar: str,
    report_dir: Path | None,
    show_progress: bool,
    console: Console,
) -> ValidateOutcome:
    """Validate a Parquet file or what the lake holds, and write the quality report.

    The lake only receives validated rows, so validating it again is an audit (after a rule
    change, say): the report is written, the lake is left as it is. A file's rejected rows are
    written next to its report as ``quarantine.parquet``.
    """
    data_kind = parse_kind(kind)
    config = validation_config(market_rules, calendar)
    stamp = datetime.fromtimestamp(time.time()).strftime("%Y%m%d-%H%M%S")
    directory = report_dir or Path(settings.reports_path) / "quality" / f"validate-{stamp}"
    lake = Lake(settings.lake_path)
    quarantined: list[pl.DataFrame] = []

    def keep_rejects(_clean: pl.DataFrame, rejects: pl.DataFrame) -> None:
        if rejects.height:
            quarantined.append(rejects)

    if file is not None:
        if not file.exists():
            raise FileNotFoundError(f"no such file: {file}")
        with _progress(console, show_progress) as progress:
            task = progress.add_task(f"validating {file.name}", total=None)
            result = validate_parquet(file, data_kind, config, sink=keep_rejects)
            progress.update(task, total=1, completed=1)
    else:
        frame = lake.scan(data_kind, symbols, start, end)
        parts = (
            frame.select("symbol", pl.col("ts").dt.date().alias("day"))
            .unique()
            .sort("symbol", "day")
            .collect()
        )
        if parts.is_empty():
            raise ValueError(f"no {data_kind} in the lake for the requested symbols and range")
        actions = lake.read_corporate_actions(symbols)
        with _progress(console, show_progress) as progress:
            task = progress.add_task(f"validating {data_kind} (symbols)", total=None)
            result = validate_stream(
                _symbol_chunks(frame, parts, progress, task),
                data_kind,
                config,
                sink=keep_rejects,
                corporate_actions=actions if actions.height else None,
                source_label=f"lake {lake.root}",
                synthetic=_is_synthetic(parts),
            )
    paths = _write_report(
        result.report, directory, data_kind.value, settings.data.quality_threshold
    )
    quarantine_path = None
    if quarantined:
        quarantine_path = directory / "quarantine.parquet"
        pl.concat(quarantined, how="diagonal_relaxed").write_parquet(quarantine_path)
    return ValidateOutcome(result.report, paths["json"], paths["html"], quarantine_path)


def validation_config(market_rules: bool, calendar: str) -> ValidationConfig:
    """BIST rules, or (for other markets) the rules without tick grid, band and phases."""
    cal = None if calendar.lower() == "none" else calendar
    return ValidationConfig(calendar=cal) if market_rules else ValidationConfig.non_bist(cal)


def _symbol_chunks(frame: pl.LazyFrame, parts: pl.DataFrame, progress: Progress, task: Any):
    """Stream the lake symbol by symbol so memory stays bounded by one symbol's history."""
    names = parts.get_column("symbol").unique(maintain_order=True).to_list()
    progress.update(task, total=len(names))
    for name in names:
        yield frame.filter(pl.col("symbol") == name).collect()
        progress.advance(task)


def _is_synthetic(parts: pl.DataFrame) -> bool:
    """Synthetic symbols are named SYNnn; the report then says so prominently."""
    names = parts.get_column("symbol").unique().to_list()
    return bool(names) and all(n.startswith("SYN") for n in names)


def run_demo(
    settings: Settings,
    *,
    symbols: int | None = None,
    sessions: int | None = None,
    tick_sessions: int | None = None,
    seed: int | None = None,
    console: Console,
) -> Path:
    """The main job at this stage: synthetic market -> validation -> lake -> quality report."""
    console.rule("[bold]BIST Smart Trader demo[/] (synthetic data)")
    console.print("step 1/2: generate the synthetic BIST market and validate it into the lake")
    result = generate_market(
        settings,
        symbols=symbols,
        sessions=sessions,
        tick_sessions=tick_sessions,
        seed=seed,
        console=console,
    )
    result.print(console, settings.data.quality_threshold)
    console.print("step 2/2: write the demo report")
    report = Path(settings.reports_path) / "demo" / "summary.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    summary = result.as_dict() | {
        "quality_threshold": settings.data.quality_threshold,
        "quality_passed": result.passed(settings.data.quality_threshold),
    }
    tmp = report.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(report)
    if not summary["quality_passed"]:
        raise ValueError(
            f"synthetic data scored under {settings.data.quality_threshold}: see {report}"
        )
    return report
