"""Chebyshev tables: a network evaluated at a few points spanning the events, interpolated.

An estimator evaluated at many events with one feature (a posterior update: every grid point
times every event) evaluates its networks at ``_TABLE_NODES`` Chebyshev points spanning the
events instead, and interpolates to the events (barycentric); a parameter point whose table is
not resolved takes twice as many points, then every event
(:meth:`activesci.inference.ratio.RatioEstimator.log_ratio`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.fft

__all__: list[str] = []

#: Events with one feature: a call with more than ``_TABLE_MIN_EVENTS`` of them evaluates the
#: network at ``_TABLE_NODES`` Chebyshev points spanning them and interpolates (barycentric);
#: where that table is not resolved, at twice as many points, and then at every event. The
#: networks are smooth (SiLU), so the interpolation converges geometrically; a table is
#: resolved when its last two Chebyshev coefficients are below ``_TABLE_TOLERANCE`` nats (the
#: test chebfun uses), and its error is then of that size: within 2e-5 of the direct
#: evaluation (tests/test_ratio.py asserts it).
_TABLE_NODES = 16
_TABLE_MIN_EVENTS = 8 * _TABLE_NODES
_TABLE_TOLERANCE = 1e-5


def _tables(x: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The Chebyshev tables to try for events ``x`` ``(n, X)``, coarse first (none may pay)."""
    for k in (_TABLE_NODES, 2 * _TABLE_NODES):
        table = _chebyshev_table(x, k)
        if table is None:
            return
        yield table


def _tail(values: np.ndarray, axis: int) -> np.ndarray:
    """The largest of the last two Chebyshev coefficients of values along ``axis``."""
    k = values.shape[axis]
    coef = scipy.fft.dct(values, type=1, axis=axis) / (k - 1)  # Chebyshev coefficients
    return np.abs(np.take(coef, [k - 2, k - 1], axis=axis)).max(axis=axis)


def _chebyshev_table(x: np.ndarray, k: int = _TABLE_NODES) -> tuple[np.ndarray, np.ndarray] | None:
    """``k`` Chebyshev points ``(k, 1)`` spanning events ``x`` ``(n, 1)``, and interpolation.

    The matrix ``(n, k)`` interpolates values at the points to the events. None where a
    table would not pay: several features, at most ``_TABLE_MIN_EVENTS`` events, or all
    events equal. Barycentric interpolation at Chebyshev points of the second kind (Berrut
    & Trefethen 2004): stable, and for analytic functions its error falls geometrically with
    ``k``.
    """
    if x.shape[1] != 1 or len(x) <= _TABLE_MIN_EVENTS:
        return None
    lo, hi = float(x.min()), float(x.max())
    if not hi - lo > 1e-9 * max(1.0, abs(lo), abs(hi)):
        return None
    j = np.arange(k)
    nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(np.pi * j / (k - 1))
    nodes[[0, -1]] = hi, lo  # exactly: the extreme events sit on them
    weights = (-1.0) ** j
    weights[[0, -1]] *= 0.5
    matrix = x[:, :1] - nodes[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(weights, matrix, out=matrix)
        total = matrix.sum(axis=1)
        matrix /= total[:, None]
    # an event on a node made its row infinite: it takes that node's value exactly
    hit = ~np.isfinite(total)
    if hit.any():
        matrix[hit] = x[hit, :1] == nodes[None, :]
    return nodes[:, None], matrix


def resolved_at(values: np.ndarray, axis: int) -> np.ndarray:
    """Whether each table (along ``axis``) has negligible last coefficients: a bool array."""
    return _tail(values, axis) <= _TABLE_TOLERANCE
