"""The model registry: versioned model artifacts with manifests, stages, promotion and rollback.

A registry lives under one root, a local directory or any pyarrow filesystem URI::

    ModelRegistry("var/models")                        # local directory
    ModelRegistry("file:///data/models")               # the same, as a URI
    ModelRegistry("s3://bucket/models?region=eu-central-1")
    ModelRegistry("gs://bucket/models")

S3 and GCS credentials come from pyarrow's usual chain (environment variables, the instance or
workload identity, ``~/.aws``): nothing secret is passed in the URI. A filesystem object can be
given instead (``ModelRegistry("bucket/models", filesystem=pyarrow.fs.S3FileSystem(...))``).

Layout::

    root/{name}/index.json                  stages, production lineage, stage-change history
    root/{name}/v000001/model.qm            the artifact (see quant.models.base), write-once
    root/{name}/v000001/manifest.json       what it is and where it came from, write-once

**Manifests** record the version (a monotonic integer per name), the creation time, the git
commit, the data snapshot hash (:func:`hash_frame`), the feature list, the training window, the
CV metrics, the deflated Sharpe ratio, the hyperparameters, the model class, and the sha256 of
the artifact, which is verified on every load: a corrupt or truncated artifact raises
:class:`CorruptArtifactError` naming the model and version, never a model that predicts garbage.

**Time is an input**: the registry never reads the wall clock. Pass ``created_at=`` / ``at=``
(UTC nanoseconds, an aware ``datetime`` or an ISO string with a zone) to each call, or give the
registry a clock (``clock=`` a :class:`quant.clock.Clock` or a callable returning nanoseconds).

**Stages**: a new version is a ``candidate``; ``promote`` moves it to ``staging`` and then to
``production`` (one production version per name: promoting another archives the old one), and
``archived`` retires it. ``rollback`` puts the previous production version back and archives the
current one. Every change is appended to the history in the index.

**Writes are atomic.** Artifacts and manifests are written once, under a new version directory,
before the index names them: a reader never sees a version whose files are incomplete, and a
crash mid-registration leaves only an orphan directory (its number is never reused). The index
is replaced atomically: on a local disk through a temporary file, ``fsync`` and ``os.replace``;
on another filesystem by writing a temporary object and moving it over the index, or, where the
filesystem cannot move files, by writing the index object directly (an object store replaces an
object whole, so readers see the old or the new index, never a mix).

**One writer at a time.** The registry assumes a single writer per root (the sweep driver or the
CLI), as the lake does; readers are safe at any time. Two concurrent writers could both read
index version N and the second replacement would drop the first's change: serialise them
outside (one process owns registration), or give each writer its own root.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs

from quant.clock import Clock
from quant.models.base import Model, model_from_bytes, write_bytes_atomic

Stage = Literal["candidate", "staging", "production", "archived"]
STAGES: tuple[Stage, ...] = ("candidate", "staging", "production", "archived")

ALLOWED_PROMOTIONS: dict[str, frozenset[str]] = {
    "candidate": frozenset({"staging", "archived"}),
    "staging": frozenset({"production", "candidate", "archived"}),
    "production": frozenset({"archived"}),
    "archived": frozenset({"candidate", "staging"}),
}
"""Stage changes ``promote`` accepts: candidate -> staging -> production, anything -> archived,
and an archived or staged version back to an earlier stage. Production is reached only from
staging and left only by archiving (directly, by a newer promotion, or by ``rollback``)."""

MANIFEST_FORMAT = "quant.registry/1"
ARTIFACT_FILE = "model.qm"
MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.json"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

TimeLike = int | datetime | date | str | np.datetime64


class RegistryKeyError(KeyError):
    """A model name, version or stage that the registry does not hold (the message lists what
    it does hold)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptArtifactError(ValueError):
    """A stored artifact or manifest whose bytes do not match the checksum recorded for them."""


# --------------------------------------------------------------------------- helpers


def git_commit(repo_dir: str | os.PathLike[str] = ".") -> str | None:
    """The commit checked out in ``repo_dir`` (``git rev-parse HEAD``), or None when there is no
    git, no repository or no commit. Lineage is best effort; registering never fails on it."""
    try:
        out = subprocess.run(
            ["git", "-C", os.fspath(repo_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", commit):
        return None
    return commit


_NUMPY_PHYSICAL = (
    pl.Boolean, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32,
    pl.UInt64, pl.Float32, pl.Float64,
)  # fmt: skip
"""Physical types hashed from their numpy bytes; others (decimals, 128-bit integers) as text."""


def _hash_strings(h: Any, strings: pl.Series) -> None:
    """Length-prefixed UTF-8 of each value (via Arrow offsets: no per-value Python loop)."""
    col = strings.fill_null("").to_arrow()
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    col = col.cast(pa.large_string())
    offsets = np.frombuffer(col.buffers()[1], dtype="<i8")[col.offset : col.offset + len(col) + 1]
    data = col.buffers()[2]
    h.update((offsets - offsets[0]).astype("<i8").tobytes())
    if data is not None:
        h.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])


def _hash_series(h: Any, s: pl.Series) -> None:
    """Feed one column's name, type, validity and values into the hash, canonically."""
    h.update(f"\x1ecol:{s.name}\x1f{s.dtype}\x1f".encode())
    validity = s.is_not_null().to_numpy().astype(np.uint8)
    h.update(np.packbits(validity).tobytes())
    dtype = s.dtype
    physical = s.to_physical() if (dtype.is_numeric() or dtype.is_temporal()) else s
    if physical.dtype in _NUMPY_PHYSICAL:
        values = physical.cast(pl.UInt8) if physical.dtype == pl.Boolean else physical
        if values.dtype.is_float():
            # One bit pattern per value: -0.0 as 0.0, every NaN alike, nulls as 0.
            values = values.fill_nan(None)
            h.update(np.packbits(values.is_not_null().to_numpy().astype(np.uint8)).tobytes())
            arr = values.fill_null(0.0).to_numpy().astype("<f8") + 0.0
        else:
            arr = values.fill_null(0).to_numpy()
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        h.update(np.ascontiguousarray(arr).tobytes())
    elif dtype.is_numeric() or dtype in (pl.String, pl.Categorical, pl.Enum):
        _hash_strings(h, s.cast(pl.String))
    elif dtype == pl.Binary:
        for value in s.to_list():
            b = value or b""
            h.update(len(b).to_bytes(8, "little") + b)
    else:  # lists, structs, ...: their JSON text, one value at a time
        for value in s.to_list():
            b = json.dumps(value, sort_keys=True, default=str).encode()
            h.update(len(b).to_bytes(8, "little") + b)


def hash_frame(data: pl.DataFrame | pd.DataFrame | pl.Series | pd.Series | np.ndarray) -> str:
    """A sha256 of a table's content: column names, types, nulls and values, in row order.

    Stable across runs and processes (unlike polars' seeded ``hash_rows``), so a manifest's
    data snapshot hash identifies the exact training data. A pandas index that is not the
    default range is part of the content (it usually holds the time stamps). Floats are
    canonical (``-0.0`` hashes as ``0.0``, every NaN alike); the hash may change when a library
    changes how it names a data type.
    """
    h = hashlib.sha256(b"quant.hash_frame/1")
    if isinstance(data, np.ndarray):
        arr = np.ascontiguousarray(data)
        if arr.dtype.hasobject:
            raise TypeError("hash_frame cannot hash object arrays; pass a frame")
        h.update(f"ndarray:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
        return h.hexdigest()
    if isinstance(data, pd.Series):
        data = data.to_frame(name=str(data.name) if data.name is not None else "value")
    if isinstance(data, pl.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        frame = data
        index = frame.index
        default_index = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        if not default_index:
            frame = frame.reset_index()
        frame = frame.rename(columns={c: str(c) for c in frame.columns})
        data = pl.from_pandas(frame)
    if not isinstance(data, pl.DataFrame):
        raise TypeError(f"hash_frame takes a polars/pandas frame or a numpy array, not {data!r}")
    h.update(f"frame:{data.height}:{data.width}".encode())
    for col in data.columns:
        _hash_series(h, data.get_column(col))
    return h.hexdigest()


def to_utc_ns(value: TimeLike, what: str = "time") -> int:
    """UTC nanoseconds from nanoseconds, an aware datetime, a date (midnight UTC), an ISO string
    with a zone, or a numpy datetime64 (read as UTC)."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a time, not a bool")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{what} {value!r} is not an ISO 8601 time") from exc
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is None:
            raise ValueError(f"{what} {value} has no time zone: give UTC explicitly")
        return int(value.tz_convert("UTC").value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what} {value} has no time zone: give UTC explicitly")
        delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if isinstance(value, date):
        return to_utc_ns(datetime(value.year, value.month, value.day, tzinfo=UTC), what)
    raise TypeError(f"{what} must be ns, a datetime, a date or an ISO string, not {value!r}")


def iso_utc(ns: int) -> str:
    """ISO 8601 in UTC with nanoseconds, e.g. ``2024-01-02T06:40:00.000000000Z``."""
    return f"{np.datetime64(int(ns), 'ns')}Z"


def _json_clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(value, Mapping):
        return {str(k): _json_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dumps(obj: Any) -> bytes:
    return json.dumps(_json_clean(obj), sort_keys=True, indent=1, allow_nan=False).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ModelManifest:
    """What a registered version is and where it came from. Written once, never changed."""

    name: str
    version: int
    created_at_ns: int
    created_at: str
    model_class: str
    task: str
    features: list[str]
    params: dict[str, Any]
    artifact_path: str
    artifact_sha256: str
    artifact_bytes: int
    classes: list[Any] | None = None
    git_commit: str | None = None
    data_hash: str | None = None
    train_start_ns: int | None = None
    train_end_ns: int | None = None
    train_start: str | None = None
    train_end: str | None = None
    cv_metrics: dict[str, Any] = field(default_factory=dict)
    deflated_sharpe: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = MANIFEST_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelManifest:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class StageChange:
    """One entry of a model's history: ``version`` moved ``from_stage`` -> ``to_stage``."""

    version: int
    from_stage: str | None
    to_stage: str
    at_ns: int
    at: str
    reason: str


@dataclass(frozen=True)
class ModelVersion:
    """A registered version: its current stage, its manifest, and where its artifact is."""

    name: str
    version: int
    stage: str
    manifest: ModelManifest
    uri: str


# --------------------------------------------------------------------------- the registry


class ModelRegistry:
    """Versioned models under a local directory or a pyarrow filesystem URI (see module doc)."""

    def __init__(
        self,
        uri: str | os.PathLike[str],
        clock: Clock | Callable[[], int] | None = None,
        filesystem: pafs.FileSystem | None = None,
    ) -> None:
        text = os.fspath(uri)
        if filesystem is not None:
            self._fs, root = filesystem, text
        elif "://" in text:
            self._fs, root = pafs.FileSystem.from_uri(text)
        else:
            self._fs, root = pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())
        self._local = isinstance(self._fs, pafs.LocalFileSystem)
        self._root = root.rstrip("/") or "/"
        self.uri = text
        self._clock = clock
        self._fs.create_dir(self._root, recursive=True)

    # -- time --------------------------------------------------------------------------

    def _time(self, value: TimeLike | None, what: str) -> int:
        if value is not None:
            return to_utc_ns(value, what)
        if self._clock is None:
            raise ValueError(
                f"no {what}: pass it (UTC ns or an aware datetime) or give the registry a clock"
            )
        now_ns = getattr(self._clock, "now_ns", None)
        return int(now_ns() if now_ns is not None else self._clock())  # type: ignore[operator]

    # -- storage -----------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join([self._root.rstrip("/"), *parts])

    def _exists(self, path: str) -> bool:
        return self._fs.get_file_info(path).type != pafs.FileType.NotFound

    def _read(self, path: str) -> bytes:
        with self._fs.open_input_stream(path) as f:
            return f.read()

    def _write_once(self, path: str, data: bytes) -> None:
        if self._exists(path):
            raise FileExistsError(f"{path} already exists: registry files are written once")
        self._write_atomic(path, data)

    def _write_atomic(self, path: str, data: bytes) -> None:
        if self._local:
            write_bytes_atomic(path, data)
            return
        parent = path.rsplit("/", 1)[0]
        self._fs.create_dir(parent, recursive=True)
        tmp = f"{path}.tmp"
        with self._fs.open_output_stream(tmp) as f:
            f.write(data)
        try:
            self._fs.move(tmp, path)
        except (NotImplementedError, pa.ArrowNotImplementedError, OSError):
            # No rename on this filesystem: write the object whole in place (object stores
            # replace objects atomically) and drop the temporary one.
            with self._fs.open_output_stream(path) as f:
                f.write(data)
            with contextlib.suppress(OSError):
                self._fs.delete_file(tmp)

    def _version_dir(self, version: int) -> str:
        return f"v{version:06d}"

    # -- index -------------------------------------------------------------------------

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"model name {name!r} must be 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )

    def _read_index(self, name: str) -> dict[str, Any] | None:
        path = self._path(name, INDEX_FILE)
        try:
            raw = self._read(path)
        except FileNotFoundError:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CorruptArtifactError(
                f"registry index of model {name!r} at {path} is not JSON"
            ) from exc

    def _index(self, name: str) -> dict[str, Any]:
        self._check_name(name)
        index = self._read_index(name)
        if index is None:
            names = self.names()
            raise RegistryKeyError(
                f"no model named {name!r} in the registry at {self.uri}; it holds {names or 'none'}"
            )
        return index

    def _write_index(self, name: str, index: dict[str, Any]) -> None:
        self._write_atomic(self._path(name, INDEX_FILE), _dumps(index))

    def names(self) -> list[str]:
        """Names of the registered models."""
        selector = pafs.FileSelector(self._root, recursive=False, allow_not_found=True)
        out = []
        for info in self._fs.get_file_info(selector):
            if info.type == pafs.FileType.Directory and self._exists(f"{info.path}/{INDEX_FILE}"):
                out.append(info.base_name)
        return sorted(out)

    def _stored_versions(self, name: str) -> list[int]:
        """Version numbers that have a directory, committed to the index or not."""
        selector = pafs.FileSelector(self._path(name), recursive=False, allow_not_found=True)
        found = []
        for info in self._fs.get_file_info(selector):
            m = re.fullmatch(r"v(\d+)", info.base_name)
            if info.type == pafs.FileType.Directory and m:
                found.append(int(m.group(1)))
        return found

    # -- register ----------------------------------------------------------------------

    def register(
        self,
        model: Model,
        name: str,
        *,
        created_at: TimeLike | None = None,
        git_commit: str | None = None,
        data_hash: str | None = None,
        data: Any = None,
        features: Sequence[str] | None = None,
        train_start: TimeLike | None = None,
        train_end: TimeLike | None = None,
        cv_metrics: Mapping[str, Any] | None = None,
        deflated_sharpe: float | None = None,
        params: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Store a fitted model as the next version of ``name``, as a candidate.

        ``data`` (the training frame) is hashed with :func:`hash_frame` when ``data_hash`` is not
        given; ``features`` defaults to the model's and must match it; ``params`` defaults to
        the model's hyperparameters; ``extra`` holds any further lineage (sweep and trial ids,
        label and feature configuration).
        """
        self._check_name(name)
        if not model.is_fitted:
            raise ValueError(f"cannot register an unfitted {type(model).__name__} as {name!r}")
        if data is not None and data_hash is not None:
            raise ValueError("pass data or data_hash, not both")
        if data is not None:
            data_hash = hash_frame(data)
        if features is not None and list(features) != model.feature_names:
            raise ValueError(
                f"features {list(features)} differ from the model's {model.feature_names}"
            )
        created_ns = self._time(created_at, "created_at")
        start_ns = None if train_start is None else to_utc_ns(train_start, "train_start")
        end_ns = None if train_end is None else to_utc_ns(train_end, "train_end")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ValueError(
                f"training window ends before it starts ({iso_utc(end_ns)} < {iso_utc(start_ns)})"
            )
        if deflated_sharpe is not None and not math.isfinite(float(deflated_sharpe)):
            deflated_sharpe = None

        index = self._read_index(name) or {
            "name": name,
            "versions": {},
            "production_lineage": [],
            "history": [],
        }
        known = [int(v) for v in index["versions"]] + self._stored_versions(name)
        version = max(known, default=0) + 1
        vdir = self._version_dir(version)
        artifact = model.to_bytes()
        manifest = ModelManifest(
            name=name,
            version=version,
            created_at_ns=created_ns,
            created_at=iso_utc(created_ns),
            model_class=f"{type(model).__module__}.{type(model).__qualname__}",
            task=model.task,
            features=model.feature_names,
            params=_json_clean(dict(params) if params is not None else model.params),
            artifact_path=f"{vdir}/{ARTIFACT_FILE}",
            artifact_sha256=_sha256(artifact),
            artifact_bytes=len(artifact),
            classes=None if model.classes_ is None else _json_clean(model.classes_.tolist()),
            git_commit=git_commit,
            data_hash=data_hash,
            train_start_ns=start_ns,
            train_end_ns=end_ns,
            train_start=None if start_ns is None else iso_utc(start_ns),
            train_end=None if end_ns is None else iso_utc(end_ns),
            cv_metrics=_json_clean(dict(cv_metrics or {})),
            deflated_sharpe=None if deflated_sharpe is None else float(deflated_sharpe),
            extra=_json_clean(dict(extra or {})),
        )
        manifest_bytes = _dumps(manifest.to_dict())
        self._fs.create_dir(self._path(name, vdir), recursive=True)
        self._write_once(self._path(name, vdir, ARTIFACT_FILE), artifact)
        self._write_once(self._path(name, vdir, MANIFEST_FILE), manifest_bytes)
        index["versions"][str(version)] = {
            "stage": "candidate",
            "manifest_sha256": _sha256(manifest_bytes),
        }
        index["history"].append(
            asdict(
                StageChange(version, None, "candidate", created_ns, iso_utc(created_ns), "register")
            )
        )
        self._write_index(name, index)  # the commit point: the version exists from here on
        return self._version(name, version, index)

    # -- stages ------------------------------------------------------------------------

    def _set_stage(
        self, index: dict[str, Any], version: int, stage: str, at_ns: int, reason: str
    ) -> None:
        entry = index["versions"][str(version)]
        index["history"].append(
            asdict(StageChange(version, entry["stage"], stage, at_ns, iso_utc(at_ns), reason))
        )
        entry["stage"] = stage

    def _check_version(self, name: str, index: dict[str, Any], version: int) -> None:
        if str(int(version)) not in index["versions"]:
            have = sorted(int(v) for v in index["versions"])
            raise RegistryKeyError(f"model {name!r} has no version {version}; versions: {have}")

    def promote(
        self,
        name: str,
        version: int,
        stage: Stage,
        *,
        at: TimeLike | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move ``version`` to ``stage`` (see :data:`ALLOWED_PROMOTIONS`).

        Promoting to production archives the version that held it and records the new one in
        the production lineage that :meth:`rollback` walks back.
        """
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages: {list(STAGES)}")
        index = self._index(name)
        self._check_version(name, index, version)
        version = int(version)
        current = index["versions"][str(version)]["stage"]
        if stage == current:
            raise ValueError(f"model {name!r} version {version} is already {stage}")
        if stage not in ALLOWED_PROMOTIONS[current]:
            allowed = sorted(ALLOWED_PROMOTIONS[current])
            raise ValueError(
                f"model {name!r} version {version} is {current}: it can move to {allowed}, "
                f"not {stage}"
            )
        at_ns = self._time(at, "at")
        lineage: list[int] = index["production_lineage"]
        if stage == "production":
            for v, entry in index["versions"].items():
                if entry["stage"] == "production":
                    self._set_stage(index, int(v), "archived", at_ns, f"replaced by v{version}")
            lineage.append(version)
        if current == "production":  # archiving the production version retires it for good
            while version in lineage:
                lineage.remove(version)
        self._set_stage(index, version, stage, at_ns, reason or "promote")
        self._write_index(name, index)
        return self._version(name, version, index)

    def archive(self, name: str, version: int, *, at: TimeLike | None = None) -> ModelVersion:
        return self.promote(name, version, "archived", at=at, reason="archive")

    def rollback(
        self, name: str, *, at: TimeLike | None = None, reason: str | None = None
    ) -> ModelVersion:
        """Put the previous production version back; the current one becomes archived.

        Walks the production lineage: after v1 -> v2 -> v3 in production, rollbacks restore v2
        and then v1. Returns the restored version.
        """
        index = self._index(name)
        lineage: list[int] = index["production_lineage"]
        current = [int(v) for v, e in index["versions"].items() if e["stage"] == "production"]
        if not current:
            raise ValueError(f"model {name!r} has no production version to roll back")
        if len(lineage) < 2:
            raise ValueError(
                f"model {name!r} has no earlier production version to roll back to "
                f"(production lineage: {lineage})"
            )
        at_ns = self._time(at, "at")
        demoted = lineage.pop()
        restored = lineage[-1]
        why = reason or "rollback"
        self._set_stage(index, demoted, "archived", at_ns, why)
        self._set_stage(index, restored, "production", at_ns, why)
        self._write_index(name, index)
        return self._version(name, restored, index)

    def history(self, name: str) -> list[StageChange]:
        """Every stage change of ``name``, oldest first."""
        return [StageChange(**h) for h in self._index(name)["history"]]

    # -- read --------------------------------------------------------------------------

    def _version(self, name: str, version: int, index: dict[str, Any]) -> ModelVersion:
        entry = index["versions"][str(version)]
        vdir = self._version_dir(version)
        path = self._path(name, vdir, MANIFEST_FILE)
        try:
            raw = self._read(path)
        except FileNotFoundError as exc:
            raise CorruptArtifactError(
                f"manifest of model {name!r} version {version} is missing at {path}"
            ) from exc
        if _sha256(raw) != entry["manifest_sha256"]:
            raise CorruptArtifactError(
                f"manifest of model {name!r} version {version} at {path} does not match the "
                "checksum in the registry index"
            )
        manifest = ModelManifest.from_dict(json.loads(raw))
        return ModelVersion(
            name=name,
            version=version,
            stage=entry["stage"],
            manifest=manifest,
            uri=self._path(name, manifest.artifact_path),
        )

    def get(
        self, name: str, version: int | None = None, stage: Stage | None = None
    ) -> ModelVersion:
        """A version by number, the latest in ``stage``, or the latest of all."""
        index = self._index(name)
        stages = {int(v): e["stage"] for v, e in index["versions"].items()}
        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages: {list(STAGES)}")
        if version is not None:
            self._check_version(name, index, version)
            if stage is not None and stages[int(version)] != stage:
                raise RegistryKeyError(
                    f"model {name!r} version {version} is {stages[int(version)]}, not {stage}"
                )
            return self._version(name, int(version), index)
        candidates = sorted(v for v, s in stages.items() if stage is None or s == stage)
        if not candidates:
            raise RegistryKeyError(
                f"model {name!r} has no version in stage {stage!r}; "
                f"stages: {dict(sorted(stages.items()))}"
            )
        return self._version(name, candidates[-1], index)

    def load(self, name: str, version: int | None = None, stage: Stage | None = None) -> Model:
        """The model of :meth:`get`, its artifact checked against the manifest's sha256."""
        mv = self.get(name, version, stage)
        try:
            data = self._read(mv.uri)
        except FileNotFoundError as exc:
            raise CorruptArtifactError(
                f"artifact of model {name!r} version {mv.version} is missing at {mv.uri}"
            ) from exc
        digest = _sha256(data)
        if digest != mv.manifest.artifact_sha256 or len(data) != mv.manifest.artifact_bytes:
            raise CorruptArtifactError(
                f"artifact of model {name!r} version {mv.version} at {mv.uri} is corrupt: sha256 "
                f"{digest} ({len(data)} bytes), manifest says {mv.manifest.artifact_sha256} "
                f"({mv.manifest.artifact_bytes} bytes)"
            )
        try:
            return model_from_bytes(data)
        except ValueError as exc:
            raise CorruptArtifactError(
                f"artifact of model {name!r} version {mv.version} cannot be read: {exc}"
            ) from exc

    def list(self, name: str | None = None, stage: Stage | None = None) -> list[ModelVersion]:
        """Registered versions (of one model, or all), optionally only those in ``stage``."""
        names = [name] if name is not None else self.names()
        out = []
        for n in names:
            index = self._index(n)
            for v in sorted(int(k) for k in index["versions"]):
                if stage is None or index["versions"][str(v)]["stage"] == stage:
                    out.append(self._version(n, v, index))
        return out
