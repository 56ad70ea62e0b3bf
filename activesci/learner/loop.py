"""The active learner's class: construction, ask/tell and the loops.

See :mod:`activesci.learner`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from activesci.design.optimizer import DesignContext, Strategy, check_cost, make_strategy
from activesci.errors import ValidationError
from activesci.inference.diagnostics import score_check
from activesci.inference.grid import GridPosterior
from activesci.inference.methods import check_capabilities, resolve_method
from activesci.inference.particles import SamplePosterior
from activesci.inference.ratio import RatioEstimator
from activesci.inference.representations import POSTERIORS
from activesci.inference.sequential import calibration_events as default_calibration_events
from activesci.learner.abandoning import Abandoning
from activesci.learner.designs import _BAND, DESIGN_HORIZON
from activesci.learner.events import LoopEvents
from activesci.learner.resuming import Resumable
from activesci.learner.sequential import LOCAL_ENSEMBLE, TRAIN_MARGIN, SequentialInference
from activesci.learner.state import RoundState
from activesci.learner.stopping import MaxCost, MaxLuminosity, TargetStd, as_condition
from activesci.learner.stored import (
    _PENDING,
    _as_task,
    _estimator_spec,
    _open_store,
    _plain,
)
from activesci.learner.training import Trainable
from activesci.tasks import Task
from activesci.threads import configure_threads
from activesci.tracking import as_tracker, metrics_from_summary
from activesci.typing import (
    Experiment,
    Observation,
    Progress,
    check_count,
    check_seed,
)

__all__ = ["ActiveLearner"]

#: Inference modes of a trained estimator.
INFERENCE = ("sequential", "amortised")
#: Posterior representations: ``"auto"`` takes the grid up to ``GRID_MAX_DIM`` parameters.
#: The most parameters ``posterior="auto"`` puts on a grid; more get particles (SMC).
GRID_MAX_DIM = 3


class ActiveLearner(SequentialInference, Resumable, Trainable, Abandoning):
    """Closes the loop: choose a design, run the experiment, update the posterior.

    Parameters
    ----------
    task : Task or str
        The problem (``activesci.tasks``); a name builds it with default options.
    experiment : Experiment, optional
        Where observations come from; default ``task.experiment(seed=seed)`` (hidden truth).
    estimator : str or LogRatioEstimator
        A method name (``"alices"``, ``"carl"``, ...; trained by :meth:`train`, which the
        first ``ask`` calls, and checkpointed in the store), a trained ``RatioEstimator``
        (used as is, checkpointed, and refined like a named one), ``"exact"`` (the
        simulator's exact likelihood: for benchmarks), or any object with ``log_ratio``.
    strategy : str or Strategy
        ``"eig"`` (default), ``"grid"``, ``"random"``, ``"fixed"``, ``"scan"`` or your own.
    store : str, path or RunStore, optional
        A folder for an :class:`~activesci.store.SQLiteRunStore` (resumable), a store object,
        or ``None`` for memory only.
    seed : int
        Seeds the training, the experiment (when built here) and every round's randomness.
    training_samples : int
        Simulations to train a named estimator on.
    resolution : int, optional
        Grid cells per parameter of the posterior.
    strategy_options : dict, optional
        Options of the strategy (merged over the task's defaults).
    tracker : Tracker, str, optional
        Where to report parameters and per-round metrics: a ``Tracker`` (``activesci.tracking``),
        ``"memory"``, or an MLflow ``sqlite:///`` URI.
    inference : {"sequential", "amortised"}
        How a trained estimator turns data into the posterior (ignored for ``"exact"`` and
        estimator objects). ``"sequential"`` (default): the amortised estimator only chooses
        designs; a local one, trained on the prior truncated to a region that holds the
        posterior and at the designs run (their range +-0.5%; with several parameters, while
        the posterior spans the prior, +-``DESIGN_HORIZON`` of the design range), and
        score-calibrated design by design (:mod:`activesci.inference.sequential`), infers from
        the first round on. It is retrained when a design falls outside its designs, when the
        region has shrunk by ``SHRINK`` (2x), or when the posterior reaches the region's edge;
        every round ends with a self-check stored with the round (``state.check``), and a
        finding a fresh training can fix (its ``retrain``) retrains once that round.
        ``"amortised"``: the amortised estimator infers (refined every ``refine_every``
        rounds if given), and every round is checked for a learned score biased where the
        posterior lies (:func:`~activesci.inference.diagnostics.score_check`, also
        ``state.check``; so is an estimator object of your own).
    calibration_events : int, optional
        Simulated events per calibration point of the sequential mode (default:
        :func:`~activesci.inference.sequential.calibration_events`, 50,000 for one parameter,
        the same simulations per design spread over the more points of several).
    local_ensemble : int, optional
        Networks per local estimator of the sequential mode (default: 1 for one parameter,
        4 for more: in several dimensions a single network's score bias is too uneven for
        the calibration's quadratic, and averaging several evens it out; see the README's
        closure table). Members train at once on the CPUs granted
        (:func:`activesci.threads.training_workers`), so on 2 CPUs four cost what three do.
    refine_every : int, optional
        Sequential mode: also retrain every this many rounds. Amortised mode: every this many
        rounds, train a second estimator around the designs actually run (+-0.5% bands) and
        rebuild the posterior from all the observations with it; skipped while every design
        run lies well inside the bands of the last one.
    progress : bool or callable
        Progress bars for training, or ``progress(what, done, total)`` called after each
        epoch (:data:`~activesci.typing.Progress`). Kept as the attribute ``progress``, which
        may be changed later: the dashboard points it at its own bar.
    planned_rounds : int, optional
        How many rounds the run is meant to have (stored with the settings before the first
        training, so a run killed during it still knows; ``activesci resume`` runs up to it).
    pretrained : bool
        Load a named estimator shipped with the package instead of training it, where one is
        exactly this training (same simulator behaviour, method, samples and seed; see
        :mod:`activesci.inference.pretrained`): the flagship at seed 0 starts in a second.
    posterior : str
        How knowledge is held: ``"grid"`` (exact sums, 1-3 parameters), ``"particles"``
        (:class:`~activesci.inference.particles.SamplePosterior`, sequential Monte Carlo, any
        number of parameters) or a representation you registered
        (:func:`~activesci.inference.representations.register_posterior`). ``"auto"``
        (default) takes the grid up to :data:`GRID_MAX_DIM` parameters. A trained estimator
        updates any but the grid in the ``"amortised"`` mode: the sequential mode's truncated
        trainings and calibration are defined on the grid.
    particles : int
        Particles of a particle posterior.
    cost : callable, optional
        ``cost(design, previous) -> float`` of running ``design`` after ``previous`` (None for
        the first run); default the task's (:attr:`~activesci.tasks.Task.cost`). The ``eig``
        strategy then maximises the information per unit cost, every state records its
        ``cost`` and ``total_cost``, and ``iterate(max_cost=...)`` stops on the total.
    batch : int
        Experiments per round: ``iterate`` asks for this many designs at once (the ``eig``
        strategy chooses them greedily, each on the posterior updated with a fantasised
        observation at the ones before it; baselines take their next ones), runs them
        together (in parallel where the experiment has ``run_batch``, e.g. a
        :class:`~activesci.workflow.experiment.WorkflowExperiment` on Dask) and tells them in
        order. The designs are stored before they run, so a run killed mid-batch resumes with
        the same ones. ``round`` and the store count experiments; each state's
        ``batch_start`` says where its batch began.

    Examples
    --------
    >>> import activesci as asci
    >>> learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", seed=1)
    >>> state = learner.run(rounds=2)
    >>> state.round, round(float(state.posterior.std()[0]), 3)
    (1, 0.218)
    """

    def __init__(
        self,
        task: Task | str,
        *,
        experiment: Experiment | None = None,
        estimator: Any = "alices",
        strategy: str | Strategy = "eig",
        store: Any = None,
        seed: int = 0,
        training_samples: int = 100_000,
        resolution: int | None = None,
        strategy_options: dict[str, Any] | None = None,
        refine_every: int | None = None,
        inference: str = "sequential",
        calibration_events: int | None = None,
        local_ensemble: int | None = None,
        tracker: Any = None,
        progress: Progress = True,
        planned_rounds: int | None = None,
        pretrained: bool = True,
        posterior: str = "auto",
        particles: int = 4000,
        batch: int = 1,
        cost: Any = None,
    ) -> None:
        configure_threads()  # torch/BLAS threads from the CPU quota, unless the user chose
        self.task = _as_task(task)
        self.seed = check_seed(seed)
        if experiment is None:
            experiment = self.task.experiment(seed=seed)
        elif not (callable(getattr(experiment, "run", None)) and hasattr(experiment, "designs")):
            raise ValidationError(
                f"experiment must have designs and run(design), got {experiment!r:.80}"
            )
        self.experiment = experiment
        if not isinstance(strategy, str) and not callable(getattr(strategy, "propose", None)):
            raise ValidationError(
                f"strategy must be a name or have propose(context), got {strategy!r:.80}"
            )
        options = (
            dict(self.task.strategy_options.get(strategy, {})) if isinstance(strategy, str) else {}
        )
        options.update(strategy_options or {})
        self.strategy = make_strategy(strategy, **options)
        self._strategy_spec = {
            "name": getattr(self.strategy, "name", str(strategy)),
            "options": options,
        }
        self._training_samples = check_count(training_samples, "training_samples", minimum=4)
        self._estimator_spec = _estimator_spec(estimator, self._training_samples)
        if refine_every is not None:
            check_count(refine_every, "refine_every", minimum=1)
            if self._estimator_spec["kind"] != "ratio":
                raise ValidationError("refine_every needs a trained estimator (a method name)")
        if inference not in INFERENCE:
            raise ValidationError(f"inference must be one of {INFERENCE}, got {inference!r}")
        if posterior != "auto" and posterior not in POSTERIORS:
            names = ["auto", *sorted(POSTERIORS)]
            raise ValidationError(f"posterior must be one of {names}, got {posterior!r}")
        if posterior == "auto":
            posterior = "grid" if len(self.task.parameters) <= GRID_MAX_DIM else "particles"
        #: how the posterior is held: a name in ``inference.representations.POSTERIORS``
        self.posterior_kind = posterior
        self._particles = check_count(particles, "particles", minimum=10)
        self.batch = check_count(batch, "batch", minimum=1)
        if cost is not None and not callable(cost):
            raise ValidationError(
                f"cost must be a function (design, previous) -> float, got {cost!r:.80}"
            )
        self.cost = cost if cost is not None else self.task.cost
        self.total_cost = 0.0
        self.resolution = resolution
        self.posterior = self._new_posterior()
        self.refine_every = refine_every
        self._inference_option = inference
        #: "sequential", "amortised" or "direct" (the estimator infers as it is: exact, objects)
        self.inference = inference if self._estimator_spec["kind"] == "ratio" else "direct"
        if self.inference == "sequential" and posterior != "grid":  # it regrids
            self.inference = "amortised"
        if calibration_events is None:
            calibration_events = default_calibration_events(len(self.task.parameters))
        self._calibration_events = check_count(calibration_events, "calibration_events", minimum=1)
        if local_ensemble is None:
            local_ensemble = 1 if len(self.task.parameters) == 1 else LOCAL_ENSEMBLE
        self._local_ensemble = check_count(local_ensemble, "local_ensemble", minimum=1)
        self._train_margin = 0.0 if len(self.task.parameters) == 1 else TRAIN_MARGIN
        self._design_horizon = _BAND if len(self.task.parameters) == 1 else DESIGN_HORIZON
        self.progress = progress
        self._pretrained = bool(pretrained)
        self.planned_rounds = (
            None if planned_rounds is None else check_count(planned_rounds, "planned_rounds")
        )
        if self._estimator_spec["kind"] == "ratio":
            check_capabilities(self.task.simulator, resolve_method(self.estimator_method))
        self.store = _open_store(store, self._metadata())  # settings stored before training
        self._given_estimator = estimator
        self._trained = self._training = False
        self._estimator: Any = None
        self._inference_estimator: Any = None
        self.region: np.ndarray | None = None  # bounds (P, 2) of the local estimator's prior
        self._local: RatioEstimator | None = None
        self._retried: RatioEstimator | None = None  # its retraining on the check was worse
        self._trained_designs: np.ndarray | None = None  # (lo, hi) per design dimension
        self.check: dict[str, Any] | None = None
        self._round_trainings: list[dict[str, Any]] = []
        self._round_regrids: list[dict[str, Any]] = []
        self.round = 0
        self._pending: list[np.ndarray] = []  # designs asked and not yet told, in order
        self._pending_record: dict[str, Any] = {}
        self._batch_start = 0
        self._last_design: np.ndarray | None = None  # the design run last
        self._ask_seconds = 0.0
        self.states: list[RoundState] = []
        self.tracker = as_tracker(tracker)
        self.tracker.log_params(self._metadata())
        #: what the learner announces (:class:`~activesci.learner.events.LoopEvents`)
        self.events = LoopEvents()
        self._abandoned = self._load_abandoned()
        if self.store.observations() or self.store.load_checkpoint(_PENDING) is not None:
            self.train()  # a resumed run catches up now: its estimator is in the store

    # -- construction helpers -----------------------------------------------------------------
    def _new_posterior(self) -> GridPosterior | SamplePosterior:
        """The prior, held as the learner's kind of posterior (seeded: replays repeat it)."""
        return POSTERIORS[self.posterior_kind](
            self.task.parameters,
            simulator=self.task.simulator,
            seed=self.seed,
            resolution=self.resolution,
            particles=self._particles,
        )

    def _metadata(self) -> dict[str, Any]:
        from activesci import __version__

        exp = self.experiment
        to_config = getattr(exp, "to_config", None)
        experiment = to_config() if callable(to_config) else {"kind": type(exp).__name__}
        return {
            "task": self.task.ref,
            "task_options": self.task.options,
            "seed": self.seed,
            "strategy": self._strategy_spec,
            "estimator": self._estimator_spec,
            "resolution": self.resolution,
            "posterior": self.posterior_kind,
            "particles": self._particles,
            "batch": self.batch,
            "refine_every": self.refine_every,
            "inference": self._inference_option,
            "calibration_events": self._calibration_events,
            "local_ensemble": self._local_ensemble,
            "planned_rounds": self.planned_rounds,
            "experiment": experiment,
            "activesci_version": __version__,
        }

    # -- ask / tell ---------------------------------------------------------------------------
    def _context(self) -> DesignContext:
        return DesignContext(
            round=self.round,
            space=self.task.designs,
            posterior=self.posterior,
            simulator=self.task.simulator,
            estimator=self.estimator,
            seed=self.seed,
            cost=self.cost,
            previous=self._last_design,
            abandoned=self._abandoned_designs(),
            attempt=self._attempt_at(self.round),
        )

    def _cost_of(self, design: np.ndarray) -> float | None:
        """What running ``design`` after the last design costs (None without a cost model)."""
        if self.cost is None:
            return None
        return check_cost(self.cost(design, self._last_design), design)

    def _ran(self, design: np.ndarray, cost: float | None) -> None:
        """``design`` was run at ``cost``: it is the last design, its cost in the total."""
        self._last_design = design
        self.total_cost += cost or 0.0

    def ask(self, q: int | None = None) -> np.ndarray:
        """The next design ``(D,)``, or with ``q`` the pending batch ``(q, D)``.

        Asking proposes a batch of ``q`` designs (``batch`` without it) when none is pending;
        the same designs come back until they are told.

        Raises
        ------
        ValidationError
            ``q`` is not a positive integer, or a batch of another size is pending.
        """
        if q is not None:
            q = check_count(q, "q", minimum=1)
        self.train()
        if not self._pending:
            self._propose(self.batch if q is None else q)
        if q is None:
            return self._pending[0].copy()
        if len(self._pending) != q:
            raise ValidationError(
                f"{len(self._pending)} design(s) of a batch are pending: tell their "
                f"observations before asking for {q}"
            )
        return np.array(self._pending)

    def _propose(self, q: int) -> None:
        """Let the strategy choose ``q`` designs; store them before anything runs."""
        start = time.perf_counter()
        context = self._context()
        if q == 1:
            designs = [self.strategy.propose(context)]
        elif callable(getattr(self.strategy, "propose_batch", None)):
            designs = list(self.strategy.propose_batch(context, q))
        else:  # a baseline: its next q designs, as if they were q rounds
            designs = [
                self.strategy.propose(dataclasses.replace(context, round=self.round + i))
                for i in range(q)
            ]
        designs = [np.asarray(d, dtype=float).reshape(-1) for d in designs]
        self._refuse_abandoned(designs, context)
        self._pending = designs
        self._pending_record = dict(getattr(self.strategy, "record", {}) or {})
        self._batch_start = self.round
        self._ask_seconds = time.perf_counter() - start
        pending = {
            "start": self.round,
            "attempt": context.attempt,
            "designs": [d.tolist() for d in self._pending],
            "record": self._pending_record,
        }
        self.store.save_checkpoint(_PENDING, json.dumps(pending, default=_plain).encode())
        self.events.asked(self, np.array(self._pending))

    def tell(self, design: Any, observation: Any) -> Any:
        """Record the result of running ``design``; store it, then update the posterior.

        Give a batch as ``tell(designs (q, D), [observation, ...])``: they are told in order,
        and the states come back as a list.
        """
        if isinstance(observation, list | tuple):
            points = self.task.designs.validate(design)
            if len(points) != len(observation):
                raise ValidationError(
                    f"give one observation per design: {len(points)} design(s), "
                    f"{len(observation)} observation(s)"
                )
            return [self.tell(d, o) for d, o in zip(points, observation, strict=True)]
        self.train()
        start = time.perf_counter()
        point = self.task.designs.validate(design)[0]
        if not isinstance(observation, Observation):
            raise ValidationError(f"expected an Observation, got {type(observation).__name__}")
        if not np.allclose(observation.design, point):
            raise ValidationError(
                f"the observation was made at {observation.design.tolist()}, not at the design "
                f"told {point.tolist()}"
            )
        asked = next((i for i, d in enumerate(self._pending) if np.allclose(d, point)), None)
        first = asked is not None and self.round == self._batch_start
        cost = self._cost_of(point)  # a bad cost model fails before anything is stored
        self.store.append_observation(self.round, observation)
        self._absorb(self.round + 1, observation)
        self._ran(point, cost)
        record = self._pending_record if first else {}
        seconds = time.perf_counter() - start
        if first:
            seconds += self._ask_seconds
        state = RoundState(
            self.round, point, observation, self.posterior.copy(), record, seconds,
            check=self.check, trainings=self._round_trainings, regrids=self._round_regrids,
            batch_start=self._batch_start if self.batch > 1 else None,
            cost=cost, total_cost=None if cost is None else self.total_cost,
        )  # fmt: skip
        summary = state.summary()
        self.store.append_round(self.round, summary)
        self.tracker.log_metrics(metrics_from_summary(summary), step=self.round)
        self.states.append(state)
        self.round += 1
        if asked is not None:
            self._pending.pop(asked)
        else:
            self._pending = []  # the user ran a design of their own: ask afresh
        if not self._pending:
            self._pending_record = {}
        self.events.told(self, state)
        return state

    def _absorb(self, n: int, observation: Observation) -> None:
        """Learn from the ``n``-th observation (already stored) by the learner's inference mode."""
        self._round_trainings = []
        self._round_regrids = []
        if self.inference == "sequential":
            self._infer_sequential(n, observation)
        elif self.refine_every is not None and self._last_refinement(self._designs_run(n)) == n:
            self._refine(n)
        else:
            self.posterior.update(observation, self.inference_estimator)
        self._score_check(n)

    def _score_check(self, n: int) -> None:
        """The self-check after ``n`` observations where no calibration gives one.

        The learned (or user-given) score at the posterior
        (:func:`~activesci.inference.diagnostics.score_check`), seeded by ``(seed, n)`` so a
        resumed run repeats it.
        """
        if self.inference == "amortised" or self._estimator_spec["kind"] == "object":
            self.check = score_check(
                self.posterior,
                self.inference_estimator,
                self.task.simulator,
                self.posterior.observations,
                rng=np.random.default_rng([self.seed, n, 13]),
            )

    # -- loops --------------------------------------------------------------------------------
    def iterate(
        self,
        rounds: int,
        *,
        target_std: float | None = None,
        max_luminosity: float | None = None,
        max_cost: float | None = None,
        stop: Any = None,
        on_failure: str = "raise",
    ) -> Iterator[RoundState]:
        """Run up to ``rounds`` rounds of ``batch`` experiments, yielding each experiment's state.

        Stops early (after a whole batch) once every parameter's posterior std is below
        ``target_std``, the total luminosity reaches ``max_luminosity``, the total cost (with
        a cost model) reaches ``max_cost``, or ``stop`` holds: a
        :class:`~activesci.learner.stopping.StoppingCondition` (``TargetStd(0.001) |
        MaxCost(10)``; ``&`` and ``|`` combine them) or a function of the learner.

        ``on_failure="abandon"``: an experiment that raises is not the end of the run; its
        designs are abandoned (:meth:`abandon`, the error as the reason, stored) and the next
        round proposes afresh. A failed round counts towards ``rounds``. ``"raise"``
        (default): the error propagates, and the designs stay pending for ``resume``.
        """
        check_count(rounds, "rounds")
        if on_failure not in ("raise", "abandon"):
            raise ValidationError(f"on_failure must be 'raise' or 'abandon', got {on_failure!r}")
        if max_cost is not None and self.cost is None:
            raise ValidationError("max_cost needs a cost model: give cost=... or a task's")
        conditions = [
            kind(value)
            for kind, value in ((TargetStd, target_std), (MaxLuminosity, max_luminosity))
            if value is not None
        ]
        if max_cost is not None:
            conditions.append(MaxCost(max_cost))
        if stop is not None:
            conditions.append(as_condition(stop))
        for _ in range(rounds):
            designs = self.ask(len(self._pending) or self.batch)  # first, a resumed batch's rest
            for design, observation in self._observed(designs, on_failure):
                yield self.tell(design, observation)
            if any(condition(self) for condition in conditions):
                return

    def _observed(
        self, designs: np.ndarray, on_failure: str
    ) -> Iterator[tuple[np.ndarray, Observation]]:
        """Run a batch's experiments: together where the experiment can, else in turn.

        In turn, each is told (the caller's ``tell``) before the next runs, so an experiment
        that raises loses none run before it. It ends the batch: the error propagates, or
        with ``on_failure="abandon"`` the designs left are abandoned with it as the reason.
        """
        run_batch = getattr(self.experiment, "run_batch", None)
        try:
            if len(designs) > 1 and callable(run_batch):
                yield from zip(designs, list(run_batch(designs)), strict=True)
            else:
                for design in designs:
                    yield design, self.experiment.run(design)
        except Exception as exc:
            if on_failure == "raise":
                raise
            self.abandon(f"{type(exc).__name__}: {exc}")

    def run(self, rounds: int, **stopping: Any) -> RoundState | None:
        """Consume :meth:`iterate`; return the last round's state (None if no round ran)."""
        last = deque(self.iterate(rounds, **stopping), maxlen=1)
        return last[0] if last else None

    @property
    def estimator_method(self) -> str:
        """The estimator's method (``"alices"``, ...), or its kind (``"exact"``, ``"object"``)."""
        return str(self._estimator_spec.get("method", self._estimator_spec["kind"]))

    @property
    def training_samples(self) -> int:
        """Simulations per training of a named estimator."""
        return int(self._training_samples)

    @property
    def luminosity(self) -> float:
        """Total luminosity of the observations so far (0 where unknown)."""
        return float(sum(obs.luminosity or 0.0 for obs in self.posterior.observations))

    def close(self) -> None:
        """Finish the run in the tracker and close the store (it can be resumed later)."""
        self.tracker.close()
        close = getattr(self.store, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return (
            f"ActiveLearner(task={self.task.name!r}, strategy={self._strategy_spec['name']!r}, "
            f"estimator={self._estimator_spec}, round={self.round})"
        )
