"""How good is a posterior? Closure against the exact one and frequentist coverage.

- :func:`closure` compares a posterior built with a learned estimator to the one the exact
  likelihood gives on the same grid: KL divergence, shift of the mean, ratio of widths and the
  disagreement of the highest-density regions.
- :func:`coverage` repeats "draw a truth from the prior, simulate, infer" and counts how often
  the credible intervals contain the truth; a calibrated posterior covers at the nominal rate.
- :func:`score_check` asks, without an exact likelihood, whether a learned ratio's score is
  biased where the posterior lies: the self-check of amortised inference (grid or particles).
- :func:`activesci.plots.closure_figure` and :func:`activesci.plots.coverage_figure` draw them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import special

from activesci.errors import ValidationError
from activesci.inference.grid import GridPosterior
from activesci.progress import progress_bar
from activesci.typing import Progress

__all__ = [
    "MAX_SCORE_SHIFT",
    "closure",
    "coverage",
    "rounds_against_exact",
    "score_check",
]

#: A learned posterior whose score bias would move its mean by more than this many posterior
#: standard deviations (beyond twice the check's own Monte Carlo error) is flagged.
MAX_SCORE_SHIFT = 0.3


def _check_same_grid(exact: Any, learned: Any) -> None:
    for name, post in (("exact", exact), ("learned", learned)):
        if not isinstance(post, GridPosterior):
            raise ValidationError(
                f"closure compares two GridPosteriors; {name} is a {type(post).__name__}"
            )
    if exact.space.names != learned.space.names or not np.array_equal(exact.grid, learned.grid):
        raise ValidationError(
            f"closure needs the same grid on both sides: exact has {exact.space.names} on "
            f"{exact.shape} cells over {exact.space.bounds.tolist()}, learned has "
            f"{learned.space.names} on {learned.shape} cells over {learned.space.bounds.tolist()}"
        )


def _length(intervals: Sequence[tuple[float, float]]) -> float:
    return float(sum(hi - lo for lo, hi in intervals))


def _overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    """Length of the intersection of two unions of disjoint intervals."""
    return float(sum(max(0.0, min(ah, bh) - max(al, bl)) for al, ah in a for bl, bh in b))


def closure(exact: GridPosterior, learned: GridPosterior, *, level: float = 0.68) -> dict[str, Any]:
    """Compare a learned posterior with the exact one on the same grid.

    Parameters
    ----------
    exact, learned : GridPosterior
        Built on the same grid (same space and resolution), e.g. with ``ExactLikelihood`` and
        with a trained estimator from the same observations.
    level : float
        Probability of the highest-density regions compared by ``hdr_mismatch``.

    Returns
    -------
    dict
        ``kl``: ``KL(exact || learned)`` over the grid cells, in nats (``inf`` if the learned
        posterior vanishes where the exact one does not); ``mean_shift`` ``(P,)``:
        ``|mean_learned - mean_exact| / std_exact``; ``width_ratio`` ``(P,)``:
        ``std_learned / std_exact``; ``hdr_mismatch`` ``(P,)``: length of the symmetric
        difference of the two marginal HDRs over the exact HDR's length (0.1 means they agree
        to 10% of their width); ``level``.

    Raises
    ------
    ValidationError
        The posteriors are not GridPosteriors on the same grid.

    Examples
    --------
    >>> import numpy as np
    >>> from activesci import tasks
    >>> from activesci.inference import ExactLikelihood, GridPosterior
    >>> task = tasks.gaussian()
    >>> sim = task.simulator
    >>> post = GridPosterior(sim.parameters, simulator=sim)
    >>> post = post.update(task.experiment(seed=0).run([np.pi]), ExactLikelihood(sim))
    >>> m = closure(post, post.copy())
    >>> m["kl"], m["mean_shift"].tolist(), m["width_ratio"].tolist(), m["hdr_mismatch"].tolist()
    (0.0, [0.0], [1.0], [0.0])
    """
    _check_same_grid(exact, learned)
    lp_e = exact.log_posterior - special.logsumexp(exact.log_posterior)
    lp_l = learned.log_posterior - special.logsumexp(learned.log_posterior)
    p_e = np.exp(lp_e)
    with np.errstate(invalid="ignore"):
        # a cell the learned update dropped as negligible (below exp(-NEGLIGIBLE) of its
        # mode, -inf) adds p_e (lp_e - lp_l) with p_e that small: it is left out, not infinite
        terms = np.where((p_e > 0) & np.isfinite(lp_l), p_e * (lp_e - lp_l), 0.0)
    mean_e, std_e = exact.mean(), exact.std()
    hdr_e, hdr_l = exact.hdr(level), learned.hdr(level)
    mismatch = [
        (_length(a) + _length(b) - 2.0 * _overlap(a, b)) / _length(a)
        for a, b in zip(hdr_e, hdr_l, strict=True)
    ]
    return {
        "kl": float(terms.sum()),
        "mean_shift": np.abs(learned.mean() - mean_e) / std_e,
        "width_ratio": learned.std() / std_e,
        "hdr_mismatch": np.array(mismatch),
        "level": level,
    }


def rounds_against_exact(
    simulator: Any, observations: Sequence[Any], rounds: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The exact posterior of each stored round's data beside the learned one (1 parameter).

    The exact likelihood referees every round: for round ``k`` the posterior of the first
    ``k + 1`` observations is rebuilt with ``ExactLikelihood`` on the grid the learned round
    used (its stored marginal), and compared by mean and width.

    Parameters
    ----------
    simulator : Simulator
        With ``log_likelihood`` and one parameter.
    observations : sequence of Observation
        The run's observations in order.
    rounds : sequence of dict
        The stored round summaries (``mean``, ``std``, ``marginals``, ``check``).

    Returns
    -------
    list of dict
        Per round: ``round``, ``events``, learned and exact ``mean``/``std``, ``shift`` (in
        exact std), ``width_ratio`` (learned / exact) and the self-check's ``ok``.
    """
    from activesci.inference.likelihood import ExactLikelihood
    from activesci.inference.truncation import narrowed_space

    space = simulator.parameters
    if len(space) != 1:
        raise ValidationError(f"rounds_against_exact handles one parameter, got {space.names}")
    exact = ExactLikelihood(simulator)
    out = []
    post = None
    for r in rounds:
        grid = np.asarray(r["marginals"][space.names[0]]["grid"], dtype=float)
        half = 0.5 * (grid[1] - grid[0])
        bounds = np.array([[grid[0] - half, grid[-1] + half]])
        if post is None or not np.allclose(post.space.bounds, bounds) or post.shape != (len(grid),):
            post = GridPosterior(narrowed_space(space, bounds), len(grid), simulator=simulator)
        for obs in observations[len(post.observations) : r["round"] + 1]:
            post.update(obs, exact)
        mean, std = float(post.mean()[0]), float(post.std()[0])
        check = r.get("check") or {}
        out.append(
            {
                "round": r["round"],
                "events": post.n_events,
                "learned_mean": r["mean"][0],
                "learned_std": r["std"][0],
                "exact_mean": mean,
                "exact_std": std,
                "shift": (r["mean"][0] - mean) / std,
                "width_ratio": r["std"][0] / std,
                "check_ok": check.get("ok"),
            }
        )
    return out


def score_check(
    posterior: Any,
    estimator: Any,
    simulator: Any,
    observations: Sequence[Any],
    *,
    rng: np.random.Generator | int | None = None,
    events: int | None = None,
    draws: int = 4,
    max_shift: float = MAX_SCORE_SHIFT,
) -> dict[str, Any]:
    """Would the learned score's bias move the posterior? A check with no exact likelihood.

    Under data simulated at ``theta``, the true score ``d/dtheta log p(x | theta)`` averages to
    zero, whatever the model. At each of ``draws`` points drawn from the posterior, simulate
    events at every design run and take the learned score there (central
    differences of ``log_ratio``, steps of 1% of the posterior std). Weighted by the events
    observed at each design, the average gives the bias ``g`` of the data's summed learned
    score, and the scores' covariance the data's Fisher information ``I``. With the prior's
    precision ``L`` (from its variances), the mode's local posterior covariance is
    ``C = (I + L)^-1``, and to first order the bias moves the posterior by ``C g``: in
    posterior standard deviations, ``shift_j = (C g)_j / sqrt(C_jj)``. Each draw is a point of
    one mode, so
    multimodal posteriors (interchangeable sources) are checked mode by mode; the reported
    shift is the median over the draws of its size. The count's Poisson term is exact and not
    checked.

    Parameters
    ----------
    posterior : Posterior
        The learned posterior (grid or particles) built from ``observations``.
    estimator : LogRatioEstimator
        The ratio estimator that built it.
    simulator : Simulator
        Simulates the events (``sample``).
    observations : sequence of Observation
        The data so far.
    rng : numpy.random.Generator or int, optional
        Draws the points and simulates the events.
    events : int, optional
        Events simulated per design and point; default ``100 n`` for a design observed with
        ``n`` events, between 1,000 and 100,000: the check's error in posterior std is about
        ``sqrt(n / events)``, 0.1.
    draws : int
        Points drawn from the posterior.
    max_shift : float
        Flag when ``|shift| - 2 error`` exceeds it (in posterior std).

    Returns
    -------
    dict
        ``kind`` (``"score"``), ``score_shift`` and ``score_error`` (per parameter),
        ``calibration_shift`` (the same shift, under the key the reports read),
        ``width_ratio`` (None: not measured), ``ok`` and ``warnings`` (sentences).

    Examples
    --------
    >>> import activesci as asci
    >>> from activesci.inference import ExactLikelihood, GridPosterior
    >>> task = asci.tasks.gaussian()
    >>> obs = [task.experiment(seed=1).run([3.0])]
    >>> post = GridPosterior(task.parameters, simulator=task.simulator)
    >>> post = post.update(obs[0], ExactLikelihood(task.simulator))
    >>> check = score_check(post, ExactLikelihood(task.simulator), task.simulator, obs, rng=0)
    >>> check["ok"], abs(check["score_shift"][0]) < 0.2
    (True, True)
    """
    if not observations:
        raise ValidationError("the score check needs at least one observation")
    rng = np.random.default_rng(rng)
    space = posterior.space
    lo, hi = space.bounds[:, 0], space.bounds[:, 1]
    std = np.sqrt(np.maximum(np.diag(np.atleast_2d(posterior.cov())), 1e-300))
    step = np.minimum(0.01 * std, 0.25 * (hi - lo))
    counts: dict[tuple[float, ...], tuple[np.ndarray, int]] = {}
    for obs in observations:
        key = tuple(np.round(np.asarray(obs.design, dtype=float), 12))
        design, n = counts.get(key, (np.asarray(obs.design, dtype=float), 0))
        counts[key] = (design, n + int(obs.n))
    prior = np.diag(1.0 / np.maximum(space.sample(4096, rng).var(axis=0), 1e-300))
    shifts, errors = [], []
    for point in posterior.sample(draws, rng):
        centre = np.clip(point, lo + step, hi - step)
        shift, error = _score_shift(centre, step, prior, counts, estimator, simulator, rng, events)
        shifts.append(shift)
        errors.append(error)
    shift = np.median(np.abs(shifts), axis=0)
    error = np.median(errors, axis=0)
    worst = int(np.argmax(shift - 2 * error))
    warnings = []
    if shift[worst] - 2 * error[worst] > max_shift:
        warnings.append(
            f"the learned score is biased where the posterior lies: it moves "
            f"{space.names[worst]} by {shift[worst]:.2f} posterior std (± {error[worst]:.2f}); "
            "retrain around the data (sequential inference) or with more samples"
        )
    return {
        "kind": "score",
        "score_shift": shift.tolist(),
        "score_error": error.tolist(),
        "calibration_shift": shift.tolist(),
        "width_ratio": None,
        "ok": not warnings,
        "warnings": warnings,
    }


def _score_shift(
    centre: np.ndarray,
    step: np.ndarray,
    prior: np.ndarray,
    counts: dict[tuple[float, ...], tuple[np.ndarray, int]],
    estimator: Any,
    simulator: Any,
    rng: np.random.Generator,
    events: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The learned score's bias at ``centre`` in local posterior std, and its MC error.

    ``prior`` is the prior's precision ``(P, P)``.
    """
    p = len(centre)
    points = np.repeat(centre[None, :], 2 * p, axis=0)
    points[np.arange(p), np.arange(p)] += step
    points[p + np.arange(p), np.arange(p)] -= step
    bias, variance, fisher = np.zeros(p), np.zeros(p), np.zeros((p, p))
    for design, n in counts.values():
        if n == 0:
            continue
        m = int(events) if events is not None else int(np.clip(100 * n, 1_000, 100_000))
        x = simulator.sample(centre, design, rng, n=m).x
        ratios = np.asarray(estimator.log_ratio(x, points, design), dtype=float)
        scores = (ratios[:p] - ratios[p:]) / (2 * step[:, None])  # (P, events)
        bias += n * scores.mean(axis=1)
        variance += n**2 * scores.var(axis=1, ddof=1) / m
        fisher += n * np.atleast_2d(np.cov(scores))
    inverse = np.linalg.inv(fisher + prior)
    width = np.sqrt(np.maximum(np.diag(inverse), 1e-300))
    shift = inverse @ bias / width
    error = np.sqrt(np.maximum(np.diag(inverse @ np.diag(variance) @ inverse), 0.0)) / width
    return shift, error


def _contains(intervals: Sequence[tuple[float, float]], value: float) -> bool:
    return any(lo <= value <= hi for lo, hi in intervals)


def coverage(
    simulator: Any,
    estimator: Any,
    posterior_factory: Callable[[], Any],
    *,
    design: Any,
    n_datasets: int = 50,
    levels: Sequence[float] = (0.5, 0.68, 0.9, 0.95),
    seed: int = 0,
    progress: Progress = True,
) -> dict[str, Any]:
    """Empirical coverage of central intervals and HDRs, truths drawn from the prior.

    For each dataset ``i``: draw ``theta ~ prior``, run ``simulator.run_experiment`` at each
    design, update a fresh posterior with every observation and record whether the truth lies
    inside the central interval and inside the highest-density region of each marginal at each
    level. A calibrated posterior (right likelihood, right prior) covers at the nominal rate.

    Parameters
    ----------
    simulator : Simulator
        Draws the data (and the truths, from ``simulator.parameters``).
    estimator : LogRatioEstimator or callable
        An estimator, or a callable (e.g. the class ``ExactLikelihood``) that takes the
        simulator and returns one; it is called once.
    posterior_factory : callable
        Takes no argument and returns a fresh, empty posterior, e.g.
        ``lambda: GridPosterior(sim.parameters, simulator=sim)``.
    n_datasets : int
        Number of simulated datasets.
    levels : sequence of float
        Credibility levels in (0, 1).
    seed : int
        Dataset ``i`` uses the ``i``-th child of ``numpy.random.SeedSequence(seed)``.
    design : array_like or mapping
        One design ``(D,)`` or several ``(k, D)``: each dataset runs one experiment per row.
    progress : bool or callable
        A progress bar, or ``progress("coverage", done, n_datasets)`` after every dataset
        (:func:`activesci.progress.progress_bar`).

    Returns
    -------
    dict
        ``levels`` ``(L,)``; ``central`` and ``hdr`` ``(L, P)``: fraction of datasets whose
        truth was covered; ``se`` ``(L,)``: binomial standard error ``sqrt(level (1 - level) /
        n)`` expected of a calibrated posterior; ``central_se``, ``hdr_se`` ``(L, P)``: the
        binomial standard errors of the measured fractions; ``flags_central``, ``flags_hdr``
        ``(n, L, P)`` bool: the raw per-dataset flags; ``truths`` ``(n, P)``;
        ``parameter_names``; ``n_datasets``.

    Examples
    --------
    >>> import numpy as np
    >>> from activesci import tasks
    >>> from activesci.inference import ExactLikelihood, GridPosterior
    >>> sim = tasks.gaussian().simulator
    >>> res = coverage(sim, ExactLikelihood, lambda: GridPosterior(sim.parameters, 101),
    ...                n_datasets=5, design=[np.pi], progress=False)
    >>> res["central"].shape, res["flags_hdr"].shape
    ((4, 1), (5, 4, 1))
    """
    if not (isinstance(n_datasets, int | np.integer) and n_datasets >= 1):
        raise ValidationError(f"n_datasets must be a positive integer, got {n_datasets!r}")
    lv = np.asarray(levels, dtype=float).reshape(-1)
    if lv.size == 0 or not ((lv > 0) & (lv < 1)).all():
        raise ValidationError(f"levels must be probabilities in (0, 1), got {levels!r}")
    designs = simulator.designs.validate(design)
    if isinstance(estimator, type) or not callable(getattr(estimator, "log_ratio", None)):
        if not callable(estimator):
            raise ValidationError(
                f"estimator must have log_ratio(x, theta, design) or be a callable that "
                f"builds one from the simulator; got {type(estimator).__name__}"
            )
        estimator = estimator(simulator)
    names = list(simulator.parameters.names)
    n, n_levels, dim = int(n_datasets), lv.size, len(names)
    flags_central = np.zeros((n, n_levels, dim), dtype=bool)
    flags_hdr = np.zeros((n, n_levels, dim), dtype=bool)
    truths = np.empty((n, dim))
    children = np.random.SeedSequence(seed).spawn(n)
    with progress_bar(progress, total=n, desc="coverage") as bar:
        for i in range(n):
            rng = np.random.default_rng(children[i])
            truth = simulator.parameters.sample(1, rng)
            truths[i] = truth[0]
            post = posterior_factory()
            for row in designs:
                post.update(simulator.run_experiment(truth, row[None, :], rng), estimator)
            for k, level in enumerate(lv):
                central, hdr = post.interval(level), post.hdr(level)
                for j in range(dim):
                    value = truth[0, j]
                    flags_central[i, k, j] = central[j, 0] <= value <= central[j, 1]
                    flags_hdr[i, k, j] = _contains(hdr[j], value)
            bar.update()
    central = flags_central.mean(axis=0)
    hdr = flags_hdr.mean(axis=0)
    return {
        "levels": lv,
        "parameter_names": names,
        "n_datasets": n,
        "central": central,
        "hdr": hdr,
        "se": np.sqrt(lv * (1.0 - lv) / n),
        "central_se": np.sqrt(central * (1.0 - central) / n),
        "hdr_se": np.sqrt(hdr * (1.0 - hdr) / n),
        "flags_central": flags_central,
        "flags_hdr": flags_hdr,
        "truths": truths,
    }
