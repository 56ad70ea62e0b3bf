"""Expected information gain (EIG) of an experiment design: the estimators by name.

``EIG(d) = H[p(theta | D)] - E_{theta ~ p(theta | D), x ~ p(x | theta, d)} H[p(theta | D, x)]``

:func:`expected_information_gain` estimates it with an estimator of :data:`EIG_ESTIMATORS`,
chosen by ``method``; none of them retrains: the ratio estimator is amortised over designs.

* ``"grid"`` (:func:`~activesci.design.nested.grid_information_gain`), on a
  :class:`GridPosterior`: the nested estimate, one grid update per simulated experiment.
  Cost: grid cells x events.
* ``"contrastive"`` (:func:`contrastive_information_gain`), for any posterior that can
  ``sample``: prior-contrastive estimation (PCE / InfoNCE, Foster et al. 2020, 2021), which
  compares each simulated experiment's likelihood at its own ``theta`` with that at other
  draws from the posterior. Cost: (experiments + contrasts) x events, no grid.
* a user's own: a function ``f(posterior, simulator, design, *, estimator, n_samples, rng,
  **options) -> EIGEstimate`` in a file of its own, made available as ``method=name`` by
  :func:`register_eig_estimator` (or an entry point of the group
  ``activesci.eig_estimators``).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special

from activesci.design.nested import LOG_RATIO_BLOCK, grid_information_gain
from activesci.errors import ValidationError
from activesci.inference.grid import GridPosterior
from activesci.inference.likelihood import LogRatioEstimator, as_estimator
from activesci.registry import Registry
from activesci.typing import EIGEstimate

__all__ = [
    "EIG_ESTIMATORS",
    "N_CONTRAST",
    "contrastive_information_gain",
    "eig_estimator",
    "expected_information_gain",
    "register_eig_estimator",
]

#: Default contrastive draws of :func:`contrastive_information_gain`. With the default 32
#: experiments, K = 64 points: the PCE saturates at log 64 = 4.2 nats, and a learned estimator
#: costs 40-225 ms per candidate on the three-parameter line shape, the most at the Z pole
#: (0.2 pb^-1, ~325 events an experiment; 1 thread, ``benchmarks/eig_cost.py`` at b7e6cce, as
#: the README quotes), inside the 250 ms target. The cost grows as (32 + L) x 32 x events.
N_CONTRAST = 32


def expected_information_gain(
    posterior: Any,
    simulator: Any,
    design: Any,
    *,
    method: str = "auto",
    **options: Any,
) -> EIGEstimate:
    """Estimate the expected information gain of one experiment at ``design``.

    With ``method="grid"`` (what ``"auto"`` picks for a :class:`GridPosterior`) each simulated
    experiment updates a copy of the grid and the entropy drops are averaged; with
    ``"contrastive"`` (what ``"auto"`` picks for any other posterior, e.g. a
    :class:`~activesci.inference.particles.SamplePosterior`) this is
    :func:`contrastive_information_gain`, whose cost does not grow with a grid. Any other name
    is an estimator of :data:`EIG_ESTIMATORS`.

    Parameters
    ----------
    posterior : GridPosterior or any posterior with ``sample`` and ``rate_term``
        The current state of knowledge (not modified).
    simulator : Simulator
        Simulates the hypothetical experiments (``run_experiment``) and gives the rate.
    design : array_like or mapping
        One design point.
    method : str
        ``"auto"`` (the grid for a GridPosterior, contrastive otherwise), or a name of
        :data:`EIG_ESTIMATORS`.
    **options
        The named estimator's options. All take ``estimator`` (a LogRatioEstimator scoring
        the hypothetical experiments, or ``"exact"``: the simulator's exact likelihood, for
        benchmarks; ``exact=True`` says the same), ``n_samples`` (simulated experiments: the
        standard error falls as ``1 / sqrt(n_samples)``) and ``rng`` (pass the same seed for
        every candidate of a round: common random numbers make the EIG surface smooth across
        designs); ``"contrastive"`` also ``n_contrast`` (default :data:`N_CONTRAST`).

    Returns
    -------
    EIGEstimate
        Value and Monte Carlo standard error, in nats (and, contrastive, the upper estimate).

    Raises
    ------
    ValidationError
        An unknown ``method`` or an option it does not take, ``"grid"`` without a
        GridPosterior, no estimator, or a bad ``n_samples`` or design.

    Examples
    --------
    >>> import numpy as np, activesci as asci
    >>> task = asci.tasks.gaussian()
    >>> post = GridPosterior(task.parameters, simulator=task.simulator)
    >>> eig = expected_information_gain(post, task.simulator, [np.pi], exact=True, rng=0)
    >>> round(float(0.5 * np.log(1 + 10)), 2), round(eig.value, 1)  # analytic: 0.5 log(1 + n)
    (1.2, 1.2)
    """
    function = eig_estimator(method, posterior)
    exact, estimator = options.pop("exact", False), options.pop("estimator", None)
    estimator = as_estimator("exact" if exact else estimator, simulator)
    _check_options(method, function, options)
    return function(posterior, simulator, design, estimator=estimator, **options)


def eig_estimator(method: str, posterior: Any = None) -> Callable[..., EIGEstimate]:
    """The EIG estimator a ``method`` names; ``"auto"`` picks by the posterior's kind.

    Raises
    ------
    ValidationError
        ``method`` is no name of :data:`EIG_ESTIMATORS` nor ``"auto"``.
    """
    if method == "auto":
        method = "grid" if isinstance(posterior, GridPosterior) else "contrastive"
    if not isinstance(method, str) or method not in EIG_ESTIMATORS:
        raise ValidationError(
            f"method must be 'auto' or one of {sorted(EIG_ESTIMATORS)}, got {method!r:.80}"
        )
    return EIG_ESTIMATORS[method]


def _check_options(method: str, function: Callable[..., Any], options: dict[str, Any]) -> None:
    """Refuse an option the estimator does not take, with the ones it does (a typed error)."""
    takes = _options_of(function)
    unknown = sorted(set(options) - set(takes)) if takes is not None else []
    if unknown:
        raise ValidationError(
            f"the EIG estimator {method!r} takes no option {unknown[0]!r}; it takes {list(takes)}"
        )


@functools.lru_cache(maxsize=64)
def _options_of(function: Callable[..., Any]) -> tuple[str, ...] | None:
    """The options an EIG estimator takes after its three arguments (None: any, ``**``).

    Cached: the strategy asks for dozens of estimates a round, and reading a signature costs
    more than a dictionary look-up.
    """
    params = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return tuple(n for n in list(params)[3:] if n not in ("estimator", "exact"))


def contrastive_information_gain(
    posterior: Any,
    simulator: Any,
    design: Any,
    *,
    estimator: LogRatioEstimator | str | None = None,
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
    estimator : LogRatioEstimator or "exact", optional
        The amortised ratio estimator scoring the experiments, or ``"exact"``: the
        simulator's exact likelihood (benchmarks and tests only).
    exact : bool
        The same as ``estimator="exact"``.
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
    estimator = as_estimator("exact" if exact else estimator, simulator)
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
    ``LOG_RATIO_BLOCK`` (point, event) pairs; an experiment may straddle two blocks.
    """
    if counts.sum() == 0:
        return
    x = np.concatenate([o.x for o in observations if o.n > 0])
    owner = np.repeat(np.arange(len(observations)), counts)  # experiment of each event
    step = max(1, LOG_RATIO_BLOCK // len(thetas))
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


#: EIG estimators by name (and the entry points of the group ``activesci.eig_estimators``):
#: functions ``f(posterior, simulator, design, *, estimator, n_samples, rng, **options) ->
#: EIGEstimate``, where ``estimator`` is a LogRatioEstimator (the exact likelihood already
#: resolved).
EIG_ESTIMATORS: Registry[EIGEstimate] = Registry(
    "EIG estimator",
    {"grid": grid_information_gain, "contrastive": contrastive_information_gain},
    group="activesci.eig_estimators",
)


#: ``register_eig_estimator(name, function)`` makes ``function`` available as ``method=name``
#: to :func:`expected_information_gain` and the ``eig`` strategy (``strategy_options={"method":
#: name}``) in this process.
register_eig_estimator = EIG_ESTIMATORS.register
