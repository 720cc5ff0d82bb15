"""The jobs behind the CLI: generate, validate and the demo, with progress on a Rich console.

Kept apart from ``cli.py`` so that argument parsing stays thin and these jobs can be called
from tests, notebooks and (later) Ray jobs the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from quant.sim.result import BacktestResult
    from tune.sweep import SweepConfig, SweepOutcome


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


# --------------------------------------------------------------------------------- backtest

HEADLINE_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("total_return", "total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("sharpe_ratio", "Sharpe ratio", "num"),
    ("max_drawdown", "max drawdown", "pct"),
    ("round_trips", "trades (round trips)", "int"),
    ("fills", "fills", "int"),
    ("fees", "fees (TRY)", "try"),
    ("rejects", "rejected orders", "int"),
    ("final_equity", "final equity (TRY)", "try"),
)


def _figure(value: float, kind: str) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "try":
        return f"{value:,.2f}"
    return f"{value:.2f}"


@dataclass
class BacktestOutcome:
    """A finished backtest: its result, where it was written and how long it took."""

    result: BacktestResult
    directory: Path
    tearsheet: Path
    seconds: float

    @property
    def bars_per_second(self) -> float:
        bars = float(self.result.extra.get("bars", 0))
        return bars / self.seconds if self.seconds > 0 else float("nan")

    def headline(self) -> dict[str, float]:
        return {key: self.result.stats.get(key, float("nan")) for key, _, _ in HEADLINE_FIGURES}

    def as_dict(self) -> dict[str, Any]:
        summary = self.result.to_json_summary()
        return {
            "strategy": self.result.strategy,
            "synthetic": self.result.synthetic,
            "error": self.result.error,
            "directory": str(self.directory),
            "tearsheet": str(self.tearsheet),
            "headline": {k: summary["stats"].get(k) for k, _, _ in HEADLINE_FIGURES},
            "sessions": summary.get("sessions"),
            "first_day": summary.get("first_day"),
            "last_day": summary.get("last_day"),
            "bars": summary.get("bars"),
            "seconds": round(self.seconds, 2),
            "bars_per_second": round(self.bars_per_second),
        }

    def print(self, console: Console) -> None:
        r = self.result
        label = "[bold]SYNTHETIC[/] market, " if r.synthetic else ""
        console.print(
            f"{label}strategy [bold]{r.strategy}[/], {r.extra.get('first_day')} to "
            f"{r.extra.get('last_day')} ({r.extra.get('sessions')} sessions, "
            f"{r.extra.get('bars', 0):,} bars in {self.seconds:.1f} s, "
            f"{self.bars_per_second:,.0f} bars/s)"
        )
        table = Table(title="backtest headline figures")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key, label_text, kind in HEADLINE_FIGURES:
            table.add_row(label_text, _figure(r.stats.get(key, float("nan")), kind))
        console.print(table)
        if r.error:
            console.print(f"[bold red]the run stopped early:[/] {r.error}", highlight=False)
        console.print(f"tearsheet: {self.tearsheet}")
        console.print(f"results: {self.directory}")


def _parse_param(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def strategy_parameters(items: list[str] | None) -> dict[str, Any]:
    """``NAME=VALUE`` pairs (values as JSON when they parse: 20, 0.5, true) to a dict."""
    params: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param takes NAME=VALUE, not {item!r}")
        params[name.strip()] = _parse_param(value.strip())
    return params


def _run_directory(reports: Path, name: str) -> Path:
    stamp = datetime.fromtimestamp(time.time()).strftime("%Y%m%d-%H%M%S")
    base = reports / "backtests" / f"{name}-{stamp}"
    directory, k = base, 1
    while directory.exists():
        k += 1
        directory = base.with_name(f"{base.name}-{k}")
    return directory


def run_backtest(
    settings: Settings,
    *,
    strategy: str,
    symbols: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    costs: str = "bist",
    capital: float = 1_000_000.0,
    params: dict[str, Any] | None = None,
    session_rules: str = "exchange",
    fast: bool = False,
    show_progress: bool = True,
    console: Console,
) -> BacktestOutcome:
    """Backtest a registered strategy on the lake, write its results and tearsheet.

    Results go to ``reports/backtests/<strategy>-<stamp>/`` (Parquet frames, ``summary.json``
    and ``tearsheet.html``). Raises ``ValueError`` with one line for an unknown strategy or
    parameter, unknown symbols, an empty range or a bad setting; a strategy that raises does
    not: its error is in the result (and printed), and what ran up to it is written.
    """
    from pydantic import ValidationError

    from quant.report.tearsheet import write_tearsheet
    from quant.sim.backtest import BacktestConfig, source_for
    from quant.sim.backtest import run_backtest as backtest_engine
    from quant.sim.fast import run_fast
    from quant.strategies import make_strategy

    if costs not in ("bist", "none"):
        raise ValueError(f"--costs must be 'bist' or 'none', not {costs!r}")
    if session_rules not in ("exchange", "bars"):
        raise ValueError(f"--session-rules must be 'exchange' or 'bars', not {session_rules!r}")
    if start is not None and end is not None and start >= end:
        raise ValueError(f"empty date range: --from {start} is not before --to {end}")
    try:
        strat = make_strategy(strategy, **(params or {}))
    except TypeError as exc:
        raise ValueError(f"bad parameters for strategy {strategy!r}: {exc}") from None
    if fast:
        from quant.sim.fast import check_fast_strategy

        try:
            check_fast_strategy(strat)
        except TypeError as exc:
            raise ValueError(f"--fast: {exc}") from None
    try:
        config = BacktestConfig(
            start=start,
            end=end,
            symbols=symbols,
            initial_cash=capital,
            costs=costs,
            session_rules=session_rules,
            name=strategy,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"bad backtest setting {where}: {first['msg']}") from None
    # the source checks symbols and range before any progress is shown (one-line errors)
    source = source_for(Lake(settings.lake_path), config)
    total = None
    if start is not None and end is not None:
        from quant.market.calendar import TradingCalendar

        try:
            total = len(TradingCalendar().sessions(start, end - timedelta(days=1)))
        except ValueError:
            total = None
    began = time.perf_counter()
    with _progress(console, show_progress) as progress:
        task = progress.add_task(f"backtest {strategy} (sessions)", total=total)

        def advance(_day: date) -> None:
            progress.advance(task)

        runner = run_fast if fast else backtest_engine
        result = runner(config, strat, source, progress=advance)  # type: ignore[arg-type]
        done = len(result.daily)
        progress.update(task, total=done, completed=done)
    seconds = time.perf_counter() - began
    directory = _run_directory(Path(settings.reports_path), strategy)
    result.save(directory)
    tearsheet = write_tearsheet(result, directory / "tearsheet.html")
    return BacktestOutcome(result, directory, tearsheet, seconds)


DEMO_STRATEGY = "momentum"
DEMO_PARAMETERS: dict[str, Any] = {"lookback": 20, "holding": 5, "top_k": 5, "rebalance": 1}
"""The demo backtests cross-sectional momentum: a daily rebalance of the five best symbols of
the last 20 sessions, each cohort held five sessions, with BIST costs."""


def run_demo(
    settings: Settings,
    *,
    symbols: int | None = None,
    sessions: int | None = None,
    tick_sessions: int | None = None,
    seed: int | None = None,
    console: Console,
) -> Path:
    """The main job at this stage: synthetic market -> validation -> lake -> quality report ->
    cost-aware backtest of a reference strategy -> tearsheet."""
    console.rule("[bold]BIST Smart Trader demo[/] (synthetic data)")
    console.print("step 1/3: generate the synthetic BIST market and validate it into the lake")
    result = generate_market(
        settings,
        symbols=symbols,
        sessions=sessions,
        tick_sessions=tick_sessions,
        seed=seed,
        console=console,
    )
    result.print(console, settings.data.quality_threshold)
    quality_passed = result.passed(settings.data.quality_threshold)
    backtest: BacktestOutcome | None = None
    if quality_passed:
        days = result.ingest.bar_sessions
        console.print(
            f"step 2/3: backtest {DEMO_STRATEGY} on the synthetic market with BIST costs "
            f"({days[0]} to {days[-1]})"
        )
        backtest = run_backtest(
            settings,
            strategy=DEMO_STRATEGY,
            symbols=result.symbols,
            start=days[0],
            end=days[-1] + timedelta(days=1),
            costs="bist",
            params=DEMO_PARAMETERS,
            console=console,
        )
        backtest.print(console)
    console.print("step 3/3: write the demo report")
    report = Path(settings.reports_path) / "demo" / "summary.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    summary = result.as_dict() | {
        "quality_threshold": settings.data.quality_threshold,
        "quality_passed": quality_passed,
        "backtest": backtest.as_dict() if backtest is not None else None,
    }
    tmp = report.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(report)
    if not quality_passed:
        raise ValueError(
            f"synthetic data scored under {settings.data.quality_threshold}: see {report}"
        )
    if backtest is not None and backtest.result.error:
        raise ValueError(f"the demo backtest stopped early: {backtest.result.error}")
    return report


# ------------------------------------------------------------------------------------ sweep


def run_sweep(
    settings: Settings,
    config: SweepConfig,
    *,
    resume: bool = False,
    show_progress: bool = True,
    console: Console,
) -> SweepOutcome:
    """A research sweep (``tune.sweep.run_sweep``) with a progress bar over its trials.

    Tune's own console reporter is silenced; the bar advances as trials finish and shows the
    best complete score so far. Starts the embedded Ray (or joins the configured cluster) and
    leaves it running: the caller decides when to stop it.
    """
    from tune.sweep import SweepProgress
    from tune.sweep import run_sweep as tune_sweep

    progress = Progress(  # transient: a refused setting leaves no bar above its error
        SpinnerColumn(),
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not show_progress,
        transient=True,
    )
    with progress:
        task = progress.add_task("sweep trials", total=config.n_trials)

        def on_progress(p: SweepProgress) -> None:
            best = "" if p.best_score is None else f" (best {p.best_score:.2f})"
            failed = f" {p.errored} failed" if p.errored else ""
            progress.update(
                task,
                total=p.total,
                completed=p.finished,
                description=f"sweep trials{best}{failed}",
            )

        return tune_sweep(settings, config, resume=resume, progress=on_progress)


def print_sweep(outcome: SweepOutcome, console: Console) -> None:
    """The sweep's trials, its selection (DSR, PBO) and the registered winner."""
    counts = outcome.counts()
    console.print(
        f"sweep [bold]{outcome.name}[/]{' (resumed)' if outcome.resumed else ''} ran "
        f"{len(outcome.trials)} trials ({counts['complete']} complete, {counts['pruned']} "
        f"pruned by ASHA, {counts['errored']} failed) in {outcome.seconds:.1f} s, "
        f"{outcome.max_concurrent} at a time"
    )
    table = Table(title="trials (best first)")
    for column in ("trial", "status", "score", "sharpe", "return", "trades", "folds", "failures"):
        table.add_column(column, justify="left" if column in ("trial", "status") else "right")
    for row in outcome.table.iter_rows(named=True):
        table.add_row(
            row["tune_trial_id"],
            row["status"],
            _figure(row["score"], "num"),
            _figure(row["sharpe"], "num"),
            _figure(row["total_return"], "pct"),
            _figure(row["trades"], "int"),
            f"{row['folds_done']}/{row['n_folds']}",
            str(row["failures"]),
        )
    console.print(table)
    selection = outcome.selection
    dsr, pbo = selection.deflated_sharpe, selection.pbo
    console.print(
        f"selection over {selection.n_trials} trials: winner {outcome.winner.tune_trial_id} "
        f"(annualised Sharpe after costs {_figure(selection.best.sharpe_annual, 'num')}), "
        f"deflated Sharpe {_figure(dsr, 'num')}, PBO "
        f"{_figure(pbo, 'num') if pbo is not None else 'n/a (' + str(selection.pbo_note) + ')'}"
    )
    for error in outcome.errors:
        console.print(f"[red]failed[/] {error}", highlight=False)
    if outcome.registered is not None:
        console.print(
            f"registered [bold]{outcome.registered.name} v{outcome.registered.version}[/] as "
            f"candidate in {outcome.registry_path}"
        )
    console.print(f"results: {outcome.path}")
    console.print(outcome.result_line(), highlight=False)
