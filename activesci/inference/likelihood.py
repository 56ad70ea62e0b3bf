"""The likelihood of an observation: estimators, the exact likelihood and their plumbing.

A posterior consumes observations through an *estimator*: any object with
``log_ratio(x, theta, design) -> (n_theta, n_x)``, the log of ``p(x | theta, design)`` over a
reference density that does not depend on ``theta`` (so only differences in ``theta`` matter).
Learned estimators (:mod:`activesci.inference.ratio`) and :class:`ExactLikelihood` (the
simulator's exact likelihood, for validation) both qualify.

An observation's log likelihood (:func:`observation_log_likelihood`) is
``sum_i log r(x_i | theta, design)`` and, for simulators with an ``expected_count`` (the
*extended* likelihood), the Poisson term ``n log nu(theta) - nu(theta)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from activesci.errors import (
    MissingCapabilityError,
    ShapeError,
    ValidationError,
)
from activesci.typing import LogRatioEstimator, Observation, Simulator, capabilities_of

__all__ = ["ExactLikelihood", "LogRatioEstimator", "as_estimator", "observation_log_likelihood"]

#: Elements of one ``log_ratio`` block (times the number of features): about 16 MB of float64.
_BLOCK_ELEMENTS = 1 << 21
#: Parameter points per ``log_ratio`` call when the events must be split as well.
_THETA_BLOCK = 2048


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
    estimator: LogRatioEstimator,
    theta: Any,
    *,
    simulator: Simulator | None = None,
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


def as_estimator(estimator: Any, simulator: Any) -> LogRatioEstimator:
    """The estimator to score data with: ``"exact"`` is the simulator's exact likelihood.

    The one place the word ``"exact"`` becomes :class:`ExactLikelihood`, wherever an estimator
    is asked for (the learner's ``estimator=``, the EIG estimators').

    Parameters
    ----------
    estimator : LogRatioEstimator or "exact"
        Anything with ``log_ratio(x, theta, design)``, or ``"exact"``.
    simulator : Simulator
        Gives the exact likelihood (``log_likelihood``) for ``"exact"``.

    Raises
    ------
    ValidationError
        ``estimator`` is None or has no ``log_ratio`` method.
    MissingCapabilityError
        ``"exact"`` for a simulator without ``log_likelihood``.

    Examples
    --------
    >>> import activesci as asci
    >>> type(as_estimator("exact", asci.tasks.gaussian().simulator)).__name__
    'ExactLikelihood'
    """
    if isinstance(estimator, str) and estimator == "exact":
        return ExactLikelihood(simulator)
    if estimator is None:
        raise ValidationError('give an estimator, or "exact" to use the exact likelihood')
    _check_estimator(estimator)
    return estimator


def _check_estimator(estimator: Any) -> None:
    if not callable(getattr(estimator, "log_ratio", None)):
        raise ValidationError(
            f"an estimator needs a log_ratio(x, theta, design) method; got "
            f"{_estimator_name(estimator)}"
        )
