"""Ray hosts for live/paper trading: thin actors around the core objects of ``quant``."""
