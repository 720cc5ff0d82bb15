"""The domain core of BIST Smart Trader: market rules, data, research, simulation and risk.

Pure Python over numpy, polars and pyarrow. Nothing here imports Ray, Serve or Vault, and
nothing reads the wall clock: time is always an input, which keeps the core deterministic and
testable in milliseconds, and lets the backtest and the live actors share every line of it.
"""
