"""Market simulation: matching engine, auctions, fill, latency, queue and cost models, backtest."""
