"""The protocols every part of activesci talks through, and the data that flows between them.

Concrete simulators and experiments live in :mod:`activesci.simulators` and
:mod:`activesci.experiments`; anything with these methods works, no subclassing needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import numpy as np

from activesci.errors import ShapeError, StoreError, ValidationError
from activesci.spaces import Space

if TYPE_CHECKING:  # the contexts the protocols are called with (their modules import this one)
    from activesci.design.optimizer import DesignContext
    from activesci.excursion.acquisition import AcquisitionContext

__all__ = [
    "CAPABILITIES",
    "MAX_DIM",
    "MAX_EVENTS",
    "Acquisition",
    "Closing",
    "EIGEstimate",
    "EIGEstimator",
    "Events",
    "Executor",
    "Experiment",
    "LogRatioEstimator",
    "Observation",
    "Posterior",
    "Progress",
    "RunStore",
    "Simulator",
    "Strategy",
    "Tracker",
    "capabilities_of",
    "check_count",
    "check_generator",
    "check_positive",
    "check_run_settings",
    "check_seed",
]

#: Optional simulator methods, in the order they are reported.
CAPABILITIES = ("joint_log_prob", "joint_score", "expected_count", "log_likelihood")

#: How long work reports its progress: ``True`` for tqdm bars (notebook-aware), ``False`` for
#: none, or a function called as ``progress(what, done, total)`` (e.g. by the dashboard, to
#: draw its own bar while a training runs in a background thread).
Progress = bool | Callable[[str, int, int], None]

#: The most events one call may simulate or one experiment may record (beyond it, memory runs
#: out long before a result: 10^8 events of one feature and latent are 1.6 GB).
MAX_EVENTS = 100_000_000

#: The most parameters a built-in task may have (``gaussian(dim=...)``): grids, plots and the
#: per-parameter reports grow with it, and no design problem of this toolkit needs more.
MAX_DIM = 64


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as an ``int`` if it is a non-negative integer, else raise.

    Floats, strings, booleans and ``None`` are refused: each would seed silently differently.

    Raises
    ------
    ValidationError
        Naming ``name``, the value and what was expected.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValidationError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """Return ``rng`` if it is a ``numpy.random.Generator``, else raise a ValidationError."""
    if not isinstance(rng, np.random.Generator):
        raise ValidationError(
            f"{name} must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
            f"got {rng!r:.80}"
        )
    return rng


def check_count(value: Any, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``, else raise.

    Booleans and floats (even integral ones) are refused.
    """
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )
    upper = "" if maximum is None else f" (at most {maximum:,})"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise ValidationError(f"{name} must be {kind}{upper}, got {value!r}")
    return int(value)


def check_positive(value: Any, name: str, error: type[ValidationError] = ValidationError) -> float:
    """Return ``value`` as a ``float`` if it is a finite number > 0, else raise ``error``.

    Booleans, NaN and infinities are refused; the message names ``name`` and the value.
    """
    ok = not isinstance(value, bool | str | bytes)
    try:
        number = float(value) if ok else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise error(f"{name} must be a positive finite number, got {value!r}")
    return number


#: What every stored run's settings hold: the key, its JSON type, and a string key inside it.
_RUN_SETTINGS = (
    ("task", str, None),
    ("task_options", dict, None),
    ("seed", int, None),
    ("strategy", dict, "name"),
    ("estimator", dict, "kind"),
)


def check_run_settings(metadata: Any, where: str) -> dict[str, Any]:
    """Return a run store's metadata if it holds the settings every learner run stores.

    The store is data: a run that stopped before it started has none, and a crafted one may
    hold anything. Values are checked further where they are used (the task by its factory).

    Parameters
    ----------
    metadata : dict
        What :meth:`RunStore.metadata` returned.
    where : str
        The run folder, for messages.

    Raises
    ------
    StoreError
        No settings are stored, or one is missing or of the wrong type (named with its value).
    """
    if not isinstance(metadata, dict) or "task" not in metadata:
        raise StoreError(
            f"{where}: no run settings are stored (the run stopped before it started); "
            "start it again in a new folder"
        )
    for key, kind, inner in _RUN_SETTINGS:
        value = metadata.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise StoreError(
                f"{where}: the stored run setting {key!r} is {value!r:.80}; "
                f"expected a {kind.__name__}"
            )
        if inner is not None and not isinstance(value.get(inner), str):
            raise StoreError(
                f"{where}: the stored run setting {key!r} has no {inner!r} string: {value!r:.80}"
            )
    return metadata


def _finite(a: Any, name: str) -> np.ndarray:
    """``a`` as a float array of finite numbers, or a ValidationError naming ``name``."""
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be numbers, got {a!r:.80}") from None
    if not np.isfinite(arr).all():
        raise ValidationError(f"{name} contains NaN or infinite values")
    return arr


def _as_rows(a: Any, name: str) -> np.ndarray:
    arr = _finite(a, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ShapeError(f"{name} must have shape (n, k), got {arr.shape}")
    return arr


@dataclass(frozen=True)
class Events:
    """Simulated or recorded events, one per row.

    Attributes
    ----------
    x : numpy.ndarray
        Observed features, shape ``(n, X)``.
    z : numpy.ndarray or None
        Latent (true) variables, shape ``(n, Z)``; ``None`` for real data.
    """

    x: np.ndarray
    z: np.ndarray | None = None

    def __post_init__(self) -> None:
        x = _as_rows(self.x, "Events.x")
        object.__setattr__(self, "x", x)
        if self.z is not None:
            z = _as_rows(self.z, "Events.z")
            if z.shape[0] != x.shape[0]:
                raise ShapeError(f"Events.z has {z.shape[0]} rows but Events.x has {x.shape[0]}")
            object.__setattr__(self, "z", z)

    def __len__(self) -> int:
        return self.x.shape[0]

    @classmethod
    def checked(cls, events: Any, n: int, where: str) -> Events:
        """``events`` if it is an ``Events`` of ``n`` rows; else a ShapeError naming ``where``.

        For what a simulator returns: its rows must be the events asked for.
        """
        if not isinstance(events, Events):
            raise ShapeError(f"{where} returned a {type(events).__name__}, expected Events")
        if len(events) != n:
            raise ShapeError(f"{where} returned {len(events)} events, {n} were asked for")
        return events


@dataclass(frozen=True)
class Observation:
    """The outcome of one experiment at one design: what the learner is told.

    Attributes
    ----------
    design : numpy.ndarray
        The design that was run, shape ``(D,)``.
    x : numpy.ndarray
        The recorded events, shape ``(n, X)``; ``n`` is itself an observation (Poisson).
    luminosity : float or None
        Integrated luminosity in pb^-1 (or exposure in the task's unit), if meaningful.
    meta : dict
        Free-form, JSON-serialisable provenance (seed, run id, ...).
    """

    design: np.ndarray
    x: np.ndarray
    luminosity: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        design = _finite(self.design, "Observation.design").reshape(-1)
        x = _as_rows(self.x, "Observation.x")
        if self.luminosity is not None:
            lum = check_positive(self.luminosity, "Observation.luminosity")
            object.__setattr__(self, "luminosity", lum)
        if not isinstance(self.meta, dict):
            raise ValidationError(f"Observation.meta must be a dict, got {self.meta!r:.80}")
        object.__setattr__(self, "design", design)
        object.__setattr__(self, "x", x)

    @property
    def n(self) -> int:
        """Number of recorded events."""
        return self.x.shape[0]


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


class Closing:
    """A base for what is closed when done: ``with obj: ...`` calls ``close()`` on the way out.

    Run stores and trackers use it; :meth:`_close_on_exit` is where a subclass tells a failed
    block (one that raised) from a finished one.
    """

    def close(self) -> None:  # pragma: no cover - overridden
        """Release what the object holds."""

    def _close_on_exit(self, failed: bool) -> None:
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_on_exit(exc_type is not None)


@runtime_checkable
class Simulator(Protocol):
    """What the learner needs of a simulator.

    Required: ``parameters``, ``designs``, ``feature_names``, ``sample`` and
    ``run_experiment``. Optional methods
    (see :data:`CAPABILITIES`) are detected with :func:`capabilities_of`:

    - ``joint_log_prob(z, theta, design) -> (n,)``: log density of the latent ``z`` of a
      recorded event; its differences between ``theta`` values are exact joint log ratios
      ("gold"), since the detector response does not depend on ``theta``.
    - ``joint_score(z, theta, design) -> (n, P)``: gradient of ``joint_log_prob`` in ``theta``.
    - ``expected_count(theta, design) -> (n,)``: mean number of recorded events.
    - ``log_likelihood(x, theta, design) -> (n_theta, n_x)``: the exact density of ``x``, for
      validation only.
    """

    parameters: Space
    designs: Space
    #: The names of the recorded features, one per column of ``x``: neural estimators read
    #: their number from it.
    feature_names: tuple[str, ...]

    @property
    def capabilities(self) -> frozenset[str]:
        """The optional methods this simulator implements."""
        ...

    def sample(
        self,
        theta: Any,
        design: Any,
        rng: np.random.Generator,
        n: int | None = None,
    ) -> Events:
        """Draw one recorded event per row of ``theta`` and ``design`` (broadcast to ``n``)."""
        ...

    def run_experiment(self, theta: Any, design: Any, rng: np.random.Generator) -> Observation:
        """Run one experiment at ``design`` with truth ``theta``: a random count of events."""
        ...


@runtime_checkable
class Experiment(Protocol):
    """A source of observations: a simulation with hidden truth, recorded data, or a person."""

    designs: Space

    def run(self, design: Any) -> Observation:
        """Perform the experiment at ``design`` and return what was recorded."""
        ...


@runtime_checkable
class RunStore(Protocol):
    """Where a run persists itself: every observation is stored before it is used.

    Rounds are numbered from 0; ``append_observation(k, ...)`` must have returned before the
    posterior sees observation ``k``, so a crash loses at most work, never data.
    """

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Record the run's settings (task, seeds, strategy, estimator, versions) once."""
        ...

    def metadata(self) -> dict[str, Any]:
        """The settings written by :meth:`write_metadata`."""
        ...

    def append_observation(self, round: int, observation: Observation) -> None:
        """Persist the observation of ``round`` durably (one transaction)."""
        ...

    def observations(self) -> list[tuple[int, Observation]]:
        """All stored observations with their round numbers, in order."""
        ...

    def append_round(self, round: int, summary: dict[str, Any]) -> None:
        """Persist the JSON-serialisable summary of a finished round."""
        ...

    def rounds(self) -> list[dict[str, Any]]:
        """All round summaries, in order."""
        ...

    def save_checkpoint(self, name: str, data: bytes) -> None:
        """Store (or replace) a named binary checkpoint, e.g. the trained estimator."""
        ...

    def load_checkpoint(self, name: str) -> bytes | None:
        """A checkpoint stored under ``name``, or ``None``."""
        ...


@runtime_checkable
class Posterior(Protocol):
    """What the learner, the design strategies and the views need of a state of knowledge.

    Two implementations live in :mod:`activesci.inference.posterior`: ``GridPosterior``
    (exact sums on a grid, 1-3 parameters) and ``SamplePosterior`` (weighted particles moved
    by sequential Monte Carlo, any number). Both are rebuilt from the prior and the stored
    observations on resume, so their state needs no format of its own: the same seed and
    data give the same posterior, bit for bit.
    """

    space: Space

    @property
    def observations(self) -> list[Observation]:
        """The observations absorbed so far, in order."""
        ...

    def update(self, observation: Observation, estimator: Any) -> Any:
        """Absorb one observation with ``estimator``'s log ratios (in place; returns self)."""
        ...

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` draws ``(n, P)``."""
        ...

    def log_density(self, theta: Any) -> np.ndarray:
        """Log density ``(n,)`` at points ``(n, P)``."""
        ...

    def mean(self) -> np.ndarray:
        """Posterior mean ``(P,)``."""
        ...

    def cov(self) -> np.ndarray:
        """Posterior covariance ``(P, P)``."""
        ...

    def marginal(self, name_or_index: str | int) -> tuple[np.ndarray, np.ndarray]:
        """One parameter's marginal density on points: ``(points (m,), density (m,))``."""
        ...

    def pair_marginal(
        self, first: str | int, second: str | int, bins: int = 30
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Two parameters' joint density: ``(x (bx,), y (by,), density (by, bx))``."""
        ...

    def entropy(self) -> float:
        """Differential entropy in nats (an estimate for particles)."""
        ...

    def copy(self) -> Any:
        """An independent copy (a snapshot for a round's state)."""
        ...


@runtime_checkable
class Tracker(Protocol):
    """Where a run reports to an experiment-tracking tool (MLflow, ...); optional."""

    def log_params(self, params: dict[str, Any]) -> None:
        """Record a run's settings once (nested dicts may be flattened by the tracker)."""
        ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Record numbers of one round (``step`` is the round)."""
        ...

    def close(self) -> None:
        """Finish the run in the tracking tool."""
        ...


@runtime_checkable
class LogRatioEstimator(Protocol):
    """What a posterior needs of an estimator.

    ``log_ratio(x, theta, design)`` takes events ``(n_x, X)``, parameter points
    ``(n_theta, P)`` and one design ``(1, D)`` and returns ``log p(x | theta, design) -
    log p_ref(x | design)`` of shape ``(n_theta, n_x)`` (float32 or float64).
    """

    def log_ratio(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Log ratio for every ``(theta, x)`` pair, shape ``(n_theta, n_x)``."""
        ...


class Strategy(Protocol):
    """Chooses one design per round; ``record`` holds what it looked at (for plots).

    Registered by name in :data:`activesci.design.STRATEGIES`.
    """

    name: str
    record: dict[str, Any]

    def propose(self, context: DesignContext) -> np.ndarray:
        """The design ``(D,)`` for this round."""
        ...


class EIGEstimator(Protocol):
    """Estimates the expected information gain of one experiment at one design.

    Registered by name in :data:`activesci.design.EIG_ESTIMATORS`; ``estimator`` is a
    :class:`LogRatioEstimator` (the exact likelihood already resolved).
    """

    def __call__(
        self, posterior: Any, simulator: Any, design: Any, /, *, estimator: Any, **options: Any
    ) -> EIGEstimate:
        """The estimate, in nats."""
        ...


class Acquisition(Protocol):
    """Chooses the next point of an excursion-set search to evaluate.

    Registered by name in :data:`activesci.excursion.ACQUISITIONS`.
    """

    name: str

    def select(self, context: AcquisitionContext) -> np.ndarray:
        """The next point in unit-cube coordinates, shape ``(d,)``; never an excluded one."""
        ...


class Executor(Protocol):
    """Runs workflow steps for adage: submit a task, poll its proxy, read its outcome.

    Built by name with :func:`activesci.workflow.executors.make_executor`.
    """

    name: str

    def submit(self, task: Callable[[], Any]) -> Any:
        """Start ``task``; return a proxy of it."""
        ...

    def ready(self, proxy: Any) -> bool:
        """Whether the task finished (either way)."""
        ...

    def successful(self, proxy: Any) -> bool:
        """Whether the task finished without raising."""
        ...

    def result(self, proxy: Any) -> Any:
        """The task's return value (re-raises its exception)."""
        ...

    def fail_info(self, proxy: Any) -> BaseException | None:
        """The exception the task raised."""
        ...

    def close(self) -> None:
        """Release the workers."""
        ...


def capabilities_of(simulator: Any) -> frozenset[str]:
    """The optional capabilities (:data:`CAPABILITIES`) that ``simulator`` implements."""
    return frozenset(c for c in CAPABILITIES if callable(getattr(simulator, c, None)))
