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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import ValidationError
from activesci.spaces import Space
from activesci.typing import Simulator

__all__ = ["TrainingData", "draw_designs", "simulate_score_data", "simulate_training_data"]

#: Format tag of training-data files (:meth:`TrainingData.save`).
TRAINING_FORMAT = "activesci.training/1"


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
    """

    x: np.ndarray
    theta: np.ndarray
    design: np.ndarray
    y: np.ndarray
    theta_ref: np.ndarray
    log_r: np.ndarray | None = None
    score: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-row arrays (without ``theta_ref`` and absent gold), keyed by field name."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "theta_ref" and getattr(self, f.name) is not None
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write an ``activesci.training/1`` ``.npz`` file (atomically: no partial file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        with tmp.open("wb") as fh:
            np.savez(
                fh, format=np.array(TRAINING_FORMAT), theta_ref=self.theta_ref, **self.arrays()
            )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainingData:
        """Read a file written by :meth:`save`; a malformed one raises ``ValidationError``."""
        from activesci.simulators.eventfile import read_npz_arrays

        path = Path(path)
        a = read_npz_arrays(path, ValidationError, "training-data file")
        if "format" not in a or str(a["format"]) != TRAINING_FORMAT:
            found = str(a["format"]) if "format" in a else "none"
            raise ValidationError(f"{path}: format is {found!r}, expected {TRAINING_FORMAT!r}")
        missing = [k for k in ("x", "theta", "design", "y", "theta_ref") if k not in a]
        if missing:
            raise ValidationError(f"{path}: missing array(s) {missing}")
        n = len(a["y"])
        bad = [k for k in ("x", "theta", "design", "log_r", "score") if k in a and len(a[k]) != n]
        if bad:
            raise ValidationError(f"{path}: array(s) {bad} do not have {n} rows like y")
        return cls(**{f.name: a.get(f.name) for f in fields(cls)})

    @classmethod
    def concatenate(cls, parts: Sequence[TrainingData]) -> TrainingData:
        """Join samples with the same ``theta_ref`` and the same gold, in order."""
        if not parts:
            raise ValidationError("nothing to concatenate: give at least one TrainingData")
        first = parts[0]
        for k, part in enumerate(parts[1:], start=1):
            if not np.array_equal(part.theta_ref, first.theta_ref):
                raise ValidationError(
                    f"part {k} has theta_ref {part.theta_ref.tolist()}, part 0 has "
                    f"{first.theta_ref.tolist()}: they were simulated for different estimators"
                )
            if sorted(part.arrays()) != sorted(first.arrays()):
                raise ValidationError(
                    f"part {k} holds {sorted(part.arrays())}, part 0 holds {sorted(first.arrays())}"
                )
        joined = {k: np.concatenate([p.arrays()[k] for p in parts]) for k in first.arrays()}
        return cls(theta_ref=first.theta_ref, **joined)


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
    if not (isinstance(n_samples, int | np.integer) and n_samples >= 4):
        raise ValidationError(f"n_samples must be an integer >= 4, got {n_samples!r}")
    rng = np.random.default_rng(seed)
    ref = simulator.parameters.validate(theta_ref)
    half = int(n_samples) // 2
    theta = simulator.parameters.sample(half, rng)
    design = draw_designs(simulator.designs, designs, half, rng)
    at_theta = simulator.sample(theta, design, rng)
    at_ref = simulator.sample(ref, design, rng, n=half)
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
    if not (isinstance(n_samples, int | np.integer) and n_samples >= 4):
        raise ValidationError(f"n_samples must be an integer >= 4, got {n_samples!r}")
    rng = np.random.default_rng(seed)
    ref = simulator.parameters.validate(theta_ref)
    design = draw_designs(simulator.designs, designs, int(n_samples), rng)
    events = simulator.sample(ref, design, rng)
    return {"x": events.x, "design": design, "score": simulator.joint_score(events.z, ref, design)}
