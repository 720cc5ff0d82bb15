"""The FIX 4.4 venue: a QuickFIX client (``FixVenue``) implementing ``Venue``, and a simulated
exchange (``FixExchange``) listening on 127.0.0.1 with the matching engine inside."""

from actors.fix.exchange import (
    CLIENT_COMP_ID,
    EXCHANGE_COMP_ID,
    FixExchange,
    SessionClock,
    synthetic_engine,
)
from actors.fix.session import data_dictionary_path
from actors.fix.venue import FixVenue

__all__ = [
    "CLIENT_COMP_ID",
    "EXCHANGE_COMP_ID",
    "FixExchange",
    "FixVenue",
    "SessionClock",
    "data_dictionary_path",
    "synthetic_engine",
]
