"""What an execution venue looks like to the rest of the system.

The simulator's matching engine, the paper exchange and a FIX connection all implement this
protocol, which is what lets the backtest and live trading share the router and risk code.
"""

from __future__ import annotations

from typing import Protocol

from quant.execution.orders import ExecutionReport, Order, OrderState


class Venue(Protocol):
    name: str

    def submit(self, order: Order) -> list[ExecutionReport]:
        """Accept or reject ``order``; immediate executions are reported too."""
        ...

    def cancel(self, client_order_id: str, ts_ns: int) -> list[ExecutionReport]: ...

    def cancel_all(self, ts_ns: int, symbol: str | None = None) -> list[ExecutionReport]: ...

    def replace(
        self,
        client_order_id: str,
        ts_ns: int,
        quantity: int | None = None,
        limit_price: float | None = None,
    ) -> list[ExecutionReport]:
        """Change quantity and/or price; a price change loses time priority, as on BIST."""
        ...

    def status(self, client_order_id: str) -> OrderState | None: ...
