"""Experiments: where observations come from.

* :class:`SimulatedExperiment` plays nature with a hidden truth.
* :class:`RecordedExperiment` replays recorded data (a CSV of events or an ``.npz`` archive).
* :class:`ManualExperiment` waits for a person to type in what was measured.

All three satisfy :class:`activesci.typing.Experiment`: a ``designs`` space and
``run(design) -> Observation``.

The recorded formats (CSV and ``.npz``) are read and written by :mod:`activesci.io.records`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import RecordError, ShapeError, ValidationError
from activesci.io.records import (
    check_luminosity,
    read_records_csv,
    read_records_npz,
    show_design,
    write_records_npz,
)
from activesci.spaces import Space
from activesci.typing import Observation, Simulator, check_count, check_seed

__all__ = ["ManualExperiment", "RecordedExperiment", "SimulatedExperiment"]


class _HiddenTruthExperiment:
    """The common part of experiments that simulate data with a hidden true ``theta``.

    A subclass names what it simulates in :attr:`_model` (a simulator or a task: anything with
    ``parameters`` and ``designs`` spaces), sets the truth with :meth:`_set_truth` and counts
    its ``runs``.
    """

    runs: int
    _truth: np.ndarray

    @property
    def _model(self) -> Any:
        """What the experiment simulates: its ``parameters`` and ``designs`` spaces are used."""
        raise NotImplementedError

    def _set_truth(self, truth: Any) -> None:
        """Validate ``truth`` as one point of the parameter space and keep it hidden."""
        self._truth = self._model.parameters.validate(truth)
        if len(self._truth) != 1:
            raise ShapeError(f"truth must be one point, got {len(self._truth)}")

    @property
    def designs(self) -> Space:
        """The designs this experiment can run."""
        return self._model.designs

    @property
    def truth(self) -> dict[str, Any]:
        """The hidden truth (for teaching mode and validation; a learner must not read it)."""
        return self._model.parameters.to_dict(self._truth)

    def skip(self, observations: Sequence[Observation]) -> None:
        """Continue after ``observations`` (a resumed learner's stored runs): run ``len`` next.

        Run ``k`` is seeded with ``[seed, k]``, so a resumed run does not repeat the seeds of
        the runs already stored.
        """
        self.runs = max(self.runs, len(observations))


class SimulatedExperiment(_HiddenTruthExperiment):
    """An experiment simulated with a hidden true ``theta``.

    Parameters
    ----------
    simulator : Simulator
        Any simulator with ``run_experiment``.
    truth : mapping or array_like
        The true parameters (validated against ``simulator.parameters``).
    seed : int, optional
        Seed of the experiment's own random streams: run ``k`` draws from
        ``default_rng([seed, k])``, so the same seed replays the same data, also in a resumed
        run that starts counting at ``runs``.
    runs : int
        Runs already done (a resumed run continues the sequence).

    Examples
    --------
    >>> from activesci.simulators import GaussianSimulator
    >>> exp = SimulatedExperiment(GaussianSimulator(), {"mu0": 0.3}, seed=1)
    >>> exp.run({"phase": 3.14}).n
    10
    """

    def __init__(
        self, simulator: Simulator, truth: Any, seed: int | None = None, *, runs: int = 0
    ) -> None:
        if not isinstance(getattr(simulator, "parameters", None), Space):
            raise ValidationError(f"simulator must be a Simulator, got {simulator!r:.80}")
        self.simulator = simulator
        self._set_truth(truth)
        self.seed = None if seed is None else check_seed(seed)
        self._rng = np.random.default_rng(seed)
        self.runs = check_count(runs, "runs")

    @property
    def _model(self) -> Simulator:
        return self.simulator

    def __repr__(self) -> str:
        return f"SimulatedExperiment({self.simulator!r}, truth=<hidden>, seed={self.seed})"

    def to_config(self) -> dict[str, Any]:
        """What :func:`activesci.learner.ActiveLearner.resume` needs to rebuild it."""
        return {"kind": "simulated", "truth": self.truth, "seed": self.seed}

    def run(self, design: Any) -> Observation:
        """Run the experiment once at ``design``."""
        point = self.designs.validate(design)
        rng = self._rng if self.seed is None else np.random.default_rng([self.seed, self.runs])
        obs = self.simulator.run_experiment(self._truth, point, rng)
        self.runs += 1
        return Observation(
            design=obs.design,
            x=obs.x,
            luminosity=obs.luminosity,
            meta={"seed": self.seed, "run": self.runs},
        )


def _check_space(designs: Any) -> Space:
    if not isinstance(designs, Space):
        raise ValidationError(f"designs must be an activesci Space, got {type(designs).__name__}")
    return designs


class RecordedExperiment:
    """Replays recorded observations: ``run(design)`` returns the next one recorded there.

    Several observations at the same design are replayed in the order given; a design matches a
    recorded one when they are ``numpy.allclose``. Load data with :meth:`from_csv` or
    :meth:`from_npz` (both validate the file) and write them with :meth:`to_npz`.

    Parameters
    ----------
    designs : Space
        The design space; every recorded design must lie in it.
    observations : sequence of Observation
        The recordings, all with the same number of features.
    feature_names : sequence of str, optional
        Names of the columns of ``x`` (kept by :meth:`to_npz`).

    Raises
    ------
    RecordError
        No observations, a recorded design outside the space, or differing feature counts.

    Examples
    --------
    >>> from activesci.spaces import Real, Space
    >>> space = Space([Real("sqrt_s", 20.0, 210.0)])
    >>> exp = RecordedExperiment(space, [Observation([88.0], [[0.1], [-0.4]], luminosity=1.0)])
    >>> exp.run({"sqrt_s": 88.0}).n
    2
    >>> exp.run([88.0])
    Traceback (most recent call last):
    ...
    activesci.errors.RecordError: no recorded observation left at sqrt_s=88; available: sqrt_s=88 (0 left)
    """  # noqa: E501

    def __init__(
        self,
        designs: Space,
        observations: Sequence[Observation],
        *,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        self.designs = _check_space(designs)
        obs = list(observations)
        if not obs:
            raise RecordError("a RecordedExperiment needs at least one observation")
        n_x = None
        for i, o in enumerate(obs):
            if not isinstance(o, Observation):
                raise RecordError(f"observation {i} is a {type(o).__name__}, not an Observation")
            try:
                designs.validate(o.design)
            except ValidationError as exc:
                raise RecordError(f"observation {i}: {exc}") from None
            if n_x is None:
                n_x = o.x.shape[1]
            elif o.x.shape[1] != n_x:
                raise RecordError(
                    f"observation {i} has {o.x.shape[1]} features, observation 0 has {n_x}"
                )
        self.feature_names = None if feature_names is None else tuple(feature_names)
        if self.feature_names is not None and len(self.feature_names) != n_x:
            raise RecordError(
                f"{len(self.feature_names)} feature names {list(self.feature_names)} for "
                f"{n_x} features"
            )
        self.observations: tuple[Observation, ...] = tuple(obs)
        self._used = [False] * len(obs)

    def __repr__(self) -> str:
        return (
            f"RecordedExperiment({len(self.observations)} observations, "
            f"{self._used.count(False)} unused)"
        )

    def remaining(self) -> list[tuple[np.ndarray, int]]:
        """The distinct recorded designs ``(D,)`` with how many observations are left at each."""
        out: list[tuple[np.ndarray, int]] = []
        for o, used in zip(self.observations, self._used, strict=True):
            for k, (point, left) in enumerate(out):
                if np.allclose(point, o.design):
                    out[k] = (point, left + (not used))
                    break
            else:
                out.append((o.design, int(not used)))
        return out

    def skip(self, observations: Sequence[Observation]) -> None:
        """Mark recordings as used: those equal to ``observations`` (a resumed learner's runs).

        Raises
        ------
        RecordError
            One of them was not recorded here (or is left no more often).
        """
        for k, obs in enumerate(observations):
            for i, rec in enumerate(self.observations):
                if not self._used[i] and _same(rec, obs):
                    self._used[i] = True
                    break
            else:
                raise RecordError(
                    f"stored observation {k} (at {show_design(self.designs, obs.design)}, {obs.n} "
                    f"events) is not among the unused recordings of this experiment"
                )

    def run(self, design: Any) -> Observation:
        """The next unused observation recorded at ``design``.

        Raises
        ------
        RecordError
            Nothing (left) recorded there; the message lists the designs that have data.
        """
        point = self.designs.validate(design)[0]
        for i, o in enumerate(self.observations):
            if not self._used[i] and np.allclose(o.design, point):
                self._used[i] = True
                return Observation(
                    design=o.design, x=o.x, luminosity=o.luminosity, meta={**o.meta, "record": i}
                )
        available = "; ".join(
            f"{show_design(self.designs, p)} ({left} left)" for p, left in self.remaining()
        )
        raise RecordError(
            f"no recorded observation left at {show_design(self.designs, point)}; "
            f"available: {available}"
        )

    # -- files --------------------------------------------------------------------------------
    @classmethod
    def from_csv(
        cls, path: str | os.PathLike[str], designs: Space, features: Sequence[str]
    ) -> RecordedExperiment:
        """Load a CSV of events, every row validated (:mod:`activesci.io.records`).

        ``designs`` is the design space (its names are the design columns); ``features`` the
        feature columns, in the order of the columns of ``x``. A bad file is a
        :class:`~activesci.errors.RecordError` naming the file, the line and the column.
        """
        designs = _check_space(designs)
        observations, features = read_records_csv(path, designs, features)
        return cls(designs, observations, feature_names=features)

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str], designs: Space) -> RecordedExperiment:
        """Load an ``.npz`` archive written by :meth:`to_npz` (:mod:`activesci.io.records`).

        A bad file is a :class:`~activesci.errors.RecordError` naming the file and the key.
        """
        designs = _check_space(designs)
        observations, features = read_records_npz(path, designs)
        return cls(designs, observations, feature_names=features)

    def to_npz(self, path: str | os.PathLike[str]) -> Path:
        """Write every observation (used or not) to ``path`` atomically; return the path.

        :meth:`from_npz` reads it back into an equal experiment.
        """
        return write_records_npz(path, self.observations, self.designs, self.feature_names)


def _same(a: Observation, b: Observation) -> bool:
    """Whether two observations hold the same design and events."""
    return a.x.shape == b.x.shape and np.allclose(a.design, b.design) and np.allclose(a.x, b.x)


class ManualExperiment:
    """An experiment whose results a person types in (e.g. in a dashboard).

    The learner calls :meth:`run`; it returns what was :meth:`submit`-ted for that design
    (several submissions at one design are used in order) or raises :class:`RecordError`
    asking for it. :meth:`request` records that a design is wanted; :meth:`pending` lists the
    designs wanted (requested, or run without a result) and not yet submitted.

    Parameters
    ----------
    designs : Space
        The designs that can be run.
    n_features : int
        Number of features per event (columns of ``x``).

    Examples
    --------
    >>> from activesci.spaces import Real, Space
    >>> exp = ManualExperiment(Space([Real("sqrt_s", 20.0, 210.0)]), n_features=1)
    >>> exp.request({"sqrt_s": 91.19})
    array([91.19])
    >>> _ = exp.submit([91.19], [[0.3], [-0.2], [0.9]], luminosity=1.0)
    >>> exp.pending(), exp.run([91.19]).n
    ([], 3)
    """

    def __init__(self, designs: Space, n_features: int) -> None:
        self.designs = _check_space(designs)
        if isinstance(n_features, bool) or not (isinstance(n_features, int) and n_features >= 1):
            raise ValidationError(f"n_features must be a positive integer, got {n_features!r}")
        self.n_features = n_features
        self._queue: list[Observation] = []
        self._wanted: list[np.ndarray] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ManualExperiment(n_features={self.n_features}, {len(self._queue)} queued, "
            f"{len(self._wanted)} pending)"
        )

    def request(self, design: Any) -> np.ndarray:
        """Ask for a result at ``design``; return the validated point ``(D,)``."""
        point = self.designs.validate(design)[0]
        with self._lock:
            if not any(np.allclose(p, point) for p in self._wanted):
                self._wanted.append(point)
        return point.copy()

    def pending(self) -> list[np.ndarray]:
        """The designs ``(D,)`` asked for and without a submitted result, oldest first."""
        with self._lock:
            return [p.copy() for p in self._wanted]

    def submit(
        self,
        design: Any,
        x: Any,
        luminosity: float | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Observation:
        """Enter the result measured at ``design``: events ``x`` of shape ``(n, n_features)``.

        Raises
        ------
        ValidationError
            The design is outside the space, ``x`` is not numeric, of the wrong shape or not
            finite, or ``luminosity`` is not positive.
        """
        point = self.designs.validate(design)[0]
        try:
            arr = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise RecordError(f"x must be numbers, got {x!r}") from None
        if arr.ndim == 1 and self.n_features == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise ShapeError(f"x must have shape (n, {self.n_features}), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise RecordError("x contains NaN or infinite values")
        lum = check_luminosity(luminosity, f"result at {show_design(self.designs, point)}")
        obs = Observation(
            design=point, x=arr, luminosity=lum, meta={"source": "manual", **(meta or {})}
        )
        with self._lock:
            self._queue.append(obs)
            self._wanted = [p for p in self._wanted if not np.allclose(p, point)]
        return obs

    def run(self, design: Any) -> Observation:
        """The (oldest) result submitted for ``design``.

        Raises
        ------
        RecordError
            No result was entered; the design is then also listed by :meth:`pending`.
        """
        point = self.designs.validate(design)[0]
        with self._lock:
            for i, obs in enumerate(self._queue):
                if np.allclose(obs.design, point):
                    return self._queue.pop(i)
        self.request(point)
        raise RecordError(
            f"no result entered for design {show_design(self.designs, point)}; "
            f"call submit(design, x) first"
        )
