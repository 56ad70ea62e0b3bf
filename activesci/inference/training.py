"""Training samples for the neural estimators, with the simulator's gold, MadMiner style.

For a ratio estimator, ``n`` samples are simulated in two halves sharing the same
``(theta, design)`` rows: events drawn at ``theta`` (label ``y = 1``) and events drawn at the
reference ``theta_ref`` (``y = 0``). ``theta`` comes from the prior, the design from the design
space (or a given list: amortisation over where the optimiser will look). The gold is the joint
log ratio ``log p(z | theta) - log p(z | theta_ref)`` of every event and the joint score
``grad_theta log p(z | theta)`` of the events drawn at ``theta``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import ValidationError
from activesci.io import atomic_write
from activesci.spaces import Space
from activesci.typing import Events, Simulator, check_count, check_seed

__all__ = ["TrainingData", "draw_designs", "simulate_score_data", "simulate_training_data"]

#: Format tag of training-data files (:meth:`TrainingData.save`).
TRAINING_FORMAT = "activesci.training/2"
#: The per-row arrays of a training-data file, and their dimensions (None: the row count only).
_ROWS = {"y": 1, "x": 2, "theta": 2, "design": 2, "log_r": 1, "score": 2}
#: The names a training-data file records, with the array columns they name.
_NAMES = {"parameter_names": "theta", "design_names": "design"}


@dataclass(frozen=True)
class TrainingData:
    """Simulated training samples, one per row.

    Attributes
    ----------
    x : numpy.ndarray
        Recorded features ``(n, X)``.
    theta : numpy.ndarray
        The parameter point each row is about ``(n, P)``.
    design : numpy.ndarray
        The design of each row ``(n, D)``.
    y : numpy.ndarray
        1 if the event was drawn at ``theta``, 0 if at ``theta_ref`` ``(n,)``.
    theta_ref : numpy.ndarray
        The reference parameters ``(P,)``.
    log_r : numpy.ndarray or None
        Joint log ratio ``log p(z | theta) - log p(z | theta_ref)`` ``(n,)``.
    score : numpy.ndarray or None
        Joint score at ``theta`` ``(n, P)`` (meaningful where ``y = 1``; zero elsewhere).
    parameter_names, design_names : tuple of str
        Names of the columns of ``theta`` and ``design`` (what the samples are about:
        :meth:`check` refuses samples of another problem).
    """

    x: np.ndarray
    theta: np.ndarray
    design: np.ndarray
    y: np.ndarray
    theta_ref: np.ndarray
    log_r: np.ndarray | None = None
    score: np.ndarray | None = None
    parameter_names: tuple[str, ...] = ()
    design_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.y)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-row arrays (absent gold left out), keyed by field name."""
        return {k: getattr(self, k) for k in _ROWS if getattr(self, k) is not None}

    def check(self, parameters: Space, designs: Space, n_features: int) -> None:
        """Refuse samples of another problem than ``parameters``, ``designs`` and ``n_features``.

        Raises
        ------
        ValidationError
            Other parameter or design names, another number of features, or a row outside
            the spaces; the message names what differs.
        """
        for field_name, space in (("parameter_names", parameters), ("design_names", designs)):
            if list(getattr(self, field_name)) != space.names:
                raise ValidationError(
                    f"the training data are about {field_name.split('_')[0]}s "
                    f"{list(getattr(self, field_name))}, expected {space.names}: they were "
                    "simulated for another task"
                )
        if self.x.shape[1] != n_features:
            raise ValidationError(
                f"the training data have {self.x.shape[1]} features per event, expected "
                f"{n_features}: they were simulated for another task"
            )
        parameters.validate(self.theta)
        parameters.validate(self.theta_ref)
        designs.validate(self.design)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write an ``activesci.training/2`` ``.npz`` file (atomically: no partial file)."""
        path = Path(path)
        names = {k: np.array(getattr(self, k), dtype=str) for k in _NAMES}
        with atomic_write(path) as fh:
            np.savez(
                fh,
                format=np.array(TRAINING_FORMAT),
                theta_ref=self.theta_ref,
                **names,
                **self.arrays(),
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainingData:
        """Read a file written by :meth:`save`; a malformed one raises ``ValidationError``.

        Files of ``activesci.training/1`` are refused: they do not say which parameters
        they are about, so they cannot be checked against a task.
        """
        from activesci.io import read_npz_arrays

        path = Path(path)
        a = read_npz_arrays(path, ValidationError, "training-data file")
        found = str(a["format"]) if "format" in a and a["format"].dtype.kind == "U" else None
        if found != TRAINING_FORMAT:
            old = " (it names no parameters: simulate it again)" if found else ""
            raise ValidationError(
                f"{path}: format is {found or 'none'!r}, expected {TRAINING_FORMAT!r}{old}"
            )
        unknown = sorted(set(a) - {"format", "theta_ref", *_NAMES, *_ROWS})
        missing = [k for k in ("x", "theta", "design", "y", "theta_ref", *_NAMES) if k not in a]
        if missing or unknown:
            raise ValidationError(f"{path}: missing array(s) {missing}, unknown {unknown}")
        for key, value in a.items():
            if key != "format" and value.dtype.kind not in ("U" if key in _NAMES else "biuf"):
                raise ValidationError(f"{path}: {key!r} has dtype {value.dtype}")
        names = {k: tuple(str(s) for s in a[k].reshape(-1)) for k in _NAMES}
        n = len(a["y"]) if a["y"].ndim == 1 else -1
        for key, ndim in _ROWS.items():
            if key in a and (a[key].ndim != ndim or len(a[key]) != n):
                raise ValidationError(
                    f"{path}: {key!r} has shape {a[key].shape}, expected {ndim} dimension(s) "
                    f"and {n} rows like 'y'"
                )
        widths = {"theta": len(names["parameter_names"]), "design": len(names["design_names"])}
        widths |= {"score": widths["theta"], "theta_ref": widths["theta"]}
        for key, width in widths.items():
            if key in a and a[key].shape[-1:] != (width,):
                raise ValidationError(
                    f"{path}: {key!r} has shape {a[key].shape}, expected {width} columns"
                )
        bad = [k for k in a if k not in ("format", *_NAMES) and not np.isfinite(a[k]).all()]
        if bad:
            raise ValidationError(f"{path}: {bad} hold NaN or infinite values")
        rows = {k: a[k].astype(float) for k in (*_ROWS, "theta_ref") if k in a}
        return cls(**rows, **names)

    @classmethod
    def concatenate(cls, parts: Sequence[TrainingData]) -> TrainingData:
        """Join samples of the same problem, with the same ``theta_ref`` and gold, in order."""
        if not parts:
            raise ValidationError("nothing to concatenate: give at least one TrainingData")
        first = parts[0]
        for k, part in enumerate(parts[1:], start=1):
            for what, a, b in (
                ("theta_ref", part.theta_ref.tolist(), first.theta_ref.tolist()),
                ("parameter names", part.parameter_names, first.parameter_names),
                ("design names", part.design_names, first.design_names),
                ("arrays", sorted(part.arrays()), sorted(first.arrays())),
            ):
                if a != b:
                    raise ValidationError(
                        f"part {k} has {what} {a}, part 0 has {b}: they were simulated for "
                        "different estimators"
                    )
        joined = {k: np.concatenate([p.arrays()[k] for p in parts]) for k in first.arrays()}
        names = {k: getattr(first, k) for k in _NAMES}
        return cls(theta_ref=first.theta_ref, **joined, **names)


def draw_designs(space: Space, designs: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` designs ``(n, D)``: from ``space`` (``designs=None``), another ``Space``, or a list.

    A list of design points ``(k, D)`` is drawn from uniformly, each point validated.
    """
    if designs is None:
        return space.sample(n, rng)
    if isinstance(designs, Space):
        if designs.names != space.names:
            raise ValidationError(f"designs {designs.names} do not match the space {space.names}")
        return space.validate(designs.sample(n, rng))
    points = space.validate(designs)
    return points[rng.integers(0, len(points), size=n)]


def simulate_training_data(
    simulator: Simulator,
    n_samples: int,
    *,
    theta_ref: Sequence[float] | np.ndarray,
    designs: Any = None,
    gold: Sequence[str] = ("joint_log_prob", "joint_score"),
    seed: int = 0,
) -> TrainingData:
    """Simulate ``n_samples`` events for ratio training (see the module docstring).

    Parameters
    ----------
    simulator : Simulator
        Must have the capabilities named in ``gold`` that are wanted.
    n_samples : int
        Total number of events (two halves).
    theta_ref : array_like
        The reference point ``(P,)``.
    designs : Space or array_like, optional
        See :func:`draw_designs`.
    gold : sequence of str
        Which gold to compute: ``joint_log_prob`` and/or ``joint_score``.
    seed : int
        Seed of the simulation.
    """
    rng = np.random.default_rng(check_seed(seed))
    ref = simulator.parameters.validate(theta_ref)
    half = check_count(n_samples, "n_samples", minimum=4) // 2
    theta = simulator.parameters.sample(half, rng)
    design = draw_designs(simulator.designs, designs, half, rng)
    at_theta = Events.checked(simulator.sample(theta, design, rng), half, "simulator.sample")
    at_ref = Events.checked(simulator.sample(ref, design, rng, n=half), half, "simulator.sample")
    both_theta = np.concatenate([theta, theta])
    both_design = np.concatenate([design, design])
    log_r = score = None
    if "joint_log_prob" in gold or "joint_score" in gold:
        if at_theta.z is None or at_ref.z is None:
            raise ValidationError("the simulator returned no latent z, so it has no gold")
    if "joint_log_prob" in gold:
        z = np.concatenate([at_theta.z, at_ref.z])
        log_r = simulator.joint_log_prob(z, both_theta, both_design) - simulator.joint_log_prob(
            z, ref, both_design
        )
    if "joint_score" in gold:
        score = np.zeros_like(both_theta)
        score[:half] = simulator.joint_score(at_theta.z, theta, design)
    return TrainingData(
        parameter_names=tuple(simulator.parameters.names),
        design_names=tuple(simulator.designs.names),
        x=np.concatenate([at_theta.x, at_ref.x]),
        theta=both_theta,
        design=both_design,
        y=np.concatenate([np.ones(half), np.zeros(half)]),
        theta_ref=ref[0],
        log_r=log_r,
        score=score,
    )


def simulate_score_data(
    simulator: Simulator,
    n_samples: int,
    *,
    theta_ref: Sequence[float] | np.ndarray,
    designs: Any = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Events at ``theta_ref`` with their joint score (for SALLY): ``x``, ``design``, ``score``."""
    rng = np.random.default_rng(check_seed(seed))
    ref = simulator.parameters.validate(theta_ref)
    n = check_count(n_samples, "n_samples", minimum=4)
    design = draw_designs(simulator.designs, designs, n, rng)
    events = Events.checked(simulator.sample(ref, design, rng), n, "simulator.sample")
    return {"x": events.x, "design": design, "score": simulator.joint_score(events.z, ref, design)}
