"""Posteriors over the theory parameters, updated one observation at a time: the common part.

Each update adds an observation's log likelihood (:mod:`activesci.inference.likelihood`).
Two representations share this base:

- :class:`~activesci.inference.grid.GridPosterior` keeps the log posterior on a grid of cell
  centres (1 to 3 parameters);
- :class:`~activesci.inference.particles.SamplePosterior` keeps weighted particles (any number
  of parameters): sequential Monte Carlo with adaptive tempering, systematic resampling and
  random-walk Metropolis moves.

Both offer the same summaries: ``mean``, ``std``, ``cov``, ``interval`` (central, equal-tailed),
``hdr`` (highest-density intervals of each marginal, possibly several), ``modes``, ``entropy``,
``sample``, ``log_density``, ``marginal`` and, for corner plots, ``pair_marginal`` and
``pair_marginals`` (the joint density of two parameters).
"""

from __future__ import annotations

import copy as _copy
import itertools
from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from scipy import interpolate

from activesci.errors import (
    OutOfSpaceError,
    ValidationError,
)
from activesci.inference.likelihood import (
    _capabilities,
    _check_estimator,
    _rate_log_likelihood,
    _summed_log_ratio,
)
from activesci.spaces import Space
from activesci.typing import Observation

__all__: list[str] = []

#: Sub-cells per grid cell of the fine 1-D view used for quantiles and HDRs.
_SUBDIVIDE = 16
#: Lowest log density kept (relative to the peak) before interpolating in log space.
_LOG_FLOOR = -700.0
#: Modes lower than this fraction of the marginal's peak are ignored.
_MODE_FRACTION = 0.05
#: A pair histogram spans the weighted quantiles ``(q, 1 - q)`` of each axis ...
_PAIR_TAIL = 1e-4
#: ... padded by this fraction of their distance on each side.
_PAIR_PAD = 0.1
#: Gaussian smoothing of a pair histogram, in bins (continuous axes only).
_PAIR_SMOOTHING = 0.5


# -- shared summaries of weighted points and of 1-D marginals -------------------------------------
def _weighted_mean_cov(points: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(P,)`` and covariance ``(P, P)`` of points ``(n, P)`` with weights summing to 1."""
    mean = weights @ points
    centred = points - mean
    return mean, (centred * weights[:, None]).T @ centred


def _normalised(log_w: np.ndarray) -> np.ndarray:
    """Weights ``exp(log_w)`` normalised to sum 1, computed stably."""
    with np.errstate(under="ignore"):
        w = np.exp(log_w - np.max(log_w))
    return w / w.sum()


def _check_level(level: float) -> float:
    if not (isinstance(level, int | float | np.floating) and 0.0 < level < 1.0):
        raise ValidationError(f"level must be a probability in (0, 1), got {level!r}")
    return float(level)


class _Marginal:
    """A 1-D density known in log at the centres of equal cells covering ``[lo, hi]``.

    Quantiles and HDRs use a fine view: the log density interpolated with PCHIP (shape
    preserving, so no spurious bumps, and exact-looking for Gaussian tails) at
    ``_SUBDIVIDE`` sub-cells per cell.
    """

    def __init__(self, centres: np.ndarray, log_f: np.ndarray, lo: float, hi: float) -> None:
        self.centres, self.lo, self.hi = centres, lo, hi
        self.width = (hi - lo) / len(centres)
        self.log_f = np.maximum(log_f - np.max(log_f), _LOG_FLOOR)
        mass = np.exp(self.log_f)
        self.density = mass / (mass.sum() * self.width)
        n = len(centres) * _SUBDIVIDE
        self.dx = (hi - lo) / n
        self.fine_x = lo + self.dx * (np.arange(n) + 0.5)
        if len(centres) > 1:
            lf = interpolate.PchipInterpolator(centres, self.log_f, extrapolate=True)(self.fine_x)
        else:
            lf = np.zeros(n)
        g = np.exp(np.minimum(lf, 0.0))
        self.fine_f = g / (g.sum() * self.dx)
        self.cdf = np.concatenate([[0.0], np.cumsum(self.fine_f) * self.dx])
        self.cdf /= self.cdf[-1]

    def quantile(self, q: np.ndarray) -> np.ndarray:
        """Inverse CDF at probabilities ``q``."""
        edges = self.lo + self.dx * np.arange(len(self.cdf))
        return np.interp(q, self.cdf, edges)

    def hdr(self, level: float) -> list[tuple[float, float]]:
        """Intervals of the highest-density region of probability ``level``.

        The region is ``{f >= t}`` of the fine view, its ends where the linear interpolation
        of ``f`` crosses ``t``; ``t`` is found by bisection so that the region's mass (from the
        CDF at the ends) is ``level``.
        """
        lo, hi = 0.0, float(self.fine_f.max())
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if self._mass(self._region(mid)) >= level:
                lo = mid
            else:
                hi = mid
        return self._region(lo)

    def _cdf_at(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.lo + self.dx * np.arange(len(self.cdf)), self.cdf)

    def _mass(self, region: list[tuple[float, float]]) -> float:
        ends = np.array(region).reshape(-1, 2)
        return float((self._cdf_at(ends[:, 1]) - self._cdf_at(ends[:, 0])).sum())

    def _region(self, t: float) -> list[tuple[float, float]]:
        """The intervals where the fine density is at least ``t``."""
        x, f, dx = self.fine_x, self.fine_f, self.dx
        inside = f >= t
        diff = np.diff(inside.astype(np.int8))
        starts = np.flatnonzero(diff == 1) + 1
        stops = np.flatnonzero(diff == -1)
        if inside[0]:
            starts = np.r_[0, starts]
        if inside[-1]:
            stops = np.r_[stops, len(f) - 1]
        out = []
        for i, j in zip(starts, stops, strict=True):
            left = self.lo if i == 0 else x[i - 1] + (t - f[i - 1]) / (f[i] - f[i - 1]) * dx
            right = self.hi if j == len(f) - 1 else x[j] + (f[j] - t) / (f[j] - f[j + 1]) * dx
            out.append((float(left), float(right)))
        return out

    def modes(self) -> np.ndarray:
        """Local maxima above ``_MODE_FRACTION`` of the peak, highest first."""
        return _local_maxima(self.centres, self.log_f, self.width)


def _local_maxima(x: np.ndarray, log_f: np.ndarray, width: float) -> np.ndarray:
    """Positions of the local maxima of a sampled log density, highest first.

    Plateaus count once (at their middle); an isolated maximum is refined with the parabola
    through the log density at it and its two neighbours (exact for a Gaussian).
    """
    f = np.exp(log_f - np.max(log_f))
    starts = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    stops = np.r_[starts[1:], len(f)] - 1
    vals = f[starts]
    left = np.r_[-np.inf, vals[:-1]]
    right = np.r_[vals[1:], -np.inf]
    found = []
    for k in np.flatnonzero((vals > left) & (vals > right) & (vals >= _MODE_FRACTION)):
        i, j = starts[k], stops[k]
        pos = 0.5 * (x[i] + x[j])
        if i == j and 0 < i < len(f) - 1:
            a, b, c = log_f[i - 1], log_f[i], log_f[i + 1]
            den = a - 2.0 * b + c
            if den < 0:
                pos = x[i] + 0.5 * (a - c) / den * width
        found.append((vals[k], pos))
    found.sort(key=lambda t: -t[0])
    return np.array([p for _, p in found])


def _as_points(space: Space, theta: Any) -> np.ndarray:
    """Points ``(n, P)`` checked for shape and finiteness; values may lie outside the bounds."""
    try:
        return space.validate(theta)
    except OutOfSpaceError as exc:
        error = exc
    try:
        if isinstance(theta, Mapping):
            cols = [np.atleast_1d(np.asarray(theta[n], dtype=float)) for n in space.names]
            arr = np.stack(np.broadcast_arrays(*cols), axis=1)
        else:
            arr = np.asarray(theta, dtype=float)
            if arr.ndim == 1 and arr.shape[0] == len(space):
                arr = arr[None, :]
            elif arr.ndim == 0 and len(space) == 1:
                arr = arr.reshape(1, 1)
    except (TypeError, ValueError):
        raise error from None
    if arr.ndim != 2 or arr.shape[1] != len(space) or not np.isfinite(arr).all():
        raise error
    return arr


def _inside(space: Space, points: np.ndarray) -> np.ndarray:
    bounds = space.bounds
    return ((points >= bounds[:, 0]) & (points <= bounds[:, 1])).all(axis=1)


# -- the common part of both posteriors ------------------------------------------------------------
class _Posterior:
    """Observation bookkeeping, the update contract and the summaries of weighted points."""

    space: Space

    def __init__(self, space: Space, simulator: Any, extended: bool) -> None:
        if not isinstance(space, Space):
            raise ValidationError(
                f"space must be an activesci.spaces.Space (e.g. simulator.parameters), "
                f"got {type(space).__name__}"
            )
        if simulator is not None and list(simulator.parameters.names) != space.names:
            raise ValidationError(
                f"the space has parameters {space.names} but the simulator has "
                f"{list(simulator.parameters.names)}"
            )
        self.space = space
        self.simulator = simulator
        self.extended = bool(extended)
        self._records: list[tuple[Observation, Any, np.ndarray]] = []
        #: One summary dict per update: design, events, mean, std, entropy (and more).
        self.history: list[dict[str, Any]] = []

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def rate_term(self) -> bool:
        """Whether updates add the Poisson (extended-likelihood) term."""
        return (
            self.extended
            and self.simulator is not None
            and "expected_count" in _capabilities(self.simulator)
        )

    @property
    def observations(self) -> list[Observation]:
        """The observations absorbed so far, in order."""
        return [obs for obs, _, _ in self._records]

    @property
    def n_events(self) -> int:
        """Total number of events absorbed."""
        return sum(obs.n for obs, _, _ in self._records)

    def _check(self, observation: Any, estimator: Any) -> np.ndarray:
        """Validate an observation (and the estimator); return its design as ``(1, D)``."""
        if not isinstance(observation, Observation):
            raise ValidationError(
                f"expected an activesci.Observation, got {type(observation).__name__}"
            )
        _check_estimator(estimator)
        design = observation.design[None, :]
        if self.simulator is not None:
            try:
                design = self.simulator.designs.validate(observation.design)
            except ValidationError as exc:
                raise type(exc)(
                    f"the observation's design {observation.design.tolist()} is not in the "
                    f"simulator's design space {self.simulator.designs.names}: {exc}"
                ) from exc
        if observation.n == 0 and not self.rate_term:
            raise ValidationError(
                "the observation has 0 events and this posterior has no rate (extended) term "
                "(extended=False or the simulator has no expected_count), so it carries no "
                "information: nothing to update"
            )
        return design

    def _log_likelihood(
        self, observation: Observation, estimator: Any, theta: np.ndarray, design: np.ndarray
    ) -> np.ndarray:
        """Log likelihood of one observation at points ``(n, P)`` (up to a constant): ``(n,)``."""
        total = _summed_log_ratio(estimator, observation.x, theta, design)
        if self.rate_term:
            total += _rate_log_likelihood(self.simulator, observation, theta, design)
        return total

    def update(self, observation: Observation, estimator: Any) -> Self:
        """Absorb one observation through ``estimator``; return ``self``.

        Parameters
        ----------
        observation : Observation
            Events recorded at one design.
        estimator : LogRatioEstimator
            Anything with ``log_ratio(x, theta, design) -> (n_theta, n_x)``.

        Raises
        ------
        OutOfSpaceError
            The design is outside the simulator's design space.
        ValidationError
            An empty observation without a rate term; NaN from the estimator.
        ShapeError
            The estimator returned a wrong shape.
        """
        design = self._check(observation, estimator)
        extra = self._absorb(observation, estimator, design)
        self._records.append((observation, estimator, design))
        self.history.append(
            {
                "design": observation.design.tolist(),
                "n": observation.n,
                "n_events": self.n_events,
                "mean": self.mean().tolist(),
                "std": self.std().tolist(),
                "entropy": self.entropy(),
                **extra,
            }
        )
        return self

    def _absorb(
        self, observation: Observation, estimator: Any, design: np.ndarray
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _index(self, name_or_index: str | int) -> int:
        if isinstance(name_or_index, str):
            if name_or_index not in self.space.names:
                raise ValidationError(
                    f"unknown parameter {name_or_index!r}; this posterior has {self.space.names}"
                )
            return self.space.names.index(name_or_index)
        if isinstance(name_or_index, int | np.integer) and 0 <= name_or_index < len(self.space):
            return int(name_or_index)
        raise ValidationError(
            f"expected a parameter name from {self.space.names} or an index in "
            f"[0, {len(self.space) - 1}], got {name_or_index!r}"
        )

    # -- summaries ---------------------------------------------------------------------------
    def _weighted(self) -> tuple[np.ndarray, np.ndarray]:
        """Points ``(n, P)`` and probabilities ``(n,)`` that represent the posterior."""
        raise NotImplementedError

    def _marginal(self, j: int) -> _Marginal:
        raise NotImplementedError

    def mean(self) -> np.ndarray:
        """Posterior mean, shape ``(P,)``."""
        return _weighted_mean_cov(*self._weighted())[0]

    def cov(self) -> np.ndarray:
        """Posterior covariance, shape ``(P, P)``."""
        return _weighted_mean_cov(*self._weighted())[1]

    def std(self) -> np.ndarray:
        """Posterior standard deviation of each parameter, shape ``(P,)``."""
        return np.sqrt(np.clip(np.diag(self.cov()), 0.0, None))

    def interval(self, level: float = 0.68) -> np.ndarray:
        """Central (equal-tailed) credible interval of each marginal: shape ``(P, 2)``."""
        level = _check_level(level)
        q = np.array([0.5 - level / 2, 0.5 + level / 2])
        return np.stack([self._quantiles(j, q) for j in range(len(self.space))])

    def _quantiles(self, j: int, q: np.ndarray) -> np.ndarray:
        return self._marginal(j).quantile(q)

    def hdr(self, level: float = 0.68) -> list[list[tuple[float, float]]]:
        """Highest-density region of each 1-D marginal with probability ``level``.

        Returns
        -------
        list of list of (float, float)
            Per parameter, the disjoint ``(lo, hi)`` intervals of the region, in increasing
            order: a multimodal marginal can give several.
        """
        level = _check_level(level)
        return [self._marginal(j).hdr(level) for j in range(len(self.space))]

    def modes(self) -> list[np.ndarray]:
        """Local maxima of each 1-D marginal above 5% of its peak, highest first."""
        return [self._marginal(j).modes() for j in range(len(self.space))]

    def marginal(self, name_or_index: str | int) -> tuple[np.ndarray, np.ndarray]:
        """One parameter's marginal: points ``(m,)`` and the density there, normalised."""
        m = self._marginal(self._index(name_or_index))
        return m.centres.copy(), m.density.copy()

    def pair_marginal(
        self, first: str | int, second: str | int, bins: int = 30
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Joint marginal density of two parameters (names or indices, as for ``marginal``).

        Parameters
        ----------
        first, second : str or int
            The parameters on the x and the y axis; they must differ.
        bins : int
            Bins per axis of a particle histogram (``SamplePosterior``); a ``GridPosterior``
            ignores it and returns its own cells (exact on the grid).

        Returns
        -------
        x : numpy.ndarray
            Cell centres of ``first``, shape ``(bx,)``, equally spaced.
        y : numpy.ndarray
            Cell centres of ``second``, shape ``(by,)``, equally spaced.
        density : numpy.ndarray
            Shape ``(by, bx)`` (rows are y, as plotly draws them), normalised so that
            ``density.sum() * dx * dy == 1``.

        Examples
        --------
        >>> from activesci.inference import GridPosterior
        >>> from activesci.spaces import Real, Space
        >>> post = GridPosterior(Space([Real("a", 0, 1), Real("b", 0, 2)]), resolution=(4, 5))
        >>> x, y, density = post.pair_marginal("a", "b")
        >>> x.shape, y.shape, density.shape, float(density.sum() * 0.25 * 0.4)
        ((4,), (5,), (5, 4), 1.0)
        """
        i, j = self._index(first), self._index(second)
        if i == j:
            raise ValidationError(
                f"a pair marginal needs two different parameters, got {self.space.names[i]!r} twice"
            )
        if not (isinstance(bins, int | np.integer) and not isinstance(bins, bool) and bins >= 2):
            raise ValidationError(f"bins must be an integer >= 2, got {bins!r}")
        return self._pair(i, j, int(bins))

    def pair_marginals(self, bins: int = 30) -> dict[str, dict[str, Any]]:
        """Every pair marginal, JSON-able, for corner plots and run summaries.

        Returns
        -------
        dict
            ``{"<name_i>|<name_j>": {"x": [...], "y": [...], "density": [[...], ...]}}`` for all
            parameter indices ``i < j`` in that order (``x`` is parameter i, ``density`` is
            ``(len(y), len(x))``; see :meth:`pair_marginal`); empty for one parameter.
        """
        names = self.space.names
        out = {}
        for i, j in itertools.combinations(range(len(names)), 2):
            x, y, density = self.pair_marginal(i, j, bins)
            out[f"{names[i]}|{names[j]}"] = {
                "x": x.tolist(),
                "y": y.tolist(),
                "density": density.tolist(),
            }
        return out

    def _pair(self, i: int, j: int, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def entropy(self) -> float:
        """Differential entropy of the posterior in nats."""
        raise NotImplementedError

    def copy(self) -> Self:
        """An independent copy (estimators and the simulator are shared, not copied)."""
        new = _copy.copy(self)
        new._records = list(self._records)
        new.history = _copy.deepcopy(self.history)
        return new

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.space.names}, observations={len(self._records)}, "
            f"n_events={self.n_events}, rate_term={self.rate_term})"
        )
