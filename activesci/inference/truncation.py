"""Truncation: the regions a local estimator trains on and a posterior's grid spans.

**Truncation** (:func:`truncation_region`, as in swyft's TMNRE). The local inference estimator
is trained on ``theta`` drawn from the prior restricted to a box ``R`` that holds the current
posterior with a margin, at the designs actually run. By Bayes' theorem the posterior computed
with the prior restricted to ``R`` *is* the full posterior conditioned on ``theta in R``; the
only approximation is the mass the full posterior has outside ``R``. ``R`` is the central
``1 - tail`` interval of every marginal (``tail = 1e-6`` by default), widened by ``margin`` of
its width on each side, so the previous posterior puts at most ``P * tail`` outside it. New
data can move mass outside only by contradicting the data so far; the learner watches for that
(:func:`edge_mass`, the posterior mass in the outer margin of ``R``) and widens ``R`` again.

The grid follows the posterior too: it is rebuilt on :func:`truncation_region` when the
posterior shrinks, laid out for the same cells per posterior std along every axis
(:func:`grid_resolution`), and the calibration is centred on :func:`focus_region`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from activesci.errors import ValidationError
from activesci.spaces import Real, Space

__all__ = [
    "RestrictedSimulator",
    "cells_per_std",
    "edge_mass",
    "focus_region",
    "grid_resolution",
    "narrowed_space",
    "shrink_factor",
    "training_region",
    "truncation_region",
]

#: Posterior mass left outside the truncation region by each marginal's central interval.
TAIL = 1e-6
#: The region's interval is widened by this fraction of its width on each side.
MARGIN = 0.5
#: The training region spans at least this many per-event likelihood widths per parameter.
FLOOR = 0.5
#: The calibration is centred on the posterior's mean +- this many standard deviations.
FOCUS = 4.0
#: Regrid a posterior that spans fewer grid cells per standard deviation than this.
MIN_CELLS_PER_STD = 2.0
#: The fewest cells along any axis of a grid laid out by :func:`grid_resolution`.
MIN_AXIS_CELLS = 9


def truncation_region(
    posterior: Any, prior: Space, *, tail: float = TAIL, margin: float = MARGIN
) -> np.ndarray:
    """A box holding the posterior with margin: bounds ``(P, 2)`` inside the prior's.

    Parameters
    ----------
    posterior : GridPosterior or SamplePosterior
        Anything with ``interval(level) -> (P, 2)``.
    prior : Space
        The full prior; the box never leaves its bounds.
    tail : float
        Mass outside each marginal's central interval before widening.
    margin : float
        Fraction of the interval's width added on each side.
    """
    central = np.asarray(posterior.interval(1.0 - tail), dtype=float)
    width = central[:, 1] - central[:, 0]
    full = prior.bounds
    # a posterior narrower than its grid cells cannot say more: keep at least two cells
    floor = 2.0 * np.asarray(getattr(posterior, "widths", np.zeros(len(width))), dtype=float)
    pad = np.maximum(margin * width, floor)
    lo = np.maximum(central[:, 0] - pad, full[:, 0])
    hi = np.minimum(central[:, 1] + pad, full[:, 1])
    return np.stack([lo, hi], axis=1)


def training_region(
    posterior: Any, prior: Space, grid: np.ndarray, *, floor: float = FLOOR, margin: float = 0.0
) -> np.ndarray:
    """Where a local estimator is trained: ``grid`` ``(P, 2)`` widened to ``floor`` event widths.

    With ``margin`` > 0 the grid is first widened by that fraction of its width on each side:
    room beyond the grid lets the calibration's score map steepen a score that came out too
    flat (:meth:`CalibratedEstimator._largest_scale`).

    One event's likelihood is about ``sqrt(n_events)`` times wider than the posterior. Over a
    range much narrower than that, events at different parameters are nearly indistinguishable
    and a classifier learns the ratio's parameter dependence poorly (at the Weinberg pole a
    range of 0.08 event widths gave a 0.5 sigma bias where 0.2 gave 0.03 after 1.6e5 events),
    while the calibration does not need the range to be narrow.
    """
    n = max(1, int(getattr(posterior, "n_events", 0)))
    std = np.asarray(posterior.std(), dtype=float)
    width = (grid[:, 1] - grid[:, 0]) * (1.0 + 2.0 * margin)
    half = 0.5 * np.maximum(width, floor * std * math.sqrt(n))
    centre = 0.5 * (grid[:, 0] + grid[:, 1])
    full = prior.bounds
    lo = np.maximum(centre - half, full[:, 0])
    hi = np.minimum(centre + half, full[:, 1])
    return np.stack([lo, hi], axis=1)


def focus_region(posterior: Any, bounds: np.ndarray, *, width: float = FOCUS) -> np.ndarray:
    """Where the calibration is centred: the posterior's mean +- ``width`` std, in ``bounds``.

    Returns ``(P, 2)``. Beyond ``width = 4`` standard deviations the posterior holds less than
    1e-4 of its mass per parameter, so a correction that is only extrapolated there moves it
    by less than that.
    """
    mean, std = np.asarray(posterior.mean(), float), np.asarray(posterior.std(), float)
    bounds = np.asarray(bounds, dtype=float)
    lo = np.clip(mean - width * std, bounds[:, 0], bounds[:, 1])
    hi = np.clip(mean + width * std, bounds[:, 0], bounds[:, 1])
    return np.stack([lo, hi], axis=1)


def shrink_factor(old: np.ndarray, new: np.ndarray) -> float:
    """How much narrower ``new`` is than ``old``: the largest width ratio over parameters.

    The largest, not a mean: with several parameters the data often pin down one while
    another stays as wide as its prior, and the one pinned down needs the finer grid and the
    narrower training.
    """
    ratio = (old[:, 1] - old[:, 0]) / np.maximum(new[:, 1] - new[:, 0], 1e-300)
    return float(np.max(ratio))


def grid_resolution(
    bounds: np.ndarray, std: np.ndarray, cells: int, *, minimum: int = MIN_AXIS_CELLS
) -> tuple[int, ...]:
    """Cells per parameter ``(P,)`` for about ``cells`` cells in all over the box ``bounds``.

    The same number of cells per posterior standard deviation ``std`` ``(P,)`` along every
    axis (at least ``minimum`` per axis): with several parameters the data pin some down
    far more than others, and equal axes would leave the narrowest posterior a cell or two
    wide while the widest gets tens.
    """
    ratio = (bounds[:, 1] - bounds[:, 0]) / np.maximum(np.asarray(std, dtype=float), 1e-300)
    free = np.ones(len(ratio), dtype=bool)
    n = np.full(len(ratio), float(minimum))
    for _ in range(len(ratio)):
        budget = math.log(cells) - np.sum(np.log(n[~free]))
        per_std = math.exp((budget - np.sum(np.log(ratio[free]))) / free.sum())
        n[free] = per_std * ratio[free]
        low = free & (n < minimum)
        if not low.any():
            break
        n[low], free = minimum, free & ~low
    return tuple(int(max(minimum, round(v))) for v in n)


def cells_per_std(posterior: Any) -> np.ndarray:
    """How many grid cells a posterior standard deviation spans along each axis ``(P,)``."""
    return np.asarray(posterior.std(), dtype=float) / np.asarray(posterior.widths, dtype=float)


def narrowed_space(prior: Space, bounds: np.ndarray) -> Space:
    """The prior restricted to the box ``bounds`` ``(P, 2)`` (same names, units and priors)."""
    dims = []
    for dim, (lo, hi) in zip(prior, np.asarray(bounds, dtype=float), strict=True):
        if not isinstance(dim, Real):
            raise ValidationError(
                f"truncation needs Real parameters; {dim.name!r} is a {type(dim).__name__}"
            )
        dims.append(dataclasses.replace(dim, low=float(lo), high=float(hi)))
    return Space(dims)


def edge_mass(posterior: Any, bounds: np.ndarray, prior: Space, *, margin: float = MARGIN) -> float:
    """Posterior mass in the outer margin of the box (the largest over parameters).

    The outer margin is the band of ``margin / (1 + 2 margin)`` of the box's width at each end
    that does not touch the prior's bound (the prior's bounds are real edges, not truncations).
    """
    points, weights = posterior._weighted()
    band = margin / (1.0 + 2.0 * margin)
    full = prior.bounds
    worst = 0.0
    for j, (lo, hi) in enumerate(np.asarray(bounds, dtype=float)):
        w = band * (hi - lo)
        outer = np.zeros(len(points), dtype=bool)
        if lo > full[j, 0] + 1e-12 * (hi - lo):
            outer |= points[:, j] < lo + w
        if hi < full[j, 1] - 1e-12 * (hi - lo):
            outer |= points[:, j] > hi - w
        worst = max(worst, float(weights[outer].sum()))
    return worst


class RestrictedSimulator:
    """A simulator whose prior is restricted to a box; everything else is the original's.

    Training a ratio estimator on it draws ``theta`` from the truncated prior.
    """

    def __init__(self, simulator: Any, bounds: np.ndarray) -> None:
        self._simulator = simulator
        self.parameters = narrowed_space(simulator.parameters, bounds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._simulator, name)

    def __repr__(self) -> str:
        return f"RestrictedSimulator({self._simulator!r}, {self.parameters.bounds.tolist()})"
