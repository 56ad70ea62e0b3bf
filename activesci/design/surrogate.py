"""The EIG curve a person sees: a surrogate fitted for the plot, not for choosing designs.

The optimiser's own surrogate (skopt's Gaussian process on the raw EIG) chooses the designs and
is left alone. On the flagship it is a poor picture: the EIG is a narrow peak (the Z resonance,
2.5 GeV wide in a 190 GeV range) on a nearly flat background, the fitted length scale collapses
onto the peak, and between evaluations the mean rises back to the average of all evaluations,
so the plotted curve ripples where the EIG is flat.

:func:`eig_surrogate` fits a separate Gaussian process to the *warped* EIG,
``z = log(max(EIG, 0) + c)`` with a floor ``c`` of a percent of the largest EIG, whose prior
mean is the lower quartile of ``z`` and whose length scale is bounded below. Away from the data
the curve returns to the background: most of the range is background, but the optimiser puts
half of a round's evaluations on the peak, so the median would sit at the background's upper
edge and the curve would rise between evaluations there. In log space a resonance is a broad
bump (the log of a Lorentzian falls off like ``-2 log|x - m|``), so one length scale fits the
peak and the background; transformed back, whatever wiggles remain on the background are a
small fraction of ``c``. The Monte Carlo standard errors enter as per-point noise (delta method:
``stderr / (EIG + c)``). The kernel is a Matern 3/2 (the best marginal likelihood of nu = 1/2,
3/2, 5/2 and infinity on the flagship's first round); the length scale's floor, 2% of the range
(3.8 GeV on the flagship), keeps noisy neighbours on the peak from pulling it to a ripple.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from activesci.errors import ValidationError

__all__ = ["SurrogateCurve", "eig_surrogate"]


@dataclass(frozen=True)
class SurrogateCurve:
    """A surrogate of the EIG at ``n`` points.

    Attributes
    ----------
    mean : numpy.ndarray
        ``(n,)`` the best guess (the back-transformed median of the warped GP) [nats].
    lower, upper : numpy.ndarray
        ``(n,)`` the back-transformed ±1σ band of the warped GP (asymmetric) [nats].
    std : numpy.ndarray
        ``(n,)`` half the band's width: a symmetric summary for plots that want one [nats].
    """

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    std: np.ndarray


def eig_surrogate(
    designs: Any,
    values: Any,
    points: Any,
    bounds: Any,
    *,
    stderr: Any = None,
    floor: float = 0.01,
    min_length_scale: float = 0.02,
    seed: int = 0,
) -> SurrogateCurve:
    """Fit a log-warped Gaussian process to EIG evaluations and predict it at ``points``.

    Parameters
    ----------
    designs : array_like
        ``(n, D)`` evaluated designs.
    values : array_like
        ``(n,)`` their EIG estimates [nats] (Monte Carlo estimates may be slightly negative).
    points : array_like
        ``(m, D)`` where to predict.
    bounds : array_like
        ``(D, 2)`` the design space's bounds; distances are measured in units of its width.
    stderr : array_like, optional
        ``(n,)`` the estimates' standard errors (noise of the fit); 0 when omitted.
    floor : float
        The warp's floor ``c`` as a fraction of the largest EIG.
    min_length_scale : float
        Lower bound of the length scale, as a fraction of each dimension's width.
    seed : int
        Seeds the restarts of the hyperparameter fit (the curve is deterministic).

    Returns
    -------
    SurrogateCurve
        Mean, band and half-width at ``points`` [nats].

    Examples
    --------
    >>> x = np.linspace(0.0, 1.0, 12)[:, None]
    >>> curve = eig_surrogate(x, np.exp(-(x[:, 0] - 0.5) ** 2 / 0.01), x, [[0.0, 1.0]])
    >>> bool(np.allclose(curve.mean, np.exp(-(x[:, 0] - 0.5) ** 2 / 0.01), atol=0.05))
    True
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern

    x = np.atleast_2d(np.asarray(designs, dtype=float))
    y = np.asarray(values, dtype=float).ravel()
    at = np.atleast_2d(np.asarray(points, dtype=float))
    box = np.atleast_2d(np.asarray(bounds, dtype=float))
    if len(x) != len(y) or len(y) == 0:
        raise ValidationError(f"give one EIG value per design: {len(x)} design(s), {len(y)}")
    if box.shape != (x.shape[1], 2) or at.shape[1] != x.shape[1]:
        raise ValidationError(f"bounds {box.shape} and points {at.shape} do not match {x.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValidationError("the designs and EIG values must be finite")
    se = np.zeros_like(y) if stderr is None else np.asarray(stderr, dtype=float).ravel()
    se = np.where(np.isfinite(se), np.abs(se), 0.0)
    lo, width = box[:, 0], np.where(box[:, 1] > box[:, 0], box[:, 1] - box[:, 0], 1.0)

    positive = np.clip(y, 0.0, None)
    c = floor * positive.max() if positive.max() > 0 else max(float(np.median(se)), 1e-12)
    z = np.log(positive + c)
    prior_mean = float(np.quantile(z, 0.25))
    noise = (se / (positive + c)) ** 2 + 1e-6
    gp = GaussianProcessRegressor(
        ConstantKernel(1.0, (1e-4, 1e3))
        * Matern(
            length_scale=np.full(x.shape[1], 0.1),
            length_scale_bounds=(min_length_scale, 10.0),
            nu=1.5,
        ),
        alpha=noise,
        normalize_y=False,
        n_restarts_optimizer=2,
        random_state=seed,
    )
    with warnings.catch_warnings():
        # a length scale at its lower bound is the bound doing its job, not a failed fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit((x - lo) / width, z - prior_mean)
    mu, sd = gp.predict((at - lo) / width, return_std=True)
    mu = mu + prior_mean
    mean, lower, upper = (np.exp(mu + k * sd) - c for k in (0.0, -1.0, 1.0))
    return SurrogateCurve(mean=mean, lower=lower, upper=upper, std=(upper - lower) / 2)
