"""Expected information gain (EIG) of an experiment design, with the amortised estimator.

``EIG(d) = H[p(theta | D)] - E_{theta ~ p(theta | D), x ~ p(x | theta, d)} H[p(theta | D, x)]``

Two Monte Carlo estimators, neither of which retrains: the estimator is amortised over designs.

* :func:`expected_information_gain` on a :class:`GridPosterior` (``method="grid"``): draw
  ``theta`` from the grid posterior, simulate one experiment at ``d`` for each (a Poisson count
  and its events), update a copy of the grid with the estimator's log ratios (and the count's
  Poisson term), and average the entropy drops. Cost: grid cells x events.
* :func:`contrastive_information_gain` (``method="contrastive"``), for any posterior that can
  ``sample``: prior-contrastive estimation (PCE / InfoNCE, Foster et al. 2020, 2021), which
  compares each simulated experiment's likelihood at its own ``theta`` with that at other
  draws from the posterior. Cost: (experiments + contrasts) x events, no grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from activesci.errors import ValidationError
from activesci.inference.grid import NEGLIGIBLE, GridPosterior
from activesci.inference.likelihood import ExactLikelihood

__all__ = [
    "EIGEstimate",
    "SimulatedExperiments",
    "contrastive_information_gain",
    "expected_information_gain",
    "simulate_experiments",
]

_BLOCK = 4_000_000  # grid cells x events per log_ratio call (~32 MB of float64)
#: Default contrastive draws of :func:`contrastive_information_gain`. With the default 32
#: experiments, K = 64 points: the PCE saturates at log 64 = 4.2 nats, and a learned estimator
#: costs 40-225 ms per candidate on the three-parameter line shape, the most at the Z pole
#: (0.2 pb^-1, ~325 events an experiment; 1 thread, ``benchmarks/eig_cost.py`` at b7e6cce, as
#: the README quotes), inside the 250 ms target. The cost grows as (32 + L) x 32 x events.
N_CONTRAST = 32
_METHODS = ("auto", "grid", "contrastive")


@dataclass(frozen=True)
class EIGEstimate:
    """A Monte Carlo estimate of the expected information gain, in nats.

    ``upper`` and ``upper_stderr`` are set by the contrastive estimator only: the nested Monte
    Carlo estimate, biased upwards, where ``value`` (PCE) is biased downwards; the truth lies
    between them up to Monte Carlo error.
    """

    value: float
    stderr: float
    n_samples: int
    upper: float | None = None
    upper_stderr: float | None = None


def expected_information_gain(
    posterior: Any,
    simulator: Any,
    design: Any,
    *,
    estimator: Any = None,
    exact: bool = False,
    n_samples: int = 32,
    rng: np.random.Generator | int | None = None,
    method: str = "auto",
    n_contrast: int | None = None,
) -> EIGEstimate:
    """Estimate the expected information gain of one experiment at ``design``.

    With ``method="grid"`` (what ``"auto"`` picks for a :class:`GridPosterior`) each simulated
    experiment updates a copy of the grid and the entropy drops are averaged; with
    ``"contrastive"`` (what ``"auto"`` picks for any other posterior, e.g. a
    :class:`~activesci.inference.posterior.SamplePosterior`) this is
    :func:`contrastive_information_gain`, whose cost does not grow with a grid.

    Parameters
    ----------
    posterior : GridPosterior or any posterior with ``sample`` and ``rate_term``
        The current state of knowledge (not modified).
    simulator : Simulator
        Simulates the hypothetical experiments (``run_experiment``) and gives the rate.
    design : array_like or mapping
        One design point.
    estimator : LogRatioEstimator, optional
        The amortised ratio estimator used for the hypothetical updates.
    exact : bool
        Use the simulator's exact likelihood instead (benchmarks only).
    n_samples : int
        Simulated experiments; the standard error falls as ``1 / sqrt(n_samples)``.
    rng : numpy.random.Generator or int, optional
        Pass the same seed for every candidate of a round: common random numbers make the
        EIG surface smooth across designs.
    method : {"auto", "grid", "contrastive"}
        ``"auto"``: the grid for a GridPosterior, contrastive otherwise.
    n_contrast : int, optional
        Contrastive draws (contrastive method only; default :data:`N_CONTRAST`).

    Returns
    -------
    EIGEstimate
        Value and Monte Carlo standard error, in nats (and, contrastive, the upper estimate).

    Raises
    ------
    ValidationError
        An unknown ``method``, ``"grid"`` without a GridPosterior, ``n_contrast`` with the grid,
        no estimator without ``exact``, or a bad ``n_samples`` or design.

    Examples
    --------
    >>> import numpy as np, activesci as asci
    >>> task = asci.tasks.gaussian()
    >>> post = GridPosterior(task.parameters, simulator=task.simulator)
    >>> eig = expected_information_gain(post, task.simulator, [np.pi], exact=True, rng=0)
    >>> round(float(0.5 * np.log(1 + 10)), 2), round(eig.value, 1)  # analytic: 0.5 log(1 + n)
    (1.2, 1.2)
    """
    if method not in _METHODS:
        raise ValidationError(f"method must be one of {list(_METHODS)}, got {method!r:.80}")
    grid_posterior = isinstance(posterior, GridPosterior)
    if method == "contrastive" or (method == "auto" and not grid_posterior):
        return contrastive_information_gain(
            posterior,
            simulator,
            design,
            estimator=estimator,
            exact=exact,
            n_samples=n_samples,
            n_contrast=N_CONTRAST if n_contrast is None else n_contrast,
            rng=rng,
        )
    if not grid_posterior:
        raise ValidationError(
            f'method="grid" needs a GridPosterior, got {type(posterior).__name__}; use '
            f'method="contrastive" (or "auto")'
        )
    if n_contrast is not None:
        raise ValidationError(
            f'n_contrast={n_contrast!r:.40} is for method="contrastive"; the grid method has no '
            f"contrastive draws"
        )
    if exact:
        estimator = ExactLikelihood(simulator)
    if estimator is None:
        raise ValidationError("give an estimator, or exact=True to use the exact likelihood")
    experiments = simulate_experiments(
        posterior, simulator, design, estimator=estimator, n_samples=n_samples, rng=rng
    )
    return experiments.eig()


#: :meth:`SimulatedExperiments.eig` reweights for a fantasised posterior only while the
#: importance weights keep an effective sample size of at least this fraction of the draws.
MIN_ESS_FRACTION = 0.5


@dataclass(frozen=True)
class SimulatedExperiments:
    """One design's hypothetical experiments, each scored on a grid posterior's support.

    The nested grid estimate of :func:`expected_information_gain` before its average:
    ``thetas`` drawn from ``log_posterior`` (their grid ``cells``), one experiment simulated at
    each, and its log likelihood on every ``support`` cell. :meth:`eig` averages the entropy
    drops; :meth:`eig_on` does so on a *fantasised* posterior on the same grid (this one
    updated with data not yet observed, as a batch's pending designs are), reweighting the
    same experiments by ``p_fantasy(theta) / p(theta)`` instead of simulating and scoring
    them anew: no network evaluation.

    Attributes
    ----------
    log_posterior : ndarray
        ``(n_cells,)`` the posterior the ``thetas`` were drawn from (unnormalised).
    entropy : float
        Its entropy in nats.
    cell_volume : float
        The grid's cell volume.
    shape : tuple of int
        The grid's cells per parameter.
    support : ndarray
        ``(n_cells,)`` bool: the cells the experiments were scored on.
    cells : ndarray
        ``(N,)`` the cell of each simulated experiment's ``theta``.
    loglik : ndarray
        ``(N, n_support)`` each experiment's log likelihood on the support cells.
    """

    log_posterior: np.ndarray
    entropy: float
    cell_volume: float
    shape: tuple[int, ...]
    support: np.ndarray
    cells: np.ndarray
    loglik: np.ndarray

    def _gains(self, log_posterior: np.ndarray, entropy: float) -> np.ndarray:
        """Each experiment's entropy drop ``(N,)`` from a posterior on this grid."""
        log_post = log_posterior[self.support]
        return entropy - np.array(
            [_entropy(log_post + row, self.cell_volume) for row in self.loglik]
        )

    def eig(self) -> EIGEstimate:
        """The EIG estimate on the posterior the experiments were simulated from."""
        gain = self._gains(self.log_posterior, self.entropy)
        n = len(gain)
        return EIGEstimate(
            value=float(gain.mean()), stderr=float(gain.std(ddof=1) / math.sqrt(n)), n_samples=n
        )

    def eig_on(self, posterior: GridPosterior) -> EIGEstimate | None:
        """The EIG estimate on ``posterior``, a fantasy on the same grid, by reweighting.

        Self-normalised importance weights ``p_fantasy(theta_i) / p(theta_i)``; the standard
        error is their delta-method one.

        Parameters
        ----------
        posterior : GridPosterior
            A posterior on the same grid, e.g. the original updated with fantasised data.

        Returns
        -------
        EIGEstimate or None
            None where the weights leave an effective sample size below
            :data:`MIN_ESS_FRACTION` of the draws (a fantasy much narrower than the original):
            simulate anew there.

        Raises
        ------
        ValidationError
            ``posterior`` is on another grid.
        """
        if not isinstance(posterior, GridPosterior) or posterior.shape != self.shape:
            raise ValidationError(
                f"a fantasised posterior must be on the grid the experiments were scored on "
                f"({self.shape} cells), got {type(posterior).__name__} "
                f"{getattr(posterior, 'shape', '')}"
            )
        fantasy = posterior.log_posterior
        log_w = fantasy[self.cells] - self.log_posterior[self.cells]
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        n = len(w)
        if 1.0 / float(np.sum(w**2)) < MIN_ESS_FRACTION * n:
            return None
        gain = self._gains(fantasy, posterior.entropy())
        value = float(w @ gain)
        return EIGEstimate(
            value=value, stderr=float(math.sqrt(np.sum(w**2 * (gain - value) ** 2))), n_samples=n
        )


def simulate_experiments(
    posterior: GridPosterior,
    simulator: Any,
    design: Any,
    *,
    estimator: Any,
    n_samples: int,
    rng: np.random.Generator | int | None = None,
) -> SimulatedExperiments:
    """Simulate ``n_samples`` experiments at ``design`` and score them on ``posterior``'s grid.

    The nested grid estimate's simulations (see :class:`SimulatedExperiments`); cells whose
    density is below ``exp(-NEGLIGIBLE)`` of the mode's are left out. ``rng`` is consumed as
    :func:`expected_information_gain` consumes it: the same seed gives the same estimate.
    """
    if not (isinstance(n_samples, int) and n_samples >= 2):
        raise ValidationError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    rng = np.random.default_rng(rng)
    d = simulator.designs.validate(design)
    if len(d) != 1:
        raise ValidationError(f"give one design, got {len(d)}")
    log_post = posterior.log_posterior
    support = log_post >= log_post.max() - NEGLIGIBLE
    grid = posterior.grid[support]
    thetas = posterior.sample(n_samples, rng)
    observations = [simulator.run_experiment(t, d, rng) for t in thetas]
    counts = np.array([o.n for o in observations])
    loglik = np.zeros((n_samples, len(grid)))
    if posterior.rate_term:
        nu = np.asarray(
            simulator.expected_count(grid, np.repeat(d, len(grid), axis=0)), dtype=float
        )
        with np.errstate(divide="ignore"):
            loglik += special.xlogy(counts[:, None], nu[None, :]) - nu[None, :]
    _add_log_ratios(loglik, observations, estimator, grid, d)
    return SimulatedExperiments(
        log_posterior=log_post,
        entropy=posterior.entropy(),
        cell_volume=posterior.cell_volume,
        shape=posterior.shape,
        support=support,
        cells=posterior.cell_of(thetas),
        loglik=loglik,
    )


def contrastive_information_gain(
    posterior: Any,
    simulator: Any,
    design: Any,
    *,
    estimator: Any = None,
    exact: bool = False,
    n_samples: int = 32,
    n_contrast: int = N_CONTRAST,
    rng: np.random.Generator | int | None = None,
) -> EIGEstimate:
    """Estimate the EIG of one experiment at ``design`` by contrasting posterior draws (PCE).

    Draw ``K = n_samples + n_contrast`` points ``theta_k`` from the posterior, simulate one
    experiment ``x_i`` at each of the first ``N = n_samples`` (a Poisson number of events for
    simulators with ``expected_count``), and score every experiment at every point,

    ``l(x_i | theta_k) = sum_{events e of x_i} log r(e | theta_k, d) [+ n_i log nu(theta_k) -
    nu(theta_k)]``,

    the summed log ratios plus, when ``posterior.rate_term``, the Poisson term of the count
    (theta-independent constants drop out). This is one vectorised ``log_ratio`` call on all
    events of all experiments against all ``K`` points (in blocks of about 4e6 pairs) and a
    sum per experiment: the cost is linear in ``K`` x total events, with no grid and no loop
    over points. Experiment ``i`` is then contrasted with every *other* point, the
    ``n_contrast`` extra draws and the other experiments' ``N - 1`` points alike (independent
    posterior draws, as InfoNCE uses the rest of its batch), so each experiment has
    ``C = K - 1`` contrasts:

    * ``value`` (PCE, prior-contrastive estimation; Foster et al. 2020, "A unified stochastic
      gradient approach to designing Bayesian-optimal experiments"; the sPCE of Foster et al.
      2021, "Deep Adaptive Design"): the mean over ``i`` of ``l_ii - log((exp l_ii +
      sum_{k != i} exp l_ki) / K)``. Its expectation is a *lower* bound of the EIG, and every
      term is at most ``log K``: the estimate **saturates at** ``log(n_samples + n_contrast)``.
      Far below that the bias is small (it is of order ``(EIG-dependent variance) / K``); when
      the EIG approaches or exceeds ``log K`` it is underestimated by up to ``EIG - log K``.
    * ``upper`` (nested Monte Carlo, NMC): the mean of ``l_ii - log(sum_{k != i} exp l_ki /
      (K - 1))``, the same without ``theta_i`` in the denominator. Its expectation is an
      *upper* bound (Jensen) that overestimates for finite ``C``, unboundedly when the
      contrasts miss the region where ``x_i``'s likelihood is high, and it is heavy-tailed.

    Both converge to the EIG as ``n_contrast`` grows. With a learned estimator ``q`` the PCE
    stays a lower bound (InfoNCE holds for any critic) and tends, for many contrasts, to the
    EIG less ``E_x KL(p(theta | x) || q(theta | x))``, the mean divergence of the learned
    posterior from the exact one: an estimator that shifts or mis-sizes the posterior lowers
    the estimate, where the grid method would report the learned posterior's narrowing. The
    NMC then loses its guarantee of being an upper bound. Draws from a particle posterior
    repeat particles; a contrast equal to ``theta_i`` is a legitimate draw of that discrete
    distribution and caps its term at ``log(K / 2)``. ``value`` is the PCE because it is a
    conservative, bounded, low-variance estimate: a design search that maximises it is not
    drawn to designs by one unlucky contrast set, as the NMC's heavy upper tail would draw it,
    and it ranks designs correctly wherever the EIG is well below ``log K``, which is where
    choosing between designs matters once the posterior has narrowed (the EIG of one more
    experiment is then a few nats). ``[value, upper]`` brackets the EIG up to Monte Carlo error;
    a wide bracket says ``n_contrast`` is too small. ``stderr`` is the standard deviation of
    the ``N`` terms over ``sqrt(N)``; it leaves out the correlation the shared contrasts add.

    Parameters
    ----------
    posterior : GridPosterior, SamplePosterior or alike
        Anything with ``sample(n, rng) -> (n, P)`` and ``rate_term`` (not modified).
    simulator : Simulator
        Simulates the hypothetical experiments (``run_experiment``) and gives the rate.
    design : array_like or mapping
        One design point.
    estimator : LogRatioEstimator, optional
        The amortised ratio estimator scoring the experiments.
    exact : bool
        Use the simulator's exact likelihood instead (benchmarks and tests only).
    n_samples : int
        Simulated experiments ``N`` (>= 2): the standard error falls as ``1 / sqrt(N)``.
    n_contrast : int
        Extra posterior draws (>= 0) used only as contrasts; the saturation is ``log(N + L)``.
    rng : numpy.random.Generator or int, optional
        The posterior draws come first from it, then the simulations: the same seed gives
        every candidate design the same points (common random numbers).

    Returns
    -------
    EIGEstimate
        ``value`` (PCE, biased low) and its ``stderr``, ``upper`` (NMC, biased high) and its
        ``upper_stderr``, in nats.

    Raises
    ------
    ValidationError
        A posterior without ``sample``/``rate_term``, no estimator, bad ``n_samples`` or
        ``n_contrast``, more than one design, or an estimator returning NaN or +inf.

    Examples
    --------
    >>> import numpy as np, activesci as asci
    >>> from activesci.inference import SamplePosterior
    >>> task = asci.tasks.gaussian()
    >>> post = SamplePosterior(task.parameters, n_particles=2000, simulator=task.simulator)
    >>> eig = contrastive_information_gain(
    ...     post, task.simulator, [np.pi], exact=True, n_samples=200, n_contrast=200, rng=0
    ... )
    >>> round(float(0.5 * np.log(1 + 10)), 2)  # analytic: 0.5 log(1 + n / sigma^2)
    1.2
    >>> bool(eig.value - 3 * eig.stderr < 1.2 < eig.upper + 3 * eig.upper_stderr)
    True
    """
    if not (callable(getattr(posterior, "sample", None)) and hasattr(posterior, "rate_term")):
        raise ValidationError(
            f"the contrastive EIG needs a posterior with sample(n, rng) and rate_term (such as "
            f"GridPosterior or SamplePosterior), got {type(posterior).__name__}"
        )
    if exact:
        estimator = ExactLikelihood(simulator)
    if estimator is None:
        raise ValidationError("give an estimator, or exact=True to use the exact likelihood")
    if not callable(getattr(estimator, "log_ratio", None)):
        raise ValidationError(
            f"an estimator needs a log_ratio(x, theta, design) method; got "
            f"{type(estimator).__name__}"
        )
    if not (_is_int(n_samples) and n_samples >= 2):
        raise ValidationError(f"n_samples must be an integer >= 2, got {n_samples!r:.80}")
    if not (_is_int(n_contrast) and n_contrast >= 0):
        raise ValidationError(f"n_contrast must be an integer >= 0, got {n_contrast!r:.80}")
    n_samples, n_contrast = int(n_samples), int(n_contrast)
    rng = np.random.default_rng(rng)
    d = simulator.designs.validate(design)
    if len(d) != 1:
        raise ValidationError(f"give one design, got {len(d)}")
    n_points = n_samples + n_contrast
    thetas = np.asarray(posterior.sample(n_points, rng), dtype=np.float64)
    if thetas.shape != (n_points, len(simulator.parameters)):
        raise ValidationError(
            f"{type(posterior).__name__}.sample({n_points}) returned shape {thetas.shape}; "
            f"expected ({n_points}, {len(simulator.parameters)})"
        )
    observations = [simulator.run_experiment(t, d, rng) for t in thetas[:n_samples]]
    counts = np.array([o.n for o in observations])
    loglik = np.zeros((n_points, n_samples))  # loglik[k, i] = l(x_i | theta_k)
    if posterior.rate_term:
        nu = np.asarray(
            simulator.expected_count(thetas, np.repeat(d, n_points, axis=0)), dtype=np.float64
        )
        with np.errstate(divide="ignore"):
            loglik += special.xlogy(counts[None, :], nu[:, None]) - nu[:, None]
    _add_contrast_log_ratios(loglik, observations, counts, estimator, thetas, d)
    own = loglik[np.arange(n_samples), np.arange(n_samples)]
    if np.isnan(loglik).any() or np.isposinf(loglik).any() or not np.isfinite(own).all():
        raise ValidationError(
            f"{type(estimator).__name__}.log_ratio gave NaN or +inf, or -inf at the parameters "
            f"an experiment was simulated with: the contrastive EIG is undefined"
        )
    others = loglik.copy()
    others[np.arange(n_samples), np.arange(n_samples)] = -np.inf
    with np.errstate(divide="ignore", over="ignore"):
        lower = own - (np.logaddexp(own, special.logsumexp(others, axis=0)) - math.log(n_points))
        upper = own - (special.logsumexp(others, axis=0) - math.log(n_points - 1))
    root = math.sqrt(n_samples)
    return EIGEstimate(
        value=float(lower.mean()),
        stderr=float(lower.std(ddof=1) / root),
        n_samples=n_samples,
        upper=float(upper.mean()),
        upper_stderr=float(upper.std(ddof=1) / root) if np.isfinite(upper).all() else math.inf,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _add_contrast_log_ratios(
    loglik: np.ndarray,
    observations: list[Any],
    counts: np.ndarray,
    estimator: Any,
    thetas: np.ndarray,
    d: np.ndarray,
) -> None:
    """Add ``sum_e log_ratio(e, theta_k)`` over each experiment's events to ``loglik[k, i]``.

    All events of all experiments are scored against all points at once, in blocks of about
    ``_BLOCK`` (point, event) pairs; an experiment may straddle two blocks.
    """
    if counts.sum() == 0:
        return
    x = np.concatenate([o.x for o in observations if o.n > 0])
    owner = np.repeat(np.arange(len(observations)), counts)  # experiment of each event
    step = max(1, _BLOCK // len(thetas))
    for lo in range(0, len(x), step):
        ratios = np.asarray(estimator.log_ratio(x[lo : lo + step], thetas, d), dtype=np.float64)
        if ratios.shape != (len(thetas), len(x[lo : lo + step])):
            raise ValidationError(
                f"{type(estimator).__name__}.log_ratio returned shape {ratios.shape}; expected "
                f"(n_theta, n_x) = ({len(thetas)}, {len(x[lo : lo + step])})"
            )
        who = owner[lo : lo + step]
        starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        loglik[:, who[starts]] += np.add.reduceat(ratios, starts, axis=1)


def _add_log_ratios(
    loglik: np.ndarray, observations: list[Any], estimator: Any, grid: np.ndarray, d: np.ndarray
) -> None:
    """Add each experiment's summed log ratios to its row, in blocks of experiments."""
    per_block = max(1, _BLOCK // len(grid))
    batch: list[int] = []
    size = 0
    for m, obs in enumerate(observations):
        if obs.n == 0:
            continue
        batch.append(m)
        size += obs.n
        if size >= per_block or m == len(observations) - 1:
            _score_batch(loglik, observations, batch, estimator, grid, d)
            batch, size = [], 0
    if batch:
        _score_batch(loglik, observations, batch, estimator, grid, d)


def _score_batch(
    loglik: np.ndarray,
    observations: list[Any],
    batch: list[int],
    estimator: Any,
    grid: np.ndarray,
    d: np.ndarray,
) -> None:
    x = np.concatenate([observations[m].x for m in batch])
    ratios = np.asarray(estimator.log_ratio(x, grid, d), dtype=np.float64)
    starts = np.cumsum([0] + [observations[m].n for m in batch[:-1]])
    loglik[batch] += np.add.reduceat(ratios, starts, axis=1).T


def _entropy(log_p: np.ndarray, cell_volume: float) -> float:
    p = np.exp(log_p - special.logsumexp(log_p))
    return float(special.entr(p).sum() + math.log(cell_volume))
