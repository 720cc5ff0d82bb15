"""Neural models in torch (CPU): an MLP over a row of features, and a sequence model over a
lookback window of rows (a causal temporal convolution or an LSTM).

Both standardise features with the training rows' mean and standard deviation (kept in the
artifact) and replace missing values by 0 after scaling, that is by the training mean: a network
has no native notion of a missing value, unlike a tree. Regression targets are standardised the
same way and scaled back on prediction.

**Determinism.** Training runs inside :func:`deterministic_torch`: the global torch generator
is forked (the caller's random state is left as it was) and seeded, deterministic algorithms are
switched on, and the intra-op thread count is fixed (``num_threads``, 1 by default: results of
parallel reductions may depend on the thread count). Shuffling draws from its own seeded
generator. Fitting twice with the same seed gives bit-identical weights and predictions.

**Sequences.** Row t of ``X`` is predicted from rows t-lookback+1 .. t of the same series (the
rows must be in time order), so a prediction depends on nothing after t. Rows with a shorter
history are padded with zeros (the training mean). With ``group_column`` set (e.g. ``"symbol"``)
a frame may hold many series, interleaved or not: a window never crosses from one series into
another. To predict on a test slice, pass the slice together with the history that precedes it
(at least ``lookback - 1`` rows) and keep the rows you need, otherwise the first windows are
padded.
"""

from __future__ import annotations

import io
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Self

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.nn import functional as F

from quant.models.base import (
    EvalSet,
    FeatureInput,
    Model,
    TargetInput,
    Task,
    check_regression_target,
    check_weights,
    encode_classes,
    frame_columns,
    normalize_eval_set,
    resolve_feature_names,
    to_matrix,
    to_vector,
)

SequenceCell = Literal["tcn", "lstm"]


@contextmanager
def deterministic_torch(seed: int, num_threads: int | None = 1) -> Iterator[None]:
    """Seeded, deterministic torch for the duration of the block, restoring what it changed.

    ``torch.use_deterministic_algorithms`` and the thread count are process-wide settings, so
    they are put back afterwards; the random state is forked, so the caller's draws continue as
    if this block had not run.
    """
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.set_num_threads(prev_threads)


# --------------------------------------------------------------------------- networks


class _MLPNet(nn.Module):
    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_out))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _CausalConv(nn.Module):
    """Conv1d padded on the left only: output at step t sees inputs at steps <= t."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.left = (kernel - 1) * dilation
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, 0)))


class _TCNNet(nn.Module):
    """Stacked causal convolutions with dilations 1, 2, 4, ... and residual connections."""

    def __init__(
        self, n_in: int, hidden: int, layers: int, kernel: int, n_out: int, dropout: float
    ) -> None:
        super().__init__()
        self.inp = nn.Conv1d(n_in, hidden, 1)
        self.blocks = nn.ModuleList(
            [_CausalConv(hidden, hidden, kernel, 2**i) for i in range(layers)]
        )
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, time, features)
        h = self.inp(x.transpose(1, 2))
        for block in self.blocks:
            h = h + self.drop(F.relu(block(h)))
        return self.out(h[:, :, -1])


class _LSTMNet(nn.Module):
    def __init__(self, n_in: int, hidden: int, layers: int, n_out: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            n_in, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0
        )
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.lstm(x)
        return self.out(seq[:, -1, :])


# --------------------------------------------------------------------------- shared training


class _TorchModel(Model):
    """Training loop, scaling, prediction and persistence shared by the torch models."""

    def __init__(
        self,
        task: Task = "classification",
        epochs: int = 10,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        dropout: float = 0.0,
        patience: int | None = None,
        seed: int = 0,
        num_threads: int | None = 1,
        feature_names: list[str] | None = None,
    ) -> None:
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        if epochs < 1 or batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.task = task  # type: ignore[misc]  # per instance: one class serves both tasks
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.dropout = float(dropout)
        self.patience = patience
        self.seed = int(seed)
        self.num_threads = num_threads
        self.requested_features = None if feature_names is None else list(feature_names)
        self.net: nn.Module | None = None
        self.x_mean: np.ndarray | None = None
        self.x_scale: np.ndarray | None = None
        self.y_mean = 0.0
        self.y_scale = 1.0
        self.history: list[dict[str, float]] = []
        self.best_epoch: int | None = None

    def _base_params(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "dropout": self.dropout,
            "patience": self.patience,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "feature_names": self.requested_features,
        }

    # -- subclass hooks --------------------------------------------------------------------

    @abstractmethod
    def _build_net(self, n_features: int, n_out: int) -> nn.Module:
        """The untrained network, created under the seeded generator."""

    def _inputs(self, X: FeatureInput, matrix: np.ndarray) -> _Inputs:
        """What a batch of rows is built from (rows, or rows plus their windows)."""
        return _Inputs(torch.from_numpy(self._scale(matrix)), None)

    def _resolve_names(self, X: FeatureInput) -> list[str]:
        return resolve_feature_names(X, self.requested_features)

    # -- scaling ---------------------------------------------------------------------------

    def _fit_scaler(self, matrix: np.ndarray) -> None:
        with np.errstate(invalid="ignore"):
            finite = np.where(np.isfinite(matrix), matrix, np.nan)
            counts = np.sum(np.isfinite(finite), axis=0)
            mean = np.where(counts > 0, np.nansum(finite, axis=0) / np.maximum(counts, 1), 0.0)
            var = np.where(
                counts > 0, np.nansum((finite - mean) ** 2, axis=0) / np.maximum(counts, 1), 0.0
            )
        scale = np.sqrt(var)
        self.x_mean = mean.astype(np.float64)
        self.x_scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float64)

    def _scale(self, matrix: np.ndarray) -> np.ndarray:
        assert self.x_mean is not None and self.x_scale is not None
        z = (matrix - self.x_mean) / self.x_scale
        z[~np.isfinite(z)] = 0.0
        return z.astype(np.float32)

    # -- fit -------------------------------------------------------------------------------

    def fit(
        self,
        X: FeatureInput,
        y: TargetInput,
        sample_weight: TargetInput | None = None,
        eval_set: EvalSet | None = None,
    ) -> Self:
        names = self._resolve_names(X)
        matrix = to_matrix(X, names)
        target = to_vector(y)
        assert target is not None
        n = len(matrix)
        if len(target) != n:
            raise ValueError(f"y has {len(target)} rows for {n} feature rows")
        if n == 0:
            raise ValueError("cannot fit on zero rows")
        weights = check_weights(sample_weight, n)
        if self.patience is not None and eval_set is None:
            raise ValueError("patience (early stopping) needs an eval_set to watch")
        self._feature_names = names
        self._fit_scaler(matrix)
        if self.task == "classification":
            self.classes_, codes = encode_classes(target)
            y_t = torch.from_numpy(codes)
            n_out = len(self.classes_)
        else:
            values = check_regression_target(target)
            self.y_mean = float(values.mean())
            sd = float(values.std())
            self.y_scale = sd if sd > 1e-12 else 1.0
            y_t = torch.from_numpy(((values - self.y_mean) / self.y_scale).astype(np.float32))
            n_out = 1
        w_t = torch.from_numpy((weights if weights is not None else np.ones(n)).astype(np.float32))
        inputs = self._inputs(X, matrix)
        evals = normalize_eval_set(eval_set)
        val = None
        if evals:
            X_val, y_val = evals[-1]
            val_inputs = self._inputs(X_val, to_matrix(X_val, names))
            val = (val_inputs, self._target_tensor(np.asarray(to_vector(y_val))))

        with deterministic_torch(self.seed, self.num_threads):
            net = self._build_net(len(names), n_out)
            opt = torch.optim.Adam(
                net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
            shuffle = torch.Generator().manual_seed(self.seed)
            self.history = []
            best_loss, best_state, best_epoch, stale = float("inf"), None, None, 0
            for epoch in range(self.epochs):
                net.train()
                order = torch.randperm(n, generator=shuffle)
                total, seen = 0.0, 0.0
                for start in range(0, n, self.batch_size):
                    rows = order[start : start + self.batch_size]
                    opt.zero_grad()
                    per_row = self._loss(net(inputs.batch(rows)), y_t[rows])
                    wb = w_t[rows]
                    loss = (per_row * wb).sum() / wb.sum()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * float(wb.sum())
                    seen += float(wb.sum())
                record = {"epoch": float(epoch), "train_loss": total / seen}
                if val is not None:
                    net.eval()
                    with torch.no_grad():
                        v_out = _forward_all(net, val[0], self.batch_size)
                        record["eval_loss"] = float(self._loss(v_out, val[1]).mean())
                    if record["eval_loss"] < best_loss:
                        best_loss, best_epoch, stale = record["eval_loss"], epoch, 0
                        best_state = {k: v.clone() for k, v in net.state_dict().items()}
                    else:
                        stale += 1
                self.history.append(record)
                if self.patience is not None and stale >= self.patience:
                    break
            if self.patience is not None and best_state is not None:
                net.load_state_dict(best_state)
                self.best_epoch = best_epoch
            else:
                self.best_epoch = None
        net.eval()
        self.net = net
        return self

    def _target_tensor(self, y: np.ndarray) -> torch.Tensor:
        if self.task == "classification":
            assert self.classes_ is not None
            codes = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
            unknown = self.classes_[codes] != y
            if unknown.any():
                raise ValueError(
                    f"eval_set labels {np.unique(y[unknown]).tolist()} are not among the "
                    f"training classes {self.classes_.tolist()}"
                )
            return torch.from_numpy(codes.astype(np.int64))
        values = check_regression_target(y)
        return torch.from_numpy(((values - self.y_mean) / self.y_scale).astype(np.float32))

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.task == "classification":
            return F.cross_entropy(out, target, reduction="none")
        return (out[:, 0] - target) ** 2

    # -- predict ---------------------------------------------------------------------------

    def _raw(self, X: FeatureInput) -> np.ndarray:
        self._require_fitted()
        assert self.net is not None
        inputs = self._inputs(X, to_matrix(X, self.feature_names))
        with deterministic_torch(self.seed, self.num_threads), torch.no_grad():
            out = _forward_all(self.net, inputs, max(self.batch_size, 1024))
        return out.numpy().astype(np.float64)

    def predict_margin(self, X: FeatureInput) -> np.ndarray:
        """Logits: the log-odds of the last class for two classes, else one column per class;
        the (unscaled) prediction for a regressor."""
        raw = self._raw(X)
        if self.task == "regression":
            return raw[:, 0] * self.y_scale + self.y_mean
        return raw[:, 1] - raw[:, 0] if raw.shape[1] == 2 else raw

    def predict_proba(self, X: FeatureInput) -> np.ndarray:
        if self.task != "classification":
            return super().predict_proba(X)
        raw = self._raw(X)
        raw = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(raw)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: FeatureInput) -> np.ndarray:
        if self.task == "classification":
            return self._labels_from_proba(self.predict_proba(X))
        return self.predict_margin(X)

    # -- persistence -----------------------------------------------------------------------

    def _archive(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        assert self.net is not None and self.x_mean is not None and self.x_scale is not None
        buf = io.BytesIO()
        torch.save(self.net.state_dict(), buf)
        fields = {
            "n_outputs": 1 if self.classes_ is None else len(self.classes_),
            "x_mean": self.x_mean.tolist(),
            "x_scale": self.x_scale.tolist(),
            "y_mean": self.y_mean,
            "y_scale": self.y_scale,
            "history": self.history,
            "best_epoch": self.best_epoch,
        }
        return fields, {"state_dict.pt": buf.getvalue()}

    @classmethod
    def _from_archive(cls, meta: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        model = cls(**meta["params"])
        model._restore_common(meta)
        model.x_mean = np.asarray(meta["x_mean"], dtype=np.float64)
        model.x_scale = np.asarray(meta["x_scale"], dtype=np.float64)
        model.y_mean = float(meta["y_mean"])
        model.y_scale = float(meta["y_scale"])
        model.history = list(meta.get("history") or [])
        model.best_epoch = meta.get("best_epoch")
        state = torch.load(io.BytesIO(blobs["state_dict.pt"]), weights_only=True)
        with deterministic_torch(model.seed, model.num_threads):
            net = model._build_net(len(model.feature_names), int(meta["n_outputs"]))
        net.load_state_dict(state)
        net.eval()
        model.net = net
        return model


class _Inputs:
    """Scaled rows, plus (for sequence models) each row's window of row indices.

    A window index equal to the number of rows points at an all-zero padding row.
    """

    def __init__(self, rows: torch.Tensor, windows: torch.Tensor | None) -> None:
        self.windows = windows
        if windows is not None:
            rows = torch.cat([rows, torch.zeros(1, rows.shape[1], dtype=rows.dtype)])
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows) - (1 if self.windows is not None else 0)

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        if self.windows is None:
            return self.rows[index]
        return self.rows[self.windows[index]]


def _forward_all(net: nn.Module, inputs: _Inputs, batch_size: int) -> torch.Tensor:
    outs = [
        net(inputs.batch(torch.arange(s, min(s + batch_size, len(inputs)))))
        for s in range(0, len(inputs), batch_size)
    ]
    return torch.cat(outs) if outs else torch.zeros(0, 1)


# --------------------------------------------------------------------------- the models


class MLPModel(_TorchModel):
    """A feed-forward network over one row of features.

    Small by default (two hidden layers of 32 and 16 units, 10 epochs): tens of thousands of
    rows train in seconds on one core.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (32, 16),
        task: Task = "classification",
        epochs: int = 10,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        dropout: float = 0.0,
        patience: int | None = None,
        seed: int = 0,
        num_threads: int | None = 1,
        feature_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            task, epochs, batch_size, learning_rate, weight_decay, dropout, patience, seed,
            num_threads, feature_names,
        )  # fmt: skip
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden layer sizes must be >= 1, got {list(hidden)}")
        self.hidden = [int(h) for h in hidden]

    @property
    def params(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), **self._base_params()}

    def _build_net(self, n_features: int, n_out: int) -> nn.Module:
        return _MLPNet(n_features, self.hidden, n_out, self.dropout)


class SequenceModel(_TorchModel):
    """A causal temporal convolution (``cell="tcn"``) or an LSTM over the last ``lookback`` rows.

    Defaults are small (16 steps, 16 channels, 2 layers): a few seconds for ~50k rows.
    ``group_column`` names a frame column (e.g. ``"symbol"``) that separates series; it is not a
    feature.
    """

    def __init__(
        self,
        lookback: int = 16,
        cell: SequenceCell = "tcn",
        hidden: int = 16,
        layers: int = 2,
        kernel_size: int = 3,
        group_column: str | None = None,
        task: Task = "classification",
        epochs: int = 10,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        dropout: float = 0.0,
        patience: int | None = None,
        seed: int = 0,
        num_threads: int | None = 1,
        feature_names: list[str] | None = None,
    ) -> None:
        super().__init__(
            task, epochs, batch_size, learning_rate, weight_decay, dropout, patience, seed,
            num_threads, feature_names,
        )  # fmt: skip
        if cell not in ("tcn", "lstm"):
            raise ValueError(f"cell must be 'tcn' or 'lstm', got {cell!r}")
        if lookback < 1 or hidden < 1 or layers < 1 or kernel_size < 1:
            raise ValueError("lookback, hidden, layers and kernel_size must be >= 1")
        self.lookback = int(lookback)
        self.cell: SequenceCell = cell
        self.hidden_size = int(hidden)
        self.layers = int(layers)
        self.kernel_size = int(kernel_size)
        self.group_column = group_column

    @property
    def params(self) -> dict[str, Any]:
        return {
            "lookback": self.lookback,
            "cell": self.cell,
            "hidden": self.hidden_size,
            "layers": self.layers,
            "kernel_size": self.kernel_size,
            "group_column": self.group_column,
            **self._base_params(),
        }

    def _build_net(self, n_features: int, n_out: int) -> nn.Module:
        if self.cell == "lstm":
            return _LSTMNet(n_features, self.hidden_size, self.layers, n_out, self.dropout)
        return _TCNNet(
            n_features, self.hidden_size, self.layers, self.kernel_size, n_out, self.dropout
        )

    def _resolve_names(self, X: FeatureInput) -> list[str]:
        names = resolve_feature_names(X, self.requested_features)
        if self.group_column is not None:
            names = [n for n in names if n != self.group_column]
        return names

    def _inputs(self, X: FeatureInput, matrix: np.ndarray) -> _Inputs:
        groups = self._group_codes(X, len(matrix))
        windows = window_indices(groups, self.lookback)
        return _Inputs(torch.from_numpy(self._scale(matrix)), torch.from_numpy(windows))

    def windows(self, X: FeatureInput) -> np.ndarray:
        """Each row's scaled input window, shape (n_rows, lookback, n_features), oldest first.

        This is what the network sees; explanations attribute over it (see
        ``quant.models.explanations``) and :meth:`predict_proba_windows` maps it back to outputs.
        """
        self._require_fitted()
        inputs = self._inputs(X, to_matrix(X, self.feature_names))
        assert inputs.windows is not None
        return inputs.rows[inputs.windows].numpy()

    def predict_proba_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities (classifier) or predictions (regressor, one column) from scaled windows
        as :meth:`windows` returns them."""
        self._require_fitted()
        assert self.net is not None
        w = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        with deterministic_torch(self.seed, self.num_threads), torch.no_grad():
            outs = [self.net(w[s : s + 4096]) for s in range(0, len(w), 4096)]
        raw = torch.cat(outs).numpy().astype(np.float64)
        if self.task == "regression":
            return raw[:, :1] * self.y_scale + self.y_mean
        raw = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(raw)
        return e / e.sum(axis=1, keepdims=True)

    def _group_codes(self, X: FeatureInput, n: int) -> np.ndarray:
        if self.group_column is None:
            return np.zeros(n, dtype=np.int64)
        cols = frame_columns(X)
        if cols is None or self.group_column not in cols:
            raise ValueError(
                f"SequenceModel(group_column={self.group_column!r}) needs a frame with that column"
            )
        if isinstance(X, pl.DataFrame):
            values = X.get_column(self.group_column).cast(pl.String).to_numpy()
        else:
            values = X[self.group_column].astype(str).to_numpy()  # type: ignore[index]
        return np.unique(values.astype(str), return_inverse=True)[1].astype(np.int64)


def window_indices(groups: np.ndarray, lookback: int) -> np.ndarray:
    """Row indices of each row's window, oldest first, shape (n, lookback).

    The window of row t holds the ``lookback`` latest rows of t's group at or before t, in the
    frame's row order; positions before the group's first row hold ``n`` (the padding row).
    """
    n = len(groups)
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    first = np.searchsorted(sorted_groups, sorted_groups, side="left")
    rank = np.arange(n) - first  # rows of the same group before this one
    offsets = np.arange(lookback - 1, -1, -1)
    pos = np.arange(n)[:, None] - offsets[None, :]
    valid = offsets[None, :] <= rank[:, None]
    sorted_windows = np.where(valid, order[np.clip(pos, 0, None)], n)
    out = np.empty((n, lookback), dtype=np.int64)
    out[order] = sorted_windows
    return out
