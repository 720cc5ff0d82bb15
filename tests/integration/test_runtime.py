"""The embedded Ray starts on loopback and runs remote work."""

import pytest

pytestmark = pytest.mark.integration


def test_local_ray_runs_tasks_on_loopback(ray_session: None) -> None:
    import ray

    @ray.remote
    def square(x: int) -> int:
        return x * x

    assert ray.get([square.remote(i) for i in range(5)]) == [0, 1, 4, 9, 16]
    nodes = ray.nodes()
    assert nodes and all(n["NodeManagerAddress"] == "127.0.0.1" for n in nodes)


def test_ray_servers_listen_on_loopback_only(ray_session: None) -> None:
    import psutil

    ray_pids = {
        p.pid
        for p in psutil.process_iter(["name", "cmdline"])
        if any(k in " ".join(p.info["cmdline"] or []) for k in ("raylet", "gcs_server", "ray::"))
    }
    listening = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in ray_pids
    ]
    assert listening, "expected Ray's servers to be listening"
    assert {c.laddr.ip.removeprefix("::ffff:") for c in listening} == {"127.0.0.1"}
