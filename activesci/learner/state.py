"""A round's state: what one round did and where knowledge stands after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from activesci.inference.grid import GridPosterior
from activesci.inference.particles import SamplePosterior
from activesci.typing import (
    Observation,
)

__all__ = ["RoundState"]


@dataclass
class RoundState:
    """What one round did and where knowledge stands after it."""

    round: int
    design: np.ndarray
    observation: Observation
    posterior: GridPosterior | SamplePosterior  # a snapshot: later rounds do not change it
    strategy_record: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    check: dict[str, Any] | None = None
    trainings: list[dict[str, Any]] = field(default_factory=list)
    regrids: list[dict[str, Any]] = field(default_factory=list)
    batch_start: int | None = None
    cost: float | None = None
    total_cost: float | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (stored per round and shown in reports)."""
        post = self.posterior
        return {
            "design": self.design.tolist(),
            "n": self.observation.n,
            "luminosity": self.observation.luminosity,
            "mean": post.mean().tolist(),
            "std": post.std().tolist(),
            "interval68": post.interval(0.68).tolist(),
            "hdr68": post.hdr(0.68),
            "entropy": post.entropy(),
            "n_events": post.n_events,
            "marginals": _marginals(post),
            "pairs": post.pair_marginals(),
            "strategy": self.strategy_record,
            "seconds": self.seconds,
            "check": self.check,
            "trainings": self.trainings,
            "regrids": self.regrids,
        } | {
            key: value
            for key, value in (
                ("batch_start", self.batch_start),
                ("cost", self.cost),
                ("total_cost", self.total_cost),
            )
            if value is not None
        }


def _marginals(posterior: Any) -> dict[str, dict[str, list[float]]]:
    """Each parameter's marginal density on its grid, for reports."""
    out = {}
    for name in posterior.space.names:
        grid, density = posterior.marginal(name)
        out[name] = {"grid": grid.tolist(), "density": density.tolist()}
    return out
