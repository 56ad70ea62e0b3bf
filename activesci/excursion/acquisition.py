"""The GP posterior algebra of the excursion search and the acquisitions that use it.

Everything here works on the unit cube ``[0, 1]^d`` (the search scales its inputs) and in the
units of ``f`` (the posterior undoes the standardisation of the targets).

* :class:`GPPosterior`: the latent posterior of a fitted GP with fixed hyperparameters; it adds
  observations (the kriging believer) without refitting.
* :func:`class_probabilities`, :func:`class_entropy`: the classification of ``f`` by the
  thresholds under a normal marginal.
* :func:`lookahead`, :func:`expected_entropy`: how one more observation at ``x`` would move the
  posterior, and the classification entropy expected after it (Gauss-Hermite quadrature over
  the observation).
* The acquisitions ``entropy`` (expected entropy reduction, after Heinrich, Cranmer and Stark,
  "Excursion set estimation using sequential entropy reduction"), and the baselines
  ``max_variance`` and ``random``. Register your own with :func:`register_acquisition`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.special import entr, ndtr
from sklearn.gaussian_process.kernels import Kernel, Sum, WhiteKernel

from activesci.errors import ValidationError
from activesci.registry import Registry
from activesci.typing import Acquisition

__all__ = [
    "ACQUISITIONS",
    "Acquisition",
    "AcquisitionContext",
    "EntropyAcquisition",
    "GPPosterior",
    "Lookahead",
    "MaxVarianceAcquisition",
    "RandomAcquisition",
    "UnitGrid",
    "class_entropy",
    "class_probabilities",
    "expected_entropy",
    "lookahead",
    "make_acquisition",
    "register_acquisition",
]

#: Rows per chunk when predicting on many points: bounds the ``(n_train, chunk)`` temporaries.
_CHUNK = 8192
#: Smallest standard deviation used when classifying, relative to the scale of ``f``.
_STD_FLOOR = 1e-9
#: Two points closer than this (in unit-cube coordinates) are the same point.
_SAME_POINT = 1e-6


def _signal_kernel(kernel: Kernel) -> Kernel:
    """``kernel`` without its ``WhiteKernel`` terms: the covariance of the latent ``f``."""
    if isinstance(kernel, Sum):
        if isinstance(kernel.k2, WhiteKernel):
            return _signal_kernel(kernel.k1)
        if isinstance(kernel.k1, WhiteKernel):
            return _signal_kernel(kernel.k2)
        return Sum(_signal_kernel(kernel.k1), _signal_kernel(kernel.k2))
    return kernel


class GPPosterior:
    """The latent posterior of a Gaussian process with fixed hyperparameters.

    Targets are standardised with ``y_mean`` and ``y_scale`` before they meet the kernel (as
    ``GaussianProcessRegressor(normalize_y=True)`` does); every method answers in the units of
    ``f``. Variances are those of the latent ``f``: a ``WhiteKernel`` in ``kernel`` counts as
    observation noise, never as uncertainty about ``f``.

    Parameters
    ----------
    kernel : sklearn.gaussian_process.kernels.Kernel
        The fitted kernel (``gp.kernel_``), acting on standardised targets.
    X : numpy.ndarray
        Training inputs in the unit cube, shape ``(N, d)``.
    y : numpy.ndarray
        Training targets in the units of ``f``, shape ``(N,)``.
    alpha : float
        Variance added to the diagonal for standardised targets (jitter or known noise).
    y_mean, y_scale : float
        The standardisation of the targets.
    """

    def __init__(
        self,
        kernel: Kernel,
        X: np.ndarray,
        y: np.ndarray,
        *,
        alpha: float,
        y_mean: float,
        y_scale: float,
    ) -> None:
        self.kernel = kernel
        self.signal = _signal_kernel(kernel)
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.alpha = float(alpha)
        self.y_mean = float(y_mean)
        self.y_scale = float(y_scale)
        gram = kernel(self.X)
        gram[np.diag_indices_from(gram)] += self.alpha
        self._L = cholesky(gram, lower=True)
        self._weights = cho_solve((self._L, True), (self.y - self.y_mean) / self.y_scale)
        origin = np.zeros((1, self.X.shape[1]))
        white = float(kernel.diag(origin)[0] - self.signal.diag(origin)[0])
        #: Variance of one new observation around ``f`` (noise and jitter), units of ``f`` squared.
        self.noise_variance = self.y_scale**2 * (self.alpha + white)

    def _project(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prior cross-covariance ``k(X, U)`` and ``L^-1 k(X, U)``, both ``(N, n)``."""
        cross = self.signal(self.X, U)
        return cross, solve_triangular(self._L, cross, lower=True)

    def predict(self, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent mean and standard deviation at unit-cube points ``(n, d)``, each ``(n,)``.

        Computed in chunks, so ``n`` may be millions of points.
        """
        U = np.asarray(U, dtype=float)
        mean = np.empty(len(U))
        std = np.empty(len(U))
        for rows in _chunks(len(U), _CHUNK):
            cross, v = self._project(U[rows])
            mean[rows] = self.y_mean + self.y_scale * (cross.T @ self._weights)
            var = self.signal.diag(U[rows]) - np.einsum("ij,ij->j", v, v)
            std[rows] = self.y_scale * np.sqrt(np.maximum(var, 0.0))
        return mean, std

    def covariance(self, U: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Posterior cross-covariance of ``f`` between ``U`` ``(n, d)`` and ``V`` ``(m, d)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, m)``, units of ``f`` squared. Noise never enters, even where a point
            of ``U`` equals one of ``V``.
        """
        U, V = np.asarray(U, dtype=float), np.asarray(V, dtype=float)
        prior = self.signal(U, V)
        _, vu = self._project(U)
        _, vv = self._project(V)
        return self.y_scale**2 * (prior - vu.T @ vv)

    def with_observations(self, U: np.ndarray, y: np.ndarray) -> GPPosterior:
        """A new posterior that has also seen ``y`` ``(m,)`` at ``U`` ``(m, d)``.

        The hyperparameters and the standardisation stay fixed: with ``y`` the current mean,
        this is the kriging believer of batch acquisition.
        """
        return GPPosterior(
            self.kernel,
            np.vstack([self.X, np.asarray(U, dtype=float)]),
            np.concatenate([self.y, np.asarray(y, dtype=float)]),
            alpha=self.alpha,
            y_mean=self.y_mean,
            y_scale=self.y_scale,
        )


def _chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` rows covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _check_thresholds(thresholds: Any) -> np.ndarray:
    t = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValidationError(
            f"thresholds must be finite and strictly increasing, got {np.asarray(thresholds)!r}"
        )
    return t


def class_probabilities(mean: np.ndarray, std: np.ndarray, thresholds: Any) -> np.ndarray:
    """Probabilities of each class when ``f ~ N(mean, std^2)``.

    Class ``k`` means ``f`` exceeds exactly ``k`` of the increasing thresholds.

    Parameters
    ----------
    mean, std : numpy.ndarray
        Broadcastable arrays of shape ``S``; ``std`` is floored at a tiny positive value.
    thresholds : float or sequence of float
        ``T`` increasing thresholds.

    Returns
    -------
    numpy.ndarray
        Shape ``S + (T + 1,)``; sums to one along the last axis.

    Examples
    --------
    >>> class_probabilities(np.array([0.0]), np.array([1.0]), [0.0]).round(3).tolist()
    [[0.5, 0.5]]
    """
    t = _check_thresholds(thresholds)
    mean, std = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(std, dtype=float))
    std = np.maximum(std, _STD_FLOOR * (1.0 + np.abs(mean)))
    below = [ndtr((ti - mean) / std) for ti in t]
    columns = [below[0]]
    columns += [np.maximum(hi - lo, 0.0) for lo, hi in itertools.pairwise(below)]
    columns.append(ndtr((mean - t[-1]) / std))
    return np.stack(columns, axis=-1)


def class_entropy(mean: np.ndarray, std: np.ndarray, thresholds: Any) -> np.ndarray:
    """Shannon entropy (nats) of the classification when ``f ~ N(mean, std^2)``, shape ``S``.

    Examples
    --------
    >>> round(float(class_entropy(0.0, 1.0, [0.0])), 4)  # ln 2
    0.6931
    """
    t = _check_thresholds(thresholds)
    mean, std = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(std, dtype=float))
    inv_std = 1.0 / np.maximum(std, _STD_FLOOR * (1.0 + np.abs(mean)))
    return _entropy([(ti - mean) * inv_std for ti in t])


def _entropy(z: list[np.ndarray]) -> np.ndarray:
    """Classification entropy from the standardised distances ``(t_k - mean) / std``."""
    below = [ndtr(zk) for zk in z]
    total = entr(below[0]) + entr(ndtr(-z[-1]))
    for lo, hi in itertools.pairwise(below):
        total += entr(np.maximum(hi - lo, 0.0))
    return total


class Lookahead(NamedTuple):
    """How an observation ``y`` at each of ``m`` candidates moves ``f`` at ``n`` points.

    After observing ``y`` at candidate ``j``, the latent mean at point ``i`` becomes
    ``mean[i] + slope[i, j] * (y - y_mean[j])`` and its standard deviation ``std[i, j]``
    (whatever ``y`` is). Before the observation ``y ~ N(y_mean[j], y_std[j]^2)``.
    """

    slope: np.ndarray
    std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray


def lookahead(posterior: GPPosterior, points: np.ndarray, candidates: np.ndarray) -> Lookahead:
    """The one-step update of the latent posterior at ``points`` for each candidate.

    With ``c`` the posterior cross-covariance of ``f`` between a point and a candidate ``x``,
    ``s2`` the latent variance at ``x`` and ``n2`` the observation noise variance, the new
    variance is ``var - c^2 / (s2 + n2)`` and the mean moves by ``c / (s2 + n2) * (y - mu(x))``.

    Parameters
    ----------
    posterior : GPPosterior
        The current posterior.
    points : numpy.ndarray
        Unit-cube points ``(n, d)`` where the update is wanted.
    candidates : numpy.ndarray
        Unit-cube candidates ``(m, d)``.

    Returns
    -------
    Lookahead
        ``slope`` and ``std`` of shape ``(n, m)``, ``y_mean`` and ``y_std`` of shape ``(m,)``.
    """
    _, std_points = posterior.predict(points)
    y_mean, std_x = posterior.predict(candidates)
    y_var = std_x**2 + posterior.noise_variance
    cross = posterior.covariance(points, candidates)
    slope = cross / y_var
    new_var = std_points[:, None] ** 2 - cross * slope
    return Lookahead(slope, np.sqrt(np.maximum(new_var, 0.0)), y_mean, np.sqrt(y_var))


def expected_entropy(
    posterior: GPPosterior,
    points: np.ndarray,
    candidates: np.ndarray,
    thresholds: Any,
    *,
    n_quadrature: int = 10,
    max_elements: int = 2**19,
) -> np.ndarray:
    """Total classification entropy over ``points`` expected after observing at each candidate.

    The observation ``y`` is integrated out with ``n_quadrature``-node Gauss-Hermite quadrature.
    Candidates are processed in chunks of at most ``max_elements / n`` so that no array is
    larger than ``max_elements`` numbers.

    Parameters
    ----------
    posterior : GPPosterior
        The current posterior.
    points : numpy.ndarray
        Unit-cube points ``(n, d)`` whose entropy is summed.
    candidates : numpy.ndarray
        Unit-cube candidates ``(m, d)``.
    thresholds : float or sequence of float
        Increasing thresholds.
    n_quadrature : int
        Gauss-Hermite nodes.
    max_elements : int
        Largest ``(n, chunk)`` array built.

    Returns
    -------
    numpy.ndarray
        Shape ``(m,)``, nats; lower is better.
    """
    t = _check_thresholds(thresholds)
    nodes, weights = np.polynomial.hermite_e.hermegauss(int(n_quadrature))
    weights = weights / weights.sum()
    points = np.asarray(points, dtype=float)
    candidates = np.asarray(candidates, dtype=float)
    mean, _ = posterior.predict(points)
    floor = _STD_FLOOR * (1.0 + np.max(np.abs(mean)) + np.max(np.abs(t)))
    out = np.empty(len(candidates))
    for cols in _chunks(len(candidates), max(1, max_elements // max(len(points), 1))):
        step = lookahead(posterior, points, candidates[cols])
        inv_std = 1.0 / np.maximum(step.std, floor)
        # at quadrature node z the mean is mean + z * slope * y_std: standardised distances
        # to threshold k are distance[k] - z * drift
        distance = [(ti - mean)[:, None] * inv_std for ti in t]
        drift = step.slope * step.y_std * inv_std
        total = np.zeros(drift.shape[1])
        for z, w in zip(nodes, weights, strict=True):
            total += w * _entropy([d - z * drift for d in distance]).sum(axis=0)
        out[cols] = total
    return out


@dataclass(frozen=True)
class UnitGrid:
    """A regular grid over the unit cube, never held in memory as a whole.

    Parameters
    ----------
    shape : tuple of int
        Points per dimension (each >= 2), endpoints included.

    Examples
    --------
    >>> UnitGrid((3, 2)).points(np.arange(6)).tolist()
    [[0.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.5, 1.0], [1.0, 0.0], [1.0, 1.0]]
    """

    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of grid points."""
        return int(np.prod(self.shape))

    def axes(self) -> list[np.ndarray]:
        """The coordinates along each dimension."""
        return [np.linspace(0.0, 1.0, n) for n in self.shape]

    def points(self, index: np.ndarray | slice) -> np.ndarray:
        """The grid points with flat (C-order) indices ``index``, shape ``(k, d)``."""
        flat = np.arange(self.size)[index] if isinstance(index, slice) else np.asarray(index)
        coords = np.unravel_index(flat, self.shape)
        return np.stack(
            [c / (n - 1) for c, n in zip(coords, self.shape, strict=True)], axis=-1
        ).astype(float)

    def map(self, fn: Callable[[np.ndarray], np.ndarray], *, chunk: int = _CHUNK) -> np.ndarray:
        """``fn`` applied chunk by chunk to the grid points, concatenated along axis 0."""
        return np.concatenate([fn(self.points(rows)) for rows in _chunks(self.size, chunk)])


@dataclass
class AcquisitionContext:
    """What an acquisition may use to choose the next point (all in unit-cube coordinates).

    Attributes
    ----------
    posterior : GPPosterior
        The current posterior (with the batch's pending points believed).
    grid : UnitGrid
        The classification grid.
    grid_mean, grid_std : numpy.ndarray
        The posterior at the grid points, shape ``(grid.size,)``.
    thresholds : numpy.ndarray
        Increasing thresholds.
    excluded : numpy.ndarray
        Points already told or pending in this batch ``(k, d)``: never propose them again.
    rng : numpy.random.Generator
        The only source of randomness.
    n_candidates : int
        How many candidates a candidate-based acquisition should score.
    """

    posterior: GPPosterior
    grid: UnitGrid
    grid_mean: np.ndarray
    grid_std: np.ndarray
    thresholds: np.ndarray
    excluded: np.ndarray
    rng: np.random.Generator
    n_candidates: int

    def random_points(self, n: int) -> np.ndarray:
        """``n`` uniform points in the unit cube, shape ``(n, d)``."""
        return self.rng.random((n, len(self.grid.shape)))

    def allowed(self, U: np.ndarray) -> np.ndarray:
        """Mask ``(n,)`` of the rows of ``U`` that differ from every excluded point."""
        keep = np.ones(len(U), dtype=bool)
        for rows in _chunks(len(U), max(1, 2**18 // max(len(self.excluded), 1))):
            diff = U[rows, None, :] - self.excluded[None, :, :]
            keep[rows] = np.all(np.max(np.abs(diff), axis=-1) > _SAME_POINT, axis=1)
        return keep

    def grid_entropy(self) -> np.ndarray:
        """Classification entropy at every grid point, shape ``(grid.size,)``."""
        out = np.empty(self.grid.size)
        for rows in _chunks(self.grid.size, _CHUNK):
            out[rows] = class_entropy(self.grid_mean[rows], self.grid_std[rows], self.thresholds)
        return out


@dataclass
class MaxVarianceAcquisition:
    """The candidate with the largest latent variance (a space-filling baseline).

    Candidates: the ``n_candidates`` grid points of largest variance and as many uniform points.
    """

    name: str = "max_variance"

    def select(self, context: AcquisitionContext) -> np.ndarray:
        """The most uncertain allowed candidate."""
        k = min(context.n_candidates, context.grid.size)
        top = np.argpartition(-context.grid_std, k - 1)[:k]
        candidates = np.vstack([context.grid.points(top), context.random_points(k)])
        candidates = candidates[context.allowed(candidates)]
        _, std = context.posterior.predict(candidates)
        return candidates[int(np.argmax(std))]


@dataclass
class RandomAcquisition:
    """A uniform random point (the baseline every acquisition must beat)."""

    name: str = "random"

    def select(self, context: AcquisitionContext) -> np.ndarray:
        """A uniform point of the unit cube."""
        return context.random_points(1)[0]


@dataclass
class EntropyAcquisition:
    """The largest expected reduction of the total classification entropy over the grid.

    For each candidate ``x`` the search asks how much the summed classification entropy of the
    grid would drop, in expectation over the yet unseen ``f(x)``, if ``x`` were evaluated
    (:func:`expected_entropy`). To scale to 4-D grids, the sum runs over the grid points whose
    entropy exceeds ``min_entropy`` (a seeded subsample of at most ``n_subset`` of them), and
    the candidates are grid points drawn with probability proportional to their entropy
    (``grid_fraction`` of ``n_candidates``) plus uniform points. When no grid point is
    uncertain any more, it falls back to the largest variance.

    Parameters
    ----------
    n_subset : int
        Most grid points whose entropy is summed.
    n_quadrature : int
        Gauss-Hermite nodes over the observation.
    min_entropy : float
        Entropy (nats) below which a grid point counts as classified.
    grid_fraction : float
        Share of the candidates drawn from uncertain grid points.
    """

    n_subset: int = 2000
    n_quadrature: int = 10
    min_entropy: float = 1e-3
    grid_fraction: float = 0.75
    name: str = "entropy"

    def __post_init__(self) -> None:
        if not (isinstance(self.n_subset, int) and self.n_subset >= 1):
            raise ValidationError(f"n_subset must be an integer >= 1, got {self.n_subset!r}")
        if not (isinstance(self.n_quadrature, int) and self.n_quadrature >= 2):
            raise ValidationError(
                f"n_quadrature must be an integer >= 2, got {self.n_quadrature!r}"
            )
        if not (self.min_entropy >= 0.0):
            raise ValidationError(f"min_entropy must be >= 0 nats, got {self.min_entropy!r}")
        if not (0.0 <= self.grid_fraction <= 1.0):
            raise ValidationError(f"grid_fraction must be in [0, 1], got {self.grid_fraction!r}")

    def select(self, context: AcquisitionContext) -> np.ndarray:
        """The candidate with the lowest expected classification entropy."""
        entropy = context.grid_entropy()
        uncertain = np.flatnonzero(entropy > self.min_entropy)
        if uncertain.size == 0:
            return MaxVarianceAcquisition().select(context)
        rng = context.rng
        subset = uncertain
        if subset.size > self.n_subset:
            subset = np.sort(rng.choice(uncertain, self.n_subset, replace=False))
        n_grid = min(uncertain.size, round(self.grid_fraction * context.n_candidates))
        weights = entropy[uncertain] / entropy[uncertain].sum()
        chosen = rng.choice(uncertain, n_grid, replace=False, p=weights)
        candidates = np.vstack(
            [
                context.grid.points(chosen),
                context.random_points(max(context.n_candidates - n_grid, 1)),
            ]
        )
        candidates = candidates[context.allowed(candidates)]
        score = expected_entropy(
            context.posterior,
            context.grid.points(subset),
            candidates,
            context.thresholds,
            n_quadrature=self.n_quadrature,
        )
        return candidates[int(np.argmin(score))]


#: Acquisition factories by name (and the entry points of the group
#: ``activesci.acquisitions``); ``make_acquisition(name, **options)`` builds one.
ACQUISITIONS: Registry[Acquisition] = Registry(
    "acquisition",
    {
        "entropy": EntropyAcquisition,
        "max_variance": MaxVarianceAcquisition,
        "random": RandomAcquisition,
    },
    group="activesci.acquisitions",
)


#: ``register_acquisition(name, factory)`` makes ``factory(**options)`` (an object with a
#: ``name`` and ``select(context) -> (d,) array``) available as ``acquisition=name``
#: everywhere in this process.
register_acquisition = ACQUISITIONS.register


def make_acquisition(acquisition: str | Acquisition, **options: Any) -> Acquisition:
    """Build an acquisition from its registered name (or pass an instance through).

    Examples
    --------
    >>> make_acquisition("entropy", n_quadrature=8).n_quadrature
    8
    """
    if not isinstance(acquisition, str):
        if not callable(getattr(acquisition, "select", None)):
            raise ValidationError(
                f"an acquisition needs a select(context) method, got {acquisition!r}"
            )
        return acquisition
    return ACQUISITIONS.make(acquisition, **options)
