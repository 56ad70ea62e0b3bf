"""The self-check of a learned posterior: should it be trusted, should it be retrained.

:func:`self_check`, from the same simulations and the posterior: the shift the
calibration made (in posterior standard deviations: large means the estimator was far off),
the Monte Carlo uncertainty of the calibration, the width ratios implied by the learned score's
moments (gold only: its curvature ``E[t_hat t_joint^T]`` against the information its best
linear function carries, as matrices, so that errors mixing correlated parameters show) and
the edge mass. ``ok`` is False with readable ``warnings`` when the learned posterior should
not be trusted; :func:`severity` says how far a check is from asking for a retraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from activesci.inference.sequential import CalibratedEstimator
from activesci.inference.truncation import edge_mass
from activesci.spaces import Space

__all__ = ["self_check", "severity"]

#: Thresholds of the self-check.
MAX_CALIBRATION_SHIFT = 1.0  # posterior std: a larger correction means the estimator was off
MAX_CALIBRATION_ERROR = 0.2  # posterior std
WIDTH_TOLERANCE = 0.05
MAX_FIT_RESIDUAL = 0.2  # posterior std: the bias is not the smooth function the fit assumes
MAX_EDGE_MASS = 1e-3


def _implied_widths(cov: np.ndarray, learned: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Learned / right marginal width of each parameter ``(P,)``, from the score's moments.

    The calibrated log ratio's curvature is ``learned`` = ``sum_d n_d E[t t_joint^T]`` (the
    events' part of the posterior precision ``cov^-1``). What the learned score ``t`` does
    carry is ``linear`` = ``sum_d n_d C^T Cov(t)^-1 C`` (``C = E[t t_joint^T]``), the Fisher
    information of the best linear function of ``t``: for a score ``A`` times the true one
    it is the true information, and a score with noise gets less (its posterior scatters
    more than its width says). Comparing the two as matrices, not parameter by parameter,
    sees a score whose errors mix parameters: with correlated parameters (the line shape's
    sin^2 theta_W and Gamma_Z) a small error in the correlation moves a marginal a lot.
    """
    precision = np.linalg.inv(cov)
    right = precision - learned + 0.5 * (linear + linear.T)
    values, vectors = np.linalg.eigh(0.5 * (right + right.T))
    floor = 1e-9 * max(float(np.max(np.linalg.eigvalsh(precision))), 1e-300)
    right_cov = (vectors / np.maximum(values, floor)) @ vectors.T
    return np.sqrt(np.diag(cov) / np.diag(right_cov))


def self_check(
    posterior: Any,
    estimator: CalibratedEstimator,
    observations: Sequence[Any],
    bounds: np.ndarray,
    prior: Space,
) -> dict[str, Any]:
    """Is the learned posterior to be trusted? Cheap checks from the calibration's simulations.

    Parameters
    ----------
    posterior : GridPosterior
        The posterior built with ``estimator`` from ``observations``.
    estimator : CalibratedEstimator
        Its calibration records are used (each observation's design is calibrated).
    observations : sequence of Observation
        The data so far.
    bounds : array_like
        The truncation region ``(P, 2)``.
    prior : Space
        The full prior (its bounds are not truncations).

    Returns
    -------
    dict
        ``calibration_shift`` (how far the calibration moved the posterior mean, in posterior
        std, per parameter), ``calibration_error`` (its Monte Carlo uncertainty, same units),
        ``width_ratios`` (learned / true width of each parameter implied by the learned
        score's moments, compared as matrices: :func:`_implied_widths`; gold only, else
        None), ``width_ratio`` (the one farthest from 1), ``edge_mass``, ``ok``,
        ``warnings`` (sentences) and ``retrain``: the finding a fresh training can fix (a
        bias no smooth correction removes, a wrong width), else None; the learner then
        retrains once.
    """
    mean, cov = posterior.mean(), posterior.cov()
    std = np.sqrt(np.diag(cov))
    grid, weights = posterior._weighted()
    total = np.zeros(len(grid))
    slope_var = np.zeros(len(mean))
    misfit = np.zeros(len(mean))
    learned_info, linear_info = np.zeros((len(mean), len(mean))), np.zeros((len(mean), len(mean)))
    # without gold (or from a stored record that predates the matrices) there is no width check
    moments = True
    counts: dict[tuple[float, ...], int] = {}
    for obs in observations:
        key = CalibratedEstimator._key(obs.design)
        counts[key] = counts.get(key, 0) + obs.n
    for key, n in counts.items():
        rec = estimator.calibrate(np.asarray(key))
        total += n * estimator.correction(grid, np.asarray(key))
        centre_err = np.asarray(rec["gradient_error"])[int(rec["centre_index"])]
        slope_var += (n * centre_err) ** 2
        misfit += n * np.asarray(rec["fit_residual"])
        c, m = rec.get("information_matrix"), rec.get("score_covariance")
        if c is None or m is None:
            moments = False
            continue
        c, m = np.asarray(c, dtype=float), np.asarray(m, dtype=float)
        learned_info += n * 0.5 * (c + c.T)
        linear_info += n * c.T @ np.linalg.pinv(m, rcond=1e-10, hermitian=True) @ c
    # the posterior without calibration is this one times exp(+total): its mean, by reweighting
    log_w = np.log(np.maximum(weights, 1e-300)) + total
    raw = np.exp(log_w - log_w.max())
    raw /= raw.sum()
    raw_mean = raw @ grid
    shift = (raw_mean - mean) / std
    error = np.sqrt(np.diag(cov @ np.diag(slope_var) @ cov)) / std
    # what the fit leaves unexplained, beyond its Monte Carlo noise, moves the mean like a slope
    excess = np.sqrt(np.maximum(misfit**2 - slope_var, 0.0))
    residual = np.abs(cov @ excess) / std
    widths = _implied_widths(cov, learned_info, linear_info) if moments and counts else None
    width = None if widths is None else float(widths[np.argmax(np.abs(widths - 1.0))])
    edge = edge_mass(posterior, bounds, prior)
    warnings, retrain = [], None
    if np.max(np.abs(shift)) > MAX_CALIBRATION_SHIFT:
        warnings.append(
            f"the learned estimator was biased by {np.max(np.abs(shift)):.1f} posterior std "
            f"before calibration: retrain with more samples or a larger network"
        )
    if np.max(error) > MAX_CALIBRATION_ERROR:
        warnings.append(
            f"the calibration is uncertain by {np.max(error):.2f} posterior std: it needs more "
            f"simulations (calibration events)"
        )
    if np.max(residual) > MAX_FIT_RESIDUAL:
        retrain = (
            f"the learned score's bias varies more than a smooth correction can remove "
            f"({np.max(residual):.2f} posterior std)"
        )
        warnings.append(f"{retrain}: retrain with more samples")
    if width is not None and abs(width - 1.0) > WIDTH_TOLERANCE:
        warnings.append(
            f"the learned score's moments imply a posterior width {width:.2f} times the true one"
        )
        retrain = retrain or warnings[-1]
    if edge > MAX_EDGE_MASS:
        warnings.append(
            f"{edge:.1e} of the posterior lies at the edge of the truncation region: the "
            f"region will be widened"
        )
    return {
        "calibration_shift": shift.tolist(),
        "calibration_error": error.tolist(),
        "fit_residual": residual.tolist(),
        "width_ratio": width,
        "width_ratios": None if widths is None else widths.tolist(),
        "edge_mass": edge,
        "ok": not warnings,
        "warnings": warnings,
        "retrain": retrain,
    }


def severity(check: dict[str, Any]) -> float:
    """How far a :func:`self_check` is past what a fresh training can fix, in thresholds.

    The larger of the fit residual over ``MAX_FIT_RESIDUAL`` and the implied width's distance
    from 1 over ``WIDTH_TOLERANCE``: above 1 the check asks for a retraining. Of two
    estimators checked on the same data, the learner keeps the one with the lower severity.
    """
    residual = max(check["fit_residual"], default=0.0) / MAX_FIT_RESIDUAL
    width = check.get("width_ratio")
    return max(residual, 0.0 if width is None else abs(width - 1.0) / WIDTH_TOLERANCE)
