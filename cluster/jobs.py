"""Ray jobs: run a command (a sweep, a backtest, ...) on a Ray cluster and follow it.

A thin layer over ``ray.job_submission.JobSubmissionClient``, which talks to the cluster's
dashboard over HTTP (``http://host:8265`` by default). The job's driver runs on the cluster:
its ``smart-trader`` commands must join that cluster instead of starting an embedded Ray, so
every job gets ``SMART_TRADER_RAY__ADDRESS=auto`` in its ``runtime_env`` (the job's driver
finds its cluster through ``RAY_ADDRESS``, which Ray sets for it).

**No secrets in a job.** ``runtime_env`` environment variables are stored with the job and shown
in plain text on the dashboard, so ``submit_job`` refuses variables whose names look like
credentials (``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*_KEY`` ...; a ``*_REF`` variable holds a
reference such as ``vault:kv/data/broker#api_key`` and is allowed): the job reads its secrets
from Vault through references in its configuration (see DESIGN.md).

``working_dir`` ships a local directory to the cluster with the job (the project's code on a
cluster that does not have it installed); the virtual environment, data, caches and git
metadata are left out.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cluster.config import Settings

DEFAULT_DASHBOARD = "http://127.0.0.1:8265"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
WORKING_DIR_EXCLUDES = [
    ".venv",
    "var",
    ".git",
    "**/__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.parquet",
]
"""Left out of an uploaded working directory (Ray caps a working_dir at a few hundred MB)."""

_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|_KEY$|^KEY$)",
    re.IGNORECASE,
)


class JobError(RuntimeError):
    """A job request the cluster refused or could not answer; the message says which."""


@dataclass(frozen=True)
class JobState:
    """A job as the cluster reports it."""

    job_id: str
    status: str
    entrypoint: str
    message: str | None
    start_time: float | None
    end_time: float | None
    exit_code: int | None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "entrypoint": self.entrypoint,
            "message": self.message,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "exit_code": self.exit_code,
        }


def dashboard_address(settings: Settings, address: str | None = None) -> str:
    """The dashboard URL to submit to: ``address`` if given, else one derived from
    ``settings.ray.address`` (its host, ``settings.ray.dashboard_port``), else
    ``http://127.0.0.1:<dashboard_port>``."""
    if address:
        return address if "://" in address else f"http://{address}"
    configured = settings.ray.address
    port = settings.ray.dashboard_port
    if configured and configured.startswith(("http://", "https://")):
        return configured
    if configured and configured != "auto":
        host = urlparse(configured if "://" in configured else f"ray://{configured}").hostname
        if host:
            return f"http://{host}:{port}"
    return f"http://127.0.0.1:{port}" if port != 8265 else DEFAULT_DASHBOARD


def job_client(address: str) -> Any:
    """A ``JobSubmissionClient`` for ``address``; a ``JobError`` when nobody answers there."""
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JobError(f"cannot reach the Ray dashboard at {address}: {first}") from None


def check_env(env: Mapping[str, str]) -> None:
    """Refuse environment variables that look like secrets (see the module docstring)."""
    for name in env:
        if _SECRET_NAME.search(name) and not name.upper().endswith("_REF"):
            raise ValueError(
                f"environment variable {name} looks like a secret: runtime_env variables are "
                "shown on the dashboard; give the job a Vault reference instead"
            )


def runtime_env(
    *, working_dir: Path | str | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The job's ``runtime_env``: its environment variables and, if asked, a working dir."""
    variables = {"SMART_TRADER_RAY__ADDRESS": "auto"} | dict(env or {})
    check_env(variables)
    out: dict[str, Any] = {"env_vars": variables}
    if working_dir is not None:
        path = Path(working_dir).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"working directory not found: {path}")
        out["working_dir"] = str(path)
        out["excludes"] = list(WORKING_DIR_EXCLUDES)
    return out


def project_root() -> Path:
    """The repository this package runs from (what ``--working-dir .`` usually means)."""
    return Path(__file__).resolve().parent.parent


def submit_job(
    address: str,
    entrypoint: Sequence[str] | str,
    *,
    working_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    submission_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Submit ``entrypoint`` (a shell command, or its words) and return the job id."""
    command = entrypoint if isinstance(entrypoint, str) else shlex.join(entrypoint)
    if not command.strip():
        raise ValueError("a job needs a command to run")
    environment = runtime_env(working_dir=working_dir, env=env)  # refuse secrets first
    client = job_client(address)
    try:
        return client.submit_job(
            entrypoint=command,
            runtime_env=environment,
            submission_id=submission_id,
            metadata=dict(metadata or {}),
        )
    except RuntimeError as exc:
        raise JobError(f"the cluster at {address} refused the job: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def job_state(address: str, job_id: str) -> JobState:
    """The job's status (PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED) and details."""
    client = job_client(address)
    try:
        info = client.get_job_info(job_id)
    except RuntimeError as exc:
        raise JobError(f"job {job_id}: {_first_line(exc)}") from None
    return JobState(
        job_id=info.submission_id or job_id,
        status=str(getattr(info.status, "value", info.status)),
        entrypoint=info.entrypoint,
        message=info.message,
        start_time=info.start_time / 1000 if info.start_time else None,
        end_time=info.end_time / 1000 if info.end_time else None,
        exit_code=getattr(info, "driver_exit_code", None),
    )


def job_logs(address: str, job_id: str) -> str:
    """Everything the job's driver has printed so far."""
    client = job_client(address)
    try:
        return client.get_job_logs(job_id)
    except RuntimeError as exc:
        raise JobError(f"job {job_id}: {_first_line(exc)}") from None


def follow_logs(address: str, job_id: str) -> Iterator[str]:
    """The job's output as it is printed, until the job ends."""
    client = job_client(address)
    stream = client.tail_job_logs(job_id)
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                chunk = loop.run_until_complete(stream.__anext__())
            except StopAsyncIteration:
                return
            except RuntimeError as exc:
                raise JobError(f"job {job_id}: {_first_line(exc)}") from None
            yield chunk
    finally:
        loop.run_until_complete(stream.aclose())
        loop.close()


def stop_job(address: str, job_id: str) -> bool:
    """Ask the cluster to stop the job; False when it had already ended."""
    client = job_client(address)
    try:
        return bool(client.stop_job(job_id))
    except RuntimeError as exc:
        raise JobError(f"job {job_id}: {_first_line(exc)}") from None


def wait_for_job(
    address: str, job_id: str, *, timeout_s: float = 600.0, poll_s: float = 1.0
) -> JobState:
    """Poll until the job ends (or ``timeout_s`` passes: ``TimeoutError`` with its status)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = job_state(address, job_id)
        if state.finished:
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {state.status} after {timeout_s:.0f} s")
        time.sleep(poll_s)
