"""A Gaussian toy with a design-dependent noise and an analytic posterior.

``x ~ N(theta, sigma(phase)^2 I)`` with ``sigma(phase) = 2 + cos(phase)``: the best design is
``phase = pi`` (``sigma = 1``), the worst ``phase = 0`` (``sigma = 3``). With the normal prior
``N(prior_mean, prior_std^2)`` per component the posterior is normal and known in closed form,
which makes this the ground truth for tests of inference and design, and a first example for
teaching. There is no latent: ``z = x``, so the "gold" is the exact likelihood itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from activesci.errors import ShapeError, ValidationError
from activesci.simulators.base import SimulatorBase
from activesci.spaces import Normal, Real, Space
from activesci.typing import MAX_DIM, MAX_EVENTS, Events, Observation, check_count, check_positive

__all__ = ["GaussianSimulator"]


class GaussianSimulator(SimulatorBase):
    """``x ~ N(theta, (2 + cos(phase))^2 I)`` in ``dim`` dimensions.

    Parameters
    ----------
    dim : int
        Number of parameters ``mu0, mu1, ...`` (and of features), 1 to
        :data:`activesci.typing.MAX_DIM` (64).
    prior_mean, prior_std : float
        Normal prior of each parameter, truncated to ``prior_mean +- bound * prior_std``.
    bound : float
        Half-width of the parameter box in prior standard deviations (the truncation changes
        the prior mass by ``2 * Phi(-bound)``, 6e-7 for the default 5).
    events_per_experiment : int
        Events recorded by one experiment (fixed: this toy has no Poisson count).

    Examples
    --------
    >>> import numpy as np
    >>> sim = GaussianSimulator()
    >>> obs = sim.run_experiment([0.5], [np.pi], np.random.default_rng(0))
    >>> mean, std = sim.posterior([obs])
    >>> round(float(std[0]), 4)  # 1 / sqrt(1 + 10 / 1^2)
    0.3015
    """

    def __init__(
        self,
        dim: int = 1,
        *,
        prior_mean: float = 0.0,
        prior_std: float = 1.0,
        bound: float = 5.0,
        events_per_experiment: int = 10,
    ) -> None:
        dim = check_count(dim, "dim", minimum=1, maximum=MAX_DIM)
        events_per_experiment = check_count(
            events_per_experiment, "events_per_experiment", minimum=1, maximum=MAX_EVENTS
        )
        bound = check_positive(bound, "bound")
        prior_std = check_positive(prior_std, "prior_std")
        if isinstance(prior_mean, bool) or not isinstance(prior_mean, int | float | np.number):
            raise ValidationError(f"prior_mean must be a finite number, got {prior_mean!r:.80}")
        prior = Normal(float(prior_mean), prior_std)
        lo, hi = prior_mean - bound * prior_std, prior_mean + bound * prior_std
        self.prior = prior
        self.parameters = Space([Real(f"mu{i}", lo, hi, prior=prior) for i in range(dim)])
        self.designs = Space([Real("phase", 0.0, 2.0 * math.pi, unit="rad", label="phase")])
        self.events_per_experiment = events_per_experiment
        self.feature_names = tuple(f"x{i}" for i in range(dim))

    def __repr__(self) -> str:
        return (
            f"GaussianSimulator(dim={len(self.parameters)}, prior={self.prior}, "
            f"events_per_experiment={self.events_per_experiment})"
        )

    @staticmethod
    def noise(design: Any) -> np.ndarray:
        """The noise standard deviation ``2 + cos(phase)`` for designs ``(n, 1)``."""
        return 2.0 + np.cos(np.asarray(design, dtype=float)[..., 0])

    def _sample(
        self, theta: np.ndarray, design: np.ndarray, n: int, rng: np.random.Generator
    ) -> Events:
        x = theta + self.noise(design)[:, None] * rng.standard_normal((n, theta.shape[1]))
        return Events(x=x, z=x.copy())

    def _features(self, x: Any, name: str) -> np.ndarray:
        arr = np.asarray(x, dtype=float)
        dim = len(self.parameters)
        if arr.ndim == 1 and dim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise ShapeError(f"{name} must have shape (n, {dim}), got {np.shape(x)}")
        if not np.isfinite(arr).all():
            raise ValidationError(f"{name} contains NaN or infinite values")
        return arr

    def joint_log_prob(self, z: Any, theta: Any, design: Any) -> np.ndarray:
        """``log N(z; theta, sigma^2 I)`` per row, shape ``(n,)`` (here ``z`` is ``x``)."""
        th, de, n = self.rows(theta, design)
        zz = self._features(z, "z")
        if n not in (1, len(zz)):
            raise ShapeError(f"z has {len(zz)} rows but theta/design have {n}")
        sigma = self.noise(de)
        r = (zz - th) / sigma[:, None]
        return -0.5 * (r * r).sum(axis=1) - zz.shape[1] * np.log(sigma * math.sqrt(2 * math.pi))

    def joint_score(self, z: Any, theta: Any, design: Any) -> np.ndarray:
        """``(z - theta) / sigma^2``, shape ``(n, P)``."""
        th, de, n = self.rows(theta, design)
        zz = self._features(z, "z")
        if n not in (1, len(zz)):
            raise ShapeError(f"z has {len(zz)} rows but theta/design have {n}")
        return (zz - th) / (self.noise(de) ** 2)[:, None]

    def log_likelihood(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Exact ``log p(x | theta, design)`` on a grid: shape ``(n_theta, n_x)``.

        ``(n_x,)`` if ``theta`` was one point given as ``(P,)``.
        """
        th, de = self._one_design(theta, design)
        xx = self._features(x, "x")
        sigma = float(self.noise(de)[0])
        d2 = ((xx[None, :, :] - th[:, None, :]) ** 2).sum(axis=2)
        out = -0.5 * d2 / sigma**2 - xx.shape[1] * math.log(sigma * math.sqrt(2 * math.pi))
        return out[0] if np.ndim(theta) == 1 else out

    def posterior(self, observations: Iterable[Observation]) -> tuple[np.ndarray, np.ndarray]:
        """Analytic posterior mean and std of each parameter after ``observations``.

        Ignores the truncation of the prior at ``bound`` standard deviations.
        """
        precision = np.full(len(self.parameters), 1.0 / self.prior.std**2)
        weighted = precision * self.prior.mean
        for obs in observations:
            x = self._features(obs.x, "Observation.x")
            var = float(self.noise(self.designs.validate(obs.design))[0]) ** 2
            precision = precision + len(x) / var
            weighted = weighted + x.sum(axis=0) / var
        return weighted / precision, 1.0 / np.sqrt(precision)
