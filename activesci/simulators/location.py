"""Location finding: where are ``K`` hidden sources? (Foster et al., "Deep Adaptive Design", 2021).

``K`` sources sit at unknown positions ``theta_k`` in ``R^dim``. A measurement at the design
point ``xi`` records the log of the total signal intensity with Gaussian noise::

    mu(theta, xi) = b + sum_k alpha_k / (m + ||theta_k - xi||^2)
    y = log mu(theta, xi) + eps,    eps ~ N(0, sigma^2)

with the DAD benchmark's ``b = 0.1`` (background), ``m = 1e-4`` ("max signal": it caps each
source's intensity at ``alpha_k / m``), ``alpha_k = 1``, ``sigma = 0.5``, ``K = 2`` sources in
``dim = 2`` dimensions and the prior ``theta_k ~ N(0, I)``. One experiment records one
measurement, so the count carries no information (no ``expected_count``). There is no latent:
``z = x = y``, so ``joint_log_prob`` and ``log_likelihood`` are the exact Gaussian density.

Differences from DAD: the prior is truncated at ``+-bound`` (default 4) in every coordinate
(a mass of ``2 Phi(-4) = 6.3e-5`` per coordinate), and the design is bounded to
``[-design_bound, design_bound]`` per coordinate (default 4), where DAD's design network may
emit any point of ``R^dim``; the optimal designs lie near the sources, well inside.

With equal ``alpha_k`` the likelihood is invariant under permuting the sources, so every
posterior has ``K!`` symmetric modes (label switching).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from activesci.errors import ShapeError, ValidationError
from activesci.simulators.base import SimulatorBase
from activesci.spaces import Normal, Real, Space
from activesci.typing import MAX_DIM, Events, check_count, check_positive

__all__ = ["LocationFindingSimulator", "axis_names"]


def axis_names(dim: int) -> tuple[str, ...]:
    """Names of the coordinate axes: ``x, y, z``, then ``a3, a4, ...``.

    Examples
    --------
    >>> axis_names(5)
    ('x', 'y', 'z', 'a3', 'a4')
    """
    return tuple("xyz"[i] if i < 3 else f"a{i}" for i in range(dim))


def _non_negative(value: Any, name: str) -> float:
    """``value`` as a float if it is a finite number >= 0, else a ValidationError."""
    ok = not isinstance(value, bool | str | bytes)
    try:
        number = float(value) if ok else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise ValidationError(f"{name} must be a non-negative finite number, got {value!r}")
    return number


class LocationFindingSimulator(SimulatorBase):
    """``y = log(b + sum_k alpha_k / (m + ||theta_k - xi||^2)) + N(0, sigma^2)``.

    Parameters
    ----------
    n_sources : int
        Number of sources ``K``, at least 1.
    dim : int
        Dimension of space, at least 1; ``n_sources * dim`` is at most
        :data:`activesci.typing.MAX_DIM` (64).
    sigma : float
        Standard deviation of the measurement noise on ``log mu`` (> 0).
    base_signal : float
        Background intensity ``b`` (>= 0).
    max_signal : float
        ``m`` (> 0): a source's intensity at zero distance is ``alpha_k / m``.
    alpha : float or sequence of float
        Strength of each source (> 0): one number for all, or ``n_sources`` numbers.
    bound : float
        The prior ``N(0, 1)`` of each coordinate is truncated to ``[-bound, bound]``.
    design_bound : float
        Each design coordinate lies in ``[-design_bound, design_bound]``.

    Attributes
    ----------
    parameters : Space
        ``s1_x, s1_y, s2_x, s2_y, ...``: source ``k`` (from 1) along each axis
        (:func:`axis_names`); columns are ordered source by source.
    designs : Space
        ``xi_x, xi_y, ...``: where the measurement is taken.

    Examples
    --------
    >>> import numpy as np
    >>> sim = LocationFindingSimulator()
    >>> sim.parameters.names, sim.designs.names
    (['s1_x', 's1_y', 's2_x', 's2_y'], ['xi_x', 'xi_y'])
    >>> theta = {"s1_x": 0.5, "s1_y": 0.0, "s2_x": -1.0, "s2_y": 1.0}
    >>> obs = sim.run_experiment(theta, {"xi_x": 0.5, "xi_y": 0.0}, np.random.default_rng(0))
    >>> obs.x.shape
    (1, 1)
    >>> round(float(sim.log_signal(theta, [0.5, 0.0])[0]), 4)  # log(0.1 + 1e4 + 1 / 3.2501)
    9.2104
    """

    #: One experiment is one measurement.
    events_per_experiment = 1
    feature_names = ("y",)

    def __init__(
        self,
        n_sources: int = 2,
        dim: int = 2,
        *,
        sigma: float = 0.5,
        base_signal: float = 0.1,
        max_signal: float = 1e-4,
        alpha: float | Sequence[float] = 1.0,
        bound: float = 4.0,
        design_bound: float = 4.0,
    ) -> None:
        n_sources = check_count(n_sources, "n_sources", minimum=1, maximum=MAX_DIM)
        dim = check_count(dim, "dim", minimum=1, maximum=MAX_DIM)
        if n_sources * dim > MAX_DIM:
            raise ValidationError(
                f"n_sources * dim must be at most {MAX_DIM} parameters, got "
                f"{n_sources} * {dim} = {n_sources * dim}"
            )
        self.sigma = check_positive(sigma, "sigma")
        self.base_signal = _non_negative(base_signal, "base_signal")
        self.max_signal = check_positive(max_signal, "max_signal")
        self.alpha = self._check_alpha(alpha, n_sources)
        bound = check_positive(bound, "bound")
        design_bound = check_positive(design_bound, "design_bound")
        self.n_sources, self.dim = n_sources, dim
        self.bound, self.design_bound = bound, design_bound
        self.prior = Normal(0.0, 1.0)
        axes = axis_names(dim)
        self.parameters = Space(
            [
                Real(f"s{k + 1}_{a}", -bound, bound, prior=self.prior, label=f"source {k + 1} {a}")
                for k in range(n_sources)
                for a in axes
            ]
        )
        self.designs = Space(
            [Real(f"xi_{a}", -design_bound, design_bound, label=f"ξ {a}") for a in axes]
        )
        with np.errstate(divide="ignore"):  # b = 0: log b = -inf drops out of the logsumexp
            self._log_b = float(np.log(self.base_signal))
        self._log_alpha = np.log(self.alpha)

    @staticmethod
    def _check_alpha(alpha: Any, n_sources: int) -> np.ndarray:
        values = np.atleast_1d(np.asarray(alpha, dtype=object))
        if values.ndim != 1 or len(values) not in (1, n_sources):
            raise ValidationError(
                f"alpha must be one positive number or {n_sources} (one per source), got "
                f"{alpha!r:.80}"
            )
        names = ["alpha"] if np.ndim(alpha) == 0 else [f"alpha[{k}]" for k in range(len(values))]
        out = [check_positive(a, name) for a, name in zip(values, names, strict=True)]
        return np.broadcast_to(np.array(out, dtype=float), (n_sources,)).copy()

    def __repr__(self) -> str:
        alpha = self.alpha[0] if np.all(self.alpha == self.alpha[0]) else self.alpha.tolist()
        return (
            f"LocationFindingSimulator(n_sources={self.n_sources}, dim={self.dim}, "
            f"sigma={self.sigma:g}, base_signal={self.base_signal:g}, "
            f"max_signal={self.max_signal:g}, alpha={alpha})"
        )

    # -- the signal -----------------------------------------------------------------------------
    def _log_mu(self, theta: np.ndarray, design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log mu`` ``(n,)`` and its gradient in ``theta`` ``(n, P)``.

        Rows of ``theta`` ``(n or 1, P)`` and ``design`` ``(n or 1, D)`` broadcast. Returns
        ``log_mu`` and ``grad`` ``(n, P)``: the gradient of ``log mu`` in ``theta``,
        ``-2 w_k (theta_k - xi) / (m + d_k^2)`` with ``w_k = alpha_k / (m + d_k^2) / mu``.
        """
        diff = theta.reshape(len(theta), self.n_sources, self.dim) - design[:, None, :]
        denom = self.max_signal + (diff * diff).sum(axis=2)  # (n, K)
        terms = self._log_alpha - np.log(denom)  # log of each source's intensity
        top = np.maximum(terms.max(axis=1), self._log_b)  # the log-sum-exp, by hand
        total = np.exp(terms - top[:, None]).sum(axis=1) + np.exp(self._log_b - top)
        log_mu = top + np.log(total)
        share = np.exp(terms - log_mu[:, None])  # w_k, in [0, 1]
        # |diff| / denom <= 1 / sqrt(denom): finite even where 1 / m overflows
        grad = (-2.0 * share[:, :, None] * (diff / denom[:, :, None])).reshape(len(log_mu), -1)
        return log_mu, grad

    def log_signal(self, theta: Any, design: Any) -> np.ndarray:
        """``log mu(theta, xi)`` per row, shape ``(n,)``; rows broadcast as in :meth:`sample`."""
        th, de, _ = self.rows(theta, design)
        return self._log_mu(th, de)[0]

    # -- the protocol ---------------------------------------------------------------------------
    def _sample(
        self, theta: np.ndarray, design: np.ndarray, n: int, rng: np.random.Generator
    ) -> Events:
        log_mu = np.broadcast_to(self._log_mu(theta, design)[0], (n,))
        y = (log_mu + self.sigma * rng.standard_normal(n))[:, None]
        return Events(x=y, z=y.copy())

    def _features(self, x: Any, name: str) -> np.ndarray:
        arr = np.asarray(x, dtype=float)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != 1:
            raise ShapeError(f"{name} must have shape (n, 1) or (n,), got {np.shape(x)}")
        if not np.isfinite(arr).all():
            raise ValidationError(f"{name} contains NaN or infinite values")
        return arr

    def _joint(self, z: Any, theta: Any, design: Any) -> tuple[np.ndarray, ...]:
        th, de, n = self.rows(theta, design)
        zz = self._features(z, "z")
        if n not in (1, len(zz)):
            raise ShapeError(f"z has {len(zz)} rows but theta/design have {n}")
        log_mu, grad = self._log_mu(th, de)
        return zz[:, 0], log_mu, grad

    def joint_log_prob(self, z: Any, theta: Any, design: Any) -> np.ndarray:
        """``log N(z; log mu(theta, xi), sigma^2)`` per row, shape ``(n,)`` (here ``z = x``)."""
        y, log_mu, _ = self._joint(z, theta, design)
        r = (y - log_mu) / self.sigma
        return -0.5 * r * r - math.log(self.sigma * math.sqrt(2 * math.pi))

    def joint_score(self, z: Any, theta: Any, design: Any) -> np.ndarray:
        """``(z - log mu) / sigma^2 * d log mu / d theta``, shape ``(n, P)``."""
        y, log_mu, grad = self._joint(z, theta, design)
        return ((y - log_mu) / self.sigma**2)[:, None] * grad

    def log_likelihood(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Exact ``log p(x | theta, design)`` on a grid: shape ``(n_theta, n_x)``.

        ``(n_x,)`` if ``theta`` was one point given as ``(P,)``.
        """
        th, de = self._one_design(theta, design)
        y = self._features(x, "x")[:, 0]
        log_mu = self._log_mu(th, de)[0]
        r = (y[None, :] - log_mu[:, None]) / self.sigma
        out = -0.5 * r * r - math.log(self.sigma * math.sqrt(2 * math.pi))
        return out[0] if np.ndim(theta) == 1 else out
