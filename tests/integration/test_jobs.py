"""Ray jobs on a real ``ray start --head`` cluster on 127.0.0.1, through ``smart-trader job``.

The cluster is started as a user would start it (with token auth disabled, as a throwaway
test cluster), the sweep is submitted with the project uploaded as the job's working
directory, followed to the end, and its logs are read back; a second job is stopped. At the
end the cluster's processes are stopped by pid and none may be left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster.jobs import job_state, project_root, wait_for_job
from cluster.runtime import stop_ray

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent


def with_descendants(pids: list[int]) -> set[int]:
    """``pids`` and the live processes below them (Ray's agents rename themselves, e.g.
    ``ray::DashboardAgent``: only their parentage identifies them)."""
    import psutil

    out = set(pids)
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            out.update(c.pid for c in psutil.Process(pid).children(recursive=True))
    return out


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "smart-trader"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def ray_head(
    _ray_owner: None, processes_in: Callable[[Path | str], list[int]]
) -> Iterator[tuple[str, dict[str, str]]]:
    """A real Ray head on 127.0.0.1 (``ray start``) for this module's tests; yields its
    dashboard URL and the environment the CLI runs with. Stopped by pid afterwards."""
    stop_ray()  # one Ray at a time: the shared one is restarted by the next test needing it
    short_tmp = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))  # Ray's socket paths are short
    port, dashboard = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMART_TRADER_", "RAY_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        RAY_AUTH_MODE="disabled",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_TMPDIR=str(short_tmp),
    )
    (short_tmp / "ray").mkdir()
    started = subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            f"--port={port}",
            f"--dashboard-port={dashboard}",
            f"--temp-dir={short_tmp / 'ray'}",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--num-cpus=2",
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        deadline = time.monotonic() + 60
        while True:  # the dashboard answers a little after `ray start` returns
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Ray dashboard never answered"
            time.sleep(0.5)
        yield address, env
    finally:
        seen: set[int] = set()

        def ours() -> list[int]:
            """The cluster's live processes: by temp dir, by GCS address (the client server)
            and by parentage (the agents); every one seen stays on the list until it is gone."""
            found = set(processes_in(short_tmp)) | set(processes_in(f"127.0.0.1:{port}"))
            seen.update(with_descendants(sorted(found)))
            return sorted(pid for pid in seen if alive(pid))

        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in ours():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            for _ in range(50):
                if not ours():
                    break
                time.sleep(0.2)
        left = ours()
        shutil.rmtree(short_tmp, ignore_errors=True)
        assert left == [], "Ray processes were left running"


def test_a_sweep_runs_as_a_ray_job_and_is_followed_to_the_end(
    ray_head: tuple[str, dict[str, str]], tiny_lake: Path, tmp_path: Path
) -> None:
    address, env = ray_head
    submitted = cli(
        "job",
        "submit",
        "--address",
        address,
        "--working-dir",
        str(project_root()),
        "--env",
        f"SMART_TRADER_HOME={tmp_path}",
        "--env",
        f"SMART_TRADER_LAKE_PATH={tiny_lake}",
        "--json",
        "--",
        "smart-trader",
        "sweep",
        "--samples",
        "2",
        "--splits",
        "3",
        "--name",
        "as-a-job",
        env=env,
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]

    state = wait_for_job(address, job_id, timeout_s=240)
    logs = cli("job", "logs", job_id, "--address", address, env=env)
    assert state.status == "SUCCEEDED", logs.stdout[-3000:]
    assert logs.returncode == 0
    result_lines = [x for x in logs.stdout.splitlines() if x.startswith("sweep as-a-job: ")]
    assert len(result_lines) == 1, logs.stdout[-3000:]
    line = result_lines[0]
    assert " complete, " in line and ", 0 failed; winner " in line
    assert "DSR" in line and "PBO" in line
    assert line.endswith("registered research v1 as candidate")

    status = cli("job", "status", job_id, "--address", address, "--json", env=env)
    assert json.loads(status.stdout)["status"] == "SUCCEEDED"
    # the job's sweep ran on the cluster and wrote where its settings said
    assert (tmp_path / "sweeps" / "as-a-job" / "sweep.json").is_file()
    assert (tmp_path / "registry" / "research" / "index.json").is_file()


def test_a_job_can_be_stopped_and_secrets_are_refused(
    ray_head: tuple[str, dict[str, str]],
) -> None:
    address, env = ray_head
    submitted = cli(
        "job",
        "submit",
        "--address",
        address,
        "--json",
        "--",
        "python",
        "-c",
        "import time; print('waiting', flush=True); time.sleep(120)",
        env=env,
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]
    deadline = time.monotonic() + 60
    while job_state(address, job_id).status != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    stopped = cli("job", "stop", job_id, "--address", address, env=env)
    assert stopped.returncode == 0 and "stopping" in stopped.stdout
    assert wait_for_job(address, job_id, timeout_s=60).status == "STOPPED"
    followed = cli("job", "logs", job_id, "--follow", "--address", address, env=env)
    assert followed.returncode == 0 and "waiting" in followed.stdout

    refused = cli(
        "job", "submit", "--address", address, "--env", "BROKER_API_KEY=x", "--", "true", env=env
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error: environment variable BROKER_API_KEY")
    gone = cli("job", "status", "raysubmit_nosuchjob", "--address", address, env=env)
    assert gone.returncode == 1 and "raysubmit_nosuchjob" in gone.stderr


def test_job_addresses_and_runtime_env_without_secrets(tmp_path: Path) -> None:
    from cluster.config import Settings
    from cluster.jobs import DEFAULT_DASHBOARD, check_env, dashboard_address, runtime_env

    assert dashboard_address(Settings()) == DEFAULT_DASHBOARD
    assert dashboard_address(Settings(ray={"address": "auto"})) == DEFAULT_DASHBOARD
    remote = Settings(ray={"address": "ray://head.internal:10001", "dashboard_port": 8300})
    assert dashboard_address(remote) == "http://head.internal:8300"
    assert dashboard_address(Settings(ray={"address": "10.1.2.3:6379"})) == "http://10.1.2.3:8265"
    assert dashboard_address(Settings(), "127.0.0.1:9999") == "http://127.0.0.1:9999"

    env = runtime_env(working_dir=tmp_path, env={"SMART_TRADER_HOME": "/data"})
    assert env["env_vars"] == {"SMART_TRADER_RAY__ADDRESS": "auto", "SMART_TRADER_HOME": "/data"}
    assert env["working_dir"] == str(tmp_path.resolve()) and ".venv" in env["excludes"]
    check_env({"SMART_TRADER_VAULT__TOKEN_REF": "env:VAULT_TOKEN"})  # a reference is fine
    for name in ("VAULT_TOKEN", "BROKER_PASSWORD", "AWS_SECRET_ACCESS_KEY", "API_KEY"):
        with pytest.raises(ValueError, match=name):
            check_env({name: "x"})
    with pytest.raises(FileNotFoundError):
        runtime_env(working_dir=tmp_path / "missing")
