"""One local Ray per test session (start-up costs seconds and ~600 MB), bound to 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cluster.config import Settings
from cluster.runtime import start_ray, stop_ray


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    start_ray(Settings(), num_cpus=2)
    yield
    stop_ray()
