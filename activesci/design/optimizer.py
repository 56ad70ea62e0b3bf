"""Choosing the next experiment: a skopt ask/tell optimiser and the design strategies.

``DesignOptimizer`` wraps ``skopt.Optimizer`` (a Gaussian-process surrogate with a Gaussian
noise term, since the utility is a Monte Carlo estimate) and *maximises* a utility. Strategies
turn a round's context into one design: ``eig`` (Bayesian optimisation of the expected
information gain), and the baselines ``grid`` (uniform scan), ``random``, ``fixed`` and
``scan`` (a list of designs cycled). Register your own with :func:`register_strategy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from activesci.design.nested import SimulatedExperiments, simulate_experiments
from activesci.design.surrogate import eig_surrogate
from activesci.design.utility import eig_estimator, expected_information_gain
from activesci.errors import ValidationError
from activesci.inference.grid import GridPosterior
from activesci.inference.likelihood import as_estimator
from activesci.registry import Registry
from activesci.spaces import Space
from activesci.typing import Strategy

__all__ = [
    "STRATEGIES",
    "DesignContext",
    "DesignOptimizer",
    "EIGStrategy",
    "FixedStrategy",
    "GridStrategy",
    "RandomStrategy",
    "ScanStrategy",
    "Strategy",
    "check_cost",
    "make_strategy",
    "register_strategy",
]


class DesignOptimizer:
    """Maximise a noisy utility over a design space with skopt's ask/tell.

    Parameters
    ----------
    space : Space
        The designs.
    n_initial_points : int
        Space-filling random points before the surrogate drives the search.
    acq_func : str
        skopt acquisition (``"gp_hedge"``, ``"EI"``, ``"LCB"``, ``"PI"``).
    seed : int, optional
        Seeds the surrogate and the random points.
    n_acquisition_points : int
        Random designs at which the acquisition is evaluated before L-BFGS polishes the best
        (skopt's default is 10000, which costs ~0.1 s per ask and gains nothing in 1-3 D).

    Examples
    --------
    >>> from activesci.spaces import Real, Space
    >>> opt = DesignOptimizer(Space([Real("d", 0.0, 1.0)]), n_initial_points=3, seed=0)
    >>> for _ in range(8):
    ...     d = opt.ask()
    ...     opt.tell(d, -((d[0] - 0.3) ** 2))
    >>> bool(abs(opt.best()[0][0] - 0.3) < 0.1)
    True
    """

    def __init__(
        self,
        space: Space,
        *,
        n_initial_points: int = 5,
        acq_func: str = "gp_hedge",
        seed: int | None = None,
        n_acquisition_points: int = 2000,
    ) -> None:
        from skopt import Optimizer

        if not (isinstance(n_initial_points, int) and n_initial_points >= 1):
            raise ValidationError(f"n_initial_points must be >= 1, got {n_initial_points!r}")
        if not (isinstance(n_acquisition_points, int) and n_acquisition_points >= 1):
            raise ValidationError(
                f"n_acquisition_points must be >= 1, got {n_acquisition_points!r}"
            )
        self.space = space
        self._opt = Optimizer(
            space.to_skopt(),
            base_estimator="gp",
            n_initial_points=n_initial_points,
            initial_point_generator="lhs",
            acq_func=acq_func,
            acq_optimizer_kwargs={"n_points": n_acquisition_points},
            random_state=seed,
        )
        self.designs: list[np.ndarray] = []
        self.values: list[float] = []

    def ask(self, n: int | None = None) -> np.ndarray:
        """The next design ``(D,)``, or ``n`` designs ``(n, D)`` (constant-liar batch).

        Until :meth:`tell` is called, ``ask()`` returns the same proposal.
        """
        if n is None:
            return self.space.validate([self._opt.ask()])[0]
        return self.space.validate(self._opt.ask(n_points=int(n), strategy="cl_min"))

    def tell(self, design: Any, value: float | Sequence[float]) -> None:
        """Report the utility (to maximise) of ``design``, or of ``n`` designs ``(n, D)``.

        Telling many points at once fits the surrogate once instead of once per point.
        """
        values = np.atleast_1d(np.asarray(value, dtype=float))
        points = self.space.validate(design)
        if values.ndim != 1 or len(values) != len(points):
            raise ValidationError(
                f"give one utility per design: {len(points)} design(s), {values.size} value(s)"
            )
        for point, v in zip(points, values, strict=True):
            if not np.isfinite(v):
                raise ValidationError(f"the utility at {point.tolist()} is not finite: {v!r}")
        if len(points) == 1:
            self._opt.tell(points[0].tolist(), -float(values[0]))
        else:
            self._opt.tell(points.tolist(), (-values).tolist())
        self.designs.extend(points)
        self.values.extend(values.tolist())

    def surrogate(self, points: Any) -> tuple[np.ndarray, np.ndarray]:
        """Surrogate mean and standard deviation of the utility at ``points`` ``(n, D)``.

        Before the first surrogate fit (the random initial points) both are NaN.
        """
        pts = self.space.validate(points)
        if not self._opt.models:
            nan = np.full(len(pts), np.nan)
            return nan, nan
        model = self._opt.models[-1]
        mean, std = model.predict(self._opt.space.transform(pts.tolist()), return_std=True)
        return -np.asarray(mean), np.asarray(std)

    def best(self, allowed: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """The evaluated design with the highest surrogate mean (raw value before a surrogate).

        ``allowed`` ``(n_evaluated,)`` bool: only those may be chosen (abandoned designs not).

        Raises
        ------
        ValidationError
            Nothing evaluated yet, or nothing allowed.
        """
        if not self.designs:
            raise ValidationError("nothing evaluated yet: call ask() and tell() first")
        scores = np.asarray(self.values, dtype=float)
        if self._opt.models:
            scores = self.surrogate(np.array(self.designs))[0]
        if allowed is not None:
            if not np.any(allowed):
                raise ValidationError("every evaluated design was abandoned: none to choose")
            scores = np.where(allowed, scores, -np.inf)
        i = int(np.argmax(scores))
        return self.designs[i], float(scores[i])


@dataclass
class DesignContext:
    """What a strategy may use to choose the design of one round."""

    round: int
    space: Space
    posterior: Any
    simulator: Any
    estimator: Any
    seed: int
    #: ``cost(design, previous)`` of running ``design`` after ``previous`` (None: the first)
    cost: Callable[[np.ndarray, np.ndarray | None], float] | None = None
    #: The design run last (None before the first round)
    previous: np.ndarray | None = None
    #: Designs abandoned in this run ``(k, D)``: a strategy should not propose them again
    abandoned: np.ndarray | None = None
    #: Proposals abandoned at this round before this one: the random streams move on
    attempt: int = 0

    def rng(self, purpose: int = 0) -> np.random.Generator:
        """A generator determined by (seed, round, purpose, attempt): resumed runs repeat it."""
        key = [self.seed, self.round, purpose] + ([self.attempt] if self.attempt else [])
        return np.random.default_rng(key)

    def allowed(self, designs: Any) -> np.ndarray:
        """Which of ``designs`` ``(n, D)`` are not abandoned ones, ``(n,)`` bool."""
        designs = np.atleast_2d(np.asarray(designs, dtype=float))
        if self.abandoned is None or not len(self.abandoned):
            return np.ones(len(designs), dtype=bool)
        tolerance = 1e-9 * np.ptp(self.space.bounds, axis=1)
        near = np.abs(designs[:, None, :] - self.abandoned[None, :, :]) <= tolerance
        return ~near.all(axis=2).any(axis=1)

    def cost_of(self, design: np.ndarray, previous: np.ndarray | None = None) -> float:
        """The cost of ``design`` after ``previous`` (default: the design run last).

        1 without a cost model.

        Raises
        ------
        ValidationError
            The cost model returns something other than a positive finite number.
        """
        if self.cost is None:
            return 1.0
        after = self.previous if previous is None else previous
        return check_cost(self.cost(np.asarray(design, dtype=float), after), design)


def check_cost(value: Any, design: Any) -> float:
    """``value`` as a float if it is a positive finite cost, else a ValidationError."""
    try:
        cost = float(value)
    except (TypeError, ValueError):
        cost = float("nan")
    if not (np.isfinite(cost) and cost > 0):
        raise ValidationError(
            f"the cost of design {np.asarray(design).tolist()} is {value!r}; expected a "
            "positive finite number"
        )
    return cost


@dataclass
class EIGStrategy:
    """Bayesian optimisation of the expected information gain, fresh each round.

    Each round runs ``n_calls`` ask/tell steps of a :class:`DesignOptimizer` on the EIG
    (estimated with ``n_samples`` simulated experiments and common random numbers) and picks
    the evaluated design with the highest surrogate mean. The previous round's design is
    evaluated first: the optimum moves slowly as knowledge grows, and a narrow peak (the Z
    resonance is 2.5 GeV wide in a 190 GeV range) is easy for random starting points to miss.
    In the first round of a 1-D design space, ``n_first_grid`` evenly spaced designs play that
    role.
    ``exact=True`` uses the simulator's exact likelihood: the oracle of benchmarks.

    ``method`` chooses the EIG estimator (:func:`~activesci.design.utility.
    expected_information_gain`): ``"auto"`` takes the nested grid estimate where the posterior
    is a grid and either the likelihood is exact or there is one parameter, and the
    contrastive one otherwise (particles; or a learned ratio on a grid of 2-3 parameters, where
    a nested update of every cell would cost a network evaluation per cell and event).

    With a cost model (``context.cost``, e.g. the hours to move a beam energy), the optimiser
    maximises the EIG per unit cost, ``EIG(d) / cost(d, design run last)``; the record keeps
    the EIG and the cost of every design it evaluated.

    :meth:`propose_batch` chooses ``q`` designs greedily: the first as above, each next one
    among the ``batch_candidates`` best designs of that search, by its EIG on the posterior
    updated with a fantasised observation at every design chosen before it (the experiment
    simulated at the posterior mean: a believer in outcome space, as kriging believer and
    BoTorch's pending points are in utility space). A design may be chosen again where
    repeating it is worth most. With the grid method the re-scoring reuses the search's
    simulated experiments, reweighted to each fantasy
    (:meth:`~activesci.design.utility.SimulatedExperiments.eig_on`), so a batch costs little
    more than one design.

    ``n_contrast`` sets the contrastive estimate's draws (default
    :data:`~activesci.design.utility.N_CONTRAST`; the nested grid estimate has none).
    """

    n_calls: int = 12
    n_initial_points: int = 5
    n_first_grid: int = 32
    n_samples: int = 24
    exact: bool = False
    method: str = "auto"
    batch_candidates: int = 4
    n_contrast: int | None = None
    name: str = "eig"
    record: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method != "auto":
            eig_estimator(self.method)  # an unknown name fails here, not in the first round

    def _method(self, posterior: Any) -> str:
        if self.method != "auto":
            return self.method
        on_grid = isinstance(posterior, GridPosterior)
        return "grid" if on_grid and (self.exact or len(posterior.space) == 1) else "contrastive"

    def _estimator(self, context: DesignContext) -> Any:
        """What scores the hypothetical experiments: the exact likelihood for the oracle."""
        return as_estimator("exact" if self.exact else context.estimator, context.simulator)

    def _eig(
        self,
        context: DesignContext,
        posterior: Any,
        design: Any,
        method: str,
        keep: dict[tuple[float, ...], SimulatedExperiments] | None = None,
    ) -> Any:
        """The EIG estimate of ``design`` on ``posterior``, with this round's common numbers.

        With ``keep``, the grid method's simulated experiments are kept there by design, for
        a batch's fantasised re-scoring.
        """
        common = {"n_samples": self.n_samples, "rng": context.rng(2)}
        if method != "grid" or keep is None:
            if method == "contrastive" and self.n_contrast is not None:
                common["n_contrast"] = self.n_contrast
            return expected_information_gain(
                posterior,
                context.simulator,
                design,
                method=method,
                estimator=self._estimator(context),
                **common,
            )
        experiments = simulate_experiments(
            posterior, context.simulator, design, estimator=self._estimator(context), **common
        )
        keep[_key(design)] = experiments
        return experiments.eig()

    def propose_batch(self, context: DesignContext, q: int) -> np.ndarray:
        """``q`` designs ``(q, D)``, greedily on fantasised posteriors (see the class)."""
        kept: dict[tuple[float, ...], SimulatedExperiments] = {}
        return _batch(self, context, self._search(context, kept), q, kept)

    def propose(self, context: DesignContext) -> np.ndarray:
        """Maximise the EIG over the design space."""
        return self._search(context, None)

    def _search(
        self,
        context: DesignContext,
        keep: dict[tuple[float, ...], SimulatedExperiments] | None,
    ) -> np.ndarray:
        """:meth:`propose`'s search; ``keep`` as in :meth:`_eig`."""
        opt = DesignOptimizer(
            context.space,
            n_initial_points=min(self.n_initial_points, self.n_calls),
            seed=int(context.rng(1).integers(2**31)),
        )
        previous = [obs.design for obs in context.posterior.observations[-1:]]
        if not previous and len(context.space) == 1:
            previous = list(_curve_points(context.space, self.n_first_grid))

        seconds: list[float] = []
        method = self._method(context.posterior)

        costs: list[float] = []
        raw: list[float] = []

        def utility(estimate: Any, design: np.ndarray) -> float:
            raw.append(estimate.value)
            costs.append(context.cost_of(design))
            return estimate.value / costs[-1]

        def eig(design: np.ndarray) -> Any:
            start = time.perf_counter()
            estimate = self._eig(context, context.posterior, design, method, keep)
            seconds.append(time.perf_counter() - start)
            return estimate

        first = [eig(design) for design in previous]
        stderr = [e.stderr for e in first]
        if previous:
            values = [utility(e, d) for e, d in zip(first, previous, strict=True)]
            opt.tell(np.array(previous), values)
        for _ in range(self.n_calls):
            design = opt.ask()
            estimate = eig(design)
            opt.tell(design, utility(estimate, design))
            stderr.append(estimate.stderr)
        best, value = opt.best(allowed=context.allowed(opt.designs))
        evaluated = np.array(opt.designs)
        curve = _curve_points(context.space)
        fit = None
        if curve is not None:
            # the plotted curve passes through every evaluated design (the peak is narrower
            # than the grid's spacing); its surrogate is fitted for the plot only and does not
            # touch the optimiser, so the chosen design is the same with or without it
            curve = np.unique(np.concatenate([curve[:, 0], evaluated[:, 0]]))[:, None]
            fit = eig_surrogate(evaluated, raw, curve, context.space.bounds, stderr=stderr)
        priced = context.cost is not None
        chosen = int(np.argmin(np.abs(evaluated - best).sum(axis=1)))
        self.record = {
            "evaluated": evaluated.tolist(),
            "eig": raw,
            "cost": costs if priced else None,
            "chosen_utility": value if priced else None,
            "eig_stderr": stderr,
            "eig_seconds": seconds,
            "eig_method": method,
            "chosen_eig": raw[chosen] if priced else value,
            "curve": None if curve is None else curve.tolist(),
            "surrogate": None if fit is None else "log-warped GP (plot only)",
            "surrogate_mean": None if fit is None else fit.mean.tolist(),
            "surrogate_std": None if fit is None else fit.std.tolist(),
            "surrogate_lower": None if fit is None else fit.lower.tolist(),
            "surrogate_upper": None if fit is None else fit.upper.tolist(),
        }
        return best


def _batch(
    strategy: EIGStrategy,
    context: DesignContext,
    first: np.ndarray,
    q: int,
    kept: dict[tuple[float, ...], SimulatedExperiments],
) -> np.ndarray:
    """The ``q`` designs of :meth:`EIGStrategy.propose_batch`, ``first`` already chosen.

    A candidate whose simulated experiments the search kept (the grid method) is re-scored on
    each fantasy by reweighting them (:meth:`SimulatedExperiments.eig_on`): no simulation and
    no network evaluation. It is simulated anew only where the weights degenerate (a fantasy
    far narrower than the posterior, as in the first round), and a contrastive one always.
    """
    record = strategy.record
    evaluated, values = np.array(record["evaluated"]), np.array(record["eig"])
    order = np.argsort(-values, kind="stable")
    order = order[context.allowed(evaluated)[order]]  # abandoned designs are no candidates
    best = evaluated[order[: strategy.batch_candidates]]
    candidates = np.unique(np.concatenate([first[None, :], best]), axis=0)
    estimator = strategy._estimator(context)
    posterior, chosen, gains = context.posterior.copy(), [first], [record["chosen_eig"]]
    reweighted = 0
    for i in range(1, q):
        fantasy = context.simulator.run_experiment(
            posterior.mean(), chosen[-1], context.rng(10 + i)
        )
        posterior.update(fantasy, estimator)
        values = []
        for d in candidates:
            experiments = kept.get(_key(d))
            estimate = None if experiments is None else experiments.eig_on(posterior)
            if estimate is None:
                estimate = strategy._eig(context, posterior, d, record["eig_method"])
            else:
                reweighted += 1
            values.append(estimate.value)
        prices = [context.cost_of(d, chosen[-1]) for d in candidates]
        best = int(np.argmax(np.asarray(values) / prices))
        chosen.append(candidates[best])
        gains.append(float(values[best]))
    strategy.record = record | {
        "batch": [c.tolist() for c in chosen],
        "batch_eig": gains,
        "batch_candidates": candidates.tolist(),
        "batch_reweighted": reweighted,
    }
    return np.array(chosen)


def _key(design: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(design, dtype=float).reshape(-1))


def _curve_points(space: Space, n: int = 200) -> np.ndarray | None:
    """A 1-D grid over the design space for plotting the surrogate (None for D > 1)."""
    if len(space) != 1:
        return None
    lo, hi = space.bounds[0]
    return np.linspace(lo, hi, n)[:, None]


def _next_allowed(points: np.ndarray, start: int, context: DesignContext) -> np.ndarray:
    """``points[start % n]`` of a cycle, or the next one that was not abandoned.

    Where every point was abandoned, ``points[start % n]`` (the learner refuses it by name).
    """
    order = (start + np.arange(len(points))) % len(points)
    allowed = context.allowed(points[order])
    return points[order[int(np.argmax(allowed))] if allowed.any() else order[0]]


@dataclass
class GridStrategy:
    """A uniform scan: ``points`` designs evenly spread over each dimension, cycled.

    An abandoned point is skipped for the next one of the cycle.
    """

    points: int = 8
    name: str = "grid"
    record: dict[str, Any] = field(default_factory=dict)

    def propose(self, context: DesignContext) -> np.ndarray:
        """The next point of the scan."""
        bounds = context.space.bounds
        axes = [np.linspace(lo, hi, self.points) for lo, hi in bounds]
        mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
        return _next_allowed(context.space.validate(mesh), context.round, context)


@dataclass
class RandomStrategy:
    """A design drawn uniformly from the space each round."""

    name: str = "random"
    record: dict[str, Any] = field(default_factory=dict)

    def propose(self, context: DesignContext) -> np.ndarray:
        """A random design."""
        return context.space.sample(1, context.rng(3))[0]


@dataclass
class ScanStrategy:
    """A given list of designs, cycled (e.g. a LEP-style scan at peak-2, peak, peak+2 GeV).

    An abandoned design is skipped for the next one of the list.
    """

    designs: Sequence[Sequence[float]] = ()
    name: str = "scan"
    record: dict[str, Any] = field(default_factory=dict)

    def propose(self, context: DesignContext) -> np.ndarray:
        """The next design of the list."""
        return _next_allowed(context.space.validate(self.designs), context.round, context)


@dataclass
class FixedStrategy:
    """Always the same design (e.g. the Z pole: the physicist's default)."""

    design: Sequence[float] = ()
    name: str = "fixed"
    record: dict[str, Any] = field(default_factory=dict)

    def propose(self, context: DesignContext) -> np.ndarray:
        """The fixed design."""
        return context.space.validate(self.design)[0]


#: Strategy factories by name (and the entry points of the group ``activesci.strategies``);
#: ``make_strategy(name, **options)`` builds one.
STRATEGIES: Registry[Strategy] = Registry(
    "strategy",
    {
        "eig": EIGStrategy,
        "grid": GridStrategy,
        "random": RandomStrategy,
        "scan": ScanStrategy,
        "fixed": FixedStrategy,
    },
    group="activesci.strategies",
    ref="package.module:factory",
)


#: ``register_strategy(name, factory)`` makes ``factory(**options)`` available as
#: ``strategy=name`` everywhere in this process.
register_strategy = STRATEGIES.register


def make_strategy(strategy: str | Strategy, **options: Any) -> Strategy:
    """Build a strategy from its registered name (or pass an instance through)."""
    if not isinstance(strategy, str):
        return strategy
    return STRATEGIES.make(strategy, **options)
