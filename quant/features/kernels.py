"""The streaming half of every feature: compiled (numba) one-event updates over flat state.

A feature is defined once, as a class in this package (``returns.py``, ``volatility.py``, ...)
that owns its name, parameters, inputs and its vectorised polars expression, and that points to
one kernel here by its opcode. The kernel is the same definition written as a recurrence: it is
fed one event at a time and returns the value as of that event. The parity tests hold the two
halves to each other on real and synthetic data.

Why compiled, and why all kernels live in this one file:

- Streaming must cost at most twice the vectorised computation per row (issue 4). A Python
  object per feature costs about a microsecond per update; a feature set of twenty is then
  ten times polars' per-row cost. Here a symbol's whole feature set is one compiled call
  (``step``; ``step_many`` for a slice or micro-batch of events), which walks a small program
  (per feature: opcode, parameter slice, state slice) over the symbol's row of a float64 state
  matrix.
- numba's on-disk cache (``cache=True``) is invalidated by changes to the file that holds the
  compiled function, not by changes to the files it calls into. Keeping every kernel next to the
  dispatcher means editing a kernel always recompiles the dispatcher.

Conventions every kernel follows:

- ``p`` holds the feature's parameters: first the slots of its inputs in the event vector ``x``
  (floats holding small integers), then its numeric parameters.
- ``s`` is the feature's slice of the symbol's state, zero-initialised; flags and counters are
  stored as floats (exact below 2**53).
- NaN means null, both for inputs (a missing value) and for the result; ``step`` turns any
  non-finite result into NaN so that an infinite or undefined value reads as null, as the
  pipeline does to the batch side's columns.
- Windows of real numbers are ring buffers summed afresh, oldest value first, on every update:
  free of the drift an add-and-subtract running sum accumulates over millions of events, at a
  cost of ``w`` additions (twenty to a few hundred) that the compiled loop pays in nanoseconds.
  Windows of whole numbers (shares, signs: order-flow and trade imbalances) keep a running sum,
  which is exact.
- EWMA recursions use ``m + alpha * (x - m)``, the form polars' ``ewm_mean(adjust=False)``
  evaluates (bit for bit, as of polars 2.1), seeded, where the definition says so, by the
  simple mean of the first ``n`` values.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NAN = math.nan
LN2 = math.log(2.0)
PARKINSON_FACTOR = 1.0 / (4.0 * LN2)
"""Parkinson (1980): sigma^2 = E[ln(H/L)^2] / (4 ln 2)."""
GARMAN_KLASS_FACTOR = 2.0 * LN2 - 1.0
"""Garman and Klass (1980): sigma^2 = E[0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2]."""

# Opcodes: one per kernel. Stable numbers, never reused.
OP_LOG_RETURN = 1
OP_CLOSE_VOL = 2
OP_PARKINSON = 3
OP_GARMAN_KLASS = 4
OP_YANG_ZHANG = 5
OP_RSI = 6
OP_MACD = 7
OP_ATR = 8
OP_VWAP_DISTANCE = 9
OP_VOLUME_Z = 10
OP_REL_SPREAD = 11
OP_MICROPRICE = 12
OP_OFI = 13
OP_TRADE_SIGN = 14
OP_VALUE = 15
OP_SIN = 16
OP_COS = 17
OP_BETA = 18
OP_RESIDUAL_MOMENTUM = 19
OP_FFD = 20

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
_HEADER = 2
_PLAN_WIDTH = 5


WINDOW_HEADER = 2
"""A ring buffer's ``[count, next]`` header before its values."""


def window_size(width: int) -> int:
    """State floats taken by a ring buffer of ``width`` values (each value is stored twice)."""
    return WINDOW_HEADER + 2 * width


def exact_window_size(width: int) -> int:
    """State floats taken by a running-sum ring of ``width`` whole numbers."""
    return 4 + width


# -- ring buffers ---------------------------------------------------------------------------
#
# A ring of width w is laid out [count, next, b_0 .. b_{2w-1}]: each value is written at
# b[k] and b[k + w], so that after a push the window, oldest value first, is the contiguous
# run b[next .. next + w). Summing it is a plain loop (no wrap-around test per element), which
# is what makes recomputing windows on every update cheap.


@njit(**_JIT)
def _push(s, o, w, v):
    """Append ``v`` to the ring at ``s[o]``; the oldest value falls out once ``w`` are held."""
    nxt = int(s[o + 1])
    s[o + 2 + nxt] = v
    s[o + 2 + nxt + w] = v
    nxt += 1
    if nxt == w:
        nxt = 0
    s[o + 1] = nxt
    s[o] += 1.0


@njit(**_JIT)
def _oldest(s, o, w):
    """The value that the next push overwrites (the oldest of a full ring)."""
    return s[o + 2 + int(s[o + 1])]


@njit(**_JIT)
def _start(s, o):
    """Index in ``s`` of the oldest value of the (full) window."""
    return o + 2 + int(s[o + 1])


@njit(**_JIT)
def _sum(s, o, w):
    """Sum of a full ring, oldest first; NaN when not full or when it holds a null."""
    if s[o] < w:
        return NAN
    a = _start(s, o)
    total = 0.0
    for i in range(a, a + w):
        total += s[i]
    return total


@njit(**_JIT)
def _var(s, o, w):
    """Sample variance (ddof 1) of a full ring by two passes; exactly 0 when all values are
    equal (as polars' ``rolling_var`` gives), NaN when not full or holding a null."""
    if s[o] < w:
        return NAN
    a = _start(s, o)
    total = 0.0
    lo = s[a]
    hi = lo
    for i in range(a, a + w):
        v = s[i]
        total += v
        lo = min(lo, v)
        hi = max(hi, v)
    if total != total:
        return NAN
    if lo == hi:
        return 0.0
    mean = total / w
    acc = 0.0
    for i in range(a, a + w):
        d = s[i] - mean
        acc += d * d
    return acc / (w - 1)


@njit(**_JIT)
def _dot_oldest_first(s, o, w, p, q):
    """Sum over a full ring of ``value_i * p[q + i]``, values oldest first; NaN when not full.

    Four interleaved partial sums (i mod 4) instead of one chain: the additions of one chain
    wait on each other, four run side by side, and wide windows (FFD keeps hundreds of
    weights) cost a quarter of the time. The rounding differs from a single chain by a few
    ulps, far inside the parity tolerance.
    """
    if s[o] < w:
        return NAN
    a = _start(s, o) - q
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    i = q
    end = q + w
    while i + 3 < end:
        a0 += s[a + i] * p[i]
        a1 += s[a + i + 1] * p[i + 1]
        a2 += s[a + i + 2] * p[i + 2]
        a3 += s[a + i + 3] * p[i + 3]
        i += 4
    while i < end:
        a0 += s[a + i] * p[i]
        i += 1
    return (a0 + a1) + (a2 + a3)


@njit(**_JIT)
def _push_exact(s, o, w, v):
    """Ring of whole numbers (share counts, signs) laid out ``[count, next, sum, nulls,
    v_0 .. v_{w-1}]`` with a running sum: adding and removing integers is exact in float64
    below 2**53, so the sum never drifts and costs O(1) however wide the window."""
    nxt = int(s[o + 1])
    if s[o] >= w:
        old = s[o + 4 + nxt]
        if old != old:
            s[o + 3] -= 1.0
        else:
            s[o + 2] -= old
    s[o + 4 + nxt] = v
    if v != v:
        s[o + 3] += 1.0
    else:
        s[o + 2] += v
    nxt += 1
    if nxt == w:
        nxt = 0
    s[o + 1] = nxt
    s[o] += 1.0


@njit(**_JIT)
def _exact_sum(s, o, w):
    """Sum of a full ring of whole numbers; NaN when not full or holding a null."""
    if s[o] < w or s[o + 3] > 0.0:
        return NAN
    return s[o + 2]


@njit(**_JIT)
def _seeded_ema(s, o, n, alpha, v):
    """EMA seeded by the mean of its first ``n`` inputs: state ``[count, sum, value]``.

    NaN until ``n`` inputs; then ``value += alpha * (v - value)``.
    """
    count = s[o] + 1.0
    s[o] = count
    if count < n:
        s[o + 1] += v
        return NAN
    if count == n:
        s[o + 1] += v
        s[o + 2] = s[o + 1] / n
        return s[o + 2]
    m = s[o + 2]
    m = m + alpha * (v - m)
    s[o + 2] = m
    return m


@njit(**_JIT)
def _sqrt0(v):
    """sqrt, with a variance a rounding error made negative read as 0 (NaN stays NaN)."""
    if v < 0.0:
        v = 0.0
    return math.sqrt(v)


@njit(**_JIT)
def _previous(s, o, v):
    """Swap ``v`` in as the remembered previous value (state ``[has, value]``); returns the
    previous value, NaN on the first call."""
    prev = s[o + 1] if s[o] > 0.0 else NAN
    s[o] = 1.0
    s[o + 1] = v
    return prev


# -- returns --------------------------------------------------------------------------------


@njit(**_JIT)
def log_return(p, s, x):
    """ln(v_t / v_{t-k}); state: ring of the last k values."""
    v = x[int(p[0])]
    k = int(p[1])
    out = NAN
    if s[0] >= k:
        out = math.log(v / _oldest(s, 0, k))
    _push(s, 0, k, v)
    return out


# -- realised volatility --------------------------------------------------------------------


@njit(**_JIT)
def close_vol(p, s, x):
    """Sample std of the last n log returns; state: [has, prev] + ring(n)."""
    c = x[int(p[0])]
    n = int(p[1])
    prev = _previous(s, 0, c)
    _push(s, 2, n, math.log(c / prev))
    return _sqrt0(_var(s, 2, n))


@njit(**_JIT)
def parkinson(p, s, x):
    h = x[int(p[0])]
    lo = x[int(p[1])]
    n = int(p[2])
    u = math.log(h / lo)
    _push(s, 0, n, u * u)
    return _sqrt0(_sum(s, 0, n) / n * PARKINSON_FACTOR)


@njit(**_JIT)
def garman_klass(p, s, x):
    o = x[int(p[0])]
    h = x[int(p[1])]
    lo = x[int(p[2])]
    c = x[int(p[3])]
    n = int(p[4])
    hl = math.log(h / lo)
    co = math.log(c / o)
    _push(s, 0, n, 0.5 * (hl * hl) - GARMAN_KLASS_FACTOR * (co * co))
    return _sqrt0(_sum(s, 0, n) / n)


@njit(**_JIT)
def yang_zhang(p, s, x):
    """Yang-Zhang: var(overnight) + k var(open-to-close) + (1 - k) mean(Rogers-Satchell).

    State: [has, prev close] + ring(n) overnight + ring(n) open-to-close + ring(n) RS.
    """
    o = x[int(p[0])]
    h = x[int(p[1])]
    lo = x[int(p[2])]
    c = x[int(p[3])]
    n = int(p[4])
    k = p[5]
    prev = _previous(s, 0, c)
    w = WINDOW_HEADER + 2 * n
    _push(s, 2, n, math.log(o / prev))
    _push(s, 2 + w, n, math.log(c / o))
    hc = math.log(h / c)
    ho = math.log(h / o)
    lc = math.log(lo / c)
    lo_ = math.log(lo / o)
    _push(s, 2 + 2 * w, n, hc * ho + lc * lo_)
    var_o = _var(s, 2, n)
    var_c = _var(s, 2 + w, n)
    rs = _sum(s, 2 + 2 * w, n) / n
    return _sqrt0(var_o + k * var_c + (1.0 - k) * rs)


# -- indicators ------------------------------------------------------------------------------


@njit(**_JIT)
def rsi(p, s, x):
    """Wilder's RSI; state: [has, prev] + gains EMA[3] + losses EMA[3]."""
    c = x[int(p[0])]
    n = int(p[1])
    alpha = p[2]
    prev = _previous(s, 0, c)
    if prev != prev:
        return NAN
    d = c - prev
    gain = d if d > 0.0 else 0.0
    loss = -d if -d > 0.0 else 0.0
    ag = _seeded_ema(s, 2, n, alpha, gain)
    al = _seeded_ema(s, 5, n, alpha, loss)
    if al != al or ag != ag:
        return NAN
    if al == 0.0:
        return 100.0
    return 100.0 - 100.0 / (1.0 + ag / al)


@njit(**_JIT)
def macd(p, s, x):
    """MACD line, signal or histogram; state: fast EMA[3] + slow EMA[3] + signal EMA[3]."""
    c = x[int(p[0])]
    fast = int(p[1])
    slow = int(p[2])
    signal = int(p[3])
    output = int(p[4])
    ef = _seeded_ema(s, 0, fast, p[5], c)
    es = _seeded_ema(s, 3, slow, p[6], c)
    if es != es or ef != ef:
        return NAN
    line = ef - es
    sig = _seeded_ema(s, 6, signal, p[7], line)
    if output == 0:
        return line
    if output == 1:
        return sig
    return line - sig


@njit(**_JIT)
def atr(p, s, x):
    """Wilder's ATR; the first bar's true range is H - L. State: [has, prev] + EMA[3]."""
    h = x[int(p[0])]
    lo = x[int(p[1])]
    c = x[int(p[2])]
    n = int(p[3])
    prev = _previous(s, 0, c)
    tr = h - lo
    if prev == prev:
        a = abs(h - prev)
        b = abs(lo - prev)
        if a > tr:
            tr = a
        if b > tr:
            tr = b
    return _seeded_ema(s, 2, n, p[4], tr)


@njit(**_JIT)
def vwap_distance(p, s, x):
    """price / session VWAP - 1; state: [has, session, sum(value price * volume), sum(volume)]."""
    price = x[int(p[0])]
    value_price = x[int(p[1])]
    volume = x[int(p[2])]
    session = x[int(p[3])]
    if s[0] == 0.0 or s[1] != session:
        s[0] = 1.0
        s[1] = session
        s[2] = 0.0
        s[3] = 0.0
    s[2] += value_price * volume
    s[3] += volume
    if s[3] == 0.0:
        return NAN
    return price / (s[2] / s[3]) - 1.0


@njit(**_JIT)
def volume_z(p, s, x):
    v = x[int(p[0])]
    n = int(p[1])
    _push(s, 0, n, v)
    var = _var(s, 0, n)
    if not var > 0.0:
        return NAN
    return (v - _sum(s, 0, n) / n) / math.sqrt(var)


# -- microstructure --------------------------------------------------------------------------


@njit(**_JIT)
def rel_spread(p, s, x):
    bid = x[int(p[0])]
    ask = x[int(p[1])]
    return (ask - bid) / ((ask + bid) * 0.5)


@njit(**_JIT)
def microprice(p, s, x):
    bid = x[int(p[0])]
    bid_size = x[int(p[1])]
    ask = x[int(p[2])]
    ask_size = x[int(p[3])]
    depth = bid_size + ask_size
    if depth == 0.0:
        return NAN
    mp = (bid * ask_size + ask * bid_size) / depth
    if p[4] > 0.0:
        return mp / ((ask + bid) * 0.5) - 1.0
    return mp


@njit(**_JIT)
def ofi(p, s, x):
    """Cont-Kukanov-Stoikov order-flow imbalance summed over the last n quote updates.

    State: [has, bid, bid size, ask, ask size] + exact ring(n) of e_n (whole shares).
    """
    bid = x[int(p[0])]
    bid_size = x[int(p[1])]
    ask = x[int(p[2])]
    ask_size = x[int(p[3])]
    n = int(p[4])
    e = NAN
    if s[0] > 0.0:
        pb = s[1]
        pbs = s[2]
        pa = s[3]
        pas = s[4]
        e = 0.0
        if bid >= pb:
            e += bid_size
        if bid <= pb:
            e -= pbs
        if ask <= pa:
            e -= ask_size
        if ask >= pa:
            e += pas
    s[0] = 1.0
    s[1] = bid
    s[2] = bid_size
    s[3] = ask
    s[4] = ask_size
    _push_exact(s, 5, n, e)
    return _exact_sum(s, 5, n)


@njit(**_JIT)
def trade_sign(p, s, x):
    """Signed-trade imbalance over the last n trades; sign from the aggressor side or the tick
    rule. State: [has, prev price, last sign] + exact rings(n) of numerator and denominator."""
    price = x[int(p[0])]
    size = x[int(p[1])]
    n = int(p[3])
    weighted = p[4] > 0.0
    if p[5] > 0.0:
        sign = NAN
        if s[0] > 0.0:
            prev = s[1]
            if price > prev:
                sign = 1.0
            elif price < prev:
                sign = -1.0
            else:
                sign = s[2]
        s[0] = 1.0
        s[1] = price
        s[2] = sign
    else:
        sign = x[int(p[2])]
    w = 4 + n
    if weighted:
        _push_exact(s, 3, n, sign * size)
        _push_exact(s, 3 + w, n, size)
    else:
        _push_exact(s, 3, n, sign)
        _push_exact(s, 3 + w, n, 1.0)
    den = _exact_sum(s, 3 + w, n)
    if den == 0.0:
        return NAN
    return _exact_sum(s, 3, n) / den


# -- calendar and context ---------------------------------------------------------------------


@njit(**_JIT)
def value(p, s, x):
    return x[int(p[0])]


@njit(**_JIT)
def sin_of(p, s, x):
    return math.sin(x[int(p[0])] * p[1])


@njit(**_JIT)
def cos_of(p, s, x):
    return math.cos(x[int(p[0])] * p[1])


# -- market factor -----------------------------------------------------------------------------


@njit(**_JIT)
def _beta_update(s, o, n, r, m):
    """Push the pair (r, m) into rings at ``s[o]`` (market) and after it (symbol) and return the
    OLS slope of r on m over the last n pairs (NaN unless n valid pairs and var(m) > 0)."""
    w = WINDOW_HEADER + 2 * n
    if r != r or m != m:
        r = NAN
        m = NAN
    _push(s, o, n, m)
    _push(s, o + w, n, r)
    if s[o] < n:
        return NAN
    a = _start(s, o)
    b = _start(s, o + w)
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    lo = s[a]
    hi = lo
    for i in range(n):
        mx = s[a + i]
        ry = s[b + i]
        sx += mx
        sy += ry
        sxx += mx * mx
        sxy += mx * ry
        lo = min(lo, mx)
        hi = max(hi, mx)
    den = sxx - sx * sx / n
    if lo == hi or not den > 0.0:
        return NAN
    return (sxy - sx * sy / n) / den


@njit(**_JIT)
def beta(p, s, x):
    """Rolling OLS beta of the symbol's log return on the market return; state:
    [has, prev close] + ring(n) market + ring(n) symbol."""
    c = x[int(p[0])]
    m = x[int(p[1])]
    n = int(p[2])
    prev = _previous(s, 0, c)
    return _beta_update(s, 2, n, math.log(c / prev), m)


@njit(**_JIT)
def residual_momentum(p, s, x):
    """Sum of the last k residuals r_t - beta_{t-1} m_t, beta from the previous bar's window.

    State: [has, prev close, has beta, beta] + ring(n) market + ring(n) symbol + ring(k)
    residuals.
    """
    c = x[int(p[0])]
    m = x[int(p[1])]
    n = int(p[2])
    k = int(p[3])
    prev = _previous(s, 0, c)
    r = math.log(c / prev)
    b = s[3] if s[2] > 0.0 else NAN
    w = WINDOW_HEADER + 2 * n
    _push(s, 4 + 2 * w, k, r - b * m)
    nb = _beta_update(s, 4, n, r, m)
    s[2] = 1.0
    s[3] = nb
    return _sum(s, 4 + 2 * w, k)


# -- fractional differentiation ------------------------------------------------------------------


@njit(**_JIT)
def ffd(p, s, x):
    """Fixed-width fractional difference: sum_k w_k v_{t-k}; p = [slot, log?, width, weights
    oldest first]."""
    v = x[int(p[0])]
    if p[1] > 0.0:
        v = math.log(v)
    width = int(p[2])
    _push(s, 0, width, v)
    return _dot_oldest_first(s, 0, width, p, 3)


# -- dispatcher ----------------------------------------------------------------------------------


@njit(**_JIT)
def _run(program, state, x, out):
    """Update every feature of one symbol with one event ``x``; write the values to ``out``."""
    n_features = int(program[0])
    for j in range(n_features):
        row = _HEADER + j * _PLAN_WIDTH
        op = int(program[row])
        p = program[int(program[row + 1]) : int(program[row + 2])]
        s = state[int(program[row + 3]) : int(program[row + 4])]
        if op == OP_LOG_RETURN:
            v = log_return(p, s, x)
        elif op == OP_CLOSE_VOL:
            v = close_vol(p, s, x)
        elif op == OP_PARKINSON:
            v = parkinson(p, s, x)
        elif op == OP_GARMAN_KLASS:
            v = garman_klass(p, s, x)
        elif op == OP_YANG_ZHANG:
            v = yang_zhang(p, s, x)
        elif op == OP_RSI:
            v = rsi(p, s, x)
        elif op == OP_MACD:
            v = macd(p, s, x)
        elif op == OP_ATR:
            v = atr(p, s, x)
        elif op == OP_VWAP_DISTANCE:
            v = vwap_distance(p, s, x)
        elif op == OP_VOLUME_Z:
            v = volume_z(p, s, x)
        elif op == OP_REL_SPREAD:
            v = rel_spread(p, s, x)
        elif op == OP_MICROPRICE:
            v = microprice(p, s, x)
        elif op == OP_OFI:
            v = ofi(p, s, x)
        elif op == OP_TRADE_SIGN:
            v = trade_sign(p, s, x)
        elif op == OP_VALUE:
            v = value(p, s, x)
        elif op == OP_SIN:
            v = sin_of(p, s, x)
        elif op == OP_COS:
            v = cos_of(p, s, x)
        elif op == OP_BETA:
            v = beta(p, s, x)
        elif op == OP_RESIDUAL_MOMENTUM:
            v = residual_momentum(p, s, x)
        elif op == OP_FFD:
            v = ffd(p, s, x)
        else:
            v = NAN
        if v - v != 0.0:  # NaN or +-inf: null
            v = NAN
        out[j] = v


@njit(**_JIT)
def step(program, states, row, io):
    """One event of the symbol whose state is ``states[row]``: ``io`` holds the event's inputs
    (``program[1]`` values) followed by room for the outputs (``program[0]`` values)."""
    n_inputs = int(program[1])
    _run(program, states[row], io[:n_inputs], io[n_inputs:])


@njit(**_JIT)
def step_many(program, states, rows, inputs, outputs):
    """Events of several symbols at once (a slice of bars): event i updates ``states[rows[i]]``
    with ``inputs[i]`` and writes ``outputs[i]``. One call instead of one per symbol."""
    for i in range(rows.shape[0]):
        _run(program, states[rows[i]], inputs[i], outputs[i])


@njit(**_JIT)
def step_slices(program, states, rows, inputs, outputs, bounds, close, market, previous):
    """Slices of bars, each every symbol's bar of one instant: events ``bounds[k]`` to
    ``bounds[k + 1]``. For each slice the equal-weighted market return (the mean of
    ``ln(close / previous close)`` over its symbols that have a previous close and a finite
    return) goes into every event's ``market`` input before the features run. The previous
    close of the symbol of row r is ``states[r, previous]``, past the kernels' state."""
    for k in range(bounds.shape[0] - 1):
        a = bounds[k]
        b = bounds[k + 1]
        total = 0.0
        count = 0
        for i in range(a, b):
            c = inputs[i, close]
            prev = states[rows[i], previous]
            if prev > 0.0 and c > 0.0:
                r = math.log(c / prev)
                if r - r == 0.0:
                    total += r
                    count += 1
            states[rows[i], previous] = c
        m = total / count if count > 0 else NAN
        for i in range(a, b):
            inputs[i, market] = m
            _run(program, states[rows[i]], inputs[i], outputs[i])


@njit(**_JIT)
def calendar_context(stamp, local, session_local, open_ns, close_ns, starts, codes, out):
    """Calendar context of events of one local day (see ``SessionClock.context``): per event
    the session day of ``session_local``, minutes since local midnight, minutes since the open
    (NaN outside ``[open, close]`` or without a session, ``open_ns < 0``) and the phase code
    (0, closed, outside ``[open, close)``). ``starts``/``codes``: the day's phase windows."""
    day_ns = 86_400_000_000_000
    for i in range(stamp.shape[0]):
        t = stamp[i]
        out[i, 0] = session_local[i] // day_ns
        out[i, 1] = (local[i] % day_ns) / 60_000_000_000.0
        if open_ns < 0 or t < open_ns or t > close_ns:
            out[i, 2] = NAN
        else:
            out[i, 2] = (t - open_ns) / 60_000_000_000.0
        code = 0.0
        if open_ns >= 0 and open_ns <= t < close_ns:
            j = starts.shape[0] - 1
            while starts[j] > t:
                j -= 1
            code = codes[j]
        out[i, 3] = code


def compile_program(
    specs: list[tuple[int, list[float], int]], n_inputs: int
) -> tuple[np.ndarray, int]:
    """Pack kernel specs ``(opcode, params, state size)`` into one float64 program and the
    state size per symbol.

    Layout: ``[n features, n inputs]``, then per feature ``(opcode, params start, params end,
    state start, state end)`` (params offsets into the program, state offsets into a symbol's
    state row), then every feature's parameters. Small integers are exact in float64.
    """
    n = len(specs)
    head = _HEADER + n * _PLAN_WIDTH
    program = [float(n), float(n_inputs)]
    params: list[float] = []
    s0 = 0
    for op, p, size in specs:
        p0 = head + len(params)
        params.extend(float(v) for v in p)
        program.extend(
            [float(op), float(p0), float(head + len(params)), float(s0), float(s0 + size)]
        )
        s0 += size
    return np.asarray(program + params, dtype=np.float64), s0
