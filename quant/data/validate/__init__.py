"""Market-data validation: every row comes out clean or quarantined with the rule it broke.

A backtest is only as honest as its data, and a bad print (a price off the tick grid, a trade
during the opening auction, a fat-finger spike) silently becomes a fill in a simulation. So every
row is checked against the rules below, and nothing is dropped silently: a rejected row goes to
the quarantine with its rule code and a reason that names the value and the limit it broke.

Rules and precedence
--------------------
A row that breaks several rules is recorded once, under the first rule it breaks in this order
(the order of ``RuleCode``). Row-level rules come first, then the rules that compare a row with
the rows before it, which therefore only see rows that passed everything earlier:

1. ``SCHEMA`` value cannot be read as the schema's type, or is outside the field's domain (a
   missing required column is a whole-input error: ``ValueError`` naming the columns).
2. ``NULL`` null, NaN or infinite value in a required field.
3. ``NON_POSITIVE`` price or size <= 0 (bars: prices > 0; volume and trade count >= 0, since a
   bar without trades is a fact, not an error).
4. ``OHLC`` bar values inconsistent (high < max(open, close), low > min(open, close),
   low > high, vwap outside [low, high], ts_end not after ts).
5. ``CROSSED`` quote with bid >= ask.
6. ``OFF_TICK`` price not on the tick grid in force that day (exact, in integer price units).
7. ``HOLIDAY`` row on a day that is not a session of the calendar.
8. ``OUTSIDE_SESSION`` trade or bar outside the phases where trades are allowed; quote outside
   the phases that accept orders.
9. ``DUPLICATE`` same key (``KEYS[kind]``) as an earlier row: the first is kept.
10. ``OUT_OF_ORDER`` ts earlier than a ts already seen for the symbol that day (bars: not later),
    or seq not greater than the highest seq seen for the symbol that day.
11. ``OUTSIDE_BAND`` outside the daily price band around the previous session's close (its last
    price alive after rules 1-10, unless that price lies outside its own day's band: a bad
    print at the close is not a base, the day's last price inside its band is).
12. ``STALE`` a series that stops moving (see ``ValidationConfig.stale_max_run``).
13. ``OUTLIER`` a price far from the prices before it *and* after it: robust z-score of the log
    return beyond ``ValidationConfig.outlier_z`` (a real jump is confirmed by later prices).
14. ``GAP`` expected data that is missing: a finding of the report, never a quarantined row.

Grouping. Rows are validated per symbol and *local* day (the calendar's time zone; UTC without
a calendar). Ordering is judged within a symbol-day: the lake stores one partition per
symbol-day, so a row merely stored among another day's rows is placed on its own day rather
than rejected. The frame is never reordered: ``clean`` and ``quarantine`` keep the input order.
Markets whose sessions span midnight (futures) need ``calendar=None`` or HOLIDAY/GAP off, since
their trading day is not the local calendar day.

Streaming. ``validate_parquet`` and ``validate_stream`` validate data larger than memory in
chunks of complete symbol-days, carrying the only cross-day state (each symbol's previous close,
for the band) from chunk to chunk, so that a chunked run gives exactly the in-memory result.

Speed. Validating must cost a small multiple of reading the data (issue 2: 20 million trades in
at most 3x a bare Parquet scan; see BENCHMARKS.md). Row passes are compiled kernels
(``kernels``) or vectorised polars/numpy; Python loops run per symbol-day at most, and
per rejected row only to word its reason. A large chunk's independent stages (reading columns,
grouping, row-level and sequence rules) run on one worker thread while the previous chunk's
ordered stages (band, stale, outlier) and output run on the caller's thread: results do not
depend on that overlap, only the wall time does.

Layout. ``rules`` (rule codes, precedence, ``ValidationConfig``); ``api`` (the entry points);
``runner`` (the chunk pipeline and its worker thread); ``checks/`` (one module per family of
rules); ``quarantine`` and ``report`` (the outputs); ``casting``, ``calendar``, ``groups`` and
``parquet`` (reading rows, local days, symbol-day grouping, Parquet streaming); ``kernels``
(the compiled row passes).
"""

from quant.data.validate.api import validate, validate_parquet, validate_stream
from quant.data.validate.calendar import DAY_NS as DAY_NS
from quant.data.validate.casting import QUARANTINE_COLUMNS as QUARANTINE_COLUMNS
from quant.data.validate.checks.outliers import median_of_five
from quant.data.validate.results import ChunkSink, ParquetSink, ValidationResult
from quant.data.validate.rules import RuleCode, ValidationConfig

__all__ = [
    "ChunkSink",
    "ParquetSink",
    "RuleCode",
    "ValidationConfig",
    "ValidationResult",
    "median_of_five",
    "validate",
    "validate_parquet",
    "validate_stream",
]
