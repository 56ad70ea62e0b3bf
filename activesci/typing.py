"""The protocols every part of activesci talks through, and the data that flows between them.

Concrete simulators and experiments live in :mod:`activesci.simulators` and
:mod:`activesci.experiments`; anything with these methods works, no subclassing needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from activesci.errors import ShapeError, ValidationError
from activesci.spaces import Space

__all__ = [
    "CAPABILITIES",
    "Events",
    "Experiment",
    "Observation",
    "RunStore",
    "Simulator",
    "Tracker",
    "capabilities_of",
]

#: Optional simulator methods, in the order they are reported.
CAPABILITIES = ("joint_log_prob", "joint_score", "expected_count", "log_likelihood")


def _as_rows(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
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
        design = np.asarray(self.design, dtype=float).reshape(-1)
        x = _as_rows(self.x, "Observation.x")
        if not np.isfinite(x).all():
            raise ValidationError("Observation.x contains NaN or infinite values")
        if self.luminosity is not None and not self.luminosity > 0:
            raise ValidationError(f"luminosity must be positive, got {self.luminosity!r}")
        object.__setattr__(self, "design", design)
        object.__setattr__(self, "x", x)

    @property
    def n(self) -> int:
        """Number of recorded events."""
        return self.x.shape[0]


@runtime_checkable
class Simulator(Protocol):
    """What the learner needs of a simulator.

    Required: ``parameters``, ``designs``, ``sample`` and ``run_experiment``. Optional methods
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


def capabilities_of(simulator: Any) -> frozenset[str]:
    """The optional capabilities (:data:`CAPABILITIES`) that ``simulator`` implements."""
    return frozenset(c for c in CAPABILITIES if callable(getattr(simulator, c, None)))
