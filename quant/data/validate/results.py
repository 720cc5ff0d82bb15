"""What a validation run returns, and where its chunks can go instead of memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from quant.data.quality_report import QualityReport

ChunkSink = Callable[[pl.DataFrame, pl.DataFrame], None]
"""Receives ``(clean, quarantine)`` of each validated chunk (streaming instead of holding)."""


@dataclass(frozen=True)
class ValidationResult:
    """Clean rows, quarantined rows and the quality report of one validation run.

    ``clean`` holds schema-conformant rows (schema columns only) that passed every rule;
    ``quarantine`` holds every rejected row with its original columns plus ``rule``, ``reason``
    and ``input_row`` (0-based position in the input). Rows in = clean + quarantined. When a
    sink received the chunks, both frames here are empty and ``streamed`` is True.
    """

    clean: pl.DataFrame
    quarantine: pl.DataFrame
    report: QualityReport
    streamed: bool = False


class ParquetSink:
    """A ``ChunkSink`` writing each chunk's clean and quarantined rows as Parquet part files.

    Files go to ``directory/clean/part-NNNNN.parquet`` and ``directory/quarantine/...``; empty
    parts are not written.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.parts = 0
        self.files: list[Path] = []

    def __call__(self, clean: pl.DataFrame, quarantine: pl.DataFrame) -> None:
        for name, frame in (("clean", clean), ("quarantine", quarantine)):
            if frame.height:
                target = self.directory / name / f"part-{self.parts:05d}.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".parquet.tmp")
                frame.write_parquet(tmp)
                os.replace(tmp, target)
                self.files.append(target)
        self.parts += 1
