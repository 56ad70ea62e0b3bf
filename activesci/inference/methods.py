"""Training methods of the neural estimators and what gold each needs (no torch needed).

>>> METHODS["alices"].needs
('joint_log_prob', 'joint_score')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activesci.errors import MissingCapabilityError, ValidationError
from activesci.spaces import Normal, Real, Space
from activesci.typing import Simulator

__all__ = ["METHODS", "Method", "check_capabilities", "default_theta_ref", "resolve_method"]


@dataclass(frozen=True)
class Method:
    """A training method: which ratio loss, whether a score term, what gold it needs."""

    name: str
    ratio: str | None  # "carl", "rolr", "alice" or None (score only)
    score: bool
    needs: tuple[str, ...]
    summary: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("carl", "carl", False, (), "classifier cross-entropy"),
        Method("rolr", "rolr", False, ("joint_log_prob",), "ratio regression on the joint ratio"),
        Method("alice", "alice", False, ("joint_log_prob",), "cross-entropy, joint-ratio labels"),
        Method(
            "alices", "alice", True, ("joint_log_prob", "joint_score"), "alice + score regression"
        ),
        Method(
            "rascal", "rolr", True, ("joint_log_prob", "joint_score"), "rolr + score regression"
        ),
        Method("cascal", "carl", True, ("joint_score",), "carl + score regression"),
        Method("sally", None, True, ("joint_score",), "local score regression at theta_ref"),
    )
}


def resolve_method(name: str, *, score_only: bool = False) -> Method:
    """Look a method up by name, with a clear error listing the valid names."""
    valid = ["sally"] if score_only else [m for m in METHODS if m != "sally"]
    if name not in valid:
        hint = " (use ScoreEstimator for 'sally')" if name == "sally" else ""
        raise ValidationError(f"unknown method {name!r}{hint}; expected one of {valid}")
    return METHODS[name]


def check_capabilities(simulator: Simulator, method: Method) -> None:
    """Raise ``MissingCapabilityError`` if ``simulator`` lacks the gold ``method`` needs."""
    missing = [c for c in method.needs if c not in simulator.capabilities]
    if missing:
        raise MissingCapabilityError(
            f"method {method.name!r} needs the simulator capability {missing} "
            f"({type(simulator).__name__} has {sorted(simulator.capabilities)}); "
            f"'carl' needs none"
        )


def default_theta_ref(space: Space) -> np.ndarray:
    """The prior mean of Normal priors, else the centre of each dimension's range: ``(P,)``."""
    ref = []
    for d in space:
        if isinstance(d, Real) and isinstance(d.prior, Normal):
            ref.append(min(max(d.prior.mean, d.low), d.high))
        else:
            lo, hi = d.bounds
            ref.append(0.5 * (lo + hi))
    return np.array(ref)
