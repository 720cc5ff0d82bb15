"""The model registry: versions and manifests, stages, promotion and rollback, checksums,
local paths, file:// URIs and a non-local pyarrow filesystem, and the lineage helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.fs as pafs
import pytest

from quant.clock import SimulatedClock
from quant.models import (
    CorruptArtifactError,
    ModelRegistry,
    RegistryKeyError,
    XGBClassifierModel,
    git_commit,
    hash_frame,
)

T0 = 1_704_180_000_000_000_000  # 2024-01-02T07:20:00Z


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] > 0).astype(int)
    return pl.DataFrame(X, schema=["ret_5", "vol_20", "rsi_14"], orient="row"), y


@pytest.fixture(scope="module")
def models(data) -> list[XGBClassifierModel]:
    X, y = data
    return [XGBClassifierModel(n_estimators=5 + i, seed=i).fit(X, y) for i in range(3)]


def test_register_writes_a_full_manifest(tmp_path, data, models) -> None:
    X, _ = data
    reg = ModelRegistry(tmp_path / "reg")
    mv = reg.register(
        models[0],
        "meta-xgb",
        created_at=T0,
        git_commit="a" * 40,
        data=X,
        train_start=date(2023, 1, 2),
        train_end=datetime(2023, 12, 29, 15, 10, tzinfo=UTC),
        cv_metrics={"log_loss": 0.61, "sharpe": np.float64(1.2), "bad": float("nan")},
        deflated_sharpe=0.93,
        extra={"sweep": "s1", "trial": 7},
    )
    assert (mv.name, mv.version, mv.stage) == ("meta-xgb", 1, "candidate")
    m = mv.manifest
    assert m.created_at_ns == T0 and m.created_at == "2024-01-02T07:20:00.000000000Z"
    assert m.git_commit == "a" * 40
    assert m.data_hash == hash_frame(X)
    assert m.features == ["ret_5", "vol_20", "rsi_14"]
    assert m.train_start == "2023-01-02T00:00:00.000000000Z"
    assert m.train_end == "2023-12-29T15:10:00.000000000Z"
    assert m.cv_metrics == {"log_loss": 0.61, "sharpe": 1.2, "bad": None}
    assert m.deflated_sharpe == 0.93
    assert m.params == models[0].params
    assert m.model_class == "quant.models.xgb.XGBClassifierModel"
    assert m.classes == [0, 1]
    assert m.extra == {"sweep": "s1", "trial": 7}
    on_disk = json.loads((tmp_path / "reg/meta-xgb/v000001/manifest.json").read_text())
    assert on_disk["artifact_sha256"] == m.artifact_sha256
    loaded = reg.load("meta-xgb", 1)
    np.testing.assert_array_equal(loaded.predict_proba(X), models[0].predict_proba(X))


def test_promotion_and_rollback(tmp_path, data, models) -> None:
    X, _ = data
    reg = ModelRegistry(tmp_path, clock=SimulatedClock(T0))
    reg.register(models[0], "alpha")
    reg.promote("alpha", 1, "staging")
    reg.promote("alpha", 1, "production")
    assert reg.get("alpha", stage="production").version == 1

    v2 = reg.register(models[1], "alpha")
    assert v2.version == 2 and v2.stage == "candidate"
    with pytest.raises(ValueError, match=r"candidate: it can move to .*not production"):
        reg.promote("alpha", 2, "production")
    reg.promote("alpha", 2, "staging")
    reg.promote("alpha", 2, "production", reason="better DSR")
    assert reg.get("alpha", stage="production").version == 2
    assert reg.get("alpha", 1).stage == "archived"

    restored = reg.rollback("alpha")
    assert restored.version == 1 and restored.stage == "production"
    assert reg.get("alpha", 2).stage == "archived"
    assert reg.get("alpha", stage="production").version == 1
    np.testing.assert_array_equal(
        reg.load("alpha", stage="production").predict_proba(X), models[0].predict_proba(X)
    )
    with pytest.raises(ValueError, match="no earlier production version"):
        reg.rollback("alpha")

    moves = [(h.version, h.from_stage, h.to_stage, h.reason) for h in reg.history("alpha")]
    assert moves == [
        (1, None, "candidate", "register"),
        (1, "candidate", "staging", "promote"),
        (1, "staging", "production", "promote"),
        (2, None, "candidate", "register"),
        (2, "candidate", "staging", "promote"),
        (1, "production", "archived", "replaced by v2"),
        (2, "staging", "production", "better DSR"),
        (2, "production", "archived", "rollback"),
        (1, "archived", "production", "rollback"),
    ]


def test_rollback_walks_the_production_lineage_back(tmp_path, models) -> None:
    reg = ModelRegistry(tmp_path, clock=lambda: T0)
    for i, m in enumerate(models, start=1):
        reg.register(m, "beta")
        reg.promote("beta", i, "staging")
        reg.promote("beta", i, "production")
    assert reg.rollback("beta").version == 2
    assert reg.rollback("beta").version == 1
    assert [v.stage for v in reg.list("beta")] == ["production", "archived", "archived"]
    reg.archive("beta", 1)
    with pytest.raises(ValueError, match="no production version"):
        reg.rollback("beta")


def test_missing_names_versions_and_stages_are_named(tmp_path, models) -> None:
    reg = ModelRegistry(tmp_path, clock=lambda: T0)
    reg.register(models[0], "alpha")
    reg.register(models[1], "alpha")
    reg.register(models[0], "gamma")
    with pytest.raises(RegistryKeyError, match=r"no model named 'nope'.*\['alpha', 'gamma'\]"):
        reg.get("nope")
    with pytest.raises(KeyError, match=r"model 'alpha' has no version 9; versions: \[1, 2\]"):
        reg.load("alpha", 9)
    with pytest.raises(KeyError, match=r"no version in stage 'production'.*1: 'candidate'"):
        reg.get("alpha", stage="production")
    with pytest.raises(ValueError, match="unknown stage"):
        reg.promote("alpha", 1, "live")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already candidate"):
        reg.promote("alpha", 1, "candidate")
    assert reg.get("alpha").version == 2  # latest of all
    assert reg.names() == ["alpha", "gamma"]
    assert [(v.name, v.version) for v in reg.list()] == [("alpha", 1), ("alpha", 2), ("gamma", 1)]
    assert reg.list(stage="staging") == []


def test_corrupt_artifact_is_detected(tmp_path, models) -> None:
    reg = ModelRegistry(tmp_path, clock=lambda: T0)
    mv = reg.register(models[0], "alpha")
    path = Path(mv.uri)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # flip one bit
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptArtifactError, match=r"model 'alpha' version 1 .* is corrupt"):
        reg.load("alpha", 1)
    path.unlink()
    with pytest.raises(CorruptArtifactError, match="model 'alpha' version 1 is missing"):
        reg.load("alpha", 1)


def test_tampered_manifest_is_detected(tmp_path, models) -> None:
    reg = ModelRegistry(tmp_path, clock=lambda: T0)
    reg.register(models[0], "alpha", deflated_sharpe=0.2)
    manifest = tmp_path / "alpha/v000001/manifest.json"
    manifest.write_text(manifest.read_text().replace("0.2", "0.99"))
    with pytest.raises(CorruptArtifactError, match="manifest of model 'alpha' version 1"):
        reg.get("alpha", 1)


def test_file_uri_and_plain_path_are_the_same_registry(tmp_path, data, models) -> None:
    X, _ = data
    by_uri = ModelRegistry(f"file://{tmp_path}/reg", clock=lambda: T0)
    by_uri.register(models[2], "delta")
    by_path = ModelRegistry(tmp_path / "reg")
    assert by_path.get("delta").version == 1
    np.testing.assert_array_equal(
        by_path.load("delta").predict_proba(X), models[2].predict_proba(X)
    )


class _NoMoveHandler(pafs.FSSpecHandler):
    """An fsspec-backed pyarrow filesystem that cannot rename, like some object stores."""

    def move(self, src: str, dest: str) -> None:
        raise NotImplementedError("no rename here")


@pytest.mark.parametrize("handler", [pafs.FSSpecHandler, _NoMoveHandler])
def test_any_pyarrow_filesystem_works(handler, data, models) -> None:
    X, _ = data
    fs = fsspec.filesystem("memory")  # one process-wide store: use a root of our own
    root = f"/registry-{handler.__name__}"
    fs.rm(root, recursive=True) if fs.exists(root) else None
    pyfs = pafs.PyFileSystem(handler(fs))
    reg = ModelRegistry(root, clock=lambda: T0, filesystem=pyfs)
    reg.register(models[0], "eps")
    reg.promote("eps", 1, "staging")
    reg.register(models[1], "eps")
    assert [v.stage for v in reg.list("eps")] == ["staging", "candidate"]
    np.testing.assert_array_equal(reg.load("eps", 2).predict_proba(X), models[1].predict_proba(X))
    assert [p for p in fs.find(root) if p.endswith(".tmp")] == []  # no temporary left
    fs.rm(root, recursive=True)


def test_versions_are_never_reused(tmp_path, models) -> None:
    reg = ModelRegistry(tmp_path, clock=lambda: T0)
    reg.register(models[0], "alpha")
    (tmp_path / "alpha/v000002").mkdir()  # an orphan from a crashed registration
    assert reg.register(models[1], "alpha").version == 3
    assert [v.version for v in reg.list("alpha")] == [1, 3]


def test_time_must_be_given_and_registration_checks_input(tmp_path, models) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(ValueError, match="no created_at: pass it"):
        reg.register(models[0], "alpha")
    with pytest.raises(ValueError, match="no time zone"):
        reg.register(models[0], "alpha", created_at=datetime(2024, 1, 2))
    aware = datetime(2024, 1, 2, 7, 20, tzinfo=UTC)
    assert reg.register(models[0], "alpha", created_at=aware).manifest.created_at_ns == T0
    assert (
        reg.register(models[0], "alpha", created_at="2024-01-02T07:20:00Z").manifest.created_at_ns
        == T0
    )
    with pytest.raises(ValueError, match="unfitted"):
        reg.register(XGBClassifierModel(), "alpha", created_at=T0)
    with pytest.raises(ValueError, match="model name"):
        reg.register(models[0], "../escape", created_at=T0)
    with pytest.raises(ValueError, match="differ from the model's"):
        reg.register(models[0], "alpha", created_at=T0, features=["a"])
    with pytest.raises(ValueError, match="ends before it starts"):
        reg.register(models[0], "alpha", created_at=T0, train_start=T0, train_end=T0 - 1)
    with pytest.raises(ValueError, match="no at: pass it"):
        reg.promote("alpha", 1, "staging")


# --------------------------------------------------------------------------- helpers


_FRAME_SRC = """
import polars as pl
frame = pl.DataFrame(
    {
        "ts": pl.Series([0, 60_000_000_000, None]).cast(pl.Datetime("ns", "UTC")),
        "symbol": ["AKBNK", None, "THYAO"],
        "ret": [0.5, -0.0, float("nan")],
        "n": [1, 2, 3],
        "flag": [True, False, None],
    }
)
"""


def _frame() -> pl.DataFrame:
    scope: dict = {}
    exec(_FRAME_SRC, scope)
    return scope["frame"]


def test_hash_frame_is_stable_and_content_sensitive() -> None:
    df = _frame()
    h = hash_frame(df)
    assert h == hash_frame(_frame())
    # stable across processes (polars' own row hashes are seeded per process)
    code = _FRAME_SRC + "from quant.models.registry import hash_frame\nprint(hash_frame(frame))"
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == h
    # canonical floats: -0.0 and 0.0, and any NaN, hash alike
    assert hash_frame(df.with_columns(pl.Series("ret", [0.5, 0.0, float("nan")]))) == h
    assert hash_frame(df.with_columns(pl.Series("ret", [0.5, 0.0, 1.0]))) != h
    assert hash_frame(df.rename({"n": "m"})) != h
    assert hash_frame(df.with_columns(pl.col("n").cast(pl.Int32))) != h
    assert hash_frame(df.with_columns(pl.Series("symbol", ["AKBNK", "", "THYAO"]))) != h
    assert hash_frame(df.with_columns(pl.Series("symbol", ["AKBN", "KT", "HYAO"]))) != h
    assert hash_frame(df[::-1]) != h
    assert hash_frame(df.slice(1)) == hash_frame(df.slice(1).clone())  # sliced buffers


def test_hash_frame_takes_pandas_and_numpy() -> None:
    pdf = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    assert hash_frame(pdf) == hash_frame(pl.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}))
    assert hash_frame(pdf.set_index("b")) != hash_frame(pdf[["a"]])  # the index is content
    arr = np.arange(6.0).reshape(2, 3)
    assert hash_frame(arr) == hash_frame(arr.copy()) != hash_frame(arr.T.copy())


def test_git_commit(tmp_path) -> None:
    repo = Path(__file__).resolve().parents[2]
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(repo) == (head or None)
    assert git_commit(tmp_path) is None  # not a repository
