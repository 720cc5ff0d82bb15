"""Getting onto Ray: an embedded local Ray by default, a cluster when an address is given.

The local Ray binds 127.0.0.1 only and keeps its files in a short temporary directory (Ray's
socket paths must stay under ~100 characters, so the project folder is not a safe place).

Ray 2.60 rewrites ``_node_ip_address="127.0.0.1"`` to the machine's external address
(``resolve_ip_for_localhost``); only its single-machine mode, switched on by
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, keeps every server on loopback. The variable must be in
the environment before Ray's processes start, so that workers inherit it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from cluster.config import Settings


def ray_temp_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"smart-trader-ray-{os.getuid()}"


def start_ray(settings: Settings, *, num_cpus: int | None = None, **kwargs: Any) -> Any:
    """Connect to the configured Ray cluster, or start an embedded one on 127.0.0.1.

    Returns Ray's context; calling it again while connected returns the existing one.
    """
    if settings.ray.address is None:
        loopback_only()
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    options: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False} | kwargs
    if settings.ray.address is None:
        temp = ray_temp_dir()
        temp.mkdir(parents=True, exist_ok=True)
        return ray.init(
            address="local",
            num_cpus=num_cpus or settings.ray.num_cpus or os.cpu_count() or 1,
            _node_ip_address=settings.ray.node_ip_address,
            _temp_dir=str(temp),
            **options,
        )
    options.pop("include_dashboard", None)
    return ray.init(address=settings.ray.address, **options)


def loopback_only() -> None:
    """Keep an embedded Ray on 127.0.0.1 (see the module docstring)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray._private.ray_constants as constants

    constants.ENABLE_RAY_CLUSTER = False


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
