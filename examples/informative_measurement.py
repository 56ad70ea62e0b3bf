"""The informative measurement model: one very precise Gaussian measurement per experiment.

A bring-your-own-simulator example: a module of a user's own, not part of activesci. It shows
how a simulator with an exact likelihood and a tractable latent ("gold") plugs into
:class:`activesci.ActiveLearner`, and it is a deliberately hard case for learned estimators.

The model
---------
One theory parameter ``theta`` with a uniform prior on ``[0, 1]``. An experiment chooses a
design ``(energy, error)``: a dimensionless setting ``energy`` in ``[0, 1]`` and the
measurement error ``error`` in ``[0.004, 0.1]``. It records ONE measurement::

    x ~ Normal(f(theta, energy), error^2),    f(theta, energy) = s(energy) * theta,
    s(energy) = 0.5 + energy,

so the response is linear and monotone in ``theta`` with a sensitivity ``s(E)`` that grows
from 0.5 to 1.5 with the energy: the design matters, and the most informative one is
``(energy, error) = (1, 0.004)``. One measurement constrains ``theta`` to ``error / s(E)``,
i.e. to ``0.004 / 1.5 = 0.0027`` at best (1/375 of the prior range).

There is no hidden physics: the latent ``z`` is the measurement itself (``z = x``), so
``joint_log_prob(z, theta, design)`` is the exact ``log p(x | theta, design)`` and the
"gold" joint ratios and scores used by the gold-mining estimators (ALICES, RASCAL, ...) are
exact. Because ``f`` is linear, the posterior of ``theta`` after any observations is Gaussian
(as long as it is far from the prior bounds): :func:`analytic_posterior` gives it in closed
form.

Why it is hard for a learned estimator
--------------------------------------
An estimator such as ALICES is trained once on ``theta`` drawn from the whole prior and
designs drawn from the whole design space. At the smallest error, ``1/250`` of the prior
range, the likelihood ratio ``p(x | theta) / p(x | theta')`` falls by ``exp(-1/2)`` when
``theta`` moves by one posterior std (0.0027 at ``energy = 1``) and by ``exp(-7 * 10^4)``
across the prior. A network that resolves the prior as a whole is unlikely to resolve such a
narrow ridge: expect its posterior to come out wider than, or shifted from, the exact one.
The exact likelihood (``estimator="exact"``) is the referee to compare against.

A grid posterior must resolve it too: the learner's default grid of 201 cells on ``[0, 1]``
(cells of 0.005) is coarser than the posterior, so pass ``resolution=20_001`` or so.

Usage
-----
>>> import activesci as asci
>>> t = task()
>>> sorted(t.simulator.capabilities)
['joint_log_prob', 'joint_score', 'log_likelihood']
>>> learner = asci.ActiveLearner(
...     t, estimator="exact", strategy="fixed", resolution=20_001, progress=False
... )
>>> state = learner.run(2)
>>> mean, std = analytic_posterior(learner.posterior.observations)
>>> round(std, 5)  # 0.004 / 1.5 / sqrt(2)
0.00189
>>> bool(abs(learner.posterior.std()[0] - std) < 1e-3 * std)
True

With a learned estimator (it trains a network first; see above for why it is hard)::

    learner = asci.ActiveLearner(
        task(), estimator="alices", strategy="fixed",
        strategy_options={"design": [1.0, 0.004]}, resolution=20_001,
    )
    learner.run(5)

To make the task known to ``activesci.tasks.get`` (e.g. for ``ActiveLearner.resume``), register
it: ``activesci.tasks.TASKS["informative_measurement"] = task``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from activesci.errors import ShapeError, ValidationError
from activesci.simulators.base import SimulatorBase
from activesci.spaces import Real, Space
from activesci.tasks import Task
from activesci.typing import Events, Observation

__all__ = [
    "MAX_ERROR",
    "MIN_ERROR",
    "PARAMETERS",
    "InformativeMeasurement",
    "analytic_posterior",
    "response",
    "sensitivity",
    "task",
]

#: Smallest measurement error of the default design space: 1/250 of the prior range.
MIN_ERROR = 0.004
#: Largest measurement error of the default design space.
MAX_ERROR = 0.1
#: The theory parameter and its prior: ``theta`` uniform on ``[0, 1]``.
PARAMETERS = Space([Real("theta", 0.0, 1.0, label="θ")])

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def sensitivity(energy: Any) -> np.ndarray:
    """The slope ``s(E) = 0.5 + E`` of the response in ``theta``.

    Parameters
    ----------
    energy : array_like
        Energies, any shape.

    Returns
    -------
    numpy.ndarray
        ``0.5 + energy``, the same shape.
    """
    return 0.5 + np.asarray(energy, dtype=float)


def response(theta: Any, energy: Any) -> np.ndarray:
    """The noise-free measurement ``f(theta, E) = theta * (0.5 + E)``.

    Parameters
    ----------
    theta, energy : array_like
        Broadcastable arrays, e.g. both of shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        ``f`` with the broadcast shape.
    """
    return np.asarray(theta, dtype=float) * sensitivity(energy)


class InformativeMeasurement(SimulatorBase):
    """``x ~ N(theta * (0.5 + energy), error^2)``: one measurement per experiment.

    Parameters
    ----------
    min_error, max_error : float
        Range of the design ``error`` (the measurement's standard deviation); the default
        smallest error is 1/250 of the prior range of ``theta``. Lower ``min_error`` to make
        the likelihood narrower still.

    Attributes
    ----------
    parameters : Space
        ``theta`` uniform on ``[0, 1]``.
    designs : Space
        ``energy`` in ``[0, 1]`` and ``error`` in ``[min_error, max_error]``.

    Examples
    --------
    >>> import numpy as np
    >>> sim = InformativeMeasurement()
    >>> obs = sim.run_experiment([0.37], [1.0, 0.004], np.random.default_rng(0))
    >>> obs.x.shape, obs.design.tolist()
    ((1, 1), [1.0, 0.004])
    >>> sim.log_likelihood(obs.x, [[0.3], [0.37]], obs.design).shape
    (2, 1)
    """

    feature_names = ("x",)
    events_per_experiment = 1

    def __init__(self, *, min_error: float = MIN_ERROR, max_error: float = MAX_ERROR) -> None:
        if not (0 < min_error < max_error and math.isfinite(max_error)):
            raise ValidationError(
                f"need 0 < min_error < max_error (finite), got min_error={min_error!r}, "
                f"max_error={max_error!r}"
            )
        self.min_error = float(min_error)
        self.max_error = float(max_error)
        self.parameters = PARAMETERS
        self.designs = Space(
            [
                Real("energy", 0.0, 1.0, label="energy"),
                Real("error", self.min_error, self.max_error, label="error"),
            ]
        )

    def __repr__(self) -> str:
        return f"InformativeMeasurement(min_error={self.min_error:g}, max_error={self.max_error:g})"

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _mean_and_error(theta: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``f(theta, energy)`` and ``error`` per row: both shape ``(m,)``."""
        return response(theta[:, 0], design[:, 0]), design[:, 1]

    @staticmethod
    def _column(values: Any, name: str) -> np.ndarray:
        """Measurements as one column ``(n, 1)`` (``(n,)`` is accepted)."""
        arr = np.asarray(values, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != 1:
            raise ShapeError(f"{name} must have shape (n, 1), got {np.shape(values)}")
        if not np.isfinite(arr).all():
            raise ValidationError(f"{name} contains NaN or infinite values")
        return arr

    def _latent_rows(self, z: Any, theta: Any, design: Any) -> tuple[np.ndarray, ...]:
        th, de, n = self.rows(theta, design)
        zz = self._column(z, "z")
        if n not in (1, len(zz)):
            raise ShapeError(f"z has {len(zz)} rows but theta/design have {n}")
        mean, error = self._mean_and_error(th, de)
        return zz[:, 0], mean, error, de

    # -- simulator -----------------------------------------------------------------------------
    def _sample(
        self, theta: np.ndarray, design: np.ndarray, n: int, rng: np.random.Generator
    ) -> Events:
        """One measurement per row; the latent is the measurement itself (``z = x``).

        Parameters
        ----------
        theta : numpy.ndarray
            Shape ``(m, 1)``, ``m`` either 1 or ``n``.
        design : numpy.ndarray
            Shape ``(m', 2)``, columns ``energy, error``.
        n : int
            Number of events.
        rng : numpy.random.Generator
            Source of randomness.

        Returns
        -------
        Events
            ``x`` and ``z``, both of shape ``(n, 1)``.
        """
        mean, error = self._mean_and_error(theta, design)
        x = (mean + error * rng.standard_normal(n))[:, None]
        return Events(x=x, z=x.copy())

    def joint_log_prob(self, z: Any, theta: Any, design: Any) -> np.ndarray:
        """``log N(z; f(theta, energy), error^2)`` per row (exact: ``z`` is ``x``).

        Parameters
        ----------
        z : array_like
            Latents, shape ``(n, 1)`` (or ``(n,)``).
        theta : array_like or mapping
            Shape ``(n, 1)`` or one point ``(1,)``.
        design : array_like or mapping
            Shape ``(n, 2)`` or one point ``(2,)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n,)``.
        """
        zz, mean, error, _ = self._latent_rows(z, theta, design)
        r = (zz - mean) / error
        return -0.5 * r * r - np.log(error) - _LOG_SQRT_2PI

    def joint_score(self, z: Any, theta: Any, design: Any) -> np.ndarray:
        """Gradient of :meth:`joint_log_prob` in ``theta``: ``(z - f) s(E) / error^2``.

        Parameters
        ----------
        z, theta, design
            As in :meth:`joint_log_prob`.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, 1)``.
        """
        zz, mean, error, de = self._latent_rows(z, theta, design)
        score = (zz - mean) * sensitivity(de[:, 0]) / error**2
        return score[:, None]

    def log_likelihood(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Exact ``log p(x | theta, design)`` on a grid of ``theta`` at one design.

        Parameters
        ----------
        x : array_like
            Measurements, shape ``(n_x, 1)`` (or ``(n_x,)``).
        theta : array_like or mapping
            Parameter points, shape ``(n_theta, 1)``, or one point ``(1,)``.
        design : array_like or mapping
            One design, shape ``(2,)`` or ``(1, 2)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_theta, n_x)``; ``(n_x,)`` if ``theta`` was one point given as ``(1,)``.
        """
        th = self.parameters.validate(theta)
        de = self.designs.validate(design)
        if len(de) != 1:
            raise ShapeError(f"log_likelihood takes one design, got {len(de)}")
        xx = self._column(x, "x")[:, 0]
        energy, error = float(de[0, 0]), float(de[0, 1])
        mean = response(th[:, 0], energy)
        r = (xx[None, :] - mean[:, None]) / error
        out = -0.5 * r * r - math.log(error) - _LOG_SQRT_2PI
        return out[0] if np.ndim(theta) == 1 else out


def analytic_posterior(observations: Iterable[Observation]) -> tuple[float, float]:
    """Exact posterior mean and std of ``theta``, ignoring the prior bounds.

    With a flat prior and a response linear in ``theta``, measurements ``x_i`` at designs
    ``(E_i, error_i)`` give a Gaussian posterior of precision ``sum s(E_i)^2 / error_i^2`` and
    mean ``sum s(E_i) x_i / error_i^2 / precision``. Valid while the posterior lies many
    standard deviations inside ``[0, 1]``.

    Parameters
    ----------
    observations : iterable of Observation
        Each with ``design`` ``(energy, error)`` and ``x`` of shape ``(n, 1)``.

    Returns
    -------
    mean, std : float
        Posterior mean and standard deviation of ``theta``.

    Raises
    ------
    ValidationError
        No observations, or a design that is not ``(energy, error)`` with ``error > 0``.
    """
    precision = 0.0
    weighted = 0.0
    for obs in observations:
        design = np.asarray(obs.design, dtype=float).reshape(-1)
        if design.shape != (2,) or not design[1] > 0:
            raise ValidationError(f"expected a design (energy, error > 0), got {obs.design!r}")
        s, var = float(sensitivity(design[0])), float(design[1]) ** 2
        x = np.asarray(obs.x, dtype=float).reshape(-1)
        precision += len(x) * s * s / var
        weighted += s * float(x.sum()) / var
    if precision == 0.0:
        raise ValidationError("analytic_posterior needs at least one measurement")
    return weighted / precision, 1.0 / math.sqrt(precision)


def task(*, min_error: float = MIN_ERROR, max_error: float = MAX_ERROR) -> Task:
    """The informative measurement model as an :class:`activesci.tasks.Task`.

    Parameters
    ----------
    min_error, max_error : float
        Range of the design ``error``, passed to :class:`InformativeMeasurement`.

    Returns
    -------
    Task
        Named ``"informative_measurement"`` with truth ``theta = 0.37``. The baselines are
        the most informative design (``fixed``: ``energy = 1`` at the smallest error) and a
        scan over three energies at the smallest error.
    """
    sim = InformativeMeasurement(min_error=min_error, max_error=max_error)
    return Task(
        name="informative_measurement",
        simulator=sim,
        truth={"theta": 0.37},
        description=(
            "One Gaussian measurement x ~ N(theta * (0.5 + energy), error^2) per experiment, "
            f"theta uniform on [0, 1], design energy in [0, 1] and error in [{min_error:g}, "
            f"{max_error:g}]; the posterior is Gaussian and known exactly."
        ),
        options={"min_error": min_error, "max_error": max_error},
        strategy_options={
            "fixed": {"design": [1.0, min_error]},
            "scan": {"designs": [[0.0, min_error], [0.5, min_error], [1.0, min_error]]},
        },
    )
