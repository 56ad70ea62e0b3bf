"""Inference that follows the posterior: score calibration.

A learned ratio estimator trained once on the whole prior cannot keep up with a posterior that
shrinks round after round: its per-event errors are small, but they are *systematic*, so they
add up over the events. A mean error ``b`` of the learned score ``t_hat = d log r_hat / d theta``
shifts the posterior mean by ``b / I`` (``I`` the Fisher information per event), that is by
``b sqrt(N / I)`` posterior standard deviations after ``N`` events: the drift grows like
``sqrt(N)``. Three parts keep it in check.

**Truncation** (:mod:`activesci.inference.truncation`): the local estimator is trained on the
prior restricted to a box that holds the posterior.

**Score calibration** (:class:`CalibratedEstimator`). For the true likelihood, the score has
mean zero under its own parameters: ``E_{x ~ p(x | theta)}[t(x | theta)] = 0`` for every
``theta``. For a learned one, ``g(theta) = E[t_hat(x | theta)]`` is its bias, and subtracting
``c(theta)`` with ``grad c = g`` from every event's ``log r_hat`` makes the expected
log-likelihood stationary at the truth, whatever the truth. ``g`` is estimated by simulation at
a few points of ``R`` and design by design; ``c`` is the quadratic whose gradient fits them
best. Where the simulator has a joint score (gold), ``E[t(x, z | theta)] = 0`` exactly, so
``mean(t_hat - t_joint)`` estimates ``g`` with a control variate whose variance is only the
detector's smearing: 50,000 events per point calibrate 10^5 observed events to a few hundredths
of a standard deviation. Without gold (CARL), plain Monte Carlo needs far more simulations,
and the self-check says when it had too few.

Two refinements. The calibration follows the posterior (:func:`focus_region`, its mean +- 4
standard deviations): the quadratic and the score map are centred there and scaled to it, and
they are measured again when the posterior has narrowed twofold or moved. In 1-D the points
are an even grid over the truncation region. With several parameters the grid is often tens
of posterior widths across while a classifier's bias swings over it, and a quadratic fitted
across it missed the slope at the posterior by up to 0.36 standard deviations on the line
shape. So the points are a Latin hypercube over the region plus a star in the focus (its
centre and half-way to each face), and the fit weighs them with a Gaussian kernel as wide as
the star (:func:`_calibration_weights`): the correction is the bias's Taylor expansion where
the posterior is. (Points *only* in the focus, fitted without weights, were tried earlier and
left one round 10% too narrow.) And with gold, a learned score of the wrong *scale* (too steep
in a parameter the events barely inform, which fakes information and narrows the posterior,
or too flat) is first mapped onto the joint score by a per-parameter regression ``S``; the
estimator is then evaluated at ``centre + S (theta - centre)``.

**Self-check** (:mod:`activesci.inference.selfcheck`): from the same simulations, whether the
learned posterior should be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from activesci.errors import ValidationError

__all__ = [
    "CalibratedEstimator",
    "calibration_events",
]

#: The score map steepens a learned score at most this much.
MAX_SCALE = 10.0
#: Simulated events per calibration point (per design) with one parameter; see
#: :func:`calibration_events` for several.
CALIBRATION_EVENTS = 50_000
#: With several parameters, a calibration point this many focus half-widths from the focus's
#: centre weighs exp(-1/2) of one at the centre in the quadratic's fit.
KERNEL = 0.5


# -- calibration -------------------------------------------------------------------------------
def _n_coefficients(p: int) -> int:
    return p + p * (p + 1) // 2


def _n_calibration_points(p: int) -> int:
    """How many points :func:`_calibration_points` lays out for ``p`` parameters."""
    return 7 if p == 1 else max(8, 2 * _n_coefficients(p)) + 2 * p + 1


def calibration_events(p: int) -> int:
    """Default simulated events per calibration point for ``p`` parameters.

    ``CALIBRATION_EVENTS`` at each of the 7 points of one parameter; with several, the same
    budget per design (7 x ``CALIBRATION_EVENTS``) is shared by the more points (25 for three
    parameters: 14,000 each). The quadratic pools them, and the line shape's Monte Carlo
    error of the calibration stays near 0.02 posterior standard deviations (the self-check's
    ``calibration_error``) against 0.01 with 50,000 each, at a third of the simulations.
    """
    return CALIBRATION_EVENTS * _n_calibration_points(1) // _n_calibration_points(p)


def _calibration_points(
    bounds: np.ndarray, focus: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Points ``(K, P)`` where the score bias is measured.

    In 1-D an even grid over ``bounds``. With several parameters a Latin hypercube over
    ``bounds`` (the bias's shape across the grid) plus a star in ``focus`` (its centre and
    half-way to each face: the bias's slope and curvature where the posterior is).
    """
    p = len(bounds)
    lo, hi = bounds[:, 0], bounds[:, 1]
    if p == 1:
        return lo + (hi - lo) * np.linspace(0.05, 0.95, 7)[:, None]
    k = max(8, 2 * _n_coefficients(p))
    u = (np.stack([rng.permutation(k) for _ in range(p)], axis=1) + rng.random((k, p))) / k
    centre, half = focus.mean(axis=1), 0.5 * (focus[:, 1] - focus[:, 0])
    star = centre + 0.5 * half * np.concatenate([np.zeros((1, p)), np.eye(p), -np.eye(p)])
    return np.concatenate([lo + (hi - lo) * u, star])


def _calibration_weights(u: np.ndarray) -> np.ndarray:
    """Least-squares weights ``(K,)`` of calibration points at ``u`` ``(K, P)``.

    ``u`` is in focus half-widths from the focus's centre. A Gaussian kernel as wide as the
    star: the quadratic is the bias's Taylor expansion where the posterior is, rather than a
    compromise across the grid.
    """
    return np.exp(-0.5 * ((u / KERNEL) ** 2).sum(axis=1))


def _gradient_design(u: np.ndarray) -> np.ndarray:
    """Linear map from the quadratic's coefficients to its gradient at ``u`` ``(K, P)``.

    ``c(u) = b . u + 1/2 u' A u`` with symmetric ``A``: coefficients ``b`` then the upper
    triangle of ``A``; rows are ``(k, i)`` pairs of point and gradient component.
    """
    k, p = u.shape
    rows = np.zeros((k * p, _n_coefficients(p)))
    pairs = [(a, b) for a in range(p) for b in range(a, p)]
    for i in range(p):
        rows[i::p, i] = 1.0
        for m, (a, b) in enumerate(pairs):
            if a == i:
                rows[i::p, p + m] += u[:, b]
            if b == i:
                rows[i::p, p + m] += u[:, a] if a != b else 0.0
    return rows


def _quadratic(coef: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``c(u)`` for points ``(n, P)``."""
    p = u.shape[1]
    value = u @ coef[:p]
    pairs = [(a, b) for a in range(p) for b in range(a, p)]
    for m, (a, b) in enumerate(pairs):
        value = value + coef[p + m] * (u[:, a] * u[:, b] if a != b else 0.5 * u[:, a] ** 2)
    return value


class CalibratedEstimator:
    """A ratio estimator with its score bias removed, design by design (see the module doc).

    Parameters
    ----------
    estimator : RatioEstimator
        The trained estimator (anything with ``log_ratio`` and ``score``).
    simulator : Simulator
        Simulates the calibration events; its ``joint_score`` (if any) is the control variate.
    bounds : array_like
        The box ``(P, 2)`` where the estimator is used (the truncation region).
    focus : array_like, optional
        The box ``(P, 2)`` inside ``bounds`` on which the quadratic and the score map are
        centred and scaled (default: ``bounds``): the posterior's mean +- a few standard
        deviations. The calibration points span ``bounds``.
    events : int
        Simulated events per calibration point.
    seed : int
        Seeds the calibration simulations (with the design).
    affine : bool
        With gold, also map the learned score's scale onto the joint score's before removing
        the bias; see :meth:`calibrate`.

    Examples
    --------
    >>> import numpy as np, activesci as asci
    >>> from activesci.inference import ExactLikelihood
    >>> task = asci.tasks.gaussian()
    >>> class Biased:  # the exact likelihood with a spurious slope of 0.3 per event
    ...     def log_ratio(self, x, theta, design):
    ...         exact = ExactLikelihood(task.simulator).log_ratio(x, theta, design)
    ...         return exact + 0.3 * np.asarray(theta)[:, :1]
    ...     def score(self, x, theta, design):
    ...         sd = 2 + np.cos(np.asarray(design, dtype=float).reshape(-1)[0])
    ...         return (np.asarray(x) - np.asarray(theta)[0]) / sd**2 + 0.3
    >>> cal = CalibratedEstimator(Biased(), task.simulator, [[-1.0, 1.0]], events=20_000)
    >>> record = cal.calibrate([np.pi])
    >>> round(float(record["gradient"][0]), 2)  # the spurious slope, measured
    0.3
    """

    def __init__(
        self,
        estimator: Any,
        simulator: Any,
        bounds: Any,
        *,
        events: int = CALIBRATION_EVENTS,
        seed: int = 0,
        affine: bool = True,
        focus: Any = None,
    ) -> None:
        self.estimator = estimator
        self.simulator = simulator
        self.bounds = np.asarray(bounds, dtype=float).reshape(-1, 2)
        if len(self.bounds) != len(simulator.parameters):
            raise ValidationError(
                f"bounds must give (low, high) for each of {simulator.parameters.names}, "
                f"got {self.bounds.tolist()}"
            )
        if not (isinstance(events, int) and events >= 100):
            raise ValidationError(f"events must be an integer >= 100, got {events!r}")
        self.events = events
        self.seed = int(seed)
        self.affine = bool(affine)
        self.focus = self.bounds.copy()
        if focus is not None:
            box = np.asarray(focus, dtype=float).reshape(self.bounds.shape)
            lo = np.clip(box[:, 0], self.bounds[:, 0], self.bounds[:, 1])
            hi = np.clip(box[:, 1], self.bounds[:, 0], self.bounds[:, 1])
            self.focus = np.stack([lo, np.maximum(hi, lo + 1e-12 * (self.half_width()))], axis=1)
        self.centre = self.focus.mean(axis=1)
        self.half = 0.5 * (self.focus[:, 1] - self.focus[:, 0])
        self.gold = "joint_score" in simulator.capabilities
        self.records: dict[tuple[float, ...], dict[str, Any]] = {}

    def half_width(self) -> np.ndarray:
        """Half the width of ``bounds`` ``(P,)``."""
        return 0.5 * (self.bounds[:, 1] - self.bounds[:, 0])

    def __repr__(self) -> str:
        return (
            f"CalibratedEstimator({self.estimator!r}, bounds={self.bounds.tolist()}, "
            f"designs calibrated={len(self.records)})"
        )

    @staticmethod
    def _key(design: Any) -> tuple[float, ...]:
        return tuple(float(v) for v in np.asarray(design, dtype=float).reshape(-1))

    def calibrate(self, design: Any) -> dict[str, Any]:
        """Measure the score's scale and bias at ``design`` ``(D,)`` (once; cached).

        Two steps on the same simulations. With gold, the learned score is first mapped onto
        the joint score by a per-parameter regression ``S`` (:func:`_score_map`): ``log
        r_hat`` is evaluated at ``phi(theta) = centre + S (theta - centre)``, whose score is
        ``S t_hat``. A score too steep in a parameter the events barely inform (spurious
        information that makes the posterior too narrow) is flattened by it, and one too
        flat is steepened as far as the estimator's training region allows. Then the
        remaining bias is removed as described above.

        The record holds the points ``(K, P)``, the mean bias ``gradient`` ``(K, P)`` and its
        Monte Carlo ``gradient_error``, the fitted quadratic's ``coefficients``, the
        ``score_map`` ``S`` ``(P, P)`` (the identity without gold), and, with gold,
        ``scale`` = ``E[t t_joint] / E[t^2]`` per parameter of the mapped score ``t`` (1 for a
        score of the right size), ``raw_scale``, the same before the map,
        ``information_matrix`` = ``E[t t_joint^T]`` ``(P, P)``, the expected curvature per
        event of the calibrated log ratio whatever the score's errors (differentiate
        ``E[t(x | theta) | theta] = 0``; for a score ``a`` times the true one it is ``a``
        times the Fisher information), and ``score_covariance`` ``(P, P)``, ``t``'s
        covariance; :func:`self_check` compares the two.
        """
        key = self._key(design)
        if key in self.records:
            return self.records[key]
        sim = self.simulator
        de = sim.designs.validate(np.asarray(key)[None])
        rng = np.random.default_rng([self.seed, *np.asarray(key).view(np.uint64).tolist()])
        points = _calibration_points(self.bounds, self.focus, rng)
        samples = []
        for theta in points:
            events = sim.sample(theta[None], np.repeat(de, self.events, axis=0), rng)
            t_hat = np.asarray(self.estimator.score(events.x, theta[None], de[0]), dtype=float)
            t_joint = None
            if self.gold:
                rows = np.repeat(theta[None], self.events, axis=0)
                t_joint = np.asarray(
                    sim.joint_score(events.z, rows, np.repeat(de, self.events, axis=0)),
                    dtype=float,
                ).reshape(t_hat.shape)
            samples.append((events.x, t_hat, t_joint))
        p = len(self.centre)
        score_map = np.eye(p)
        if self.gold and self.affine:
            score_map = _score_map(
                [t for _, t, _ in samples], [j for _, _, j in samples], self._largest_scale()
            )
        grad, err = [], []
        cross, square, raw_cross, raw_square = (np.zeros(p) for _ in range(4))
        cross_matrix, score_cov = [], []
        for theta, (x, t_hat, t_joint) in zip(points, samples, strict=True):
            raw = t_hat
            if not np.allclose(score_map, np.eye(p)):
                phi = self._phi(theta[None], score_map)[0]
                t_hat = np.asarray(self.estimator.score(x, phi[None], de[0]), dtype=float)
                t_hat = t_hat @ score_map.T
            residual = t_hat
            if t_joint is not None:
                residual = t_hat - t_joint
                square += (t_hat**2).mean(axis=0)
                raw_cross += (raw * t_joint).mean(axis=0)
                raw_square += (raw**2).mean(axis=0)
                cross_matrix.append(t_hat.T @ t_joint / len(t_hat))
                score_cov.append(np.atleast_2d(np.cov(t_hat, rowvar=False, bias=True)))
            grad.append(residual.mean(axis=0))
            err.append(residual.std(axis=0) / math.sqrt(self.events))
        gradient, error = np.array(grad), np.array(err)
        if self.gold:
            cross = np.einsum("kii->i", np.asarray(cross_matrix))  # E[t_i t_joint_i], summed
        u = (points - self.centre) / self.half
        weights = np.ones(len(u)) if p == 1 else _calibration_weights(u)
        # gradient in u-space is the theta-space gradient times the half-widths
        design_matrix = _gradient_design(u)
        root = np.repeat(np.sqrt(weights), p)
        coef = np.linalg.lstsq(
            design_matrix * root[:, None], (gradient * self.half).reshape(-1) * root, rcond=None
        )[0]
        fitted = (design_matrix @ coef).reshape(gradient.shape) / self.half
        misfit = (weights[:, None] * (gradient - fitted) ** 2).sum(axis=0) / weights.sum()
        record = {
            "design": list(key),
            "points": points,
            "gradient": gradient[_centre_index(u)],
            "gradients": gradient,
            "centre_index": _centre_index(u),
            "fit_residual": np.sqrt(misfit),
            "gradient_error": error,
            "coefficients": coef,
            "score_map": score_map,
            "scale": _ratio(cross, square) if self.gold else None,
            "raw_scale": _ratio(raw_cross, raw_square) if self.gold else None,
            # where the posterior is: weighted like the fit (the information varies across
            # the region, and the check compares it with the posterior's curvature)
            "information_matrix": _weighted(cross_matrix, weights) if self.gold else None,
            "score_covariance": _weighted(score_cov, weights) if self.gold else None,
        }
        self.records[key] = record
        return record

    def _largest_scale(self) -> np.ndarray:
        """How far ``S`` may steepen ``(P,)``: ``phi`` of all of ``bounds`` stays trained.

        A scale up to 1 is always safe (``phi`` lies between the centre and ``theta``). A
        larger one needs room beyond ``bounds`` in the estimator's training region; on the
        first data, trained on the whole prior, there is none, and a too-flat score is then
        left for the next, narrower training to fix.
        """
        trained = getattr(getattr(self.estimator, "parameters", None), "bounds", None)
        if trained is None:
            return np.full(len(self.centre), np.inf)
        c, lo, hi = self.centre, self.bounds[:, 0], self.bounds[:, 1]
        below = np.where(c - lo > 0, (c - trained[:, 0]) / np.maximum(c - lo, 1e-300), np.inf)
        above = np.where(hi - c > 0, (trained[:, 1] - c) / np.maximum(hi - c, 1e-300), np.inf)
        return np.maximum(np.minimum(below, above), 1.0)

    def _phi(self, theta: np.ndarray, score_map: np.ndarray) -> np.ndarray:
        """``centre + S (theta - centre)`` ``(n, P)``.

        Clipped to the estimator's parameters against rounding only: :meth:`_largest_scale`
        keeps it inside.
        """
        phi = self.centre + (theta - self.centre) @ score_map
        trained = getattr(getattr(self.estimator, "parameters", None), "bounds", None)
        return phi if trained is None else np.clip(phi, trained[:, 0], trained[:, 1])

    def _mapped(self, theta: Any, design: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``theta`` ``(n, P)``, ``phi(theta)`` and the score map at ``design``."""
        th = np.atleast_2d(np.asarray(theta, dtype=float))
        score_map = np.asarray(self.calibrate(design).get("score_map", np.eye(th.shape[1])))
        return th, self._phi(th, score_map), score_map

    def correction(self, theta: Any, design: Any) -> np.ndarray:
        """``c(theta)`` at ``design``: what is subtracted from each event's log ratio ``(n,)``."""
        th = np.atleast_2d(np.asarray(theta, dtype=float))
        coef = self.calibrate(design)["coefficients"]
        return _quadratic(coef, (th - self.centre) / self.half)

    def log_ratio(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Calibrated ``log r(x | theta, design)``, shape ``(n_theta, n_x)``."""
        th, phi, _ = self._mapped(theta, design)
        raw = np.asarray(self.estimator.log_ratio(x, phi, design), dtype=np.float64)
        return raw - self.correction(th, design)[:, None]

    def score(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Calibrated score at one ``theta`` ``(P,)``: ``S t_hat(x | phi(theta)) - grad c``."""
        th, phi, score_map = self._mapped(theta, design)
        coef = self.calibrate(design)["coefficients"]
        u = (th[:1] - self.centre) / self.half
        grad_c = (_gradient_design(u) @ coef) / self.half
        t_hat = np.asarray(self.estimator.score(x, phi[0], design), dtype=float)
        return t_hat @ score_map.T - grad_c

    def state(self) -> dict[str, Any]:
        """JSON-able calibration records, to store beside the estimator's weights."""
        return {
            "bounds": self.bounds.tolist(),
            "events": self.events,
            "seed": self.seed,
            "affine": self.affine,
            "focus": self.focus.tolist(),
            "records": [
                {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                for r in self.records.values()
            ],
        }

    @classmethod
    def from_state(cls, estimator: Any, simulator: Any, state: dict[str, Any]) -> Any:
        """Rebuild from :meth:`state` without simulating again."""
        cal = cls(
            estimator,
            simulator,
            state["bounds"],
            events=state["events"],
            seed=state["seed"],
            affine=state.get("affine", False),
            focus=state.get("focus"),
        )
        for r in state["records"]:
            rec = {k: (np.asarray(v) if isinstance(v, list) and k != "design" else v)
                   for k, v in r.items()}  # fmt: skip
            cal.records[cls._key(r["design"])] = rec
        return cal


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return num / np.where(den > 0, den, 1.0)


def _score_map(
    t_hats: Sequence[np.ndarray], t_joints: Sequence[np.ndarray], largest: np.ndarray
) -> np.ndarray:
    """Per-parameter regression of the joint score on the learned one: ``S`` ``(P, P)``, diagonal.

    ``S_ii = E[t_joint_i t_hat_i] / E[t_hat_i^2]``, pooled over calibration points, each
    centred on its own means so that the bias (removed afterwards) does not enter. Only the
    diagonal: at one design the information is often of rank one (the Weinberg shape depends
    on the parameters only through A_FB), where a full regression amplifies noise. A learned
    score of the wrong sign gets ``S_ii = 0`` (that design then says nothing about parameter
    ``i``: conservative), and ``S_ii`` is at most ``largest`` ``(P,)`` and ``MAX_SCALE``.
    """
    num = sum(
        ((j - j.mean(axis=0)) * (t - t.mean(axis=0))).sum(axis=0)
        for t, j in zip(t_hats, t_joints, strict=True)
    )
    den = sum(((t - t.mean(axis=0)) ** 2).sum(axis=0) for t in t_hats)
    scale = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return np.diag(np.clip(scale, 0.0, np.minimum(largest, MAX_SCALE)))


def _weighted(matrices: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The ``weights``-weighted mean ``(P, P)`` of one matrix per calibration point."""
    return np.tensordot(weights, np.asarray(matrices), axes=1) / weights.sum()


def _centre_index(u: np.ndarray) -> int:
    """Index of the calibration point nearest the region's centre."""
    return int(np.argmin((u**2).sum(axis=1)))
