"""Metrics of whole design runs, computed with the exact likelihood after the run.

The sequential prior-contrastive bounds of Foster et al., "Deep Adaptive Design" (ICML 2021):
a run's realised history ``h = (xi_t, x_t)_{t <= T}`` is scored by how much more likely it is
under the truth ``theta_0`` than under ``L`` fresh prior draws. Their mean over runs, with
``theta_0`` drawn from the prior, brackets the total expected information gain of the policy
that chose the designs. They need the simulator's exact likelihood, so they referee learned
loops; they never enter one.

>>> import numpy as np
>>> from activesci import tasks
>>> sim = tasks.gaussian().simulator
>>> rng = np.random.default_rng(0)
>>> theta0 = sim.parameters.sample(1, rng)[0]
>>> x = sim.run_experiment(theta0, [np.pi], rng).x
>>> bounds = spce(sim, [[np.pi]], [x], theta0, n_contrast=1000, rng=rng)
>>> bool(bounds.spce <= np.log(1001))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from activesci.errors import ShapeError
from activesci.inference.likelihood import ExactLikelihood, observation_log_likelihood
from activesci.typing import Observation, check_count

__all__ = ["SequentialBounds", "history_log_likelihood", "spce"]

#: Prior draws scored per block: the memory is ``block x events`` doubles per experiment.
BLOCK = 20_000


@dataclass(frozen=True)
class SequentialBounds:
    """The sPCE lower and sNMC upper bound of one history (nats).

    Attributes
    ----------
    spce : float
        ``log p(h | theta_0) - log((p(h | theta_0) + sum_l p(h | theta_l)) / (L + 1))``;
        at most ``log(L + 1)``.
    snmc : float
        ``log p(h | theta_0) - log(sum_l p(h | theta_l) / L)``: the same without ``theta_0`` in
        the denominator (unbounded). Above ``spce`` on average, and in every history where the
        truth is at least as likely as the mean contrast (``sum_l p(h | theta_l) <= L p(h |
        theta_0)``).
    n_contrast : int
        ``L``, the prior draws contrasted.
    """

    spce: float
    snmc: float
    n_contrast: int


def history_log_likelihood(
    simulator: Any, designs: Sequence[Any], xs: Sequence[Any], theta: Any
) -> np.ndarray:
    """``log p(h | theta)`` of a history at many points, up to a theta-independent constant.

    The sum over experiments of the summed event log likelihoods, plus the Poisson term of
    each experiment's count when the simulator has ``expected_count`` (the extended likelihood
    that posterior updates use).

    Parameters
    ----------
    simulator : Simulator
        With ``log_likelihood(x, theta, design)``.
    designs : sequence of array_like
        The ``T`` designs run, each ``(D,)``.
    xs : sequence of array_like
        The events recorded by each, each ``(n_t, X)``.
    theta : array_like
        Points ``(n, P)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``.
    """
    if len(designs) != len(xs):
        raise ShapeError(f"{len(designs)} designs but {len(xs)} recorded experiments")
    exact = ExactLikelihood(simulator)
    points = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    total = np.zeros(len(points))
    for design, x in zip(designs, xs, strict=True):
        obs = Observation(design=np.asarray(design, dtype=float), x=np.asarray(x, dtype=float))
        total += observation_log_likelihood(obs, exact, points, simulator=simulator)
    return total


def spce(
    simulator: Any,
    history_designs: Sequence[Any],
    history_x: Sequence[Any],
    theta0: Any,
    n_contrast: int = 100_000,
    rng: np.random.Generator | int | None = None,
    *,
    block: int = BLOCK,
) -> SequentialBounds:
    """Sequential PCE (lower) and NMC (upper) bounds of one realised history.

    Draws ``L = n_contrast`` points ``theta_l`` from ``simulator.parameters``' prior and scores
    the history at each (vectorised, ``block`` points at a time) and at the truth ``theta0``.
    Averaged over runs whose truth was drawn from the same prior, ``spce`` is a lower bound on
    the expected information gain of the whole sequence of experiments (the policy's, adaptive
    or not) and ``snmc`` an upper bound; both tend to it as ``L`` grows, and ``spce`` saturates
    at ``log(L + 1)`` (DAD uses ``L = 10^5``, ``log(L + 1) = 11.5`` nats).

    Parameters
    ----------
    simulator : Simulator
        With an exact ``log_likelihood`` and a ``parameters`` space to sample the prior from.
    history_designs : sequence of array_like
        The designs run, in order, each ``(D,)``.
    history_x : sequence of array_like
        What each recorded, each ``(n_t, X)`` (``Observation.x``).
    theta0 : array_like
        The truth that generated the history, ``(P,)``.
    n_contrast : int
        ``L``, prior draws in the denominator.
    rng : numpy.random.Generator or int, optional
        Draws the contrasts.
    block : int
        Points scored at once.

    Returns
    -------
    SequentialBounds
        ``spce``, ``snmc`` (nats) and ``n_contrast``.
    """
    n_contrast = check_count(n_contrast, "n_contrast", minimum=1)
    block = check_count(block, "block", minimum=1)
    rng = np.random.default_rng(rng)
    truth = np.asarray(theta0, dtype=np.float64).reshape(1, -1)
    log_p0 = float(history_log_likelihood(simulator, history_designs, history_x, truth)[0])
    parts = []  # log-sum-exp of each block of contrasts, relative to the truth's likelihood
    for start in range(0, n_contrast, block):
        thetas = simulator.parameters.sample(min(block, n_contrast - start), rng)
        log_p = history_log_likelihood(simulator, history_designs, history_x, thetas)
        parts.append(special.logsumexp(log_p - log_p0))
    log_sum = float(special.logsumexp(parts))  # log(sum_l p(h|theta_l) / p(h|theta_0))
    return SequentialBounds(
        spce=math.log(n_contrast + 1) - float(np.logaddexp(0.0, log_sum)),
        snmc=math.log(n_contrast) - log_sum,
        n_contrast=n_contrast,
    )
