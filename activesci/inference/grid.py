"""The grid posterior: the log posterior on the centres of a grid of cells (1 to 3 parameters)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from scipy import interpolate, special

from activesci.errors import (
    ValidationError,
)
from activesci.inference.likelihood import _estimator_name
from activesci.inference.posterior import _as_points, _inside, _Marginal, _normalised, _Posterior
from activesci.spaces import Real, Space
from activesci.typing import Observation

__all__ = ["DEFAULT_RESOLUTION", "NEGLIGIBLE", "GridPosterior"]

#: Default grid resolution per number of parameters.
DEFAULT_RESOLUTION = {1: 201, 2: 61, 3: 31}
_MAX_GRID_DIM = 3
_MAX_GRID_CELLS = 20_000_000
#: Grid cells whose posterior density is below ``exp(-NEGLIGIBLE)`` times the mode's hold, all
#: together, less than ``cells * 1e-13`` of the mass. An update evaluates the likelihood only
#: on the other cells and drops these (probability 0): data that raise a cell by 30 nats
#: against the mode contradict the data so far beyond 7 standard deviations. Late rounds of
#: several parameters, whose posterior fills a few percent of the grid, get cheaper by that
#: factor. The hypothetical updates of the EIG use the same support.
NEGLIGIBLE = 30.0


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
    >>> from activesci.inference import ExactLikelihood
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
