"""The ``smart-trader`` command line.

Commands are thin: they read settings, call the core, show progress and print results. Every
failure a user can cause (a missing file, a bad column, a bad config value) ends in one line on
stderr naming the problem and a non-zero exit; ``--json`` prints machine-readable results.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import polars as pl
import typer
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

from cluster.config import ConfigError, Settings, load_settings

app = typer.Typer(
    name="smart-trader",
    help="BIST Smart Trader: research, simulate and trade Borsa Istanbul equities on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Market data: generate, import, validate and list the lake.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]


class _State:
    config_file: Path | None = None


def settings() -> Settings:
    return load_settings(_State.config_file)


@app.callback()
def main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML settings file (default: none; SMART_TRADER_CONFIG also works).",
        ),
    ] = None,
) -> None:
    """BIST Smart Trader command line."""
    _State.config_file = config


def cli_errors(func: F) -> F:
    """Turn the errors a user can cause into one line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, click.exceptions.Exit, click.ClickException):
            raise
        except (ConfigError, ValueError, FileNotFoundError, PermissionError, OSError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Progress]:
    """A transient Rich progress bar on stderr (``--json`` output on stdout stays clean)."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not enabled,
        transient=True,
    )
    with progress:
        yield progress


def _emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2024-01-31, not {value!r}") from None


def _parse_time(value: str | None, name: str) -> datetime | date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date or ISO time, not {value!r}") from None


# ------------------------------------------------------------------------------------- data


@data_app.command("generate")
@cli_errors
def data_generate(
    symbols: Annotated[int | None, typer.Option(help="Number of synthetic symbols.")] = None,
    sessions: Annotated[
        int | None, typer.Option(help="Sessions of 1-minute bars (XIST trading days).")
    ] = None,
    tick_sessions: Annotated[
        int | None, typer.Option(help="Last sessions that also get trades and L1 quotes.")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First session (YYYY-MM-DD).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same market).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a synthetic BIST market, validate it and write it to the lake.

    The data obeys BIST's tick table, price bands and session phases; it is labelled synthetic
    wherever it is shown.
    """
    from cluster.pipeline import generate_market

    s = settings()
    result = generate_market(
        s,
        symbols=symbols,
        sessions=sessions,
        tick_sessions=tick_sessions,
        start=_parse_day(start, "--start"),
        seed=seed,
        show_progress=not as_json,
        console=err,
    )
    if as_json:
        _emit_json(result.as_dict())
        return
    result.print(out, s.data.quality_threshold)


@data_app.command("import")
@cli_errors
def data_import(
    path: Annotated[Path, typer.Argument(help="CSV, CSV.gz or Parquet file.")],
    kind: Annotated[str, typer.Option(help="trades, quotes or bars.")],
    symbol: Annotated[
        str | None, typer.Option(help="Symbol of a file without a symbol column.")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="Column mapping SOURCE=LAKE, e.g. --map DateTime=ts."),
    ] = None,
    tz: Annotated[str, typer.Option(help="Time zone of naive time stamps.")] = "Europe/Istanbul",
    layout: Annotated[
        str, typer.Option(help="long (a row per record) or wide (a close column per symbol).")
    ] = "long",
    timestamp_format: Annotated[
        str | None, typer.Option(help="strftime format of the time column, if not ISO.")
    ] = None,
    bar_interval: Annotated[
        str | None, typer.Option(help="Bar length for intraday bars without ts_end, e.g. 1m.")
    ] = None,
    market_rules: Annotated[
        bool,
        typer.Option(help="Apply BIST tick, band and session rules (off for non-BIST data)."),
    ] = True,
    calendar: Annotated[
        str, typer.Option(help="exchange_calendars name for holidays and gaps, or 'none'.")
    ] = "XIST",
    as_json: JsonOption = False,
) -> None:
    """Import a file into the lake through the quality rules.

    Rows that cannot be represented or that break a rule go to the quarantine with the rule's
    code and a reason; only the rest reach the lake, in one atomic write.
    """
    from cluster.pipeline import validation_config
    from quant.data.importer import import_file
    from quant.data.lake import Lake

    pairs = {}
    for item in mapping or []:
        src, sep, dst = item.partition("=")
        if not sep or not src or not dst:
            raise ValueError(f"--map takes SOURCE=LAKE, not {item!r}")
        pairs[src] = dst
    s = settings()
    with progress_bars(not as_json) as bars:
        task = bars.add_task(f"importing {path.name}", total=None)
        result = import_file(
            path,
            kind,
            Lake(s.lake_path),
            symbol=symbol,
            mapping=pairs or None,
            tz=tz,
            layout=layout,  # type: ignore[arg-type]
            timestamp_format=timestamp_format,
            bar_interval=bar_interval,
            validation=validation_config(market_rules, calendar),
        )
        bars.update(task, total=1, completed=1)
    payload = {
        "path": str(result.path),
        "kind": result.kind.value,
        "rows_read": result.rows_read,
        "rows_written": result.rows_written,
        "rows_duplicate": result.rows_duplicate,
        "rows_conflicting": result.rows_conflicting,
        "rows_quarantined": result.rows_quarantined,
        "symbols": list(result.symbols),
        "first_ts": result.first_ts,
        "last_ts": result.last_ts,
        "columns": result.columns,
        "close_only": result.close_only,
        "rules": dict(result.rules),
        "quality_score": result.quality.score if result.quality else None,
    }
    if as_json:
        _emit_json(payload)
        return
    out.print(
        f"imported {result.rows_written:,} new {result.kind.value} rows from {path} "
        f"({result.rows_read:,} read, {result.rows_duplicate:,} already in the lake, "
        f"{result.rows_quarantined + result.rows_conflicting:,} quarantined) for "
        f"{len(result.symbols)} symbol(s), {result.first_ts} to {result.last_ts}"
    )
    if result.close_only:
        out.print("close-only bars: open, high, low and vwap equal the close; volume is 0")
    if result.rules:
        out.print("quarantined by rule: " + ", ".join(f"{k} {v}" for k, v in result.rules.items()))


@data_app.command("validate")
@cli_errors
def data_validate(
    kind: Annotated[str, typer.Option(help="trades, quotes or bars.")] = "bars",
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: all).")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First day or time.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End day or time (exclusive).")] = None,
    file: Annotated[
        Path | None, typer.Option(help="Validate a Parquet file instead of the lake.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Minimum score per symbol-day (default from config).")
    ] = None,
    market_rules: Annotated[
        bool,
        typer.Option(help="Apply BIST tick, band and session rules (off for non-BIST data)."),
    ] = True,
    calendar: Annotated[str, typer.Option(help="exchange_calendars name for holidays.")] = "XIST",
    report_dir: Annotated[
        Path | None, typer.Option(help="Where the JSON and HTML reports go.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check data against the quality rules and write a quality report (JSON and HTML).

    Exits with status 1 when any symbol-day scores under the threshold.
    """
    from cluster.pipeline import validate_data

    s = settings()
    limit = s.data.quality_threshold if threshold is None else threshold
    if not 0 <= limit <= 100:
        raise ValueError(f"--threshold must be between 0 and 100, not {limit}")
    outcome = validate_data(
        s,
        kind=kind,
        symbols=[x.strip() for x in symbols.split(",")] if symbols else None,
        start=_parse_time(start, "--from"),
        end=_parse_time(end, "--to"),
        file=file,
        market_rules=market_rules,
        calendar=calendar,
        report_dir=report_dir,
        show_progress=not as_json,
        console=err,
    )
    report = outcome.report
    if as_json:
        _emit_json(
            {
                "kind": report.kind,
                "rows": report.rows,
                "clean": report.clean,
                "quarantined": report.quarantined,
                "missing": report.missing,
                "score": report.score,
                "threshold": limit,
                "passed": report.passed(limit),
                "failing": [
                    {"symbol": d.symbol, "day": d.day, "score": d.score}
                    for d in report.failing(limit)[:50]
                ],
                "report_json": str(outcome.json_path),
                "report_html": str(outcome.html_path),
            }
        )
    else:
        out.print(report.summary(limit), highlight=False)
        worst = report.worst(5)
        if worst:
            table = Table("symbol", "day", "rows", "rejected", "missing", "score", title="worst")
            for d in worst:
                table.add_row(
                    d.symbol,
                    str(d.day),
                    f"{d.rows:,}",
                    f"{d.quarantined:,}",
                    f"{d.missing:,}",
                    f"{d.score:.2f}",
                )
            out.print(table)
        out.print(f"report: {outcome.html_path}")
    if not report.passed(limit):
        raise typer.Exit(1)


@data_app.command("ls")
@cli_errors
def data_ls(
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List what the lake holds: per kind and symbol, days, first and last day, rows."""
    from quant.data.lake import Lake, parse_kind

    s = settings()
    summary = Lake(s.lake_path).summary()
    if kind is not None:
        summary = summary.filter(pl.col("kind") == parse_kind(kind).value)
    if as_json:
        _emit_json({"lake": str(s.lake_path), "entries": summary.to_dicts()})
        return
    if summary.is_empty():
        out.print(f"the lake at {s.lake_path} is empty; try `smart-trader data generate`")
        return
    table = Table(title=f"lake: {s.lake_path}")
    for column in summary.columns:
        table.add_column(column, justify="right" if column in ("days", "rows", "bytes") else "left")
    for row in summary.iter_rows():
        table.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    out.print(table)


# --------------------------------------------------------------------------------- backtest


@app.command("backtest")
@cli_errors
def backtest(
    strategy: Annotated[str, typer.Option(help="Strategy: ma_crossover or momentum.")],
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: all in the lake).")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First session (YYYY-MM-DD).")] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="End day, exclusive (YYYY-MM-DD).")
    ] = None,
    costs: Annotated[
        str, typer.Option(help="bist (fees + BSMV, spread, impact) or none.")
    ] = "bist",
    capital: Annotated[float, typer.Option(help="Initial cash in TRY.")] = 1_000_000.0,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Strategy parameter NAME=VALUE, e.g. --param fast=20."),
    ] = None,
    session_rules: Annotated[
        str,
        typer.Option(help="exchange (BIST phases) or bars (next-bar fills, as backtrader)."),
    ] = "exchange",
    fast: Annotated[
        bool, typer.Option("--fast", help="Vectorised fast path (signal strategies).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Backtest a strategy on the lake with BIST costs; write its tearsheet and results.

    Prints the headline figures and where the tearsheet is. Exits with status 1 when the
    strategy raised (the results up to that point are still written).
    """
    from cluster.pipeline import run_backtest, strategy_parameters

    s = settings()
    outcome = run_backtest(
        s,
        strategy=strategy,
        symbols=[x.strip() for x in symbols.split(",") if x.strip()] if symbols else None,
        start=_parse_day(start, "--from"),
        end=_parse_day(end, "--to"),
        costs=costs,
        capital=capital,
        params=strategy_parameters(param),
        session_rules=session_rules,
        fast=fast,
        show_progress=not as_json,
        console=err,
    )
    if as_json:
        _emit_json(outcome.as_dict())
    else:
        outcome.print(out)
    if outcome.result.error:
        if as_json:
            err.print(f"[bold red]error:[/] {outcome.result.error}", highlight=False)
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------- demo


@app.command("demo")
@cli_errors
def demo(
    symbols: Annotated[int | None, typer.Option(help="Number of synthetic symbols.")] = None,
    sessions: Annotated[int | None, typer.Option(help="Sessions of 1-minute bars.")] = None,
    tick_sessions: Annotated[
        int | None, typer.Option(help="Last sessions that also get ticks.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
) -> None:
    """Run the main job on the embedded default and print where its report is."""
    from cluster.pipeline import run_demo

    s = settings()
    report = run_demo(
        s,
        symbols=symbols,
        sessions=sessions,
        tick_sessions=tick_sessions,
        seed=seed,
        console=out,
    )
    out.print(f"\n[bold]demo report:[/] {report}")


# ------------------------------------------------------------------------------------ sweep


def _cluster_errors(func: F) -> F:
    """Sweep and job failures (``SweepError``, ``JobError``) as one-line errors too."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from cluster.jobs import JobError
        from tune.sweep import SweepError

        try:
            return func(*args, **kwargs)
        except (SweepError, JobError, TimeoutError) as exc:
            raise ValueError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _read_space(path: Path) -> dict[str, Any]:
    """A search space from a YAML or JSON file: ``{name: [kind, args...]}``."""
    import yaml

    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"search space file {path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(content, dict):
        raise ValueError(f"search space file {path} must hold a mapping of parameters")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in content.items()}


@app.command("sweep")
@cli_errors
@_cluster_errors
def sweep(
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: all in the lake).")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First session (YYYY-MM-DD).")] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="End day, exclusive (YYYY-MM-DD).")
    ] = None,
    samples: Annotated[int, typer.Option(help="Trials to sample.")] = 16,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish an interrupted sweep (same name).")
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="Sweep name (default: a hash of its settings).")
    ] = None,
    interval: Annotated[str, typer.Option(help="Research bar interval.")] = "15m",
    cv: Annotated[str, typer.Option(help="walk_forward or cpcv.")] = "walk_forward",
    splits: Annotated[int, typer.Option(help="Walk-forward test folds, or CPCV groups.")] = 4,
    costs: Annotated[str, typer.Option(help="bist or none.")] = "bist",
    concurrency: Annotated[
        int | None, typer.Option(help="Trials at once (default: every CPU of the cluster).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler.")] = 0,
    space: Annotated[
        Path | None,
        typer.Option(
            help="Search space file (YAML or JSON: parameter -> distribution list); default space."
        ),
    ] = None,
    fix: Annotated[
        list[str] | None,
        typer.Option("--set", help="Fix a trial parameter NAME=VALUE, e.g. --set model=xgb."),
    ] = None,
    register: Annotated[
        bool, typer.Option(help="Retrain the winner and register it as a candidate.")
    ] = True,
    storage: Annotated[
        str | None, typer.Option(help="Where results persist (directory or pyarrow URI).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Search trial parameters on Ray Tune (Optuna TPE + ASHA), select by deflated Sharpe.

    Every trial is a walk-forward (or CPCV) evaluation with costed backtests of its
    out-of-sample folds; results persist under the storage path and --resume finishes an
    interrupted sweep. The winner is retrained on the whole window and registered.
    """
    from pydantic import ValidationError

    from cluster.pipeline import print_sweep, run_sweep, strategy_parameters
    from cluster.runtime import stop_ray
    from tune.sweep import SweepConfig

    options: dict[str, Any] = {
        "symbols": [x.strip() for x in symbols.split(",") if x.strip()] if symbols else None,
        "start": _parse_day(start, "--from"),
        "end": _parse_day(end, "--to"),
        "num_samples": samples,
        "name": name,
        "bar_interval": interval,
        "cv": cv,
        "n_splits": splits,
        "costs": costs,
        "max_concurrent": concurrency,
        "seed": seed,
        "base": strategy_parameters(fix),
        "register_model": register,
        "storage_path": storage,
    }
    if space is not None:
        options["space"] = _read_space(space)
    if options["start"] and options["end"] and options["start"] >= options["end"]:
        raise ValueError(f"empty date range: --from {start} is not before --to {end}")
    try:
        config = SweepConfig(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"bad sweep setting {where}: {first['msg']}") from None
    s = settings()
    try:
        outcome = run_sweep(s, config, resume=resume, show_progress=not as_json, console=err)
    finally:
        stop_ray()
    if as_json:
        _emit_json(outcome.as_dict())
        return
    print_sweep(outcome, out)


# -------------------------------------------------------------------------------------- job

job_app = typer.Typer(
    help="Ray jobs on a cluster: submit a command, follow its status and logs, stop it.",
    no_args_is_help=True,
)
app.add_typer(job_app, name="job")

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address", help="Ray dashboard URL (default: from ray.address, or 127.0.0.1:8265)."
    ),
]


def _env_pairs(items: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--env takes NAME=VALUE, not {item!r}")
        env[key.strip()] = value
    return env


def _print_logs(address: str, job_id: str, follow: bool) -> None:
    from cluster.jobs import follow_logs, job_logs

    if not follow:
        sys.stdout.write(job_logs(address, job_id))
        sys.stdout.flush()
        return
    for chunk in follow_logs(address, job_id):
        sys.stdout.write(chunk)
        sys.stdout.flush()


@job_app.command(
    "submit", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True}
)
@cli_errors
@_cluster_errors
def job_submit(
    entrypoint: Annotated[
        list[str], typer.Argument(help="The command to run, after --, e.g. -- smart-trader sweep")
    ],
    address: AddressOption = None,
    working_dir: Annotated[
        Path | None,
        typer.Option(help="Upload this directory as the job's working directory (e.g. .)."),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="Environment variable NAME=VALUE for the job (no secrets)."),
    ] = None,
    submission_id: Annotated[str | None, typer.Option("--id", help="Job id to use.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Print the job's output until it ends.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Submit a command as a Ray job; prints its id (with --follow: its output, and exits
    with status 1 unless it succeeds)."""
    from cluster.jobs import dashboard_address, submit_job, wait_for_job

    target = dashboard_address(settings(), address)
    job_id = submit_job(
        target,
        entrypoint,
        working_dir=working_dir,
        env=_env_pairs(env),
        submission_id=submission_id,
    )
    if not follow:
        if as_json:
            _emit_json({"job_id": job_id, "address": target, "status": "PENDING"})
        else:
            out.print(f"submitted job {job_id} to {target}")
            out.print(f"follow it: smart-trader job logs {job_id} --follow --address {target}")
        return
    err.print(f"submitted job {job_id} to {target}")
    _print_logs(target, job_id, follow=True)
    state = wait_for_job(target, job_id, timeout_s=60)
    if as_json:
        _emit_json(state.as_dict())
    else:
        err.print(f"job {job_id} {state.status}")
    if state.status != "SUCCEEDED":
        raise typer.Exit(1)


@job_app.command("status")
@cli_errors
@_cluster_errors
def job_status(
    job_id: Annotated[str, typer.Argument(help="Job id (from job submit).")],
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """A job's status: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    from cluster.jobs import dashboard_address, job_state

    state = job_state(dashboard_address(settings(), address), job_id)
    if as_json:
        _emit_json(state.as_dict())
        return
    message = f": {state.message}" if state.message else ""
    out.print(f"job {state.job_id} {state.status}{message}", highlight=False)


@job_app.command("logs")
@cli_errors
@_cluster_errors
def job_logs_command(
    job_id: Annotated[str, typer.Argument(help="Job id (from job submit).")],
    address: AddressOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")
    ] = False,
) -> None:
    """What a job has printed (with --follow: as it prints it, until it ends)."""
    from cluster.jobs import dashboard_address

    _print_logs(dashboard_address(settings(), address), job_id, follow)


@job_app.command("stop")
@cli_errors
@_cluster_errors
def job_stop(
    job_id: Annotated[str, typer.Argument(help="Job id (from job submit).")],
    address: AddressOption = None,
) -> None:
    """Stop a running job."""
    from cluster.jobs import dashboard_address, stop_job

    stopped = stop_job(dashboard_address(settings(), address), job_id)
    out.print(f"job {job_id} " + ("stopping" if stopped else "had already ended"))


# ------------------------------------------------------------------------------ paper trading

paper_app = typer.Typer(
    help="Paper trading on Ray actors: replay a recorded day through feed, stream, risk, "
    "router and the paper exchange.",
    no_args_is_help=True,
)
app.add_typer(paper_app, name="paper")

PipelineOption = Annotated[
    str | None, typer.Option("--pipeline", help="Pipeline name (default: paper.pipeline).")
]

_EMBEDDED = (
    "no Ray address is configured: the embedded Ray lives only inside `smart-trader paper "
    "start` (which then runs in the foreground). To run the pipeline detached and reach it "
    "from other commands, start a cluster (`ray start --head --node-ip-address=127.0.0.1`) "
    "and set ray.address (e.g. SMART_TRADER_RAY__ADDRESS=auto)"
)


def _pipeline_errors(func: F) -> F:
    """A missing pipeline or an unreachable Ray as one-line errors."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (LookupError, TimeoutError, ConnectionError) as exc:
            raise ValueError(str(exc).strip("'\"")) from None

    return wrapper  # type: ignore[return-value]


def _connect(need_address: bool = True) -> Settings:
    from cluster.runtime import start_ray

    s = settings()
    if need_address and s.ray.address is None:
        raise ValueError(_EMBEDDED)
    start_ray(s)
    return s


def _print_status(st: dict[str, Any]) -> None:
    actors = st["actors"]
    table = Table("actor", "alive", "state", title=f"pipeline {st['pipeline']}")
    for role in sorted(actors):
        a = actors[role]
        state = (
            a.get("state") or a.get("trading_state") or ("finished" if a.get("finished") else "")
        )
        table.add_row(role, "yes" if a.get("alive") else "NO", str(state or a.get("error", "")))
    out.print(table)
    stream = actors.get("stream", {})
    ticks = stream.get("ticks", {})
    out.print(
        f"trading state {st.get('trading_state')}, kill switch "
        f"{'ENGAGED' if st.get('kill_switch') else 'off'}; feed {st.get('feed_state')}; "
        f"ticks {ticks.get('received', 0):,} received, {ticks.get('quarantined', 0):,} "
        f"quarantined, {ticks.get('late', 0):,} late; "
        f"orders {stream.get('counters', {}).get('orders', 0):,}, "
        f"fills {stream.get('counters', {}).get('fills', 0):,}",
        highlight=False,
    )
    out.print(f"positions: {st.get('positions') or 'flat'}", highlight=False)
    out.print(f"open orders: {len(st.get('open_orders') or [])}", highlight=False)
    for stage, lag in (st.get("lag") or {}).items():
        if lag:
            out.print(
                f"  lag {stage}: last {lag['last_ms']:.2f} ms, mean {lag['mean_ms']:.2f} ms, "
                f"max {lag['max_ms']:.2f} ms",
                highlight=False,
            )


@paper_app.command("start")
@cli_errors
@_pipeline_errors
def paper_start(
    replay: Annotated[
        str | None,
        typer.Option(
            "--replay", help="Day to replay from the lake (default: the last with trades)."
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Pace: 1 = real time, 60 = a minute a second (default: as fast as "
            "backpressure allows)."
        ),
    ] = None,
    pipeline: PipelineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start the paper pipeline replaying a recorded day.

    With a Ray address configured the actors are detached: the command returns and `paper
    status`, `paper stop`, `kill-switch` and `cancel-all` reach them. With the embedded Ray
    the command runs the day in the foreground and stops the pipeline at the end (Ctrl-C stops
    it early); then it backtests the same day with the same model and config and prints the
    parity of the two (orders and fills identical in symbol, side, quantity and price, each
    difference with its cause), also written to reports/paper/parity-DAY.json|html.
    """
    from actors import pipeline as pipe
    from cluster.runtime import stop_ray

    if speed is not None and not speed > 0:
        raise ValueError(f"--speed must be positive, not {speed}")
    s = settings()
    if pipeline:
        s.paper.pipeline = pipeline
    day = _parse_day(replay, "--replay")
    config = pipe.paper_config(s, day, speed)
    _connect(need_address=False)
    try:
        if pipe.running_actors(config.pipeline):
            raise ValueError(
                f"pipeline {config.pipeline!r} is already running: `smart-trader paper stop` "
                "first, or pick another --pipeline"
            )
        started = pipe.start_pipeline(config)
        started["journal"] = config.journal_path
        if s.ray.address is not None:
            if as_json:
                _emit_json(started)
            else:
                out.print(
                    f"pipeline {config.pipeline} replaying {config.day} "
                    f"({len(config.symbols)} symbols) on {s.ray.address}; journal "
                    f"{config.journal_path}",
                    highlight=False,
                )
                out.print("follow it: smart-trader paper status")
            return
        err.print(
            f"replaying {config.day} ({len(config.symbols)} symbols) on the embedded Ray, in "
            "the foreground (set ray.address to run detached)"
        )
        from actors import parity

        began = time.perf_counter()
        try:
            total = parity.day_trades(config).height
            feed = parity.follow_replay(config, err, total_ticks=total, timeout_s=24 * 3600)
            final = pipe.status(config.pipeline)
        finally:
            pipe.stop(config.pipeline)
        final["journal"] = config.journal_path
        report = None
        if feed["state"] == "finished":
            # the same day, model and config through the backtest: the parity check
            _, _, report = parity.check_parity(config, final, time.perf_counter() - began)
            paths = parity.write_parity(report, Path(s.reports_path) / "paper")
            final["parity"] = {**report.as_dict(), "files": [str(p) for p in paths]}
        if as_json:
            _emit_json(final)
        else:
            _print_status(final)
            out.print(f"journal: {config.journal_path}", highlight=False)
            if report is not None:
                parity.print_parity(report, out)
                out.print(f"parity report: {final['parity']['files'][1]}", highlight=False)
            else:
                out.print(f"no parity check: the feed ended {feed['state']}", highlight=False)
    finally:
        if s.ray.address is None:
            stop_ray()


@paper_app.command("status")
@cli_errors
@_pipeline_errors
def paper_status(pipeline: PipelineOption = None, as_json: JsonOption = False) -> None:
    """Per-actor state, counters and lag; trading state, open orders and positions."""
    from actors import pipeline as pipe

    s = _connect()
    st = pipe.status(pipeline or s.paper.pipeline)
    if as_json:
        _emit_json(st)
        return
    _print_status(st)


@paper_app.command("stop")
@cli_errors
@_pipeline_errors
def paper_stop(pipeline: PipelineOption = None, as_json: JsonOption = False) -> None:
    """Stop the feed and every actor of the pipeline (the journal file stays)."""
    from actors import pipeline as pipe

    s = _connect()
    name = pipeline or s.paper.pipeline
    stopped = pipe.stop(name)
    if not stopped:
        raise ValueError(f"no pipeline {name!r} is running")
    if as_json:
        _emit_json({"pipeline": name, "stopped": stopped})
        return
    out.print(f"stopped {len(stopped)} actors of pipeline {name}")


@app.command("kill-switch")
@cli_errors
@_pipeline_errors
def kill_switch_command(
    release: Annotated[
        bool, typer.Option("--release", help="Release the kill switch instead.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why (journaled).")] = "operator",
    pipeline: PipelineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Engage the kill switch: no new order passes risk, and every open order is cancelled.

    Exits with status 1 if some venue could not confirm its cancels.
    """
    from actors import pipeline as pipe

    s = _connect()
    result = pipe.kill_switch(pipeline or s.paper.pipeline, release=release, reason=reason)
    if as_json:
        _emit_json(result)
    elif release:
        out.print("kill switch released")
    else:
        cancel = result["cancel_all"]
        out.print(
            f"kill switch ENGAGED ({reason}): {len(cancel['cancelled'])} orders cancelled in "
            f"{cancel['elapsed_ms']:.1f} ms",
            highlight=False,
        )
    if not release and not result["cancel_all"]["complete"]:
        err.print(f"[bold red]error:[/] cancel-all incomplete: {result['cancel_all']}")
        raise typer.Exit(1)


@app.command("cancel-all")
@cli_errors
@_pipeline_errors
def cancel_all_command(
    symbol: Annotated[str | None, typer.Option(help="Only this symbol's orders.")] = None,
    pipeline: PipelineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel every open order (of --symbol) at every venue. Exits 1 if any stays open."""
    from actors import pipeline as pipe

    s = _connect()
    result = pipe.cancel_all(pipeline or s.paper.pipeline, symbol)
    if as_json:
        _emit_json(result)
    else:
        out.print(
            f"{len(result['cancelled'])} orders cancelled at "
            f"{', '.join(result['venues']) or 'no venue'}",
            highlight=False,
        )
    if not result["complete"]:
        err.print(f"[bold red]error:[/] cancel-all incomplete: {result}")
        raise typer.Exit(1)


parent_app = typer.Typer(
    help="Parent orders worked by the order router's execution algorithms (TWAP, VWAP, POV), "
    "checked whole by the risk guard first.",
    no_args_is_help=True,
)
paper_app.add_typer(parent_app, name="parent")


@parent_app.command("submit")
@cli_errors
@_pipeline_errors
def parent_submit(
    symbol: Annotated[str, typer.Argument(help="BIST symbol, e.g. THYAO.")],
    side: Annotated[str, typer.Argument(help="buy or sell.")],
    quantity: Annotated[int, typer.Argument(help="Shares in all.", min=1)],
    algo: Annotated[str, typer.Option(help="twap, vwap or pov.")] = "twap",
    minutes: Annotated[
        float, typer.Option(help="Window length from the pipeline's now, in minutes.", min=0.1)
    ] = 30.0,
    slices: Annotated[int | None, typer.Option(help="TWAP: number of children.")] = None,
    rate: Annotated[float | None, typer.Option(help="POV: participation rate (0-1].")] = None,
    profile_sessions: Annotated[
        int,
        typer.Option(
            help="VWAP: sessions of the lake's bars before the day to learn the volume "
            "profile from.",
            min=1,
        ),
    ] = 20,
    bucket_minutes: Annotated[
        int, typer.Option(help="VWAP: minutes per volume-profile bucket.", min=1)
    ] = 5,
    limit: Annotated[float | None, typer.Option(help="Limit price of the parent.")] = None,
    parent_id: Annotated[str | None, typer.Option("--id", help="Client order id.")] = None,
    pipeline: PipelineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Work a parent order over a window; exits 1 if risk or the router refuse it."""
    from actors import pipeline as pipe

    s = _connect()
    params: dict[str, Any] = {}
    if slices is not None:
        params["slices"] = slices
    elif algo == "twap":
        params["interval_s"] = 60.0
    if rate is not None:
        params["rate"] = rate
    if algo == "vwap":
        params["bucket_minutes"] = bucket_minutes
    result = pipe.submit_parent(
        pipeline or s.paper.pipeline,
        symbol,
        side,
        quantity,
        algo,
        params,
        minutes=minutes,
        parent_id=parent_id,
        limit_price=limit,
        lake_path=s.lake_path,
        profile_sessions=profile_sessions,
    )
    if as_json:
        _emit_json(result)
    else:
        out.print(
            f"parent {result.get('parent_id')}: {result.get('status')}"
            + (f" ({result['reason']})" if result.get("reason") else ""),
            highlight=False,
        )
    if result.get("status") in ("rejected", "invalid"):
        raise typer.Exit(1)


@parent_app.command("status")
@cli_errors
@_pipeline_errors
def parent_status_command(
    parent_id: Annotated[str, typer.Argument(help="The parent's client order id.")],
    pipeline: PipelineOption = None,
    as_json: JsonOption = False,
) -> None:
    """A parent's algorithm state: filled, working, remaining, children."""
    from actors import pipeline as pipe

    s = _connect()
    result = pipe.parent_status(pipeline or s.paper.pipeline, parent_id)
    if as_json:
        _emit_json(result)
        return
    if result.get("status") == "unknown":
        raise ValueError(f"no parent {parent_id} in pipeline {pipeline or s.paper.pipeline}")
    out.print(
        f"parent {parent_id} ({result['algo']}): {result['status']}, filled "
        f"{result['filled']} of {result['quantity']}, working {result['working']}, "
        f"{len(result['children'])} children",
        highlight=False,
    )


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
