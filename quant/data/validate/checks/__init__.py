"""The rules, one module per family, in the order of their precedence.

``row`` (schema, null, non-positive, OHLC, crossed; composes ``ticks`` and ``sessions``),
``sequence`` (duplicates and ordering), ``band``, ``stale``, ``outliers``, ``gaps``, and
``corporate_actions`` (the rules that apply to corporate actions).
"""
