"""The jobs behind the CLI: generate, validate and the demo, with progress on a Rich console.

Kept apart from ``cli.py`` so that argument parsing stays thin and these jobs can be called
from tests, notebooks and (later) Ray jobs the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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
    from quant.models.explanations import Explanation
    from quant.models.registry import ModelVersion
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
    asha, budget = outcome.config.asha, outcome.config.time_budget_s is not None
    stopped = (
        "stopped early (ASHA or the time budget)"
        if asha and budget
        else "pruned by ASHA"
        if asha
        else "stopped by the time budget"
    )
    console.print(
        f"sweep [bold]{outcome.name}[/]{' (resumed)' if outcome.resumed else ''} ran "
        f"{len(outcome.trials)} trials ({counts['complete']} complete, {counts['pruned']} "
        f"{stopped}, {counts['errored']} failed) in {outcome.seconds:.1f} s, "
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


# ------------------------------------------------------------------------------------- demo

DEMO_STRATEGY = "momentum"
DEMO_PARAMETERS: dict[str, Any] = {"lookback": 20, "holding": 5, "top_k": 5, "rebalance": 1}
"""The demo backtests cross-sectional momentum: a daily rebalance of the five best symbols of
the last 20 sessions, each cohort held five sessions, with BIST costs."""

DEMO_SHAP_ROWS = 2000
"""Samples the demo's SHAP summary explains (a seeded draw from the model's training samples):
enough for a stable mean |SHAP| and a readable beeswarm, under a second of TreeSHAP."""

DSR_SIGNIFICANT = 0.95
"""A deflated Sharpe ratio at or above this is significant at 5% after the search."""


@dataclass
class ResearchOutcome:
    """The demo's research step: the sweep, the promoted model, its SHAP summary, the report
    sections built from them."""

    sweep: SweepOutcome
    production: ModelVersion | None
    explanation: Explanation | None
    shap_rows: int
    searched: list[str]
    sections: list[tuple[str, str]]
    seconds: float

    @property
    def significant(self) -> bool:
        dsr = self.sweep.selection.deflated_sharpe
        return dsr is not None and dsr >= DSR_SIGNIFICANT

    def verdict(self) -> str:
        """One plain sentence on what the selection is worth."""
        selection = self.sweep.selection
        dsr = _figure(selection.deflated_sharpe, "num")
        if self.significant:
            return (
                f"deflated Sharpe {dsr} >= {DSR_SIGNIFICANT}: the selected trial's out-of-sample "
                f"Sharpe ratio after costs survives the search over {selection.n_trials} trials"
            )
        return (
            f"deflated Sharpe {dsr} < {DSR_SIGNIFICANT}: after deflating for the "
            f"{selection.n_trials} trials tried, the selected trial's out-of-sample Sharpe ratio "
            "is not significant: on a real market it would not be promoted (the demo promotes it "
            "so that the later steps have a production model to run)"
        )

    def as_dict(self) -> dict[str, Any]:
        out = self.sweep.as_dict()
        out["searched"] = self.searched
        out["significant"] = self.significant
        out["verdict"] = self.verdict()
        out["production"] = (
            None
            if self.production is None
            else {
                "name": self.production.name,
                "version": self.production.version,
                "stage": self.production.stage,
                "registry": self.sweep.registry_path,
            }
        )
        if self.explanation is not None:
            imp = self.explanation.global_importance()
            out["shap"] = {
                "method": self.explanation.method,
                "output": self.explanation.output,
                "rows": self.shap_rows,
                "mean_abs_shap": dict(
                    zip(imp["feature"].to_list(), imp["mean_abs_shap"].to_list(), strict=True)
                ),
            }
        out["report_sections"] = [title for title, _ in self.sections]
        out["step_seconds"] = round(self.seconds, 2)
        return out


def demo_sweep_config(settings: Settings, market: GenerateResult, name: str) -> SweepConfig:
    """The demo's sweep: the default search space (tree count capped), walk-forward folds."""
    from quant.research.params import DEFAULT_SEARCH_SPACE
    from tune.sweep import SweepConfig

    r = settings.demo.research
    days = market.ingest.bar_sessions
    space = dict(DEFAULT_SEARCH_SPACE)
    low = min(50, r.max_estimators)
    space["n_estimators"] = ("int", low, max(low, r.max_estimators), 50)
    return SweepConfig(
        symbols=market.symbols,
        start=days[0],
        end=days[-1] + timedelta(days=1),
        bar_interval=r.bar_interval,
        space=space,
        num_samples=r.trials,
        cv="walk_forward",
        n_splits=r.n_splits,
        pct_embargo=r.pct_embargo,
        costs="bist",
        asha=r.asha,
        seed=r.seed,
        time_budget_s=r.time_budget_s,
        name=name,
        model_name=r.model_name,
    )


def _demo_sweep_name(settings: Settings) -> str:
    """``demo-<stamp>``: every demo run is its own sweep (a rerun never collides)."""
    stamp = datetime.fromtimestamp(time.time()).strftime("%Y%m%d-%H%M%S")
    storage = settings.storage_path or ""
    name, k = f"demo-{stamp}", 1
    while "://" not in storage and (Path(storage) / name).exists():
        k += 1
        name = f"demo-{stamp}-{k}"
    return name


def explain_winner(sweep: SweepOutcome, rows: int = DEMO_SHAP_ROWS) -> tuple[Explanation, int]:
    """SHAP values of the registered model on a seeded draw of its training samples."""
    import numpy as np

    from quant.models.explanations import explain

    if sweep.final_model is None or sweep.dataset is None:
        raise ValueError("the sweep registered no model to explain")
    params = sweep.winner_params
    samples = sweep.dataset.samples(params)
    n = len(samples)
    rng = np.random.default_rng(params.seed)
    take = np.sort(rng.choice(n, size=min(rows, n), replace=False))
    X = samples.X[take]
    background = X.head(100)
    return explain(sweep.final_model, X, background=background), int(take.size)


def promote_to_production(sweep: SweepOutcome, reason: str) -> ModelVersion:
    """The registered candidate through staging to production (what the replay loads)."""
    from datetime import UTC

    from quant.models.registry import ModelRegistry

    if sweep.registered is None or sweep.registry_path is None:
        raise ValueError("the sweep registered no model to promote")
    registry = ModelRegistry(sweep.registry_path)
    name, version = sweep.registered.name, sweep.registered.version
    registry.promote(name, version, "staging", at=datetime.now(UTC), reason=reason)
    return registry.promote(name, version, "production", at=datetime.now(UTC), reason=reason)


def run_research_demo(
    settings: Settings, market: GenerateResult, *, show_progress: bool = True, console: Console
) -> ResearchOutcome:
    """The research step: a small walk-forward sweep on Ray Tune + Optuna, the winner chosen
    by deflated Sharpe (PBO reported), retrained, registered, promoted and explained.

    Leaves Ray running (``run_demo`` stops it at the end, after any later step that uses it).
    """
    from quant.report.research import SECTION_OOS, SECTION_SHAP, SECTION_TRIALS, research_sections

    r = settings.demo.research
    began = time.perf_counter()
    config = demo_sweep_config(settings, market, _demo_sweep_name(settings))
    console.print(
        f"walk-forward sweep [bold]{config.name}[/]: {config.num_samples} trials (Optuna TPE, "
        f"seed {config.seed}) over {', '.join(config.space)}; {config.n_splits} purged "
        f"walk-forward folds (embargo {config.pct_embargo:.0%}), {config.bar_interval} research "
        f"bars, out-of-sample backtests on 1-minute bars with BIST costs"
        + (f"; time budget {config.time_budget_s:.0f} s" if config.time_budget_s else ""),
        highlight=False,
    )
    sweep = run_sweep(settings, config, show_progress=show_progress, console=console)
    print_sweep(sweep, console)

    production = None
    if r.promote and sweep.registered is not None:
        production = promote_to_production(
            sweep, "demo: the selected model, promoted for the replay on the synthetic market"
        )
        console.print(
            f"promoted [bold]{production.name} v{production.version}[/] to production "
            f"(registry {sweep.registry_path})"
        )

    explanation, shap_rows = None, 0
    if sweep.final_model is not None:
        with _progress(console, show_progress) as progress:
            task = progress.add_task("SHAP summary", total=1)
            explanation, shap_rows = explain_winner(sweep)
            progress.advance(task)
        top = explanation.global_importance().head(5)
        console.print(
            "SHAP (mean |SHAP|, top 5): "
            + ", ".join(
                f"{f} {v:.3f}"
                for f, v in zip(
                    top["feature"].to_list(), top["mean_abs_shap"].to_list(), strict=True
                )
            ),
            highlight=False,
        )

    selection = sweep.selection
    model_text = (
        f"Registered as {sweep.registered.name} v{sweep.registered.version}"
        + (" and promoted to production" if production is not None else " (candidate)")
        + f" in {sweep.registry_path}."
        if sweep.registered is not None
        else "Not registered."
    )
    counts = sweep.counts()
    notes = {
        SECTION_OOS: (
            f"Synthetic market. Selected Tune trial {sweep.winner.tune_trial_id} (parameter set "
            f"{selection.best.trial_id}) among {counts['complete']} complete trials "
            f"({selection.n_trials} tried). {model_text} Verdict: {_verdict_text(selection)}."
        ),
        SECTION_TRIALS: (
            f"Sweep {sweep.name}: {counts['complete']} complete, {counts['pruned']} stopped "
            f"early, {counts['errored']} failed, in {sweep.seconds:.0f} s with "
            f"{sweep.max_concurrent} trials at a time. Results: {sweep.path}."
        ),
        SECTION_SHAP: (
            f"The registered model (retrained on the whole window), explained on {shap_rows:,} "
            "of its training samples."
        ),
    }
    sections = research_sections(
        selection,
        sweep.table,
        [t.result for t in sweep.trials if t.result is not None],
        explanation,
        searched=list(config.space),
        notes=notes,
    )
    outcome = ResearchOutcome(
        sweep=sweep,
        production=production,
        explanation=explanation,
        shap_rows=shap_rows,
        searched=list(config.space),
        sections=sections,
        seconds=time.perf_counter() - began,
    )
    colour = "green" if outcome.significant else "yellow"
    pbo = selection.pbo
    console.print(
        f"[bold]selected[/] trial {sweep.winner.tune_trial_id} "
        f"({_params_line(selection.best.params.model_dump(mode='json'), config.space)}): "
        f"out-of-sample Sharpe after costs {_figure(selection.best.sharpe_annual, 'num')} "
        f"(annualised), [bold]deflated Sharpe {_figure(selection.deflated_sharpe, 'num')}[/], "
        f"[bold]PBO {_figure(pbo, 'num') if pbo is not None else 'n/a'}[/]"
        + ("" if pbo is not None else f" ({selection.pbo_note})"),
        highlight=False,
    )
    console.print(f"[{colour}]{outcome.verdict()}[/]", highlight=False)
    return outcome


def _verdict_text(selection: Any) -> str:
    dsr = selection.deflated_sharpe
    if dsr is not None and dsr >= DSR_SIGNIFICANT:
        return f"deflated Sharpe {dsr:.3f}, significant after the search"
    shown = "n/a" if dsr is None else f"{dsr:.3f}"
    return f"deflated Sharpe {shown}, not significant after the search"


def _params_line(params: dict[str, Any], names: Any) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        if isinstance(value, list | tuple):
            return "/".join(shown(v) for v in value)
        return str(value)

    return ", ".join(f"{name}={shown(params.get(name))}" for name in names)


@dataclass
class DemoRun:
    """What the demo's steps produced so far; each step reads and adds to it."""

    settings: Settings
    console: Console
    symbols: int | None = None
    sessions: int | None = None
    tick_sessions: int | None = None
    seed: int | None = None
    market: GenerateResult | None = None
    quality_passed: bool = False
    research: ResearchOutcome | None = None
    backtest: BacktestOutcome | None = None
    report_html: Path | None = None
    halted: str | None = None
    """Why the remaining steps do not run (they are listed as skipped)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further steps' results for ``summary.json`` (JSON-ready), by step key."""
    started: float = field(default_factory=time.perf_counter)

    def summary(self) -> dict[str, Any]:
        market = self.market.as_dict() if self.market is not None else {}
        return (
            market
            | {
                "quality_threshold": self.settings.data.quality_threshold,
                "quality_passed": self.quality_passed,
                "research": self.research.as_dict() if self.research is not None else None,
                "backtest": self.backtest.as_dict() if self.backtest is not None else None,
                "report_html": str(self.report_html) if self.report_html else None,
                "halted": self.halted,
                "demo_seconds": round(time.perf_counter() - self.started, 1),
            }
            | self.extra
        )


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo: a title for the console and a function of the run.

    ``always`` steps (the report) run even after an earlier step halted the demo.
    """

    key: str
    title: str
    run: Callable[[DemoRun], None]
    always: bool = False


def _step_market(run: DemoRun) -> None:
    result = generate_market(
        run.settings,
        symbols=run.symbols,
        sessions=run.sessions,
        tick_sessions=run.tick_sessions,
        seed=run.seed,
        console=run.console,
    )
    result.print(run.console, run.settings.data.quality_threshold)
    run.market = result
    run.quality_passed = result.passed(run.settings.data.quality_threshold)
    if not run.quality_passed:
        run.halted = f"synthetic data scored under {run.settings.data.quality_threshold}"


def _step_research(run: DemoRun) -> None:
    assert run.market is not None
    run.research = run_research_demo(run.settings, run.market, console=run.console)


def _step_backtest(run: DemoRun) -> None:
    assert run.market is not None
    days = run.market.ingest.bar_sessions
    run.console.print(
        f"{DEMO_STRATEGY} on the synthetic market with BIST costs ({days[0]} to {days[-1]})"
    )
    run.backtest = run_backtest(
        run.settings,
        strategy=DEMO_STRATEGY,
        symbols=run.market.symbols,
        start=days[0],
        end=days[-1] + timedelta(days=1),
        costs="bist",
        params=DEMO_PARAMETERS,
        console=run.console,
    )
    run.backtest.print(run.console)
    if run.backtest.result.error:
        run.halted = f"the demo backtest stopped early: {run.backtest.result.error}"


DEMO_MIN_ORDERS = 10
"""Below this many orders from the production model, the replay is run again with the
momentum rule, so the demo also compares orders and fills, not only signals."""


def _step_paper(run: DemoRun) -> None:
    """Replay the lake's last recorded day through the actors and check parity with its
    backtest: the production model first (what ``paper start`` would trade); if it barely
    trades that day, the momentum rule as well, so orders and fills are compared too."""
    from actors import parity
    from actors.pipeline import model_spec, paper_config
    from cluster.runtime import start_ray

    settings = run.settings
    start_ray(settings)
    config = paper_config(settings, detached=True)
    spec = model_spec(settings)
    runs = [("production model" if spec["kind"] == "registry" else "momentum rule", config)]
    reports: list[dict[str, Any]] = []
    sections: list[tuple[str, str]] = []
    for k, (label, cfg) in enumerate(runs):
        run.console.print(
            f"paper replay of {cfg.day} through the actors ({len(cfg.symbols)} symbols, "
            f"{label}), as fast as backpressure allows"
        )
        live, _, report = parity.replay_parity(cfg, run.console)
        parity.print_parity(report, run.console, limit=10)
        tag = "production" if label.startswith("production") else "momentum"
        paths = parity.write_parity(report, Path(settings.reports_path) / "paper", tag)
        reports.append(
            {
                "label": label,
                "model": report.info.get("model"),
                "headline": report.headline(),
                "replay_seconds": round(live.seconds, 1),
                "files": [str(p) for p in paths],
                **{key: v for key, v in report.as_dict().items() if key != "differences"},
                "differences": len(report.differences),
            }
        )
        sections.append(
            (
                f"Paper replay and parity: {label} ({report.info.get('model')})",
                parity.parity_html(report),
            )
        )
        if k == 0 and spec["kind"] == "registry" and report.orders_live < DEMO_MIN_ORDERS:
            run.console.print(
                f"the production model sent {report.orders_live} order(s) on {cfg.day}: the "
                "momentum rule replays the day as well, so orders and fills are compared"
            )
            momentum = paper_config(settings, cfg.day, detached=True, model={"kind": "momentum"})
            momentum.journal_path = str(
                Path(cfg.journal_path).with_name(Path(cfg.journal_path).stem + "-momentum.sqlite")
            )
            runs.append(("momentum rule", momentum))
    run.extra["paper"] = {"day": config.day.isoformat(), "runs": reports}
    run.extra["_paper_sections"] = sections
    failed = [r for r in reports if not r["passed"]]
    if failed:
        run.halted = (
            f"the paper replay of {config.day} is {failed[0]['identical_share']:.2%} identical to "
            f"its backtest ({failed[0]['label']}), under the {parity.PARITY_TARGET:.0%} target"
        )


def _step_report(run: DemoRun) -> None:
    paper_sections = run.extra.pop("_paper_sections", [])
    directory = Path(run.settings.reports_path) / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    if run.backtest is not None:
        from quant.report import write_tearsheet

        sections = list(run.research.sections) if run.research is not None else []
        sections += paper_sections
        run.report_html = write_tearsheet(
            run.backtest.result,
            directory / "report.html",
            title=f"BIST Smart Trader demo: {DEMO_STRATEGY} backtest and research",
            extra_sections=sections,
        )
        run.console.print(f"demo report (backtest, out-of-sample results, SHAP): {run.report_html}")
    summary = directory / "summary.json"
    tmp = summary.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run.summary(), indent=2, default=str))
    tmp.replace(summary)
    run.extra["summary_path"] = str(summary)


def demo_steps(settings: Settings) -> list[DemoStep]:
    """The demo's steps in order; a later stage adds its step here (before the report)."""
    steps = [
        DemoStep(
            "market",
            "generate the synthetic BIST market and validate it into the lake",
            _step_market,
        ),
    ]
    if settings.demo.research.enabled:
        steps.append(
            DemoStep(
                "research",
                "research: walk-forward sweep on Ray Tune + Optuna, selection by deflated "
                "Sharpe, registration",
                _step_research,
            )
        )
    steps += [
        DemoStep("backtest", "backtest the reference strategy", _step_backtest),
        DemoStep(
            "paper",
            "paper trading: replay a recorded day through the Ray actors and check parity "
            "with its backtest",
            _step_paper,
        ),
        DemoStep("report", "write the demo report", _step_report, always=True),
    ]
    return steps


def run_demo(
    settings: Settings,
    *,
    symbols: int | None = None,
    sessions: int | None = None,
    tick_sessions: int | None = None,
    seed: int | None = None,
    console: Console,
    steps: list[DemoStep] | None = None,
) -> Path:
    """The main job at this stage: synthetic market -> validation -> lake -> quality report ->
    research sweep (walk-forward, Ray Tune + Optuna) -> selection by deflated Sharpe with PBO ->
    retrained winner registered and promoted -> SHAP -> cost-aware backtest of a reference
    strategy -> the report (tearsheet with the research sections) and ``summary.json``.

    Returns the path of ``summary.json``. Raises ``ValueError`` (after the summary is written)
    when a step halted the demo. Stops the embedded Ray a step started.
    """
    run = DemoRun(settings, console, symbols, sessions, tick_sessions, seed)
    steps = steps if steps is not None else demo_steps(settings)
    console.rule("[bold]BIST Smart Trader demo[/] (synthetic data)")
    try:
        for k, step in enumerate(steps, start=1):
            if run.halted is not None and not step.always:
                console.print(f"step {k}/{len(steps)}: {step.title}: skipped ({run.halted})")
                continue
            console.print(f"[bold]step {k}/{len(steps)}:[/] {step.title}")
            step.run(run)
    finally:
        _stop_ray_if_started()
    console.print(f"demo finished in {time.perf_counter() - run.started:.0f} s")
    if run.halted is not None:
        raise ValueError(f"{run.halted}: see {run.extra.get('summary_path')}")
    return Path(run.extra["summary_path"])


def _stop_ray_if_started() -> None:
    """Stop Ray if a step started it in this process (importing Ray just to check costs a
    second, so an untouched Ray module means there is nothing to stop)."""
    import sys

    if "ray" in sys.modules:
        from cluster.runtime import stop_ray

        stop_ray()
