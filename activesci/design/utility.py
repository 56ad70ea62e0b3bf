"""Expected information gain (EIG) of an experiment design, with the amortised estimator.

``EIG(d) = H[p(theta | D)] - E_{theta ~ p(theta | D), x ~ p(x | theta, d)} H[p(theta | D, x)]``

estimated by Monte Carlo: draw ``theta`` from the current grid posterior, simulate one
experiment at ``d`` for each (a Poisson count and its events), update a copy of the grid
posterior with the estimator's log ratios (and the count's Poisson term), and average the
entropies. No retraining happens inside the loop: the estimator is amortised over designs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from activesci.errors import ValidationError
from activesci.inference.posterior import ExactLikelihood, GridPosterior

__all__ = ["EIGEstimate", "expected_information_gain"]

_BLOCK = 4_000_000  # grid cells x events per log_ratio call (~32 MB of float64)
#: Grid cells whose posterior density is below ``exp(-_SUPPORT)`` times the mode's are left out
#: of the hypothetical updates: together they hold less than ``cells * 1e-13`` of the mass, and
#: data simulated from the posterior cannot move the mass there. Late rounds, whose posterior
#: fills a few percent of the grid, get cheaper by that factor.
_SUPPORT = 30.0


@dataclass(frozen=True)
class EIGEstimate:
    """A Monte Carlo estimate of the expected information gain, in nats."""

    value: float
    stderr: float
    n_samples: int


def expected_information_gain(
    posterior: GridPosterior,
    simulator: Any,
    design: Any,
    *,
    estimator: Any = None,
    exact: bool = False,
    n_samples: int = 32,
    rng: np.random.Generator | int | None = None,
) -> EIGEstimate:
    """Estimate the expected information gain of one experiment at ``design``.

    Parameters
    ----------
    posterior : GridPosterior
        The current state of knowledge (not modified).
    simulator : Simulator
        Simulates the hypothetical experiments (``run_experiment``) and gives the rate.
    design : array_like or mapping
        One design point.
    estimator : LogRatioEstimator, optional
        The amortised ratio estimator used for the hypothetical updates.
    exact : bool
        Use the simulator's exact likelihood instead (benchmarks only).
    n_samples : int
        Simulated experiments; the standard error falls as ``1 / sqrt(n_samples)``.
    rng : numpy.random.Generator or int, optional
        Pass the same seed for every candidate of a round: common random numbers make the
        EIG surface smooth across designs.

    Returns
    -------
    EIGEstimate
        Value and Monte Carlo standard error, in nats.

    Examples
    --------
    >>> import numpy as np, activesci as asci
    >>> task = asci.tasks.gaussian()
    >>> post = GridPosterior(task.parameters, simulator=task.simulator)
    >>> eig = expected_information_gain(post, task.simulator, [np.pi], exact=True, rng=0)
    >>> round(float(0.5 * np.log(1 + 10)), 2), round(eig.value, 1)  # analytic: 0.5 log(1 + n)
    (1.2, 1.2)
    """
    if not isinstance(posterior, GridPosterior):
        raise ValidationError(f"EIG needs a GridPosterior, got {type(posterior).__name__}")
    if exact:
        estimator = ExactLikelihood(simulator)
    if estimator is None:
        raise ValidationError("give an estimator, or exact=True to use the exact likelihood")
    if not (isinstance(n_samples, int) and n_samples >= 2):
        raise ValidationError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    rng = np.random.default_rng(rng)
    d = simulator.designs.validate(design)
    if len(d) != 1:
        raise ValidationError(f"give one design, got {len(d)}")
    log_post = posterior.log_posterior
    support = log_post >= log_post.max() - _SUPPORT
    grid, log_post = posterior.grid[support], log_post[support]
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
    entropies = np.array([_entropy(log_post + row, posterior.cell_volume) for row in loglik])
    gain = posterior.entropy() - entropies
    return EIGEstimate(
        value=float(gain.mean()),
        stderr=float(gain.std(ddof=1) / math.sqrt(n_samples)),
        n_samples=n_samples,
    )


def _add_log_ratios(
    loglik: np.ndarray, observations: list[Any], estimator: Any, grid: np.ndarray, d: np.ndarray
) -> None:
    """Add each experiment's summed log ratios to its row, in blocks of experiments."""
    per_block = max(1, _BLOCK // len(grid))
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
