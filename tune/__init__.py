"""Research sweeps on Ray Tune + Optuna: the distributed side of ``quant.research``.

- :mod:`~tune.space`: a research search space (``quant.research.params``) as Optuna
  distributions, and ``OptunaSearch`` with a seeded TPE sampler.
- :mod:`~tune.trainable`: the trainable: one trial is one ``evaluate_trial``, reported and
  checkpointed fold by fold, so trials resume from their last fold after any interruption.
- :mod:`~tune.sweep`: ``SweepConfig`` and ``run_sweep``: Optuna proposes, ASHA prunes, every
  CPU of the cluster evaluates, results persist to a storage path and a sweep resumes; the
  winner is chosen by deflated Sharpe (PBO reported), retrained and registered.

Everything that computes lives in ``quant/`` (no Ray there); this package only puts it on Ray.
``smart-trader sweep`` runs it from the command line, ``smart-trader job submit`` on a cluster.
"""
