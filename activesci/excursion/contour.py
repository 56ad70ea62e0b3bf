"""Exclusion contours: level sets of a likelihood-ratio test statistic, found by excursion search.

``LikelihoodRatioStatistic`` turns recorded observations and a likelihood (a trained ratio
estimator, or ``ExactLikelihood`` for validation) into the test statistic
``q(theta) = -2 [log L(theta) - log L(theta_hat)]`` over some parameters, the others held
fixed. Its level set ``q = chi2_ppf(CL, k)`` is the CL confidence contour (Wilks), the region
``q > threshold`` what the data exclude. :func:`weinberg_contour` sets the physics case up: the
line-shape task (sin2w, M_Z, Gamma_Z) run at a few energies, Gamma_Z fixed, the 95% CL
contour over (sin2w, M_Z) from a learned ALICES estimator and from the exact likelihood.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from activesci.errors import ValidationError
from activesci.spaces import Real, Space
from activesci.typing import Observation

__all__ = ["ContourProblem", "LikelihoodRatioStatistic", "chi2_threshold", "weinberg_contour"]


def chi2_threshold(cl: float = 0.95, dof: int = 2) -> float:
    """The Wilks threshold of ``q`` for a confidence level and number of scanned parameters."""
    if not 0 < cl < 1:
        raise ValidationError(f"cl must be in (0, 1), got {cl!r}")
    if not (isinstance(dof, int) and dof >= 1):
        raise ValidationError(f"dof must be a positive integer, got {dof!r}")
    return float(stats.chi2.ppf(cl, dof))


class LikelihoodRatioStatistic:
    """``q(theta) = -2 [log L(theta) - log L(theta_hat)]`` over the scanned parameters.

    Parameters
    ----------
    simulator : Simulator
        Defines the parameters and supplies ``expected_count`` for the rate term.
    observations : sequence of Observation
        The recorded experiments.
    estimator : LogRatioEstimator
        A trained ratio estimator, or ``ExactLikelihood(simulator)``.
    scan : sequence of str
        The parameters of ``q`` (the columns of the points it is called with).
    fixed : mapping, optional
        Values of the other parameters (every parameter not scanned must be given).
    space : Space, optional
        The box of the scanned parameters in which ``theta_hat`` is sought (default: their
        ranges in the simulator's parameter space).

    Examples
    --------
    >>> import activesci as asci
    >>> from activesci.inference import ExactLikelihood
    >>> task = asci.tasks.weinberg_lineshape(luminosity=0.5)
    >>> runs = [task.experiment(seed=1).run([d]) for d in (89.2, 91.2, 93.2)]
    >>> q = LikelihoodRatioStatistic(task.simulator, runs, ExactLikelihood(task.simulator),
    ...                              scan=["sin2w", "mz"], fixed={"gamma_z": 2.4952})
    >>> bool(q(q.best[None, :])[0] < 1e-6)
    True
    """

    def __init__(
        self,
        simulator: Any,
        observations: Sequence[Observation],
        estimator: Any,
        *,
        scan: Sequence[str],
        fixed: Mapping[str, float] | None = None,
        space: Space | None = None,
    ) -> None:
        names = simulator.parameters.names
        self.scan, self.fixed = list(scan), dict(fixed or {})
        unknown = [n for n in [*self.scan, *self.fixed] if n not in names]
        if unknown:
            raise ValidationError(f"unknown parameters {unknown}; the simulator has {names}")
        missing = [n for n in names if n not in self.scan and n not in self.fixed]
        if missing:
            raise ValidationError(f"parameters {missing} are neither scanned nor fixed")
        if not observations:
            raise ValidationError("a test statistic needs at least one observation")
        self.simulator, self.observations, self.estimator = simulator, list(observations), estimator
        full = simulator.parameters
        self.space = space or Space([full[n] for n in self.scan])
        self._columns = [names.index(n) for n in self.scan]
        self._base = np.array([self.fixed.get(n, 0.0) for n in names])
        self.best, self.log_likelihood_max = self._fit()

    def _full(self, points: Any) -> np.ndarray:
        pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
        if pts.ndim != 2 or pts.shape[1] != len(self.scan):
            raise ValidationError(
                f"points must have shape (n, {len(self.scan)}) for {self.scan}, got "
                f"{np.shape(points)}"
            )
        theta = np.repeat(self._base[None, :], len(pts), axis=0)
        theta[:, self._columns] = pts
        return theta

    def log_likelihood(self, points: Any) -> np.ndarray:
        """``log L`` at points ``(n, len(scan))`` (up to a constant), shape ``(n,)``."""
        from activesci.inference.likelihood import observation_log_likelihood

        theta = self._full(points)
        return sum(
            observation_log_likelihood(obs, self.estimator, theta, simulator=self.simulator)
            for obs in self.observations
        )

    def _fit(self) -> tuple[np.ndarray, float]:
        """The maximum: the best point of a coarse grid, polished by Nelder-Mead in the box."""
        axes = [np.linspace(lo, hi, 21) for lo, hi in self.space.bounds]
        grid = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=-1)
        values = self.log_likelihood(grid)
        start = grid[int(np.argmax(values))]
        lo, hi = np.array(self.space.bounds).T
        scale = hi - lo
        result = optimize.minimize(
            lambda u: -self.log_likelihood(lo + u * scale)[0],
            (start - lo) / scale,
            method="Nelder-Mead",
            bounds=[(0.0, 1.0)] * len(scale),
            options={"xatol": 1e-6, "fatol": 1e-6},
        )
        best = lo + result.x * scale
        value = float(-result.fun)
        if value < values.max():
            best, value = start, float(values.max())
        return best, value

    def __call__(self, points: Any) -> np.ndarray:
        """``q`` at points ``(n, len(scan))``, shape ``(n,)``."""
        return -2.0 * (self.log_likelihood(points) - self.log_likelihood_max)


@dataclass
class ContourProblem:
    """A confidence-contour search set up: the learned and exact statistics over one box.

    Attributes
    ----------
    learned, exact : LikelihoodRatioStatistic
        ``q`` through the trained estimator and through the exact likelihood.
    space : Space
        The scanned box.
    threshold : float
        ``q`` at the contour (``chi2_threshold(cl, len(scan))``).
    observations : list of Observation
        The data both statistics see.
    estimator : RatioEstimator
        The trained estimator.
    """

    learned: LikelihoodRatioStatistic
    exact: LikelihoodRatioStatistic
    space: Space
    threshold: float
    observations: list[Observation]
    estimator: Any


def weinberg_contour(
    *,
    luminosity: float = 0.5,
    designs: Sequence[float] = (89.19, 91.19, 93.19),
    box: Mapping[str, tuple[float, float]] | None = None,
    cl: float = 0.95,
    method: str = "alice",
    training_samples: int = 400_000,
    epochs: int = 60,
    seed: int = 0,
    progress: bool = False,
) -> ContourProblem:
    """The physics case: the CL contour over (sin2w, M_Z) of the Weinberg line shape.

    The line-shape task runs at ``designs`` (``luminosity`` pb^-1 each) against its truth;
    Gamma_Z is held at its true value. A ratio estimator is trained on the box (with designs
    drawn around the energies run), and ``q`` is built from it and from the exact likelihood.

    Parameters
    ----------
    luminosity : float
        pb^-1 per energy.
    designs : sequence of float
        The energies run [GeV].
    box : mapping, optional
        ``{"sin2w": (lo, hi), "mz": (lo, hi)}`` (default: 0.21-0.25 and 90.85-91.35 GeV,
        about twice the extent of the 95% contour at the default luminosity).
    cl : float
        Confidence level of the contour.
    method : str
        The estimator's method.
    training_samples : int
        Simulated events to train on.
    epochs : int
        Training epochs.
    seed : int
        Seeds the experiments and the training.
    progress : bool
        Show the training's progress bars.

    Returns
    -------
    ContourProblem
    """
    from activesci import tasks
    from activesci.inference import ExactLikelihood, RatioEstimator
    from activesci.simulators.weinberg import WeinbergSimulator, lineshape_parameters

    box = dict(box or {"sin2w": (0.21, 0.25), "mz": (90.85, 91.35)})
    if sorted(box) != ["mz", "sin2w"]:
        raise ValidationError(f"box must give ranges for sin2w and mz, got {sorted(box)}")
    task = tasks.weinberg_lineshape(luminosity=luminosity)
    truth = task.truth
    experiment = task.experiment(seed=seed)
    observations = [experiment.run([float(d)]) for d in designs]
    gamma = truth["gamma_z"]
    local = WeinbergSimulator(  # the same physics, with the prior on the box: training there
        parameters=lineshape_parameters(
            sin2w=box["sin2w"], mz=box["mz"], gamma_z=(gamma - 0.05, gamma + 0.05)
        ),
        designs=task.simulator.designs,
        luminosity=luminosity,
    )
    estimator = RatioEstimator(local, method=method)
    bands = [(d - 0.05, d + 0.05) for d in designs]
    lo = np.concatenate([np.linspace(a, b, 11) for a, b in bands])[:, None]
    estimator.train(
        n_samples=int(training_samples), seed=seed, designs=lo, epochs=epochs, progress=progress
    )
    space = Space([Real(n, *box[n]) for n in ("sin2w", "mz")])
    common = {"scan": ["sin2w", "mz"], "fixed": {"gamma_z": gamma}, "space": space}
    return ContourProblem(
        learned=LikelihoodRatioStatistic(local, observations, estimator, **common),
        exact=LikelihoodRatioStatistic(local, observations, ExactLikelihood(local), **common),
        space=space,
        threshold=chi2_threshold(cl, 2),
        observations=observations,
        estimator=estimator,
    )
