"""One validation run: the chunk pipeline, the state it carries and its outputs.

A chunk (complete symbol-days) goes through two halves. ``Run._prepare`` runs the stages that need
nothing from other chunks (reading the columns, grouping, the row-level and sequence rules);
``Run._conclude`` runs the ordered stages (band, stale, outlier, gaps), which carry state from chunk
to chunk, and assembles the clean rows, the quarantine and the counts. A large chunk is prepared
on one worker thread while the previous chunk is concluded on the caller's thread: results do
not depend on that overlap, only the wall time does.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from quant.data.quality_report import QualityReport, SymbolDayQuality
from quant.data.schema import DataKind
from quant.data.validate.calendar import DAY_NS, DayFacts, calendar_named, local_clock
from quant.data.validate.casting import PREFIX, as_utc, cast, check_columns, lake_schema
from quant.data.validate.checks.band import BandCheck
from quant.data.validate.checks.base import Finding, first_reason
from quant.data.validate.checks.corporate_actions import check_corporate_actions
from quant.data.validate.checks.gaps import missing_bars, missing_sessions
from quant.data.validate.checks.outliers import outlier_findings
from quant.data.validate.checks.row import RowChecks, null_checks, row_mask, schema_checks
from quant.data.validate.checks.sequence import sequence_findings
from quant.data.validate.checks.stale import stale_findings
from quant.data.validate.groups import Columns, Groups, PerGroup, Scratch, group_rows
from quant.data.validate.quarantine import (
    add_samples,
    empty_quarantine,
    label_rejected,
    quarantine_rows,
    quarantine_schema,
    split,
    without,
)
from quant.data.validate.report import (
    chunk_stats,
    combined_stats,
    quality_report,
    symbol_day_records,
)
from quant.data.validate.results import ChunkSink, ValidationResult
from quant.data.validate.rules import ROW_LEVEL, RuleCode, ValidationConfig

PIPELINE_ROWS = 200_000
"""Chunks of at least this many rows are prepared on a worker thread (see ``Run._start``)."""


@dataclass
class Prepared:
    """A chunk between its independent stages and the ordered ones (see ``Run._prepare``)."""

    raw: pl.DataFrame
    first_row: int | None
    frame: pl.DataFrame
    cast_columns: list[str]
    unplaced: pl.DataFrame | None
    day: np.ndarray
    tod: np.ndarray
    groups: Groups
    cols: Columns
    facts: list[DayFacts] | None
    code: np.ndarray
    alive: np.ndarray
    flags: dict[str, np.ndarray | PerGroup]
    unchecked: dict[RuleCode, np.ndarray]
    findings: list[Finding]


class Run:
    """One validation run: the chunk pipeline, carried state, outputs and statistics."""

    def __init__(
        self,
        kind: DataKind,
        config: ValidationConfig,
        corporate_actions: pl.DataFrame | None,
        sink: ChunkSink | None,
    ) -> None:
        self.kind = kind
        self.cfg = config
        self.sink = sink
        self.calendar = calendar_named(config.calendar) if config.calendar else None
        self.tz = self.calendar.tz if self.calendar else None
        self.ex_dates: frozenset[tuple[str, date]] = frozenset()
        if corporate_actions is not None and corporate_actions.height:
            ca = corporate_actions.select(
                pl.col("symbol").cast(pl.String), pl.col("ex_date").cast(pl.Date)
            ).drop_nulls()
            self.ex_dates = frozenset(ca.iter_rows())
        self.row_checks = RowChecks(kind, config, self.calendar.name if self.calendar else None)
        self.band = BandCheck(kind, config, self.calendar, self.ex_dates)
        self.rows_seen = 0
        self.clean_parts: list[pl.DataFrame] = []
        self.quarantine_parts: list[pl.DataFrame] = []
        self.stats: list[pl.DataFrame] = []
        self.samples: dict[str, list[dict[str, Any]]] = {}
        self.interval_ns: int | None = (
            int(config.bar_interval.total_seconds() * 10**9) if config.bar_interval else None
        )
        self.daily_buffer: list[pl.DataFrame] = []
        self.input_columns: list[str] | None = None
        self._quarantine_schema: pl.Schema | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[Prepared] | None = None
        self._scratch = (Scratch(), Scratch())
        self._chunks = 0

    # -- feeding ------------------------------------------------------------------------------

    @property
    def daily(self) -> bool:
        """Daily (or longer) bars: STALE and OUTLIER then look across days, per symbol."""
        return (
            self.kind is DataKind.BARS
            and self.interval_ns is not None
            and self.interval_ns >= DAY_NS
        )

    def feed(self, raw: pl.DataFrame) -> None:
        """Validate one chunk of complete symbol-days (raw input columns)."""
        if self.input_columns is None:
            check_columns(raw.columns, self.kind)
            self.input_columns = list(raw.columns)
        elif raw.columns != self.input_columns:
            if set(raw.columns) != set(self.input_columns):
                raise ValueError(
                    f"SCHEMA: chunk columns {raw.columns} differ from the first chunk's "
                    f"{self.input_columns}"
                )
            raw = raw.select(self.input_columns)
        if self._quarantine_schema is None:
            self._quarantine_schema = quarantine_schema(raw, self.input_columns)
        first_row = self.rows_seen
        self.rows_seen += raw.height
        if self.kind is DataKind.BARS and self.interval_ns is None:
            self._infer_interval(raw)
        if self.kind is DataKind.CORPORATE_ACTIONS or self.daily:
            raw = raw.with_columns(
                pl.int_range(first_row, first_row + raw.height, dtype=pl.Int64).alias("input_row")
            )
            if self.daily:
                self.daily_buffer.append(raw)  # daily bars are small: validated whole at the end
            else:
                self._emit(
                    *check_corporate_actions(raw, self.cfg, self.calendar, self.input_columns)
                )
            return
        # Intraday chunks get no input_row column: a column added to a frame read in several
        # chunks makes polars realign every column in every later select. The positions are
        # attached to the rejected rows only.
        job = self._start(raw, first_row)
        previous, self._pending = self._pending, job
        if previous is not None:
            self._emit(*self._conclude(previous.result()))

    def _start(self, raw: pl.DataFrame, first_row: int) -> Future[Prepared]:
        """Prepare a chunk: on the worker thread when it is large (so that it overlaps the
        previous chunk's conclusion and the reading of the next), else right here."""
        scratch = self._next_scratch()
        if raw.height >= PIPELINE_ROWS:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="validate")
            return self._executor.submit(self._prepare, raw, first_row, scratch)
        done: Future[Prepared] = Future()
        done.set_result(self._prepare(raw, first_row, scratch))
        return done

    def close(self) -> None:
        """Stop the worker thread (idempotent)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def finish(self, source_label: str, synthetic: bool) -> ValidationResult:
        """Conclude the last chunk, validate the buffered daily bars, build the report."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._emit(*self._conclude(pending.result()))
        self.close()
        if self.daily_buffer:
            frames, self.daily_buffer = self.daily_buffer, []
            self._emit(*self._chunk(pl.concat(frames, how="vertical_relaxed")))
        report = self._report(source_label, synthetic)
        if self.sink is not None:
            return ValidationResult(
                self._empty_clean(), self._empty_quarantine(), report, streamed=True
            )
        clean = pl.concat(self.clean_parts) if self.clean_parts else self._empty_clean()
        quarantine = (
            pl.concat(self.quarantine_parts, how="vertical_relaxed").sort("input_row")
            if self.quarantine_parts
            else self._empty_quarantine()
        )
        return ValidationResult(clean, quarantine, report)

    def _empty_clean(self) -> pl.DataFrame:
        return pl.DataFrame(schema=lake_schema(self.kind))

    def _infer_interval(self, raw: pl.DataFrame) -> None:
        """Bar length = median of ts_end - ts over the first chunk with readable bars."""
        if raw.height == 0:
            return
        span = as_utc(raw["ts_end"]).dt.epoch("ns") - as_utc(raw["ts"]).dt.epoch("ns")
        d = span.filter(span > 0).median()
        if d is not None:
            self.interval_ns = int(d)  # type: ignore[arg-type]

    def _emit(self, clean: pl.DataFrame, quarantine: pl.DataFrame, stats: pl.DataFrame) -> None:
        self.stats.append(stats)
        add_samples(self.samples, quarantine, self.cfg.sample_size)
        if self.sink is not None:
            self.sink(clean, quarantine)
        else:
            self.clean_parts.append(clean)
            if quarantine.height:
                self.quarantine_parts.append(quarantine)

    # -- the chunk pipeline -------------------------------------------------------------------

    def _chunk(
        self, raw: pl.DataFrame, first_row: int | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Run every stage on one chunk of complete symbol-days: (clean, quarantine, stats).

        ``raw`` has an ``input_row`` column, or ``first_row`` gives the input position of its
        first row.
        """
        return self._conclude(self._prepare(raw, first_row, self._next_scratch()))

    def _next_scratch(self) -> Scratch:
        """The scratch arrays of the next chunk (alternating: see ``Scratch``)."""
        self._chunks += 1
        return self._scratch[self._chunks % 2]

    def _prepare(self, raw: pl.DataFrame, first_row: int | None, scratch: Scratch) -> Prepared:
        """The stages that need nothing from other chunks: reading the columns, grouping,
        the row-level rules and the sequence rules. Safe to run on a worker thread while
        the previous chunk is concluded: it only reads the run's settings and caches."""
        frame, cast_columns = cast(raw, self.kind)
        unplaced = None
        if frame["symbol"].null_count() or frame["ts"].null_count():
            if first_row is not None:  # positions are about to move: record them first
                frame = frame.with_columns(
                    pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias(
                        "input_row"
                    )
                )
            # Rows without a symbol or a timestamp belong to no symbol-day: rejected first.
            frame, unplaced = split(frame, pl.col("symbol").is_null() | pl.col("ts").is_null())
            rule, reason = first_reason(
                schema_checks(self.kind, cast_columns) + null_checks(self.kind)
            )
            unplaced = unplaced.with_columns(rule.alias("rule"), reason.alias("reason"))
        day, tod, epoch = local_clock(frame["ts"], self.tz, scratch)
        groups = group_rows(frame["symbol"], day, scratch)
        cols = Columns(frame, groups, scratch)
        cols.put(f"{PREFIX}tod", groups.sort(tod))
        cols.put("ts", groups.sort(epoch))
        facts = [self.calendar.facts(d) for d in groups.days] if self.calendar else None
        n = frame.height
        code = scratch.get("code", n, np.uint8)  # sorted positions; 0 = clean
        code[:] = 0
        unchecked: dict[RuleCode, np.ndarray] = {}
        findings: list[Finding] = []

        # Stage 1: row-level rules (vectorised polars checks + numpy grid/calendar flags).
        checks = self.row_checks.checks(cast_columns, facts is not None)
        # A column's null count is known without a scan: skip "is null" where there are none.
        expr_checks = [
            c
            for c in checks
            if c.flag is None and (c.null_of is None or frame[c.null_of].null_count())
        ]
        bad = row_mask(frame, cols, groups, expr_checks, scratch.get("bad", n, np.bool_))
        flags = self.row_checks.flags(cols, groups, facts, unchecked, scratch)
        for f in flags.values():
            if isinstance(f, PerGroup):
                if f.values.any():
                    bad |= f.values[groups.gid]
            else:
                bad |= f
        code[bad] = ROW_LEVEL
        alive = np.logical_not(bad, out=scratch.get("alive", n, np.bool_))

        # Stages 2-5 see only rows alive after the stages before them.
        findings += sequence_findings(self.kind, self.cfg, cols, groups, alive, code)
        return Prepared(
            raw,
            first_row,
            frame,
            cast_columns,
            unplaced,
            day,
            tod,
            groups,
            cols,
            facts,
            code,
            alive,
            flags,
            unchecked,
            findings,
        )

    def _conclude(self, chunk: Prepared) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """The stages that carry state from chunk to chunk (the band's previous close), in
        input order, then the chunk's clean rows, quarantine and statistics."""
        frame, groups, cols, facts = chunk.frame, chunk.groups, chunk.cols, chunk.facts
        code, alive, unchecked, findings = chunk.code, chunk.alive, chunk.unchecked, chunk.findings
        findings += self.band.findings(cols, groups, alive, code, unchecked)
        findings += stale_findings(self.kind, self.cfg, self.daily, cols, groups, alive, code)
        findings += outlier_findings(
            self.kind, self.cfg, self.daily, self.ex_dates, cols, groups, alive, code, unchecked
        )
        missing = missing_bars(
            self.kind, self.cfg, self.daily, self.interval_ns, cols, groups, facts
        )

        # Assemble: one filter for the clean rows, a gather for the rejected ones.
        rejected_sorted = np.flatnonzero(code)
        rejected_input = groups.to_input(rejected_sorted)
        by_input = np.argsort(rejected_input, kind="stable")
        rejected_sorted, rejected_input = rejected_sorted[by_input], rejected_input[by_input]
        clean = without(frame, rejected_input)
        clean = clean.select(lake_schema(self.kind).names())
        rejected = label_rejected(
            frame,
            chunk.cast_columns,
            rejected_sorted,
            rejected_input,
            code,
            chunk.flags,
            findings,
            groups,
            facts,
            chunk.day,
            chunk.tod,
            chunk.first_row,
            self.row_checks,
        )
        parts = [p for p in (chunk.unplaced, rejected) if p is not None and p.height]
        full = pl.concat(parts, how="diagonal_relaxed") if parts else None
        quarantine = (
            self._quarantine(full, chunk.cast_columns).sort("input_row")
            if full is not None
            else self._empty_quarantine()
        )
        if clean.height + quarantine.height != chunk.raw.height or quarantine["rule"].null_count():
            # A defect in validation, never a data problem: refuse rather than lose rows.
            raise RuntimeError(
                f"validation did not account for every row: {chunk.raw.height} in, {clean.height} "
                f"clean, {quarantine.height} quarantined"
            )
        stats = chunk_stats(groups, rejected, chunk.unplaced, unchecked, missing, self.tz)
        return clean, quarantine, stats

    def _empty_quarantine(self) -> pl.DataFrame:
        return empty_quarantine(self.kind, self._quarantine_schema)

    def _quarantine(self, rejected: pl.DataFrame, cast_columns: Sequence[str]) -> pl.DataFrame:
        """Rejected rows as received: original columns + rule, reason, input_row."""
        assert self.input_columns is not None
        return quarantine_rows(rejected, self.input_columns, cast_columns)

    def _report(self, source_label: str, synthetic: bool) -> QualityReport:
        stats = combined_stats(self.stats)
        symbol_days: list[SymbolDayQuality] = []
        if stats is not None:
            symbol_days = symbol_day_records(stats) + missing_sessions(
                self.kind, self.cfg, self.calendar, self.daily, self.interval_ns, stats
            )
        return quality_report(
            self.kind,
            self.cfg,
            symbol_days,
            self.samples,
            self.interval_ns,
            source_label,
            synthetic,
        )
