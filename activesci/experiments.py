"""Experiments: where observations come from.

* :class:`SimulatedExperiment` plays nature with a hidden truth.
* :class:`RecordedExperiment` replays recorded data (a CSV of events or an ``.npz`` archive).
* :class:`ManualExperiment` waits for a person to type in what was measured.

All three satisfy :class:`activesci.typing.Experiment`: a ``designs`` space and
``run(design) -> Observation``.

The recorded ``.npz`` format (``numpy.load(path, allow_pickle=False)`` reads it):

==================  ============  =========================================================
key                 shape, dtype  meaning
==================  ============  =========================================================
``design``          (k, D), f8    the design of each of the ``k`` observations
``counts``          (k,), int     number of events of each observation (may be 0)
``x``               (N, X), f8    all events, observation after observation; N = sum(counts)
``luminosity``      (k,), f8      per observation, NaN where unknown (optional)
``design_names``    (D,), str     must equal the space's names (optional)
``feature_names``   (X,), str     names of the columns of ``x`` (optional)
==================  ============  =========================================================

The CSV format has a header naming the columns: the design names, the feature names and
optionally ``luminosity`` (any order); then one event per row. The rows of one design form one
observation (observations in the order their design first appears), so a CSV holds at most one
observation per design and none without events; use ``.npz`` for those. Categorical designs are
written as category indices.
"""

from __future__ import annotations

import csv
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import RecordError, ShapeError, ValidationError
from activesci.simulators.eventfile import read_npz_arrays
from activesci.spaces import Space
from activesci.typing import Observation, Simulator, check_count, check_positive, check_seed
from activesci.workflow.files import atomic_write, check_input_file

__all__ = ["ManualExperiment", "RecordedExperiment", "SimulatedExperiment"]

_NPZ_KEYS = ("design", "counts", "x", "luminosity", "design_names", "feature_names")


class SimulatedExperiment:
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
        self._truth = simulator.parameters.validate(truth)
        if len(self._truth) != 1:
            raise ShapeError(f"truth must be one point, got {len(self._truth)}")
        self.seed = None if seed is None else check_seed(seed)
        self._rng = np.random.default_rng(seed)
        self.runs = check_count(runs, "runs")

    @property
    def designs(self) -> Space:
        """The designs this experiment can run."""
        return self.simulator.designs

    @property
    def truth(self) -> dict[str, Any]:
        """The hidden truth (for teaching mode and validation; a learner must not read it)."""
        return self.simulator.parameters.to_dict(self._truth)

    def __repr__(self) -> str:
        return f"SimulatedExperiment({self.simulator!r}, truth=<hidden>, seed={self.seed})"

    def to_config(self) -> dict[str, Any]:
        """What :func:`activesci.learner.ActiveLearner.resume` needs to rebuild it."""
        return {"kind": "simulated", "truth": self.truth, "seed": self.seed}

    def skip(self, observations: Sequence[Observation]) -> None:
        """Continue after ``observations`` (a resumed learner's stored runs): run ``len`` next."""
        self.runs = max(self.runs, len(observations))

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


def _show(designs: Space, point: np.ndarray) -> str:
    """``"sqrt_s=91.19"``: a design point for messages."""
    return ", ".join(f"{n}={float(v):.10g}" for n, v in zip(designs.names, point, strict=True))


def _check_space(designs: Any) -> Space:
    if not isinstance(designs, Space):
        raise ValidationError(f"designs must be an activesci Space, got {type(designs).__name__}")
    return designs


def _luminosity(value: Any, where: str) -> float | None:
    """A positive finite luminosity or ``None``; ``where`` prefixes the error."""
    return None if value is None else check_positive(value, f"{where}: luminosity", RecordError)


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
                    f"stored observation {k} (at {_show(self.designs, obs.design)}, {obs.n} "
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
            f"{_show(self.designs, p)} ({left} left)" for p, left in self.remaining()
        )
        raise RecordError(
            f"no recorded observation left at {_show(self.designs, point)}; available: {available}"
        )

    # -- files --------------------------------------------------------------------------------
    @classmethod
    def from_csv(
        cls, path: str | os.PathLike[str], designs: Space, features: Sequence[str]
    ) -> RecordedExperiment:
        """Load a CSV of events (see the module docstring), validating every row.

        Parameters
        ----------
        path : str or path
            The CSV file, with a header line.
        designs : Space
            The design space; its names are the design columns.
        features : sequence of str
            The feature columns, in the order of the columns of ``x``.

        Raises
        ------
        RecordError
            The message names the file, the line (the header is line 1) and the column.
        """
        designs = _check_space(designs)
        path = Path(path)
        features = [features] if isinstance(features, str) else list(features)
        if not features or len(set(features)) != len(features):
            raise ValidationError(f"features must be distinct names, got {features}")
        clash = [f for f in features if f in designs.names or f == "luminosity"]
        if clash:
            raise ValidationError(f"feature name(s) {clash} clash with the design or luminosity")
        expected = [*designs.names, *features]
        path = check_input_file(path, RecordError)  # a FIFO or device would hang the reader
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                groups = _read_csv(csv.reader(f), path, designs, features, expected)
        except FileNotFoundError:
            raise RecordError(f"{path}: no such file") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise RecordError(f"{path}: not a readable CSV file ({exc})") from None
        observations = [
            Observation(design=list(key), x=np.array(rows, dtype=float), luminosity=lum)
            for key, (rows, lum, _) in groups.items()
        ]
        return cls(designs, observations, feature_names=features)

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str], designs: Space) -> RecordedExperiment:
        """Load an ``.npz`` archive written by :meth:`to_npz` (format in the module docstring).

        Raises
        ------
        RecordError
            The file is missing or unreadable, or a key is missing, unknown, of the wrong shape
            or holds NaN or out-of-space values; the message names the file and the key.
        """
        designs = _check_space(designs)
        path = Path(path)
        arrays = read_npz_arrays(path, RecordError)
        return _from_arrays(cls, arrays, path, designs)

    def to_npz(self, path: str | os.PathLike[str]) -> Path:
        """Write every observation (used or not) to ``path`` atomically; return the path.

        :meth:`from_npz` reads it back into an equal experiment.
        """
        path = Path(path)
        obs = self.observations
        arrays: dict[str, np.ndarray] = {
            "design": np.stack([o.design for o in obs]).astype(float),
            "counts": np.array([o.n for o in obs], dtype=np.int64),
            "x": np.concatenate([o.x for o in obs], axis=0).astype(float),
            "luminosity": np.array(
                [np.nan if o.luminosity is None else o.luminosity for o in obs], dtype=float
            ),
            "design_names": np.array(self.designs.names, dtype=str),
        }
        if self.feature_names is not None:
            arrays["feature_names"] = np.array(self.feature_names, dtype=str)
        with atomic_write(path) as fh:
            np.savez(fh, **arrays)
        return path


def _same(a: Observation, b: Observation) -> bool:
    """Whether two observations hold the same design and events."""
    return a.x.shape == b.x.shape and np.allclose(a.design, b.design) and np.allclose(a.x, b.x)


def _read_csv(
    reader: Any, path: Path, designs: Space, features: list[str], expected: list[str]
) -> dict[tuple[float, ...], tuple[list[list[float]], float | None, int]]:
    """Parse and validate the rows; ``{design: (feature rows, luminosity, first line)}``."""
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise RecordError(f"{path}: empty file; expected a header line with columns {expected}")
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    unknown = [h for h in header if h not in expected and h != "luminosity"]
    missing = [c for c in expected if c not in header]
    if dup or unknown or missing:
        what = "; ".join(
            f"{label} column(s) {cols}"
            for label, cols in (("duplicate", dup), ("unknown", unknown), ("missing", missing))
            if cols
        )
        raise RecordError(
            f"{path}, line 1: {what}; expected {expected} and optionally 'luminosity'"
        )
    d_idx = [header.index(n) for n in designs.names]
    x_idx = [header.index(n) for n in features]
    lum_idx = header.index("luminosity") if "luminosity" in header else None
    groups: dict[tuple[float, ...], tuple[list[list[float]], float | None, int]] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue  # blank line
        if len(row) != len(header):
            raise RecordError(
                f"{path}, line {line}: {len(row)} fields, expected {len(header)} as in the header"
            )

        def number(j: int, row: list[str] = row, line: int = line) -> float:
            text = row[j].strip()
            try:
                value = float(text)
            except ValueError:
                raise RecordError(
                    f"{path}, line {line}, column {header[j]!r}: {text!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise RecordError(
                    f"{path}, line {line}, column {header[j]!r}: {text!r} is not a finite number"
                )
            return value

        key = tuple(number(j) for j in d_idx)
        x = [number(j) for j in x_idx]
        lum = None
        if lum_idx is not None and row[lum_idx].strip():
            lum = number(lum_idx)
            if lum <= 0:
                raise RecordError(
                    f"{path}, line {line}, column 'luminosity': must be positive, got {lum:g}"
                )
        if key not in groups:
            _check_design(designs, key, path, line)
            groups[key] = ([], lum, line)
        rows, first_lum, first_line = groups[key]
        if lum != first_lum:
            raise RecordError(
                f"{path}, line {line}, column 'luminosity': {lum} differs from {first_lum} on "
                f"line {first_line} for the same design {_show(designs, np.array(key))}; one "
                f"design is one observation with one luminosity"
            )
        rows.append(x)
    if not groups:
        raise RecordError(f"{path}: no events after the header (line 1)")
    return groups


def _check_design(designs: Space, key: tuple[float, ...], path: Path, line: int) -> None:
    try:
        designs.validate(np.array([key]))
    except ValidationError as exc:
        bad = [d.name for d, v in zip(designs, key, strict=True) if not _inside(Space([d]), v)]
        column = bad[0] if bad else designs.names[0]
        why = str(exc).removesuffix(" (row 0)")
        raise RecordError(f"{path}, line {line}, column {column!r}: {why}") from None


def _inside(space: Space, value: float) -> bool:
    try:
        space.validate([[value]])
    except ValidationError:
        return False
    return True


def _from_arrays(
    cls: type[RecordedExperiment], a: dict[str, np.ndarray], path: Path, designs: Space
) -> RecordedExperiment:
    def fail(why: str) -> RecordError:
        return RecordError(f"{path}: {why}")

    unknown = sorted(set(a) - set(_NPZ_KEYS))
    if unknown:
        raise fail(f"unknown key(s) {unknown}; expected {list(_NPZ_KEYS)}")
    missing = [k for k in ("design", "counts", "x") if k not in a]
    if missing:
        raise fail(f"missing key(s) {missing}; expected 'design', 'counts', 'x'")
    for key in ("design", "counts", "x", "luminosity"):
        if key in a and not (
            np.issubdtype(a[key].dtype, np.integer) or np.issubdtype(a[key].dtype, np.floating)
        ):
            raise fail(f"{key!r} has dtype {a[key].dtype}, expected numbers")
    D = len(designs)
    design = a["design"].astype(float)
    if design.ndim != 2 or design.shape[1] != D or design.shape[0] == 0:
        raise fail(f"'design' has shape {design.shape}, expected (k, {D}) with k >= 1")
    k = design.shape[0]
    if "design_names" in a and [str(s) for s in a["design_names"].reshape(-1)] != designs.names:
        raise fail(f"'design_names' are {a['design_names'].tolist()}, expected {designs.names}")
    for i, point in enumerate(design):
        try:
            designs.validate(point)
        except ValidationError as exc:
            raise fail(f"'design' row {i}: {str(exc).removesuffix(' (row 0)')}") from None
    counts = a["counts"]
    if counts.shape != (k,):
        raise fail(f"'counts' has shape {counts.shape}, expected ({k},) like 'design'")
    events = a["x"].shape[0] if a["x"].ndim else 0
    if not (
        np.isfinite(counts).all()
        and (counts >= 0).all()
        and (counts == np.round(counts)).all()
        and (counts <= events).all()  # before the cast: 9.3e18 would overflow int64
    ):
        raise fail(
            f"'counts' must be non-negative integers, each at most the {events} rows of 'x', "
            f"got {counts.tolist()}"
        )
    counts = counts.astype(np.int64)
    x = a["x"].astype(float)
    if x.ndim != 2 or x.shape[1] == 0 or x.shape[0] != counts.sum():
        raise fail(f"'x' has shape {x.shape}, expected ({int(counts.sum())}, X): sum of 'counts'")
    if not np.isfinite(x).all():
        raise fail("'x' contains NaN or infinite values")
    lums: list[float | None] = [None] * k
    if "luminosity" in a:
        lum = a["luminosity"].astype(float)
        if lum.shape != (k,):
            raise fail(f"'luminosity' has shape {lum.shape}, expected ({k},) like 'design'")
        for i, v in enumerate(lum):
            if not np.isnan(v):
                lums[i] = _luminosity(float(v), f"{path}: 'luminosity' entry {i}")
    names = None
    if "feature_names" in a:
        names = [str(s) for s in a["feature_names"].reshape(-1)]
        if len(names) != x.shape[1]:
            raise fail(f"'feature_names' has {len(names)} names for {x.shape[1]} columns of 'x'")
    ends = np.cumsum(counts)
    obs = [
        Observation(design=design[i], x=x[ends[i] - counts[i] : ends[i]], luminosity=lums[i])
        for i in range(k)
    ]
    return cls(designs, obs, feature_names=names)


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
        lum = _luminosity(luminosity, f"result at {_show(self.designs, point)}")
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
            f"no result entered for design {_show(self.designs, point)}; "
            f"call submit(design, x) first"
        )
