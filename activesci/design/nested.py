"""The nested grid estimate of the expected information gain (``method="grid"``).

For a :class:`~activesci.inference.grid.GridPosterior`: draw ``theta`` from the grid
posterior, simulate one experiment at the design for each (a Poisson count and its events),
update a copy of the grid with the estimator's log ratios (and the count's Poisson term), and
average the entropy drops. Cost: grid cells x events. The simulated experiments are kept
(:class:`SimulatedExperiments`), so a batch's fantasised posteriors re-score them without a
network evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from activesci.errors import ValidationError
from activesci.inference.grid import NEGLIGIBLE, GridPosterior
from activesci.inference.likelihood import as_estimator
from activesci.typing import EIGEstimate

__all__ = [
    "LOG_RATIO_BLOCK",
    "MIN_ESS_FRACTION",
    "SimulatedExperiments",
    "grid_information_gain",
    "simulate_experiments",
]

#: (parameter point or grid cell) x events per ``log_ratio`` call of an EIG estimate (about
#: 32 MB of float64).
LOG_RATIO_BLOCK = 4_000_000


def grid_information_gain(
    posterior: GridPosterior,
    simulator: Any,
    design: Any,
    *,
    estimator: Any,
    n_samples: int = 32,
    rng: np.random.Generator | int | None = None,
) -> EIGEstimate:
    """The nested grid estimate of the EIG of one experiment at ``design`` on a grid posterior.

    :func:`~activesci.design.utility.expected_information_gain`'s ``method="grid"``.

    Parameters
    ----------
    posterior : GridPosterior
        The current state of knowledge (not modified).
    simulator : Simulator
        Simulates the hypothetical experiments and gives the rate.
    design : array_like or mapping
        One design point.
    estimator : LogRatioEstimator or "exact"
        Scores the hypothetical experiments; ``"exact"``: the simulator's exact likelihood.
    n_samples : int
        Simulated experiments (>= 2); the standard error falls as ``1 / sqrt(n_samples)``.
    rng : numpy.random.Generator or int, optional
        The same seed for every candidate design gives common random numbers.

    Returns
    -------
    EIGEstimate
        The mean entropy drop and its standard error, in nats.

    Raises
    ------
    ValidationError
        ``posterior`` is not a grid, no estimator (or one without ``log_ratio``), or a bad
        ``n_samples`` or design.
    """
    if not isinstance(posterior, GridPosterior):
        raise ValidationError(
            f'method="grid" needs a GridPosterior, got {type(posterior).__name__}; use '
            f'method="contrastive" (or "auto")'
        )
    estimator = as_estimator(estimator, simulator)
    experiments = simulate_experiments(
        posterior, simulator, design, estimator=estimator, n_samples=n_samples, rng=rng
    )
    return experiments.eig()


#: :meth:`SimulatedExperiments.eig` reweights for a fantasised posterior only while the
#: importance weights keep an effective sample size of at least this fraction of the draws.
MIN_ESS_FRACTION = 0.5


@dataclass(frozen=True)
class SimulatedExperiments:
    """One design's hypothetical experiments, each scored on a grid posterior's support.

    The nested grid estimate of :func:`grid_information_gain` before its average:
    ``thetas`` drawn from ``log_posterior`` (their grid ``cells``), one experiment simulated at
    each, and its log likelihood on every ``support`` cell. :meth:`eig` averages the entropy
    drops; :meth:`eig_on` does so on a *fantasised* posterior on the same grid (this one
    updated with data not yet observed, as a batch's pending designs are), reweighting the
    same experiments by ``p_fantasy(theta) / p(theta)`` instead of simulating and scoring
    them anew: no network evaluation.

    Attributes
    ----------
    log_posterior : ndarray
        ``(n_cells,)`` the posterior the ``thetas`` were drawn from (unnormalised).
    entropy : float
        Its entropy in nats.
    cell_volume : float
        The grid's cell volume.
    shape : tuple of int
        The grid's cells per parameter.
    support : ndarray
        ``(n_cells,)`` bool: the cells the experiments were scored on.
    cells : ndarray
        ``(N,)`` the cell of each simulated experiment's ``theta``.
    loglik : ndarray
        ``(N, n_support)`` each experiment's log likelihood on the support cells.
    """

    log_posterior: np.ndarray
    entropy: float
    cell_volume: float
    shape: tuple[int, ...]
    support: np.ndarray
    cells: np.ndarray
    loglik: np.ndarray

    def _gains(self, log_posterior: np.ndarray, entropy: float) -> np.ndarray:
        """Each experiment's entropy drop ``(N,)`` from a posterior on this grid."""
        log_post = log_posterior[self.support]
        return entropy - np.array(
            [_entropy(log_post + row, self.cell_volume) for row in self.loglik]
        )

    def eig(self) -> EIGEstimate:
        """The EIG estimate on the posterior the experiments were simulated from."""
        gain = self._gains(self.log_posterior, self.entropy)
        n = len(gain)
        return EIGEstimate(
            value=float(gain.mean()), stderr=float(gain.std(ddof=1) / math.sqrt(n)), n_samples=n
        )

    def eig_on(self, posterior: GridPosterior) -> EIGEstimate | None:
        """The EIG estimate on ``posterior``, a fantasy on the same grid, by reweighting.

        Self-normalised importance weights ``p_fantasy(theta_i) / p(theta_i)``; the standard
        error is their delta-method one.

        Parameters
        ----------
        posterior : GridPosterior
            A posterior on the same grid, e.g. the original updated with fantasised data.

        Returns
        -------
        EIGEstimate or None
            None where the weights leave an effective sample size below
            :data:`MIN_ESS_FRACTION` of the draws (a fantasy much narrower than the original):
            simulate anew there.

        Raises
        ------
        ValidationError
            ``posterior`` is on another grid.
        """
        if not isinstance(posterior, GridPosterior) or posterior.shape != self.shape:
            raise ValidationError(
                f"a fantasised posterior must be on the grid the experiments were scored on "
                f"({self.shape} cells), got {type(posterior).__name__} "
                f"{getattr(posterior, 'shape', '')}"
            )
        fantasy = posterior.log_posterior
        log_w = fantasy[self.cells] - self.log_posterior[self.cells]
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        n = len(w)
        if 1.0 / float(np.sum(w**2)) < MIN_ESS_FRACTION * n:
            return None
        gain = self._gains(fantasy, posterior.entropy())
        value = float(w @ gain)
        return EIGEstimate(
            value=value, stderr=float(math.sqrt(np.sum(w**2 * (gain - value) ** 2))), n_samples=n
        )


def simulate_experiments(
    posterior: GridPosterior,
    simulator: Any,
    design: Any,
    *,
    estimator: Any,
    n_samples: int,
    rng: np.random.Generator | int | None = None,
) -> SimulatedExperiments:
    """Simulate ``n_samples`` experiments at ``design`` and score them on ``posterior``'s grid.

    The nested grid estimate's simulations (see :class:`SimulatedExperiments`); cells whose
    density is below ``exp(-NEGLIGIBLE)`` of the mode's are left out. ``rng`` is consumed as
    :func:`grid_information_gain` consumes it: the same seed gives the same estimate.
    """
    if not (isinstance(n_samples, int) and n_samples >= 2):
        raise ValidationError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    rng = np.random.default_rng(rng)
    d = simulator.designs.validate(design)
    if len(d) != 1:
        raise ValidationError(f"give one design, got {len(d)}")
    log_post = posterior.log_posterior
    support = log_post >= log_post.max() - NEGLIGIBLE
    grid = posterior.grid[support]
    thetas = posterior.sample(n_samples, rng)
    observations = [simulator.run_experiment(t, d, rng) for t in thetas]
    counts = np.array([o.n for o in observations])
    loglik = np.zeros((n_samples, len(grid)))
    if posterior.rate_term:
        nu = np.asarray(
            simulator.expected_count(grid, np.repeat(d, len(grid), axis=0)), dtype=float
        )
        with np.errstate(divide="ignore"):
            loglik += special.xlogy(counts[:, None], nu[None, :]) - nu[None, :]
    _add_log_ratios(loglik, observations, estimator, grid, d)
    return SimulatedExperiments(
        log_posterior=log_post,
        entropy=posterior.entropy(),
        cell_volume=posterior.cell_volume,
        shape=posterior.shape,
        support=support,
        cells=posterior.cell_of(thetas),
        loglik=loglik,
    )


def _add_log_ratios(
    loglik: np.ndarray, observations: list[Any], estimator: Any, grid: np.ndarray, d: np.ndarray
) -> None:
    """Add each experiment's summed log ratios to its row, in blocks of experiments."""
    per_block = max(1, LOG_RATIO_BLOCK // len(grid))
    batch: list[int] = []
    size = 0
    for m, obs in enumerate(observations):
        if obs.n == 0:
            continue
        batch.append(m)
        size += obs.n
        if size >= per_block or m == len(observations) - 1:
            _score_batch(loglik, observations, batch, estimator, grid, d)
            batch, size = [], 0
    if batch:
        _score_batch(loglik, observations, batch, estimator, grid, d)


def _score_batch(
    loglik: np.ndarray,
    observations: list[Any],
    batch: list[int],
    estimator: Any,
    grid: np.ndarray,
    d: np.ndarray,
) -> None:
    x = np.concatenate([observations[m].x for m in batch])
    ratios = np.asarray(estimator.log_ratio(x, grid, d), dtype=np.float64)
    starts = np.cumsum([0] + [observations[m].n for m in batch[:-1]])
    loglik[batch] += np.add.reduceat(ratios, starts, axis=1).T


def _entropy(log_p: np.ndarray, cell_volume: float) -> float:
    p = np.exp(log_p - special.logsumexp(log_p))
    return float(special.entr(p).sum() + math.log(cell_volume))
