"""The particle posterior: weighted particles in any number of parameters.

Sequential Monte Carlo with adaptive tempering, systematic resampling and random-walk
Metropolis moves; marginals by weighted kernel density, entropy by nearest neighbours.
"""

from __future__ import annotations

import copy as _copy
import math
from typing import Any, Self

import numpy as np
from scipy import ndimage, special, stats
from scipy.spatial import cKDTree

from activesci.errors import (
    ValidationError,
)
from activesci.inference.likelihood import _BLOCK_ELEMENTS, _estimator_name
from activesci.inference.posterior import (
    _PAIR_PAD,
    _PAIR_SMOOTHING,
    _PAIR_TAIL,
    _as_points,
    _inside,
    _Marginal,
    _normalised,
    _Posterior,
    _weighted_mean_cov,
)
from activesci.spaces import Real, Space
from activesci.typing import Observation

__all__ = ["SamplePosterior"]

#: Points of the KDE view of a particle marginal.
_KDE_POINTS = 1024
_KNN_K = 5
#: Tempering stages per update before the rest of the likelihood is taken in one step.
_MAX_STAGES = 200


class SamplePosterior(_Posterior):
    """Posterior represented by weighted particles (sequential Monte Carlo), any dimension.

    Particles start as draws from the prior. Each update multiplies the weights by the
    observation's likelihood, in tempered steps (``likelihood ** delta``) chosen so that the
    effective sample size (ESS) never falls below half the particles; whenever it reaches that
    floor the particles are resampled (systematically) and moved by ``mcmc_steps`` random-walk
    Metropolis steps (Gaussian proposal with ``2.38^2 / P`` times the particle covariance) that
    target the prior times the likelihood of every stored observation, re-evaluated with the
    estimator that was used for it. Integer and categorical parameters move by rounded steps.

    Summaries come from the weighted particles: ``interval`` from weighted quantiles, ``hdr``
    and ``modes`` from a weighted Gaussian KDE of each marginal (reflected at the bounds),
    ``entropy`` is a weighted Kozachenko-Leonenko k-nearest-neighbour *estimate*, and
    ``log_density`` a weighted Gaussian KDE (Scott's rule on the ESS; not renormalised for
    the truncation at the bounds), both smoothing estimates rather than exact values.

    Cost: every Metropolis step re-evaluates all stored observations at all particles, so an
    update costs about ``stages x mcmc_steps x n_particles x (events so far)`` log-ratio
    evaluations; ``stages`` grows with how much the observation narrows the posterior.

    Parameters
    ----------
    space : Space
        The parameters and their prior.
    n_particles : int
        Number of particles.
    simulator : Simulator, optional
        Checks designs and supplies ``expected_count`` for the rate term.
    extended : bool
        Add the Poisson term of the event count when the simulator has ``expected_count``.
    seed : int
        Seed of the particles' random stream: the same seed and data give the same posterior.
    mcmc_steps : int
        Metropolis steps per particle after each resampling.

    Examples
    --------
    >>> import numpy as np
    >>> from activesci import tasks
    >>> from activesci.inference import ExactLikelihood
    >>> task = tasks.gaussian(events_per_experiment=50)
    >>> sim = task.simulator
    >>> post = SamplePosterior(sim.parameters, n_particles=1000, simulator=sim, seed=1)
    >>> obs = task.experiment(seed=0).run({"phase": np.pi})
    >>> post = post.update(obs, ExactLikelihood(sim))
    >>> mean, std = sim.posterior(post.observations)  # analytic
    >>> bool(abs(post.mean()[0] - mean[0]) < 0.2 * std[0]), post.history[-1]["resampled"] > 0
    (True, True)
    """

    def __init__(
        self,
        space: Space,
        n_particles: int = 4000,
        *,
        simulator: Any = None,
        extended: bool = True,
        seed: int = 0,
        mcmc_steps: int = 10,
    ) -> None:
        super().__init__(space, simulator, extended)
        if not (isinstance(n_particles, int | np.integer) and n_particles >= 10):
            raise ValidationError(f"n_particles must be an integer >= 10, got {n_particles!r}")
        if not (isinstance(mcmc_steps, int | np.integer) and mcmc_steps >= 0):
            raise ValidationError(f"mcmc_steps must be a non-negative integer, got {mcmc_steps!r}")
        self.n_particles = int(n_particles)
        self.mcmc_steps = int(mcmc_steps)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._particles = space.sample(self.n_particles, self._rng)
        self._log_w = np.zeros(self.n_particles)
        self._log_like = np.zeros(self.n_particles)  # all stored observations, per particle
        self._discrete = np.array([not isinstance(d, Real) for d in space])
        self._marginals: dict[int, _Marginal] = {}

    # -- state ---------------------------------------------------------------------------------
    @property
    def particles(self) -> np.ndarray:
        """Particle positions, shape ``(n_particles, P)``."""
        return self._particles.copy()

    @property
    def weights(self) -> np.ndarray:
        """Normalised particle weights, shape ``(n_particles,)``."""
        return _normalised(self._log_w)

    @property
    def ess(self) -> float:
        """Effective sample size ``1 / sum(w^2)`` of the weights."""
        return _ess(self._log_w)

    def copy(self) -> Self:
        """An independent copy (estimators and the simulator are shared, not copied)."""
        new = super().copy()
        new._rng = _copy.deepcopy(self._rng)
        new._particles = self._particles.copy()
        new._log_w = self._log_w.copy()
        new._log_like = self._log_like.copy()
        new._marginals = {}
        return new

    # -- SMC -----------------------------------------------------------------------------------
    def _absorb(
        self, observation: Observation, estimator: Any, design: np.ndarray
    ) -> dict[str, Any]:
        ll = self._log_likelihood(observation, estimator, self._particles, design)
        if not np.isfinite(ll).any():
            raise ValidationError(
                f"every particle has zero likelihood for this observation according to "
                f"{_estimator_name(estimator)}"
            )
        saved = (self._particles, self._log_w, self._log_like, _copy.deepcopy(self._rng))
        try:
            return self._temper(observation, estimator, design, ll)
        except BaseException:  # an estimator failing inside the moves: leave the state as it was
            self._particles, self._log_w, self._log_like, self._rng = saved
            raise

    def _temper(
        self, observation: Observation, estimator: Any, design: np.ndarray, ll: np.ndarray
    ) -> dict[str, Any]:
        """Bring in ``ll`` in tempered steps, resampling and moving at the ESS floor."""
        floor = 0.5 * self.n_particles
        beta, stages, accepted = 0.0, 0, []
        while beta < 1.0:
            if stages < _MAX_STAGES:
                delta = _next_temperature(self._log_w, ll, 1.0 - beta, floor)
            else:
                delta = 1.0 - beta
            self._log_w = self._log_w + _scaled(ll, delta)
            beta = 1.0 if delta >= 1.0 - beta else beta + delta
            if _ess(self._log_w) < floor * (1.0 + 1e-9) or beta < 1.0:
                idx = _systematic_resample(_normalised(self._log_w), self._rng)
                self._particles, ll = self._particles[idx], ll[idx].copy()
                self._log_like = self._log_like[idx]
                self._log_w = np.zeros(self.n_particles)
                stages += 1
                ll, rate = self._move(observation, estimator, design, ll, beta)
                accepted.append(rate)
        self._log_like = self._log_like + ll
        self._marginals = {}
        return {
            "ess": self.ess,
            "resampled": stages,
            "acceptance": float(np.mean(accepted)) if accepted else None,
        }

    def _stored_log_likelihood(self, theta: np.ndarray) -> np.ndarray:
        total = np.zeros(len(theta))
        for obs, est, design in self._records:
            total += self._log_likelihood(obs, est, theta, design)
        return total

    def _move(
        self,
        observation: Observation,
        estimator: Any,
        design: np.ndarray,
        ll: np.ndarray,
        beta: float,
    ) -> tuple[np.ndarray, float]:
        """Random-walk Metropolis on prior x stored likelihoods x current likelihood^beta."""
        n, dim = self._particles.shape
        log_prior = self.space.log_prior(self._particles)
        accepted = 0
        for _ in range(self.mcmc_steps):
            _, cov = _weighted_mean_cov(self._particles, np.full(n, 1.0 / n))
            chol = _proposal_factor(cov, self.space)
            proposal = self._particles + self._rng.standard_normal((n, dim)) @ chol.T
            if self._discrete.any():
                proposal[:, self._discrete] = np.round(proposal[:, self._discrete])
            lp_new = np.asarray(self.space.log_prior(proposal), dtype=float)
            ok = np.isfinite(lp_new)
            old_new = np.full(n, -np.inf)
            ll_new = np.full(n, -np.inf)
            if ok.any():
                old_new[ok] = self._stored_log_likelihood(proposal[ok])
                ll_new[ok] = self._log_likelihood(observation, estimator, proposal[ok], design)
            target_new = lp_new + old_new + _scaled(ll_new, beta)
            target_old = log_prior + self._log_like + _scaled(ll, beta)
            with np.errstate(invalid="ignore"):
                log_alpha = np.where(np.isfinite(target_new), target_new - target_old, -np.inf)
            accept = np.log(self._rng.random(n)) < log_alpha
            self._particles[accept] = proposal[accept]
            log_prior[accept] = lp_new[accept]
            self._log_like[accept] = old_new[accept]
            ll[accept] = ll_new[accept]
            accepted += int(accept.sum())
        return ll, accepted / max(1, n * self.mcmc_steps)

    # -- summaries -----------------------------------------------------------------------------
    def _weighted(self) -> tuple[np.ndarray, np.ndarray]:
        return self._particles, self.weights

    def _quantiles(self, j: int, q: np.ndarray) -> np.ndarray:
        """Weighted quantiles, interpolated between the particles' mid-cumulative weights."""
        values, w = self._particles[:, j], self.weights
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(w[order]) - 0.5 * w[order]
        return np.interp(q, cum, values[order])

    def _marginal(self, j: int) -> _Marginal:
        if j not in self._marginals:
            self._marginals[j] = _kde_marginal(
                self._particles[:, j], self.weights, *self.space.bounds[j]
            )
        return self._marginals[j]

    def _pair(self, i: int, j: int, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A weighted 2-D histogram of the particles, lightly smoothed: an *estimate*.

        Each axis spans the weighted quantiles ``1e-4`` to ``1 - 1e-4`` of its particles, padded
        by 10% of that range on each side and clipped to the bounds, in ``bins`` equal bins: the
        posterior may be far narrower than the prior box, and a few light particles far out
        (weights between resamplings) must not stretch the window; what lies outside it (about
        ``1e-4`` of the weight per side, less for light tails) is left out. An integer or
        categorical axis has one bin per value instead. The histogram is smoothed by a
        Gaussian of half a bin along continuous axes (reflected at the edges), which widens a
        Gaussian by about 1% of its standard deviation at 30 bins; then normalised to 1.
        """
        weights = self.weights
        edges = [self._pair_edges(k, bins) for k in (j, i)]
        hist, _, _ = np.histogram2d(
            self._particles[:, j], self._particles[:, i], bins=edges, weights=weights
        )
        sigma = [0.0 if self._discrete[k] else _PAIR_SMOOTHING for k in (j, i)]
        hist = ndimage.gaussian_filter(hist, sigma, mode="reflect")
        y_edges, x_edges = edges
        area = (x_edges[1] - x_edges[0]) * (y_edges[1] - y_edges[0])
        centres = [0.5 * (e[1:] + e[:-1]) for e in (x_edges, y_edges)]
        return centres[0], centres[1], hist / (hist.sum() * area)

    def _pair_edges(self, k: int, bins: int) -> np.ndarray:
        """Bin edges of axis ``k`` of a pair histogram (see ``_pair``)."""
        lo, hi = self.space.bounds[k]
        a, b = (float(v) for v in self._quantiles(k, np.array([_PAIR_TAIL, 1.0 - _PAIR_TAIL])))
        if self._discrete[k]:
            return np.arange(round(a) - 0.5, round(b) + 1.0, 1.0)
        pad = _PAIR_PAD * (b - a) or 1e-3 * (hi - lo)
        return np.linspace(max(lo, a - pad), min(hi, b + pad), bins + 1)

    def entropy(self) -> float:
        """Differential entropy in nats: a weighted Kozachenko-Leonenko kNN *estimate*.

        The particles are whitened with their covariance (the entropy shifts by the log
        determinant), exact duplicates (from resampling) are merged with their weights summed,
        and ``-log p`` at each particle is estimated from the weight of its ``k = 5`` nearest
        neighbours over the volume of the ball that holds them (with the ``psi(k) - log k``
        bias correction of the unweighted estimator, which this reduces to for equal weights).
        """
        return _knn_entropy(self._particles, self.weights)

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Draw ``n`` particles ``(n, P)`` by their weights (with replacement)."""
        rng = np.random.default_rng(rng)
        return self._particles[rng.choice(self.n_particles, size=int(n), p=self.weights)]

    def log_density(self, theta: Any) -> np.ndarray:
        """Log density at points ``(n, P)`` from a weighted Gaussian KDE: shape ``(n,)``.

        Scott's bandwidth on the effective sample size; an *estimate* (smoothed by the kernel
        and not corrected for the mass the kernels put outside the bounds); ``-inf`` outside.
        """
        points = _as_points(self.space, theta)
        inside = _inside(self.space, points)
        out = np.full(len(points), -np.inf)
        if inside.any():
            try:
                kde = stats.gaussian_kde(self._particles.T, weights=self.weights)
            except np.linalg.LinAlgError as exc:
                raise ValidationError(
                    "the particles have collapsed onto a lower-dimensional set: no KDE"
                ) from exc
            out[inside] = kde.logpdf(points[inside].T)
        return out


# -- SMC helpers -----------------------------------------------------------------------------------
def _ess(log_w: np.ndarray) -> float:
    w = _normalised(log_w)
    return float(1.0 / np.sum(w * w))


def _scaled(ll: np.ndarray, factor: float) -> np.ndarray:
    """``factor * ll`` with ``0 * -inf = 0`` and ``factor * -inf = -inf``."""
    finite = np.isfinite(ll)
    return np.where(finite, factor * np.where(finite, ll, 0.0), 0.0 if factor == 0 else -np.inf)


def _next_temperature(log_w: np.ndarray, ll: np.ndarray, remaining: float, floor: float) -> float:
    """The largest step ``delta <= remaining`` with ``ESS(log_w + delta ll) >= floor``.

    If even an infinitesimal step falls below ``floor`` (particles with zero likelihood), the
    target becomes half of that limit so that every step makes progress.
    """
    if _ess(log_w + _scaled(ll, remaining)) >= floor:
        return remaining
    limit = _ess(log_w + np.where(np.isfinite(ll), 0.0, -np.inf))
    target = floor if limit > floor else 0.5 * limit
    lo, hi = 0.0, remaining
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _ess(log_w + _scaled(ll, mid)) >= target:
            lo = mid
        else:
            hi = mid
    return max(lo, remaining * 1e-12)


def _systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a systematic resample (one uniform, ``n`` evenly spaced pointers)."""
    n = len(weights)
    pointers = (rng.random() + np.arange(n)) / n
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    return np.minimum(np.searchsorted(cum, pointers, side="right"), n - 1)


def _proposal_factor(cov: np.ndarray, space: Space) -> np.ndarray:
    """Cholesky factor of ``2.38^2 / P * cov``, regularised so it always exists."""
    dim = len(cov)
    width = space.bounds[:, 1] - space.bounds[:, 0]
    scaled = (2.38**2 / dim) * cov
    jitter = np.diag((1e-9 * width) ** 2)
    for _ in range(8):
        try:
            return np.linalg.cholesky(scaled + jitter)
        except np.linalg.LinAlgError:
            jitter = jitter * 100.0
    return np.diag(np.sqrt(np.clip(np.diag(scaled), 0.0, None)) + 1e-6 * width)


def _kde_marginal(values: np.ndarray, weights: np.ndarray, lo: float, hi: float) -> _Marginal:
    """A weighted Gaussian KDE of one parameter, as a :class:`_Marginal`.

    Robust Silverman bandwidth on the ESS, reflected at the bounds, evaluated at
    ``_KDE_POINTS`` cell centres over where the particles lie.
    """
    mean = float(weights @ values)
    sd = float(np.sqrt(max(weights @ (values - mean) ** 2, 0.0)))
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    q25, q75 = np.interp([0.25, 0.75], cum, values[order])
    spread = min(sd, (q75 - q25) / 1.34) if q75 > q25 else sd
    n_eff = 1.0 / float(np.sum(weights * weights))
    bw = 0.9 * spread * n_eff ** (-0.2)
    if not bw > 0:
        bw = 1e-3 * (hi - lo)
    a, b = max(lo, float(values.min()) - 4 * bw), min(hi, float(values.max()) + 4 * bw)
    if not b > a:
        a, b = max(lo, a - bw), min(hi, b + bw)
    centres = a + (b - a) * (np.arange(_KDE_POINTS) + 0.5) / _KDE_POINTS
    sources = [values]
    weight_list = [weights]
    if values.min() - 4 * bw < lo:
        sources.append(2 * lo - values)
        weight_list.append(weights)
    if values.max() + 4 * bw > hi:
        sources.append(2 * hi - values)
        weight_list.append(weights)
    src, wts = np.concatenate(sources), np.concatenate(weight_list)
    density = np.zeros(_KDE_POINTS)
    step = max(1, _BLOCK_ELEMENTS // _KDE_POINTS)
    for start in range(0, len(src), step):
        u = (centres[:, None] - src[None, start : start + step]) / bw
        with np.errstate(under="ignore"):
            density += np.exp(-0.5 * u * u) @ wts[start : start + step]
    with np.errstate(divide="ignore"):
        return _Marginal(centres, np.log(density), a, b)


def _knn_entropy(points: np.ndarray, weights: np.ndarray, k: int = _KNN_K) -> float:
    """Weighted Kozachenko-Leonenko entropy estimate of weighted points (see SamplePosterior)."""
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    w = np.bincount(inverse.reshape(-1), weights=weights, minlength=len(unique))
    keep = w > 0
    unique, w = unique[keep], w[keep] / w[keep].sum()
    n, dim = unique.shape
    if n < 2:
        return -math.inf
    k = min(k, n - 1)
    mean, cov = _weighted_mean_cov(unique, w)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return -math.inf
    white = np.linalg.solve(chol, (unique - mean).T).T
    dist, idx = cKDTree(white).query(white, k=k + 1)
    eps = dist[:, k]
    mass = w[idx[:, 1:]].sum(axis=1) / np.clip(1.0 - w, 1e-300, None)
    log_ball = dim / 2 * math.log(math.pi) - special.gammaln(dim / 2 + 1) + dim * np.log(eps)
    log_p = np.log(mass) + special.digamma(k) - math.log(k) - log_ball
    return float(-(w @ log_p) + np.log(np.diag(chol)).sum())
