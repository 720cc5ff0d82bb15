"""Sweeps on a multi-node Ray cluster: a head and two 1-CPU worker nodes on 127.0.0.1.

``ray.cluster_utils.Cluster`` runs each node's raylet as its own set of processes, so trials
really are scheduled across nodes and a node can really die mid-sweep. The head has no CPU:
every trial runs on a worker node, the driver and the data set stay on the head.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.config import Settings
from cluster.runtime import loopback_only
from tune.sweep import SweepConfig, run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOW_SPACE: dict[str, Any] = {
    "learning_rate": ("loguniform", 0.005, 0.02),
    "max_depth": ("int", 6, 8),
    "prob_threshold": ("uniform", 0.5, 0.6),
}
"""Trials of a few seconds each (2,000 trees per fold): long enough to overlap and be cut."""


@pytest.fixture
def three_nodes(
    no_shared_ray: None, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, list[Any]]]:
    """A head without CPUs and two worker nodes with one CPU each, all on 127.0.0.1."""
    import ray
    from ray.cluster_utils import Cluster

    # Ray's files (and its current-cluster file) under a short private directory
    (short_tmp / "ray").mkdir()
    monkeypatch.setenv("RAY_TMPDIR", str(short_tmp))
    loopback_only()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def cluster_settings(tmp_path: Path, lake: Path, cluster: Any) -> Settings:
    return Settings(home=tmp_path, lake_path=lake, ray={"address": cluster.address})


def test_trials_run_on_every_worker_node_on_loopback(
    three_nodes: tuple[Any, list[Any]], tiny_lake: Path, tmp_path: Path, short_tmp: Path
) -> None:
    import psutil
    import ray

    cluster, workers = three_nodes
    config = SweepConfig(
        space=SLOW_SPACE,
        base={"n_estimators": 2000},
        num_samples=4,
        n_splits=3,
        grace_period=3,
        seed=5,
        name="on-nodes",
    )
    outcome = run_sweep(cluster_settings(tmp_path, tiny_lake, cluster), config)

    assert outcome.max_concurrent == 2  # the cluster's CPUs: one per worker node
    assert [t.status for t in outcome.trials] == ["complete"] * 4
    used = {node for t in outcome.trials for node in t.nodes}
    assert used == {w.node_id for w in workers}  # both workers, never the CPU-less head
    assert all(len(t.nodes) == 1 for t in outcome.trials)
    assert outcome.registered is not None

    # every node and every server of the cluster is on 127.0.0.1
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    ray_pids = set()
    for p in psutil.process_iter(["cmdline"]):
        try:
            if str(short_tmp) in " ".join(p.info["cmdline"] or []):
                ray_pids.add(p.pid)
        except psutil.NoSuchProcess:
            continue
    listening = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in ray_pids
    ]
    assert listening
    assert {c.laddr.ip.removeprefix("::ffff:") for c in listening} == {"127.0.0.1"}


def test_losing_a_worker_node_mid_sweep_retries_its_trials(
    three_nodes: tuple[Any, list[Any]], tiny_lake: Path, tmp_path: Path
) -> None:
    cluster, workers = three_nodes
    victim, survivor = workers
    name = "node-loss"
    experiment = tmp_path / "sweeps" / name
    removed = threading.Event()
    cut: dict[str, Any] = {}
    stop = threading.Event()

    def remove_victim_mid_trial() -> None:
        """Remove the victim node once a trial on it has checkpointed a fold (not all).

        Checkpoints reach the storage as they are reported (Tune's result files only on its
        periodic syncs); each holds the metrics it was reported with, node id included."""
        while not stop.is_set():
            for report in experiment.glob("trial_*/checkpoint_*/report.json"):
                try:
                    metrics = json.loads(report.read_text())
                except (OSError, ValueError):  # being written
                    continue
                if metrics["node_id"] == victim.node_id and not metrics["complete"]:
                    cut.update(trial=report.parent.parent.name, folds=metrics["folds_done"])
                    time.sleep(0.5)  # the driver registers the checkpoint with the result
                    cluster.remove_node(victim)
                    removed.set()
                    return
            time.sleep(0.1)

    watcher = threading.Thread(target=remove_victim_mid_trial, daemon=True)
    watcher.start()
    config = SweepConfig(
        space=SLOW_SPACE,
        base={"n_estimators": 2000},
        num_samples=4,
        n_splits=3,
        grace_period=3,
        max_failures=2,
        seed=7,
        name=name,
    )
    try:
        outcome = run_sweep(cluster_settings(tmp_path, tiny_lake, cluster), config)
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert removed.is_set(), "no trial ran on the victim node before the sweep ended"

    # the sweep completed with every trial
    assert len(outcome.trials) == 4
    assert [t.status for t in outcome.trials] == ["complete"] * 4
    assert outcome.errors == []
    # the trials cut by the node's loss were retried on the surviving node ...
    retried = [t for t in outcome.trials if t.failures >= 1]
    assert retried and all(survivor.node_id in t.nodes for t in retried)
    # ... and the one caught part-way continued from its last completed fold
    caught = next(t for t in retried if Path(t.path).name == cut["trial"])
    assert set(caught.nodes) == {victim.node_id, survivor.node_id}
    rows = [json.loads(x) for x in Path(caught.path, "result.json").read_text().splitlines()]
    after = [r for r in rows if r["node_id"] == survivor.node_id]
    assert after and after[0]["restored_folds"] >= cut["folds"] >= 1
    assert rows[-1]["complete"] is True
