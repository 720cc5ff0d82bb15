"""One local Ray per test session (start-up costs seconds and ~600 MB), bound to 127.0.0.1.

Tests that need a Ray of their own (a multi-node ``Cluster``, a ``ray start`` cluster, a
sweep driver in a subprocess) take ``no_shared_ray``: it stops the shared Ray first, and the
next test that takes ``ray_session`` starts it again. Only one Ray runs at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster.config import Settings
from cluster.runtime import start_ray, stop_ray


@pytest.fixture(scope="session")
def _ray_owner() -> Iterator[None]:
    yield
    stop_ray()


@pytest.fixture
def ray_session(_ray_owner: None) -> Iterator[None]:
    """The shared local Ray (started on first use, or again after a ``no_shared_ray`` test)."""
    start_ray(Settings(), num_cpus=2)
    yield


@pytest.fixture
def no_shared_ray(_ray_owner: None) -> Iterator[None]:
    """No Ray connected in this process before and after the test."""
    stop_ray()
    yield
    stop_ray()


@pytest.fixture(scope="session")
def tiny_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic BIST lake: 3 symbols x 30 sessions of 1-minute bars (2024-01-02 on)."""
    from quant.data.ingest import ingest_synthetic
    from quant.data.lake import Lake
    from quant.data.synthetic import SyntheticMarket, SyntheticMarketConfig

    root = tmp_path_factory.mktemp("tiny-lake") / "lake"
    market = SyntheticMarket(SyntheticMarketConfig(n_symbols=3, n_sessions=30, seed=5))
    ingest_synthetic(market, Lake(root), tick_sessions=0)
    return root


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory under /tmp for Ray's files (its socket paths must stay short);
    processes still running from it at the end are killed by pid, then it is removed."""
    path = Path(tempfile.mkdtemp(prefix="st-", dir="/tmp"))
    yield path
    kill_processes_under(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def processes_in() -> Callable[[Path | str], list[int]]:
    """``processes_in(text)``: pids of the processes whose command line contains ``text``."""
    return processes_under


def processes_under(path: Path | str) -> list[int]:
    """Pids of the processes whose command line names ``path`` (Ray's use their temp dir or
    their cluster's address)."""
    import psutil

    needle = str(path)
    pids = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE or p.pid == os.getpid():
                continue  # a zombie is dead already (only its exit status is left)
            if needle in " ".join(p.info["cmdline"] or []):
                pids.append(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return pids


def with_descendants(pids: list[int]) -> set[int]:
    """``pids`` and every live process below them (Ray's agents rename themselves, e.g.
    ``ray::DashboardAgent``, so only their parentage identifies them)."""
    import psutil

    out = set(pids)
    for pid in pids:
        try:
            out.update(
                c.pid
                for c in psutil.Process(pid).children(recursive=True)
                if c.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.NoSuchProcess:
            continue
    return out


def kill_processes_under(path: Path) -> list[int]:
    """SIGKILL each process of ``processes_under(path)`` and below; returns their pids."""
    pids = sorted(with_descendants(processes_under(path)))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


@dataclasses.dataclass(frozen=True)
class OpenBao:
    """A running OpenBao dev server: ``address`` (http://127.0.0.1:port) and root ``token``."""

    address: str
    token: str


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """An OpenBao dev server on a free loopback port (in-memory, KV v2 at ``secret/``), stopped
    at the end of the session. Its HOME is a temp dir so it leaves no ``~/.vault-token``."""
    import socket
    import subprocess
    import sys
    import time

    import hvac

    bao = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path_factory.mktemp("bao-home")
    log = (home / "bao.log").open("w")
    proc = subprocess.Popen(
        [bao, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HOME": str(home), "VAULT_ADDR": "", "BAO_ADDR": ""},
        preexec_fn=_die_with_parent,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        client = hvac.Client(url=address, token="root", timeout=2)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.sys.is_initialized() and not client.sys.is_sealed():
                    break
            except Exception:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"OpenBao did not start: {(home / 'bao.log').read_text()}")
            time.sleep(0.1)
        yield OpenBao(address, "root")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _die_with_parent() -> None:
    """Linux: SIGTERM the child when the test process dies, even by a crash that skips
    teardown (a native library aborting, say)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
