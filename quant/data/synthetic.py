"""A synthetic Borsa Istanbul equity market: the demo's default data, labelled synthetic everywhere.

No package registry ships BIST ticks, yet every later stage (validation, features, labels,
backtests, the live replay) needs a market that obeys BIST's rules. This module makes one that
does: every price is on the day's tick grid, inside the daily band, and printed only in phases
that allow trades, with the stylised facts research code must cope with (volatility clustering,
calm/volatile regimes, jumps, a market factor, a U-shaped day, halts, corporate actions).

The market is built in three layers, each deterministic given the seed:

1. **Daily state**, simulated once for the whole horizon and in order (cheap: sessions x
   symbols): Markov regime, GARCH(1,1) variances, market/sector/idiosyncratic daily shocks,
   jumps, corporate actions, and for every symbol-day the band reference (previous close
   adjusted for that day's corporate action), the open, the last continuous price and the
   close. Because this carries everything that crosses a day boundary, ``day(d)`` for any ``d``
   agrees with generating the days in order.
2. **Minute latent path** per symbol-day: the latent log price at each continuous-trading
   minute boundary, built from Brownian bridges (market, sector and idiosyncratic components,
   with a U-shaped and stochastic intraday variance) that start at the day's open and end at its
   close, plus an intraday jump; trade counts per minute (U-shaped intensity that rises with
   volatility); single-stock circuit-breaker halts detected at minute boundaries; the auction
   prints. Its random numbers are keyed by (seed, symbol, date) -- the market factor by
   (seed, date), a sector by (seed, sector, date) -- so ``day()`` and ``minute_bars()`` see the
   same path whatever range or order they are asked for.
3. Either **ticks** (``day``: events inside each minute on a Brownian bridge between the minute
   boundaries, L1 quotes a few ticks wide, trades at the bid or ask) or **bars**
   (``minute_bars``: OHLC drawn from the bridge's extreme-value law straight from layer 2, fast
   enough for years of history). The bars are not the bars one would rebuild from the ticks: the
   within-minute draws differ. What the two views share exactly: the latent path at minute
   boundaries, trade counts per minute, halts, the auction prints (open, halt uncross, close,
   trades at close) and the last continuous price of the day.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from quant.data.schema import CorporateActionKind, DataKind, TradeCondition, conform
from quant.market.bands import PriceBand
from quant.market.breakers import CircuitBreakers
from quant.market.calendar import SessionPhase, TradingCalendar
from quant.market.instrument import Instrument
from quant.market.ticks import BIST_SHARE_TICKS, PRICE_SCALE, RoundingMode, TickSchedule

MINUTE_NS = 60_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FULL_DAY_MINUTES = 480
_DAYS_PER_YEAR = 250
REGIMES = ("calm", "volatile")

DEFAULT_SECTORS = (
    "Banks",
    "Holdings",
    "Industrials",
    "Energy",
    "Retail",
    "Telecom & Technology",
    "Transport",
    "Materials",
)

# Independent random streams, keyed together with the seed (and symbol, date where relevant).
_S_UNIVERSE, _S_MARKET_DAILY, _S_SYMBOL_DAILY, _S_CORPORATE = 1, 2, 3, 4
_S_MARKET_MINUTE, _S_SECTOR_MINUTE, _S_SYMBOL_MINUTE, _S_TICKS, _S_BARS = 5, 6, 7, 8, 9

_T_PRINTS_MAX = 8
"""At most this many trades-at-close prints per symbol-day (a Poisson count, capped)."""
_SV_PERSISTENCE = 0.98
"""Per-minute AR(1) coefficient of the intraday log-variance."""
_SV_STD = 0.8
"""Stationary standard deviation of the intraday log-variance."""


@dataclass(frozen=True)
class SyntheticMarketConfig:
    """Everything that shapes the synthetic market; with the seed, it fixes every number.

    Volatilities are annualised (250 sessions) and apply to the calm regime; the volatile
    regime multiplies them by ``regime_vol[1]``.
    """

    n_symbols: int = 30
    start: date = date(2024, 1, 2)
    """First session on or after this day."""
    n_sessions: int = 250
    seed: int = 7
    price_min: float = 5.0
    price_max: float = 2800.0
    """Initial price levels are log-spaced from ``price_min`` to ``price_max``: 5 to 2,500 TRY
    and a top symbol above 2,500 so that every tier of the tick table, 2.50 included, trades."""
    trades_per_day: int = 3000
    """Mean continuous trades per symbol per full session, before liquidity and activity."""
    quote_updates_per_trade: float = 1.5
    """Quote-only L1 updates per trade (on top of the quote seen by each trade)."""
    sectors: tuple[str, ...] = DEFAULT_SECTORS
    symbol_prefix: str = "SYN"
    annual_drift: float = 0.10
    market_vol: float = 0.22
    sector_vol: float = 0.12
    idio_vol: tuple[float, float] = (0.15, 0.35)
    beta: tuple[float, float] = (0.6, 1.4)
    sector_loading: tuple[float, float] = (0.5, 1.5)
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    regime_vol: tuple[float, float] = (1.0, 1.5)
    regime_switch: tuple[float, float] = (0.02, 0.10)
    """Daily probabilities of calm -> volatile and volatile -> calm."""
    jump_prob: tuple[float, float] = (0.01, 0.03)
    """Daily jump probability per symbol in the calm and the volatile regime."""
    jump_size: float = 0.04
    overnight_share: float = 0.2
    """Share of a day's variance that arrives overnight (the open's gap)."""
    max_spread_ticks: int = 4
    trade_value_median: float = 15_000.0
    """Median value of one continuous trade, TRY."""
    splits_per_year: float = 4.0
    """Splits and bonus issues per year across the whole market."""
    dividends_per_year: float = 12.0
    split_min_price: float = 100.0
    """Only symbols whose initial price is at least this split or issue bonus shares (none
    when no symbol is priced that high, e.g. a one-symbol market priced at ``price_min``)."""
    circuit_breakers: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.n_symbols < 1:
            problems.append("n_symbols must be at least 1")
        if self.n_sessions < 1:
            problems.append("n_sessions must be at least 1")
        if self.seed < 0:
            problems.append("seed must be a non-negative integer")
        if not 0 < self.price_min <= self.price_max:
            problems.append("need 0 < price_min <= price_max")
        if self.trades_per_day < 1:
            problems.append("trades_per_day must be at least 1")
        if self.quote_updates_per_trade < 0:
            problems.append("quote_updates_per_trade must be non-negative")
        if not self.sectors:
            problems.append("at least one sector is needed")
        if not self.symbol_prefix.isalnum():
            problems.append("symbol_prefix must be alphanumeric")
        if not 1 <= self.max_spread_ticks <= 10:
            problems.append("max_spread_ticks must be between 1 and 10")
        if self.garch_alpha < 0 or self.garch_beta < 0 or self.garch_alpha + self.garch_beta >= 1:
            problems.append("GARCH needs alpha, beta >= 0 and alpha + beta < 1")
        if not 0 <= self.overnight_share < 1:
            problems.append("overnight_share must be in [0, 1)")
        for name in ("regime_switch", "jump_prob"):
            if not all(0 <= p <= 1 for p in getattr(self, name)):
                problems.append(f"{name} values must be probabilities")
        if min(self.market_vol, self.sector_vol, *self.idio_vol, self.jump_size) < 0:
            problems.append("volatilities must be non-negative")
        if self.splits_per_year < 0 or self.dividends_per_year < 0:
            problems.append("corporate action rates must be non-negative")
        if problems:
            raise ValueError("invalid synthetic market config: " + "; ".join(problems))


@dataclass(frozen=True)
class Halt:
    """A single-stock circuit-breaker halt: continuous trading stopped, a call auction ran."""

    symbol: str
    start: datetime
    """UTC instant the breaker tripped (continuous trading stops)."""
    end: datetime
    """UTC instant of the halt auction's uncross (print with condition "H")."""
    reference: float
    """Reference price the 5% move was measured from (last auction price)."""
    trigger_price: float
    uncross_price: float


@dataclass
class SyntheticDay:
    """One session of the synthetic market: ticks, L1 quotes, halts and the latent truth."""

    day: date
    half_day: bool
    regime: str
    trades: pl.DataFrame
    """TRADES schema; conditions O (opening uncross), C, H (halt uncross), K (closing), T."""
    quotes: pl.DataFrame
    """QUOTES schema; L1 updates during continuous trading (none during auctions and halts)."""
    halts: list[Halt]
    reference: pl.DataFrame
    """Per symbol: the band reference (previous close adjusted for the day's corporate action),
    the band, open, last continuous price and close."""
    latent: pl.DataFrame
    """Latent (unobservable) fair price per symbol at each continuous-trading minute boundary."""
    index: pl.DataFrame
    """Latent market-factor index level at each continuous-trading minute boundary."""
    index_close: float
    synthetic: bool = field(default=True)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def _to_ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _row_sum(a: np.ndarray) -> np.ndarray:
    """Sum along the last axis in a fixed order (a running sum), so that a row gives the same
    bits whether it is computed alone or inside a larger block."""
    return np.cumsum(a, axis=-1)[..., -1]


def _profile(m: int, open_amp: float, open_decay: float, close_amp: float, close_decay: float):
    """A U-shaped intraday profile over ``m`` minutes, normalised to sum to one."""
    tau = (np.arange(m) + 0.5) / m
    shape = (
        1.0 + open_amp * np.exp(-tau / open_decay) + close_amp * np.exp(-(1 - tau) / close_decay)
    )
    return shape / shape.sum()


def _variance_profile(m: int) -> np.ndarray:
    return _profile(m, 2.0, 0.04, 0.6, 0.03)


def _intensity_profile(m: int) -> np.ndarray:
    return _profile(m, 2.5, 0.06, 2.0, 0.05)


def _ar1(z: np.ndarray) -> np.ndarray:
    """Stationary AR(1) log-variance paths along the last axis from standard normals."""
    x = np.empty_like(z)
    x[..., 0] = _SV_STD * z[..., 0]
    scale = _SV_STD * math.sqrt(1 - _SV_PERSISTENCE**2)
    for k in range(1, z.shape[-1]):
        x[..., k] = _SV_PERSISTENCE * x[..., k - 1] + scale * z[..., k]
    return x


def _bridge(var: np.ndarray, weights: np.ndarray, z: np.ndarray, target: np.ndarray):
    """Cumulative path (with a leading zero) of Gaussian increments with variances
    ``var * weights`` conditioned to sum to ``target``: the exact Brownian-bridge construction
    for increments whose total variance is ``var``."""
    inc = np.sqrt(var[:, None] * weights) * z
    inc -= weights * (_row_sum(inc) - target)[:, None]
    out = np.zeros((inc.shape[0], inc.shape[1] + 1))
    np.cumsum(inc, axis=1, out=out[:, 1:])
    return out


# --- tick grid helpers on integer price units (vectorised) ---------------------------------


def _snap(schedule: TickSchedule, units: np.ndarray, mode: RoundingMode = RoundingMode.NEAREST):
    return schedule.round_units_array(units, mode)


def _step_up(schedule: TickSchedule, units: np.ndarray) -> np.ndarray:
    return units + schedule.tick_units_array(units)


def _step_down(schedule: TickSchedule, units: np.ndarray) -> np.ndarray:
    return units - schedule.tick_units_array(units - 1)


def _quote(schedule: TickSchedule, mid: np.ndarray, spread: np.ndarray, lo, hi, max_spread: int):
    """L1 bid/ask ``spread`` ticks apart around ``mid`` (float units), kept inside [lo, hi].

    Steps tick by tick so that a quote straddling a tier boundary stays on both grids.
    """
    tick = schedule.tick_units_array(np.floor(mid).astype(np.int64))
    bid = _snap(schedule, np.maximum(mid - 0.5 * spread * tick, 1.0), RoundingMode.DOWN)
    ask = bid
    for k in range(max_spread):
        ask = np.where(k < spread, _step_up(schedule, ask), ask)
    bid = np.minimum(np.maximum(bid, lo), _step_down(schedule, hi))
    ask = np.minimum(np.maximum(ask, _step_up(schedule, bid)), hi)
    return bid, ask


def _static_limits(schedule: TickSchedule, ref: np.ndarray, pct: float):
    """Tightest grid prices that do not trip the single-stock breaker around ``ref`` (units)."""
    ref_f = ref.astype(np.float64)
    hi = _snap(schedule, ref_f * (1 + pct), RoundingMode.DOWN)
    hi = np.where(_tripped(hi, ref_f, pct), _step_down(schedule, hi), hi)
    lo = _snap(schedule, ref_f * (1 - pct), RoundingMode.UP)
    lo = np.where(_tripped(lo, ref_f, pct), _step_up(schedule, lo), lo)
    return lo, hi


def _tripped(price: np.ndarray, ref: np.ndarray, pct: float) -> np.ndarray:
    """Vectorised ``CircuitBreakers.single_stock_triggered`` on price units."""
    return np.abs(price / ref - 1.0) >= pct - 1e-12


def _spread_ticks(u: np.ndarray, p: np.ndarray | float, max_spread: int) -> np.ndarray:
    """Spread in ticks: 1 + Binomial(max_spread - 1, p), drawn from uniforms ``u``."""
    n = max_spread - 1
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), np.shape(u))
    spread = np.ones(np.shape(u), dtype=np.int64)
    cdf = np.zeros(np.shape(u))
    for k in range(n):
        cdf = cdf + math.comb(n, k) * p**k * (1 - p) ** (n - k)
        spread += u >= cdf
    return spread


def _units_to_try(units: np.ndarray) -> np.ndarray:
    return np.round(units / PRICE_SCALE, 4)


def _ts_series(name: str, ns: np.ndarray) -> pl.Series:
    return pl.Series(name, np.asarray(ns, dtype=np.int64)).cast(pl.Datetime("ns", "UTC"))


# --- the daily layer ------------------------------------------------------------------------


@dataclass
class _Universe:
    symbols: list[str]
    sectors: np.ndarray  # sector index per symbol
    level: np.ndarray  # initial price, TRY
    beta: np.ndarray
    gamma: np.ndarray
    idio_daily_var: np.ndarray
    liquidity: np.ndarray
    spread_p: np.ndarray  # binomial p of extra spread ticks


@dataclass
class _Daily:
    """Per (session, symbol) state of the whole horizon; arrays are sessions x symbols."""

    regime: np.ndarray
    prev_close: np.ndarray  # band reference: previous close adjusted for the day's action
    band_lo: np.ndarray  # units
    band_hi: np.ndarray
    lo: np.ndarray  # latent log open (within the band)
    lc: np.ndarray  # latent log close (within the band)
    open_u: np.ndarray
    last_u: np.ndarray
    close_u: np.ndarray
    final_side: np.ndarray
    final_spread: np.ndarray
    m_id: np.ndarray  # market factor: intraday part and its variance (sessions,)
    m_on: np.ndarray
    var_m: np.ndarray
    s_id: np.ndarray  # sector factors, sessions x sectors
    var_s: np.ndarray  # (sessions,)
    var_e: np.ndarray
    jump_id: np.ndarray
    jump_at: np.ndarray  # fraction of the session at which the intraday jump happens
    activity: np.ndarray
    index_prev: np.ndarray  # index close of the previous session (sessions,)
    index_close: np.ndarray
    actions: pl.DataFrame


@dataclass
class _Block:
    """Layer 2 for rows of (symbol, session) that share a session length and rule set."""

    sym: np.ndarray
    t: np.ndarray
    m: int
    schedule: TickSchedule
    L: np.ndarray  # rows x (m+1) latent log price at minute boundaries
    var: np.ndarray  # rows x m diffusive variance of each minute
    counts: np.ndarray  # rows x m continuous trades per minute (0 while halted)
    halted: np.ndarray  # rows x m
    allow_lo: np.ndarray  # rows x m price units a print may take in that minute
    allow_hi: np.ndarray
    halts: list[tuple[int, int, int, int, int, int]]  # row, first col, last col, ref, trig, H
    halt_after: np.ndarray  # rows x m: minute opens with a halt uncross
    halt_price: np.ndarray  # rows x m: price units of that uncross
    halt_size: np.ndarray  # rows x m: size of that uncross
    jump_col: np.ndarray
    jump_u: np.ndarray
    cont_start: np.ndarray  # ns per row
    index_path: np.ndarray  # rows x (m+1) latent market index
    prints: dict[str, np.ndarray]


class SyntheticMarket:
    """A deterministic synthetic BIST equity market (see the module docstring for the layers).

    ``day(d)`` gives one session's ticks and quotes, ``iter_days()`` streams them in order,
    ``minute_bars()`` is the fast path for long histories of 1-minute bars. Every instrument
    name says "synthetic" and ``metadata`` carries ``synthetic=true``.
    """

    def __init__(
        self, config: SyntheticMarketConfig | None = None, calendar: TradingCalendar | None = None
    ) -> None:
        self.config = config or SyntheticMarketConfig()
        self.calendar = calendar or TradingCalendar()
        self.ticks = BIST_SHARE_TICKS
        self.bands = PriceBand(ticks=self.ticks)
        self.breakers = CircuitBreakers()
        self._sessions = self._find_sessions()
        self._index = {d: t for t, d in enumerate(self._sessions)}
        self._universe = self._make_universe()
        self._daily_state: _Daily | None = None
        self._times: dict[date, dict[str, int]] = {}

    # --- public API -------------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        return list(self._universe.symbols)

    @property
    def metadata(self) -> dict[str, str]:
        """Key-value labels for anything written from this market (e.g. Parquet metadata)."""
        return {
            "synthetic": "true",
            "generator": "quant.data.synthetic",
            "seed": str(self.config.seed),
            "config": json.dumps(asdict(self.config), default=str, sort_keys=True),
        }

    def instruments(self) -> list[Instrument]:
        cfg = self.config
        return [
            Instrument(
                symbol=s,
                name=f"Synthetic {cfg.sectors[j]} {k + 1:02d} (synthetic data)",
                sector=cfg.sectors[j],
                tick_table=self.ticks,
            )
            for k, (s, j) in enumerate(
                zip(self._universe.symbols, self._universe.sectors, strict=True)
            )
        ]

    def sessions(self) -> list[date]:
        """The XIST sessions covered, in order (holidays and weekends skipped)."""
        return list(self._sessions)

    def corporate_actions(self) -> pl.DataFrame:
        """Splits, bonus issues and cash dividends (CORPORATE_ACTIONS schema); raw prices jump
        by them on the ex-date and the day's band is computed from the adjusted close."""
        return self._daily.actions

    def day(self, day: date) -> SyntheticDay:
        """One session's trades, quotes, halts and latent truth."""
        t = self._session_index(day)
        n = self.config.n_symbols
        block = self._block(np.arange(n), np.full(n, t))
        return self._ticks(block, day)

    def iter_days(
        self, start: date | None = None, end: date | None = None
    ) -> Iterator[SyntheticDay]:
        """Stream the sessions in ``[start, end]`` one at a time, in order."""
        for d in self._range(start, end):
            yield self.day(d)

    def minute_bars(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        """1-minute bars (BARS schema) for every symbol straight from the latent path, sorted
        by symbol and time.

        Continuous-trading minutes with at least one trade, plus one bar per auction minute
        (opening uncross, closing uncross, trades at close). A halt's uncross opens the first
        bar after the halt; halted minutes have no bar.
        """
        return self._bars_frame([self._bars(b) for b in self._blocks(self._range(start, end))])

    def iter_minute_bars(
        self, start: date | None = None, end: date | None = None, sessions_per_chunk: int = 20
    ) -> Iterator[pl.DataFrame]:
        """``minute_bars`` in chunks of consecutive sessions (each sorted by symbol and time),
        to write long histories without holding them in memory."""
        days = self._range(start, end)
        for k in range(0, len(days), sessions_per_chunk):
            chunk = days[k : k + sessions_per_chunk]
            yield self._bars_frame([self._bars(b) for b in self._blocks(chunk)])

    def daily_reference(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        """Per session and symbol: the band reference (previous close adjusted for the day's
        corporate action), the daily band, open, last continuous price, close and regime.

        This is what a validator of this data needs to check bands on ex-dates.
        """
        dl, u = self._daily, self._universe
        idx = np.array([self._index[d] for d in self._range(start, end)])
        n = self.config.n_symbols
        t = np.repeat(idx, n)
        sym = np.tile(np.arange(n), idx.size)
        return pl.DataFrame(
            {
                "day": [self._sessions[k] for k in t],
                "symbol": pl.Series(u.symbols).gather(sym),
                "previous_close": dl.prev_close[t, sym],
                "band_lower": _units_to_try(dl.band_lo[t, sym]),
                "band_upper": _units_to_try(dl.band_hi[t, sym]),
                "open": _units_to_try(dl.open_u[t, sym]),
                "last_continuous": _units_to_try(dl.last_u[t, sym]),
                "close": _units_to_try(dl.close_u[t, sym]),
                "regime": pl.Series(REGIMES).gather(dl.regime[t]),
            }
        )

    def _bars_frame(self, parts: list[dict[str, np.ndarray]]) -> pl.DataFrame:
        """Assemble block outputs into one BARS frame in (symbol, time) order, one column at a
        time so that a year of bars never sits in memory three times over."""

        def column(name: str) -> np.ndarray:
            return np.concatenate([p.pop(name) for p in parts])[order]

        # Rows of a block run session-major; a stable sort on (symbol, session) keeps each
        # symbol-day's bars, already in time order, together.
        order = np.argsort(np.concatenate([p.pop("key") for p in parts]), kind="stable")
        ts = column("ts")
        data: dict[str, pl.Series | np.ndarray] = {
            "ts": _ts_series("ts", ts),
            "ts_end": _ts_series("ts_end", ts + MINUTE_NS),
        }
        del ts
        data["symbol"] = pl.Series(self._universe.symbols).gather(column("sym"))
        for name in ("open", "high", "low", "close"):
            data[name] = _units_to_try(column(name))
        data["volume"] = column("volume")
        data["vwap"] = column("vwap") / PRICE_SCALE
        data["trade_count"] = column("trade_count")
        return conform(pl.DataFrame(data), DataKind.BARS)

    def latent(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        """Latent fair price per symbol at every continuous-trading minute boundary."""
        frames = [self._latent_frame(block) for block in self._blocks(self._range(start, end))]
        return pl.concat(frames).sort("symbol", "ts")

    # --- sessions and universe ---------------------------------------------------------------

    def _find_sessions(self) -> list[date]:
        cfg = self.config
        cal = self.calendar
        if cfg.start > cal.last_day or cfg.start < cal.first_day:
            raise ValueError(
                f"start {cfg.start} is outside the {cal.calendar_name} calendar "
                f"({cal.first_day} to {cal.last_day})"
            )
        # 1.5 calendar days per session: weekends and XIST's ~14 weekday holidays a year
        # (7/5 alone came up short past ~1,200 sessions)
        end = min(cal.last_day, cfg.start + timedelta(days=cfg.n_sessions * 3 // 2 + 60))
        sessions = cal.sessions(cfg.start, end)
        if len(sessions) < cfg.n_sessions:
            raise ValueError(
                f"the {cal.calendar_name} calendar has only {len(sessions)} sessions from "
                f"{cfg.start} to its end ({cal.last_day}); asked for {cfg.n_sessions}"
            )
        return sessions[: cfg.n_sessions]

    def _make_universe(self) -> _Universe:
        cfg = self.config
        n = cfg.n_symbols
        g = _rng(cfg.seed, _S_UNIVERSE)
        levels = np.geomspace(cfg.price_min, cfg.price_max, n)
        level = levels[g.permutation(n)]
        sectors = g.permutation(n) % len(cfg.sectors)
        beta = g.uniform(*cfg.beta, n)
        gamma = g.uniform(*cfg.sector_loading, n)
        idio = g.uniform(*cfg.idio_vol, n) ** 2 / _DAYS_PER_YEAR
        liquidity = np.exp(0.7 * g.standard_normal(n))
        liquidity = np.clip(liquidity / liquidity.mean(), 0.2, 5.0)
        spread_p = np.clip(0.3 / np.sqrt(liquidity), 0.05, 0.8)
        width = max(2, len(str(n)))
        symbols = [f"{cfg.symbol_prefix}{k + 1:0{width}d}" for k in range(n)]
        return _Universe(symbols, sectors, level, beta, gamma, idio, liquidity, spread_p)

    def _session_index(self, day: date) -> int:
        try:
            return self._index[day]
        except KeyError:
            if self.calendar.first_day <= day <= self.calendar.last_day and not (
                self.calendar.is_session(day)
            ):
                raise ValueError(f"{day} is not a {self.calendar.calendar_name} session") from None
            raise ValueError(
                f"{day} is outside the synthetic market's sessions "
                f"({self._sessions[0]} to {self._sessions[-1]})"
            ) from None

    def _range(self, start: date | None, end: date | None) -> list[date]:
        lo = start or self._sessions[0]
        hi = end or self._sessions[-1]
        days = [d for d in self._sessions if lo <= d <= hi]
        if not days:
            raise ValueError(
                f"no synthetic sessions between {lo} and {hi} "
                f"(the market covers {self._sessions[0]} to {self._sessions[-1]})"
            )
        return days

    def _session_times(self, day: date) -> dict[str, int]:
        times = self._times.get(day)
        if times is None:
            info = self.calendar.session(day)
            if info is None:
                raise ValueError(f"{day} is not a session")
            times = {}
            for phase, key in (
                (SessionPhase.OPENING_UNCROSS, "open"),
                (SessionPhase.CONTINUOUS, "cont"),
                (SessionPhase.CLOSING_UNCROSS, "close"),
                (SessionPhase.TRADES_AT_CLOSE, "tac"),
            ):
                a, b = info.bounds(phase)
                times[key + "_start"] = _to_ns(a)
                times[key + "_end"] = _to_ns(b)
            times["minutes"] = (times["cont_end"] - times["cont_start"]) // MINUTE_NS
            self._times[day] = times
        return times

    # --- layer 1: daily state ----------------------------------------------------------------

    @property
    def _daily(self) -> _Daily:
        if self._daily_state is None:
            self._daily_state = self._simulate_daily()
        return self._daily_state

    def _plan_actions(self) -> dict[tuple[int, int], tuple[CorporateActionKind, float]]:
        """Ex-dates, kinds and ratios (dividends: yields) of the horizon's corporate actions.

        Each symbol-day draws from the symbol's own stream, so the actions of the first sessions
        do not change when the horizon grows. Splits and bonus issues go to symbols priced at
        least ``split_min_price``; the first session has none (it has no previous print).
        """
        cfg, u = self.config, self._universe
        n_t, n = cfg.n_sessions, cfg.n_symbols
        # No symbol priced for a split: no splits (giving them to cheap stocks instead split a
        # one-symbol market's 5 TRY stock again and again, down to a zero price).
        splitters = u.level >= cfg.split_min_price
        p_split = cfg.splits_per_year / (_DAYS_PER_YEAR * max(int(splitters.sum()), 1))
        p_div = cfg.dividends_per_year / (_DAYS_PER_YEAR * n)
        plan: dict[tuple[int, int], tuple[CorporateActionKind, float]] = {}
        for i in range(n):
            draws = _rng(cfg.seed, _S_CORPORATE, i).random((n_t, 4))
            for t in range(1, n_t):
                event, kind, size, dividend = draws[t]
                if splitters[i] and event < p_split:
                    if kind < 0.4:
                        plan[t, i] = (CorporateActionKind.SPLIT, (2.0, 5.0)[int(size * 2)])
                    else:
                        plan[t, i] = (
                            CorporateActionKind.BONUS,
                            (1.2, 1.5, 2.0, 3.0)[int(size * 4)],
                        )
                elif dividend < p_div:
                    plan[t, i] = (CorporateActionKind.DIVIDEND, 0.01 + 0.05 * size)
        return plan

    def _simulate_daily(self) -> _Daily:
        cfg, u = self.config, self._universe
        n_t, n, n_s = cfg.n_sessions, cfg.n_symbols, len(cfg.sectors)
        rho = cfg.overnight_share
        regime_vol = np.asarray(cfg.regime_vol)
        mkt_z = _rng(cfg.seed, _S_MARKET_DAILY, 0).standard_normal((n_t, 2 + 2 * n_s))
        mkt_u = _rng(cfg.seed, _S_MARKET_DAILY, 1).random(n_t)
        sym_z = np.stack(
            [_rng(cfg.seed, _S_SYMBOL_DAILY, i, 0).standard_normal((n_t, 5)) for i in range(n)],
            axis=1,
        )  # sessions x symbols x 5
        sym_u = np.stack(
            [_rng(cfg.seed, _S_SYMBOL_DAILY, i, 1).random((n_t, 5)) for i in range(n)], axis=1
        )
        plan = self._plan_actions()

        var_m0 = cfg.market_vol**2 / _DAYS_PER_YEAR
        var_s0 = cfg.sector_vol**2 / _DAYS_PER_YEAR
        persistence = cfg.garch_alpha + cfg.garch_beta
        h_m = var_m0
        h_e = u.idio_daily_var.copy()
        drift = cfg.annual_drift / _DAYS_PER_YEAR

        shape = (n_t, n)
        out = {
            k: np.zeros(shape)
            for k in ("prev_close", "lo", "lc", "var_e", "jump_id", "jump_at", "activity")
        }
        for k in ("band_lo", "band_hi", "open_u", "last_u", "close_u", "final_spread"):
            out[k] = np.zeros(shape, dtype=np.int64)
        out["final_side"] = np.zeros(shape, dtype=np.int8)
        regime = np.zeros(n_t, dtype=np.int8)
        m_id, m_on, var_m = np.zeros(n_t), np.zeros(n_t), np.zeros(n_t)
        s_id, var_s = np.zeros((n_t, n_s)), np.zeros(n_t)
        index_prev, index_close = np.zeros(n_t), np.zeros(n_t)
        actions: list[dict] = []

        prev_close = np.array([self.ticks.round_to_tick(p, self._sessions[0]) for p in u.level])
        index = 10_000.0
        state = 0
        for t, day in enumerate(self._sessions):
            schedule = self.ticks.schedule_on(day)
            if t > 0:
                stay = 1 - cfg.regime_switch[state]
                state = state if mkt_u[t] < stay else 1 - state
            regime[t] = state
            mult = regime_vol[state]

            adj = prev_close.copy()
            for i in range(n):
                action = plan.get((t, i))
                if action is None:
                    continue
                kind, x = action
                row = {"symbol": u.symbols[i], "ex_date": day, "kind": str(kind)}
                if kind is CorporateActionKind.DIVIDEND:
                    amount = max(0.01, round(x * prev_close[i], 2))
                    adj[i] = prev_close[i] - amount
                    row.update(ratio=None, price=None, amount=amount)
                else:
                    adj[i] = prev_close[i] / x
                    row.update(ratio=x, price=None, amount=None)
                actions.append(row)
            bands = [self.bands.daily(p, day) for p in adj]
            band_lo = np.array([round(b.lower * PRICE_SCALE) for b in bands], dtype=np.int64)
            band_hi = np.array([round(b.upper * PRICE_SCALE) for b in bands], dtype=np.int64)
            log_lo, log_hi = np.log(band_lo / PRICE_SCALE), np.log(band_hi / PRICE_SCALE)

            zm = mkt_z[t]
            sd_m = math.sqrt(h_m) * mult
            m_on[t] = math.sqrt(rho) * sd_m * zm[0]
            m_id[t] = math.sqrt(1 - rho) * sd_m * zm[1]
            var_m[t] = (1 - rho) * sd_m**2
            sd_s = math.sqrt(var_s0) * mult
            s_on = math.sqrt(rho) * sd_s * zm[2 : 2 + n_s]
            s_id[t] = math.sqrt(1 - rho) * sd_s * zm[2 + n_s :]
            var_s[t] = (1 - rho) * sd_s**2

            z, uu = sym_z[t], sym_u[t]
            sd_e = np.sqrt(h_e) * mult
            e_on = math.sqrt(rho) * sd_e * z[:, 0]
            e_id = math.sqrt(1 - rho) * sd_e * z[:, 1]
            jump = (uu[:, 0] < cfg.jump_prob[state]) * cfg.jump_size * z[:, 2]
            overnight_jump = uu[:, 1] < 0.5
            j_on = np.where(overnight_jump, jump, 0.0)
            j_id = np.where(overnight_jump, 0.0, jump)

            sec = u.sectors
            lo = np.log(adj) + u.beta * m_on[t] + u.gamma * s_on[sec] + e_on + j_on
            lo = np.clip(lo, log_lo, log_hi)
            lc_raw = lo + drift + u.beta * m_id[t] + u.gamma * s_id[t][sec] + e_id + j_id
            lc = np.clip(lc_raw, log_lo, log_hi)
            open_u = np.clip(_snap(schedule, np.exp(lo) * PRICE_SCALE), band_lo, band_hi)

            spread = _spread_ticks(uu[:, 3], u.spread_p, cfg.max_spread_ticks)
            side = np.where(uu[:, 4] < 0.5, 1, -1).astype(np.int8)
            bid, ask = _quote(
                schedule, np.exp(lc) * PRICE_SCALE, spread, band_lo, band_hi, cfg.max_spread_ticks
            )
            last_u = np.where(side > 0, ask, bid)
            close_try = []
            for i in range(n):
                cband = self.bands.closing(last_u[i] / PRICE_SCALE, day, bands[i])
                auction = math.exp(lc[i] + 0.001 * z[i, 4])
                price = self.ticks.round_to_tick(auction, day)
                close_try.append(min(max(price, cband.lower), cband.upper))
            close_u = np.array([round(p * PRICE_SCALE) for p in close_try], dtype=np.int64)

            sd_day = np.sqrt(u.beta**2 * var_m0 + u.gamma**2 * var_s0 + u.idio_daily_var) * mult
            move = np.abs(lc_raw - np.log(adj)) / sd_day
            act = (1.0, 1.5)[state] * np.exp(0.3 * z[:, 3] - 0.045) * (0.6 + 0.5 * move)

            out["prev_close"][t], out["band_lo"][t], out["band_hi"][t] = adj, band_lo, band_hi
            out["lo"][t], out["lc"][t], out["open_u"][t] = lo, lc, open_u
            out["last_u"][t], out["close_u"][t] = last_u, close_u
            out["final_side"][t], out["final_spread"][t] = side, spread
            out["var_e"][t] = (1 - rho) * sd_e**2
            out["jump_id"][t], out["jump_at"][t], out["activity"][t] = j_id, uu[:, 2], act

            # GARCH(1,1) on the standardised shocks; jumps and regime scaling excluded so the
            # variance stays stationary in either regime.
            eps_m = (m_on[t] + m_id[t]) / mult
            h_m = var_m0 * (1 - persistence) + cfg.garch_alpha * eps_m**2 + cfg.garch_beta * h_m
            eps_e = (e_on + e_id) / mult
            h_e = (
                u.idio_daily_var * (1 - persistence)
                + cfg.garch_alpha * eps_e**2
                + cfg.garch_beta * h_e
            )
            index_prev[t] = index
            index = index * math.exp(m_on[t] + m_id[t])
            index_close[t] = index
            prev_close = close_u / PRICE_SCALE

        frame = pl.DataFrame(
            actions,
            schema={
                "symbol": pl.String,
                "ex_date": pl.Date,
                "kind": pl.String,
                "ratio": pl.Float64,
                "price": pl.Float64,
                "amount": pl.Float64,
            },
        )
        return _Daily(
            regime=regime,
            m_id=m_id,
            m_on=m_on,
            var_m=var_m,
            s_id=s_id,
            var_s=var_s,
            index_prev=index_prev,
            index_close=index_close,
            actions=conform(frame, DataKind.CORPORATE_ACTIONS).sort("ex_date", "symbol"),
            **out,
        )

    # --- layer 2: minute latent path ---------------------------------------------------------

    def _blocks(self, days: list[date], max_rows: int = 1500) -> Iterator[_Block]:
        """Rows of (symbol, session) grouped by session length and rules, in bounded chunks
        (bounded memory: a block holds a few dozen rows x minutes arrays)."""
        groups: dict[tuple, list[int]] = {}
        for d in days:
            key = (
                self._session_times(d)["minutes"],
                self.ticks.schedule_on(d),
                self.breakers.rule_on(d),
            )
            groups.setdefault(key, []).append(self._index[d])
        n = self.config.n_symbols
        per_chunk = max(1, max_rows // n)
        for ts in groups.values():
            for k in range(0, len(ts), per_chunk):
                chunk = np.asarray(ts[k : k + per_chunk])
                yield self._block(np.tile(np.arange(n), chunk.size), np.repeat(chunk, n))

    def _block(self, sym: np.ndarray, t: np.ndarray) -> _Block:
        cfg, u, dl = self.config, self._universe, self._daily
        seed = cfg.seed
        days = [self._sessions[k] for k in t]
        first = days[0]
        schedule = self.ticks.schedule_on(first)
        rule = self.breakers.rule_on(first)
        m = self._session_times(first)["minutes"]
        rows = sym.size
        vprof, iprof = _variance_profile(m), _intensity_profile(m)

        # Market and sector components, one path per distinct session.
        uniq_t, row_day = np.unique(t, return_inverse=True)
        n_days, n_s = uniq_t.size, len(cfg.sectors)
        mz = np.empty((n_days, 2, m))
        sz = np.empty((n_days, n_s, m))
        for k, tt in enumerate(uniq_t):
            ordinal = self._sessions[tt].toordinal()
            mz[k] = _rng(seed, _S_MARKET_MINUTE, ordinal).standard_normal((2, m))
            for j in range(n_s):
                sz[k, j] = _rng(seed, _S_SECTOR_MINUTE, j, ordinal).standard_normal(m)
        x_m = _ar1(mz[:, 1])
        w_m = vprof * np.exp(x_m)
        w_m /= _row_sum(w_m)[:, None]
        mkt = _bridge(dl.var_m[uniq_t], w_m, mz[:, 0], dl.m_id[uniq_t])
        w_s = np.broadcast_to(vprof, (n_days * n_s, m))
        sec = _bridge(
            np.repeat(dl.var_s[uniq_t], n_s),
            w_s,
            sz.reshape(n_days * n_s, m),
            dl.s_id[uniq_t].reshape(-1),
        ).reshape(n_days, n_s, m + 1)

        # Idiosyncratic component and everything else drawn per (symbol, session).
        gens = [
            _rng(seed, _S_SYMBOL_MINUTE, int(i), d.toordinal())
            for i, d in zip(sym, days, strict=True)
        ]
        iz = np.empty((rows, 2, m))
        aux_u = np.empty((rows, 3 + 2 * _T_PRINTS_MAX))
        aux_z = np.empty((rows, 2 + _T_PRINTS_MAX + m))
        n_tac = np.empty(rows, dtype=np.int64)
        for r, g in enumerate(gens):
            iz[r] = g.standard_normal((2, m))
            aux_u[r] = g.random(aux_u.shape[1])
            aux_z[r] = g.standard_normal(aux_z.shape[1])
            n_tac[r] = min(int(g.poisson(4.0)), _T_PRINTS_MAX)
        x_e = _ar1(iz[:, 1])
        w_e = vprof * np.exp(x_e)
        w_e /= _row_sum(w_e)[:, None]

        beta, gamma, sectors = u.beta[sym], u.gamma[sym], u.sectors[sym]
        lo, lc = dl.lo[t, sym], dl.lc[t, sym]
        jump = dl.jump_id[t, sym]
        mrow = mkt[row_day]
        srow = sec[row_day, sectors]
        target = lc - lo - beta * mrow[:, -1] - gamma * srow[:, -1] - jump
        idio = _bridge(dl.var_e[t, sym], w_e, iz[:, 0], target)
        cols = np.arange(m)
        jump_col = np.minimum((dl.jump_at[t, sym] * m).astype(np.int64), m - 1)
        after_jump = np.arange(m + 1)[None, :] > jump_col[:, None]
        L = lo[:, None] + beta[:, None] * mrow + gamma[:, None] * srow + idio
        L += jump[:, None] * after_jump
        L[:, m] = lc
        var = (
            (beta**2 * dl.var_m[t])[:, None] * w_m[row_day]
            + (gamma**2 * dl.var_s[t])[:, None] * vprof
            + dl.var_e[t, sym][:, None] * w_e
        )
        index_path = dl.index_prev[t][:, None] * np.exp(dl.m_on[t][:, None] + mrow)

        # Trade counts: U-shaped intensity that rises with intraday volatility.
        shape = iprof * np.exp(0.5 * (x_m[row_day] + x_e))
        expected = cfg.trades_per_day * u.liquidity[sym] * dl.activity[t, sym]
        expected = expected * (m / _FULL_DAY_MINUTES)
        lam = expected[:, None] * shape / _row_sum(shape)[:, None]
        # The universe is BIST-30-like: every name trades in every minute of continuous
        # trading, so a minute without a bar is a real gap (a halt), never a quiet spell.
        counts = np.empty((rows, m), dtype=np.int64)
        for r, g in enumerate(gens):
            counts[r] = 1 + g.poisson(np.maximum(lam[r] - 1.0, 0.0))

        # Circuit breakers, detected where the latent path crosses 5% at a minute boundary.
        band_lo, band_hi = dl.band_lo[t, sym], dl.band_hi[t, sym]
        boundary = np.clip(
            _snap(schedule, np.exp(L[:, 1:]) * PRICE_SCALE), band_lo[:, None], band_hi[:, None]
        )
        auction_minutes = math.ceil(rule.single_stock_auction / timedelta(minutes=1))
        armed = cols <= m - auction_minutes - 2
        if not cfg.circuit_breakers:
            armed = np.zeros(m, dtype=bool)
        open_u = dl.open_u[t, sym]
        ref = np.repeat(open_u[:, None], m, axis=1)
        halted = np.zeros((rows, m), dtype=bool)
        halt_after = np.zeros((rows, m), dtype=bool)
        halt_price = np.zeros((rows, m), dtype=np.int64)
        halts: list[tuple[int, int, int, int, int, int]] = []
        pct = rule.single_stock_move_pct
        current = open_u.astype(np.float64)
        start = np.zeros(rows, dtype=np.int64)
        active = np.arange(rows)
        while active.size and armed.any():
            trig = (
                _tripped(boundary[active], current[active, None], pct)
                & armed[None, :]
                & (cols[None, :] >= start[active, None])
            )
            has = trig.any(axis=1)
            active, trig = active[has], trig[has]
            if not active.size:
                break
            c = trig.argmax(axis=1)
            last = c + auction_minutes  # last halted minute; uncross at its end
            h_price = boundary[active, last]
            halted[active] |= (cols[None, :] > c[:, None]) & (cols[None, :] <= last[:, None])
            halt_after[active, last + 1] = True
            halt_price[active, last + 1] = h_price
            ref[active] = np.where(cols[None, :] > last[:, None], h_price[:, None], ref[active])
            for r, c0, c1, hp in zip(active, c, last, h_price, strict=True):
                halts.append(
                    (int(r), int(c0), int(c1), int(current[r]), int(boundary[r, c0]), int(hp))
                )
            current[active] = h_price
            start[active] = last + 1
        counts[halted] = 0
        counts[:, m - 1] = np.maximum(counts[:, m - 1], 1)  # the anchored last continuous trade

        static_lo, static_hi = _static_limits(schedule, ref, pct)
        allow_lo = np.where(armed, np.maximum(band_lo[:, None], static_lo), band_lo[:, None])
        allow_hi = np.where(armed, np.minimum(band_hi[:, None], static_hi), band_hi[:, None])

        # Auction prints: opening (O), halt uncross (H), closing (K), trades at close (T).
        typical_size = cfg.trade_value_median * math.exp(0.5) / (dl.close_u[t, sym] / PRICE_SCALE)
        daily_volume = expected * typical_size
        times = [self._session_times(d) for d in days]
        col = {k: np.array([x[k] for x in times], dtype=np.int64) for k in times[0]}
        o_ts = col["open_start"] + (aux_u[:, 0] * (col["open_end"] - col["open_start"])).astype(
            np.int64
        )
        k_ts = col["close_start"] + (aux_u[:, 1] * (col["close_end"] - col["close_start"])).astype(
            np.int64
        )
        tac_len = col["tac_end"] - col["tac_start"]
        t_ts = col["tac_start"][:, None] + np.sort(
            (aux_u[:, 3 : 3 + _T_PRINTS_MAX] * tac_len[:, None]).astype(np.int64), axis=1
        )
        t_side = np.where(aux_u[:, 3 + _T_PRINTS_MAX :] < 0.5, 1, -1).astype(np.int8)

        def _size(scale: np.ndarray, z: np.ndarray, spread: float = 0.5) -> np.ndarray:
            return np.maximum(1, np.rint(scale * np.exp(spread * z - 0.5 * spread**2))).astype(
                np.int64
            )

        prints = {
            "o_ts": o_ts,
            "o_size": _size(0.02 * daily_volume, aux_z[:, 0]),
            "k_ts": k_ts,
            "k_size": _size(0.08 * daily_volume, aux_z[:, 1]),
            "t_ts": t_ts,
            "t_size": _size(
                np.broadcast_to(typical_size[:, None], t_ts.shape),
                aux_z[:, 2 : 2 + _T_PRINTS_MAX],
                1.0,
            ),
            "t_side": t_side,
            "t_n": n_tac,
            "tac_start": col["tac_start"],
            "tac_minutes": (tac_len + MINUTE_NS - 1) // MINUTE_NS,
        }
        halt_size = np.where(
            halt_after, _size(0.01 * daily_volume[:, None], aux_z[:, 2 + _T_PRINTS_MAX :]), 0
        )
        return _Block(
            sym=sym,
            t=t,
            m=m,
            schedule=schedule,
            L=L,
            var=var,
            counts=counts,
            halted=halted,
            allow_lo=allow_lo,
            allow_hi=allow_hi,
            halts=halts,
            halt_after=halt_after,
            halt_price=halt_price,
            halt_size=halt_size,
            jump_col=jump_col,
            jump_u=aux_u[:, 2],
            cont_start=col["cont_start"],
            index_path=index_path,
            prints=prints,
        )

    # --- layer 3a: ticks and quotes ----------------------------------------------------------

    def _ticks(self, b: _Block, day: date) -> SyntheticDay:
        u, dl = self._universe, self._daily
        t = int(b.t[0])
        trade_parts: list[dict[str, np.ndarray]] = []
        quote_parts: list[dict[str, np.ndarray]] = []
        for r in range(b.sym.size):
            trades, quotes = self._symbol_ticks(b, r, day)
            trade_parts.append(trades)
            quote_parts.append(quotes)
        symbols = pl.Series("symbol", u.symbols)

        def frame(parts: list[dict[str, np.ndarray]], kind: DataKind) -> pl.DataFrame:
            cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            codes = cat.pop("sym")
            data = {"ts": _ts_series("ts", cat.pop("ts")), "symbol": symbols.gather(codes)}
            for k in ("price", "bid_price", "ask_price"):
                if k in cat:
                    data[k] = _units_to_try(cat.pop(k))
            if "condition" in cat:
                data["condition"] = pl.Series(_CONDITIONS).gather(cat.pop("condition"))
            data.update(cat)
            return conform(pl.DataFrame(data), kind)

        halts = [
            Halt(
                symbol=u.symbols[b.sym[r]],
                start=_ns_to_datetime(b.cont_start[r] + (c0 + 1) * MINUTE_NS),
                end=_ns_to_datetime(b.cont_start[r] + (c1 + 1) * MINUTE_NS),
                reference=ref / PRICE_SCALE,
                trigger_price=trig / PRICE_SCALE,
                uncross_price=hp / PRICE_SCALE,
            )
            for r, c0, c1, ref, trig, hp in sorted(b.halts, key=lambda h: (h[1], h[0]))
        ]
        reference = self.daily_reference(day, day).drop("day", "regime")
        index_ts = b.cont_start[0] + np.arange(b.m + 1) * MINUTE_NS
        return SyntheticDay(
            day=day,
            half_day=self.calendar.is_half_day(day),
            regime=REGIMES[int(dl.regime[t])],
            trades=frame(trade_parts, DataKind.TRADES),
            quotes=frame(quote_parts, DataKind.QUOTES),
            halts=halts,
            reference=reference,
            latent=self._latent_frame(b),
            index=pl.DataFrame({"ts": _ts_series("ts", index_ts), "level": b.index_path[0]}),
            index_close=float(dl.index_close[t]),
        )

    def _symbol_ticks(self, b: _Block, r: int, day: date):
        """Continuous-trading events of one symbol-day on a Brownian bridge between the minute
        boundaries of the latent path, plus the auction prints."""
        cfg, u, dl = self.config, self._universe, self._daily
        i, t, m, sched = int(b.sym[r]), int(b.t[r]), b.m, b.schedule
        g = _rng(cfg.seed, _S_TICKS, i, day.toordinal())
        n = b.counts[r]
        live = ~b.halted[r]
        quote_only = g.poisson(cfg.quote_updates_per_trade * n + 0.5) * live
        forced = b.halt_after[r].astype(np.int64)  # a fresh quote when trading resumes
        forced[0] = 1  # and at the start of continuous trading
        per_minute = n + forced + quote_only
        starts = np.concatenate([[0], np.cumsum(per_minute)[:-1]])
        e = int(per_minute.sum())
        col = np.repeat(np.arange(m), per_minute)
        pos = np.arange(e) - starts[col]
        is_trade = pos < n[col]
        is_forced = ~is_trade & (pos < (n + forced)[col])
        uu = g.random(e)
        uu[is_forced] = 0.0
        is_anchor = np.zeros(e, dtype=bool)
        is_anchor[starts[m - 1]] = True  # a trade: the last minute always has one
        uu[is_anchor] = 1.0
        order = np.argsort(col + uu, kind="stable")  # sorts within each minute only
        col, uu, is_trade, is_anchor = col[order], uu[order], is_trade[order], is_anchor[order]

        # Brownian bridge between L[k] and L[k+1] at the sorted event times of minute k.
        u_prev = np.concatenate([[0.0], uu[:-1]])
        nonempty = per_minute > 0
        u_prev[starts[nonempty]] = 0.0
        z = g.standard_normal(e)
        z_end = g.standard_normal(m)
        cs = np.cumsum(np.sqrt(np.maximum(uu - u_prev, 0.0)) * z)
        w = cs - np.concatenate([[0.0], cs])[starts][col]
        last = (starts + per_minute - 1)[nonempty]
        w_end = np.zeros(m)
        w_end[nonempty] = w[last] + np.sqrt(np.maximum(1.0 - uu[last], 0.0)) * z_end[nonempty]
        lat = b.L[r]
        a, end = lat[:-1], lat[1:].copy()
        jump, jc = dl.jump_id[t, i], b.jump_col[r]
        end[jc] -= jump
        sig = np.sqrt(b.var[r])
        x = a[col] + (end[col] - a[col]) * uu + sig[col] * (w - uu * w_end[col])
        x += jump * ((col == jc) & (uu >= b.jump_u[r]))
        x[is_anchor] = lat[m]

        t0 = b.cont_start[r]
        ts = t0 + col * MINUTE_NS + (uu * MINUTE_NS).astype(np.int64)
        ts = np.minimum(ts, t0 + (col + 1) * MINUTE_NS - 2000)
        ts[is_anchor] = t0 + m * MINUTE_NS - 1000
        k = np.arange(e)
        ts = k + np.maximum.accumulate(ts - k)  # strictly increasing per symbol

        spread = _spread_ticks(g.random(e), u.spread_p[i], cfg.max_spread_ticks)
        spread[is_anchor] = dl.final_spread[t, i]
        mid = np.exp(x) * PRICE_SCALE
        bid, ask = _quote(
            sched, mid, spread, b.allow_lo[r][col], b.allow_hi[r][col], cfg.max_spread_ticks
        )
        step = np.sign(np.diff(x, prepend=x[0]))
        side = np.where(g.random(e) < 0.5 + 0.25 * step, 1, -1).astype(np.int8)
        side[is_anchor] = dl.final_side[t, i]
        depth = 4 * cfg.trade_value_median / (mid / PRICE_SCALE)
        qz = g.standard_normal((2, e))
        bid_size = np.maximum(1, np.rint(depth * np.exp(0.8 * qz[0]))).astype(np.int64)
        ask_size = np.maximum(1, np.rint(depth * np.exp(0.8 * qz[1]))).astype(np.int64)

        c_price = np.where(side > 0, ask, bid)[is_trade]
        c_side = side[is_trade]
        c_ts = ts[is_trade]
        sz = g.standard_normal(c_price.size)
        c_size = np.maximum(
            1, np.rint(cfg.trade_value_median * np.exp(sz) / (c_price / PRICE_SCALE))
        ).astype(np.int64)

        p = b.prints
        h_cols = np.flatnonzero(b.halt_after[r])
        n_t = int(p["t_n"][r])
        close = dl.close_u[t, i]
        parts = [
            # (ts, price, size, side, condition code)
            ([p["o_ts"][r]], [dl.open_u[t, i]], [p["o_size"][r]], [0], _C_OPEN),
            (
                t0 + h_cols * MINUTE_NS,
                b.halt_price[r][h_cols],
                b.halt_size[r][h_cols],
                np.zeros(h_cols.size),
                _C_HALT,
            ),
            (c_ts, c_price, c_size, c_side, _C_CONT),
            ([p["k_ts"][r]], [close], [p["k_size"][r]], [0], _C_CLOSE),
            (
                p["t_ts"][r][:n_t],
                np.full(n_t, close),
                p["t_size"][r][:n_t],
                p["t_side"][r][:n_t],
                _C_TAC,
            ),
        ]
        tr_ts = np.concatenate([np.asarray(x[0], dtype=np.int64) for x in parts])
        tr_order = np.argsort(tr_ts, kind="stable")
        trades = {
            "ts": tr_ts[tr_order],
            "sym": np.full(tr_ts.size, i),
            "price": np.concatenate([np.asarray(x[1], dtype=np.int64) for x in parts])[tr_order],
            "size": np.concatenate([np.asarray(x[2], dtype=np.int64) for x in parts])[tr_order],
            "seq": np.arange(tr_ts.size, dtype=np.int64),
            "side": np.concatenate([np.asarray(x[3], dtype=np.int8) for x in parts])[tr_order],
            "condition": np.concatenate([np.full(len(x[0]), x[4], dtype=np.int64) for x in parts])[
                tr_order
            ],
        }
        quotes = {
            "ts": ts,
            "sym": np.full(e, i),
            "bid_price": bid,
            "bid_size": bid_size,
            "ask_price": ask,
            "ask_size": ask_size,
            "seq": np.arange(e, dtype=np.int64),
        }
        return trades, quotes

    # --- layer 3b: fast 1-minute bars --------------------------------------------------------

    def _bars(self, b: _Block) -> dict[str, np.ndarray]:
        """Layer 3b for one block: bar columns (price units) for every minute with a print."""
        cfg, dl = self.config, self._daily
        rows, m, sched = b.sym.size, b.m, b.schedule
        ex = np.empty((rows, 2, m))
        zz = np.empty((rows, 3, m))
        uu = np.empty((rows, 2, m))
        for r in range(rows):
            g = _rng(cfg.seed, _S_BARS, int(b.sym[r]), self._sessions[b.t[r]].toordinal())
            ex[r] = g.standard_exponential((2, m))
            zz[r] = g.standard_normal((3, m))
            uu[r] = g.random((2, m))
        a, end, var, n = b.L[:, :-1], b.L[:, 1:], b.var, b.counts
        # Extremes of a Brownian bridge from a to end (exact marginal law), shrunk for the
        # handful of points a minute's trades actually sample.
        f = n / (n + 2.0)
        gap = (end - a) ** 2
        hi_lat = 0.5 * ((a + end) + np.sqrt(gap + 2 * var * f * ex[:, 0]))
        lo_lat = 0.5 * ((a + end) - np.sqrt(gap + 2 * var * f * ex[:, 1]))
        edge = np.sqrt(var / (n + 1.0))
        single = n == 1
        mid_lat = 0.5 * (a + end) + 0.5 * np.sqrt(var) * zz[:, 0]
        o_lat = np.where(single, mid_lat, a + edge * zz[:, 0])
        c_lat = np.where(single, mid_lat, end + edge * zz[:, 1])

        def price(lat: np.ndarray, offset: np.ndarray | float) -> np.ndarray:
            """Latent to a traded price: half a spread (bid-ask bounce) off, on the grid."""
            mid = np.exp(lat) * PRICE_SCALE
            tick = sched.tick_units_array(np.floor(mid).astype(np.int64))
            snapped = _snap(sched, np.maximum(mid + offset * tick, 1.0))
            return np.clip(snapped, b.allow_lo, b.allow_hi)

        bounce = np.where(uu[:, 0] < 0.5, -0.75, 0.75)
        o = price(o_lat, bounce)
        c = price(c_lat, np.where(single, bounce, np.where(uu[:, 1] < 0.5, -0.75, 0.75)))
        hi = price(hi_lat, 0.75)
        lo = price(lo_lat, -0.75)
        last = dl.last_u[b.t, b.sym]
        c[:, m - 1] = last
        o[:, m - 1] = np.where(single[:, m - 1], last, o[:, m - 1])
        h_only = b.halt_after & (n == 0)
        o = np.where(b.halt_after, b.halt_price, o)
        c = np.where(h_only, b.halt_price, c)
        prints = n + b.halt_after
        few = prints <= 2
        hi = np.where(few, np.maximum(o, c), np.maximum(hi, np.maximum(o, c)))
        lo = np.where(few, np.minimum(o, c), np.minimum(lo, np.minimum(o, c)))
        vwap = np.clip(np.exp(0.5 * (a + end)) * PRICE_SCALE, lo, hi)
        vwap = np.where(few & single & ~b.halt_after, o, vwap)
        # Sum of lognormal trade sizes, approximated by one lognormal with the same moments.
        per_trade = cfg.trade_value_median * math.exp(0.5) / (vwap / PRICE_SCALE)
        sigma = np.sqrt(np.log1p((math.e - 1) / np.maximum(n, 1)))
        volume = np.where(
            n > 0,
            np.maximum(n, np.rint(n * per_trade * np.exp(sigma * zz[:, 2] - 0.5 * sigma**2))),
            0,
        ).astype(np.int64) + np.where(b.halt_after, b.halt_size, 0)

        # The grid of a row: opening-uncross minute, continuous minutes, closing-uncross
        # minute, trades-at-close minutes; it is in time order, so flattening keeps rows sorted.
        p = b.prints
        open_u, close_u = dl.open_u[b.t, b.sym], dl.close_u[b.t, b.sym]
        w = int(p["tac_minutes"].max())
        tac = np.arange(_T_PRINTS_MAX)[None, :] < p["t_n"][:, None]
        off = (p["t_ts"] - p["tac_start"][:, None]) // MINUTE_NS
        slot = (np.arange(rows)[:, None] * w + off)[tac]
        t_count = np.bincount(slot, minlength=rows * w).reshape(rows, w)
        t_volume = np.bincount(slot, weights=p["t_size"][tac], minlength=rows * w)
        t_volume = np.rint(t_volume).astype(np.int64).reshape(rows, w)

        def grid(first: np.ndarray, cont: np.ndarray, close: np.ndarray, tac_: np.ndarray):
            return np.concatenate([first[:, None], cont, close[:, None], tac_], axis=1)

        close_w = np.repeat(close_u[:, None], w, axis=1)
        ts = grid(
            p["o_ts"] - p["o_ts"] % MINUTE_NS,
            b.cont_start[:, None] + np.arange(m)[None, :] * MINUTE_NS,
            p["k_ts"] - p["k_ts"] % MINUTE_NS,
            p["tac_start"][:, None] + np.arange(w)[None, :] * MINUTE_NS,
        )
        count = grid(np.ones(rows, np.int64), prints, np.ones(rows, np.int64), t_count)
        keep = count > 0
        rr = np.nonzero(keep)[0]
        return {
            "key": (b.sym * self.config.n_sessions + b.t)[rr],
            "ts": ts[keep],
            "sym": b.sym[rr],
            "open": grid(open_u, o, close_u, close_w)[keep],
            "high": grid(open_u, hi, close_u, close_w)[keep],
            "low": grid(open_u, lo, close_u, close_w)[keep],
            "close": grid(open_u, c, close_u, close_w)[keep],
            "volume": grid(p["o_size"], volume, p["k_size"], t_volume)[keep],
            "vwap": grid(open_u * 1.0, vwap, close_u * 1.0, close_w * 1.0)[keep],
            "trade_count": count[keep],
        }

    def _latent_frame(self, b: _Block) -> pl.DataFrame:
        m = b.m
        ts = b.cont_start[:, None] + np.arange(m + 1)[None, :] * MINUTE_NS
        return pl.DataFrame(
            {
                "ts": _ts_series("ts", ts.reshape(-1)),
                "symbol": pl.Series(self._universe.symbols).gather(np.repeat(b.sym, m + 1)),
                "mid": np.exp(b.L).reshape(-1),
            }
        )


_CONDITIONS = [
    TradeCondition.OPENING_AUCTION.value,
    TradeCondition.HALT_AUCTION.value,
    TradeCondition.CONTINUOUS.value,
    TradeCondition.CLOSING_AUCTION.value,
    TradeCondition.TRADES_AT_CLOSE.value,
]
_C_OPEN, _C_HALT, _C_CONT, _C_CLOSE, _C_TAC = range(5)


def _ns_to_datetime(ns: int) -> datetime:
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1000)
