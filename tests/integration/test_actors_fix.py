"""The FIX venue inside the actor pipeline: the router logs on to a simulated exchange on
127.0.0.1 with credentials read from OpenBao (secret references in the config, resolved in the
router actor), routes to it like any venue, and survives the exchange going away and coming
back without a duplicate client order id at either venue."""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
hvac = pytest.importorskip("hvac")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

from actors import pipeline as pl_  # noqa: E402
from actors.common import Role, lookup  # noqa: E402
from actors.feed import FeedSpec, SimulatedBistFeed  # noqa: E402
from actors.fix import FixExchange, synthetic_engine  # noqa: E402
from actors.journal import EventKind, Journal  # noqa: E402
from cluster.config import FixVenueSettings, VaultSettings  # noqa: E402

SYNTHETIC = {"n_symbols": 3, "seed": 11, "trades_per_day": 400, "n_sessions": 3}
MODEL = {
    "kind": "momentum",
    "scale": 400.0,
    "params": {"bar_interval": "5m", "prob_threshold": 0.55},
}
PASSWORD = "Rt-5c1e0b9a-router-logon"
EXCHANGE_ID, CLIENT_ID = "BISTSIM5", "ROUTER5"
"""Session ids of their own: QuickFIX's session registry is per process, and other tests in
this process run exchanges with the default ids."""

_names = itertools.count()


@pytest.fixture
def pipelines(ray_session: None) -> Iterator[list[str]]:
    started: list[str] = []
    yield started
    for name in started:
        pl_.stop(name)


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[FixExchange]:
    """The simulated exchange listing the feed's market, its session open on the feed's day."""
    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    market = SyntheticMarket(SyntheticMarketConfig(**SYNTHETIC))
    day = SimulatedBistFeed(**SYNTHETIC).day
    engine = synthetic_engine(market=market, day=day, at=clock_time(10, 30))
    ex = FixExchange(
        tmp_path / "exchange",
        users={"trader": PASSWORD},
        venue=engine,
        comp_id=EXCHANGE_ID,
        client_comp_ids=(CLIENT_ID,),
    )
    ex.start()
    try:
        yield ex
    finally:
        ex.stop()


def _vault(openbao: Any, tmp_path: Path) -> dict[str, Any]:
    """Credentials in OpenBao; the config holds only where they are (and where the token is)."""
    admin = hvac.Client(url=openbao.address, token=openbao.token)
    admin.secrets.kv.v2.create_or_update_secret(
        path="fix/router",
        secret={"username": "trader", "password": PASSWORD},
        mount_point="secret",
    )
    token = tmp_path / "vault-token"
    token.write_text(openbao.token)
    os.chmod(token, 0o600)
    return VaultSettings(address=openbao.address, token_ref=f"file:{token}").model_dump()


def _config(tmp_path: Path, port: int, vault: dict[str, Any], **options: Any) -> pl_.PipelineConfig:
    feed = SimulatedBistFeed(**SYNTHETIC)
    fix = FixVenueSettings(
        host="127.0.0.1",
        port=port,
        sender_comp_id=CLIENT_ID,
        target_comp_id=EXCHANGE_ID,
        username_ref="vault:secret/data/fix/router#username",
        password_ref="vault:secret/data/fix/router#password",
        heartbeat_s=1,
        timeout_s=1.0,
    )
    defaults: dict[str, Any] = {
        "pipeline": f"fx{next(_names)}-{int(time.time() * 1000) % 100000}",
        "model": MODEL,
        "venues": ["fix", "paper"],
        "fix": {
            "settings": fix.model_dump(),
            "vault": vault,
            "data_dir": str(tmp_path / "fix-session"),
        },
        "batch_rows": 50,
        "max_in_flight": 1,
        "detached": True,
        "autostart": False,
    }
    defaults.update(options)
    return pl_.PipelineConfig(
        feed=FeedSpec("synthetic", synthetic=dict(SYNTHETIC)),
        journal_path=str(tmp_path / "journal.sqlite"),
        symbols=sorted(feed.frame["symbol"].unique().to_list()),
        day=feed.day,
        **defaults,
    )


def _wait(predicate: Any, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_orders_reach_the_fix_exchange_and_survive_it_going_away(
    tmp_path: Path, pipelines: list[str], exchange: FixExchange, openbao: Any
) -> None:
    config = _config(
        tmp_path,
        exchange.port,
        _vault(openbao, tmp_path),
        speed=1500.0,
        router={
            "timeout_s": 1.0,
            "breaker_failures": 1,
            "breaker_reset_s": 1.0,
            "retry_attempts": 2,
            "retry_base_s": 0.01,
            "retry_cap_s": 0.05,
            "max_wait_s": 2.0,
        },
    )
    pipelines.append(config.pipeline)
    pl_.start_pipeline(config)
    router = lookup(config.pipeline, Role.ROUTER)
    paper = lookup(config.pipeline, f"{Role.VENUE}-paper")
    assert ray.get(router.status.remote())["fix"]["logged_on"]
    assert exchange.logons == 1
    ray.get(lookup(config.pipeline, Role.FEED).start.remote())

    # orders go to the preferred venue, over the socket
    _wait(lambda: len(exchange.orders_received) >= 2, "orders at the FIX exchange")
    exchange.stop()
    before_stop = len(exchange.orders_received)

    def rerouted_or_rejected() -> bool:
        status = ray.get(router.status.remote())
        opened = any(s == "open" for _, s in ray.get(router.breaker_transitions.remote("fix")))
        return opened and (
            bool(ray.get(paper.received_ids.remote())) or status["counters"]["rejected"] > 0
        )

    _wait(rerouted_or_rejected, "the circuit to open and an order to go elsewhere")
    transitions = [s for _, s in ray.get(router.breaker_transitions.remote("fix"))]
    assert transitions[0] == "open"
    while_down = len(exchange.orders_received)
    exchange.start()  # same port: the router's session logs on again by itself
    _wait(lambda: exchange.logons >= 2, "the router to log on again")
    _wait(lambda: len(exchange.orders_received) > while_down, "orders at the exchange again")
    # the router itself dies: its successor logs on again and reconciles with the exchange
    ray.kill(router, no_restart=False)
    feed = pl_.wait_until_finished(config.pipeline, timeout_s=300)
    assert feed["state"] == "finished", feed
    status = ray.get(router.status.remote())
    assert status["restarted"] and exchange.logons >= 3
    assert status["recovery"]["orders"] > 0

    # no duplicate client order id at either venue, and no order at both
    assert exchange.duplicates == []
    at_fix = Counter(exchange.orders_received)
    assert all(n == 1 for n in at_fix.values()), at_fix
    at_paper = ray.get(paper.received_ids.remote())
    assert all(n == 1 for n in at_paper.values()), at_paper
    assert not set(at_fix) & set(at_paper)
    assert before_stop >= 2 and while_down == before_stop  # nothing reached it while down
    assert at_paper, "nothing was re-routed to the paper venue while the exchange was down"
    assert len(at_fix) > while_down  # once it was back, orders went to it again

    # the journal claimed every send before it went out, each once per venue
    with Journal(config.journal_path) as j:
        state = j.rebuild()
        claims = j.events(kinds=[EventKind.ORDER_SENT])
    claimed = Counter((e.key, e.payload["venue"]) for e in claims)
    resends = [e for e in claims if "after_absent" in e.payload]
    # a second claim at one venue exists only with the venue's "not held" answer before it
    assert sum(claimed.values()) - len(claimed) == len(resends)
    assert set(at_fix) <= {cid for cid, v in claimed if v == "fix"}
    assert set(at_paper) <= {cid for cid, v in claimed if v == "paper"}
    assert not state.problems, state.problems
    assert status["fix"]["logged_on"]
    # reports of FIX orders were journaled (the acknowledgements came back over the socket)
    assert any(state.orders[cid].history for cid in at_fix)

    # stopping the pipeline logs the session out (a Logout reaches the exchange)
    logouts = exchange.logouts_requested
    pl_.stop(config.pipeline)
    _wait(lambda: exchange.logouts_requested > logouts, "a Logout from the stopped router")
