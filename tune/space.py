"""A research search space as Optuna sees it: distributions for Ray Tune's ``OptunaSearch``.

The space itself is defined and validated in ``quant.research.params`` (a plain dict from a
``TrialParams`` field to a tuple such as ``("int", 2, 6)``), so a plain loop, a notebook and a
sweep sample the same thing. This module only translates it, after ``validate_space`` has
refused anything that cannot be sampled: the error names the parameter and is raised here, on
the driver, before Ray starts a single trial.

Two things Optuna cannot hold directly are handled here:

- ``("fixed", value)`` is not searched: the value goes into the trial's base parameters, so
  Optuna's sampler never sees a degenerate one-point dimension.
- ``("choice", [...])`` with options that are not ``None``/bool/int/float/str (tuples such as
  ``return_windows``) is searched over stable string labels (their JSON), and decoded back in
  the trial; Optuna's storage and TPE's categorical kernel need primitive choices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from quant.research.params import (
    SearchSpace,
    SearchSpaceError,
    TrialParams,
    params_from_config,
    validate_space,
)

_PRIMITIVE = (type(None), bool, int, float, str)


def _label(option: Any) -> str:
    return json.dumps(option, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class OptunaSpace:
    """A validated search space in Optuna's terms, and how to turn a sample back into
    ``TrialParams``.

    ``distributions`` is what ``OptunaSearch(space=...)`` samples; ``fixed`` holds the values
    that are not searched; ``labels`` maps, for each choice parameter searched over string
    labels, each label back to its option.
    """

    distributions: dict[str, BaseDistribution]
    fixed: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)

    def decode(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A sampler's flat config as trial parameter values (fixed values included)."""
        values = dict(self.fixed)
        for name, value in config.items():
            mapping = self.labels.get(name)
            values[name] = mapping[value] if mapping is not None else value
        return values

    def params(self, config: Mapping[str, Any], base: TrialParams | None = None) -> TrialParams:
        """``TrialParams`` for one sample, on top of ``base``."""
        return params_from_config(self.decode(config), base)


def optuna_space(space: SearchSpace, base: TrialParams | None = None) -> OptunaSpace:
    """Translate a research search space into Optuna distributions.

    Raises ``SearchSpaceError`` naming the parameter when the space cannot be sampled (see
    ``quant.research.params.validate_space``), or when every parameter is fixed (a sweep with
    nothing to search would run the same trial ``num_samples`` times).
    """
    normalised = validate_space(space, base)
    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, Any] = {}
    labels: dict[str, dict[str, Any]] = {}
    for name, dist in normalised.items():
        kind = dist[0]
        if kind == "fixed":
            fixed[name] = dist[1]
        elif kind == "choice":
            options = list(dist[1])
            if all(isinstance(o, _PRIMITIVE) for o in options):
                distributions[name] = CategoricalDistribution(options)
            else:
                mapping = {_label(o): o for o in options}
                if len(mapping) != len(options):
                    raise SearchSpaceError(
                        f"search space parameter {name!r}: the choice list repeats an option"
                    )
                labels[name] = mapping
                distributions[name] = CategoricalDistribution(list(mapping))
        elif kind == "int":
            _, low, high, step = dist
            distributions[name] = IntDistribution(low, high, step=step)
        elif kind == "logint":
            distributions[name] = IntDistribution(dist[1], dist[2], log=True)
        elif kind == "uniform":
            distributions[name] = FloatDistribution(dist[1], dist[2])
        elif kind == "loguniform":
            distributions[name] = FloatDistribution(dist[1], dist[2], log=True)
        else:  # validate_space knows no other kind; a new one must be mapped here
            raise SearchSpaceError(
                f"search space parameter {name!r}: distribution {kind!r} has no Optuna mapping"
            )
    if not distributions:
        raise SearchSpaceError(
            "the search space fixes every parameter ("
            + ", ".join(sorted(fixed))
            + "): give at least one distribution to search, or run fixed trials"
        )
    return OptunaSpace(distributions, fixed, labels)


def optuna_searcher(
    space: OptunaSpace, *, seed: int, metric: str = "score", mode: str = "max"
) -> Any:
    """Ray Tune's ``OptunaSearch`` over ``space`` with a seeded TPE sampler.

    Seeding makes the start-up (random) phase and TPE's draws repeatable; with several trials
    in flight the order in which results arrive still shapes later suggestions.
    """
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(
        space=dict(space.distributions),
        metric=metric,
        mode=mode,
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
