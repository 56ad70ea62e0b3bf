"""Posteriors over the theory parameters, updated one observation at a time.

A posterior consumes observations through an *estimator*: any object with
``log_ratio(x, theta, design) -> (n_theta, n_x)``, the log of ``p(x | theta, design)`` over a
reference density that does not depend on ``theta`` (so only differences in ``theta`` matter).
Learned estimators (:mod:`activesci.inference.ratio`) and :class:`ExactLikelihood` (the
simulator's exact likelihood, for validation) both qualify.

Each update adds ``sum_i log r(x_i | theta, design)`` and, for simulators with an
``expected_count`` (the *extended* likelihood), the Poisson term ``n log nu(theta) - nu(theta)``.

- :class:`GridPosterior` keeps the log posterior on a grid of cell centres (1 to 3 parameters).
- :class:`SamplePosterior` keeps weighted particles (any number of parameters): sequential Monte
  Carlo with adaptive tempering, systematic resampling and random-walk Metropolis moves.

Both offer the same summaries: ``mean``, ``std``, ``cov``, ``interval`` (central, equal-tailed),
``hdr`` (highest-density intervals of each marginal, possibly several), ``modes``, ``entropy``,
``sample``, ``log_density``, ``marginal`` and, for corner plots, ``pair_marginal`` and
``pair_marginals`` (the joint density of two parameters).
"""

from __future__ import annotations

import copy as _copy
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
from scipy import interpolate, ndimage, special, stats
from scipy.spatial import cKDTree

from activesci.errors import (
    MissingCapabilityError,
    OutOfSpaceError,
    ShapeError,
    ValidationError,
)
from activesci.spaces import Real, Space
from activesci.typing import Observation, capabilities_of

__all__ = [
    "ExactLikelihood",
    "GridPosterior",
    "LogRatioEstimator",
    "SamplePosterior",
    "observation_log_likelihood",
]

#: Default grid resolution per number of parameters.
DEFAULT_RESOLUTION = {1: 201, 2: 61, 3: 31}
_MAX_GRID_DIM = 3
_MAX_GRID_CELLS = 20_000_000
#: Elements of one ``log_ratio`` block (times the number of features): about 16 MB of float64.
_BLOCK_ELEMENTS = 1 << 21
#: Parameter points per ``log_ratio`` call when the events must be split as well.
_THETA_BLOCK = 2048
#: Grid cells whose posterior density is below ``exp(-NEGLIGIBLE)`` times the mode's hold, all
#: together, less than ``cells * 1e-13`` of the mass. An update evaluates the likelihood only
#: on the other cells and drops these (probability 0): data that raise a cell by 30 nats
#: against the mode contradict the data so far beyond 7 standard deviations. Late rounds of
#: several parameters, whose posterior fills a few percent of the grid, get cheaper by that
#: factor. The hypothetical updates of the EIG use the same support.
NEGLIGIBLE = 30.0
#: Sub-cells per grid cell of the fine 1-D view used for quantiles and HDRs.
_SUBDIVIDE = 16
#: Lowest log density kept (relative to the peak) before interpolating in log space.
_LOG_FLOOR = -700.0
#: Modes lower than this fraction of the marginal's peak are ignored.
_MODE_FRACTION = 0.05
#: Points of the KDE view of a particle marginal.
_KDE_POINTS = 1024
_KNN_K = 5
#: Tempering stages per update before the rest of the likelihood is taken in one step.
_MAX_STAGES = 200
#: A pair histogram spans the weighted quantiles ``(q, 1 - q)`` of each axis ...
_PAIR_TAIL = 1e-4
#: ... padded by this fraction of their distance on each side.
_PAIR_PAD = 0.1
#: Gaussian smoothing of a pair histogram, in bins (continuous axes only).
_PAIR_SMOOTHING = 0.5


@runtime_checkable
class LogRatioEstimator(Protocol):
    """What a posterior needs of an estimator.

    ``log_ratio(x, theta, design)`` takes events ``(n_x, X)``, parameter points
    ``(n_theta, P)`` and one design ``(1, D)`` and returns ``log p(x | theta, design) -
    log p_ref(x | design)`` of shape ``(n_theta, n_x)`` (float32 or float64).
    """

    def log_ratio(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Log ratio for every ``(theta, x)`` pair, shape ``(n_theta, n_x)``."""
        ...


class ExactLikelihood:
    """The simulator's exact likelihood presented as an estimator: for validation only.

    ``log_ratio(x, theta, design)`` is ``simulator.log_likelihood(x, theta, design)`` (a
    reference density of 1). It is the ground truth learned estimators and posteriors are
    measured against and the engine of benchmarks; the active learner must never need it, since
    real simulators have no tractable likelihood.

    Parameters
    ----------
    simulator : Simulator
        Must implement ``log_likelihood``.

    Raises
    ------
    MissingCapabilityError
        The simulator has no ``log_likelihood``.

    Examples
    --------
    >>> import numpy as np
    >>> from activesci import tasks
    >>> exact = ExactLikelihood(tasks.gaussian().simulator)
    >>> exact.log_ratio(np.zeros((4, 1)), np.array([[0.0], [1.0]]), [np.pi]).shape
    (2, 4)
    """

    def __init__(self, simulator: Any) -> None:
        if "log_likelihood" not in _capabilities(simulator):
            raise MissingCapabilityError(
                f"ExactLikelihood needs a simulator with log_likelihood(x, theta, design); "
                f"{type(simulator).__name__} has none (capabilities: "
                f"{sorted(_capabilities(simulator))})"
            )
        self.simulator = simulator

    def __repr__(self) -> str:
        return f"ExactLikelihood({self.simulator!r})"

    def log_ratio(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Exact ``log p(x | theta, design)``, shape ``(n_theta, n_x)`` (always 2-D)."""
        th = self.simulator.parameters.validate(theta)
        return np.asarray(self.simulator.log_likelihood(x, th, design), dtype=float)


# -- shared plumbing: capabilities, observation checks, the likelihood of one observation ---------
def _capabilities(simulator: Any) -> frozenset[str]:
    caps = getattr(simulator, "capabilities", None)
    return frozenset(caps) if caps is not None else capabilities_of(simulator)


def _estimator_name(estimator: Any) -> str:
    return type(estimator).__name__


def _summed_log_ratio(
    estimator: Any, x: np.ndarray, theta: np.ndarray, design: np.ndarray
) -> np.ndarray:
    """``sum_i log_ratio(x_i, theta, design)``, shape ``(n_theta,)``, float64.

    The estimator sees blocks of events (and, past ``_THETA_BLOCK`` points, of parameter
    points) whose output stays near 16 MB whatever the data size; blocking both balances an
    estimator's per-point and per-event set-up costs. Sums are accumulated in float64.
    """
    n_theta, (n_x, n_features) = len(theta), x.shape
    rows = min(n_theta, _THETA_BLOCK) if n_theta * n_x > _BLOCK_ELEMENTS else n_theta
    step = max(1, _BLOCK_ELEMENTS // max(1, rows * n_features))
    total = np.zeros(n_theta)
    for start in range(0, n_theta, max(1, rows)):
        points = theta[start : start + rows]
        for lo in range(0, n_x, step):
            block = x[lo : lo + step]
            out = np.asarray(estimator.log_ratio(block, points, design), dtype=np.float64)
            total[start : start + rows] += _checked_sum(estimator, out, points, len(block), lo)
    return total


def _checked_sum(
    estimator: Any, out: np.ndarray, points: np.ndarray, n_events: int, first_event: int
) -> np.ndarray:
    """Row sums of one ``log_ratio`` block after checking its shape and values.

    A NaN or ``+inf`` anywhere in a row makes the row's sum NaN or ``+inf``, so only the sums
    need scanning; the block itself is searched only to name the culprit.
    """
    name = _estimator_name(estimator)
    if out.shape != (len(points), n_events):
        raise ShapeError(
            f"{name}.log_ratio returned shape {out.shape}; expected (n_theta, n_x) = "
            f"({len(points)}, {n_events}) for {len(points)} parameter point(s) and {n_events} "
            f"event(s)"
        )
    with np.errstate(invalid="ignore", over="ignore"):
        sums = out.sum(axis=1)
    if np.isnan(sums).any() or np.isposinf(sums).any():
        bad = np.argwhere(np.isnan(out) | np.isposinf(out))
        if len(bad) == 0:
            raise ValidationError(f"{name}.log_ratio returned values whose sum overflows")
        i, j = bad[0]
        raise ValidationError(
            f"{name}.log_ratio returned NaN or +inf (output shape {out.shape}, first at "
            f"theta={points[i].tolist()}, event {first_event + j})"
        )
    return sums


def _rate_log_likelihood(
    simulator: Any, observation: Observation, theta: np.ndarray, design: np.ndarray
) -> np.ndarray:
    """Poisson term ``n log nu - nu`` of the extended likelihood, shape ``(n_theta,)``.

    ``nu = expected_count(theta, design) * luminosity_obs / luminosity_sim`` (the factor is 1
    unless both luminosities are known).
    """
    designs = np.broadcast_to(design, (len(theta), design.shape[1]))
    nu = np.asarray(simulator.expected_count(theta, designs), dtype=np.float64).reshape(-1)
    if nu.shape != (len(theta),) or not (np.isfinite(nu) & (nu >= 0)).all():
        raise ValidationError(
            f"{type(simulator).__name__}.expected_count must return {len(theta)} finite "
            f"non-negative numbers, got shape {nu.shape}"
        )
    sim_lumi = getattr(simulator, "luminosity", None)
    if observation.luminosity is not None and sim_lumi is not None:
        nu = nu * (observation.luminosity / sim_lumi)
    with np.errstate(divide="ignore"):
        return special.xlogy(observation.n, nu) - nu


def observation_log_likelihood(
    observation: Observation,
    estimator: Any,
    theta: Any,
    *,
    simulator: Any = None,
    extended: bool = True,
) -> np.ndarray:
    """``log p(observation | theta)`` up to a theta-independent constant, at many points.

    The sum over the events of ``estimator.log_ratio`` plus, when ``extended`` and the
    simulator has ``expected_count``, the Poisson term ``n log nu(theta) - nu(theta)``: the
    same likelihood a posterior update uses.

    Parameters
    ----------
    observation : Observation
        One experiment's events, design and luminosity.
    estimator : LogRatioEstimator
        ``ExactLikelihood(simulator)`` or a trained ratio estimator.
    theta : array_like
        Parameter points ``(n, P)``.
    simulator : Simulator, optional
        Supplies ``expected_count`` for the rate term.
    extended : bool
        Add the rate term.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``.
    """
    _check_estimator(estimator)
    points = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    design = np.atleast_2d(observation.design)
    total = _summed_log_ratio(estimator, observation.x, points, design)
    if extended and simulator is not None and "expected_count" in _capabilities(simulator):
        total += _rate_log_likelihood(simulator, observation, points, design)
    return total


def _check_estimator(estimator: Any) -> None:
    if not callable(getattr(estimator, "log_ratio", None)):
        raise ValidationError(
            f"an estimator needs a log_ratio(x, theta, design) method; got "
            f"{_estimator_name(estimator)}"
        )


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


class GridPosterior(_Posterior):
    """Posterior of up to three parameters on a grid of cell centres.

    The log posterior (unnormalised, float64) is kept at the centres of equal cells covering
    each parameter's bounds; sums over cells are midpoint-rule integrals, which converge
    very fast for smooth posteriors once a cell is a fraction of the posterior width.

    Parameters
    ----------
    space : Space
        The parameters and their prior (usually ``simulator.parameters``; a narrower space with
        the same names zooms in). Real dimensions only.
    resolution : int or sequence of int, optional
        Cells per dimension; default 201 (1-D), 61 (2-D) or 31 (3-D).
    simulator : Simulator, optional
        Checks the designs of observations and supplies ``expected_count`` for the rate term.
    extended : bool
        Add the Poisson term of the event count when the simulator has ``expected_count``.

    Examples
    --------
    >>> import numpy as np
    >>> from activesci import tasks
    >>> task = tasks.gaussian()
    >>> sim = task.simulator
    >>> post = GridPosterior(sim.parameters, simulator=sim)
    >>> obs = task.experiment(seed=0).run({"phase": np.pi})
    >>> post.update(obs, ExactLikelihood(sim)).n_events
    10
    >>> mean, std = sim.posterior(post.observations)  # analytic
    >>> bool(abs(post.mean()[0] - mean[0]) < 1e-3 * std[0])
    True
    >>> post.interval(0.68).shape, len(post.hdr(0.68)[0])
    ((1, 2), 1)
    """

    def __init__(
        self,
        space: Space,
        resolution: int | Sequence[int] | None = None,
        *,
        simulator: Any = None,
        extended: bool = True,
    ) -> None:
        super().__init__(space, simulator, extended)
        dim = len(space)
        if dim > _MAX_GRID_DIM:
            raise ValidationError(
                f"GridPosterior handles at most {_MAX_GRID_DIM} parameters, got {dim} "
                f"({space.names}); use SamplePosterior for more"
            )
        not_real = [d.name for d in space if not isinstance(d, Real)]
        if not_real:
            raise ValidationError(
                f"GridPosterior needs Real (continuous) parameters; {not_real} are not: use "
                f"SamplePosterior"
            )
        self.resolution = self._resolution(resolution, dim)
        bounds = space.bounds
        self.axes = tuple(
            lo + (hi - lo) * (np.arange(n) + 0.5) / n
            for (lo, hi), n in zip(bounds, self.resolution, strict=True)
        )
        self.widths = (bounds[:, 1] - bounds[:, 0]) / np.array(self.resolution)
        self.cell_volume = float(np.prod(self.widths))
        mesh = np.meshgrid(*self.axes, indexing="ij")
        grid = np.stack([m.ravel() for m in mesh], axis=1)
        grid.flags.writeable = False
        self._grid = grid
        log_prior = np.asarray(space.log_prior(grid), dtype=np.float64)
        if not np.isfinite(log_prior).any():
            raise ValidationError(f"the prior of {space.names} vanishes on the whole grid")
        self._log_post = log_prior - np.max(log_prior)
        self._marginals: dict[int, _Marginal] = {}

    @staticmethod
    def _resolution(resolution: int | Sequence[int] | None, dim: int) -> tuple[int, ...]:
        if resolution is None:
            return (DEFAULT_RESOLUTION[dim],) * dim
        values = [resolution] * dim if isinstance(resolution, int | np.integer) else resolution
        try:
            values = list(values)
        except TypeError:
            values = []
        if len(values) != dim or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 2 for v in values
        ):
            raise ValidationError(
                f"resolution must be an integer >= 2 or {dim} such integers (one per "
                f"parameter), got {resolution!r}"
            )
        if math.prod(values) > _MAX_GRID_CELLS:
            raise ValidationError(
                f"a grid of {values} has {math.prod(values)} cells, more than "
                f"{_MAX_GRID_CELLS}; lower the resolution or use SamplePosterior"
            )
        return tuple(int(v) for v in values)

    # -- state ---------------------------------------------------------------------------------
    @property
    def grid(self) -> np.ndarray:
        """Cell centres, shape ``(n_cells, P)`` (C order over ``axes``; read-only)."""
        return self._grid

    @property
    def shape(self) -> tuple[int, ...]:
        """Cells per dimension."""
        return self.resolution

    @property
    def log_posterior(self) -> np.ndarray:
        """Unnormalised log posterior at the cell centres, shape ``(n_cells,)`` (peak 0)."""
        return self._log_post.copy()

    @property
    def probabilities(self) -> np.ndarray:
        """Posterior probability of each cell, shape ``(n_cells,)``, summing to 1."""
        return _normalised(self._log_post)

    @property
    def density(self) -> np.ndarray:
        """Posterior density at the cell centres, ``(n_cells,)``: ``sum(density) * volume = 1``."""
        return self.probabilities / self.cell_volume

    def _absorb(
        self, observation: Observation, estimator: Any, design: np.ndarray
    ) -> dict[str, Any]:
        alive = self._log_post >= -NEGLIGIBLE  # the log posterior peaks at 0
        new = np.full(len(self._log_post), -np.inf)
        new[alive] = self._log_post[alive] + self._log_likelihood(
            observation, estimator, self._grid[alive], design
        )
        peak = np.max(new)
        if not np.isfinite(peak):
            raise ValidationError(
                f"the posterior vanishes on the whole grid after this observation: "
                f"{_estimator_name(estimator)} gives -inf wherever the prior is positive"
            )
        self._log_post = new - peak
        self._marginals = {}
        return {}

    def copy(self) -> Self:
        """An independent copy (estimators and the simulator are shared, not copied)."""
        new = super().copy()
        new._log_post = self._log_post.copy()
        new._marginals = {}
        return new

    # -- summaries -----------------------------------------------------------------------------
    def _weighted(self) -> tuple[np.ndarray, np.ndarray]:
        return self._grid, self.probabilities

    def _marginal(self, j: int) -> _Marginal:
        if j not in self._marginals:
            lp = self._log_post.reshape(self.resolution)
            others = tuple(k for k in range(len(self.resolution)) if k != j)
            log_mass = special.logsumexp(lp, axis=others) if others else lp
            lo, hi = self.space.bounds[j]
            self._marginals[j] = _Marginal(self.axes[j], log_mass, float(lo), float(hi))
        return self._marginals[j]

    def _pair(self, i: int, j: int, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The grid's probabilities summed over the other axes: exact on the grid."""
        lp = self._log_post.reshape(self.resolution)
        others = tuple(k for k in range(lp.ndim) if k not in (i, j))
        log_mass = special.logsumexp(lp, axis=others) if others else lp
        if i < j:  # the kept axes are in index order; rows must be the y axis (j)
            log_mass = log_mass.T
        density = _normalised(log_mass) / (self.widths[i] * self.widths[j])
        return self.axes[i].copy(), self.axes[j].copy(), density

    def entropy(self) -> float:
        """Differential entropy in nats: ``-sum p log p + log(cell volume)``."""
        return float(special.entr(self.probabilities).sum() + math.log(self.cell_volume))

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Draw ``n`` points ``(n, P)``: a cell by its probability, uniformly inside it."""
        rng = np.random.default_rng(rng)
        idx = rng.choice(len(self._grid), size=int(n), p=self.probabilities)
        return self._grid[idx] + (rng.random((int(n), len(self.space))) - 0.5) * self.widths

    def cell_of(self, theta: Any) -> np.ndarray:
        """The flat index ``(n,)`` of the cell holding each point of ``theta`` ``(n, P)``.

        Points outside the bounds get the nearest edge cell.
        """
        points = _as_points(self.space, theta)
        lows = self.space.bounds[:, 0]
        index = np.floor((points - lows) / self.widths).astype(np.int64)
        index = np.clip(index, 0, np.array(self.resolution) - 1)
        return np.ravel_multi_index(tuple(index.T), self.resolution)

    def log_density(self, theta: Any) -> np.ndarray:
        """Normalised log density at points ``(n, P)``: shape ``(n,)``.

        Multilinear interpolation of the density between cell centres (constant in the outer
        half cells), which integrates to exactly 1 over the bounds; ``-inf`` outside them.
        """
        points = _as_points(self.space, theta)
        inside = _inside(self.space, points)
        out = np.full(len(points), -np.inf)
        if inside.any():
            lows = np.array([a[0] for a in self.axes])
            highs = np.array([a[-1] for a in self.axes])
            interp = interpolate.RegularGridInterpolator(
                self.axes, self.density.reshape(self.resolution), method="linear"
            )
            values = interp(np.clip(points[inside], lows, highs))
            with np.errstate(divide="ignore"):
                out[inside] = np.log(np.maximum(values, 0.0))
        return out


class SamplePosterior(_Posterior):
    """Posterior represented by weighted particles (sequential Monte Carlo), any dimension.

    Particles start as draws from the prior. Each update multiplies the weights by the
    observation's likelihood, in tempered steps (``likelihood ** delta``) chosen so that the
    effective sample size (ESS) never falls below half the particles; whenever it reaches that
    floor the particles are resampled (systematically) and moved by ``mcmc_steps`` random-walk
    Metropolis steps (Gaussian proposal with ``2.38^2 / P`` times the particle covariance) that
    target the prior times the likelihood of every stored observation, re-evaluated with the
    estimator that was used for it. Integer and categorical parameters move by rounded steps.

    Summaries come from the weighted particles: ``interval`` from weighted quantiles, ``hdr``
    and ``modes`` from a weighted Gaussian KDE of each marginal (reflected at the bounds),
    ``entropy`` is a weighted Kozachenko-Leonenko k-nearest-neighbour *estimate*, and
    ``log_density`` a weighted Gaussian KDE (Scott's rule on the ESS; not renormalised for
    the truncation at the bounds), both smoothing estimates rather than exact values.

    Cost: every Metropolis step re-evaluates all stored observations at all particles, so an
    update costs about ``stages x mcmc_steps x n_particles x (events so far)`` log-ratio
    evaluations; ``stages`` grows with how much the observation narrows the posterior.

    Parameters
    ----------
    space : Space
        The parameters and their prior.
    n_particles : int
        Number of particles.
    simulator : Simulator, optional
        Checks designs and supplies ``expected_count`` for the rate term.
    extended : bool
        Add the Poisson term of the event count when the simulator has ``expected_count``.
    seed : int
        Seed of the particles' random stream: the same seed and data give the same posterior.
    mcmc_steps : int
        Metropolis steps per particle after each resampling.

    Examples
    --------
    >>> import numpy as np
    >>> from activesci import tasks
    >>> task = tasks.gaussian(events_per_experiment=50)
    >>> sim = task.simulator
    >>> post = SamplePosterior(sim.parameters, n_particles=1000, simulator=sim, seed=1)
    >>> obs = task.experiment(seed=0).run({"phase": np.pi})
    >>> post = post.update(obs, ExactLikelihood(sim))
    >>> mean, std = sim.posterior(post.observations)  # analytic
    >>> bool(abs(post.mean()[0] - mean[0]) < 0.2 * std[0]), post.history[-1]["resampled"] > 0
    (True, True)
    """

    def __init__(
        self,
        space: Space,
        n_particles: int = 4000,
        *,
        simulator: Any = None,
        extended: bool = True,
        seed: int = 0,
        mcmc_steps: int = 10,
    ) -> None:
        super().__init__(space, simulator, extended)
        if not (isinstance(n_particles, int | np.integer) and n_particles >= 10):
            raise ValidationError(f"n_particles must be an integer >= 10, got {n_particles!r}")
        if not (isinstance(mcmc_steps, int | np.integer) and mcmc_steps >= 0):
            raise ValidationError(f"mcmc_steps must be a non-negative integer, got {mcmc_steps!r}")
        self.n_particles = int(n_particles)
        self.mcmc_steps = int(mcmc_steps)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._particles = space.sample(self.n_particles, self._rng)
        self._log_w = np.zeros(self.n_particles)
        self._log_like = np.zeros(self.n_particles)  # all stored observations, per particle
        self._discrete = np.array([not isinstance(d, Real) for d in space])
        self._marginals: dict[int, _Marginal] = {}

    # -- state ---------------------------------------------------------------------------------
    @property
    def particles(self) -> np.ndarray:
        """Particle positions, shape ``(n_particles, P)``."""
        return self._particles.copy()

    @property
    def weights(self) -> np.ndarray:
        """Normalised particle weights, shape ``(n_particles,)``."""
        return _normalised(self._log_w)

    @property
    def ess(self) -> float:
        """Effective sample size ``1 / sum(w^2)`` of the weights."""
        return _ess(self._log_w)

    def copy(self) -> Self:
        """An independent copy (estimators and the simulator are shared, not copied)."""
        new = super().copy()
        new._rng = _copy.deepcopy(self._rng)
        new._particles = self._particles.copy()
        new._log_w = self._log_w.copy()
        new._log_like = self._log_like.copy()
        new._marginals = {}
        return new

    # -- SMC -----------------------------------------------------------------------------------
    def _absorb(
        self, observation: Observation, estimator: Any, design: np.ndarray
    ) -> dict[str, Any]:
        ll = self._log_likelihood(observation, estimator, self._particles, design)
        if not np.isfinite(ll).any():
            raise ValidationError(
                f"every particle has zero likelihood for this observation according to "
                f"{_estimator_name(estimator)}"
            )
        saved = (self._particles, self._log_w, self._log_like, _copy.deepcopy(self._rng))
        try:
            return self._temper(observation, estimator, design, ll)
        except BaseException:  # an estimator failing inside the moves: leave the state as it was
            self._particles, self._log_w, self._log_like, self._rng = saved
            raise

    def _temper(
        self, observation: Observation, estimator: Any, design: np.ndarray, ll: np.ndarray
    ) -> dict[str, Any]:
        """Bring in ``ll`` in tempered steps, resampling and moving at the ESS floor."""
        floor = 0.5 * self.n_particles
        beta, stages, accepted = 0.0, 0, []
        while beta < 1.0:
            if stages < _MAX_STAGES:
                delta = _next_temperature(self._log_w, ll, 1.0 - beta, floor)
            else:
                delta = 1.0 - beta
            self._log_w = self._log_w + _scaled(ll, delta)
            beta = 1.0 if delta >= 1.0 - beta else beta + delta
            if _ess(self._log_w) < floor * (1.0 + 1e-9) or beta < 1.0:
                idx = _systematic_resample(_normalised(self._log_w), self._rng)
                self._particles, ll = self._particles[idx], ll[idx].copy()
                self._log_like = self._log_like[idx]
                self._log_w = np.zeros(self.n_particles)
                stages += 1
                ll, rate = self._move(observation, estimator, design, ll, beta)
                accepted.append(rate)
        self._log_like = self._log_like + ll
        self._marginals = {}
        return {
            "ess": self.ess,
            "resampled": stages,
            "acceptance": float(np.mean(accepted)) if accepted else None,
        }

    def _stored_log_likelihood(self, theta: np.ndarray) -> np.ndarray:
        total = np.zeros(len(theta))
        for obs, est, design in self._records:
            total += self._log_likelihood(obs, est, theta, design)
        return total

    def _move(
        self,
        observation: Observation,
        estimator: Any,
        design: np.ndarray,
        ll: np.ndarray,
        beta: float,
    ) -> tuple[np.ndarray, float]:
        """Random-walk Metropolis on prior x stored likelihoods x current likelihood^beta."""
        n, dim = self._particles.shape
        log_prior = self.space.log_prior(self._particles)
        accepted = 0
        for _ in range(self.mcmc_steps):
            _, cov = _weighted_mean_cov(self._particles, np.full(n, 1.0 / n))
            chol = _proposal_factor(cov, self.space)
            proposal = self._particles + self._rng.standard_normal((n, dim)) @ chol.T
            if self._discrete.any():
                proposal[:, self._discrete] = np.round(proposal[:, self._discrete])
            lp_new = np.asarray(self.space.log_prior(proposal), dtype=float)
            ok = np.isfinite(lp_new)
            old_new = np.full(n, -np.inf)
            ll_new = np.full(n, -np.inf)
            if ok.any():
                old_new[ok] = self._stored_log_likelihood(proposal[ok])
                ll_new[ok] = self._log_likelihood(observation, estimator, proposal[ok], design)
            target_new = lp_new + old_new + _scaled(ll_new, beta)
            target_old = log_prior + self._log_like + _scaled(ll, beta)
            with np.errstate(invalid="ignore"):
                log_alpha = np.where(np.isfinite(target_new), target_new - target_old, -np.inf)
            accept = np.log(self._rng.random(n)) < log_alpha
            self._particles[accept] = proposal[accept]
            log_prior[accept] = lp_new[accept]
            self._log_like[accept] = old_new[accept]
            ll[accept] = ll_new[accept]
            accepted += int(accept.sum())
        return ll, accepted / max(1, n * self.mcmc_steps)

    # -- summaries -----------------------------------------------------------------------------
    def _weighted(self) -> tuple[np.ndarray, np.ndarray]:
        return self._particles, self.weights

    def _quantiles(self, j: int, q: np.ndarray) -> np.ndarray:
        """Weighted quantiles, interpolated between the particles' mid-cumulative weights."""
        values, w = self._particles[:, j], self.weights
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(w[order]) - 0.5 * w[order]
        return np.interp(q, cum, values[order])

    def _marginal(self, j: int) -> _Marginal:
        if j not in self._marginals:
            self._marginals[j] = _kde_marginal(
                self._particles[:, j], self.weights, *self.space.bounds[j]
            )
        return self._marginals[j]

    def _pair(self, i: int, j: int, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A weighted 2-D histogram of the particles, lightly smoothed: an *estimate*.

        Each axis spans the weighted quantiles ``1e-4`` to ``1 - 1e-4`` of its particles, padded
        by 10% of that range on each side and clipped to the bounds, in ``bins`` equal bins: the
        posterior may be far narrower than the prior box, and a few light particles far out
        (weights between resamplings) must not stretch the window; what lies outside it (about
        ``1e-4`` of the weight per side, less for light tails) is left out. An integer or
        categorical axis has one bin per value instead. The histogram is smoothed by a
        Gaussian of half a bin along continuous axes (reflected at the edges), which widens a
        Gaussian by about 1% of its standard deviation at 30 bins; then normalised to 1.
        """
        weights = self.weights
        edges = [self._pair_edges(k, bins) for k in (j, i)]
        hist, _, _ = np.histogram2d(
            self._particles[:, j], self._particles[:, i], bins=edges, weights=weights
        )
        sigma = [0.0 if self._discrete[k] else _PAIR_SMOOTHING for k in (j, i)]
        hist = ndimage.gaussian_filter(hist, sigma, mode="reflect")
        y_edges, x_edges = edges
        area = (x_edges[1] - x_edges[0]) * (y_edges[1] - y_edges[0])
        centres = [0.5 * (e[1:] + e[:-1]) for e in (x_edges, y_edges)]
        return centres[0], centres[1], hist / (hist.sum() * area)

    def _pair_edges(self, k: int, bins: int) -> np.ndarray:
        """Bin edges of axis ``k`` of a pair histogram (see ``_pair``)."""
        lo, hi = self.space.bounds[k]
        a, b = (float(v) for v in self._quantiles(k, np.array([_PAIR_TAIL, 1.0 - _PAIR_TAIL])))
        if self._discrete[k]:
            return np.arange(round(a) - 0.5, round(b) + 1.0, 1.0)
        pad = _PAIR_PAD * (b - a) or 1e-3 * (hi - lo)
        return np.linspace(max(lo, a - pad), min(hi, b + pad), bins + 1)

    def entropy(self) -> float:
        """Differential entropy in nats: a weighted Kozachenko-Leonenko kNN *estimate*.

        The particles are whitened with their covariance (the entropy shifts by the log
        determinant), exact duplicates (from resampling) are merged with their weights summed,
        and ``-log p`` at each particle is estimated from the weight of its ``k = 5`` nearest
        neighbours over the volume of the ball that holds them (with the ``psi(k) - log k``
        bias correction of the unweighted estimator, which this reduces to for equal weights).
        """
        return _knn_entropy(self._particles, self.weights)

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Draw ``n`` particles ``(n, P)`` by their weights (with replacement)."""
        rng = np.random.default_rng(rng)
        return self._particles[rng.choice(self.n_particles, size=int(n), p=self.weights)]

    def log_density(self, theta: Any) -> np.ndarray:
        """Log density at points ``(n, P)`` from a weighted Gaussian KDE: shape ``(n,)``.

        Scott's bandwidth on the effective sample size; an *estimate* (smoothed by the kernel
        and not corrected for the mass the kernels put outside the bounds); ``-inf`` outside.
        """
        points = _as_points(self.space, theta)
        inside = _inside(self.space, points)
        out = np.full(len(points), -np.inf)
        if inside.any():
            try:
                kde = stats.gaussian_kde(self._particles.T, weights=self.weights)
            except np.linalg.LinAlgError as exc:
                raise ValidationError(
                    "the particles have collapsed onto a lower-dimensional set: no KDE"
                ) from exc
            out[inside] = kde.logpdf(points[inside].T)
        return out


# -- SMC helpers -----------------------------------------------------------------------------------
def _ess(log_w: np.ndarray) -> float:
    w = _normalised(log_w)
    return float(1.0 / np.sum(w * w))


def _scaled(ll: np.ndarray, factor: float) -> np.ndarray:
    """``factor * ll`` with ``0 * -inf = 0`` and ``factor * -inf = -inf``."""
    finite = np.isfinite(ll)
    return np.where(finite, factor * np.where(finite, ll, 0.0), 0.0 if factor == 0 else -np.inf)


def _next_temperature(log_w: np.ndarray, ll: np.ndarray, remaining: float, floor: float) -> float:
    """The largest step ``delta <= remaining`` with ``ESS(log_w + delta ll) >= floor``.

    If even an infinitesimal step falls below ``floor`` (particles with zero likelihood), the
    target becomes half of that limit so that every step makes progress.
    """
    if _ess(log_w + _scaled(ll, remaining)) >= floor:
        return remaining
    limit = _ess(log_w + np.where(np.isfinite(ll), 0.0, -np.inf))
    target = floor if limit > floor else 0.5 * limit
    lo, hi = 0.0, remaining
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _ess(log_w + _scaled(ll, mid)) >= target:
            lo = mid
        else:
            hi = mid
    return max(lo, remaining * 1e-12)


def _systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a systematic resample (one uniform, ``n`` evenly spaced pointers)."""
    n = len(weights)
    pointers = (rng.random() + np.arange(n)) / n
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    return np.minimum(np.searchsorted(cum, pointers, side="right"), n - 1)


def _proposal_factor(cov: np.ndarray, space: Space) -> np.ndarray:
    """Cholesky factor of ``2.38^2 / P * cov``, regularised so it always exists."""
    dim = len(cov)
    width = space.bounds[:, 1] - space.bounds[:, 0]
    scaled = (2.38**2 / dim) * cov
    jitter = np.diag((1e-9 * width) ** 2)
    for _ in range(8):
        try:
            return np.linalg.cholesky(scaled + jitter)
        except np.linalg.LinAlgError:
            jitter = jitter * 100.0
    return np.diag(np.sqrt(np.clip(np.diag(scaled), 0.0, None)) + 1e-6 * width)


def _kde_marginal(values: np.ndarray, weights: np.ndarray, lo: float, hi: float) -> _Marginal:
    """A weighted Gaussian KDE of one parameter, as a :class:`_Marginal`.

    Robust Silverman bandwidth on the ESS, reflected at the bounds, evaluated at
    ``_KDE_POINTS`` cell centres over where the particles lie.
    """
    mean = float(weights @ values)
    sd = float(np.sqrt(max(weights @ (values - mean) ** 2, 0.0)))
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    q25, q75 = np.interp([0.25, 0.75], cum, values[order])
    spread = min(sd, (q75 - q25) / 1.34) if q75 > q25 else sd
    n_eff = 1.0 / float(np.sum(weights * weights))
    bw = 0.9 * spread * n_eff ** (-0.2)
    if not bw > 0:
        bw = 1e-3 * (hi - lo)
    a, b = max(lo, float(values.min()) - 4 * bw), min(hi, float(values.max()) + 4 * bw)
    if not b > a:
        a, b = max(lo, a - bw), min(hi, b + bw)
    centres = a + (b - a) * (np.arange(_KDE_POINTS) + 0.5) / _KDE_POINTS
    sources = [values]
    weight_list = [weights]
    if values.min() - 4 * bw < lo:
        sources.append(2 * lo - values)
        weight_list.append(weights)
    if values.max() + 4 * bw > hi:
        sources.append(2 * hi - values)
        weight_list.append(weights)
    src, wts = np.concatenate(sources), np.concatenate(weight_list)
    density = np.zeros(_KDE_POINTS)
    step = max(1, _BLOCK_ELEMENTS // _KDE_POINTS)
    for start in range(0, len(src), step):
        u = (centres[:, None] - src[None, start : start + step]) / bw
        with np.errstate(under="ignore"):
            density += np.exp(-0.5 * u * u) @ wts[start : start + step]
    with np.errstate(divide="ignore"):
        return _Marginal(centres, np.log(density), a, b)


def _knn_entropy(points: np.ndarray, weights: np.ndarray, k: int = _KNN_K) -> float:
    """Weighted Kozachenko-Leonenko entropy estimate of weighted points (see SamplePosterior)."""
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    w = np.bincount(inverse.reshape(-1), weights=weights, minlength=len(unique))
    keep = w > 0
    unique, w = unique[keep], w[keep] / w[keep].sum()
    n, dim = unique.shape
    if n < 2:
        return -math.inf
    k = min(k, n - 1)
    mean, cov = _weighted_mean_cov(unique, w)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return -math.inf
    white = np.linalg.solve(chol, (unique - mean).T).T
    dist, idx = cKDTree(white).query(white, k=k + 1)
    eps = dist[:, k]
    mass = w[idx[:, 1:]].sum(axis=1) / np.clip(1.0 - w, 1e-300, None)
    log_ball = dim / 2 * math.log(math.pi) - special.gammaln(dim / 2 + 1) + dim * np.log(eps)
    log_p = np.log(mass) + special.digamma(k) - math.log(k) - log_ball
    return float(-(w @ log_p) + np.log(np.diag(chol)).sum())
