"""What one research trial is: its parameters, and the space a sweep samples them from.

``TrialParams`` fixes everything that shapes a trial's result besides the data: the research
bar interval, the feature windows, the labelling (CUSUM events, triple barrier), the model and
its hyperparameters, the trading rule that turns probabilities into positions, and the seed.
It is frozen and JSON-serialisable (``model_dump(mode="json")`` / ``model_validate``), so a
sweep can put it in a checkpoint and a registry manifest can carry it as lineage; its
``trial_id`` is a hash of that JSON, the same in every process.

A **search space** is a plain dict from a ``TrialParams`` field to a distribution::

    {"max_depth": ("int", 2, 6),
     "learning_rate": ("loguniform", 0.01, 0.3),
     "model": ("choice", ["xgb", "mlp"]),
     "pt_sl": ("uniform", 0.5, 2.0)}           # a scalar for a pair field: symmetric barriers

Distributions: ``("int", low, high)`` and ``("int", low, high, step)`` (inclusive bounds),
``("logint", low, high)``, ``("uniform", low, high)``, ``("loguniform", low, high)`` (low > 0),
``("choice", [options...])`` and ``("fixed", value)``. ``validate_space`` refuses a space that
cannot be sampled and names the parameter: an unknown field, an unknown distribution, low > high,
a non-positive log bound, an empty choice list, or a value that ``TrialParams`` itself refuses
(``("int", 0, 6)`` for ``max_depth``: its bounds are tried). The tune package maps validated
spaces onto Optuna distributions; ``sample_params`` draws from one with numpy for plain loops.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from quant.data.bars import parse_every

Distribution = tuple[Any, ...]
SearchSpace = Mapping[str, Distribution]
"""Parameter name -> distribution tuple (see the module docstring)."""

DISTRIBUTIONS = ("int", "logint", "uniform", "loguniform", "choice", "fixed")


class TrialParams(BaseModel):
    """Every knob of one research trial (see the module docstring).

    Label semantics: CUSUM events fire when the cumulative log return since the last event
    exceeds ``cusum_k`` x the EWM volatility of bar returns (span ``vol_span``; no estimate, so
    no event, for a symbol's first ``vol_span // 2`` bars); each event is labelled by a triple
    barrier at ``pt_sl`` x (that volatility x sqrt(``vertical_bars``)), i.e. in units of the
    volatility over the holding period, with a vertical barrier after ``vertical_bars``
    research bars. ``vertical_label="sign"`` labels a vertical touch by the sign of its return
    (two classes; an event whose vertical return is exactly 0 has no sign and is no sample),
    ``"zero"`` by 0 (three classes).

    Trading rule: at each event the model's p(up) and p(down) are compared with
    ``prob_threshold``; the larger one above it sets the side (a short becomes flat when
    ``long_only``), held until the label's barrier is touched (``signals.PredictionStrategy``).
    A position is ``position_weight`` x the initial capital, in whole shares.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bar_interval: str = "15m"
    """Research bars, resampled from the 1-minute bars; a whole number of minutes dividing a day."""

    # -- features (scale-free: see quant.research.dataset.feature_set)
    return_windows: tuple[int, ...] = (1, 4, 16)
    vol_window: int = Field(default=20, ge=2)
    rsi_window: int = Field(default=14, ge=2)
    volume_window: int = Field(default=20, ge=2)
    beta_window: int = Field(default=60, ge=2)
    momentum_window: int = Field(default=20, ge=1)

    # -- labels
    cusum_k: float = Field(default=2.0, gt=0)
    pt_sl: tuple[float, float] = (1.0, 1.0)
    vertical_bars: int = Field(default=8, ge=1)
    vol_span: int = Field(default=50, ge=2)
    vertical_label: Literal["sign", "zero"] = "sign"

    # -- model
    model: Literal["xgb", "mlp"] = "xgb"
    max_depth: int = Field(default=3, ge=1, le=16)
    n_estimators: int = Field(default=100, ge=1, le=5000)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    subsample: float = Field(default=0.8, gt=0, le=1)
    hidden: int = Field(default=32, ge=1, le=4096)
    """Units per hidden layer of the MLP."""
    layers: int = Field(default=1, ge=1, le=8)
    epochs: int = Field(default=5, ge=1, le=1000)
    mlp_learning_rate: float = Field(default=1e-3, gt=0, le=1)

    # -- strategy
    prob_threshold: float = Field(default=0.55, gt=0, lt=1)
    position_weight: float = Field(default=0.05, gt=0, le=1)
    long_only: bool = True

    seed: int = Field(default=0, ge=0)

    @field_validator("bar_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        interval = parse_every(value)
        seconds = int(interval.total_seconds())
        if seconds % 60:
            raise ValueError(f"bar_interval {value!r} must be a whole number of minutes")
        return value

    @field_validator("return_windows")
    @classmethod
    def _windows(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("return_windows needs at least one horizon")
        if any(int(w) < 1 for w in value):
            raise ValueError(f"return_windows must be positive bar counts, got {list(value)}")
        if len(set(value)) != len(value):
            raise ValueError(f"return_windows repeat a horizon: {list(value)}")
        return tuple(int(w) for w in value)

    @field_validator("pt_sl", mode="before")
    @classmethod
    def _pt_sl(cls, value: Any) -> Any:
        # a scalar means symmetric barriers (what a one-dimensional search samples)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (float(value), float(value))
        return value

    @model_validator(mode="after")
    def _barriers(self) -> TrialParams:
        pt, sl = self.pt_sl
        if pt < 0 or sl < 0 or not (math.isfinite(pt) and math.isfinite(sl)):
            raise ValueError(f"pt_sl multipliers must be finite and >= 0, got {self.pt_sl}")
        return self

    @property
    def interval_minutes(self) -> int:
        return int(parse_every(self.bar_interval).total_seconds()) // 60

    @property
    def trial_id(self) -> str:
        """A stable id: the first 12 hex digits of the sha256 of the canonical JSON."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def feature_key(self) -> tuple[Any, ...]:
        """What the feature matrix depends on (a cache key)."""
        return (
            self.bar_interval,
            self.return_windows,
            self.vol_window,
            self.rsi_window,
            self.volume_window,
            self.beta_window,
            self.momentum_window,
        )

    def label_key(self) -> tuple[Any, ...]:
        """What the events, labels and weights depend on (a cache key)."""
        return (
            self.bar_interval,
            self.cusum_k,
            self.pt_sl,
            self.vertical_bars,
            self.vol_span,
            self.vertical_label,
        )


# --------------------------------------------------------------------------- search spaces


DEFAULT_SEARCH_SPACE: dict[str, Distribution] = {
    "max_depth": ("int", 2, 6),
    "n_estimators": ("int", 50, 300, 50),
    "learning_rate": ("loguniform", 0.01, 0.3),
    "cusum_k": ("uniform", 1.0, 3.0),
    "pt_sl": ("uniform", 0.5, 2.0),
    "vertical_bars": ("int", 4, 16),
    "prob_threshold": ("uniform", 0.5, 0.7),
}
"""A reasonable space over model, label and strategy parameters for the XGBoost model."""


class SearchSpaceError(ValueError):
    """A search space that cannot be sampled; the message names the parameter."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _check_value(name: str, value: Any, base: TrialParams, what: str) -> None:
    """``value`` must be accepted by ``TrialParams`` for field ``name``."""
    try:
        TrialParams.model_validate({**base.model_dump(), name: value})
    except ValidationError as exc:
        reasons = "; ".join(e["msg"] for e in exc.errors())
        raise SearchSpaceError(
            f"search space parameter {name!r}: {what} {value!r} is not a valid value ({reasons})"
        ) from None


def validate_space(space: SearchSpace, base: TrialParams | None = None) -> dict[str, Distribution]:
    """The space normalised (tuples, floats where floats are meant), or ``SearchSpaceError``
    naming the first parameter that cannot be sampled (see the module docstring)."""
    if not isinstance(space, Mapping):
        raise SearchSpaceError(f"a search space is a dict of distributions, not {type(space)}")
    if not space:
        raise SearchSpaceError("the search space is empty: give at least one parameter")
    base = base or TrialParams()
    fields = set(TrialParams.model_fields)
    out: dict[str, Distribution] = {}
    for name, dist in space.items():
        if name not in fields:
            raise SearchSpaceError(
                f"search space parameter {name!r} is not a trial parameter; "
                f"known: {', '.join(sorted(fields))}"
            )
        if not isinstance(dist, tuple | list) or not dist:
            raise SearchSpaceError(
                f"search space parameter {name!r}: a distribution is a tuple like "
                f"('int', 2, 6), got {dist!r}"
            )
        kind, *args = dist
        if kind not in DISTRIBUTIONS:
            raise SearchSpaceError(
                f"search space parameter {name!r}: unknown distribution {kind!r}; "
                f"known: {', '.join(DISTRIBUTIONS)}"
            )
        if kind == "choice":
            if len(args) != 1 or not isinstance(args[0], list | tuple):
                raise SearchSpaceError(
                    f"search space parameter {name!r}: 'choice' takes one list of options"
                )
            options = list(args[0])
            if not options:
                raise SearchSpaceError(f"search space parameter {name!r}: the choice list is empty")
            for option in options:
                _check_value(name, option, base, "option")
            out[name] = ("choice", options)
            continue
        if kind == "fixed":
            if len(args) != 1:
                raise SearchSpaceError(f"search space parameter {name!r}: 'fixed' takes one value")
            _check_value(name, args[0], base, "value")
            out[name] = ("fixed", args[0])
            continue
        integer = kind in ("int", "logint")
        if (integer and len(args) not in (2, 3)) or (not integer and len(args) != 2):
            raise SearchSpaceError(
                f"search space parameter {name!r}: {kind!r} takes (low, high)"
                + (" or (low, high, step)" if kind == "int" else "")
                + f", got {tuple(args)}"
            )
        if kind == "logint" and len(args) == 3:
            raise SearchSpaceError(f"search space parameter {name!r}: 'logint' takes no step")
        if not all(_number(a) and math.isfinite(a) for a in args):
            raise SearchSpaceError(
                f"search space parameter {name!r}: bounds must be finite numbers, got {tuple(args)}"
            )
        low, high = args[0], args[1]
        if integer and not all(float(a).is_integer() for a in args):
            raise SearchSpaceError(
                f"search space parameter {name!r}: {kind!r} bounds must be integers, "
                f"got {tuple(args)}"
            )
        if low > high:
            raise SearchSpaceError(
                f"search space parameter {name!r}: low {low} is above high {high}"
            )
        if kind in ("logint", "loguniform") and low <= 0:
            raise SearchSpaceError(
                f"search space parameter {name!r}: {kind!r} needs low > 0, got {low}"
            )
        if integer:
            step = int(args[2]) if len(args) == 3 else 1
            if step < 1:
                raise SearchSpaceError(
                    f"search space parameter {name!r}: step must be >= 1, got {step}"
                )
            low, high = int(low), int(high)
            high = low + (high - low) // step * step  # the largest value the grid reaches
            normalised: Distribution = (
                (kind, low, high, step) if kind == "int" else (kind, low, high)
            )
        else:
            low, high = float(low), float(high)
            normalised = (kind, low, high)
        _check_value(name, low, base, "low")
        _check_value(name, high, base, "high")
        out[name] = normalised
    return out


def sample_params(
    space: SearchSpace,
    rng: np.random.Generator | int,
    base: TrialParams | None = None,
) -> TrialParams:
    """One draw from ``space`` on top of ``base`` (independent uniform draws; what a plain
    sequential loop or a random search uses; Tune's searchers sample the same space)."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(int(rng))
    base = base or TrialParams()
    values: dict[str, Any] = {}
    for name, dist in validate_space(space, base).items():
        kind = dist[0]
        if kind == "fixed":
            values[name] = dist[1]
        elif kind == "choice":
            options = dist[1]
            values[name] = options[int(gen.integers(len(options)))]
        elif kind == "int":
            _, low, high, step = dist
            values[name] = int(low + step * int(gen.integers((high - low) // step + 1)))
        elif kind == "logint":
            _, low, high = dist
            draw = math.exp(gen.uniform(math.log(low - 0.5), math.log(high + 0.5)))
            values[name] = int(min(max(round(draw), low), high))
        elif kind == "uniform":
            values[name] = float(gen.uniform(dist[1], dist[2]))
        else:  # loguniform
            values[name] = float(math.exp(gen.uniform(math.log(dist[1]), math.log(dist[2]))))
    return params_from_config(values, base)


def params_from_config(config: Mapping[str, Any], base: TrialParams | None = None) -> TrialParams:
    """``TrialParams`` from a sampler's flat config (e.g. a Ray Tune ``config`` dict), on top of
    ``base``; lists become tuples, unknown keys are an error naming them."""
    base = base or TrialParams()
    unknown = sorted(set(config) - set(TrialParams.model_fields))
    if unknown:
        raise ValueError(f"unknown trial parameter(s): {', '.join(unknown)}")
    merged = {**base.model_dump(), **{k: _plain(v) for k, v in config.items()}}
    return TrialParams.model_validate(merged)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def grid(values: Mapping[str, Sequence[Any]], base: TrialParams | None = None) -> list[TrialParams]:
    """Every combination of ``values`` (a small grid for tests and benchmarks), in order."""
    names = list(values)
    return [
        params_from_config(dict(zip(names, combo, strict=True)), base)
        for combo in itertools.product(*(values[n] for n in names))
    ]
