"""``ExcursionSearch``: find where an expensive function crosses its thresholds.

A Gaussian process (scikit-learn, Matérn 5/2 with one length-scale per dimension on the unit
cube, hyperparameters refitted on every ``tell``) models ``f``; a regular grid carries the
classification (class ``k``: ``f`` exceeds ``k`` thresholds); an acquisition chooses the next
points. ``ask``/``tell`` first, ``run`` is a thin loop over them. The grid is never held in
memory as points: predictions are computed chunk by chunk and only the posterior mean and
standard deviation at the grid points (two floats per point) are kept.

The search standardises the targets itself (what ``normalize_y=True`` does inside
scikit-learn) and hands the regressor standardised values: the posterior then knows the scale,
and the kriging believer can add points without the scale, or the hyperparameters, moving.
Each fit starts L-BFGS-B from the previous fit, from the initial kernel and from
``n_restarts`` seeded random points, and keeps the best marginal likelihood.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits

from activesci.errors import ShapeError, ValidationError
from activesci.excursion.acquisition import (
    Acquisition,
    AcquisitionContext,
    GPPosterior,
    UnitGrid,
    _check_thresholds,
    _chunks,
    class_probabilities,
    make_acquisition,
)
from activesci.excursion.metrics import accuracy, volume_error
from activesci.spaces import Real, Space

__all__ = ["DEFAULT_RESOLUTION", "ExcursionSearch", "default_kernel"]

#: Grid points per dimension by number of dimensions (21^4 = 194,481 points in 4-D).
DEFAULT_RESOLUTION = {1: 101, 2: 61, 3: 31, 4: 21}
#: Variance added to the diagonal for standardised targets when ``f`` is noiseless.
_JITTER = 1e-6
_MAX_DIMENSIONS = 4


def default_kernel(d: int, *, noise: str | float | None = None) -> Kernel:
    """Constant times Matérn 5/2 with one length-scale per dimension, for the unit cube.

    Length-scales may range from 0.03 to 10 (a thirtieth of the cube to flat) and the prior
    variance of the standardised targets from 0.01 to 100; with ``noise="fit"`` a
    ``WhiteKernel`` learns the noise variance (1e-8 to 1, standardised units).

    Examples
    --------
    >>> default_kernel(2)
    1**2 * Matern(length_scale=[0.3, 0.3], nu=2.5)
    """
    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
        length_scale=np.full(d, 0.3), length_scale_bounds=(0.03, 10.0), nu=2.5
    )
    if noise == "fit":
        kernel = kernel + WhiteKernel(1e-2, (1e-8, 1.0))
    return kernel


def _as_space(space: Any) -> Space:
    """A Space of Real dimensions from a Space or a list of ``(low, high)`` bounds."""
    if isinstance(space, Space):
        wrong = [dim.name for dim in space if not isinstance(dim, Real)]
        if wrong:
            raise ValidationError(
                f"the excursion search needs Real dimensions; {wrong} are not Real"
            )
    else:
        try:
            pairs = [tuple(pair) for pair in space]
        except TypeError:
            raise ValidationError(
                f"space must be a Space or a list of (low, high) bounds, got {space!r}"
            ) from None
        for i, pair in enumerate(pairs):
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"bounds[{i}] = {pair!r} is not a (low, high) pair of numbers"
                ) from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValidationError(
                    f"bounds[{i}] = {pair!r}: expected finite bounds with low < high"
                )
        space = Space([Real(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(pairs)])
    if not 1 <= len(space) <= _MAX_DIMENSIONS:
        raise ValidationError(
            f"the excursion search handles 1 to {_MAX_DIMENSIONS} dimensions, got d={len(space)}"
        )
    return space


def _one_blas_thread() -> threadpool_limits:
    """Limit BLAS to one thread while the search computes.

    The GP's matrices are small (tens to hundreds of rows): extra BLAS threads only wait, and on
    a busy machine their spinning made fits and asks several times slower (scikit-learn's
    KMeans limits its BLAS the same way).
    """
    return threadpool_limits(limits=1, user_api="blas")


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValidationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _MultiStart:
    """L-BFGS-B from sklearn's start (the previous fit) and from each of ``starts``; the best.

    Warm starts alone stay in the mode of the last fit: the log marginal likelihood of a few
    points often has a short-length-scale mode that loses to a smooth one as points arrive.
    """

    starts: list[np.ndarray]

    def __call__(
        self, objective: Callable[..., Any], initial: np.ndarray, bounds: np.ndarray
    ) -> tuple[np.ndarray, float]:
        best_theta, best_value = initial, np.inf
        for theta in [initial, *self.starts]:
            result = minimize(
                objective,
                np.clip(theta, bounds[:, 0], bounds[:, 1]),
                method="L-BFGS-B",
                jac=True,
                bounds=bounds,
            )
            if result.fun < best_value:
                best_theta, best_value = result.x, float(result.fun)
        return best_theta, best_value


class ExcursionSearch:
    """Estimate the excursion sets ``{x: f(x) > t}`` of an expensive ``f`` by active learning.

    Parameters
    ----------
    func : callable or None
        ``func(x)`` for ``x`` of shape ``(n, d)`` returns ``n`` values; ``None`` for pure
        ask/tell use (then :meth:`run` is unavailable).
    space : Space or sequence of (float, float)
        The domain: a :class:`~activesci.spaces.Space` of ``Real`` dimensions or ``(low, high)``
        bounds, 1 to 4 dimensions.
    thresholds : float or sequence of float
        One threshold or several, strictly increasing.
    acquisition : str or Acquisition
        ``"entropy"`` (expected reduction of the classification entropy), ``"max_variance"``,
        ``"random"``, another name from ``ACQUISITIONS``, or an instance.
    resolution : int or sequence of int, optional
        Grid points per dimension; default :data:`DEFAULT_RESOLUTION` (101, 61, 31, 21).
    noise : None, float or "fit"
        ``None``: ``f`` is noiseless (a tiny jitter keeps the GP stable); a float: the known
        standard deviation of the noise, in the units of ``f``; ``"fit"``: learn it.
    n_initial : int, optional
        Latin-hypercube points (seeded) asked before the acquisition takes over; default
        ``max(3, 2 d + 1)``.
    seed : int
        Seeds the initial design, the hyperparameter restarts and the acquisitions.
    candidates : int
        Candidates an acquisition scores per point.
    kernel : sklearn.gaussian_process.kernels.Kernel, optional
        The GP kernel on the unit cube (standardised targets); default :func:`default_kernel`.
        With ``noise="fit"`` a ``WhiteKernel`` is added to it.
    n_restarts : int
        Extra random starts of the hyperparameter optimiser at each fit.
    truth : callable or array_like of int, optional
        The true ``f`` (any callable like ``func``) or the true classes on the grid (C order,
        ``grid_size`` values): then :attr:`history` records accuracy and volume error.

    Examples
    --------
    >>> search = ExcursionSearch(lambda x: np.sin(3 * x[:, 0]), [(0.0, 2.0)], 0.5, seed=1)
    >>> search.run(8).classify([[0.5], [1.5]]).tolist()
    [1, 0]
    """

    def __init__(
        self,
        func: Callable[[np.ndarray], Any] | None,
        space: Space | Sequence[tuple[float, float]],
        thresholds: float | Sequence[float],
        *,
        acquisition: str | Acquisition = "entropy",
        resolution: int | Sequence[int] | None = None,
        noise: float | str | None = None,
        n_initial: int | None = None,
        seed: int = 0,
        candidates: int = 256,
        kernel: Kernel | None = None,
        n_restarts: int = 2,
        truth: Callable[[np.ndarray], Any] | Any = None,
    ) -> None:
        if func is not None and not callable(func):
            raise ValidationError(f"func must be callable or None, got {func!r}")
        self.func = func
        self.space = _as_space(space)
        d = len(self.space)
        self.thresholds = _check_thresholds(thresholds)
        self.acquisition = make_acquisition(acquisition)
        self.noise = self._check_noise(noise)
        self.seed = _count("seed", seed, 0)
        self.n_initial = _count(
            "n_initial", max(3, 2 * d + 1) if n_initial is None else n_initial, 1
        )
        self.candidates = _count("candidates", candidates, 1)
        self.n_restarts = _count("n_restarts", n_restarts, 0)
        if kernel is None:
            kernel = default_kernel(d, noise=self.noise)
        elif not isinstance(kernel, Kernel):
            raise ValidationError(f"kernel must be a scikit-learn Kernel, got {kernel!r}")
        elif self.noise == "fit":
            kernel = kernel + WhiteKernel(1e-2, (1e-8, 1.0))
        self._kernel = kernel
        self._grid = UnitGrid(self._check_resolution(resolution))
        bounds = self.space.bounds
        self._low, self._width = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
        self._initial = qmc.LatinHypercube(d, rng=np.random.default_rng([self.seed, 1])).random(
            self.n_initial
        )
        self._X = np.empty((0, d))
        self._y = np.empty(0)
        self._posterior: GPPosterior | None = None
        self._moments: tuple[np.ndarray, np.ndarray] | None = None
        self._proposal: np.ndarray | None = None
        self._truth = None if truth is None else self._true_classes(truth)
        #: One record per ``tell``: ``n_evaluations`` and, with a truth, ``accuracy`` and
        #: ``volume_error`` (the worst relative error over the thresholds).
        self.history: list[dict[str, float]] = []

    @classmethod
    def from_test_function(cls, problem: Any, **options: Any) -> ExcursionSearch:
        """A search on a :class:`~activesci.excursion.testfunctions.TestFunction`, truth known.

        Parameters
        ----------
        problem : TestFunction
            Supplies ``func``, ``space``, ``thresholds`` and the truth.
        **options
            Keyword arguments of :class:`ExcursionSearch`.
        """
        return cls(problem.func, problem.space, problem.thresholds, truth=problem.func, **options)

    # -- validation ---------------------------------------------------------------------------
    @staticmethod
    def _check_noise(noise: Any) -> float | str | None:
        if noise is None or noise == "fit":
            return noise
        if isinstance(noise, str | bool):
            raise ValidationError(f"noise must be None, a positive float or 'fit', got {noise!r}")
        try:
            value = float(noise)
        except (TypeError, ValueError):
            raise ValidationError(
                f"noise must be None, a positive float or 'fit', got {noise!r}"
            ) from None
        if not (math.isfinite(value) and value > 0):
            raise ValidationError(
                f"noise (a standard deviation) must be positive and finite, got {noise!r}"
            )
        return value

    def _check_resolution(self, resolution: Any) -> tuple[int, ...]:
        d = len(self.space)
        if resolution is None:
            return (DEFAULT_RESOLUTION[d],) * d
        values = [resolution] * d if np.ndim(resolution) == 0 else list(resolution)
        if len(values) != d:
            raise ValidationError(
                f"resolution needs one value per dimension ({d}), got {resolution!r}"
            )
        return tuple(_count("resolution", v, 2) for v in values)

    def _true_classes(self, truth: Any) -> np.ndarray:
        if callable(truth):
            return self._grid.map(lambda u: self._classify_values(self._evaluate(truth, u)))
        classes = np.asarray(truth)
        if classes.size != self._grid.size or not np.issubdtype(classes.dtype, np.integer):
            raise ValidationError(
                f"truth must be callable or {self._grid.size} integer classes (the grid "
                f"{self._grid.shape}), got dtype {classes.dtype} and shape {classes.shape}"
            )
        return classes.ravel()

    # -- coordinates --------------------------------------------------------------------------
    def _to_unit(self, x: np.ndarray) -> np.ndarray:
        return (x - self._low) / self._width

    def _from_unit(self, u: np.ndarray) -> np.ndarray:
        return np.clip(self._low + u * self._width, self._low, self._low + self._width)

    def _evaluate(self, fn: Callable[[np.ndarray], Any], u: np.ndarray) -> np.ndarray:
        x = self._from_unit(u)
        values = np.asarray(fn(x), dtype=float)
        if values.size != len(x):
            raise ShapeError(
                f"the function returned shape {values.shape} for {len(x)} points; "
                f"expected ({len(x)},)"
            )
        return values.reshape(len(x))

    def _classify_values(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.thresholds, values, side="left")

    # -- the model ----------------------------------------------------------------------------
    def _fit(self) -> None:
        y = self._y
        y_mean, y_scale = float(np.mean(y)), float(np.std(y))
        if not y_scale > 1e-12 * max(1.0, abs(y_mean)):
            y_scale = 1.0
        alpha = _JITTER
        if isinstance(self.noise, float):
            alpha = max((self.noise / y_scale) ** 2, _JITTER)
        start = self._kernel if self._posterior is None else self._posterior.kernel
        bounds = self._kernel.bounds
        rng = np.random.default_rng([self.seed, 3, len(y)])
        starts = [self._kernel.theta]
        starts += list(rng.uniform(bounds[:, 0], bounds[:, 1], (self.n_restarts, len(bounds))))
        gp = GaussianProcessRegressor(
            kernel=start, alpha=alpha, normalize_y=False, optimizer=_MultiStart(starts)
        )
        unit = self._to_unit(self._X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(unit, (y - y_mean) / y_scale)
        self._posterior = GPPosterior(
            gp.kernel_, unit, y, alpha=alpha, y_mean=y_mean, y_scale=y_scale
        )
        self._moments = None

    def _grid_moments(self, posterior: GPPosterior) -> tuple[np.ndarray, np.ndarray]:
        mean = np.empty(self._grid.size)
        std = np.empty(self._grid.size)
        for rows in _chunks(self._grid.size, 65536):
            mean[rows], std[rows] = posterior.predict(self._grid.points(rows))
        return mean, std

    def _current_moments(self) -> tuple[np.ndarray, np.ndarray]:
        if self._posterior is None:
            raise ValidationError("nothing told yet: call tell() (or run()) first")
        if self._moments is None:
            with _one_blas_thread():
                self._moments = self._grid_moments(self._posterior)
        return self._moments

    # -- ask / tell ---------------------------------------------------------------------------
    def ask(self, n: int = 1) -> np.ndarray:
        """The next ``n`` points to evaluate, shape ``(n, d)``.

        The first points come from the initial Latin hypercube; then the acquisition chooses,
        one point at a time, believing the GP mean at the points already chosen for this batch
        (kriging believer, hyperparameters fixed). The points are distinct and differ from
        every point told. Until :meth:`tell` is called, ``ask(n)`` returns the same points.
        """
        n = _count("n", n, 1)
        if self._proposal is not None and len(self._proposal) == n:
            return self._proposal.copy()
        told = len(self._y)
        rng = np.random.default_rng([self.seed, 2, told, n])
        pending = self._initial[told : told + n] if told < self.n_initial else self._initial[:0]
        extra = n - len(pending)
        if extra and self._posterior is None:
            pending = np.vstack([pending, rng.random((extra, len(self.space)))])
        elif extra:
            with _one_blas_thread():
                pending = self._acquire(pending, extra, rng)
        self._proposal = self._from_unit(pending)
        return self._proposal.copy()

    def _acquire(self, pending: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        posterior = self._posterior
        mean, std = self._current_moments()
        if len(pending):
            posterior = posterior.with_observations(pending, posterior.predict(pending)[0])
            mean, std = self._grid_moments(posterior)
        chosen = [pending]
        for i in range(n):
            context = AcquisitionContext(
                posterior=posterior,
                grid=self._grid,
                grid_mean=mean,
                grid_std=std,
                thresholds=self.thresholds,
                excluded=posterior.X,
                rng=rng,
                n_candidates=self.candidates,
            )
            point = np.asarray(self.acquisition.select(context), dtype=float).reshape(1, -1)
            if point.shape[1] != len(self.space) or not context.allowed(point)[0]:
                raise ValidationError(
                    f"acquisition {self.acquisition.name!r} proposed {point.tolist()}: expected a "
                    f"new unit-cube point of {len(self.space)} coordinates"
                )
            chosen.append(point)
            if i < n - 1:
                posterior = posterior.with_observations(point, posterior.predict(point)[0])
                mean, std = self._grid_moments(posterior)
        return np.vstack(chosen)

    def tell(self, x: Any, y: Any) -> None:
        """Record ``f`` at points ``x`` ``(n, d)``: values ``y`` ``(n,)``; refit the GP.

        Raises
        ------
        ShapeError
            ``x`` is not ``(n, d)`` or ``y`` does not hold one value per point.
        OutOfSpaceError
            A point lies outside the space.
        ValidationError
            A value of ``y`` is not a finite number.
        """
        points = self.space.validate(x)
        try:
            values = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise ValidationError(f"y must be numbers, got {y!r}") from None
        if values.size != len(points) or values.ndim > 2:
            raise ShapeError(
                f"y must hold one value per point: x has {len(points)} point(s), "
                f"y has shape {values.shape}"
            )
        values = values.reshape(len(points))
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise ValidationError(
                f"y[{i}] = {float(values[i])!r} at x = {points[i].tolist()} is not a finite number"
            )
        self._X = np.vstack([self._X, points])
        self._y = np.concatenate([self._y, values])
        self._proposal = None
        with _one_blas_thread():
            self._fit()
            self._record()

    def _record(self) -> None:
        entry: dict[str, float] = {"n_evaluations": len(self._y)}
        if self._truth is not None:
            predicted = self.classify()
            entry["accuracy"] = accuracy(predicted, self._truth)
            entry["volume_error"] = max(
                volume_error(predicted, self._truth, level=k)
                for k in range(1, len(self.thresholds) + 1)
            )
        self.history.append(entry)

    def run(
        self, n_evaluations: int, batch_size: int = 1, *, progress: bool = False
    ) -> ExcursionSearch:
        """Evaluate ``func`` ``n_evaluations`` times, ``batch_size`` points per ask/tell.

        Returns
        -------
        ExcursionSearch
            ``self``, to chain ``search.run(20).classify()``.
        """
        from tqdm.auto import tqdm

        if self.func is None:
            raise ValidationError("run() needs func; with func=None use ask() and tell()")
        total = _count("n_evaluations", n_evaluations, 1)
        batch = _count("batch_size", batch_size, 1)
        with tqdm(total=total, disable=not progress, desc="excursion search") as bar:
            done = 0
            while done < total:
                x = self.ask(min(batch, total - done))
                self.tell(x, self._evaluate(self.func, self._to_unit(x)))
                done += len(x)
                bar.update(len(x))
        return self

    # -- results ------------------------------------------------------------------------------
    def predict(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent ``f`` at ``x`` ``(n, d)``."""
        if self._posterior is None:
            raise ValidationError("nothing told yet: call tell() (or run()) first")
        with _one_blas_thread():
            return self._posterior.predict(self._to_unit(self.space.validate(x)))

    def classify(self, x: Any = None) -> np.ndarray:
        """The estimated class (thresholds the posterior mean exceeds) at ``x`` or the grid.

        Returns
        -------
        numpy.ndarray
            Integers, shape ``(n,)`` or ``(grid_size,)`` (C order over :attr:`grid_axes`).
        """
        mean = self._current_moments()[0] if x is None else self.predict(x)[0]
        return self._classify_values(mean)

    def probabilities(self, x: Any = None) -> np.ndarray:
        """Posterior class probabilities at ``x`` or the grid, shape ``(n, T + 1)``."""
        mean, std = self._current_moments() if x is None else self.predict(x)
        return class_probabilities(mean, std, self.thresholds)

    def true_classes(self) -> np.ndarray | None:
        """The true classes on the grid, if a truth was given (else ``None``)."""
        return None if self._truth is None else self._truth.copy()

    @property
    def posterior(self) -> GPPosterior | None:
        """The current GP posterior on the unit cube (``None`` before the first tell)."""
        return self._posterior

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Grid points per dimension."""
        return self._grid.shape

    @property
    def grid_size(self) -> int:
        """Number of grid points."""
        return self._grid.size

    @property
    def grid_axes(self) -> list[np.ndarray]:
        """The grid's coordinates along each dimension, in the space's units."""
        return [
            lo + axis * width
            for lo, axis, width in zip(self._low, self._grid.axes(), self._width, strict=True)
        ]

    @property
    def grid(self) -> np.ndarray:
        """The grid points ``(grid_size, d)`` in C order (built on each access: it can be big)."""
        return self._from_unit(self._grid.points(slice(None)))

    @property
    def X(self) -> np.ndarray:
        """Points told so far, shape ``(n, d)`` (a copy)."""
        return self._X.copy()

    @property
    def y(self) -> np.ndarray:
        """Values told so far, shape ``(n,)`` (a copy)."""
        return self._y.copy()
